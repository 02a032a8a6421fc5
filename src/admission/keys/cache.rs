//! The cache of public keys already read ([`KeyCache`]), shared by the
//! admission of Submit, the auditor and the monitor.

use super::*;

/// Public keys already read, by their PEM text, shared by threads. Publishers sign many
/// entries with one key, and reading a key (base64, DER, point decompression and checks, the
/// SHA-256 of its id) costs more than every other key check of an entry. Used by admission, the
/// auditor and the monitor. Bounded: emptied when full.
#[derive(Default)]
pub struct KeyCache {
    // A std Mutex: held for a lookup or an insert only, never across an await.
    keys: std::sync::Mutex<std::collections::HashMap<String, Result<CachedKey, KeyError>>>,
}

/// A key as [`KeyCache`] read it.
#[derive(Clone, Copy, Debug)]
pub struct CachedKey {
    pub key: PublicKey,
    pub id: KeyId,
    /// Whether the PEM text is exactly [`PublicKey::to_pem`] of the key: the form the log stores.
    pub normalised: bool,
}

impl KeyCache {
    /// Most PEM texts remembered.
    pub const CAPACITY: usize = 4096;

    /// The key of `pem` as [`PublicKey::from_pem`] reads it, with its id and form.
    ///
    /// # Errors
    /// Those of [`PublicKey::from_pem`] (remembered too).
    pub fn get(&self, pem: &str) -> Result<CachedKey, KeyError> {
        let lock = || self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = lock().get(pem) {
            return hit.clone();
        }
        let read = PublicKey::from_pem(pem).map(|key| CachedKey {
            key,
            id: key.key_id(),
            normalised: key.to_pem() == pem,
        });
        let mut keys = lock();
        if keys.len() >= Self::CAPACITY {
            keys.clear();
        }
        keys.insert(pem.to_string(), read.clone());
        read
    }

    /// [`PublicKey::from_pem`] through the cache.
    ///
    /// # Errors
    /// Those of [`PublicKey::from_pem`].
    pub fn key(&self, pem: &str) -> Result<PublicKey, KeyError> {
        self.get(pem).map(|k| k.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_cache_reads_once_and_tells_the_normalised_form() {
        let key = PrivateKey::generate(KeyType::P256).public_key();
        let pem = key.to_pem();
        let cache = KeyCache::default();
        for _ in 0..2 {
            let k = cache.get(&pem).unwrap();
            assert_eq!((k.key, k.id, k.normalised), (key, key.key_id(), true));
        }
        let loose = format!("\n{pem}");
        let k = cache.get(&loose).unwrap();
        assert_eq!((k.key, k.normalised), (key, false));
        assert_eq!(cache.key("garbage"), PublicKey::from_pem("garbage"));
        for i in 0..KeyCache::CAPACITY + 1 {
            assert!(cache.get(&format!("not a key {i}")).is_err());
        }
        assert!(cache.keys.lock().unwrap().len() <= KeyCache::CAPACITY);
    }
}

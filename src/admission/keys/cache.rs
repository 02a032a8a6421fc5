//! The cache of public keys already read ([`KeyCache`]), shared by the
//! admission of Submit, the auditor and the monitor.

use super::*;

/// Public keys already read, by their PEM text, shared by threads. Publishers sign many
/// entries with one key, and reading a key (base64, DER, point decompression and checks, the
/// SHA-256 of its id) costs more than every other key check of an entry. Used by admission, the
/// auditor and the monitor.
///
/// Bounded in bytes: at most [`KeyCache::CAPACITY_BYTES`] of PEM text and entries
/// ([`entry_cost`]) and at most [`KeyCache::CAPACITY`] entries; emptied when an insert would
/// pass either. Only keys that parsed are remembered: text that is not a key (anyone can send
/// megabytes of it, with no valid signature) is read again each time it comes, which its length
/// cap ([`MAX_PUBLIC_KEY_PEM_BYTES`]) keeps cheap.
#[derive(Default)]
pub struct KeyCache {
    // A std Mutex: held for a lookup or an insert only, never across an await.
    keys: std::sync::Mutex<Entries>,
}

/// The cache's map and what it holds, in bytes ([`entry_cost`] summed).
#[derive(Default)]
struct Entries {
    map: std::collections::HashMap<String, CachedKey>,
    bytes: usize,
}

impl Entries {
    fn len(&self) -> usize {
        self.map.len()
    }
}

/// What one remembered key costs the cache: its PEM text and the entry holding it.
fn entry_cost(pem: &str) -> usize {
    pem.len() + std::mem::size_of::<(String, CachedKey)>()
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

    /// Most bytes remembered ([`entry_cost`] summed): 4 MiB, some 14,000 keys as the log writes
    /// them, more than [`KeyCache::CAPACITY`] of them.
    pub const CAPACITY_BYTES: usize = 4 << 20;

    /// The key of `pem` as [`PublicKey::from_pem`] reads it, with its id and form.
    ///
    /// # Errors
    /// Those of [`PublicKey::from_pem`] (not remembered).
    pub fn get(&self, pem: &str) -> Result<CachedKey, KeyError> {
        let lock = || self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = lock().map.get(pem) {
            return Ok(*hit);
        }
        let key = PublicKey::from_pem(pem)?;
        let read = CachedKey {
            key,
            id: key.key_id(),
            normalised: key.to_pem() == pem,
        };
        let cost = entry_cost(pem);
        let mut keys = lock();
        if keys.len() >= Self::CAPACITY || keys.bytes + cost > Self::CAPACITY_BYTES {
            *keys = Entries::default();
        }
        if keys.map.insert(pem.to_string(), read).is_none() {
            keys.bytes += cost;
        }
        Ok(read)
    }

    /// [`PublicKey::from_pem`] through the cache.
    ///
    /// # Errors
    /// Those of [`PublicKey::from_pem`].
    pub fn key(&self, pem: &str) -> Result<PublicKey, KeyError> {
        self.get(pem).map(|k| k.key)
    }

    /// Bytes held now ([`entry_cost`] summed), at most [`KeyCache::CAPACITY_BYTES`].
    pub fn bytes(&self) -> usize {
        self.keys.lock().unwrap_or_else(|p| p.into_inner()).bytes
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

    #[test]
    fn junk_is_not_remembered_and_keys_stay_under_the_byte_bound() {
        let cache = KeyCache::default();
        // Junk of every kind: over the length cap, and under it but not a key.
        for i in 0..64 {
            let long = format!("{i}{}", "A".repeat(MAX_PUBLIC_KEY_PEM_BYTES));
            assert!(matches!(cache.get(&long), Err(KeyError::PemTooLong { .. })));
            assert!(cache.get(&format!("not a key {i}")).is_err());
        }
        assert_eq!(cache.bytes(), 0);
        assert_eq!(cache.keys.lock().unwrap().len(), 0);

        // Real keys, each spelled in many ways (padded with whitespace up to the length cap):
        // distinct texts of one key, each remembered until the bound empties the cache.
        let pem = PrivateKey::generate(KeyType::Ed25519).public_key().to_pem();
        let mut most = 0;
        for pad in 0..MAX_PUBLIC_KEY_PEM_BYTES - pem.len() {
            let spelled = format!("{pem}{}", "\n".repeat(pad));
            assert!(!cache.get(&spelled).unwrap().normalised || pad == 0);
            let bytes = cache.bytes();
            assert!(bytes <= KeyCache::CAPACITY_BYTES, "{bytes}");
            most = most.max(bytes);
        }
        // The bound was reached (so it, not the entry count, emptied the cache).
        assert!(most + entry_cost(&pem) + MAX_PUBLIC_KEY_PEM_BYTES > KeyCache::CAPACITY_BYTES);
        assert!(cache.keys.lock().unwrap().len() < KeyCache::CAPACITY);
    }
}

//! The logged leaf and the key that makes resubmissions idempotent.
//!
//! A leaf's data is the protobuf encoding of [`LogEntry`], produced exactly once, when the
//! sequencer assigns the entry its index, and stored verbatim. Every later reader hashes the bytes
//! as stored (`SHA-256(0x00 || leaf_data)`, RFC 6962 §2.1); nobody re-encodes, so protobuf's
//! freedom in encoding never changes a leaf hash.
//!
//! This module does not verify signatures (see [`crate::admission::dsse`]) and does no I/O.

use prost::Message;
use sha2::{Digest, Sha256};

use crate::admission::dsse::MAX_KEYS;
use crate::admission::keys::{CachedKey, KeyCache, KeyError, KeyId};
pub use crate::proto::LogEntry;

/// What the sequencer needs to log one admitted submission (built by
/// [`crate::admission::Admitted::into_pending`]): bytes and keys, nothing of a declaration.
#[derive(Clone, Debug)]
pub struct PendingEntry {
    /// The DSSE envelope JSON exactly as submitted.
    pub envelope: Vec<u8>,
    /// The signers' keys as normalised PEM SubjectPublicKeyInfo, sorted by key id.
    pub public_keys: Vec<String>,
    /// Identifies the submission up to re-encoding and re-signing; see [`dedup_key`].
    pub dedup_key: [u8; 32],
    /// The search prefixes the entry is indexed under ([`crate::server::search::index_prefixes`]).
    pub search_prefixes: Vec<Vec<u8>>,
}

impl PendingEntry {
    /// The leaf data for this entry, integrated at `integrated_time_ms`.
    pub fn encode_leaf(&self, integrated_time_ms: i64) -> Vec<u8> {
        LogEntry {
            envelope: self.envelope.clone(),
            public_keys: self.public_keys.clone(),
            integrated_time_ms,
        }
        .encode_to_vec()
    }
}

/// Decodes leaf data served by a log into a [`LogEntry`].
///
/// # Errors
/// Returns the protobuf decode error if `leaf_data` is not an encoded `LogEntry`.
pub fn decode_leaf(leaf_data: &[u8]) -> Result<LogEntry, prost::DecodeError> {
    LogEntry::decode(leaf_data)
}

/// Why the public keys of a logged entry are not in the form the log stores them in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoggedKeysError {
    #[error("the entry logs {0} public keys; the log admits 1 to {MAX_KEYS}")]
    Count(usize),
    #[error("logged public key {index} does not parse: {reason}")]
    Unreadable { index: usize, reason: KeyError },
    #[error("logged public key {0} is not in the normalised PEM form the log writes")]
    NotNormalised(usize),
    #[error(
        "the logged public keys are not sorted by key id without repeats, as the log writes them"
    )]
    Order,
}

/// The keys of a logged entry, checked to be as [`PendingEntry`] writes them: 1 to
/// [`MAX_KEYS`], each in normalised PEM, sorted by key id without repeats. An auditor or a
/// monitor that re-runs admission on a leaf starts here.
///
/// # Errors
/// The first way in which the keys differ from what the log writes.
pub fn logged_keys(pems: &[String], cache: &KeyCache) -> Result<Vec<CachedKey>, LoggedKeysError> {
    if pems.is_empty() || pems.len() > MAX_KEYS {
        return Err(LoggedKeysError::Count(pems.len()));
    }
    let mut keys = Vec::with_capacity(pems.len());
    for (index, pem) in pems.iter().enumerate() {
        let k = cache
            .get(pem)
            .map_err(|reason| LoggedKeysError::Unreadable { index, reason })?;
        if !k.normalised {
            return Err(LoggedKeysError::NotNormalised(index));
        }
        keys.push(k);
    }
    if keys.windows(2).any(|w| w[0].id >= w[1].id) {
        return Err(LoggedKeysError::Order);
    }
    Ok(keys)
}

/// The deduplication key of a submission: SHA-256 over a length-prefixed encoding of the payload
/// type, the payload bytes and the signers' key ids (in increasing order, without repeats).
///
/// Two submissions share a key exactly when the same statement is signed by the same set of keys,
/// however the envelope JSON was written and whichever (randomised) signatures were made.
pub fn dedup_key(payload_type: &str, payload: &[u8], sorted_key_ids: &[KeyId]) -> [u8; 32] {
    debug_assert!(sorted_key_ids.windows(2).all(|w| w[0] < w[1]));
    let mut h = Sha256::new();
    h.update(b"glasslog dedup v1\n");
    h.update((payload_type.len() as u64).to_be_bytes());
    h.update(payload_type.as_bytes());
    h.update((payload.len() as u64).to_be_bytes());
    h.update(payload);
    h.update((sorted_key_ids.len() as u64).to_be_bytes());
    for id in sorted_key_ids {
        h.update(id.0);
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> KeyId {
        KeyId([b; 32])
    }

    #[test]
    fn dedup_key_separates_fields() {
        let base = dedup_key("t", b"payload", &[id(1)]);
        assert_eq!(base, dedup_key("t", b"payload", &[id(1)]));
        // Moving a byte from the type into the payload must change the key.
        assert_ne!(base, dedup_key("tp", b"ayload", &[id(1)]));
        assert_ne!(base, dedup_key("t", b"payload", &[id(2)]));
        assert_ne!(base, dedup_key("t", b"payload", &[id(1), id(2)]));
        assert_ne!(base, dedup_key("t", b"payload", &[]));
    }

    #[test]
    fn leaf_round_trips() {
        let e = PendingEntry {
            envelope: b"{}".to_vec(),
            public_keys: vec!["k".into()],
            dedup_key: [0; 32],
            search_prefixes: vec![],
        };
        let leaf = e.encode_leaf(1234);
        let back = decode_leaf(&leaf).unwrap();
        assert_eq!(back.envelope, b"{}");
        assert_eq!(back.public_keys, vec!["k".to_string()]);
        assert_eq!(back.integrated_time_ms, 1234);
        assert!(decode_leaf(&[0xff, 0xff]).is_err());
    }

    #[test]
    fn logged_keys_must_be_as_the_log_writes_them() {
        use crate::admission::keys::{KeyType, PrivateKey};
        let mut keys: Vec<_> = (0..3)
            .map(|i| {
                let t = [KeyType::Ed25519, KeyType::P256][i % 2];
                PrivateKey::generate(t).public_key()
            })
            .collect();
        keys.sort_by_key(|k| k.key_id());
        let pems: Vec<String> = keys.iter().map(|k| k.to_pem()).collect();
        let cache = KeyCache::default();
        let ids: Vec<KeyId> = logged_keys(&pems, &cache)
            .unwrap()
            .iter()
            .map(|k| k.id)
            .collect();
        assert_eq!(ids, keys.iter().map(|k| k.key_id()).collect::<Vec<_>>());

        let err = |pems: &[String]| logged_keys(pems, &cache).unwrap_err();
        assert_eq!(err(&[]), LoggedKeysError::Count(0));
        assert_eq!(
            err(&vec![pems[0].clone(); MAX_KEYS + 1]),
            LoggedKeysError::Count(MAX_KEYS + 1)
        );
        assert!(matches!(
            err(&[pems[0].clone(), "junk".into()]),
            LoggedKeysError::Unreadable { index: 1, .. }
        ));
        assert_eq!(
            err(&[pems[0].clone(), format!("\n{}", pems[1])]),
            LoggedKeysError::NotNormalised(1)
        );
        assert_eq!(
            err(&[pems[1].clone(), pems[0].clone()]),
            LoggedKeysError::Order
        );
        assert_eq!(
            err(&[pems[0].clone(), pems[0].clone()]),
            LoggedKeysError::Order
        );
    }
}

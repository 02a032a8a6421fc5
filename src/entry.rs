//! The logged leaf and the key that makes resubmissions idempotent.
//!
//! A leaf's data is the protobuf encoding of [`LogEntry`], produced exactly once, when the
//! sequencer assigns the entry its index, and stored verbatim. Every later reader hashes the bytes
//! as stored (`SHA-256(0x00 || leaf_data)`, RFC 6962 §2.1); nobody re-encodes, so protobuf's
//! freedom in encoding never changes a leaf hash.
//!
//! A leaf is at most [`MAX_LEAF_BYTES`], so that every entry can be served in C2SP tlog-tiles
//! entry bundles; the sequencer, the one place the leaf is encoded (and its clock known), refuses
//! a longer one ([`check_leaf_len`]).
//!
//! This module does not verify signatures (see [`crate::admission::dsse`]) and does no I/O.

use prost::Message;
use sha2::{Digest, Sha256};

use crate::admission::dsse::MAX_KEYS;
use crate::admission::keys::{CachedKey, KeyCache, KeyError, KeyId};
pub use crate::proto::LogEntry;

/// The most bytes of leaf data (an encoded [`LogEntry`]) the log writes: 65,535.
///
/// C2SP tlog-tiles (<https://c2sp.org/tlog-tiles>, "Log Entries") serves entries in *entry
/// bundles*, each entry prefixed by its length as a big-endian `uint16`, so no longer entry can
/// be served as tiles. glasslog's leaf data is what such a bundle would carry, so every leaf must
/// fit: an envelope must leave room for the keys, the time and the protobuf framing (see
/// [`leaf_len`]). A model release whose manifest does not fit leaves it out of the statement
/// (docs/declarations.md, `detachedManifest`).
pub const MAX_LEAF_BYTES: usize = 65_535;

/// A leaf longer than [`MAX_LEAF_BYTES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the logged entry would be {size} bytes; a log entry is at most {MAX_LEAF_BYTES} bytes \
     (C2SP tlog-tiles entry bundles carry entries of at most 65535 bytes). Shorten the \
     statement: a model release can leave a large manifest out of it (detachedManifest, see \
     docs/declarations.md; glasslog declare does so by itself)"
)]
pub struct LeafTooLarge {
    /// The length of the leaf data, in bytes.
    pub size: usize,
}

/// `Ok` when leaf data of `len` bytes may be logged: `len <= MAX_LEAF_BYTES`.
///
/// # Errors
/// [`LeafTooLarge`] naming `len`.
pub fn check_leaf_len(len: usize) -> Result<(), LeafTooLarge> {
    if len > MAX_LEAF_BYTES {
        return Err(LeafTooLarge { size: len });
    }
    Ok(())
}

/// The exact length of the leaf data of an envelope of `envelope_len` bytes logged with
/// `public_keys` at `integrated_time_ms`, without encoding it: what
/// `LogEntry { envelope, public_keys, integrated_time_ms }.encode_to_vec().len()` is.
///
/// Per field, proto3 as prost writes it: a one-byte key (field numbers 1–3), then a varint
/// length and the bytes for `envelope` (left out when empty) and each key; a varint for the
/// time (left out when 0; 6 bytes for every time from 1971 to 2109, 10 when negative).
pub fn leaf_len(envelope_len: usize, public_keys: &[String], integrated_time_ms: i64) -> usize {
    use prost::encoding::encoded_len_varint;
    let bytes_field = |len: usize| 1 + encoded_len_varint(len as u64) + len;
    let envelope = if envelope_len == 0 {
        0
    } else {
        bytes_field(envelope_len)
    };
    let keys: usize = public_keys.iter().map(|k| bytes_field(k.len())).sum();
    // Two's complement: a negative time is a 10-byte varint, as protobuf writes int64.
    let time = if integrated_time_ms == 0 {
        0
    } else {
        1 + encoded_len_varint(integrated_time_ms as u64)
    };
    envelope + keys + time
}

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

    /// The length of [`PendingEntry::encode_leaf`]'s result, without encoding ([`leaf_len`]).
    pub fn leaf_len(&self, integrated_time_ms: i64) -> usize {
        leaf_len(self.envelope.len(), &self.public_keys, integrated_time_ms)
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
    fn leaf_len_is_the_encoded_length() {
        let keys =
            |lens: &[usize]| -> Vec<String> { lens.iter().map(|&n| "k".repeat(n)).collect() };
        // Around every varint width of the lengths and the time, and the limit itself.
        let envelopes = [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            MAX_LEAF_BYTES - 300,
            MAX_LEAF_BYTES,
        ];
        let times = [
            0,
            1,
            127,
            128,
            1_700_000_000_000,
            (1 << 42) - 1,
            1 << 42,
            i64::MAX,
            -1,
        ];
        for &n in &envelopes {
            for &t in &times {
                for k in [keys(&[]), keys(&[178]), keys(&[178, 0, 200])] {
                    let e = PendingEntry {
                        envelope: vec![b'x'; n],
                        public_keys: k,
                        dedup_key: [0; 32],
                        search_prefixes: vec![],
                    };
                    assert_eq!(e.leaf_len(t), e.encode_leaf(t).len(), "{n} bytes at {t}");
                }
            }
        }
    }

    #[test]
    fn the_leaf_limit_is_the_tiles_entry_limit() {
        assert_eq!(MAX_LEAF_BYTES, usize::from(u16::MAX));
        assert_eq!(check_leaf_len(MAX_LEAF_BYTES), Ok(()));
        let e = check_leaf_len(MAX_LEAF_BYTES + 1).unwrap_err();
        assert_eq!(e, LeafTooLarge { size: 65_536 });
        let m = e.to_string();
        assert!(
            m.contains("65536 bytes") && m.contains("at most 65535"),
            "{m}"
        );
        assert!(m.contains("tlog-tiles"), "{m}");
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

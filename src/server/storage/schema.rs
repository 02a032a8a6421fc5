//! The whole on-disk key schema of the log, in one place.
//!
//! Every table is a RocksDB column family. Integers in keys are big-endian so that RocksDB's
//! bytewise key order equals numeric order (tested below); a range scan over `entries` is a scan
//! in log order. Values are raw bytes; no table stores anything derived from another table's
//! encoding, so each can be checked or rebuilt from `entries`.

/// `entries`: index (u64 BE) → leaf data (an encoded `LogEntry`), exactly as hashed.
pub const ENTRIES: &str = "entries";
/// `hashes`: stored-hash index (u64 BE, Go sumdb `StoredHashIndex` numbering) → 32-byte hash.
/// Holds the hash of every complete subtree of the tree; any root or proof is computed from it.
pub const HASHES: &str = "hashes";
/// `leaf_index`: leaf hash (32 bytes) → index (u64 BE). Inclusion proofs by leaf hash.
pub const LEAF_INDEX: &str = "leaf_index";
/// `dedup`: deduplication key (32 bytes, [`crate::entry::dedup_key`]) → index (u64 BE).
pub const DEDUP: &str = "dedup";
/// `checkpoints`: tree size (u64 BE) → signed note text, one for every checkpoint the log signed.
/// The last key is the latest checkpoint; it is written in the same batch as the entries it covers.
pub const CHECKPOINTS: &str = "checkpoints";
/// `meta`: small named values, keys below.
pub const META: &str = "meta";
/// `search`: `prefix ‖ index (u64 BE)` → empty, where the prefix is a [`crate::server::search::Query`]'s
/// tag and term. Written in the same batch as the entry; rebuilt from `entries` by `reindex`.
pub const SEARCH: &str = "search";

/// Every column family, in the order they are opened.
pub const COLUMN_FAMILIES: [&str; 7] = [
    ENTRIES,
    HASHES,
    LEAF_INDEX,
    DEDUP,
    CHECKPOINTS,
    META,
    SEARCH,
];

/// `meta` key: the schema version, so that a future layout change is detected at open.
pub const META_SCHEMA_VERSION: &[u8] = b"schema_version";
/// `meta` key: the log's origin line, fixed on first start.
pub const META_ORIGIN: &[u8] = b"origin";
/// `meta` key: the C2SP verifier key of the log, fixed on first start.
pub const META_VERIFIER_KEY: &[u8] = b"verifier_key";

/// The schema version this code writes and reads.
pub const SCHEMA_VERSION: u64 = 1;

/// Encodes an index, tree size or stored-hash index as a key.
pub fn u64_key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// Decodes a key or value written by [`u64_key`]; `None` if it is not 8 bytes.
pub fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_order_is_numeric_order() {
        let ns = [
            0u64,
            1,
            255,
            256,
            65_535,
            65_536,
            1 << 32,
            u64::MAX - 1,
            u64::MAX,
        ];
        for w in ns.windows(2) {
            assert!(u64_key(w[0]) < u64_key(w[1]), "{} vs {}", w[0], w[1]);
        }
    }

    #[test]
    fn u64_round_trips() {
        for n in [0u64, 7, u64::MAX] {
            assert_eq!(decode_u64(&u64_key(n)), Some(n));
        }
        assert_eq!(decode_u64(&[1, 2, 3]), None);
    }
}

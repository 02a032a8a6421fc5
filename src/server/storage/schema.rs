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
/// `cosigned`: tree size (u64 BE) → the log's signed note for that size with the witness
/// cosignatures gathered for it (verified before they are stored), for logs run with a witness
/// policy. Written by [`crate::server::witnessing`], never by the sequencer's batches.
pub const COSIGNED: &str = "cosigned";
/// `meta`: small named values, keys below.
pub const META: &str = "meta";
/// `search`: `tag ‖ term ‖ index (u64 BE)` → empty; the key codec is [`search_prefix`] and
/// [`search_key`]. Written in the same batch as the entry; rebuilt from `entries` by `reindex`.
pub const SEARCH: &str = "search";

/// Every column family, in the order they are opened.
pub const COLUMN_FAMILIES: [&str; 8] = [
    ENTRIES,
    HASHES,
    LEAF_INDEX,
    DEDUP,
    CHECKPOINTS,
    META,
    SEARCH,
    COSIGNED,
];

/// `meta` key: the schema version, so that a future layout change is detected at open.
pub const META_SCHEMA_VERSION: &[u8] = b"schema_version";
/// `meta` key: the log's origin line, fixed on first start.
pub const META_ORIGIN: &[u8] = b"origin";
/// `meta` key: the C2SP verifier key of the log, fixed on first start.
pub const META_VERIFIER_KEY: &[u8] = b"verifier_key";

/// `meta` key: this database's id as a holder of a bucket's sequencing lease
/// ([`crate::server::lease`]), created on first use.
pub const META_LEASE_HOLDER: &[u8] = b"lease_holder";

/// `meta` key prefix: `witness_size/<witness vkey>` → the size (u64 BE) of the latest
/// checkpoint that witness cosigned, as far as the log knows.
pub const META_WITNESS_SIZE_PREFIX: &[u8] = b"witness_size/";

/// The `meta` key of a witness's cosigned size.
pub fn witness_size_key(vkey: &str) -> Vec<u8> {
    [META_WITNESS_SIZE_PREFIX, vkey.as_bytes()].concat()
}

/// The schema version this code writes and reads (column families added later, such as
/// `cosigned`, are created on open and need no new version).
pub const SCHEMA_VERSION: u64 = 1;

/// Encodes an index, tree size or stored-hash index as a key.
pub fn u64_key(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// Decodes a key or value written by [`u64_key`]; `None` if it is not 8 bytes.
pub fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// What a search term is, as the first byte of its keys. Every tag is below 0xff, so
/// `[0xff]` bounds the whole `search` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SearchTag {
    Name = 1,
    NameVersion = 2,
    SubjectDigest = 3,
    FileDigest = 4,
    PublisherKey = 5,
    TrainedOn = 6,
}

/// The end (exclusive) of the `search` key space: above every tag.
pub const SEARCH_END: [u8; 1] = [0xff];

/// One field of a search term: text ends in a 0x00 byte (no name or version contains one), so
/// `org/m` is not a prefix of `org/m2`; a digest is fixed-length and needs no terminator.
#[derive(Clone, Copy, Debug)]
pub enum TermField<'a> {
    Text(&'a [u8]),
    Digest(&'a [u8; 32]),
}

/// The prefix shared by every `search` key of one term: `tag ‖ field ‖ field ‖ …`.
pub fn search_prefix(tag: SearchTag, fields: &[TermField<'_>]) -> Vec<u8> {
    let mut key = vec![tag as u8];
    for field in fields {
        match field {
            TermField::Text(t) => {
                key.extend_from_slice(t);
                key.push(0);
            }
            TermField::Digest(d) => key.extend_from_slice(&d[..]),
        }
    }
    key
}

/// The `search` key of entry `index` under a term's `prefix`: `prefix ‖ index (u64 BE)`, so a
/// term's entries are contiguous and in log order, and a page resumes with a seek to
/// `search_key(prefix, next_index)`.
pub fn search_key(prefix: &[u8], index: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 8);
    key.extend_from_slice(prefix);
    key.extend_from_slice(&u64_key(index));
    key
}

/// The entry index of a `search` key under `prefix`; `None` if the key is not under `prefix`
/// or does not end in 8 bytes of index.
pub fn search_key_index(prefix: &[u8], key: &[u8]) -> Option<u64> {
    decode_u64(key.strip_prefix(prefix)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_terms_do_not_prefix_each_other() {
        let name = |n: &str| search_prefix(SearchTag::Name, &[TermField::Text(n.as_bytes())]);
        assert!(!name("org/m2").starts_with(&name("org/m")));
        let nv = |v: &str| {
            search_prefix(
                SearchTag::NameVersion,
                &[TermField::Text(b"org/m"), TermField::Text(v.as_bytes())],
            )
        };
        assert!(!nv("10").starts_with(&nv("1")));
        assert!(name("org/m") < SEARCH_END.to_vec());
    }

    #[test]
    fn search_keys_order_by_index_and_round_trip() {
        let prefix = search_prefix(SearchTag::SubjectDigest, &[TermField::Digest(&[7; 32])]);
        assert_eq!(prefix.len(), 33);
        assert!(search_key(&prefix, 255) < search_key(&prefix, 256));
        assert_eq!(
            search_key_index(&prefix, &search_key(&prefix, 42)),
            Some(42)
        );
        assert_eq!(search_key_index(&prefix, &prefix), None);
        assert_eq!(search_key_index(&[9], &search_key(&prefix, 42)), None);
    }

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

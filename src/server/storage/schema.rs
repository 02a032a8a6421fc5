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
/// `cosigned`, are created on open and need no new version). Version 2 changed the `search`
/// key layout (length-prefixed text, [`search_prefix`]); a version-1 store is migrated by
/// `glasslog reindex` ([`crate::server::rebuild::reindex`]).
pub const SCHEMA_VERSION: u64 = 2;

/// The schema version whose `search` keys end text fields with 0x00, which a text containing
/// 0x00 made ambiguous. Such a store opens only for `glasslog reindex`.
pub const SCHEMA_VERSION_NUL_TERMINATED_SEARCH: u64 = 1;

/// `meta` key: present while `glasslog reindex` rewrites the `search` table. It is set in the
/// batch that clears the table and removed in the batch that sets [`SCHEMA_VERSION`], so a
/// store whose index is partly rewritten (a reindex killed halfway) is refused by the server
/// and finished by running reindex again.
pub const META_SEARCH_REBUILDING: &[u8] = b"search_rebuilding";

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

impl SearchTag {
    const ALL: [SearchTag; 6] = [
        SearchTag::Name,
        SearchTag::NameVersion,
        SearchTag::SubjectDigest,
        SearchTag::FileDigest,
        SearchTag::PublisherKey,
        SearchTag::TrainedOn,
    ];

    fn from_byte(b: u8) -> Option<SearchTag> {
        SearchTag::ALL.into_iter().find(|t| *t as u8 == b)
    }
}

/// The end (exclusive) of the `search` key space: above every tag.
pub const SEARCH_END: [u8; 1] = [0xff];

/// One search term, as the index stores it: a tag and that tag's fields. Each tag has exactly
/// one layout, so the encoding of a term ([`search_prefix`]) is never a prefix of another
/// term's: text fields carry their length, digests are fixed-length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SearchTerm<'a> {
    Name(&'a [u8]),
    NameVersion { name: &'a [u8], version: &'a [u8] },
    SubjectDigest(&'a [u8; 32]),
    FileDigest(&'a [u8; 32]),
    PublisherKey(&'a [u8; 32]),
    TrainedOn(&'a [u8; 32]),
}

impl SearchTerm<'_> {
    fn tag(&self) -> SearchTag {
        match self {
            SearchTerm::Name(_) => SearchTag::Name,
            SearchTerm::NameVersion { .. } => SearchTag::NameVersion,
            SearchTerm::SubjectDigest(_) => SearchTag::SubjectDigest,
            SearchTerm::FileDigest(_) => SearchTag::FileDigest,
            SearchTerm::PublisherKey(_) => SearchTag::PublisherKey,
            SearchTerm::TrainedOn(_) => SearchTag::TrainedOn,
        }
    }
}

/// The prefix shared by every `search` key of one term: `tag ‖ field ‖ field ‖ …`, where a
/// text field is `length (u32 BE) ‖ bytes` and a digest its 32 bytes. Any bytes may occur in a
/// text (0x00 included): the length, not a terminator, ends it, so distinct terms have
/// prefixes of which neither starts the other (`org/m` vs `org/m2`, `2.0` vs `2.0\0`).
///
/// # Panics
/// If a text field is 4 GiB or longer; request and leaf limits keep every text far below.
pub fn search_prefix(term: &SearchTerm<'_>) -> Vec<u8> {
    fn text(key: &mut Vec<u8>, t: &[u8]) {
        let len = u32::try_from(t.len()).expect("a search text is shorter than 4 GiB");
        key.extend_from_slice(&len.to_be_bytes());
        key.extend_from_slice(t);
    }
    let mut key = vec![term.tag() as u8];
    match term {
        SearchTerm::Name(name) => text(&mut key, name),
        SearchTerm::NameVersion { name, version } => {
            text(&mut key, name);
            text(&mut key, version);
        }
        SearchTerm::SubjectDigest(d)
        | SearchTerm::FileDigest(d)
        | SearchTerm::PublisherKey(d)
        | SearchTerm::TrainedOn(d) => key.extend_from_slice(&d[..]),
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

/// A whole `search` key read back: its term and entry index; `None` for bytes that
/// [`search_key`] of a [`search_prefix`] cannot have produced. The inverse of the two.
pub fn decode_search_key(key: &[u8]) -> Option<(SearchTerm<'_>, u64)> {
    fn text(rest: &[u8]) -> Option<(&[u8], &[u8])> {
        let (len, rest) = rest.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_be_bytes(*len)).ok()?;
        (rest.len() >= len).then(|| rest.split_at(len))
    }
    fn digest(rest: &[u8]) -> Option<(&[u8; 32], &[u8])> {
        rest.split_first_chunk::<32>()
    }
    let (tag, rest) = key.split_first()?;
    let (term, rest) = match SearchTag::from_byte(*tag)? {
        SearchTag::Name => text(rest).map(|(n, r)| (SearchTerm::Name(n), r))?,
        SearchTag::NameVersion => {
            let (name, rest) = text(rest)?;
            let (version, rest) = text(rest)?;
            (SearchTerm::NameVersion { name, version }, rest)
        }
        SearchTag::SubjectDigest => digest(rest).map(|(d, r)| (SearchTerm::SubjectDigest(d), r))?,
        SearchTag::FileDigest => digest(rest).map(|(d, r)| (SearchTerm::FileDigest(d), r))?,
        SearchTag::PublisherKey => digest(rest).map(|(d, r)| (SearchTerm::PublisherKey(d), r))?,
        SearchTag::TrainedOn => digest(rest).map(|(d, r)| (SearchTerm::TrainedOn(d), r))?,
    };
    Some((term, decode_u64(rest)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Texts chosen to break a terminator or a length: empty, NUL and 0xff bytes, a text that
    /// is another plus a NUL, texts whose bytes look like a length prefix or an index, long ones.
    fn adversarial_texts() -> Vec<Vec<u8>> {
        let mut texts: Vec<Vec<u8>> = [
            &b""[..],
            b"\0",
            b"\0\0",
            b"2.0",
            b"2.0\0",
            b"2.0\0\0",
            b"\x002.0",
            b"org/m",
            b"org/m2",
            b"org/m\0",
            b"\xff",
            b"\x00\x00\x00\x03abc",
            &[0, 0, 0, 0, 0, 0, 0, 7],
            &[0xff; 12],
        ]
        .iter()
        .map(|t| t.to_vec())
        .collect();
        // A little generator (xorshift64) for short texts over a tiny alphabet, where
        // collisions and prefixes are likeliest.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..300 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 7) as usize;
            texts.push(
                (0..len)
                    .map(|i| [0u8, 1, b'2', b'.', 0xff][((x >> (8 + 3 * i)) % 5) as usize])
                    .collect(),
            );
        }
        texts.push(vec![b'v'; 70_000]);
        texts.sort();
        texts.dedup();
        texts
    }

    fn terms(texts: &[Vec<u8>]) -> Vec<SearchTerm<'_>> {
        const DIGESTS: [[u8; 32]; 3] = [[0; 32], [7; 32], [0xff; 32]];
        let mut terms = Vec::new();
        for a in texts.iter().take(40) {
            terms.push(SearchTerm::Name(a));
            for b in texts.iter().take(40) {
                terms.push(SearchTerm::NameVersion {
                    name: a,
                    version: b,
                });
            }
        }
        terms.extend(texts.iter().skip(40).map(|t| SearchTerm::Name(t)));
        terms.extend(texts.iter().skip(40).map(|t| SearchTerm::NameVersion {
            name: b"org/m",
            version: t,
        }));
        for d in &DIGESTS {
            terms.extend([
                SearchTerm::SubjectDigest(d),
                SearchTerm::FileDigest(d),
                SearchTerm::PublisherKey(d),
                SearchTerm::TrainedOn(d),
            ]);
        }
        terms
    }

    #[test]
    fn distinct_terms_never_prefix_each_other() {
        let texts = adversarial_texts();
        let mut prefixes: Vec<Vec<u8>> = terms(&texts).iter().map(search_prefix).collect();
        let count = prefixes.len();
        prefixes.sort();
        prefixes.dedup();
        assert_eq!(prefixes.len(), count, "two terms share a prefix");
        // Sorted, a prefix of another prefix would sort right before one it starts.
        for w in prefixes.windows(2) {
            assert!(!w[1].starts_with(&w[0]), "{:?} starts {:?}", w[0], w[1]);
        }
        assert!(prefixes.iter().all(|p| p[..] < SEARCH_END[..]));
    }

    #[test]
    fn keys_round_trip_and_a_term_scan_sees_only_its_own_keys() {
        let texts = adversarial_texts();
        let terms = terms(&texts);
        for (i, term) in terms.iter().enumerate() {
            let prefix = search_prefix(term);
            for index in [0, 1, 255, i as u64, u64::MAX] {
                let key = search_key(&prefix, index);
                assert_eq!(decode_search_key(&key), Some((*term, index)));
                assert_eq!(search_key_index(&prefix, &key), Some(index));
            }
        }
        // The attack of schema version 1: "2.0" must not see the keys of "2.0\0".
        let victim = search_prefix(&SearchTerm::NameVersion {
            name: b"org/m",
            version: b"2.0",
        });
        let attacker = search_prefix(&SearchTerm::NameVersion {
            name: b"org/m",
            version: b"2.0\0",
        });
        assert!(!search_key(&attacker, 9).starts_with(&victim));
    }

    #[test]
    fn a_term_keys_are_contiguous_and_in_log_order() {
        let prefix = search_prefix(&SearchTerm::Name(b"org/m"));
        let other = search_prefix(&SearchTerm::Name(b"org/m\0"));
        let mut keys: Vec<Vec<u8>> = [3u64, 256, 0, 255]
            .iter()
            .flat_map(|&i| [search_key(&prefix, i), search_key(&other, i)])
            .collect();
        keys.sort();
        let ours: Vec<u64> = keys
            .iter()
            .filter_map(|k| search_key_index(&prefix, k))
            .collect();
        assert_eq!(ours, [0, 3, 255, 256]);
        let first = keys.iter().position(|k| k.starts_with(&prefix)).unwrap();
        assert!(keys[first..first + 4]
            .iter()
            .all(|k| k.starts_with(&prefix)));
    }

    #[test]
    fn malformed_keys_do_not_decode() {
        let prefix = search_prefix(&SearchTerm::NameVersion {
            name: b"a",
            version: b"b",
        });
        let key = search_key(&prefix, 5);
        for bad in [
            &[][..],
            &[0u8][..],
            &[0xff, 0, 0, 0, 0, 0, 0, 0, 0][..],
            &key[..key.len() - 1],
            &[&key[..], &[0][..]].concat(),
            &prefix,
            &[1, 0, 0, 0, 9, b'a', 0, 0, 0, 0, 0, 0, 0, 0][..],
            &[3; 40][..],
        ] {
            assert_eq!(decode_search_key(bad), None, "{bad:?}");
        }
        assert_eq!(search_key_index(&[9], &key), None);
        assert_eq!(search_key_index(&prefix, &prefix), None);
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

//! What the sequencer writes beside a leaf, recomputed from the leaf alone: its deduplication
//! key and its search prefixes. [`reindex`] rebuilds the search index with it (and migrates a
//! store's search layout) and `restore` rebuilds whole databases; both must derive what
//! admission derives, so they share this.
//!
//! It does not judge the entry: a restored log holds what was logged, including entries that
//! the operator's configuration of the time admitted (extra predicate types, say), and entries
//! that rules added since then refuse (a version holding a NUL, logged before such versions
//! were refused): those are indexed under their publisher keys only, and said so.

use std::collections::HashMap;

use crate::admission::dsse::Envelope;
use crate::admission::keys::{KeyId, PublicKey};
use crate::admission::logged_declaration;
use crate::entry::{decode_leaf, dedup_key};
use crate::server::search::index_prefixes;
use crate::server::storage::schema::{META_SCHEMA_VERSION, META_SEARCH_REBUILDING, SCHEMA_VERSION};
use crate::server::storage::{schema, StorageError, Store};

/// The keys a leaf is stored under besides its index and leaf hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafKeys {
    /// The `dedup` key ([`crate::entry::dedup_key`]).
    pub dedup_key: [u8; 32],
    /// The `search` prefixes ([`index_prefixes`]).
    pub search_prefixes: Vec<Vec<u8>>,
    /// Why the leaf, a statement of a declaration type, is indexed under its publisher keys
    /// only: today's declaration rules refuse it (the reason is admission's). `None` for every
    /// entry those rules admit.
    pub keys_only: Option<String>,
}

/// Key ids of logged PEM keys, remembered: a log has far fewer publishers than entries, and
/// parsing a key (an Ed25519 point decompression) costs more than the rest of a leaf.
#[derive(Default)]
pub struct KeyIds(HashMap<String, KeyId>);

impl KeyIds {
    /// Most keys remembered; past it the map starts over (bounded memory for any log).
    const MAX: usize = 100_000;

    fn of(&mut self, pem: &str) -> Result<KeyId, String> {
        if let Some(id) = self.0.get(pem) {
            return Ok(*id);
        }
        let id = PublicKey::from_pem(pem)
            .map_err(|e| format!("public key: {e}"))?
            .key_id();
        if self.0.len() >= Self::MAX {
            self.0.clear();
        }
        self.0.insert(pem.to_string(), id);
        Ok(id)
    }
}

/// Recomputes a logged leaf's [`LeafKeys`].
///
/// # Errors
/// A leaf that does not decode: not a `LogEntry`, an unreadable key, an envelope or a
/// declaration statement that does not parse.
pub fn leaf_keys(leaf: &[u8], keys: &mut KeyIds) -> Result<LeafKeys, String> {
    let entry = decode_leaf(leaf).map_err(|e| format!("leaf: {e}"))?;
    let key_ids = entry
        .public_keys
        .iter()
        .map(|pem| keys.of(pem))
        .collect::<Result<Vec<KeyId>, _>>()?;
    if key_ids.windows(2).any(|w| w[0] >= w[1]) {
        return Err("the logged public keys are not sorted by key id".into());
    }
    let envelope = Envelope::parse(&entry.envelope).map_err(|e| format!("envelope: {e}"))?;
    // The leaf and its envelope decoded above, so an error here is the statement's.
    let (declaration, keys_only) = match logged_declaration(leaf) {
        Ok(declaration) => (declaration, None),
        Err(why) => (None, Some(why)),
    };
    Ok(LeafKeys {
        dedup_key: dedup_key(&envelope.payload_type, &envelope.payload, &key_ids),
        search_prefixes: index_prefixes(declaration.as_ref(), &key_ids),
        keys_only,
    })
}

/// Errors of [`reindex`].
#[derive(Debug, thiserror::Error)]
pub enum ReindexError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A logged leaf that does not decode ([`leaf_keys`]): the store is damaged.
    #[error("entry {index}: {why}")]
    Entry { index: u64, why: String },
}

/// What [`reindex`] tells its caller as it goes.
#[derive(Debug, PartialEq, Eq)]
pub enum ReindexEvent<'a> {
    /// `done` of `size` entries are indexed and committed.
    Progress { done: u64, size: u64 },
    /// Entry `index` is indexed under its publisher keys only ([`LeafKeys::keys_only`]).
    KeysOnly { index: u64, why: &'a str },
}

/// What a [`reindex`] wrote.
#[derive(Debug, PartialEq, Eq)]
pub struct Reindexed {
    /// Entries indexed: the size of the latest checkpoint.
    pub entries: u64,
    /// Index keys written.
    pub index_keys: u64,
}

/// Rewrites the `search` table from the entries of the latest checkpoint, in the layout of
/// [`SCHEMA_VERSION`], and sets that version; `chunk` entries per batch. The store must be
/// opened with [`Store::open_for_reindex`] and the server stopped (RocksDB's lock refuses a
/// second opener).
///
/// Crash-safe in three steps: (1) one batch clears the table and sets
/// [`META_SEARCH_REBUILDING`]; (2) the entries' keys, a batch per chunk; (3) one batch removes
/// the marker and sets [`SCHEMA_VERSION`]. Killed before (1) commits, the store is as it was;
/// after, it holds the marker until (3), so [`Store::open`] refuses it
/// ([`StorageError::ReindexUnfinished`]) and a new run starts over from (1). Reads every
/// entry once.
///
/// # Errors
/// Storage errors, or a leaf that does not decode (nothing is then marked finished).
pub fn reindex(
    store: &Store,
    chunk: u64,
    mut events: impl FnMut(ReindexEvent<'_>),
) -> Result<Reindexed, ReindexError> {
    let size = store.latest_checkpoint()?.map_or(0, |c| c.size);
    let mut clear = store.batch();
    clear.clear_search();
    clear.put_meta(META_SEARCH_REBUILDING, b"");
    store.commit(clear)?;
    let mut index_keys = 0u64;
    let mut keys = KeyIds::default();
    let mut start = 0;
    while start < size {
        let end = start.saturating_add(chunk.max(1)).min(size);
        let mut batch = store.batch();
        for (index, leaf) in store.entries(start, end, usize::MAX)? {
            let derived =
                leaf_keys(&leaf, &mut keys).map_err(|why| ReindexError::Entry { index, why })?;
            if let Some(why) = &derived.keys_only {
                events(ReindexEvent::KeysOnly { index, why });
            }
            for p in &derived.search_prefixes {
                batch.put_search(p, index);
            }
            index_keys += derived.search_prefixes.len() as u64;
        }
        store.commit(batch)?;
        start = end;
        events(ReindexEvent::Progress { done: end, size });
    }
    let mut finish = store.batch();
    finish.delete_meta(META_SEARCH_REBUILDING);
    finish.put_meta(META_SCHEMA_VERSION, &schema::u64_key(SCHEMA_VERSION));
    store.commit(finish)?;
    Ok(Reindexed {
        entries: size,
        index_keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::declaration::{MODEL_RELEASE, PAYLOAD_TYPE};
    use crate::admission::keys::{KeyType, PrivateKey};
    use crate::entry::PendingEntry;
    use crate::server::search::Query;
    use crate::tlog::merkle::Hash;

    const MODEL: &[u8] = include_bytes!("../../tests/data/declarations/model-release.json");

    /// The example model release at `version`, signed by `key`, as the log writes its leaf.
    fn leaf(key: &PrivateKey, version: &str) -> Vec<u8> {
        let mut st: serde_json::Value = serde_json::from_slice(MODEL).unwrap();
        st["predicate"]["version"] = version.into();
        assert_eq!(st["predicateType"], MODEL_RELEASE);
        let payload = serde_json::to_vec(&st).unwrap();
        PendingEntry {
            envelope: Envelope::sign(PAYLOAD_TYPE, &payload, &[key]).to_json(),
            public_keys: vec![key.public_key().to_pem()],
            dedup_key: [0; 32],
            search_prefixes: Vec::new(),
        }
        .encode_leaf(0)
    }

    /// A store of `leaves` and a checkpoint of them, with no search keys.
    fn store_of(dir: &std::path::Path, leaves: &[Vec<u8>]) -> Store {
        let store = Store::open(dir).unwrap();
        let mut b = store.batch();
        for (i, l) in leaves.iter().enumerate() {
            b.put_entry(i as u64, l, &Hash([i as u8; 32]), &[i as u8; 32]);
        }
        b.put_checkpoint(leaves.len() as u64, "note");
        store.commit(b).unwrap();
        store
    }

    fn found(store: &Store, q: Query) -> Vec<u64> {
        store.search(&q.prefix(), 0, u64::MAX, 100).unwrap()
    }

    #[test]
    fn a_declaration_todays_rules_refuse_is_indexed_by_its_keys_only() {
        let key = PrivateKey::generate(KeyType::Ed25519);
        let good = leaf_keys(&leaf(&key, "2.0"), &mut KeyIds::default()).unwrap();
        // Key, name, name@version, subject, then the manifest's files and training data.
        assert!(good.search_prefixes.len() > 4);
        assert_eq!(good.keys_only, None);
        let nul = leaf_keys(&leaf(&key, "2.0\u{0}"), &mut KeyIds::default()).unwrap();
        assert_eq!(
            nul.search_prefixes,
            [Query::PublisherKey(key.public_key().key_id()).prefix()]
        );
        let why = nul.keys_only.unwrap();
        assert!(
            why.contains("$.predicate.version: contains U+0000"),
            "{why}"
        );
    }

    #[test]
    fn a_reindex_killed_halfway_is_refused_then_finished_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate(KeyType::Ed25519);
        let leaves: Vec<Vec<u8>> = ["1", "2.0\u{0}", "2.0", "3"]
            .iter()
            .map(|v| leaf(&key, v))
            .collect();
        let store = store_of(dir.path(), &leaves);
        let name = || Query::Name("example-org/tiny-chat".into());
        let v2 = || Query::NameVersion {
            name: "example-org/tiny-chat".into(),
            version: "2.0".into(),
        };

        // Killed after the first chunk: every later commit fails, as if the process died.
        let mut events = Vec::new();
        let err = reindex(&store, 1, |e| {
            events.push(format!("{e:?}"));
            store.inject_commit_failures(true);
        });
        assert!(matches!(
            err,
            Err(ReindexError::Storage(StorageError::Injected))
        ));
        // Chunk 1 committed; chunk 2 (the NUL version, said so) did not.
        assert_eq!(events[0], "Progress { done: 1, size: 4 }");
        assert!(events[1].starts_with("KeysOnly { index: 1"), "{events:?}");
        assert_eq!(events.len(), 2);
        assert_eq!(found(&store, name()), [0]);
        drop(store);
        assert!(matches!(
            Store::open(dir.path()),
            Err(StorageError::ReindexUnfinished)
        ));

        let store = Store::open_for_reindex(dir.path()).unwrap();
        let mut keys_only = Vec::new();
        let done = reindex(&store, 3, |e| {
            if let ReindexEvent::KeysOnly { index, .. } = e {
                keys_only.push(index);
            }
        })
        .unwrap();
        assert_eq!(done.entries, 4);
        let per_entry = leaf_keys(&leaves[0], &mut KeyIds::default())
            .unwrap()
            .search_prefixes
            .len() as u64;
        assert_eq!(done.index_keys, 3 * per_entry + 1);
        assert_eq!(keys_only, [1]);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(found(&store, name()), [0, 2, 3]);
        assert_eq!(found(&store, v2()), [2]);
        assert_eq!(
            found(&store, Query::PublisherKey(key.public_key().key_id())),
            [0, 1, 2, 3]
        );
    }
}

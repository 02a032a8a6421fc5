//! The log's RocksDB store.
//!
//! # Durability contract
//!
//! - [`Store::commit`] writes one [`CommitBatch`] atomically and returns only after RocksDB's
//!   write-ahead log is synced to disk: when it returns `Ok`, everything in the batch survives a
//!   crash (including power loss, on a disk that honours fsync); when it returns `Err`, the caller
//!   no longer knows what is on disk and must stop writing (the sequencer treats it as fatal).
//! - A batch is all or nothing after a crash: RocksDB recovers a WAL record whole or not at all.
//! - Entries, hashes and checkpoints are written once and never changed. A reader that only asks
//!   for indexes below the size of a checkpoint it got from the sequencer therefore needs no
//!   snapshot: what it reads was durable before that checkpoint was published.
//!
//! This module knows nothing of gRPC, signing or the sequencer; the key schema is in [`schema`].

pub mod schema;
mod upper_hashes;

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Direction,
    IteratorMode, Options, WriteBatch, WriteBufferManager, WriteOptions, DB,
};

use crate::tlog::checkpoint::Checkpoint;
use crate::tlog::merkle::{Hash, HashReader};
use schema::*;
use upper_hashes::UpperHashes;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// RocksDB failed; the message is RocksDB's.
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    /// A value on disk is not what this code wrote; the store must not be used.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// The store was written by another schema version.
    #[error("store schema version {found} is not the version {expected} this glasslog reads")]
    SchemaVersion { found: u64, expected: u64 },
    /// The store's search index has the version-1 layout, whose keys a NUL in a version made
    /// ambiguous; `glasslog reindex` rewrites it ([`Store::open_for_reindex`]).
    #[error(
        "store schema version {found} has a search index layout this glasslog no longer reads; \
         stop the server and run `glasslog reindex` on this data directory to rewrite the index \
         in version {expected}"
    )]
    NeedsReindex { found: u64, expected: u64 },
    /// A `glasslog reindex` of the store was interrupted: the search index is incomplete.
    #[error(
        "a `glasslog reindex` of this store did not finish, so its search index is incomplete; \
         run `glasslog reindex` on this data directory again"
    )]
    ReindexUnfinished,
    /// A commit failed by a fault injected in a test.
    #[cfg(any(test, feature = "fault-injection"))]
    #[error("injected commit failure")]
    Injected,
}

/// One signed checkpoint as stored: its tree size and its signed note text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub note: String,
}

impl StoredCheckpoint {
    /// The checkpoint the note's body states; it must be of the stored size.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] for a note that does not parse or states another size.
    pub fn checkpoint(&self) -> Result<Checkpoint, StorageError> {
        let corrupt =
            || StorageError::Corrupt(format!("stored checkpoint {} does not parse", self.size));
        let (body, _signatures) = self.note.split_once("\n\n").ok_or_else(corrupt)?;
        let checkpoint = Checkpoint::parse_body(&format!("{body}\n")).map_err(|_| corrupt())?;
        if checkpoint.size != self.size {
            return Err(corrupt());
        }
        Ok(checkpoint)
    }
}

/// A page of search results ([`Store::search_page`]).
#[derive(Debug, Default)]
pub struct SearchPage {
    /// `(index, leaf data)` in log order.
    pub entries: Vec<(u64, Vec<u8>)>,
    /// Where the next page starts; `None` if this is the last.
    pub next: Option<u64>,
}

/// The log's RocksDB database.
pub struct Store {
    db: DB,
    /// Copies of the upper levels' stored hashes, which every proof reads.
    upper_hashes: UpperHashes,
    /// Makes the next commits fail, to test the sequencer's fatal path.
    #[cfg(any(test, feature = "fault-injection"))]
    fail_commits: std::sync::atomic::AtomicBool,
}

/// A set of writes that [`Store::commit`] makes durable atomically.
pub struct CommitBatch<'a> {
    store: &'a Store,
    batch: WriteBatch,
}

impl<'a> CommitBatch<'a> {
    /// Adds a new entry: its leaf data, and the two lookups that point at it.
    pub fn put_entry(
        &mut self,
        index: u64,
        leaf_data: &[u8],
        leaf_hash: &Hash,
        dedup_key: &[u8; 32],
    ) {
        let key = u64_key(index);
        self.batch.put_cf(self.store.cf(ENTRIES), key, leaf_data);
        self.batch
            .put_cf(self.store.cf(LEAF_INDEX), leaf_hash.0, key);
        self.batch.put_cf(self.store.cf(DEDUP), dedup_key, key);
    }

    /// Adds a stored hash (a complete subtree's hash) at its stored-hash index.
    pub fn put_hash(&mut self, stored_index: u64, hash: &Hash) {
        self.batch
            .put_cf(self.store.cf(HASHES), u64_key(stored_index), hash.0);
    }

    /// Indexes entry `index` under a search prefix ([`schema::search_prefix`]).
    pub fn put_search(&mut self, prefix: &[u8], index: u64) {
        self.batch
            .put_cf(self.store.cf(SEARCH), search_key(prefix, index), []);
    }

    /// Removes every search key (for `reindex`, which then rewrites them).
    pub fn clear_search(&mut self) {
        self.batch
            .delete_range_cf(self.store.cf(SEARCH), &[][..], &SEARCH_END[..]);
    }

    /// Removes the cosigned notes of sizes below `size`.
    pub fn delete_cosigned_below(&mut self, size: u64) {
        self.batch
            .delete_range_cf(self.store.cf(COSIGNED), u64_key(0), u64_key(size));
    }

    /// Adds a signed checkpoint of `size` leaves.
    pub fn put_checkpoint(&mut self, size: u64, note: &str) {
        self.batch
            .put_cf(self.store.cf(CHECKPOINTS), u64_key(size), note.as_bytes());
    }

    /// Sets the cosigned note of the checkpoint of `size` leaves.
    pub fn put_cosigned(&mut self, size: u64, note: &str) {
        self.batch
            .put_cf(self.store.cf(COSIGNED), u64_key(size), note.as_bytes());
    }

    /// Sets a `meta` value.
    pub fn put_meta(&mut self, key: &[u8], value: &[u8]) {
        self.batch.put_cf(self.store.cf(META), key, value);
    }

    /// Removes a `meta` value.
    pub fn delete_meta(&mut self, key: &[u8]) {
        self.batch.delete_cf(self.store.cf(META), key);
    }
}

/// How a [`Store`] uses memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// RocksDB's memory budget in bytes: its block cache, which the memtables are charged to
    /// (they may take up to half of it before RocksDB flushes them). What the store holds in
    /// memory stays under it however long the log grows; index and filter blocks are cached
    /// there too.
    pub cache_bytes: usize,
    /// How many of the upper tree levels' stored hashes are kept in memory besides RocksDB's
    /// cache, once read ([`Store::hashes`]): at most about 100 bytes each, the map's slack
    /// included.
    pub upper_hashes: usize,
}

impl StoreOptions {
    /// The default budget, 256 MiB: the upper levels of a tree of some millions of entries
    /// (their hashes are read by every proof) and the newest entries stay cached.
    pub const DEFAULT_CACHE_BYTES: usize = 256 << 20;
    /// The default number of upper-level hashes kept, 65,536 (at most 6.5 MiB): at 1,000,000
    /// entries, the levels of subtrees of 32 leaves and more, 15 of an inclusion proof's 20
    /// hashes.
    pub const DEFAULT_UPPER_HASHES: usize = 1 << 16;
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            cache_bytes: StoreOptions::DEFAULT_CACHE_BYTES,
            upper_hashes: StoreOptions::DEFAULT_UPPER_HASHES,
        }
    }
}

impl Store {
    /// Opens the store at `path`, creating it if missing. Opening reads no entries: its cost does
    /// not grow with the log (RocksDB replays only its own unflushed WAL).
    ///
    /// # Errors
    /// RocksDB errors; [`StorageError::NeedsReindex`] for a store of schema version 1,
    /// [`StorageError::ReindexUnfinished`] for one an interrupted reindex left,
    /// [`StorageError::SchemaVersion`] for any other version.
    pub fn open(path: &Path) -> Result<Store, StorageError> {
        Store::open_with(path, &StoreOptions::default())
    }

    /// [`Store::open`] with `options` (the server's: its memory budget).
    ///
    /// # Errors
    /// Those of [`Store::open`].
    pub fn open_with(path: &Path, options: &StoreOptions) -> Result<Store, StorageError> {
        let store = Store::open_db(path, options)?;
        if store.meta(META_SEARCH_REBUILDING)?.is_some() {
            return Err(StorageError::ReindexUnfinished);
        }
        match store.schema_version()? {
            None => {
                let mut b = store.batch();
                b.put_meta(META_SCHEMA_VERSION, &u64_key(SCHEMA_VERSION));
                store.commit(b)?;
            }
            Some(SCHEMA_VERSION) => {}
            Some(SCHEMA_VERSION_NUL_TERMINATED_SEARCH) => {
                return Err(StorageError::NeedsReindex {
                    found: SCHEMA_VERSION_NUL_TERMINATED_SEARCH,
                    expected: SCHEMA_VERSION,
                })
            }
            Some(found) => {
                return Err(StorageError::SchemaVersion {
                    found,
                    expected: SCHEMA_VERSION,
                })
            }
        }
        Ok(store)
    }

    /// Opens the store for `glasslog reindex`, which rewrites the search index and sets
    /// [`SCHEMA_VERSION`] ([`crate::server::rebuild::reindex`]): also a store of schema
    /// version 1 and one an interrupted reindex left. Nothing but a reindex may use it.
    ///
    /// # Errors
    /// RocksDB errors, or [`StorageError::SchemaVersion`] for a version neither 1 nor
    /// [`SCHEMA_VERSION`].
    pub fn open_for_reindex(path: &Path) -> Result<Store, StorageError> {
        let store = Store::open_db(path, &StoreOptions::default())?;
        match store.schema_version()? {
            None | Some(SCHEMA_VERSION_NUL_TERMINATED_SEARCH | SCHEMA_VERSION) => Ok(store),
            Some(found) => Err(StorageError::SchemaVersion {
                found,
                expected: SCHEMA_VERSION,
            }),
        }
    }

    fn open_db(path: &Path, options: &StoreOptions) -> Result<Store, StorageError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(2);
        opts.set_bytes_per_sync(1 << 20);
        // Bounds the WAL that an open after a crash replays, so that open time stays flat as the
        // log grows: past this, RocksDB flushes the memtables whose data the WAL holds.
        opts.set_max_total_wal_size(64 << 20);
        // Reuse WAL files that flushes made obsolete instead of creating new ones: writes then
        // land inside the file's existing length, so each commit's fdatasync has no inode size
        // to journal (docs/performance.md, "The commit's fdatasync"). WAL files become obsolete
        // one at a time, so one kept would do; two allow for a burst of flushes. Each is at most
        // about `max_total_wal_size` of disk.
        opts.set_recycle_log_file_num(2);
        // One budget for RocksDB's memory: the block cache, with the memtables charged to it (a
        // memtable's memory evicts cached blocks), so neither grows with the log.
        let cache = Cache::new_lru_cache(options.cache_bytes);
        opts.set_write_buffer_manager(&WriteBufferManager::new_write_buffer_manager_with_cache(
            options.cache_bytes / 2,
            false,
            cache.clone(),
        ));
        let cfs =
            COLUMN_FAMILIES.map(|name| ColumnFamilyDescriptor::new(name, cf_options(name, &cache)));
        let db = DB::open_cf_descriptors(&opts, path, cfs)?;
        Ok(Store {
            db,
            upper_hashes: UpperHashes::new(options.upper_hashes),
            #[cfg(any(test, feature = "fault-injection"))]
            fail_commits: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The stored schema version; `None` for a new store.
    fn schema_version(&self) -> Result<Option<u64>, StorageError> {
        self.meta(META_SCHEMA_VERSION)?
            .map(|v| {
                decode_u64(&v)
                    .ok_or_else(|| StorageError::Corrupt("schema version is not 8 bytes".into()))
            })
            .transpose()
    }

    fn cf(&self, name: &str) -> &ColumnFamily {
        // Every name in COLUMN_FAMILIES was opened in `open`; a miss is a bug in this module.
        self.db
            .cf_handle(name)
            .expect("column family opened in Store::open")
    }

    /// Starts an empty batch.
    pub fn batch(&self) -> CommitBatch<'_> {
        CommitBatch {
            store: self,
            batch: WriteBatch::default(),
        }
    }

    /// Writes `batch` atomically and syncs the WAL. See the module doc for the contract.
    ///
    /// # Errors
    /// Any RocksDB write or sync failure; the store's state on disk is then unknown.
    pub fn commit(&self, batch: CommitBatch<'_>) -> Result<(), StorageError> {
        #[cfg(any(test, feature = "fault-injection"))]
        if self.fail_commits.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StorageError::Injected);
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch.batch, &wo)?;
        Ok(())
    }

    /// Writes `batch` atomically to the WAL without waiting for it to be synced: it becomes
    /// durable with the next [`Store::commit`] (which syncs the whole WAL) or the next flush. For
    /// data whose loss in a crash costs nothing but a redo (witness cosignatures: the witnesses
    /// keep their own records and cosign again), so that it adds no fsync to the log's commits.
    ///
    /// # Errors
    /// Any RocksDB write failure.
    pub fn write_unsynced(&self, batch: CommitBatch<'_>) -> Result<(), StorageError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(false);
        self.db.write_opt(batch.batch, &wo)?;
        Ok(())
    }

    /// Writes every memtable to SST files, so that the next open replays no WAL. Called on a
    /// clean shutdown; after a crash the WAL replay is bounded by the WAL size limit instead.
    ///
    /// # Errors
    /// RocksDB flush errors (nothing is lost: the data is in the synced WAL).
    pub fn flush(&self) -> Result<(), StorageError> {
        let cfs: Vec<&ColumnFamily> = COLUMN_FAMILIES.iter().map(|name| self.cf(name)).collect();
        self.db
            .flush_cfs_opt(&cfs, &rocksdb::FlushOptions::default())?;
        Ok(())
    }

    /// Makes every later commit fail (test fault injection).
    #[cfg(any(test, feature = "fault-injection"))]
    pub fn inject_commit_failures(&self, fail: bool) {
        self.fail_commits
            .store(fail, std::sync::atomic::Ordering::SeqCst);
    }

    /// Reads a `meta` value.
    ///
    /// # Errors
    /// RocksDB read errors.
    pub fn meta(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get_cf(self.cf(META), key)?)
    }

    /// The leaf data at `index`, if that entry exists.
    ///
    /// # Errors
    /// RocksDB read errors.
    pub fn entry(&self, index: u64) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get_cf(self.cf(ENTRIES), u64_key(index))?)
    }

    /// The leaf data at `index`, which must exist: the caller took `index` from a published
    /// checkpoint or the sequencer, so a missing entry means the store is damaged.
    ///
    /// # Errors
    /// RocksDB read errors; [`StorageError::Corrupt`] if the entry is missing.
    pub fn logged_entry(&self, index: u64) -> Result<Vec<u8>, StorageError> {
        self.entry(index)?
            .ok_or_else(|| StorageError::Corrupt(format!("entry {index} is missing")))
    }

    /// Entries `[start, end)` in order, as many as fit in `max_bytes` of leaf data, but always
    /// the first one (if `start < end` and it exists), however large.
    ///
    /// # Errors
    /// RocksDB read errors; [`StorageError::Corrupt`] if an index in the range is missing.
    pub fn entries(
        &self,
        start: u64,
        end: u64,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StorageError> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let from = u64_key(start);
        let iter = self.db.iterator_cf(
            self.cf(ENTRIES),
            IteratorMode::From(&from, Direction::Forward),
        );
        for (expected, item) in (start..end).zip(iter) {
            let (k, v) = item?;
            if decode_u64(&k) != Some(expected) {
                return Err(StorageError::Corrupt(format!(
                    "entry {expected} is missing"
                )));
            }
            bytes += v.len();
            if bytes > max_bytes && !out.is_empty() {
                break;
            }
            out.push((expected, v.into_vec()));
        }
        Ok(out)
    }

    /// Indexes of entries under search `prefix`, from index `from` on and below `below`, in log
    /// order, at most `limit` of them. A key under `prefix` that does not end in an index (no
    /// key this code writes: [`schema`]'s terms never prefix each other) is not a match: it is
    /// skipped with a warning naming it, so that one bad key cannot fail every search of a term.
    ///
    /// # Errors
    /// RocksDB read errors.
    pub fn search(
        &self,
        prefix: &[u8],
        from: u64,
        below: u64,
        limit: usize,
    ) -> Result<Vec<u64>, StorageError> {
        let start = search_key(prefix, from);
        let iter = self.db.iterator_cf(
            self.cf(SEARCH),
            IteratorMode::From(&start, Direction::Forward),
        );
        let mut out = Vec::new();
        for item in iter {
            let (k, _) = item?;
            if !k.starts_with(prefix) || out.len() == limit {
                break;
            }
            let Some(index) = search_key_index(prefix, &k) else {
                tracing::warn!(
                    key = %hex::encode(&k),
                    prefix = %hex::encode(prefix),
                    "a search key under the prefix does not end in an index; not a match"
                );
                continue;
            };
            if index >= below {
                break;
            }
            out.push(index);
        }
        Ok(out)
    }

    /// One page of entries found under any of `prefixes` (one term, or several searched as
    /// one: the union, each index once), from index `from` on and below `below`, in log order:
    /// at most `page_size` entries, and no more than fit in `max_bytes` of leaf data (but always
    /// the first). `next` is the index the following page starts at, `None` on the last page.
    ///
    /// The gRPC Search and the web explorer both page through results with this, so they find
    /// the same entries.
    ///
    /// # Errors
    /// RocksDB read errors; [`StorageError::Corrupt`] if an indexed entry is missing.
    pub fn search_page(
        &self,
        prefixes: &[Vec<u8>],
        from: u64,
        below: u64,
        page_size: usize,
        max_bytes: usize,
    ) -> Result<SearchPage, StorageError> {
        // The page_size + 1 smallest indexes of the union are among the page_size + 1
        // smallest of each term: one more than the page tells whether another page follows.
        let mut indexes = Vec::new();
        for prefix in prefixes {
            indexes.extend(self.search(prefix, from, below, page_size + 1)?);
        }
        indexes.sort_unstable();
        indexes.dedup();
        let more = indexes.len() > page_size;
        indexes.truncate(page_size);
        let mut entries = Vec::with_capacity(indexes.len());
        let mut bytes = 0;
        for &index in &indexes {
            let leaf_data = self.logged_entry(index)?;
            bytes += leaf_data.len();
            if bytes > max_bytes && !entries.is_empty() {
                break;
            }
            entries.push((index, leaf_data));
        }
        let next = match entries.last() {
            Some((last, _)) if more || entries.len() < indexes.len() => Some(last + 1),
            _ => None,
        };
        Ok(SearchPage { entries, next })
    }

    /// The index of the entry whose leaf hash is `leaf_hash`.
    ///
    /// # Errors
    /// RocksDB read errors, or a corrupt value.
    pub fn index_of_leaf(&self, leaf_hash: &Hash) -> Result<Option<u64>, StorageError> {
        self.get_index(LEAF_INDEX, &leaf_hash.0)
    }

    /// The index of the entry logged under `dedup_key`.
    ///
    /// # Errors
    /// RocksDB read errors, or a corrupt value.
    pub fn index_of_dedup(&self, dedup_key: &[u8; 32]) -> Result<Option<u64>, StorageError> {
        self.get_index(DEDUP, dedup_key)
    }

    fn get_index(&self, cf: &str, key: &[u8]) -> Result<Option<u64>, StorageError> {
        match self.db.get_pinned_cf(self.cf(cf), key)? {
            None => Ok(None),
            Some(v) => decode_u64(&v)
                .map(Some)
                .ok_or_else(|| StorageError::Corrupt(format!("{cf} value is not an index"))),
        }
    }

    /// The latest checkpoint, or `None` for a store that has never committed one.
    ///
    /// # Errors
    /// RocksDB read errors, or a corrupt value.
    pub fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StorageError> {
        let mut iter = self.db.iterator_cf(self.cf(CHECKPOINTS), IteratorMode::End);
        iter.next()
            .transpose()?
            .map(|(k, v)| decode_checkpoint(&k, &v))
            .transpose()
    }

    /// The first stored checkpoint whose size is at least `size`.
    ///
    /// # Errors
    /// RocksDB read errors, or a corrupt value.
    pub fn checkpoint_at_or_after(
        &self,
        size: u64,
    ) -> Result<Option<StoredCheckpoint>, StorageError> {
        let from = u64_key(size);
        let mut iter = self.db.iterator_cf(
            self.cf(CHECKPOINTS),
            IteratorMode::From(&from, Direction::Forward),
        );
        iter.next()
            .transpose()?
            .map(|(k, v)| decode_checkpoint(&k, &v))
            .transpose()
    }

    /// The stored signed checkpoint of exactly `size` leaves, if the log signed one.
    ///
    /// # Errors
    /// RocksDB read errors, or a corrupt value.
    pub fn checkpoint(&self, size: u64) -> Result<Option<StoredCheckpoint>, StorageError> {
        let key = u64_key(size);
        self.db
            .get_cf(self.cf(CHECKPOINTS), key)?
            .map(|v| decode_checkpoint(&key, &v))
            .transpose()
    }

    /// The cosigned note of the checkpoint of `size` leaves, if any cosignature was stored.
    ///
    /// # Errors
    /// RocksDB read errors, or a corrupt value.
    pub fn cosigned(&self, size: u64) -> Result<Option<StoredCheckpoint>, StorageError> {
        let key = u64_key(size);
        self.db
            .get_cf(self.cf(COSIGNED), key)?
            .map(|v| decode_checkpoint(&key, &v))
            .transpose()
    }

    /// Up to `limit` cosigned notes, largest size first.
    ///
    /// # Errors
    /// RocksDB read errors, or a corrupt value.
    pub fn cosigned_latest_first(
        &self,
        limit: usize,
    ) -> Result<Vec<StoredCheckpoint>, StorageError> {
        self.db
            .iterator_cf(self.cf(COSIGNED), IteratorMode::End)
            .take(limit)
            .map(|kv| {
                let (k, v) = kv?;
                decode_checkpoint(&k, &v)
            })
            .collect()
    }

    /// Reads stored hashes by stored-hash index; every one must exist. Those of the tree's upper
    /// levels come from memory once read ([`upper_hashes`]); the others in one RocksDB multi-get.
    ///
    /// # Errors
    /// RocksDB read errors; [`StorageError::Corrupt`] for a missing or malformed hash.
    pub fn hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StorageError> {
        let cached = self.upper_hashes.get(indexes);
        let missing: Vec<u64> = indexes
            .iter()
            .zip(&cached)
            .filter(|(_, c)| c.is_none())
            .map(|(&i, _)| i)
            .collect();
        if missing.is_empty() {
            return Ok(cached.into_iter().flatten().collect());
        }
        let read = self.read_hashes(&missing)?;
        self.upper_hashes
            .insert(missing.iter().copied().zip(read.iter().copied()));
        let mut read = read.into_iter();
        Ok(cached
            .into_iter()
            .filter_map(|c| c.or_else(|| read.next()))
            .collect())
    }

    /// [`Store::hashes`] from RocksDB alone.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, StorageError> {
        let keys: Vec<[u8; 8]> = indexes.iter().map(|&i| u64_key(i)).collect();
        let sorted = indexes.windows(2).all(|w| w[0] <= w[1]);
        let values = self
            .db
            .batched_multi_get_cf(self.cf(HASHES), keys.iter(), sorted);
        values
            .into_iter()
            .zip(indexes)
            .map(|(v, &i)| {
                let v =
                    v?.ok_or_else(|| StorageError::Corrupt(format!("stored hash {i} is missing")))?;
                let bytes: [u8; 32] = v.as_ref().try_into().map_err(|_| {
                    StorageError::Corrupt(format!("stored hash {i} is not 32 bytes"))
                })?;
                Ok(Hash(bytes))
            })
            .collect()
    }

    /// Writes a consistent copy of the database to the new directory `path` (a RocksDB
    /// checkpoint: memtables flushed, SST files hard-linked when `path` is on the same
    /// filesystem, copied otherwise, and a new MANIFEST). It holds exactly what the commits that
    /// returned before the call wrote, and each [`CommitBatch`] whole or not at all, so the
    /// copy's latest checkpoint covers every entry in it. Writers are not stopped.
    ///
    /// # Errors
    /// RocksDB errors, among them a `path` that already exists.
    pub fn checkpoint_to(&self, path: &Path) -> Result<(), StorageError> {
        rocksdb::checkpoint::Checkpoint::new(&self.db)?.create_checkpoint(path)?;
        Ok(())
    }

    /// Bytes the database occupies on disk (SST files and WAL), for the benchmark's report.
    pub fn disk_usage(path: &Path) -> u64 {
        fn walk(p: &Path) -> u64 {
            std::fs::read_dir(p)
                .map(|rd| {
                    rd.flatten()
                        .map(|e| match e.metadata() {
                            Ok(m) if m.is_dir() => walk(&e.path()),
                            Ok(m) => m.len(),
                            Err(_) => 0,
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        walk(path)
    }
}

/// Stored hashes are read through the tree math's [`HashReader`] interface.
impl HashReader for Store {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::tlog::Error> {
        self.hashes(indexes)
            .map_err(|e| tlog_tiles::tlog::Error::InvalidInput(e.to_string()))
    }
}

fn decode_checkpoint(k: &[u8], v: &[u8]) -> Result<StoredCheckpoint, StorageError> {
    let size = decode_u64(k)
        .ok_or_else(|| StorageError::Corrupt("checkpoint key is not a size".into()))?;
    let note = String::from_utf8(v.to_vec())
        .map_err(|_| StorageError::Corrupt(format!("checkpoint {size} is not UTF-8")))?;
    Ok(StoredCheckpoint { size, note })
}

/// Per-table options: point-lookup tables get bloom filters; entries are compressed.
fn cf_options(name: &str, cache: &Cache) -> Options {
    let mut table = BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_cache_index_and_filter_blocks(true);
    let mut opts = Options::default();
    match name {
        LEAF_INDEX | DEDUP => {
            table.set_bloom_filter(10.0, false);
            opts.set_compression_type(DBCompressionType::None);
        }
        HASHES => opts.set_compression_type(DBCompressionType::None),
        _ => opts.set_compression_type(DBCompressionType::Lz4),
    }
    opts.set_block_based_table_factory(&table);
    opts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(b: u8) -> Hash {
        Hash([b; 32])
    }

    #[test]
    fn commit_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.latest_checkpoint().unwrap(), None);
        let mut b = store.batch();
        for i in 0..3u64 {
            b.put_entry(i, &[i as u8; 10], &h(i as u8), &[i as u8 + 100; 32]);
            b.put_hash(i, &h(i as u8));
        }
        b.put_checkpoint(1, "one");
        b.put_checkpoint(3, "three");
        store.commit(b).unwrap();

        assert_eq!(store.entry(1).unwrap(), Some(vec![1; 10]));
        assert_eq!(store.entry(3).unwrap(), None);
        assert_eq!(store.entries(1, 10, 1 << 20).unwrap().len(), 2);
        assert_eq!(
            store.entries(0, 3, 25).unwrap().len(),
            2,
            "stops before max_bytes is exceeded"
        );
        assert_eq!(
            store.entries(0, 3, 1).unwrap().len(),
            1,
            "always returns the first entry"
        );
        assert_eq!(store.index_of_leaf(&h(2)).unwrap(), Some(2));
        assert_eq!(store.index_of_dedup(&[101; 32]).unwrap(), Some(1));
        assert_eq!(store.index_of_dedup(&[7; 32]).unwrap(), None);
        assert_eq!(store.hashes(&[2, 0]).unwrap(), vec![h(2), h(0)]);
        assert!(matches!(store.hashes(&[9]), Err(StorageError::Corrupt(_))));
        let latest = store.latest_checkpoint().unwrap().unwrap();
        assert_eq!((latest.size, latest.note.as_str()), (3, "three"));
        assert_eq!(store.checkpoint_at_or_after(2).unwrap().unwrap().size, 3);
        assert_eq!(store.checkpoint_at_or_after(4).unwrap(), None);
    }

    /// Hashes read again, in any order and mixed with ones not yet read, are those stored,
    /// whether they now come from memory or from RocksDB; a missing one is still an error.
    #[test]
    fn hashes_read_again_are_the_stored_ones() {
        use crate::tlog::merkle::{leaf_hash, stored_hash_count, MemoryTree};
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions {
            upper_hashes: 50,
            ..StoreOptions::default()
        };
        let store = Store::open_with(dir.path(), &options).unwrap();
        let mut tree = MemoryTree::new();
        for i in 0..1000u64 {
            tree.append(leaf_hash(&i.to_be_bytes())).unwrap();
        }
        let all: Vec<u64> = (0..stored_hash_count(1000)).collect();
        let want = tree.read_hashes(&all).unwrap();
        let mut b = store.batch();
        for (&i, h) in all.iter().zip(&want) {
            b.put_hash(i, h);
        }
        store.commit(b).unwrap();
        for round in 0..3 {
            for chunk in all.chunks(7) {
                let mut indexes = chunk.to_vec();
                indexes.reverse();
                indexes.push(all[(chunk[0] as usize * 31) % all.len()]);
                let got = store.hashes(&indexes).unwrap();
                for (&i, h) in indexes.iter().zip(got) {
                    assert_eq!(h, want[i as usize], "round {round}, stored index {i}");
                }
            }
        }
        let beyond = all.len() as u64;
        assert!(matches!(
            store.hashes(&[all[all.len() - 1], beyond]),
            Err(StorageError::Corrupt(_))
        ));
    }

    #[test]
    fn reopen_keeps_data_and_checks_schema() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let mut b = store.batch();
            b.put_checkpoint(0, "empty");
            store.commit(b).unwrap();
        }
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.latest_checkpoint().unwrap().unwrap().note, "empty");
            let mut b = store.batch();
            b.put_meta(META_SCHEMA_VERSION, &u64_key(99));
            store.commit(b).unwrap();
        }
        assert!(matches!(
            Store::open(dir.path()),
            Err(StorageError::SchemaVersion {
                found: 99,
                expected: SCHEMA_VERSION
            })
        ));
    }

    #[test]
    fn a_version_1_store_and_an_unfinished_reindex_open_only_for_reindex() {
        let dir = tempfile::tempdir().unwrap();
        let set_meta = |key: &[u8], value: Option<&[u8]>| {
            let store = Store::open_for_reindex(dir.path()).unwrap();
            let mut b = store.batch();
            match value {
                Some(v) => b.put_meta(key, v),
                None => b.delete_meta(key),
            }
            store.commit(b).unwrap();
        };
        drop(Store::open(dir.path()).unwrap());
        set_meta(META_SCHEMA_VERSION, Some(&u64_key(1)));
        let err = Store::open(dir.path()).err().unwrap();
        assert!(matches!(
            err,
            StorageError::NeedsReindex {
                found: 1,
                expected: 2
            }
        ));
        assert!(err.to_string().contains("glasslog reindex"), "{err}");

        set_meta(META_SCHEMA_VERSION, Some(&u64_key(SCHEMA_VERSION)));
        set_meta(META_SEARCH_REBUILDING, Some(b""));
        let err = Store::open(dir.path()).err().unwrap();
        assert!(matches!(err, StorageError::ReindexUnfinished));
        assert!(err.to_string().contains("glasslog reindex"), "{err}");

        set_meta(META_SEARCH_REBUILDING, None);
        drop(Store::open(dir.path()).unwrap());
        set_meta(META_SCHEMA_VERSION, Some(&u64_key(3)));
        assert!(matches!(
            Store::open_for_reindex(dir.path()).err().unwrap(),
            StorageError::SchemaVersion { found: 3, .. }
        ));
    }

    #[test]
    fn a_search_key_that_does_not_decode_is_no_match_and_no_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let prefix = search_prefix(&SearchTerm::NameVersion {
            name: b"org/m",
            version: b"2.0",
        });
        let mut b = store.batch();
        for index in [0, 2, 5] {
            b.put_search(&prefix, index);
        }
        // Keys under the prefix that end in 9 bytes or in 7: no index.
        b.put_search(&[&prefix[..], &[0]].concat(), 1);
        b.put_search(&[&prefix[..], &[0]].concat(), 3);
        b.batch
            .put_cf(store.cf(SEARCH), [&prefix[..], &[1; 7]].concat(), []);
        store.commit(b).unwrap();
        assert_eq!(store.search(&prefix, 0, 10, 10).unwrap(), [0, 2, 5]);
        assert_eq!(store.search(&prefix, 1, 10, 1).unwrap(), [2]);
        assert_eq!(store.search(&prefix, 0, 5, 10).unwrap(), [0, 2]);
    }

    #[test]
    fn injected_failure_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.inject_commit_failures(true);
        let mut b = store.batch();
        b.put_checkpoint(5, "x");
        assert!(store.commit(b).is_err());
        assert_eq!(store.latest_checkpoint().unwrap(), None);
    }
}

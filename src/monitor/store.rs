//! The monitor's on-disk store: per-name state, the identities of findings already reported,
//! and how far per-entry checks have been applied. A RocksDB database beside the state file.
//!
//! What is in it is [`super::rules`]' business (keys and records are defined there); this module
//! only reads, and writes transactions atomically. Reads go through a [`Tx`], whose writes stay
//! in memory until [`Store::commit`], so a run of entries whose checkpoint fails to verify leaves
//! nothing behind. Memory is bounded by one run's writes and RocksDB's block cache; the per-name
//! state itself grows on disk only.
//!
//! Invariant: `applied` (the log size up to which every entry's per-name checks were applied and
//! their findings recorded) is written in the same atomic, synced batch as the state those checks
//! produced. The store is committed before the state file is saved, so after a crash the store may
//! be ahead of the state file, never behind; entries below `applied` are then verified against the
//! tree again but not checked twice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rocksdb::{BlockBasedOptions, Cache, DBCompressionType, Options, WriteBatch, WriteOptions, DB};

use super::MonitorError;

/// Key of the `applied` size.
const APPLIED: &[u8] = b"M/applied";
/// Key of the verifier key of the log the store is about.
const LOG_KEY: &[u8] = b"M/log-key";
/// Key prefix of reported findings' identities.
const REPORTED: u8 = b'R';
/// RocksDB's block cache: what the monitor's store may hold in memory, besides its memtables.
const CACHE_BYTES: usize = 32 << 20;
/// Size of one memtable (RocksDB keeps up to two).
const WRITE_BUFFER_BYTES: usize = 8 << 20;

/// The store; see the module documentation.
pub struct Store {
    db: DB,
    path: PathBuf,
}

/// Reads through to the store, writes kept in memory until committed.
pub struct Tx<'a> {
    store: &'a Store,
    writes: HashMap<Vec<u8>, Vec<u8>>,
    applied: Option<u64>,
}

impl Store {
    /// Opens the store of the log with verifier key `log_key` at `path`, creating it if missing.
    /// RocksDB's lock file makes a second monitor on the same state fail here.
    ///
    /// # Errors
    /// [`MonitorError::Store`]; [`MonitorError::Mismatch`] for the store of another log.
    pub fn open(path: &Path, log_key: &str) -> Result<Store, MonitorError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_max_background_jobs(1);
        opts.set_compression_type(DBCompressionType::Lz4);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&Cache::new_lru_cache(CACHE_BYTES));
        // Most lookups are for names and digests seen for the first time: misses. Bloom filters
        // answer them without a search, in the table files and in the memtable (where, during a
        // catch-up, most records are: skip-list searches were a tenth of the monitor's CPU).
        table.set_bloom_filter(10.0, false);
        opts.set_block_based_table_factory(&table);
        opts.set_memtable_whole_key_filtering(true);
        opts.set_memtable_prefix_bloom_ratio(0.1);
        // A catch-up writes about four records per entry. Inserting into a memtable of 64 MiB
        // (RocksDB's default) cost twice as much per record as into one of 8 MiB, which is also
        // what the monitor's memory bound wants; smaller ones flush too often to gain more.
        opts.set_write_buffer_size(WRITE_BUFFER_BYTES);
        // Universal compaction rewrites each record fewer times than leveled compaction. In a
        // catch-up of 1,000,000 entries, compaction was a fifth of the monitor's CPU; universal
        // took 11 % less CPU in all and 8 % less time, for the same bytes on disk
        // (docs/performance.md). Lookups are mostly misses, which the bloom filters answer.
        opts.set_compaction_style(rocksdb::DBCompactionStyle::Universal);
        let db = DB::open(&opts, path).map_err(|e| store_error(path, e))?;
        let store = Store {
            db,
            path: path.to_path_buf(),
        };
        match store.get(LOG_KEY)? {
            Some(k) if k == log_key.as_bytes() => {}
            Some(k) => {
                return Err(MonitorError::Mismatch(format!(
                    "the store {} is about the log with key {}, not {log_key}",
                    path.display(),
                    String::from_utf8_lossy(&k)
                )))
            }
            None => store
                .db
                .put(LOG_KEY, log_key)
                .map_err(|e| store_error(path, e))?,
        }
        Ok(store)
    }

    /// The log size up to which per-entry checks were applied.
    ///
    /// # Errors
    /// [`MonitorError::Store`] for a read failure or a damaged value.
    pub fn applied(&self) -> Result<u64, MonitorError> {
        match self.get(APPLIED)? {
            None => Ok(0),
            Some(v) => <[u8; 8]>::try_from(v.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| MonitorError::Store {
                    path: self.path.clone(),
                    reason: "applied size is not 8 bytes".into(),
                }),
        }
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MonitorError> {
        self.db.get(key).map_err(|e| store_error(&self.path, e))
    }

    /// A transaction over the store.
    pub fn tx(&self) -> Tx<'_> {
        Tx {
            store: self,
            writes: HashMap::new(),
            applied: None,
        }
    }

    /// Writes a transaction's writes atomically, WAL synced.
    ///
    /// # Errors
    /// [`MonitorError::Store`]; nothing of the transaction is then known to be written.
    pub fn commit(&self, tx: Tx<'_>) -> Result<(), MonitorError> {
        let mut batch = WriteBatch::default();
        for (k, v) in tx.writes {
            batch.put(k, v);
        }
        if let Some(size) = tx.applied {
            batch.put(APPLIED, size.to_be_bytes());
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db
            .write_opt(batch, &wo)
            .map_err(|e| store_error(&self.path, e))
    }

    /// Where the store is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Tx<'_> {
    /// The value at `key`: this transaction's write, or the store's.
    ///
    /// # Errors
    /// [`MonitorError::Store`].
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MonitorError> {
        match self.writes.get(key) {
            Some(v) => Ok(Some(v.clone())),
            None => self.store.get(key),
        }
    }

    /// Sets `key` to `value` when the transaction commits.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, value);
    }

    /// Whether the finding with identity `id` was reported (before, or in this transaction).
    ///
    /// # Errors
    /// [`MonitorError::Store`].
    pub fn is_reported(&self, id: &[u8; 32]) -> Result<bool, MonitorError> {
        Ok(self.get(&reported_key(id))?.is_some())
    }

    /// Records the finding with identity `id` as reported.
    pub fn mark_reported(&mut self, id: &[u8; 32]) {
        self.put(reported_key(id), Vec::new());
    }

    /// Records that per-entry checks are applied up to log size `size`.
    pub fn set_applied(&mut self, size: u64) {
        self.applied = Some(size);
    }
}

fn reported_key(id: &[u8; 32]) -> Vec<u8> {
    let mut key = Vec::with_capacity(33);
    key.push(REPORTED);
    key.extend_from_slice(id);
    key
}

fn store_error(path: &Path, e: rocksdb::Error) -> MonitorError {
    MonitorError::Store {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_are_invisible_until_committed_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let store = Store::open(&path, "log").unwrap();
        assert_eq!(store.applied().unwrap(), 0);
        let mut tx = store.tx();
        tx.put(b"k".to_vec(), b"v".to_vec());
        tx.mark_reported(&[1; 32]);
        tx.set_applied(9);
        assert_eq!(tx.get(b"k").unwrap(), Some(b"v".to_vec()));
        assert!(tx.is_reported(&[1; 32]).unwrap());
        assert_eq!(store.tx().get(b"k").unwrap(), None);
        drop(tx);
        assert_eq!(store.applied().unwrap(), 0);

        let mut tx = store.tx();
        tx.put(b"k".to_vec(), b"v".to_vec());
        tx.mark_reported(&[1; 32]);
        tx.set_applied(9);
        store.commit(tx).unwrap();
        drop(store);
        let store = Store::open(&path, "log").unwrap();
        assert_eq!(store.applied().unwrap(), 9);
        assert!(store.tx().is_reported(&[1; 32]).unwrap());
        assert!(!store.tx().is_reported(&[2; 32]).unwrap());
        assert!(
            Store::open(&path, "log").is_err(),
            "a second opener is refused while the first holds the lock"
        );
        drop(store);
        assert!(matches!(
            Store::open(&path, "another log"),
            Err(MonitorError::Mismatch(_))
        ));
    }
}

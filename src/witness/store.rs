//! A witness's record of each log: the latest checkpoint it cosigned, in RocksDB
//! (`DATA_DIR/witness.db`), one key per origin.
//!
//! # Durability contract
//! [`WitnessStore::put`] returns only once the record is in RocksDB's write-ahead log and that
//! log is synced to disk. The witness answers 200 only after `put` returned, so a crash after a
//! cosignature left the witness never loses the record of it; the caller serialises each
//! origin's read-check-put (see [`crate::witness::Witness`]), so no two conflicting checkpoints
//! of one size are cosigned.

use std::path::Path;

use rocksdb::{Options, WriteOptions, DB};

use crate::tlog::merkle::Hash;
use crate::witness::check::Record;

/// The store's directory inside the data directory.
pub const DB_DIR: &str = "witness.db";

const ORIGIN_PREFIX: &[u8] = b"origin/";

/// Errors of the witness's store.
#[derive(Debug, thiserror::Error)]
pub enum WitnessStoreError {
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("corrupt witness store: the record of {origin:?} is not one this witness wrote")]
    Corrupt { origin: String },
}

/// The records.
pub struct WitnessStore {
    db: DB,
}

impl WitnessStore {
    /// Opens (or creates) the store in `data_dir`.
    ///
    /// # Errors
    /// RocksDB's.
    pub fn open(data_dir: &Path) -> Result<WitnessStore, WitnessStoreError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        Ok(WitnessStore {
            db: DB::open(&opts, data_dir.join(DB_DIR))?,
        })
    }

    /// The record of `origin`, if the witness ever cosigned one of its checkpoints.
    ///
    /// # Errors
    /// RocksDB's, or a record that does not decode.
    pub fn get(&self, origin: &str) -> Result<Option<Record>, WitnessStoreError> {
        let Some(v) = self.db.get(key(origin))? else {
            return Ok(None);
        };
        let corrupt = || WitnessStoreError::Corrupt {
            origin: origin.to_string(),
        };
        if v.len() < 40 {
            return Err(corrupt());
        }
        let size = u64::from_be_bytes(v[..8].try_into().expect("8 bytes"));
        let root = Hash(v[8..40].try_into().expect("32 bytes"));
        let note = String::from_utf8(v[40..].to_vec()).map_err(|_| corrupt())?;
        Ok(Some(Record { size, root, note }))
    }

    /// Replaces the record of `origin`, durably (see the module documentation).
    ///
    /// # Errors
    /// RocksDB's; the witness must then not cosign.
    pub fn put(&self, origin: &str, record: &Record) -> Result<(), WitnessStoreError> {
        let mut value = Vec::with_capacity(40 + record.note.len());
        value.extend(record.size.to_be_bytes());
        value.extend(record.root.0);
        value.extend(record.note.as_bytes());
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        self.db.put_opt(key(origin), value, &sync)?;
        Ok(())
    }
}

fn key(origin: &str) -> Vec<u8> {
    [ORIGIN_PREFIX, origin.as_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let r = Record {
            size: 7,
            root: Hash([3; 32]),
            note: "o\n7\nAwMD\n\n— o x\n".into(),
        };
        {
            let s = WitnessStore::open(dir.path()).unwrap();
            assert_eq!(s.get("o").unwrap(), None);
            s.put("o", &r).unwrap();
        }
        let s = WitnessStore::open(dir.path()).unwrap();
        assert_eq!(s.get("o").unwrap(), Some(r));
        assert_eq!(s.get("o2").unwrap(), None);
    }
}

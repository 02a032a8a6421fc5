//! A backup of a log's database, and the check that a database is the log it claims to be.
//!
//! A backup directory is laid out like a data directory, so that a verified restore is a copy:
//!
//! ```text
//! OUT/            mode 0700, created by the backup (it must not exist before)
//!   db/           a RocksDB checkpoint of the log's database (config::database_path)
//!   backup.json   the manifest (Manifest): origin, verifier key, tree size, root, signed checkpoint
//!   log.key       only with `--with-key`: the log's secret key, 0600
//! ```
//!
//! [`take`] writes one from an open [`Store`]; the server does it for `glasslog backup` through its
//! admin socket ([`crate::server::admin`]) while it keeps serving, and `backup` does it itself
//! when no server runs. [`verify_store`] checks a database against the log's verifier key alone:
//! every signed checkpoint, every stored hash and every index row of every entry; `restore
//! --backup` runs it before any server may open the copy ([`crate::restore`]).
//!
//! It is not the restore from published tiles ([`crate::restore`]), and it knows nothing of
//! sockets or gRPC. The manifest is a convenience for people and scripts: nothing trusts it; the
//! verification reads the database.

use std::fs::DirBuilder;
use std::io::ErrorKind;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::files::{self, FileError};
use crate::keyfile::{self, KeyFileError};
use crate::server::config::database_path;
use crate::server::logkey::KEY_FILE;
use crate::server::rebuild::{leaf_keys, KeyIds};
use crate::server::sequencer::Overlay;
use crate::server::storage::{schema, StorageError, Store, StoredCheckpoint};
use crate::tlog::checkpoint::Checkpoint;
use crate::tlog::compact::CompactRange;
use crate::tlog::merkle::{self, Hash};
use crate::tlog::note::{LogSigner, LogVerifier};

/// The manifest's file name inside a backup directory.
pub const MANIFEST_FILE: &str = "backup.json";
/// The manifest's `format` value.
pub const FORMAT: &str = "glasslog-backup/1";

/// Entries read and checked per step of [`verify_store`].
const CHUNK: u64 = 4096;
/// Leaf bytes read per step of [`verify_store`], at most (a step always reads one entry).
const CHUNK_BYTES: usize = 64 << 20;

/// What a backup holds, written beside it as `backup.json`. Informative only: a restore
/// verifies the database itself.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The log's origin.
    pub origin: String,
    /// The log's verifier key (C2SP signed-note form): what `restore --log-key` must be given.
    pub verifier_key: String,
    /// The size of the latest signed checkpoint in the backup; it covers every entry there.
    pub tree_size: u64,
    /// That checkpoint's root hash, base64.
    pub root: String,
    /// That checkpoint as the log signed it (a C2SP signed note).
    pub checkpoint: String,
    /// Whether `log.key` was copied into the backup.
    pub log_key_included: bool,
    /// When the backup was taken, seconds since the Unix epoch.
    pub created_unix: u64,
    /// The glasslog version that took it.
    pub glasslog_version: String,
}

/// Why a backup could not be taken or read.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} exists: a backup goes to a new directory")]
    Exists(PathBuf),
    #[error("{0}: the backup directory must be an absolute path")]
    NotAbsolute(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    #[error("backup copy: {0}")]
    Storage(#[from] StorageError),
    #[error("the log has no signed checkpoint yet: nothing to back up")]
    Empty,
    #[error("{path}: {why}")]
    Manifest { path: PathBuf, why: String },
    #[error("{path} is for {found}, not this database's log {expected}")]
    WrongKey {
        path: PathBuf,
        found: String,
        expected: String,
    },
}

/// Why a database is not the log the verifier key names. Each variant names what failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the database's {what} is {found:?}, the --log-key's is {expected:?}")]
    Identity {
        what: &'static str,
        found: Option<String>,
        expected: String,
    },
    #[error("the database holds no signed checkpoint")]
    NoCheckpoint,
    #[error("checkpoint of size {size}: {why}")]
    Checkpoint { size: u64, why: String },
    #[error(
        "checkpoint of size {size} states root {stated}, but its {size} entries hash to {computed}"
    )]
    Root {
        size: u64,
        stated: Hash,
        computed: Hash,
    },
    #[error("entry {index}: {why}")]
    Entry { index: u64, why: String },
    #[error("stored hash {stored_index}: the table holds {stored}, the entries give {computed}")]
    Hash {
        stored_index: u64,
        stored: Hash,
        computed: Hash,
    },
    #[error("entry {index} exists beyond the latest signed checkpoint ({size} entries)")]
    Beyond { index: u64, size: u64 },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A database that [`verify_store`] found to be the log.
#[derive(Debug)]
pub struct Verified {
    /// The latest signed checkpoint.
    pub checkpoint: Checkpoint,
    /// The stored checkpoints checked (every one the log signed and kept).
    pub checkpoints: u64,
}

/// Writes a backup of `store` (the database of the log in `data_dir`) into the new directory
/// `to`, created 0700, while writers go on: see the module doc for the layout. `log.key` is
/// copied (0600) only if `with_key`. Cost: a memtable flush and one hard link per SST file on
/// the same filesystem (a full copy on another), whatever the log's size beyond that.
///
/// # Errors
/// [`BackupError`]; `to` is removed again on any error after it was created.
pub fn take(
    store: &Store,
    data_dir: &Path,
    to: &Path,
    with_key: bool,
) -> Result<Manifest, BackupError> {
    if !to.is_absolute() {
        return Err(BackupError::NotAbsolute(to.to_path_buf()));
    }
    // Not recursive: the create is the check that `to` is new, with no window between the two.
    DirBuilder::new()
        .mode(0o700)
        .create(to)
        .map_err(|source| match source.kind() {
            ErrorKind::AlreadyExists => BackupError::Exists(to.to_path_buf()),
            _ => BackupError::Io {
                path: to.to_path_buf(),
                source,
            },
        })?;
    let written = write(store, data_dir, to, with_key);
    if written.is_err() {
        let _ = std::fs::remove_dir_all(to);
    }
    written
}

fn write(
    store: &Store,
    data_dir: &Path,
    to: &Path,
    with_key: bool,
) -> Result<Manifest, BackupError> {
    let db = database_path(to);
    store.checkpoint_to(&db)?;
    // What the copy holds, read from the copy: the live log has moved on meanwhile.
    let (latest, origin, verifier_key) = {
        let copy = Store::open(&db)?;
        let latest = copy.latest_checkpoint()?.ok_or(BackupError::Empty)?;
        let meta = |key| -> Result<String, StorageError> {
            Ok(String::from_utf8_lossy(&copy.meta(key)?.unwrap_or_default()).into_owned())
        };
        (
            latest,
            meta(schema::META_ORIGIN)?,
            meta(schema::META_VERIFIER_KEY)?,
        )
    };
    let checkpoint = latest.checkpoint()?;
    if with_key {
        let path = data_dir.join(KEY_FILE);
        let signer: LogSigner = keyfile::open_existing(&path)?;
        if signer.verifier_key() != verifier_key {
            return Err(BackupError::WrongKey {
                path,
                found: signer.verifier_key(),
                expected: verifier_key,
            });
        }
        files::write_atomically(
            &to.join(KEY_FILE),
            format!("{}\n", signer.to_skey()).as_bytes(),
            0o600,
        )?;
    }
    let manifest = Manifest {
        format: FORMAT.to_string(),
        origin,
        verifier_key,
        tree_size: checkpoint.size,
        root: checkpoint.root.to_string(),
        checkpoint: latest.note,
        log_key_included: with_key,
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        glasslog_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let mut json = serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Manifest {
        path: to.join(MANIFEST_FILE),
        why: e.to_string(),
    })?;
    json.push(b'\n');
    files::write_atomically(&to.join(MANIFEST_FILE), &json, 0o600)?;
    Ok(manifest)
}

/// Reads the manifest of the backup in `dir`.
///
/// # Errors
/// [`BackupError::Manifest`] for a missing or unreadable manifest, or another format.
pub fn read_manifest(dir: &Path) -> Result<Manifest, BackupError> {
    let path = dir.join(MANIFEST_FILE);
    let bad = |why: String| BackupError::Manifest {
        path: path.clone(),
        why,
    };
    let text = std::fs::read(&path).map_err(|e| bad(format!("{e} (is this a backup?)")))?;
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
    if manifest.format != FORMAT {
        return Err(bad(format!(
            "format {:?}, this glasslog reads {FORMAT:?}",
            manifest.format
        )));
    }
    Ok(manifest)
}

/// Checks that `store` is the log of `verifier`, trusting nothing in it:
/// 1. its recorded origin and verifier key are the verifier's;
/// 2. every stored checkpoint is signed by the log key (C2SP signed note) and its root is the
///    RFC 6962 §2.1 root of the entries below its size, recomputed from the leaves with a
///    [`CompactRange`] (independent of the stored hashes), the latest included;
/// 3. every stored hash equals the one recomputed from the leaves (Go sumdb numbering, through
///    the sequencer's own [`Overlay`]): proofs served from the table are proofs of the leaves;
/// 4. every entry's leaf-hash, dedup and search rows point at it ([`leaf_keys`], as the
///    sequencer derived them), and no entry lies beyond the latest checkpoint;
/// 5. every cosigned note carries the log's signature on the checkpoint of its size.
///
/// Rows that should not exist at all (a search row for an entry that does not match it) are not
/// looked for. Reads every entry once and about three index rows per entry; `progress` is
/// called with the entries checked and the total.
///
/// # Errors
/// The first [`VerifyError`] found.
pub fn verify_store(
    store: &Store,
    verifier: &LogVerifier,
    mut progress: impl FnMut(u64, u64),
) -> Result<Verified, VerifyError> {
    check_identity(store, verifier)?;
    let latest = store
        .latest_checkpoint()?
        .ok_or(VerifyError::NoCheckpoint)?;
    let size = latest.size;
    let mut walk = CheckpointWalk {
        store,
        verifier,
        next: store.checkpoint_at_or_after(0)?,
        checked: 0,
    };
    let mut range = CompactRange::new();
    walk.check_due(&range)?;
    let mut keys = KeyIds::default();
    let mut start = 0;
    while start < size {
        let leaves = store.entries(start, (start + CHUNK).min(size), CHUNK_BYTES)?;
        if leaves.is_empty() {
            return Err(VerifyError::Entry {
                index: start,
                why: "missing".into(),
            });
        }
        let mut overlay = Overlay::new(store, start);
        for (index, leaf) in &leaves {
            let leaf_hash = merkle::leaf_hash(leaf);
            overlay
                .append(*index, leaf_hash)
                .map_err(|e| VerifyError::Entry {
                    index: *index,
                    why: e.to_string(),
                })?;
            check_index_rows(store, *index, leaf, &leaf_hash, &mut keys)?;
            range.append(leaf_hash);
            walk.check_due(&range)?;
        }
        check_hashes(store, &overlay)?;
        start += leaves.len() as u64;
        progress(start, size);
    }
    if store.entry(size)?.is_some() {
        return Err(VerifyError::Beyond { index: size, size });
    }
    check_cosigned(store, verifier)?;
    Ok(Verified {
        checkpoint: verifier
            .verify(&latest.note)
            .map_err(|e| VerifyError::Checkpoint {
                size,
                why: e.to_string(),
            })?,
        checkpoints: walk.checked,
    })
}

fn check_identity(store: &Store, verifier: &LogVerifier) -> Result<(), VerifyError> {
    for (what, key, expected) in [
        ("origin", schema::META_ORIGIN, verifier.origin()),
        (
            "verifier key",
            schema::META_VERIFIER_KEY,
            verifier.verifier_key(),
        ),
    ] {
        let found = store.meta(key)?;
        if found.as_deref() != Some(expected.as_bytes()) {
            return Err(VerifyError::Identity {
                what,
                found: found.map(|f| String::from_utf8_lossy(&f).into_owned()),
                expected: expected.to_string(),
            });
        }
    }
    Ok(())
}

/// The stored checkpoints in size order, each checked when the recomputed tree reaches its size.
struct CheckpointWalk<'a> {
    store: &'a Store,
    verifier: &'a LogVerifier,
    /// The next stored checkpoint not yet checked.
    next: Option<StoredCheckpoint>,
    checked: u64,
}

impl CheckpointWalk<'_> {
    /// Checks the stored checkpoint of `range.size()` leaves, if there is one.
    fn check_due(&mut self, range: &CompactRange) -> Result<(), VerifyError> {
        let Some(stored) = self.next.take_if(|c| c.size == range.size()) else {
            return Ok(());
        };
        let size = stored.size;
        let checkpoint =
            self.verifier
                .verify(&stored.note)
                .map_err(|e| VerifyError::Checkpoint {
                    size,
                    why: e.to_string(),
                })?;
        if checkpoint.size != size {
            return Err(VerifyError::Checkpoint {
                size,
                why: format!("the signed note states size {}", checkpoint.size),
            });
        }
        let computed = range.root();
        if checkpoint.root != computed {
            return Err(VerifyError::Root {
                size,
                stated: checkpoint.root,
                computed,
            });
        }
        self.checked += 1;
        self.next = self.store.checkpoint_at_or_after(size + 1)?;
        Ok(())
    }
}

/// Compares the hashes the leaves of a step complete with the stored ones. The overlay read
/// only hashes of earlier steps, already compared, so by induction the table is the leaves'.
fn check_hashes(store: &Store, overlay: &Overlay<'_>) -> Result<(), VerifyError> {
    let (indexes, computed): (Vec<u64>, Vec<Hash>) =
        overlay.new_hashes().map(|(i, h)| (i, *h)).unzip();
    let stored = store.hashes(&indexes)?;
    for ((stored_index, stored), computed) in indexes.into_iter().zip(stored).zip(computed) {
        if stored != computed {
            return Err(VerifyError::Hash {
                stored_index,
                stored,
                computed,
            });
        }
    }
    Ok(())
}

/// Checks that the leaf-hash, dedup and search rows of entry `index` point at it.
fn check_index_rows(
    store: &Store,
    index: u64,
    leaf: &[u8],
    leaf_hash: &Hash,
    keys: &mut KeyIds,
) -> Result<(), VerifyError> {
    let bad = |why: String| VerifyError::Entry { index, why };
    let derived = leaf_keys(leaf, keys).map_err(bad)?;
    let points_here = |found: Option<u64>, what: &str| match found {
        Some(i) if i == index => Ok(()),
        other => Err(bad(format!("its {what} row points at {other:?}"))),
    };
    points_here(store.index_of_leaf(leaf_hash)?, "leaf-hash index")?;
    points_here(store.index_of_dedup(&derived.dedup_key)?, "dedup index")?;
    for prefix in &derived.search_prefixes {
        if store.search(prefix, index, index + 1, 1)? != [index] {
            return Err(bad(format!(
                "search row {} is missing",
                hex::encode(prefix)
            )));
        }
    }
    Ok(())
}

/// Checks that every cosigned note is the log's signed checkpoint of its size plus cosignatures.
fn check_cosigned(store: &Store, verifier: &LogVerifier) -> Result<(), VerifyError> {
    for cosigned in store.cosigned_latest_first(usize::MAX)? {
        let size = cosigned.size;
        let bad = |why: String| VerifyError::Checkpoint { size, why };
        let theirs = verifier
            .verify(&cosigned.note)
            .map_err(|e| bad(format!("cosigned note: {e}")))?;
        let ours = store
            .checkpoint(size)?
            .ok_or_else(|| bad("a cosigned note with no signed checkpoint of its size".into()))?
            .checkpoint()?;
        if theirs != ours {
            return Err(bad("the cosigned note states another checkpoint".into()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

//! `glasslog restore`: rebuilds a log's database from its published tiles (the disaster-recovery
//! path of [`crate::server::publisher`]), or copies it from a backup ([`crate::backup`]).
//!
//! Nothing read from the bucket is trusted until it is checked:
//! 1. the checkpoint must verify under the log key the operator supplies (`--log-key`);
//! 2. every entry bundle must hold exactly the entries its tile calls for; the leaves are
//!    appended to a fresh tree, and the tree's root must be the checkpoint's root: that checks
//!    every bundle, its order and its completeness at once (RFC 6962 §2.1);
//! 3. every hash tile in the bucket must then equal the tile recomputed from the restored tree,
//!    so the bucket is known good for tile clients too.
//!
//! The entries, stored hashes, leaf and dedup indexes, search index ([`leaf_keys`]) and the
//! checkpoint are written as the sequencer would have written them; `serve` then continues the
//! log with the operator's key file (`log.key`, from their backup) in the data directory. A
//! restore that fails removes the database it was writing; an existing database is never touched.
//!
//! From a backup ([`restore_backup`]) the database is copied beside its final place, opened
//! there and verified in full by [`crate::backup::verify_store`] (every checkpoint's signature
//! and root, every stored hash, every index row); only a copy that verifies is renamed into
//! place, so what `serve` opens is exactly what was verified.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;

use crate::backup::{self, BackupError, VerifyError};
use crate::bucket::{Bucket, BucketError, S3Options};
use crate::files;
use crate::keyfile::{self, KeyFileError};
use crate::server::config::database_path;
use crate::server::logkey::KEY_FILE;
use crate::server::rebuild::{leaf_keys, KeyIds};
use crate::server::sequencer::Overlay;
use crate::server::storage::{schema, StorageError, Store};
use crate::server::tiles;
use crate::tlog::checkpoint::Checkpoint;
use crate::tlog::merkle;
use crate::tlog::note::{LogSigner, LogVerifier};
use crate::tlog::tiles::{decode_bundle, new_tiles, TileId, TileKind, CHECKPOINT_PATH};

/// Bundles fetched at once.
const IN_FLIGHT: usize = 8;
/// Bundles per RocksDB batch.
const BUNDLES_PER_BATCH: usize = 16;

/// What to restore, and where to.
#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// The published log: `s3://…`, `file:///…` or `http(s)://…`.
    pub from: String,
    pub s3: S3Options,
    pub data_dir: PathBuf,
    /// The log's verifier key (C2SP signed-note form).
    pub log_key: String,
}

/// A finished restore.
#[derive(Debug)]
pub struct Restored {
    pub checkpoint: Checkpoint,
    pub seconds: f64,
    /// Whether `log.key` is in the data directory now.
    pub key_present: bool,
    /// Whether `log.key` was copied there from the backup.
    pub key_copied: bool,
}

/// A restore from a backup directory ([`crate::backup`]).
#[derive(Clone, Debug)]
pub struct BackupRestoreOptions {
    /// The backup directory (`glasslog backup --to`).
    pub backup: PathBuf,
    pub data_dir: PathBuf,
    /// The log's verifier key (C2SP signed-note form).
    pub log_key: String,
}

/// Why a restore failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0} exists: restore writes a new database and never touches an existing one")]
    DatabaseExists(PathBuf),
    #[error("--log-key: {0}")]
    LogKey(String),
    #[error("{path}: this key file is for {found}, not the --log-key {given}")]
    KeyFileMismatch {
        path: PathBuf,
        found: String,
        given: String,
    },
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    #[error(transparent)]
    Bucket(#[from] BucketError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{url} has no checkpoint: nothing was published there")]
    NoCheckpoint { url: String },
    #[error("the published checkpoint does not verify under --log-key: {0}")]
    Checkpoint(String),
    #[error("{url}: {what} is missing")]
    Missing { url: String, what: String },
    #[error("{url}: {what}: {why}")]
    Bad {
        url: String,
        what: String,
        why: String,
    },
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error("{path}: the backup is of the log {found}, not the --log-key {given}")]
    BackupOfAnotherLog {
        path: PathBuf,
        found: String,
        given: String,
    },
    #[error("the backup does not verify: {0}; nothing was restored")]
    Verify(#[from] VerifyError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Restores the log published at `opts.from` into `opts.data_dir`. `progress` is called after
/// each batch with the entries restored so far and the total.
///
/// # Errors
/// [`RestoreError`]; on any error the new database is removed.
pub async fn restore(
    opts: &RestoreOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<Restored, RestoreError> {
    let verifier =
        LogVerifier::new(&opts.log_key).map_err(|e| RestoreError::LogKey(e.to_string()))?;
    let (db, key_present) = check_target(&opts.data_dir, &verifier)?;
    let bucket = Arc::new(Bucket::open(&opts.from, &opts.s3)?);
    let note = bucket
        .get(CHECKPOINT_PATH)
        .await?
        .ok_or_else(|| RestoreError::NoCheckpoint {
            url: opts.from.clone(),
        })?;
    let note = String::from_utf8(note.bytes.to_vec())
        .map_err(|_| RestoreError::Checkpoint("not UTF-8".into()))?;
    let checkpoint = verifier
        .verify(&note)
        .map_err(|e| RestoreError::Checkpoint(e.to_string()))?;
    let log_note = log_signature_only(&note, &verifier)?;

    keyfile::create_dir_private(&opts.data_dir)?;
    let started = Instant::now();
    let result = rebuild(
        &bucket,
        &db,
        &verifier,
        &checkpoint,
        &log_note,
        &note,
        &mut progress,
    )
    .await;
    if result.is_err() {
        // Leave nothing half-restored behind for `serve` to open.
        let _ = std::fs::remove_dir_all(&db);
    }
    result?;
    Ok(Restored {
        checkpoint,
        seconds: started.elapsed().as_secs_f64(),
        key_present,
        key_copied: false,
    })
}

/// Where a restore writes: `data_dir`'s database, which must not exist yet, and whether a key
/// file is there already (it must then be the log's).
fn check_target(data_dir: &Path, verifier: &LogVerifier) -> Result<(PathBuf, bool), RestoreError> {
    let db = database_path(data_dir);
    if db.exists() {
        return Err(RestoreError::DatabaseExists(db));
    }
    let key_path = data_dir.join(KEY_FILE);
    let key_present = key_path.exists();
    if key_present {
        check_key_file(&key_path, verifier)?;
    }
    Ok((db, key_present))
}

/// Opens the key file at `path` and checks that it is the key of `verifier`'s log.
fn check_key_file(path: &Path, verifier: &LogVerifier) -> Result<LogSigner, RestoreError> {
    let signer: LogSigner = keyfile::open_existing(path)?;
    if signer.verifier_key() != verifier.verifier_key() {
        return Err(RestoreError::KeyFileMismatch {
            path: path.to_path_buf(),
            found: signer.verifier_key(),
            given: verifier.verifier_key().to_string(),
        });
    }
    Ok(signer)
}

/// Restores the backup in `opts.backup` into `opts.data_dir`: copies its database to
/// `DATA_DIR/db.restoring`, verifies the copy ([`backup::verify_store`]; `progress` gets the
/// entries checked and the total), and only then renames it to `DATA_DIR/db`. The backup's
/// `log.key`, if it has one and the data directory has none, is copied too (0600). Costs a copy
/// of the database and one read of every entry.
///
/// # Errors
/// [`RestoreError`]; on any error nothing is left in the data directory but what was there.
pub fn restore_backup(
    opts: &BackupRestoreOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<Restored, RestoreError> {
    let verifier =
        LogVerifier::new(&opts.log_key).map_err(|e| RestoreError::LogKey(e.to_string()))?;
    let (db, key_present) = check_target(&opts.data_dir, &verifier)?;
    let manifest = backup::read_manifest(&opts.backup)?;
    if manifest.verifier_key != verifier.verifier_key() {
        return Err(RestoreError::BackupOfAnotherLog {
            path: opts.backup.clone(),
            found: manifest.verifier_key,
            given: verifier.verifier_key().to_string(),
        });
    }
    let backup_key = opts.backup.join(KEY_FILE);
    let key = match key_present || !backup_key.exists() {
        true => None,
        false => Some(check_key_file(&backup_key, &verifier)?),
    };

    keyfile::create_dir_private(&opts.data_dir)?;
    let started = Instant::now();
    // The name is this function's own: one found is what an interrupted restore left.
    let staging = files::with_suffix(&db, ".restoring");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io(&staging))?;
    }
    let result = copy_and_verify(
        &database_path(&opts.backup),
        &staging,
        &verifier,
        &mut progress,
    )
    .and_then(|verified| {
        std::fs::rename(&staging, &db).map_err(io(&db))?;
        sync_dir(&opts.data_dir)?;
        Ok(verified)
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    let verified = result?;
    if let Some(key) = &key {
        files::write_atomically(
            &opts.data_dir.join(KEY_FILE),
            format!("{}\n", key.to_skey()).as_bytes(),
            0o600,
        )
        .map_err(|e| RestoreError::Io {
            path: e.path,
            source: e.source,
        })?;
    }
    Ok(Restored {
        checkpoint: verified.checkpoint,
        seconds: started.elapsed().as_secs_f64(),
        key_present: key_present || key.is_some(),
        key_copied: key.is_some(),
    })
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RestoreError + '_ {
    move |source| RestoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Copies the database files of `from` into the new directory `to` (fsynced), opens the copy
/// and verifies it.
fn copy_and_verify(
    from: &Path,
    to: &Path,
    verifier: &LogVerifier,
    progress: &mut impl FnMut(u64, u64),
) -> Result<backup::Verified, RestoreError> {
    std::fs::create_dir(to).map_err(io(to))?;
    for file in std::fs::read_dir(from).map_err(io(from))? {
        let file = file.map_err(io(from))?;
        let source = file.path();
        if !file.file_type().map_err(io(&source))?.is_file() {
            return Err(RestoreError::Io {
                path: source,
                source: std::io::Error::other("a database holds files only"),
            });
        }
        let target = to.join(file.file_name());
        std::fs::copy(&source, &target).map_err(io(&source))?;
        std::fs::File::open(&target)
            .and_then(|f| f.sync_all())
            .map_err(io(&target))?;
    }
    sync_dir(to)?;
    let store = Store::open(to)?;
    let verified = backup::verify_store(&store, verifier, progress)?;
    store.flush()?;
    Ok(verified)
}

fn sync_dir(dir: &Path) -> Result<(), RestoreError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

/// The note with only the log's own signature: the `checkpoints` table holds what the log
/// signed; witness cosignatures go to `cosigned`.
fn log_signature_only(note: &str, verifier: &LogVerifier) -> Result<String, RestoreError> {
    let bad = |why: &str| RestoreError::Checkpoint(why.to_string());
    let split = note.find("\n\n").ok_or_else(|| bad("not a signed note"))?;
    let (body, sigs) = (&note[..=split], &note[split + 2..]);
    let prefix = format!("\u{2014} {} ", verifier.origin());
    let own: String = sigs
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .map(|l| format!("{l}\n"))
        .collect();
    let stripped = format!("{body}\n{own}");
    verifier
        .verify(&stripped)
        .map_err(|e| bad(&format!("the log's own signature: {e}")))?;
    Ok(stripped)
}

async fn rebuild(
    bucket: &Arc<Bucket>,
    db: &Path,
    verifier: &LogVerifier,
    checkpoint: &Checkpoint,
    log_note: &str,
    full_note: &str,
    progress: &mut impl FnMut(u64, u64),
) -> Result<(), RestoreError> {
    let url = bucket.url().to_string();
    let size = checkpoint.size;
    let store = Store::open(db)?;
    let mut meta = store.batch();
    meta.put_meta(schema::META_ORIGIN, verifier.origin().as_bytes());
    meta.put_meta(
        schema::META_VERIFIER_KEY,
        verifier.verifier_key().as_bytes(),
    );
    store.commit(meta)?;

    // Every bundle, in order, a few in flight.
    let bundles: Vec<TileId> = new_tiles(0, size)
        .into_iter()
        .filter(|t| t.kind == TileKind::Entries)
        .collect();
    let mut fetched = futures::stream::iter(bundles)
        .map(|tile| {
            let bucket = bucket.clone();
            async move {
                let got = bucket.get(&tile.path()).await?;
                Ok::<_, RestoreError>((tile, got))
            }
        })
        .buffered(IN_FLIGHT);
    let mut restored = 0u64;
    let mut pending = Vec::new();
    let mut keys = KeyIds::default();
    while let Some(next) = fetched.next().await {
        let (tile, got) = next?;
        let got = got.ok_or_else(|| RestoreError::Missing {
            url: url.clone(),
            what: tile.path(),
        })?;
        pending.push((tile, got.bytes));
        if pending.len() == BUNDLES_PER_BATCH {
            restored = append(
                &store,
                restored,
                &std::mem::take(&mut pending),
                &url,
                &mut keys,
            )?;
            progress(restored, size);
        }
    }
    restored = append(&store, restored, &pending, &url, &mut keys)?;
    progress(restored, size);

    let root = merkle::root_hash(size, &store).map_err(|e| RestoreError::Bad {
        url: url.clone(),
        what: "the restored tree".into(),
        why: e.to_string(),
    })?;
    if root != checkpoint.root {
        return Err(RestoreError::Bad {
            url,
            what: "entry bundles".into(),
            why: format!(
                "the {size} entries give root {root}, the signed checkpoint says {}",
                checkpoint.root
            ),
        });
    }
    check_hash_tiles(bucket, &store, size).await?;

    let mut last = store.batch();
    last.put_checkpoint(size, log_note);
    if full_note != log_note {
        last.put_cosigned(size, full_note);
    }
    store.commit(last)?;
    store.flush()?;
    Ok(())
}

/// Appends the leaves of consecutive `bundles` from index `start`, in one batch; returns the new
/// size.
fn append(
    store: &Store,
    start: u64,
    bundles: &[(TileId, bytes::Bytes)],
    url: &str,
    keys: &mut KeyIds,
) -> Result<u64, RestoreError> {
    let mut overlay = Overlay::new(store, start);
    let mut batch = store.batch();
    let mut index = start;
    for (tile, bytes) in bundles {
        debug_assert_eq!(tile.nodes().start, index);
        let bad = |why: String| RestoreError::Bad {
            url: url.to_string(),
            what: tile.path(),
            why,
        };
        let leaves = decode_bundle(bytes, tile.width()).map_err(|e| bad(e.to_string()))?;
        for leaf in leaves {
            let derived = leaf_keys(leaf, keys).map_err(|e| bad(format!("entry {index}: {e}")))?;
            let leaf_hash = merkle::leaf_hash(leaf);
            overlay
                .append(index, leaf_hash)
                .map_err(|e| bad(format!("entry {index}: {e}")))?;
            batch.put_entry(index, leaf, &leaf_hash, &derived.dedup_key);
            for p in &derived.search_prefixes {
                batch.put_search(p, index);
            }
            index += 1;
        }
    }
    for (i, h) in overlay.new_hashes() {
        batch.put_hash(i, h);
    }
    drop(overlay);
    store.commit(batch)?;
    Ok(index)
}

/// Compares every hash tile of the tree of `size` in the bucket with the restored tree's.
async fn check_hash_tiles(
    bucket: &Arc<Bucket>,
    store: &Store,
    size: u64,
) -> Result<(), RestoreError> {
    let url = bucket.url().to_string();
    let hash_tiles: Vec<TileId> = new_tiles(0, size)
        .into_iter()
        .filter(|t| t.kind != TileKind::Entries)
        .collect();
    let mut fetched = futures::stream::iter(hash_tiles)
        .map(|tile| {
            let bucket = bucket.clone();
            async move { Ok::<_, RestoreError>((tile, bucket.get(&tile.path()).await?)) }
        })
        .buffered(IN_FLIGHT * 2);
    while let Some(next) = fetched.next().await {
        let (tile, got) = next?;
        let got = got.ok_or_else(|| RestoreError::Missing {
            url: url.clone(),
            what: tile.path(),
        })?;
        let ours = tiles::read(store, tile).map_err(|e| RestoreError::Bad {
            url: url.clone(),
            what: tile.path(),
            why: e.to_string(),
        })?;
        if got.bytes.as_ref() != ours.as_slice() {
            return Err(RestoreError::Bad {
                url: url.clone(),
                what: tile.path(),
                why: "differs from the tile of the verified entries (the bucket is damaged; \
                      tile clients reading it will fail)"
                    .into(),
            });
        }
    }
    Ok(())
}

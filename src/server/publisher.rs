//! Publication (`serve --publish URL`): the log's tiles, entry bundles and checkpoint copied to
//! a bucket or directory ([`crate::bucket`]), so that reads scale without this server
//! (C2SP tlog-tiles).
//!
//! It runs beside acknowledgement, never in its way: Submit answers once its entry is durable and
//! in a signed checkpoint; this task follows the public head ([`Head`]) and catches up.
//!
//! # Order, and what a reader of the bucket can rely on
//! To take the bucket from its checkpoint of size `old` to the head of size `new`, the task
//! uploads every tile and bundle the tree of `new` has and the tree of `old` has not
//! ([`new_tiles`]: the full tiles completed in between and `new`'s partial tiles), create-only,
//! and only when all of them are there, the checkpoint. So **a checkpoint in the bucket never
//! names a tile that is not there**, and no tile is ever rewritten: an object that already exists
//! with the same bytes is an earlier attempt (a crash or an outage between tiles and checkpoint);
//! one with other bytes means another log or another copy of this one writes here, and
//! publication stops for good ([`BucketError::Conflict`]).
//!
//! # Interval
//! At most one checkpoint is published per `publish_interval_ms` (default 500 ms): the newest
//! head when the interval has passed. Each publication rewrites the head's partial tiles and
//! partial bundle, so publishing every group commit would upload an entry up to 256 times.
//!
//! # Restarts and outages
//! The bucket's own checkpoint is where publication resumes: at start (and after a failure) it is
//! read back and verified (signature by this log's key, same root as this log's tree at that
//! size); an absent checkpoint means an empty bucket. A failed upload is retried with backoff
//! (1 s doubling to 30 s) from the bucket's checkpoint, so an outage of the store costs time, not
//! correctness. A bucket ahead of this server, or on another tree, stops publication with the
//! reason in the log: it never "repairs" a bucket by overwriting it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::watch;

use crate::bucket::{Bucket, BucketError};
use crate::server::head::Head;
use crate::server::lease::Gate;
use crate::server::sequencer::Published;
use crate::server::storage::{StorageError, Store};
use crate::server::tiles::{self, TileReadError};
use crate::tlog::merkle;
use crate::tlog::note::LogVerifier;
use crate::tlog::tiles::{new_tiles, CHECKPOINT_PATH};

/// Uploads in flight at once.
const CONCURRENT_UPLOADS: usize = 16;
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Why a publication attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The store failed or is unreachable: retried.
    #[error(transparent)]
    Bucket(#[from] BucketError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Tile(#[from] TileReadError),
    /// The bucket holds something this log cannot continue: publication stops.
    #[error("{0}")]
    Foreign(String),
    /// The sequencing lease is not held now: no checkpoint is written (retried).
    #[error("not writing the checkpoint: {0}")]
    NoLease(String),
}

impl PublishError {
    /// Whether retrying can help.
    fn is_fatal(&self) -> bool {
        matches!(
            self,
            PublishError::Foreign(_)
                | PublishError::Bucket(BucketError::Conflict { .. })
                | PublishError::Tile(TileReadError::Unbundleable(_))
        )
    }
}

/// What the rest of the server (metrics, the lease) reads of publication.
#[derive(Debug)]
pub struct PublishStatus {
    /// The size of the checkpoint in the bucket, as last written or read.
    pub published_size: AtomicU64,
    /// For every checkpoint published since start, the time from its publication in this process
    /// to its being in the bucket, in microseconds.
    pub lag_us: Mutex<hdrhistogram::Histogram<u64>>,
    /// Checkpoints published since start.
    pub published_count: AtomicU64,
    /// Failed attempts since start.
    pub failures: AtomicU64,
    /// Why publication stopped for good, if it did.
    pub stopped: Mutex<Option<String>>,
}

impl Default for PublishStatus {
    fn default() -> Self {
        PublishStatus {
            published_size: AtomicU64::new(0),
            lag_us: Mutex::new(
                hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3)
                    .expect("valid bounds"),
            ),
            published_count: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            stopped: Mutex::new(None),
        }
    }
}

/// Starts publishing the head of the log in `store` to `bucket`.
///
/// With a sequencing lease, `gate` is the lease's: a checkpoint is written only while the lease
/// is held, so a server that lost it never writes over its successor's checkpoint.
/// At most one checkpoint is published per `interval`.
pub fn start(
    bucket: Arc<Bucket>,
    store: Arc<Store>,
    head: Head,
    verifier: LogVerifier,
    gate: Arc<Gate>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> Arc<PublishStatus> {
    let status = Arc::new(PublishStatus::default());
    let task_status = status.clone();
    tokio::spawn(async move {
        let publisher = Publisher {
            bucket,
            store,
            verifier,
            gate,
            interval,
            status: task_status,
        };
        tokio::select! {
            () = publisher.run(head) => {}
            _ = shutdown.wait_for(|&s| s) => {}
        }
    });
    status
}

struct Publisher {
    bucket: Arc<Bucket>,
    store: Arc<Store>,
    verifier: LogVerifier,
    gate: Arc<Gate>,
    interval: Duration,
    status: Arc<PublishStatus>,
}

impl Publisher {
    async fn run(self, mut head: Head) {
        // What the bucket's checkpoint is, as far as this task knows: `None` until read back.
        let mut in_bucket: Option<(u64, String)> = None;
        let mut backoff = FIRST_BACKOFF;
        let mut last = tokio::time::Instant::now();
        loop {
            let attempt = self.step(&head, &mut in_bucket).await;
            match attempt {
                Ok(()) => backoff = FIRST_BACKOFF,
                Err(e) if e.is_fatal() => {
                    tracing::error!(bucket = %self.bucket.url(), error = %e, "publication stopped");
                    *self.status.stopped.lock().expect("not poisoned") = Some(e.to_string());
                    return;
                }
                Err(e) => {
                    self.status.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(bucket = %self.bucket.url(), error = %e, retry_in = ?backoff, "publication failed; will retry");
                    in_bucket = None;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            }
            // At most one publication per interval: each one rewrites the partial tiles and
            // bundle of the head, so publishing every group commit would upload each entry up
            // to 256 times. Heads signed meanwhile are covered by the next, newest one.
            tokio::time::sleep_until(last + self.interval).await;
            // Returns at once if the head moved while this step published or slept.
            if !head.changed().await {
                return;
            }
            last = tokio::time::Instant::now();
        }
    }

    /// Brings the bucket to the current head, reading its checkpoint back first if needed.
    async fn step(
        &self,
        head: &Head,
        in_bucket: &mut Option<(u64, String)>,
    ) -> Result<(), PublishError> {
        if in_bucket.is_none() {
            *in_bucket = Some(self.read_bucket_checkpoint().await?);
        }
        let (from, note) = in_bucket.clone().expect("just read");
        let Some(target) = head.latest() else {
            return Ok(());
        };
        if target.checkpoint.size < from {
            // The head is behind the bucket only while witnessing catches up after a restart.
            return Ok(());
        }
        if target.checkpoint.size == from && target.note == note {
            return Ok(());
        }
        self.publish(from, &target).await?;
        let lag = target.at.elapsed();
        self.status
            .published_size
            .store(target.checkpoint.size, Ordering::Relaxed);
        let _ = self
            .status
            .lag_us
            .lock()
            .expect("not poisoned")
            .record((lag.as_micros() as u64).clamp(1, 3_600_000_000));
        self.status.published_count.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(size = target.checkpoint.size, ?lag, "published");
        *in_bucket = Some((target.checkpoint.size, target.note.clone()));
        Ok(())
    }

    /// Uploads the tiles from `from` to the target's size, then its checkpoint.
    async fn publish(&self, from: u64, target: &Published) -> Result<(), PublishError> {
        let tiles = new_tiles(from, target.checkpoint.size);
        futures::stream::iter(tiles)
            .map(|tile| async move {
                let store = self.store.clone();
                let bytes = tokio::task::spawn_blocking(move || tiles::read(&store, tile))
                    .await
                    .map_err(|e| PublishError::Foreign(format!("tile reader failed: {e}")))??;
                self.bucket
                    .put_immutable(&tile.path(), Bytes::from(bytes))
                    .await?;
                Ok::<(), PublishError>(())
            })
            .buffer_unordered(CONCURRENT_UPLOADS)
            .try_collect::<()>()
            .await?;
        self.gate.check().map_err(PublishError::NoLease)?;
        self.bucket
            .put_mutable(CHECKPOINT_PATH, Bytes::from(target.note.clone()))
            .await?;
        Ok(())
    }

    /// The bucket's checkpoint (size and note), checked to be this log's: signed by its key, at
    /// most its size, with its root at that size. `(0, "")` for an empty bucket.
    async fn read_bucket_checkpoint(&self) -> Result<(u64, String), PublishError> {
        let Some(got) = self.bucket.get(CHECKPOINT_PATH).await? else {
            return Ok((0, String::new()));
        };
        let note = String::from_utf8(got.bytes.to_vec())
            .map_err(|_| PublishError::Foreign("the bucket's checkpoint is not UTF-8".into()))?;
        let size = check_bucket_head(&self.store, &self.verifier, &note)?;
        self.status.published_size.store(size, Ordering::Relaxed);
        Ok((size, note))
    }
}

/// Checks that `note`, a checkpoint read from a bucket, is a checkpoint of the log in `store`:
/// signed by `verifier`, of a size this log has, with this log's root at that size. Returns its
/// size.
///
/// # Errors
/// [`PublishError::Foreign`] naming what differs; storage errors.
pub fn check_bucket_head(
    store: &Store,
    verifier: &LogVerifier,
    note: &str,
) -> Result<u64, PublishError> {
    let foreign = PublishError::Foreign;
    let cp = verifier.verify(note).map_err(|e| {
        foreign(format!(
            "the bucket's checkpoint is not this log's (origin {:?}, key {}): {e}",
            verifier.origin(),
            verifier.verifier_key()
        ))
    })?;
    let local = store.latest_checkpoint()?.map_or(0, |c| c.size);
    if cp.size > local {
        return Err(foreign(format!(
            "the bucket's checkpoint has {} entries, this server's log only {local}: this \
             database is behind the published log (restore it with `glasslog restore`)",
            cp.size
        )));
    }
    let root = merkle::root_hash(cp.size, store).map_err(|e| {
        foreign(format!(
            "cannot compute this log's root at {}: {e}",
            cp.size
        ))
    })?;
    if root != cp.root {
        return Err(foreign(format!(
            "the bucket's checkpoint at size {} has root {}, this log has {root}: the two logs \
             diverge, and nothing will be published over the bucket",
            cp.size, cp.root
        )));
    }
    Ok(cp.size)
}

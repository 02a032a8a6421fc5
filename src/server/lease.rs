//! The sequencing lease: with `--publish s3://…`, a server sequences only while it holds a lease
//! kept in the bucket, so that two servers never extend the same published log, not even for a
//! moment (each acknowledgement hands out a signed checkpoint: two sequencers would be a fork).
//!
//! The lease is one object, [`LEASE_OBJECT`], next to the checkpoint: a JSON record naming the
//! holder, its expiry (Unix ms) and the log head it last published. Every write of it is a
//! compare-and-swap on its ETag (S3 `If-Match`, or `If-None-Match: *` to create it), so of two
//! servers racing for it exactly one wins.
//!
//! - **Taking it** ([`acquire`]): only if it is absent, expired, released, or already this
//!   server's (the holder id is kept in the database, so a restarted server resumes its own lease
//!   at once), and only if the bucket's checkpoint is this log's and this server's log has it
//!   (a server whose database is behind the bucket, or diverges from it, refuses and says why).
//!   A lease held by another live server is refused at start with the holder and its expiry.
//! - **Keeping it**: renewed every TTL/6. The sequencer may sign only while
//!   `now < expiry − TTL/3` by this server's clock ([`Gate`]): when renewals fail (store down),
//!   Submit answers UNAVAILABLE from then on, reads go on, and sequencing resumes with the next
//!   successful renewal. A renewal that loses the compare-and-swap means another server took
//!   the lease: this one stops sequencing for good.
//! - **Releasing it**: at a clean shutdown the expiry is set to 0, so a successor need not wait.
//!
//! # Clock assumption
//! A lease is judged expired by the *next* server's clock, from the expiry the holder wrote by
//! its own clock. The holder stops signing TTL/3 before that expiry (10 s with the default TTL of
//! 30 s), so the scheme is safe while the two clocks differ by less than TTL/3 minus the time one
//! batch takes to commit. Run NTP; raise `lease_ttl_ms` where clocks are worse.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::bucket::{Bucket, BucketError, Swap};
use crate::server::publisher::{check_bucket_head, PublishError, PublishStatus};
use crate::server::storage::{schema, StorageError, Store};
use crate::tlog::merkle;
use crate::tlog::note::LogVerifier;
use crate::tlog::tiles::CHECKPOINT_PATH;
use object_store::UpdateVersion;

/// The lease's object name under the log's prefix.
pub const LEASE_OBJECT: &str = "sequencer-lease.json";
/// The default lease duration.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// Whether the sequencer may sign now. Shared by the lease task and the sequencer.
#[derive(Debug)]
pub struct Gate {
    /// Unix ms until which signing is allowed (`u64::MAX`: no lease is needed).
    open_until_ms: AtomicU64,
    /// Why the gate is shut, when it is.
    why: std::sync::Mutex<String>,
}

impl Gate {
    /// A gate that is always open: the log needs no lease.
    pub fn always_open() -> Arc<Gate> {
        Arc::new(Gate {
            open_until_ms: AtomicU64::new(u64::MAX),
            why: std::sync::Mutex::new(String::new()),
        })
    }

    /// A gate that stays shut until a lease is taken.
    pub fn shut(why: &str) -> Arc<Gate> {
        Arc::new(Gate {
            open_until_ms: AtomicU64::new(0),
            why: std::sync::Mutex::new(why.to_string()),
        })
    }

    /// `Ok` if the sequencer may sign a checkpoint now; otherwise why not.
    ///
    /// # Errors
    /// The reason the log is not accepting writes.
    pub fn check(&self) -> Result<(), String> {
        if now_ms() < self.open_until_ms.load(Ordering::Acquire) {
            Ok(())
        } else {
            Err(self.why.lock().expect("not poisoned").clone())
        }
    }

    pub(crate) fn open_until(&self, ms: u64, why_after: &str) {
        *self.why.lock().expect("not poisoned") = why_after.to_string();
        self.open_until_ms.store(ms, Ordering::Release);
    }

    fn shut_now(&self, why: &str) {
        *self.why.lock().expect("not poisoned") = why.to_string();
        self.open_until_ms.store(0, Ordering::Release);
    }
}

/// The lease record, as stored in the bucket.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LeaseRecord {
    /// Who holds it: `host/holder-id`, the id fixed per database.
    pub holder: String,
    /// Unix ms after which it is free; 0 once released.
    pub expires_unix_ms: u64,
    /// The size of the checkpoint the holder last published.
    pub published_size: u64,
    /// That checkpoint's root hash (standard base64).
    pub published_root: String,
}

/// Why the lease cannot be taken or kept.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "{url}: the sequencing lease is held by {holder} for {secs} s more: another server is \
         sequencing this log; this one will not (stop that one first, or wait for its lease to \
         expire)"
    )]
    Held {
        url: String,
        holder: String,
        secs: u64,
    },
    #[error("{url}: another server took the sequencing lease while this one was taking it")]
    Raced { url: String },
    #[error("{url}: {reason}")]
    Refused { url: String, reason: String },
    #[error(transparent)]
    Bucket(#[from] BucketError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A taken lease.
pub struct Lease {
    bucket: Arc<Bucket>,
    holder: String,
    version: UpdateVersion,
    ttl: Duration,
    gate: Arc<Gate>,
}

/// This server's holder id: `host/id`, the id created once per database.
///
/// # Errors
/// Storage errors.
pub fn holder_id(store: &Store) -> Result<String, StorageError> {
    let id = match store.meta(schema::META_LEASE_HOLDER)? {
        Some(id) => String::from_utf8_lossy(&id).into_owned(),
        None => {
            let mut bytes = [0u8; 8];
            rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
            let id = hex::encode(bytes);
            let mut b = store.batch();
            b.put_meta(schema::META_LEASE_HOLDER, id.as_bytes());
            store.commit(b)?;
            id
        }
    };
    let host = crate::keyfile::hostname();
    Ok(format!("{host}/{id}"))
}

/// Takes the lease in `bucket` for the log in `store` and opens `gate` until its expiry.
///
/// # Errors
/// [`LeaseError::Held`] if another server holds it; [`LeaseError::Refused`] if the bucket's log
/// is not this server's log or is ahead of it; store errors.
pub async fn acquire(
    bucket: Arc<Bucket>,
    store: &Store,
    verifier: &LogVerifier,
    ttl: Duration,
    gate: Arc<Gate>,
) -> Result<Lease, LeaseError> {
    let url = bucket.url().to_string();
    let holder = holder_id(store)?;
    let current = bucket.get(LEASE_OBJECT).await?;
    if let Some(current) = &current {
        match serde_json::from_slice::<LeaseRecord>(&current.bytes) {
            Ok(r) if r.holder != holder && r.expires_unix_ms > now_ms() => {
                return Err(LeaseError::Held {
                    url,
                    holder: r.holder,
                    secs: (r.expires_unix_ms - now_ms()).div_ceil(1000),
                })
            }
            Ok(_) => {}
            Err(e) => {
                return Err(LeaseError::Refused {
                    url,
                    reason: format!("{LEASE_OBJECT} is not a glasslog lease ({e}); remove it only if you know no server is sequencing"),
                })
            }
        }
    }
    // The bucket's head must be this log's, and this server must have all of it.
    let (published_size, published_root) = match bucket.get(CHECKPOINT_PATH).await? {
        None => (0, merkle::EMPTY_HASH),
        Some(cp) => {
            let note = String::from_utf8_lossy(&cp.bytes).into_owned();
            let size = check_bucket_head(store, verifier, &note).map_err(|e| match e {
                PublishError::Storage(e) => LeaseError::Storage(e),
                other => LeaseError::Refused {
                    url: url.clone(),
                    reason: other.to_string(),
                },
            })?;
            let root = verifier
                .verify(&note)
                .map(|c| c.root)
                .map_err(|e| LeaseError::Refused {
                    url: url.clone(),
                    reason: e.to_string(),
                })?;
            (size, root)
        }
    };
    let record = LeaseRecord {
        holder: holder.clone(),
        expires_unix_ms: 0,
        published_size,
        published_root: published_root.to_string(),
    };
    let mut lease = Lease {
        bucket,
        holder,
        version: UpdateVersion {
            e_tag: None,
            version: None,
        },
        ttl,
        gate,
    };
    let expected = current.map(|c| c.version);
    match lease.write(record, expected.as_ref()).await? {
        true => Ok(lease),
        false => Err(LeaseError::Raced { url }),
    }
}

impl Lease {
    /// Writes `record` with a fresh expiry over `expected` (`None`: create); on success opens the
    /// gate until TTL/3 before the new expiry. `Ok(false)`: the compare-and-swap was lost.
    async fn write(
        &mut self,
        mut record: LeaseRecord,
        expected: Option<&UpdateVersion>,
    ) -> Result<bool, LeaseError> {
        let sent = now_ms();
        let ttl = self.ttl.as_millis() as u64;
        record.expires_unix_ms = sent + ttl;
        let bytes = serde_json::to_vec_pretty(&record).expect("serializable");
        match self
            .bucket
            .put_if(LEASE_OBJECT, Bytes::from(bytes), expected)
            .await?
        {
            Swap::Done(v) => {
                self.version = v;
                self.gate.open_until(
                    sent + ttl - ttl / 3,
                    &format!(
                        "the sequencing lease in {} could not be renewed in time; the log \
                         accepts no writes until it is (reads go on)",
                        self.bucket.url()
                    ),
                );
                Ok(true)
            }
            Swap::Lost => Ok(false),
        }
    }

    /// Keeps the lease until `release` turns true (the caller sends it once its sequencer has
    /// stopped), then releases it. Renewals name the latest published head from `status`.
    pub fn keep(
        mut self,
        store: Arc<Store>,
        status: Arc<PublishStatus>,
        mut release: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let every = self.ttl / 6;
            loop {
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    _ = release.wait_for(|&s| s) => break,
                }
                let record = self.record(&store, &status, 1);
                let expected = self.version.clone();
                match self.write(record, Some(&expected)).await {
                    Ok(true) => {}
                    // A renewal whose answer was lost (a timeout) may have landed: the lease is
                    // then still ours under a newer ETag. Adopt it and renew again next tick.
                    Ok(false) if self.still_ours().await => {}
                    Ok(false) => {
                        let why = format!(
                            "another server took the sequencing lease in {}; this one no longer \
                             sequences (restart it once the other has stopped)",
                            self.bucket.url()
                        );
                        tracing::error!("{why}");
                        self.gate.shut_now(&why);
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot renew the sequencing lease; will retry")
                    }
                }
            }
            // Release: the sequencer has stopped signing (shutdown), so a successor may start.
            self.gate.shut_now("the server is shutting down");
            let record = self.record(&store, &status, 0);
            let bytes = serde_json::to_vec_pretty(&record).expect("serializable");
            let expected = self.version.clone();
            match self
                .bucket
                .put_if(LEASE_OBJECT, Bytes::from(bytes), Some(&expected))
                .await
            {
                Ok(Swap::Done(_)) => tracing::info!("sequencing lease released"),
                Ok(Swap::Lost) => {
                    tracing::warn!("the sequencing lease was no longer ours at shutdown")
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot release the sequencing lease; it expires by itself")
                }
            }
        })
    }

    /// Whether the lease object still names this holder; if so, its current version is adopted.
    async fn still_ours(&mut self) -> bool {
        let Ok(Some(current)) = self.bucket.get(LEASE_OBJECT).await else {
            return false;
        };
        match serde_json::from_slice::<LeaseRecord>(&current.bytes) {
            Ok(r) if r.holder == self.holder && r.expires_unix_ms > now_ms() => {
                self.version = current.version;
                true
            }
            _ => false,
        }
    }

    /// A record naming the published head; `live` 0 marks it released.
    fn record(&self, store: &Store, status: &PublishStatus, live: u64) -> LeaseRecord {
        let size = status.published_size.load(Ordering::Relaxed);
        let root = store
            .checkpoint(size)
            .ok()
            .flatten()
            .and_then(|c| c.checkpoint().ok())
            .map_or_else(String::new, |c| c.root.to_string());
        LeaseRecord {
            holder: self.holder.clone(),
            expires_unix_ms: live,
            published_size: size,
            published_root: root,
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

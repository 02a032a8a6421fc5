//! The sequencer: the one task that owns the tree and appends to it by group commit.
//!
//! Submissions reach it through a bounded channel, each with a oneshot for its answer. The
//! sequencer takes what has queued (at most `max_batch` entries) and, while more submissions
//! are on their way (announced by [`Sequencer::announce`] when their admission began) than the
//! batch holds, waits at most `batch_window` for them ([`gather`]); then it commits the batch:
//!
//! 1. Assign indexes in arrival order; a submission whose dedup key is already logged (on disk
//!    or earlier in this batch) is answered with the original index and adds nothing.
//! 2. Encode each new leaf once, with the log's clock (never decreasing), and compute the stored
//!    hashes it completes, reading older hashes from disk and newer ones from this batch. A leaf
//!    longer than [`crate::entry::MAX_LEAF_BYTES`] (it could not be served as tiles) is refused
//!    here, where its length is first known (the time is part of it): its submitter is answered
//!    at once with [`SequencerError::LeafTooLarge`], and it takes no index.
//! 3. Compute the new root and sign a checkpoint for the new size.
//! 4. Write entries, hashes, lookups and the checkpoint in one RocksDB batch with a synced WAL.
//!    *Crash here, before or during the write:* the batch is absent or whole on restart, no client
//!    was answered, and the checkpoint was never served; clients retry and dedup finds what landed.
//! 5. Publish the checkpoint (readers may now use the new size), broadcast the batch to Tail
//!    streams, and answer every waiter. *Crash after the write:* everything answered is durable.
//!
//! A failed write is fatal: the sequencer no longer knows the state on disk. It answers its
//! waiters and everything queued with [`SequencerError::Unavailable`], stops, and reports the
//! error through its join handle; the server then shuts down so that the log reopens from disk.
//!
//! Readers never wait for the sequencer: they read the latest published checkpoint from a
//! `watch` channel and read storage below its size.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::entry::{check_leaf_len, decode_leaf, LeafTooLarge, PendingEntry};
use crate::server::config::SequencerConfig;
use crate::server::lease::Gate;
use crate::server::metrics::{Held, Metrics};
use crate::server::storage::{StorageError, Store};
use crate::tlog::checkpoint::Checkpoint;
use crate::tlog::merkle::{self, Hash, HashReader};
use crate::tlog::note::{LogSigner, LogVerifier};

/// Errors of the sequencer.
#[derive(Debug, thiserror::Error)]
pub enum SequencerError {
    /// The sequencer has stopped (shutdown, or a fatal write error); the submission was not logged
    /// unless a later resubmission finds it as a duplicate.
    #[error("the log is not accepting writes: {0}")]
    Unavailable(String),
    /// Storage failed while opening or committing.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The state on disk contradicts itself or the log key.
    #[error("log state on disk is inconsistent: {0}")]
    Inconsistent(String),
    /// The submission's leaf would be longer than [`crate::entry::MAX_LEAF_BYTES`]; it was not
    /// logged. Only that submission fails: the batch goes on without it.
    #[error(transparent)]
    LeafTooLarge(#[from] LeafTooLarge),
}

/// A checkpoint that is durable and signed, as published to readers.
#[derive(Debug)]
pub struct Published {
    pub checkpoint: Checkpoint,
    /// The signed note text.
    pub note: String,
    /// When this process published it (the start of publication and witnessing lag).
    pub at: std::time::Instant,
}

impl Published {
    /// A checkpoint published now.
    pub fn new(checkpoint: Checkpoint, note: String) -> Published {
        Published {
            checkpoint,
            note,
            at: std::time::Instant::now(),
        }
    }
}

/// One committed batch, as broadcast to Tail streams.
#[derive(Debug)]
pub struct CommittedBatch {
    /// Index of the first new leaf (the tree size before the batch).
    pub start: u64,
    /// The new leaves' data, in index order.
    pub leaves: Vec<Vec<u8>>,
    /// The checkpoint covering exactly `start + leaves.len()` entries.
    pub published: Arc<Published>,
}

/// The sequencer's answer to one submission.
#[derive(Debug)]
pub struct Appended {
    pub index: u64,
    /// True when the submission was already logged at `index`.
    pub duplicate: bool,
    /// The batch that answered; it holds the checkpoint, and the leaf data when not a duplicate.
    pub batch: Arc<CommittedBatch>,
}

impl Appended {
    /// The leaf data of a new entry; `None` for a duplicate (read it from storage).
    pub fn leaf_data(&self) -> Option<&[u8]> {
        let offset = self.index.checked_sub(self.batch.start)?;
        if self.duplicate {
            return None;
        }
        self.batch
            .leaves
            .get(usize::try_from(offset).ok()?)
            .map(Vec::as_slice)
    }
}

struct Request {
    entry: PendingEntry,
    reply: oneshot::Sender<Result<Appended, SequencerError>>,
    /// Its unit of the queue depth gauge, until [`gather`] takes it into a batch.
    queued: Option<Held>,
    /// Its unit of the count of submissions on their way, until [`gather`] takes it.
    announced: Option<Announced>,
}

/// A submission on its way to the sequencer: counted from [`Sequencer::announce`] until the
/// sequencer takes it into a batch, or until it is dropped (the submission was refused on its
/// way). While more are counted than a batch holds, the sequencer waits up to `batch_window`
/// for them before it commits, so that one fsync and one checkpoint serve more submissions.
#[derive(Debug)]
pub struct Announced(Arc<AtomicUsize>);

impl Drop for Announced {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

enum Message {
    Append(Request),
    /// Stop taking submissions; commit what is queued, then stop.
    Close,
}

/// The handle through which the server submits entries and follows checkpoints. Cloning is cheap.
#[derive(Clone)]
pub struct Sequencer {
    requests: mpsc::Sender<Message>,
    /// Submissions announced and not yet taken into a batch ([`Announced`]).
    on_the_way: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    published: watch::Receiver<Arc<Published>>,
    batches: broadcast::Sender<Arc<CommittedBatch>>,
}

/// How many committed batches a Tail stream may fall behind before it reads from storage instead.
const BROADCAST_CAPACITY: usize = 64;

impl Sequencer {
    /// Opens the log on `store` and starts the sequencer thread. On an empty store it commits the
    /// checkpoint of the empty tree first. The returned join handle yields the error that
    /// stopped the sequencer, or `Ok` once every `Sequencer` handle has been dropped.
    ///
    /// # Errors
    /// Storage errors, or [`SequencerError::Inconsistent`] if the latest checkpoint on disk is not
    /// signed by `signer` or does not match the stored hashes.
    /// Every batch waits for `gate` ([`crate::server::lease`]): while it is shut, submissions
    /// are answered [`SequencerError::Unavailable`] with its reason and nothing is signed.
    /// The queue depth, each committed batch and each signed checkpoint go to `metrics`.
    pub fn start(
        store: Arc<Store>,
        signer: LogSigner,
        config: SequencerConfig,
        gate: Arc<Gate>,
        metrics: Arc<Metrics>,
    ) -> Result<
        (
            Sequencer,
            std::thread::JoinHandle<Result<(), SequencerError>>,
        ),
        SequencerError,
    > {
        let state = State::open(store, signer, metrics.clone())?;
        let (requests, rx) = mpsc::channel(config.queue_depth.max(1));
        let (published_tx, published) = watch::channel(state.published.clone());
        let (batches, _) = broadcast::channel(BROADCAST_CAPACITY);
        let batches_tx = batches.clone();
        let on_the_way = Arc::new(AtomicUsize::new(0));
        let coming = Arc::clone(&on_the_way);
        let thread = std::thread::Builder::new()
            .name("sequencer".into())
            .spawn(move || state.run(rx, coming, config, gate, published_tx, batches_tx))
            .map_err(|e| {
                SequencerError::Unavailable(format!("cannot start sequencer thread: {e}"))
            })?;
        Ok((
            Sequencer {
                requests,
                on_the_way,
                metrics,
                published,
                batches,
            },
            thread,
        ))
    }

    /// Announces a submission that is on its way (being admitted): until the returned value is
    /// given to [`Sequencer::append_announced`] and taken into a batch, or dropped, it counts
    /// among those the sequencer may wait for (up to `batch_window`) before committing a batch.
    pub fn announce(&self) -> Announced {
        self.on_the_way.fetch_add(1, Ordering::Relaxed);
        Announced(Arc::clone(&self.on_the_way))
    }

    /// Appends `entry`, returning once it is durable and covered by a published checkpoint.
    ///
    /// # Errors
    /// [`SequencerError::Unavailable`] if the sequencer stopped before the entry was committed;
    /// [`SequencerError::LeafTooLarge`] if its leaf would be longer than
    /// [`crate::entry::MAX_LEAF_BYTES`].
    pub async fn append(&self, entry: PendingEntry) -> Result<Appended, SequencerError> {
        self.append_announced(entry, self.announce()).await
    }

    /// [`Sequencer::append`] of a submission announced earlier by [`Sequencer::announce`].
    ///
    /// # Errors
    /// As [`Sequencer::append`].
    pub async fn append_announced(
        &self,
        entry: PendingEntry,
        announced: Announced,
    ) -> Result<Appended, SequencerError> {
        let (reply, rx) = oneshot::channel();
        let queued = Some(self.metrics.queued());
        self.requests
            .send(Message::Append(Request {
                entry,
                reply,
                queued,
                announced: Some(announced),
            }))
            .await
            .map_err(|_| SequencerError::Unavailable("the sequencer has stopped".into()))?;
        rx.await.map_err(|_| {
            SequencerError::Unavailable("the sequencer stopped before committing".into())
        })?
    }

    /// Stops the sequencer: submissions already queued are committed and answered, later ones
    /// get [`SequencerError::Unavailable`]. The thread exits once the queue is drained.
    pub async fn close(&self) {
        // An error means the sequencer has already stopped.
        let _ = self.requests.send(Message::Close).await;
    }

    /// The latest published checkpoint.
    pub fn latest(&self) -> Arc<Published> {
        self.published.borrow().clone()
    }

    /// A receiver that sees every newly published checkpoint.
    pub fn watch(&self) -> watch::Receiver<Arc<Published>> {
        self.published.clone()
    }

    /// A receiver of every batch committed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<CommittedBatch>> {
        self.batches.subscribe()
    }
}

/// What the sequencer thread owns.
struct State {
    store: Arc<Store>,
    signer: LogSigner,
    /// The latest committed checkpoint; its size is the tree size.
    published: Arc<Published>,
    /// `integrated_time_ms` of the last entry; the clock given to new entries never goes below it.
    last_time_ms: i64,
    metrics: Arc<Metrics>,
}

impl State {
    /// Opens the tree at the latest stored checkpoint. Its signing time, for
    /// [`Metrics::checkpoint`], is taken to be its last entry's `integrated_time_ms` (that
    /// batch's clock), or now for an empty tree.
    fn open(
        store: Arc<Store>,
        signer: LogSigner,
        metrics: Arc<Metrics>,
    ) -> Result<State, SequencerError> {
        let verifier = LogVerifier::new(&signer.verifier_key())
            .map_err(|e| SequencerError::Inconsistent(format!("log key: {e}")))?;
        let Some(stored) = store.latest_checkpoint()? else {
            return State::init_empty(store, signer, metrics);
        };
        let checkpoint = verifier.verify(&stored.note).map_err(|e| {
            SequencerError::Inconsistent(format!(
                "the latest checkpoint on disk does not verify with the log key {}: {e}",
                signer.verifier_key()
            ))
        })?;
        if checkpoint.size != stored.size {
            return Err(SequencerError::Inconsistent(format!(
                "checkpoint stored at size {} says size {}",
                stored.size, checkpoint.size
            )));
        }
        let root = merkle::root_hash(checkpoint.size, &*store)
            .map_err(|e| SequencerError::Inconsistent(format!("cannot recompute the root: {e}")))?;
        if root != checkpoint.root {
            return Err(SequencerError::Inconsistent(format!(
                "stored hashes give root {root} at size {} but the checkpoint says {}",
                checkpoint.size, checkpoint.root
            )));
        }
        let last_time_ms = match checkpoint.size {
            0 => 0,
            n => {
                let leaf = store.entry(n - 1)?.ok_or_else(|| {
                    SequencerError::Inconsistent(format!("entry {} is missing", n - 1))
                })?;
                decode_leaf(&leaf)
                    .map_err(|e| {
                        SequencerError::Inconsistent(format!(
                            "entry {} does not decode: {e}",
                            n - 1
                        ))
                    })?
                    .integrated_time_ms
            }
        };
        let signed_ms = if checkpoint.size == 0 {
            now_ms()
        } else {
            last_time_ms
        };
        metrics.checkpoint(checkpoint.size, signed_ms);
        let published = Arc::new(Published::new(checkpoint, stored.note));
        Ok(State {
            store,
            signer,
            published,
            last_time_ms,
            metrics,
        })
    }

    fn init_empty(
        store: Arc<Store>,
        signer: LogSigner,
        metrics: Arc<Metrics>,
    ) -> Result<State, SequencerError> {
        let checkpoint = Checkpoint {
            origin: signer.origin().to_string(),
            size: 0,
            root: merkle::EMPTY_HASH,
        };
        let note = signer
            .sign(&checkpoint)
            .map_err(|e| SequencerError::Inconsistent(format!("cannot sign: {e}")))?;
        let mut batch = store.batch();
        batch.put_checkpoint(0, &note);
        store.commit(batch)?;
        metrics.checkpoint(0, now_ms());
        let published = Arc::new(Published::new(checkpoint, note));
        Ok(State {
            store,
            signer,
            published,
            last_time_ms: 0,
            metrics,
        })
    }

    /// The sequencer thread: a current-thread runtime that waits for submissions, and does the
    /// blocking work of a commit itself (nothing else runs on this runtime).
    fn run(
        mut self,
        mut rx: mpsc::Receiver<Message>,
        on_the_way: Arc<AtomicUsize>,
        config: SequencerConfig,
        gate: Arc<Gate>,
        published_tx: watch::Sender<Arc<Published>>,
        batches_tx: broadcast::Sender<Arc<CommittedBatch>>,
    ) -> Result<(), SequencerError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| {
                SequencerError::Unavailable(format!("cannot start sequencer runtime: {e}"))
            })?;
        rt.block_on(async {
            while let Some(requests) = gather(&mut rx, &on_the_way, &config).await {
                let taken = std::time::Instant::now();
                if let Err(why) = gate.check() {
                    for r in requests {
                        let _ = r.reply.send(Err(SequencerError::Unavailable(why.clone())));
                    }
                    continue;
                }
                match self.commit(requests) {
                    Ok((batch, answers)) => {
                        published_tx.send_replace(batch.published.clone());
                        // No receivers is fine: there may be no Tail stream.
                        let _ = batches_tx.send(batch.clone());
                        for (reply, index, duplicate) in answers {
                            let _ = reply.send(Ok(Appended {
                                index,
                                duplicate,
                                batch: batch.clone(),
                            }));
                        }
                        if !batch.leaves.is_empty() {
                            self.metrics
                                .batch(batch.leaves.len() as u64, taken.elapsed());
                        }
                    }
                    Err((e, replies)) => {
                        tracing::error!(error = %e, "commit failed; the sequencer stops");
                        let msg = format!("commit failed: {e}");
                        for reply in replies {
                            let _ = reply.send(Err(SequencerError::Unavailable(msg.clone())));
                        }
                        rx.close();
                        while let Some(m) = rx.recv().await {
                            if let Message::Append(r) = m {
                                let _ = r.reply.send(Err(SequencerError::Unavailable(msg.clone())));
                            }
                        }
                        return Err(e);
                    }
                }
            }
            Ok(())
        })
    }

    /// Steps 1–4 of the module doc for one batch. On error, hands back every reply sender.
    #[allow(clippy::type_complexity)]
    fn commit(
        &mut self,
        requests: Vec<Request>,
    ) -> Result<
        (
            Arc<CommittedBatch>,
            Vec<(oneshot::Sender<Result<Appended, SequencerError>>, u64, bool)>,
        ),
        (
            SequencerError,
            Vec<oneshot::Sender<Result<Appended, SequencerError>>>,
        ),
    > {
        let start = self.published.checkpoint.size;
        let mut answers = Vec::with_capacity(requests.len());
        let mut leaves: Vec<Vec<u8>> = Vec::new();
        let mut overlay = Overlay::new(&self.store, start);
        let mut in_batch: HashMap<[u8; 32], u64> = HashMap::new();
        let mut batch = self.store.batch();
        let now_ms = now_ms().max(self.last_time_ms);

        let mut failed = None;
        for req in requests {
            if failed.is_some() {
                answers.push((req.reply, 0, false));
                continue;
            }
            let existing = match in_batch.get(&req.entry.dedup_key) {
                Some(&i) => Ok(Some(i)),
                None => self.store.index_of_dedup(&req.entry.dedup_key),
            };
            match existing {
                Ok(Some(index)) => answers.push((req.reply, index, true)),
                Ok(None) => {
                    // Refused before it takes an index; answering now needs nothing durable.
                    if let Err(e) = check_leaf_len(req.entry.leaf_len(now_ms)) {
                        let _ = req.reply.send(Err(e.into()));
                        continue;
                    }
                    let index = start + leaves.len() as u64;
                    let leaf = req.entry.encode_leaf(now_ms);
                    let leaf_hash = merkle::leaf_hash(&leaf);
                    if let Err(e) = overlay.append(index, leaf_hash) {
                        failed = Some(e);
                    }
                    batch.put_entry(index, &leaf, &leaf_hash, &req.entry.dedup_key);
                    for prefix in &req.entry.search_prefixes {
                        batch.put_search(prefix, index);
                    }
                    in_batch.insert(req.entry.dedup_key, index);
                    leaves.push(leaf);
                    answers.push((req.reply, index, false));
                }
                Err(e) => failed = Some(e.into()),
            }
        }
        let size = start + leaves.len() as u64;
        let result = failed.map_or_else(|| self.sign_and_write(batch, &overlay, size), Err);
        let published = match result {
            Ok(p) => p,
            Err(e) => return Err((e, answers.into_iter().map(|a| a.0).collect())),
        };
        self.last_time_ms = now_ms;
        self.published = published.clone();
        self.metrics.checkpoint(size, now_ms);
        Ok((
            Arc::new(CommittedBatch {
                start,
                leaves,
                published,
            }),
            answers,
        ))
    }

    /// Step 3 and 4: signs the checkpoint for `size` and writes the batch durably.
    fn sign_and_write(
        &self,
        mut batch: crate::server::storage::CommitBatch<'_>,
        overlay: &Overlay<'_>,
        size: u64,
    ) -> Result<Arc<Published>, SequencerError> {
        if size == self.published.checkpoint.size {
            // Only duplicates: nothing to write, the current checkpoint covers them.
            return Ok(self.published.clone());
        }
        let root = merkle::root_hash(size, overlay)
            .map_err(|e| SequencerError::Inconsistent(format!("root at size {size}: {e}")))?;
        let checkpoint = Checkpoint {
            origin: self.signer.origin().to_string(),
            size,
            root,
        };
        let note = self
            .signer
            .sign(&checkpoint)
            .map_err(|e| SequencerError::Inconsistent(format!("cannot sign: {e}")))?;
        for (i, h) in overlay.new_hashes() {
            batch.put_hash(i, h);
        }
        batch.put_checkpoint(size, &note);
        let writing = std::time::Instant::now();
        self.store.commit(batch)?;
        self.metrics.fsync(writing.elapsed());
        Ok(Arc::new(Published::new(checkpoint, note)))
    }
}

/// Waits for one submission, then takes what else is queued, within the batch bounds; while
/// more submissions are on their way (`on_the_way`, see [`Announced`]) than the batch holds,
/// waits for them up to `batch_window` after the first arrived. Returns `None` once the channel
/// is closed (every sender gone, or [`Message::Close`]) and drained. A close only closes the channel: what is
/// already queued is still returned.
///
/// Why wait: when admission (signature checks on the cores) is what limits the rate, the queue
/// holds the few submissions admitted during the last fsync, and a batch that takes only those
/// pays an fsync and a checkpoint signature (and each client a signature check) for a handful
/// of entries. Why not wait for every one: the submitters in a batch wait for its fsync, and the
/// cores have nothing to admit meanwhile. So the batch waits only while more submissions are on
/// their way than it holds, and a submission alone (nothing else on its way) never waits.
async fn gather(
    rx: &mut mpsc::Receiver<Message>,
    on_the_way: &AtomicUsize,
    config: &SequencerConfig,
) -> Option<Vec<Request>> {
    let mut requests = Vec::new();
    // Taken: a request leaves the queue depth gauge and the count on their way here.
    let take = |mut r: Request| {
        r.queued = None;
        r.announced = None;
        r
    };
    while requests.is_empty() {
        match rx.recv().await? {
            Message::Append(r) => requests.push(take(r)),
            Message::Close => rx.close(),
        }
    }
    let deadline = tokio::time::Instant::now() + config.batch_window;
    while requests.len() < config.max_batch {
        let next = match rx.try_recv() {
            Ok(m) => Some(m),
            Err(_) if config.batch_window.is_zero() => None,
            // Fewer on their way than in the batch: commit, and let those be admitted during
            // this fsync rather than hold every submitter in one batch (lockstep, idle cores).
            Err(_) if on_the_way.load(Ordering::Relaxed) <= requests.len() => None,
            // One that is refused on its way is waited for until the deadline at worst.
            Err(_) => tokio::time::timeout_at(deadline, rx.recv())
                .await
                .ok()
                .flatten(),
        };
        match next {
            Some(Message::Append(r)) => requests.push(take(r)),
            Some(Message::Close) => rx.close(),
            None => break,
        }
    }
    Some(requests)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The stored hashes of a batch in progress over those already on disk. Stored hashes are
/// numbered in append order, so the new ones are a contiguous run starting at
/// `stored_hash_count(size before the batch)`.
pub(crate) struct Overlay<'a> {
    store: &'a Store,
    first_new: u64,
    new: Vec<Hash>,
}

impl<'a> Overlay<'a> {
    pub(crate) fn new(store: &'a Store, size: u64) -> Self {
        Overlay {
            store,
            first_new: merkle::stored_hash_count(size),
            new: Vec::new(),
        }
    }

    /// Adds the hashes that appending leaf `index` completes (about two on average).
    pub(crate) fn append(&mut self, index: u64, leaf_hash: Hash) -> Result<(), SequencerError> {
        let hashes = merkle::stored_hashes_for_record_hash(index, leaf_hash, &*self)
            .map_err(|e| SequencerError::Inconsistent(format!("hashing leaf {index}: {e}")))?;
        self.new.extend(hashes);
        Ok(())
    }

    pub(crate) fn new_hashes(&self) -> impl Iterator<Item = (u64, &Hash)> {
        (self.first_new..).zip(self.new.iter())
    }
}

impl HashReader for Overlay<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::tlog::Error> {
        let old: Vec<u64> = indexes
            .iter()
            .copied()
            .filter(|&i| i < self.first_new)
            .collect();
        let mut from_disk = self.store.read_hashes(&old)?.into_iter();
        indexes
            .iter()
            .map(|&i| {
                if i < self.first_new {
                    from_disk
                        .next()
                        .ok_or(tlog_tiles::tlog::Error::IndexesNotInTree)
                } else {
                    usize::try_from(i - self.first_new)
                        .ok()
                        .and_then(|k| self.new.get(k).copied())
                        .ok_or(tlog_tiles::tlog::Error::IndexesNotInTree)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;

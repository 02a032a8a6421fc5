//! Witnessing: with a witness policy (`serve --witness-policy`), the log asks the policy's
//! witnesses to cosign its checkpoints (C2SP tlog-witness v1.0.0), keeps the cosignatures, and
//! publishes the latest checkpoint that meets the policy's quorum.
//!
//! It runs beside acknowledgement, never in its way: Submit answers once its entry is durable and
//! in a log-signed checkpoint, as without a policy; this task follows the published checkpoints.
//!
//! # Rounds
//! The witnesses must cosign the *same* checkpoint for a quorum to form, so the task works in
//! rounds, at most one per `witness_interval` (1 s by default: the rate public witnesses budget
//! for a log): it picks the latest published checkpoint as the target (published means durable, so
//! no witness is ever sent a checkpoint a crash could lose) and sends it to every witness that
//! is idle, out of backoff and has not cosigned it, each with a consistency proof from the size
//! the witness last cosigned. One request is in flight per witness at most, so a slow witness
//! delays only itself. A round settles when the target meets the quorum or no request for it is
//! in flight; the next target is then the latest checkpoint, if the log grew. Answers:
//! - 200: each cosignature line is verified against the witness's key before it is kept;
//! - 409 with a size: the witness's record differs from ours; the next request starts there
//!   (a size above the log's own is a fork of this log somewhere, and is logged as an error);
//! - 409 without a size, 422, 403, 404, other statuses, timeouts: logged, retried with
//!   exponential backoff (1 s doubling to 60 s), never fatal.
//!
//! # Storage
//! Each kept cosignature is added to the `cosigned` note of its checkpoint's size, in one atomic
//! batch with the witness's new size (`meta`), so both survive a restart. Once a checkpoint meets
//! the quorum, the notes of smaller sizes are deleted in the same batch, so the table stays a
//! few notes long. The batch is written
//! to the WAL without its own fsync ([`Store::write_unsynced`]): it becomes durable with the
//! sequencer's next commit, so witnessing adds no fsync to the log's. A crash can lose the last
//! cosignatures gathered; that costs a redo, not safety (each witness keeps its own record, says
//! its size with a 409, and cosigns the next checkpoint). At start the latest cosigned note that
//! meets the policy is published again.

pub mod client;

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::server::prover::Prover;
use crate::server::sequencer::{Published, Sequencer};
use crate::server::storage::{schema, StorageError, Store};
use crate::tlog::checkpoint::Checkpoint;
use crate::tlog::policy::{PolicyWitness, WitnessPolicy};
use crate::tlog::witness_protocol::AddCheckpoint;
use client::{Answer, WitnessClient};

/// How many stored cosigned notes are examined at start for the latest that meets the policy.
const RESTART_SCAN: usize = 10_000;

/// The first retry delay after a failure, doubled per failure in a row up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How often each witness's cosigned size and lag are logged.
const STATUS_EVERY: Duration = Duration::from_secs(30);

/// A witnessed checkpoint: the log's signed note with the cosignatures that meet the policy.
pub type Witnessed = Published;

/// What the rest of the server reads of witnessing.
#[derive(Clone)]
pub struct WitnessingHandle {
    latest: watch::Receiver<Option<Arc<Witnessed>>>,
}

impl WitnessingHandle {
    /// The latest checkpoint that met the policy, if one has.
    pub fn latest(&self) -> Option<Arc<Witnessed>> {
        self.latest.borrow().clone()
    }

    /// Follows the latest witnessed checkpoint.
    pub fn watch(&self) -> watch::Receiver<Option<Arc<Witnessed>>> {
        self.latest.clone()
    }
}

/// One witness of the policy, as the task tracks it.
struct Peer {
    witness: PolicyWitness,
    vkey: String,
    /// The size of the latest checkpoint it cosigned, as far as the log knows (0: none).
    size: u64,
    busy: bool,
    retry_at: Instant,
    /// Failures in a row (the backoff's exponent).
    failures: u32,
    /// 409s with a size in a row: one retry from the size given is immediate, then it backs off.
    resyncs: u32,
}

/// Starts the witnessing task. It stops when `shutdown` becomes true.
///
/// # Errors
/// Storage errors reading the stored witness state.
pub fn start(
    policy: Arc<WitnessPolicy>,
    interval: Duration,
    store: Arc<Store>,
    sequencer: Sequencer,
    shutdown: watch::Receiver<bool>,
) -> Result<WitnessingHandle, StorageError> {
    let mut peers = Vec::new();
    for w in policy.witnesses() {
        let vkey = w.key.to_vkey();
        let size = store
            .meta(&schema::witness_size_key(&vkey))?
            .and_then(|v| schema::decode_u64(&v))
            .unwrap_or(0);
        if w.url.is_none() {
            tracing::warn!(witness = %w.name, "the witness policy gives no URL for this witness; the log cannot ask it to cosign");
        }
        peers.push(Peer {
            witness: w.clone(),
            vkey,
            size,
            busy: false,
            retry_at: Instant::now(),
            failures: 0,
            resyncs: 0,
        });
    }
    let initial = latest_witnessed(&policy, &store)?;
    if let Some(w) = &initial {
        tracing::info!(size = w.checkpoint.size, "latest witnessed checkpoint");
    }
    let (tx, rx) = watch::channel(initial);
    let task = Task {
        policy,
        prover: Prover::new(store.clone()),
        store,
        sequencer,
        peers,
        client: WitnessClient::default(),
        witnessed: tx,
        gathered: None,
        interval,
    };
    tokio::spawn(task.run(shutdown));
    Ok(WitnessingHandle { latest: rx })
}

/// The latest stored cosigned note that meets the policy (of the last [`RESTART_SCAN`]).
fn latest_witnessed(
    policy: &WitnessPolicy,
    store: &Store,
) -> Result<Option<Arc<Witnessed>>, StorageError> {
    for stored in store.cosigned_latest_first(RESTART_SCAN)? {
        if policy.check(&stored.note).is_ok() {
            let checkpoint = stored.checkpoint()?;
            return Ok(Some(Arc::new(witnessed(stored.note, &checkpoint))));
        }
    }
    Ok(None)
}

fn witnessed(note: String, checkpoint: &Checkpoint) -> Witnessed {
    Published::new(checkpoint.clone(), note)
}

/// One answered request: which peer, for which target, and the answer.
type Done = (usize, Arc<Published>, Answer);

struct Task {
    policy: Arc<WitnessPolicy>,
    prover: Prover,
    store: Arc<Store>,
    sequencer: Sequencer,
    peers: Vec<Peer>,
    client: WitnessClient,
    witnessed: watch::Sender<Option<Arc<Witnessed>>>,
    /// The cosignatures of the newest checkpoint any witness cosigned.
    gathered: Option<Gathered>,
    /// The least time between the starts of two rounds.
    interval: Duration,
}

/// The verified cosignature lines of one checkpoint, per witness in policy order.
struct Gathered {
    checkpoint: Arc<Published>,
    lines: Vec<Option<String>>,
}

impl Gathered {
    /// The log's note with the cosignature lines appended, in policy order.
    fn note(&self) -> String {
        let mut note = self.checkpoint.note.clone();
        for line in self.lines.iter().flatten() {
            note.push_str(line);
        }
        note
    }
}

impl Task {
    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut published = self.sequencer.watch();
        let mut inflight = FuturesUnordered::new();
        let mut target: Option<Arc<Published>> = None;
        let mut status_at = Instant::now() + STATUS_EVERY;
        let mut round_at = Instant::now();
        loop {
            // A new target once the current one has settled, the log has grown and the round
            // interval has passed.
            let latest = self.sequencer.latest();
            let settled = match &target {
                None => true,
                Some(t) => {
                    !self.peers.iter().any(|p| p.busy)
                        || self
                            .witnessed
                            .borrow()
                            .as_ref()
                            .is_some_and(|w| w.checkpoint.size >= t.checkpoint.size)
                }
            };
            let grown = latest.checkpoint.size > 0
                && target
                    .as_ref()
                    .is_none_or(|t| latest.checkpoint.size > t.checkpoint.size);
            let mut wake = status_at;
            if grown && settled {
                if Instant::now() >= round_at {
                    target = Some(latest.clone());
                    round_at = Instant::now() + self.interval;
                } else {
                    wake = wake.min(round_at);
                }
            }
            if let Some(t) = &target {
                for i in 0..self.peers.len() {
                    if let Some(req) = self.request_for(i, t) {
                        self.peers[i].busy = true;
                        let client = self.client.clone();
                        let url = self.peers[i].witness.url.clone().unwrap_or_default();
                        let t = t.clone();
                        inflight.push(async move {
                            let answer = client.add_checkpoint(&url, &req).await;
                            (i, t, answer)
                        });
                    }
                }
            }
            if let Some(retry) = self.next_retry(target.as_ref()) {
                wake = wake.min(retry);
            }
            tokio::select! {
                Some(done) = inflight.next(), if !inflight.is_empty() => {
                    if let Err(e) = self.answered(done).await {
                        tracing::error!(error = %e, "cannot store a cosignature; witnessing stops");
                        return;
                    }
                }
                r = published.changed() => if r.is_err() { return },
                () = tokio::time::sleep_until(wake) => {
                    if Instant::now() >= status_at {
                        self.log_status(latest.checkpoint.size);
                        status_at = Instant::now() + STATUS_EVERY;
                    }
                }
                // (The guard wait_for returns is not Send: drop it inside.)
                () = async { let _ = shutdown.wait_for(|&s| s).await; } => return,
            }
        }
    }

    /// The request to send peer `i` for target `t` now, if it should get one.
    fn request_for(&self, i: usize, t: &Published) -> Option<AddCheckpoint> {
        let p = &self.peers[i];
        let size = t.checkpoint.size;
        if p.busy || p.witness.url.is_none() || Instant::now() < p.retry_at || p.size > size {
            return None;
        }
        if p.size == size && self.has_cosignature(i, size) {
            return None;
        }
        let proof = if p.size == 0 || p.size == size {
            Vec::new()
        } else {
            match self.prover.consistency(p.size, size) {
                Ok(proof) => proof,
                Err(e) => {
                    tracing::error!(witness = %p.witness.name, from = p.size, to = size, error = %e, "cannot prove consistency for a witness");
                    return None;
                }
            }
        };
        Some(AddCheckpoint {
            old_size: p.size,
            proof,
            note: t.note.clone(),
        })
    }

    /// Handles one answer. Only a storage failure is an error.
    async fn answered(&mut self, (i, t, answer): Done) -> Result<(), StorageError> {
        self.peers[i].busy = false;
        let name = self.peers[i].witness.name.clone();
        let size = t.checkpoint.size;
        match answer {
            Answer::Cosigned(lines) => {
                // The log's notes have no extension lines: the text cosigned is the body.
                let text = t.checkpoint.to_body();
                let line = match self.policy.cosignature_by(i, &text, &lines) {
                    Ok(Some(line)) => line,
                    Ok(None) => {
                        self.failed(i, "it answered 200 without a cosignature by its key");
                        return Ok(());
                    }
                    Err(e) => {
                        self.failed(i, &format!("its answer does not verify: {e}"));
                        return Ok(());
                    }
                };
                self.keep(i, &t, line).await?;
                let p = &mut self.peers[i];
                p.size = size;
                p.failures = 0;
                p.resyncs = 0;
                tracing::debug!(witness = %name, size, "cosigned");
            }
            Answer::KnownSize(known) if known > self.sequencer.latest().checkpoint.size => {
                tracing::error!(witness = %name, witness_size = known,
                    "the witness says it cosigned a checkpoint of this log larger than the log: another server signs with this log's key, or the log lost entries");
                self.failed(i, "it holds a larger tree of this log");
            }
            Answer::KnownSize(known) => {
                tracing::info!(witness = %name, was = self.peers[i].size, known, "the witness's record differs; continuing from its size");
                self.peers[i].size = known;
                self.peers[i].resyncs += 1;
                if self.peers[i].resyncs > 1 {
                    self.failed(i, "409 again");
                }
            }
            Answer::Conflict(text) => {
                tracing::error!(witness = %name, size, answer = %text,
                    "the witness cosigned another root for this size: this log forked, or the witness is wrong");
                self.failed(i, "409: another root at this size");
            }
            Answer::Failed(text) => self.failed(i, &text),
        }
        Ok(())
    }

    /// Stores peer `i`'s verified cosignature `line` of `t` with its new size, then publishes
    /// `t` if it now meets the policy and is newer (or better cosigned) than the latest
    /// witnessed checkpoint. The cosignatures of the latest target are kept in memory
    /// ([`Gathered`]), so no stored note is read or re-verified on the common path.
    async fn keep(
        &mut self,
        i: usize,
        t: &Arc<Published>,
        line: String,
    ) -> Result<(), StorageError> {
        let size = t.checkpoint.size;
        let current = self
            .gathered
            .as_ref()
            .is_some_and(|g| g.checkpoint.checkpoint.size == size);
        let mut gathered = match self.gathered.take() {
            Some(g) if current => g,
            other => {
                // Another checkpoint: start from what is stored of it (after a restart, or for
                // a slow witness answering for an older one).
                let lines = match self.store.cosigned(size)? {
                    Some(stored) => self
                        .policy
                        .cosignatures(&stored.note)
                        .map_or_else(|_| vec![None; self.peers.len()], |c| c.lines),
                    None => vec![None; self.peers.len()],
                };
                let newest = other
                    .as_ref()
                    .is_none_or(|g| g.checkpoint.checkpoint.size < size);
                if !newest {
                    self.gathered = other;
                }
                Gathered {
                    checkpoint: t.clone(),
                    lines,
                }
            }
        };
        gathered.lines[i] = Some(line);
        let note = gathered.note();
        let signed: Vec<bool> = gathered.lines.iter().map(Option::is_some).collect();
        let met = self.policy.quorum_met(&signed);
        let store = self.store.clone();
        let (vkey, stored_note) = (self.peers[i].vkey.clone(), note.clone());
        tokio::task::spawn_blocking(move || {
            let mut b = store.batch();
            b.put_cosigned(size, &stored_note);
            b.put_meta(&schema::witness_size_key(&vkey), &schema::u64_key(size));
            if met {
                // Older notes are superseded: the table holds the latest witnessed checkpoint
                // and the ones after it still gathering cosignatures, whatever the log's age.
                b.delete_cosigned_below(size);
            }
            store.write_unsynced(b)
        })
        .await
        .map_err(|e| StorageError::Corrupt(format!("cosignature write task: {e}")))??;
        // Newer, or the same checkpoint with more cosignatures.
        let better = self.witnessed.borrow().as_ref().is_none_or(|w| {
            w.checkpoint.size < size || (w.checkpoint.size == size && w.note.len() < note.len())
        });
        if better && met {
            tracing::debug!(size, "checkpoint witnessed");
            self.witnessed
                .send_replace(Some(Arc::new(witnessed(note, &t.checkpoint))));
        }
        if self.gathered.is_none() {
            self.gathered = Some(gathered);
        }
        Ok(())
    }

    fn failed(&mut self, i: usize, reason: &str) {
        let p = &mut self.peers[i];
        let delay = FIRST_BACKOFF
            .saturating_mul(1 << p.failures.min(6))
            .min(MAX_BACKOFF);
        p.failures += 1;
        p.retry_at = Instant::now() + delay;
        tracing::warn!(witness = %p.witness.name, reason, retry_in = ?delay, "witness did not cosign");
    }

    fn has_line(&self, note: &str, i: usize) -> bool {
        self.policy
            .cosignatures(note)
            .is_ok_and(|c| c.lines[i].is_some())
    }

    fn has_cosignature(&self, i: usize, size: u64) -> bool {
        if let Some(g) = self
            .gathered
            .as_ref()
            .filter(|g| g.checkpoint.checkpoint.size == size)
        {
            return g.lines[i].is_some();
        }
        matches!(self.store.cosigned(size), Ok(Some(s)) if self.has_line(&s.note, i))
    }

    /// When the earliest peer in backoff may be asked for `target` again.
    fn next_retry(&self, target: Option<&Arc<Published>>) -> Option<Instant> {
        let t = target?;
        self.peers
            .iter()
            .filter(|p| !p.busy && p.witness.url.is_some() && p.size <= t.checkpoint.size)
            .map(|p| p.retry_at)
            .filter(|&at| at > Instant::now())
            .min()
    }

    fn log_status(&self, log_size: u64) {
        for p in &self.peers {
            tracing::info!(witness = %p.witness.name, cosigned_size = p.size, lag = log_size.saturating_sub(p.size), "witness status");
        }
    }
}

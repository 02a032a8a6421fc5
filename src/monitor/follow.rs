//! The monitor's network side: connects, follows `Tail` from the verified position, feeds the
//! [`Engine`], fetches the consistency proofs that explain a failure, checks what
//! `GetCheckpoint` says against what was verified, and reconnects with exponential backoff when
//! the server goes away or a checkpoint fails.
//!
//! A stream is read by its own task, which checks the Tail contract (consecutive indexes; each
//! checkpoint's size is the stream's position) and hands entries over in chunks, each examined on
//! blocking threads (all cores) meanwhile, so that reading and examining the next run overlaps
//! with the engine checking and committing the last one. CPU work runs on the runtime's blocking sections.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tonic::transport::Endpoint;
use tonic::Streaming;

use super::engine::{self, Engine, Verdict};
use super::examine::{Examined, Examiner};
use super::report::Reporter;
use super::state::VerifiedCheckpoint;
use super::{Config, MonitorError};
use crate::client::trust_state::{TrustError, TrustState};
use crate::client::{decode_hashes, LogClient};
use crate::proto::{self, tail_event::Event};
use crate::tlog::merkle;
use crate::tlog::proof;

/// Entries examined and handed from the reader to the engine at once, at most: half of the
/// server's catch-up runs (4,096 entries), so that examining a chunk on all cores and the engine
/// committing a run overlap (examined in the reader's own task, 512 gave 39,000–43,000
/// entries/s at 300,000 entries, 2,048 gave 41,000–47,000, 4,096 gave 39,000–42,000; examined on
/// blocking threads while the reader reads on, 2,048 gives 45,000–50,000).
const CHUNK_ENTRIES: usize = 2048;
/// Leaf bytes handed over at once, at most (a single larger entry goes alone).
const CHUNK_BYTES: usize = 8 << 20;
/// Chunks and checkpoints buffered between the reader and the engine.
const CHANNEL_DEPTH: usize = 4;
/// With `--once`, the longest silence from the server before giving up on a stream.
const ONCE_IDLE: Duration = Duration::from_secs(60);
/// While following, how often `GetCheckpoint` is compared with the verified state.
const POLL_LATEST: Duration = Duration::from_secs(60);
/// Reconnection delays: the first, and the cap.
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// With `--once`, consecutive connection failures before giving up.
const ONCE_ATTEMPTS: u32 = 6;

/// How a run of the monitor ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Findings reported by this process.
    pub reported: u64,
    /// The log could not be verified up to its latest checkpoint because of a finding (reported
    /// now or before): the monitor refuses to go past it.
    pub blocked: bool,
    /// The size of the verified tree.
    pub verified_size: u64,
}

/// Follows the log of `config` until SIGINT or SIGTERM, or with `--once` until it has verified
/// the checkpoint `GetCheckpoint` returned at the start (or is blocked by a finding).
///
/// # Errors
/// Local failures (state, store, stdout); with `--once`, also a server that stays unreachable.
pub async fn run(config: Config) -> Result<Summary, MonitorError> {
    let engine = Engine::open(&config)?;
    let endpoint = Endpoint::from_shared(config.server.clone())
        .map_err(|e| MonitorError::Url {
            url: config.server.clone(),
            reason: e.to_string(),
        })?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    let client = LogClient::with_channel(endpoint.connect_lazy(), config.verifier.clone());
    tracing::info!(server = %config.server, state = %config.state_path.display(), from = engine.state().size(), "monitoring");
    let reporter = Reporter::new(config.watch.clone(), config.exec.clone());
    let trust = match TrustState::open(&config.verifier, config.split_view_state.as_deref()) {
        Ok(t) => Some(t),
        Err(TrustError::NoConfigDir) => {
            tracing::warn!("no config directory (HOME) and no --split-view-state: the monitor's checkpoints are not compared with other glasslog commands'");
            None
        }
        Err(e) => return Err(MonitorError::SplitViewState(e)),
    };
    let mut follower = Follower {
        once: config.once,
        client,
        engine,
        reporter,
        pending: None,
        goal: 0,
        blocked: false,
        trust,
        shared_size: None,
    };
    let result = if config.once {
        match follower.follow().await {
            Ok(()) => follower.share_checkpoint().await,
            Err(e) => Err(e),
        }
    } else {
        tokio::select! {
            r = follower.follow() => r,
            () = shutdown_signal() => {
                tracing::info!("stopping");
                Ok(())
            }
        }
    };
    result?;
    let (entries, secs) = follower.engine.throughput();
    let size = follower.engine.state().size();
    tracing::info!(
        size,
        "verified {entries} entries in {secs:.2} s ({:.0} entries/s); {} findings reported",
        entries as f64 / secs.max(1e-9),
        follower.reporter.reported()
    );
    Ok(Summary {
        reported: follower.reporter.reported(),
        blocked: follower.blocked,
        verified_size: size,
    })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => std::future::pending().await } } => {}
    }
}

/// How a session (one connection's stream) ended.
enum End {
    /// With `--once`: verified up to the goal.
    CaughtUp,
    /// A checkpoint failed verification; its finding is reported.
    Blocked,
}

struct Follower {
    once: bool,
    client: LogClient,
    engine: Engine,
    reporter: Reporter,
    /// A checkpoint from `GetCheckpoint` beyond the verified size, checked once reached.
    pending: Option<VerifiedCheckpoint>,
    /// With `--once`: the size to verify up to.
    goal: u64,
    blocked: bool,
    /// The split-view state shared with `submit`, `verify` and `audit`, if there is one.
    trust: Option<TrustState>,
    /// The size of the last verified checkpoint compared with `trust`.
    shared_size: Option<u64>,
}

impl Follower {
    /// Sessions, with backoff between them, until done (`--once`) or a fatal error.
    async fn follow(&mut self) -> Result<(), MonitorError> {
        let mut backoff = BACKOFF_FIRST;
        let mut failures = 0;
        loop {
            let verified_before = self.engine.state().size();
            let delay = match self.session().await {
                Ok(End::CaughtUp) => return Ok(()),
                Ok(End::Blocked) => {
                    self.blocked = true;
                    if self.once {
                        return Ok(());
                    }
                    tracing::warn!(
                        "the log failed verification at size {}; retrying in {backoff:?}",
                        self.engine.state().size()
                    );
                    backoff
                }
                Err(e) if e.is_transient() => {
                    failures = if self.engine.state().size() > verified_before {
                        1
                    } else {
                        failures + 1
                    };
                    if self.once && failures >= ONCE_ATTEMPTS {
                        return Err(e);
                    }
                    tracing::warn!("{e}; reconnecting in {backoff:?}");
                    backoff
                }
                Err(e) => return Err(e),
            };
            if self.engine.state().size() > verified_before {
                backoff = BACKOFF_FIRST;
            }
            tokio::time::sleep(delay).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// One stream: from the verified position (a little before, see [`Engine::begin_stream`])
    /// until the goal, a failure, or forever.
    async fn session(&mut self) -> Result<End, MonitorError> {
        if let Some(end) = self.check_latest().await? {
            return Ok(end);
        }
        let start = self.engine.begin_stream();
        if self.once
            && self.engine.state().size() >= self.goal
            && start == self.engine.state().size()
        {
            return Ok(End::CaughtUp);
        }
        let stream = self
            .client
            .rpc()
            .tail(proto::TailRequest { start })
            .await?
            .into_inner();
        let (tx, mut rx) = mpsc::channel(CHANNEL_DEPTH);
        let examiner = self.engine.examiner();
        let _reader = AbortOnDrop(tokio::spawn(read_tail(stream, start, examiner, tx)));
        let mut poll =
            tokio::time::interval_at(tokio::time::Instant::now() + POLL_LATEST, POLL_LATEST);
        loop {
            let item = tokio::select! {
                item = rx.recv() => item,
                _ = poll.tick(), if !self.once => {
                    self.share_checkpoint().await?;
                    match self.check_latest().await? {
                        Some(end) => return Ok(end),
                        None => continue,
                    }
                }
                () = tokio::time::sleep(ONCE_IDLE), if self.once => return Err(MonitorError::Timeout(ONCE_IDLE)),
            };
            let item = item
                .ok_or_else(|| MonitorError::Protocol("the Tail stream reader stopped".into()))??;
            let (engine, reporter) = (&mut self.engine, &mut self.reporter);
            let verdict = match item {
                TailItem::Entries { first, examining } => {
                    let (leaves, examined) = examining.await.map_err(|e| {
                        MonitorError::Protocol(format!("examining entries failed: {e}"))
                    })?;
                    tokio::task::block_in_place(|| {
                        engine.examined_entries(first, &leaves, examined, reporter)
                    })?;
                    continue;
                }
                TailItem::Checkpoint(sc) => {
                    tokio::task::block_in_place(|| engine.checkpoint(sc, reporter))?
                }
            };
            match verdict {
                Verdict::Verified => {
                    if let Some(end) = self.after_progress().await? {
                        return Ok(end);
                    }
                }
                Verdict::Rejected => return Ok(End::Blocked),
                Verdict::Behind(older) => {
                    if let Some(end) = self.check_against_verified(older).await? {
                        return Ok(end);
                    }
                }
                Verdict::Mismatch(new) => {
                    self.explain_mismatch(new).await?;
                    return Ok(End::Blocked);
                }
            }
        }
    }

    /// After the state moved: checks a pending `GetCheckpoint` answer now reached, and whether
    /// `--once` is done.
    async fn after_progress(&mut self) -> Result<Option<End>, MonitorError> {
        let size = self.engine.state().size();
        if let Some(p) = self.pending.take_if(|p| p.checkpoint.size <= size) {
            if let Some(end) = self.check_against_verified(p).await? {
                return Ok(Some(end));
            }
        }
        Ok((self.once && size >= self.goal).then_some(End::CaughtUp))
    }

    /// Fetches the latest checkpoint: its signature must verify, and it must be consistent with
    /// the verified state (checked now if not beyond it, else once the state reaches it).
    async fn check_latest(&mut self) -> Result<Option<End>, MonitorError> {
        let sc = self
            .client
            .rpc()
            .get_checkpoint(proto::GetCheckpointRequest {})
            .await?
            .into_inner();
        let checkpoint = match self.client.verifier().verify(&sc.note) {
            Ok(c) => c,
            Err(e) => {
                let f = engine::bad_signature(self.engine.state(), &sc.note, &e.to_string());
                self.report(f)?;
                return Ok(Some(End::Blocked));
            }
        };
        if checkpoint.size != sc.size || checkpoint.root.0.as_slice() != sc.root_hash.as_slice() {
            return Err(MonitorError::Protocol(
                "GetCheckpoint's size and root fields differ from its signed note's".into(),
            ));
        }
        self.goal = self.goal.max(checkpoint.size);
        let latest = VerifiedCheckpoint {
            checkpoint,
            note: sc.note,
        };
        if latest.checkpoint.size <= self.engine.state().size() {
            return self.check_against_verified(latest).await;
        }
        self.pending = Some(latest);
        Ok(None)
    }

    /// Checks a signed checkpoint no larger than the verified state against it: equal roots at
    /// equal sizes, else a consistency proof from it to the verified checkpoint.
    async fn check_against_verified(
        &mut self,
        other: VerifiedCheckpoint,
    ) -> Result<Option<End>, MonitorError> {
        let state = self.engine.state();
        let (size, root) = (state.size(), state.range.root());
        let (from, from_root) = (other.checkpoint.size, other.checkpoint.root);
        let failure = if from == size {
            (from_root != root).then(|| {
                "it has the same size as the verified checkpoint and another root".to_string()
            })
        } else if from == 0 {
            (from_root != merkle::EMPTY_HASH)
                .then(|| "it has size 0 and a root other than the empty tree's".to_string())
        } else {
            let proof = self.consistency_proof(from, size).await?;
            match proof.map(|hashes| proof::verify_consistency(from, size, &from_root, &root, &hashes)) {
                Ok(Ok(())) => None,
                Ok(Err(e)) | Err(e) => Some(format!("the server's consistency proof from size {from} to {size} does not verify: {e}")),
            }
        };
        let Some(why) = failure else { return Ok(None) };
        let f = engine::inconsistent(self.engine.state(), &other, &why);
        self.report(f)?;
        Ok(Some(End::Blocked))
    }

    /// Explains a run whose entries do not lead to its checkpoint's root: if the server proves
    /// the checkpoint consistent with the verified one, the entries were wrong (`root-mismatch`);
    /// if its proof fails, the checkpoints fork (`inconsistent-checkpoint`).
    async fn explain_mismatch(&mut self, new: VerifiedCheckpoint) -> Result<(), MonitorError> {
        let state = self.engine.state();
        let (from, to) = (state.size(), new.checkpoint.size);
        let f = if from == 0 {
            engine::root_mismatch(state, &new, "recomputed from the first entry")
        } else {
            let proof = match self
                .client
                .rpc()
                .get_consistency_proof(proto::GetConsistencyProofRequest {
                    from_size: from,
                    to_size: to,
                })
                .await
            {
                Ok(reply) => Some(check_proof_reply(reply.into_inner(), from, to)),
                Err(status) => {
                    tracing::warn!("no consistency proof from {from} to {to}: {status}");
                    None
                }
            };
            let state = self.engine.state();
            match proof.map(|p| p.and_then(|hashes| proof::verify_consistency(from, to, &state.range.root(), &new.checkpoint.root, &hashes))) {
                Some(Ok(())) => engine::root_mismatch(state, &new, "the checkpoint is proven consistent with the verified one, so the entries are not the ones it covers"),
                Some(Err(e)) => engine::inconsistent(state, &new, &format!("the entries served do not lead to its root, and the server's consistency proof does not verify: {e}")),
                None => engine::root_mismatch(state, &new, "and the server gave no consistency proof to tell whether the checkpoint or the entries are wrong"),
            }
        };
        self.report(f)
    }

    /// A consistency proof's hashes, or why the reply is not one.
    async fn consistency_proof(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Result<Vec<merkle::Hash>, merkle::MerkleError>, MonitorError> {
        let req = proto::GetConsistencyProofRequest {
            from_size: from,
            to_size: to,
        };
        let reply = self
            .client
            .rpc()
            .get_consistency_proof(req)
            .await?
            .into_inner();
        Ok(check_proof_reply(reply, from, to))
    }

    /// Holds the latest verified checkpoint to the split-view state shared with the user's
    /// other commands, which stores it if it is newer. A checkpoint those commands accepted that
    /// no consistency proof joins to it is reported as `inconsistent-checkpoint`, with both
    /// notes; the monitor goes on verifying its own view. A server that cannot be asked for the
    /// proof now is asked again later.
    ///
    /// # Errors
    /// A state file that cannot be read or written; output errors.
    async fn share_checkpoint(&mut self) -> Result<(), MonitorError> {
        let (Some(trust), Some(verified)) = (self.trust.as_mut(), &self.engine.state().checkpoint)
        else {
            return Ok(());
        };
        let size = verified.checkpoint.size;
        if self.shared_size == Some(size) {
            return Ok(());
        }
        let outcome = trust
            .check_and_update(&self.client, &verified.checkpoint, &verified.note)
            .await;
        let path = trust.path().display().to_string();
        match outcome {
            Ok(accepted) => {
                tracing::debug!(size, ?accepted, state = %path, "split-view state");
                self.shared_size = Some(size);
                Ok(())
            }
            Err(TrustError::SplitView(split)) => {
                self.shared_size = Some(size);
                let f = super::Finding::about_log(
                    super::FindingKind::InconsistentCheckpoint,
                    &split.old_note,
                    format!(
                        "{}: the checkpoint this monitor verified does not fit the one the \
                         user's other glasslog commands accepted (split-view state {path}); both \
                         are signed by the log's key. Accepted before:\n{}\nVerified by this \
                         monitor:\n{}",
                        split.reason, split.old_note, split.new_note
                    ),
                );
                self.report(f)
            }
            Err(TrustError::Client(e)) => {
                tracing::warn!("cannot compare the verified checkpoint with the split-view state {path} now: {e}");
                Ok(())
            }
            Err(e) => Err(MonitorError::SplitViewState(e)),
        }
    }

    fn report(&mut self, f: super::Finding) -> Result<(), MonitorError> {
        let (engine, reporter) = (&self.engine, &mut self.reporter);
        tokio::task::block_in_place(|| engine.report_now(vec![f], reporter))
    }
}

/// The hashes of a consistency proof reply for `from..to`; a reply for other sizes, or with a
/// malformed hash, cannot verify.
fn check_proof_reply(
    p: proto::ConsistencyProof,
    from: u64,
    to: u64,
) -> Result<Vec<merkle::Hash>, merkle::MerkleError> {
    if p.from_size != from || p.to_size != to {
        return Err(merkle::MerkleError::SizeOrder {
            from_size: p.from_size,
            to_size: p.to_size,
        });
    }
    decode_hashes(&p.hashes)
}

/// What the reader hands the engine.
enum TailItem {
    /// Consecutive entries from index `first`.
    Entries {
        first: u64,
        /// The entries, and their examinations, once the blocking task examining them is done.
        examining: tokio::task::JoinHandle<(Vec<Vec<u8>>, Vec<Examined>)>,
    },
    /// The checkpoint closing the entries sent so far.
    Checkpoint(proto::SignedCheckpoint),
}

/// Reads a Tail stream that starts at `start`, checks the stream contract, and sends entries in
/// chunks and checkpoints in order. Ends at the first error, which it sends.
///
/// Each chunk is handed to a blocking thread to be examined as it is sent, and the reader goes
/// on reading: the engine checks one run of entries against its checkpoint, applies the per-name
/// rules and commits, while the next run is read and examined (the engine takes the
/// examinations in stream order). What the examination finds is only acted on once the engine has verified the
/// checkpoint that covers the entries.
async fn read_tail(
    mut stream: Streaming<proto::TailEvent>,
    start: u64,
    examiner: Arc<Examiner>,
    tx: mpsc::Sender<Result<TailItem, MonitorError>>,
) {
    let mut chunk = Chunk {
        first: start,
        leaves: Vec::new(),
        bytes: 0,
    };
    let result: Result<(), MonitorError> = async {
        loop {
            let event = stream
                .message()
                .await?
                .ok_or_else(|| MonitorError::Protocol("the server ended the Tail stream".into()))?;
            match event.event {
                Some(Event::Entry(e)) => {
                    let due = chunk.first + chunk.leaves.len() as u64;
                    if e.index != due {
                        return Err(MonitorError::Protocol(format!(
                            "entry {} was streamed where {due} was due",
                            e.index
                        )));
                    }
                    chunk.bytes += e.leaf_data.len();
                    chunk.leaves.push(e.leaf_data);
                    if chunk.leaves.len() >= CHUNK_ENTRIES || chunk.bytes >= CHUNK_BYTES {
                        send(&tx, chunk.take(&examiner)).await?;
                    }
                }
                Some(Event::Checkpoint(sc)) => {
                    let position = chunk.first + chunk.leaves.len() as u64;
                    if sc.size != position {
                        return Err(MonitorError::Protocol(format!(
                            "a checkpoint of size {} was streamed after entry {}",
                            sc.size,
                            position.wrapping_sub(1)
                        )));
                    }
                    if !chunk.leaves.is_empty() {
                        send(&tx, chunk.take(&examiner)).await?;
                    }
                    send(&tx, TailItem::Checkpoint(sc)).await?;
                }
                None => return Err(MonitorError::Protocol("an empty Tail event".into())),
            }
        }
    }
    .await;
    if let Err(e) = result {
        let _ = tx.send(Err(e)).await;
    }
}

struct Chunk {
    first: u64,
    leaves: Vec<Vec<u8>>,
    bytes: usize,
}

impl Chunk {
    /// The entries gathered, being examined on a blocking thread while the reader goes on; the
    /// chunk starts again after them.
    fn take(&mut self, examiner: &Arc<Examiner>) -> TailItem {
        let leaves = std::mem::take(&mut self.leaves);
        let first = self.first;
        self.first += leaves.len() as u64;
        self.bytes = 0;
        let examiner = examiner.clone();
        let examining = tokio::task::spawn_blocking(move || {
            let examined = examiner.examine_all(&leaves);
            (leaves, examined)
        });
        TailItem::Entries { first, examining }
    }
}

/// Sends to the engine; the engine gone (the session ended) ends the reader quietly.
async fn send(
    tx: &mpsc::Sender<Result<TailItem, MonitorError>>,
    item: TailItem,
) -> Result<(), MonitorError> {
    tx.send(Ok(item))
        .await
        .map_err(|_| MonitorError::Protocol("the session ended".into()))
}

/// Aborts a task when dropped, so a stream's reader ends with its session.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

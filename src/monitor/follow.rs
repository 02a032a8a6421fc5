//! The monitor's network side, and nothing else: it connects, follows `Tail` from the verified
//! position, polls `GetCheckpoint`, fetches the consistency proofs the [`Engine`] asks for, and
//! reconnects with exponential backoff when the server goes away or a checkpoint fails; from a
//! log's tiles ([`crate::monitor::Location::Tiles`]) it polls the checkpoint and reads bundles
//! instead (`poll`), with the same engine, proofs, backoff and split-view sharing. What
//! anything it receives means (a checkpoint verified, rejected, consistent or not, a finding) is
//! the engine's decision; this file hands the engine what the server said and acts on its
//! [`Verdict`].
//!
//! A stream is read by its own task, which checks the Tail framing it needs to cut the stream
//! into chunks (consecutive indexes) and hands entries over in chunks, each examined on blocking
//! threads (all cores) meanwhile, so that reading and examining the next run overlaps with the
//! engine checking and committing the last one. CPU work runs on the runtime's blocking sections.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tonic::Streaming;

mod poll;

use super::engine::{Engine, ProofRequest, Verdict};
use super::examine::{Examined, Examiner};
use super::report::Reporter;
use super::{Config, Location, MonitorError};
use crate::client::source::Source;
use crate::client::tiles::TileClient;
use crate::client::trust_state::{TrustError, TrustState};
use crate::client::LogClient;
use crate::proto::{self, tail_event::Event};
use crate::tlog::checkpoint::Checkpoint;

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

/// Follows the log of `config` until `shutdown` completes, or with `--once` until it has
/// verified the checkpoint `GetCheckpoint` returned at the start (or is blocked by a finding).
/// Stopped by `shutdown`, it returns at once: everything verified is already committed (each
/// checkpoint's findings and state are made durable before the next is read), and a run of
/// entries not yet closed by a checkpoint is read again by the next run.
///
/// # Errors
/// Local failures (state, store, stdout); with `--once`, also a server that stays unreachable.
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary, MonitorError> {
    let engine = Engine::open(&config)?;
    let (source, interval) = match &config.location {
        Location::Server(url) => {
            let endpoint = crate::client::endpoint(url)
                .map_err(|e| MonitorError::Url {
                    url: url.clone(),
                    reason: e.to_string(),
                })?
                .tcp_nodelay(true)
                .connect_timeout(Duration::from_secs(10))
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_timeout(Duration::from_secs(20))
                .keep_alive_while_idle(true);
            let client = LogClient::with_channel(endpoint.connect_lazy(), config.verifier.clone());
            tracing::info!(server = %url, state = %config.state_path.display(), from = engine.state().size(), "monitoring");
            (Source::Server(client), POLL_LATEST)
        }
        Location::Tiles { url, s3, interval } => {
            let tiles = TileClient::open(url, s3, config.verifier.clone())?;
            tracing::info!(tiles = %url, state = %config.state_path.display(), from = engine.state().size(), "monitoring");
            (Source::Tiles(tiles), *interval)
        }
    };
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
        source,
        interval,
        engine,
        reporter,
        blocked: false,
        trust,
        shared_size: None,
    };
    tokio::select! {
        r = async {
            follower.follow().await?;
            if follower.once {
                follower.share_checkpoint().await?;
            }
            Ok::<(), MonitorError>(())
        } => r?,
        () = shutdown => tracing::info!("stopping"),
    }
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

/// How a session (one connection's stream) ended.
enum End {
    /// With `--once`: verified up to the goal.
    CaughtUp,
    /// A checkpoint failed verification; its finding is reported.
    Blocked,
}

struct Follower {
    once: bool,
    /// The log's server or its tiles.
    source: Source,
    /// While following: how often the latest checkpoint is read (the tiles' checkpoint, or
    /// `GetCheckpoint` beside a Tail stream).
    interval: Duration,
    engine: Engine,
    reporter: Reporter,
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

    /// One session of the source: a Tail stream, or polling the tiles.
    async fn session(&mut self) -> Result<End, MonitorError> {
        match self.source.clone() {
            Source::Server(client) => self.tail_session(&client).await,
            Source::Tiles(tiles) => self.poll_session(&tiles).await,
        }
    }

    /// One stream: from the verified position (a little before, see [`Engine::begin_stream`])
    /// until the goal, a failure, or forever.
    async fn tail_session(&mut self, client: &LogClient) -> Result<End, MonitorError> {
        if let Some(end) = self.check_latest(client).await? {
            return Ok(end);
        }
        let start = self.engine.begin_stream();
        if self.once && self.engine.caught_up() && start == self.engine.state().size() {
            return Ok(End::CaughtUp);
        }
        let stream = client
            .rpc()
            .tail(proto::TailRequest { start })
            .await?
            .into_inner();
        let (tx, mut rx) = mpsc::channel(CHANNEL_DEPTH);
        let examiner = self.engine.examiner();
        let _reader = AbortOnDrop(tokio::spawn(read_tail(stream, start, examiner, tx)));
        let mut poll =
            tokio::time::interval_at(tokio::time::Instant::now() + self.interval, self.interval);
        loop {
            let item = tokio::select! {
                item = rx.recv() => item,
                _ = poll.tick(), if !self.once => {
                    self.share_checkpoint().await?;
                    match self.check_latest(client).await? {
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
                TailItem::Witnessed(sc) => {
                    tokio::task::block_in_place(|| engine.witnessed(sc, reporter))?
                }
            };
            if let Some(end) = self.settle(verdict).await? {
                return Ok(end);
            }
        }
    }

    /// Hands `GetCheckpoint`'s answer to the engine and acts on its verdict.
    async fn check_latest(&mut self, client: &LogClient) -> Result<Option<End>, MonitorError> {
        let sc = client
            .rpc()
            .get_checkpoint(proto::GetCheckpointRequest::default())
            .await?
            .into_inner();
        let (engine, reporter) = (&mut self.engine, &mut self.reporter);
        let verdict = tokio::task::block_in_place(|| engine.latest(sc, reporter))?;
        if let Some(end) = self.settle(verdict).await? {
            return Ok(Some(end));
        }
        self.check_witnessed(client).await
    }

    /// With a witness policy: hands `GetCheckpoint { witnessed }`'s answer to the engine (Tail
    /// also announces witnessed checkpoints, but a `--once` run may end before the last one).
    async fn check_witnessed(&mut self, client: &LogClient) -> Result<Option<End>, MonitorError> {
        if !self.engine.demands_witnesses() {
            return Ok(None);
        }
        let answer = client
            .rpc()
            .get_checkpoint(proto::GetCheckpointRequest { witnessed: true })
            .await;
        let sc = match answer {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == tonic::Code::NotFound => return Ok(None),
            Err(s) if s.code() == tonic::Code::FailedPrecondition => {
                tracing::warn!("the log serves no witnessed checkpoints: {}", s.message());
                return Ok(None);
            }
            Err(s) => return Err(s.into()),
        };
        let (engine, reporter) = (&mut self.engine, &mut self.reporter);
        let verdict = tokio::task::block_in_place(|| engine.witnessed(sc, reporter))?;
        self.settle(verdict).await
    }

    /// Acts on a verdict: fetches (or computes from the tiles) the consistency proofs the engine
    /// asks for and hands it the answers until it decides; ends the session when it is blocked,
    /// or with `--once` caught up.
    async fn settle(&mut self, mut verdict: Verdict) -> Result<Option<End>, MonitorError> {
        loop {
            verdict = match verdict {
                Verdict::Verified => {
                    return Ok((self.once && self.engine.caught_up()).then_some(End::CaughtUp))
                }
                Verdict::Consistent => return Ok(None),
                Verdict::Rejected => return Ok(Some(End::Blocked)),
                Verdict::NeedsProof(request) => {
                    let reply = self.consistency_proof(&request).await;
                    let (engine, reporter) = (&mut self.engine, &mut self.reporter);
                    tokio::task::block_in_place(|| {
                        engine.consistency_proof(request, reply, reporter)
                    })?
                }
            };
        }
    }

    /// The consistency proof `request` asks for: the server's `GetConsistencyProof`, or computed
    /// from the tiles of the larger tree, authenticated against its root.
    async fn consistency_proof(
        &self,
        request: &ProofRequest,
    ) -> Result<proto::ConsistencyProof, MonitorError> {
        match &self.source {
            Source::Server(client) => Ok(client
                .rpc()
                .get_consistency_proof(proto::GetConsistencyProofRequest {
                    from_size: request.from,
                    to_size: request.to,
                })
                .await?
                .into_inner()),
            Source::Tiles(tiles) => {
                let to = Checkpoint {
                    origin: tiles.verifier().origin().to_string(),
                    size: request.to,
                    root: request.to_root(),
                };
                let hashes = tiles.prove_consistency(request.from, &to).await?;
                Ok(proto::ConsistencyProof {
                    from_size: request.from,
                    to_size: request.to,
                    hashes: hashes.iter().map(|h| h.0.to_vec()).collect(),
                })
            }
        }
    }

    /// Holds the latest verified checkpoint to the split-view state shared with the user's
    /// other commands, which stores it if it is newer; a split view it finds is the engine's to
    /// report. The monitor goes on verifying its own view. A server that cannot be asked for the
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
            .check_and_update(&self.source, &verified.checkpoint, &verified.note)
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
                let (engine, reporter) = (&self.engine, &mut self.reporter);
                tokio::task::block_in_place(|| engine.split_view(&split, &path, reporter))
            }
            Err(TrustError::Client(e)) => {
                tracing::warn!("cannot compare the verified checkpoint with the split-view state {path} now: {e}");
                Ok(())
            }
            Err(e) => Err(MonitorError::SplitViewState(e)),
        }
    }
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
    /// A checkpoint the log says met its witness policy.
    Witnessed(proto::SignedCheckpoint),
}

/// Reads a Tail stream that starts at `start`, checks that entries come with consecutive indexes
/// (what cutting the stream into chunks relies on), and sends entries in chunks and checkpoints
/// in order; whether a checkpoint closes the stream at its size is the engine's to check. Ends at
/// the first error, which it sends.
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
                    if !chunk.leaves.is_empty() {
                        send(&tx, chunk.take(&examiner)).await?;
                    }
                    send(&tx, TailItem::Checkpoint(sc)).await?;
                }
                Some(Event::Witnessed(sc)) => {
                    if !chunk.leaves.is_empty() {
                        send(&tx, chunk.take(&examiner)).await?;
                    }
                    send(&tx, TailItem::Witnessed(sc)).await?;
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

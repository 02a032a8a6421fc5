//! The monitor: follows a log with `Tail` (`--server`), or by polling its tiles' checkpoint
//! (`--tiles`), verifies everything it is served, and reports what a log or a publisher did
//! wrong, once each, as JSON lines. The checks and findings are the same from either source.
//!
//! What it checks (the finding kinds are a contract, see [`FindingKind`]):
//! - **the log** (always reported): every checkpoint's signature under the pinned key
//!   (`bad-checkpoint-signature`); that each checkpoint extends the last verified one, by
//!   recomputing the root from the entries received onto the stored compact range
//!   (`inconsistent-checkpoint` / `root-mismatch`, told apart by asking the server for a
//!   consistency proof; a checkpoint from `GetCheckpoint` at or below the verified size is checked
//!   with a proof or by equality); that an entry served again after a reconnection is the one
//!   verified before (`entry-changed`, see below); that every entry passes the log's own admission
//!   checks, re-run on the logged envelope and keys (`invalid-entry`);
//! - **publishers** (restricted to `--watch` names when given): see [`rules`].
//!
//! The monitor also compares notes with the user's other glasslog commands: after catching up,
//! and then at most once a minute while following, it holds its latest verified checkpoint to
//! the split-view state that `submit`, `verify` and `audit` keep ([`crate::client::trust_state`]), and
//! stores it there. A log that showed those commands a tree that no consistency proof joins to
//! the monitor's is reported as `inconsistent-checkpoint`, with both signed notes.
//!
//! What it is not: a witness (it cosigns nothing and talks to no other monitor); it does not
//! re-fetch entries it verified, so an entry changed long after it was verified shows up as a
//! checkpoint that does not extend the verified one, not as `entry-changed`. A finding is
//! evidence for a user to publish; the monitor never stops trusting the pinned key by itself.
//!
//! # Layout
//!
//! `follow` talks to the server and nothing else: `Tail`, `GetCheckpoint`, the consistency
//! proofs asked for, reconnection with backoff; `follow/poll.rs` reads the tiles instead (the
//! checkpoint every `--interval`, the entry bundles up to it, proofs computed from the tiles). `engine` decides: it is handed what the
//! server sent, verifies it, says when it needs a consistency proof and judges the one it is
//! handed, reports findings and commits state. `examine` and [`rules`] are the per-entry and
//! per-name checks the engine applies; [`state`] and [`store`] what it keeps; `report` prints.
//! [`run`] takes its shutdown signal as an argument, as [`crate::server::serve`] does.
//!
//! # State and restarts
//!
//! The state file ([`state`]) holds the last verified checkpoint, the compact range at it, the
//! next index and the last [`state::RECENT_LEAVES`] leaf hashes; a RocksDB store beside it
//! (`FILE.db`, [`store`]) holds per-name state and the identities of the findings reported. After
//! a restart the monitor resumes from the state file, re-verifying nothing. On reconnecting it
//! asks `Tail` to start [`state::RECENT_LEAVES`] entries early and compares those entries with the
//! leaf hashes it kept: that is how `entry-changed` is detected with bounded memory. Older entries
//! are covered by the compact range: any change to them changes every later root.
//!
//! A finding is printed (and handed to `--exec`) before its identity is committed, so a crash in
//! between reports it again on restart: at least once, and exactly once otherwise. A checkpoint
//! that fails verification is never accepted; the monitor reconnects with exponential backoff (or,
//! with `--once`, exits 1) and the same failure is not reported again while the verified
//! checkpoint it contradicts is the same.

mod engine;
mod examine;
mod finding;
mod follow;
mod report;
pub mod rules;
pub mod state;
pub mod store;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

pub use examine::{DatasetFields, ExamineOptions};
pub use finding::{Finding, FindingKind, Severity};
pub use follow::{run, Summary};

use crate::bucket::S3Options;
use crate::client::tiles::TilesError;
use crate::tlog::note::LogVerifier;

/// Default `--backdate-window`, in days.
pub const DEFAULT_BACKDATE_WINDOW_DAYS: u32 = 7;
/// Default `--interval`: how often the tiles' checkpoint is polled, in seconds.
pub const DEFAULT_POLL_INTERVAL_SECS: u64 = 5;

/// Where the monitor reads the log.
#[derive(Clone, Debug)]
pub enum Location {
    /// The log's server, followed with `Tail` (`--server URL`).
    Server(String),
    /// The log's tiles (`--tiles URL`), whose checkpoint is read every `interval`.
    Tiles {
        url: String,
        s3: S3Options,
        interval: Duration,
    },
}

/// What to monitor and how.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the log is read.
    pub location: Location,
    /// The log's pinned verifier.
    pub verifier: LogVerifier,
    /// The state file; the store is beside it (see [`Config::store_path`]).
    pub state_path: PathBuf,
    /// Names whose per-name findings are reported; empty: all.
    pub watch: BTreeSet<String>,
    /// Catch up to the latest checkpoint, then exit.
    pub once: bool,
    /// A shell command run for each finding, with the finding's JSON on its stdin.
    pub exec: Option<String>,
    /// A release time more than this before the entry was logged is backdating.
    pub backdate_window_ms: i64,
    /// What to check of each entry.
    pub examine: ExamineOptions,
    /// The split-view state shared with `submit`, `verify` and `audit`
    /// ([`crate::client::trust_state`]): the file, or `None` for the default one of the log's key.
    pub split_view_state: Option<PathBuf>,
    /// The witness policy witnessed checkpoints must meet (`--witness-policy`), if any.
    pub witness_policy: Option<std::sync::Arc<crate::tlog::policy::WitnessPolicy>>,
}

impl Config {
    /// The store's directory: the state file's path with `.db` appended.
    pub fn store_path(&self) -> PathBuf {
        crate::files::with_suffix(&self.state_path, ".db")
    }
}

/// Errors of the monitor. [`MonitorError::is_transient`] ones are retried after a backoff.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// The state file cannot be read or written, or is not a valid state of this log.
    #[error("state file {}: {reason}", path.display())]
    State { path: PathBuf, reason: String },
    /// The store failed.
    #[error("state store {}: {reason}", path.display())]
    Store { path: PathBuf, reason: String },
    /// A record in the store is not what this code writes.
    #[error("state store is damaged: {0}")]
    Corrupt(String),
    /// The store and the state file disagree in a way no crash can produce.
    #[error("{0}")]
    Mismatch(String),
    /// The server URL is not usable.
    #[error("server URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    /// An rpc failed.
    #[error("server answered {}: {}", .0.code(), .0.message())]
    Rpc(#[from] tonic::Status),
    /// The server broke the protocol in a way that proves nothing (unsigned data).
    #[error("the server broke the protocol: {0}")]
    Protocol(String),
    /// Nothing arrived for too long.
    #[error("the server sent nothing for {0:?}")]
    Timeout(std::time::Duration),
    /// Findings cannot be written to stdout.
    #[error("cannot write findings to stdout: {0}")]
    Output(std::io::Error),
    /// The split-view state shared with the other commands cannot be used.
    #[error("{0}")]
    SplitViewState(crate::client::trust_state::TrustError),
    /// The log's tiles could not be read, or do not hash to their checkpoint (see
    /// [`TilesError`]; entries that do not are findings, decided by the engine).
    #[error("{0}")]
    Tiles(#[from] TilesError),
}

impl MonitorError {
    /// Whether the error is about the connection or the server's answers, so that reconnecting
    /// may help; the others are local and fatal.
    pub fn is_transient(&self) -> bool {
        match self {
            MonitorError::Rpc(_) | MonitorError::Protocol(_) | MonitorError::Timeout(_) => true,
            // An unreachable, lagging or damaged location may be repaired (a mirror resyncs).
            MonitorError::Tiles(e) => !matches!(
                e,
                TilesError::NoDirectory { .. }
                    | TilesError::Bucket(crate::bucket::BucketError::BadUrl { .. })
            ),
            _ => false,
        }
    }
}

//! The monitor's decisions, without networking: it takes what a `Tail` stream delivers (runs of
//! entries, each closed by a checkpoint) or a read of the log's tiles (one run up to the tiles'
//! checkpoint, cut into segments), and what `GetCheckpoint` answers, verifies each
//! checkpoint's signature and each run against its checkpoint, checks smaller checkpoints
//! against the verified one, applies the per-entry and per-name checks, reports findings and
//! commits state. When it cannot decide without a consistency proof it says so
//! ([`Verdict::NeedsProof`]); [`super::follow`] fetches the proof and hands the server's answer
//! back ([`Engine::consistency_proof`]). It opens no connection and never waits for one.
//!
//! Invariants:
//! - the state ([`LogState`]) only ever moves to a checkpoint whose signature verified and whose
//!   root the monitor recomputed from its previous compact range and the entries received;
//! - no per-name state, and no finding about an entry's contents, comes from entries not proven
//!   to be in a signed checkpoint that extends the verified one: proven by the root recomputed at
//!   the checkpoint that closes them, or, for a segment ([`Engine::segment`]), by a consistency
//!   proof from the root recomputed at the segment's end to a signed checkpoint beyond it;
//! - a consistency proof is only ever checked against the question it was asked for: the
//!   question travels inside the [`ProofRequest`];
//! - memory: one run's leaf hashes and entry facts (a run, or a segment of one, is capped at
//!   [`MAX_RUN_ENTRIES`]), the
//!   chunks of leaf data the stream reader has examined ahead (a few, each capped in entries and
//!   bytes, see [`super::follow`]), and the store's bounded cache and memtables.

use std::path::PathBuf;
use std::time::Instant;

use std::sync::Arc;

use super::examine::{EntryFacts, Examined, Examiner};
use super::report::Reporter;
use super::rules::{self, RuleOptions};
use super::state::{LogState, VerifiedCheckpoint, RECENT_LEAVES};
use super::store::{Store, Tx};
use super::{Config, Finding, FindingKind, MonitorError, Severity};
use crate::client::trust_state::SplitView;
use crate::client::{self, ClientError};
use crate::proto;
use crate::tlog::compact::CompactRange;
use crate::tlog::merkle::{self, Hash};
use crate::tlog::note::LogVerifier;
use crate::tlog::policy::WitnessPolicy;

/// Most entries between two checkpoints of a stream (the server's are at most a few thousand).
pub const MAX_RUN_ENTRIES: usize = 1 << 18;

/// What became of a checkpoint handed to the engine.
#[derive(Debug)]
pub enum Verdict {
    /// The state is at the checkpoint (it moved to it, or was there), and a `GetCheckpoint`
    /// answer the state has reached is consistent with it.
    Verified,
    /// Consistent with the verified state, which did not move: a checkpoint no larger than the
    /// verified one, or a larger `GetCheckpoint` answer kept to be checked once reached.
    Consistent,
    /// Refused, and the finding reported.
    Rejected,
    /// Undecided without a consistency proof: the caller asks the server for
    /// `GetConsistencyProof(from, to)` (or computes it from the tiles of the tree of `to`, whose
    /// root is [`ProofRequest::to_root`]) and hands the answer to [`Engine::consistency_proof`].
    NeedsProof(ProofRequest),
}

/// A consistency proof the engine needs, with the question it answers and the roots it is to
/// join (taken when asked, so the answer is judged against what was asked).
#[derive(Debug)]
pub struct ProofRequest {
    /// The smaller tree's size (never 0: every tree extends the empty one).
    pub from: u64,
    /// The larger tree's size.
    pub to: u64,
    from_root: Hash,
    to_root: Hash,
    question: Question,
}

impl ProofRequest {
    /// The root of the larger tree, verified: a proof computed from that tree's tiles is
    /// authenticated against it.
    pub fn to_root(&self) -> Hash {
        self.to_root
    }
}

/// What a consistency proof is asked for.
#[derive(Debug)]
enum Question {
    /// Is `other`, smaller than the verified checkpoint, consistent with it? If not the log
    /// forked (`inconsistent-checkpoint`); if so, go on with `then`.
    Older {
        other: VerifiedCheckpoint,
        then: Then,
    },
    /// The run's entries do not lead from the verified checkpoint to this checkpoint's root: is
    /// it consistent with the verified one (then the entries are wrong, `root-mismatch`) or not
    /// (the checkpoints fork, `inconsistent-checkpoint`)?
    Mismatch(VerifiedCheckpoint),
    /// Do the entries read so far lead to a prefix of this checkpoint's tree? If so they are
    /// checked and committed ([`Engine::segment`]); if not, as for a checkpoint they do not lead
    /// to ([`Question::Mismatch`]).
    Segment(VerifiedCheckpoint),
}

/// What follows a checkpoint found consistent with the verified state.
#[derive(Clone, Copy, Debug)]
enum Then {
    /// Nothing moved: [`Verdict::Consistent`].
    Consistent,
    /// The state moved, or a checkpoint at it arrived: a pending `GetCheckpoint` answer the state
    /// has reached is checked now.
    Progressed,
}

/// The entries of the stream since the last checkpoint.
struct Run {
    /// The index the next streamed entry must have.
    next: u64,
    /// The state's compact range with the run's new entries appended.
    range: CompactRange,
    /// Leaf hashes of the new entries (index `state.size()` onwards); after a segment, only the
    /// last [`RECENT_LEAVES`] of them (all the state keeps).
    leaves: Vec<Hash>,
    /// Facts of the new entries not yet checked, from index `facts_from`.
    facts: Vec<Result<EntryFacts, String>>,
    /// The state's size, or the end of the last segment committed.
    facts_from: u64,
    /// The integrated time of the last entry checked (the state's, or the last segment's).
    last_ms: i64,
}

impl Run {
    /// A run from `next`, the state's compact range (`range`) and clock (`last_ms`).
    fn at(next: u64, range: CompactRange, last_ms: i64) -> Run {
        Run {
            next,
            facts_from: range.size(),
            range,
            leaves: Vec::new(),
            facts: Vec::new(),
            last_ms,
        }
    }
}

/// See the module documentation.
pub struct Engine {
    verifier: LogVerifier,
    state_path: PathBuf,
    state: LogState,
    store: Store,
    /// The store's `applied` size: entries below it were checked before (see [`super::store`]).
    applied: u64,
    examiner: Arc<Examiner>,
    rules: RuleOptions,
    run: Run,
    /// A checkpoint from `GetCheckpoint` larger than the verified state, checked once reached.
    pending: Option<VerifiedCheckpoint>,
    /// The largest size `GetCheckpoint` answered with a checkpoint whose signature verified.
    latest_size: u64,
    /// With `--witness-policy`: the policy witnessed checkpoints must meet.
    witness_policy: Option<Arc<WitnessPolicy>>,
    progress: Progress,
}

struct Progress {
    started: Instant,
    start_size: u64,
    last_log: Instant,
}

impl Engine {
    /// Opens the state file and the store of `config`; a new monitor starts from the empty log.
    ///
    /// # Errors
    /// State and store errors; a store that is behind the state file.
    pub fn open(config: &Config) -> Result<Engine, MonitorError> {
        let store = Store::open(&config.store_path(), config.verifier.verifier_key())?;
        let state =
            LogState::load(&config.state_path, &config.verifier)?.unwrap_or_else(LogState::empty);
        let applied = store.applied()?;
        if applied < state.size() {
            return Err(MonitorError::Mismatch(format!(
                "the store {} has checked entries up to {applied}, but the state file is at {}; \
                 they do not belong together (remove both to start over)",
                store.path().display(),
                state.size()
            )));
        }
        let run = Run::at(state.size(), state.range.clone(), state.last_integrated_ms);
        let progress = Progress {
            started: Instant::now(),
            start_size: state.size(),
            last_log: Instant::now(),
        };
        Ok(Engine {
            verifier: config.verifier.clone(),
            state_path: config.state_path.clone(),
            state,
            store,
            applied,
            examiner: Arc::new(Examiner::new(config.examine.clone())),
            rules: RuleOptions {
                backdate_window_ms: config.backdate_window_ms,
            },
            run,
            pending: None,
            latest_size: 0,
            witness_policy: config.witness_policy.clone(),
            progress,
        })
    }

    /// The verified state.
    pub fn state(&self) -> &LogState {
        &self.state
    }

    /// Entries verified by this process, and the seconds it has run.
    pub fn throughput(&self) -> (u64, f64) {
        (
            self.state.size() - self.progress.start_size,
            self.progress.started.elapsed().as_secs_f64(),
        )
    }

    /// Drops what was received since the last checkpoint and returns where a new stream is to
    /// start: [`super::state::RECENT_LEAVES`] (or fewer) entries before the verified size, to
    /// compare them with what was verified.
    pub fn begin_stream(&mut self) -> u64 {
        let start = self.state.size() - self.state.recent.len() as u64;
        self.run = Run::at(
            start,
            self.state.range.clone(),
            self.state.last_integrated_ms,
        );
        start
    }

    /// What examines entries for this engine; a stream reader may use it to examine entries
    /// before handing them over ([`Engine::examined_entries`]).
    pub fn examiner(&self) -> Arc<Examiner> {
        self.examiner.clone()
    }

    /// Takes entries `first..` of the stream, examined by [`Engine::examiner`] (`examined[i]` is
    /// `leaves[i]`'s examination): entries already verified are compared with the leaf hashes
    /// kept (`entry-changed`), new ones are appended to the run.
    ///
    /// # Errors
    /// [`MonitorError::Protocol`] for entries out of order, a run over [`MAX_RUN_ENTRIES`] or
    /// examinations that do not match the entries; store and output errors.
    pub fn examined_entries(
        &mut self,
        first: u64,
        leaves: &[Vec<u8>],
        mut examined: Vec<Examined>,
        reporter: &mut Reporter,
    ) -> Result<(), MonitorError> {
        if examined.len() != leaves.len() {
            return Err(MonitorError::Protocol(format!(
                "{} examinations for {} entries",
                examined.len(),
                leaves.len()
            )));
        }
        if first != self.run.next {
            return Err(MonitorError::Protocol(format!(
                "entry {first} was streamed where {} was due",
                self.run.next
            )));
        }
        let verified = usize::try_from(self.state.size().saturating_sub(first))
            .unwrap_or(usize::MAX)
            .min(leaves.len());
        let (again, new) = leaves.split_at(verified);
        let changed = self.compare_again(first, again)?;
        self.report_now(changed, reporter)?;
        if self.run.leaves.len() + new.len() > MAX_RUN_ENTRIES {
            return Err(MonitorError::Protocol(format!(
                "more than {MAX_RUN_ENTRIES} entries without a checkpoint"
            )));
        }
        // The leaf hashes are taken as the examiner computed them: it is this engine's own.
        for e in examined.split_off(verified) {
            self.run.range.append(e.leaf_hash);
            self.run.leaves.push(e.leaf_hash);
            self.run.facts.push(e.facts);
        }
        self.run.next = first + leaves.len() as u64;
        Ok(())
    }

    /// `entry-changed` findings for verified entries served again that differ from what was
    /// verified.
    fn compare_again(&self, first: u64, leaves: &[Vec<u8>]) -> Result<Vec<Finding>, MonitorError> {
        let mut findings = Vec::new();
        for (index, leaf) in (first..).zip(leaves) {
            let Some(before) = self.state.recent_leaf(index) else {
                return Err(MonitorError::Protocol(format!(
                    "entry {index} was streamed, before the requested start"
                )));
            };
            let now = merkle::leaf_hash(leaf);
            if now != before {
                findings.push(Finding::new(
                    FindingKind::EntryChanged,
                    Severity::Critical,
                    [index],
                    [],
                    format!(
                        "entry {index} was served with leaf hash {} after it had been verified with leaf hash {} under checkpoint:\n{}",
                        hex::encode(now.0),
                        hex::encode(before.0),
                        self.state.note()
                    ),
                ));
            }
        }
        Ok(findings)
    }

    /// Takes the checkpoint that closes a run of the stream: its size must be the stream's
    /// position; then its signature is verified (`bad-checkpoint-signature`). One no larger than
    /// the verified checkpoint is checked against it; a larger one must have the root recomputed
    /// from the verified compact range and the run's entries, and then the run is checked and
    /// committed. Entries that do not lead to its root are `root-mismatch` from the empty tree,
    /// else a consistency proof tells whether the entries or the checkpoint are wrong.
    ///
    /// # Errors
    /// [`MonitorError::Protocol`] for a checkpoint whose size is not the stream's position or
    /// whose unsigned fields disagree with its note; store, state and output errors.
    pub fn checkpoint(
        &mut self,
        sc: proto::SignedCheckpoint,
        reporter: &mut Reporter,
    ) -> Result<Verdict, MonitorError> {
        if sc.size != self.run.next {
            return Err(MonitorError::Protocol(format!(
                "a checkpoint of size {} closed a run at stream position {}",
                sc.size, self.run.next
            )));
        }
        let Some(new) = self.verify_signed(sc, reporter)? else {
            return Ok(Verdict::Rejected);
        };
        let size = self.state.size();
        if new.checkpoint.size == size {
            if self.state.checkpoint.is_none() && new.checkpoint.root == self.state.range.root() {
                self.state.checkpoint = Some(new.clone());
                self.state.save(&self.state_path, &self.verifier)?;
            }
            return self.older(new, Then::Progressed, reporter);
        }
        if new.checkpoint.size < size {
            // A stream resumed early closed a run before reaching the verified size.
            return self.older(new, Then::Consistent, reporter);
        }
        if self.run.range.root() != new.checkpoint.root {
            return self.mismatch(new, reporter);
        }
        self.accept(new, reporter)?;
        self.progressed(reporter)
    }

    /// Takes a signed checkpoint beyond the stream's position towards which the entries are
    /// being read: the end of a catch-up from tiles, which have no checkpoints in between. Its
    /// signature must verify; then a consistency proof from the run's position to it is asked
    /// for. Once that verifies, the entries read so far are proven to be the first entries of
    /// its tree, which extends the verified state (the run's compact range started there): they
    /// are checked and committed to the store, and the run's memory is freed. The state file
    /// does not move, it only ever holds signed checkpoints: after a restart these entries are
    /// read again and not reported twice (the store's `applied`).
    ///
    /// # Errors
    /// [`MonitorError::Protocol`] for a checkpoint not beyond the stream's position, or whose
    /// unsigned fields disagree with its note; store and output errors.
    pub fn segment(
        &mut self,
        sc: proto::SignedCheckpoint,
        reporter: &mut Reporter,
    ) -> Result<Verdict, MonitorError> {
        let from = self.run.range.size();
        if sc.size <= from {
            return Err(MonitorError::Protocol(format!(
                "a segment towards a checkpoint of size {} ended at stream position {from}",
                sc.size
            )));
        }
        let Some(to) = self.verify_signed(sc, reporter)? else {
            return Ok(Verdict::Rejected);
        };
        if self.run.facts.is_empty() {
            return Ok(Verdict::Consistent);
        }
        Ok(Verdict::NeedsProof(ProofRequest {
            from,
            to: to.checkpoint.size,
            from_root: self.run.range.root(),
            to_root: to.checkpoint.root,
            question: Question::Segment(to),
        }))
    }

    /// The run's entries do not lead to `new`'s root (or to a prefix of it): `root-mismatch`
    /// from the empty tree, else a consistency proof from the verified checkpoint tells whether
    /// the entries or the checkpoint are wrong.
    fn mismatch(
        &mut self,
        new: VerifiedCheckpoint,
        reporter: &mut Reporter,
    ) -> Result<Verdict, MonitorError> {
        let size = self.state.size();
        if size == 0 {
            let f = root_mismatch(&self.state, &new, "recomputed from the first entry");
            return self.reject(f, reporter);
        }
        Ok(Verdict::NeedsProof(ProofRequest {
            from: size,
            to: new.checkpoint.size,
            from_root: self.state.range.root(),
            to_root: new.checkpoint.root,
            question: Question::Mismatch(new),
        }))
    }

    /// Takes the checkpoint `GetCheckpoint` answered: its signature must verify
    /// (`bad-checkpoint-signature`); no larger than the verified checkpoint, it is checked
    /// against it now, larger, once the state reaches it (see [`Engine::caught_up`]).
    ///
    /// # Errors
    /// [`MonitorError::Protocol`] for unsigned fields that disagree with the note; store and
    /// output errors.
    pub fn latest(
        &mut self,
        sc: proto::SignedCheckpoint,
        reporter: &mut Reporter,
    ) -> Result<Verdict, MonitorError> {
        let Some(latest) = self.verify_signed(sc, reporter)? else {
            return Ok(Verdict::Rejected);
        };
        self.latest_size = self.latest_size.max(latest.checkpoint.size);
        if latest.checkpoint.size <= self.state.size() {
            return self.older(latest, Then::Consistent, reporter);
        }
        self.pending = Some(latest);
        Ok(Verdict::Consistent)
    }

    /// Takes a witnessed checkpoint (a Tail `witnessed` event): its log signature must verify
    /// (`bad-checkpoint-signature`), and its cosignatures must meet the monitor's witness policy
    /// (`not-witnessed`, a warning: the server's policy may differ from the monitor's). One that
    /// meets it is then checked like a `GetCheckpoint` answer; an inconsistency with the verified
    /// checkpoint is then `witness-equivocation` (the log and a quorum of witnesses showed two
    /// histories). Without a policy it is ignored.
    ///
    /// # Errors
    /// Store, state and output errors.
    pub fn witnessed(
        &mut self,
        sc: proto::SignedCheckpoint,
        reporter: &mut Reporter,
    ) -> Result<Verdict, MonitorError> {
        let Some(policy) = self.witness_policy.clone() else {
            return Ok(Verdict::Consistent);
        };
        let Some(witnessed) = self.verify_signed(sc, reporter)? else {
            return Ok(Verdict::Rejected);
        };
        if let Err(e) = policy.check(&witnessed.note) {
            let mut f = Finding::about_log(
                FindingKind::NotWitnessed,
                self.state.note(),
                format!(
                    "the log served as witnessed a checkpoint of size {} that does not meet this \
                     monitor's witness policy: {e}",
                    witnessed.checkpoint.size
                ),
            );
            f.severity = Severity::Warning;
            self.report_now(vec![f], reporter)?;
            return Ok(Verdict::Consistent);
        }
        if witnessed.checkpoint.size <= self.state.size() {
            return self.older(witnessed, Then::Consistent, reporter);
        }
        if self
            .pending
            .as_ref()
            .is_none_or(|p| p.checkpoint.size < witnessed.checkpoint.size)
        {
            self.latest_size = self.latest_size.max(witnessed.checkpoint.size);
            self.pending = Some(witnessed);
        }
        Ok(Verdict::Consistent)
    }

    /// Whether the monitor was given a witness policy.
    pub fn demands_witnesses(&self) -> bool {
        self.witness_policy.is_some()
    }

    /// `inconsistent-checkpoint`, or `witness-equivocation` when the other checkpoint meets the
    /// witness policy.
    fn inconsistency(&self, other: &VerifiedCheckpoint, why: &str) -> Finding {
        let witnessed = self
            .witness_policy
            .as_ref()
            .is_some_and(|p| p.check(&other.note).is_ok());
        let mut f = inconsistent(&self.state, other, why);
        if witnessed {
            f.kind = FindingKind::WitnessEquivocation;
        }
        f
    }

    /// Whether the verified state has reached every checkpoint `GetCheckpoint` answered.
    pub fn caught_up(&self) -> bool {
        self.state.size() >= self.latest_size
    }

    /// Takes the answer to a [`ProofRequest`] (the server's, or a proof computed from the
    /// tiles) and decides its question:
    /// - an older checkpoint is consistent with the verified one if the proof verifies, and
    ///   `inconsistent-checkpoint` if it does not;
    /// - a checkpoint the entries do not lead to is `root-mismatch` if the proof verifies (the
    ///   entries are wrong) or if there is no proof (nothing tells which is wrong), and
    ///   `inconsistent-checkpoint` if the proof does not verify;
    /// - a segment whose proof verifies is checked and committed ([`Verdict::Consistent`]); one
    ///   whose proof does not is decided as a checkpoint the entries do not lead to.
    ///
    /// # Errors
    /// The failure to get a proof when checking an older checkpoint or a segment (nothing is
    /// decided: the caller retries); store and output errors.
    pub fn consistency_proof(
        &mut self,
        request: ProofRequest,
        reply: Result<proto::ConsistencyProof, MonitorError>,
        reporter: &mut Reporter,
    ) -> Result<Verdict, MonitorError> {
        let ProofRequest {
            from,
            to,
            from_root,
            to_root,
            question,
        } = request;
        let checked = reply.map(|p| {
            client::verify_consistency_reply(&p, from, to, &from_root, &to_root)
                .map_err(proof_failure)
        });
        match question {
            Question::Older { other, then } => match checked? {
                Ok(()) => self.then(then, reporter),
                Err(e) => {
                    let why = format!(
                        "the log's consistency proof from size {from} to {to} does not verify: {e}"
                    );
                    self.reject(self.inconsistency(&other, &why), reporter)
                }
            },
            Question::Mismatch(new) => {
                let state = &self.state;
                let f = match checked {
                    Ok(Ok(())) => root_mismatch(state, &new, "the checkpoint is proven consistent with the verified one, so the entries are not the ones it covers"),
                    Ok(Err(e)) => self.inconsistency(&new, &format!("the entries served do not lead to its root, and the log's consistency proof (from its server or its tiles) does not verify: {e}")),
                    Err(e) => {
                        tracing::warn!("no consistency proof from {from} to {to}: {e}");
                        root_mismatch(state, &new, "and no consistency proof could be had to tell whether the checkpoint or the entries are wrong")
                    }
                };
                self.reject(f, reporter)
            }
            Question::Segment(to) => match checked? {
                Ok(()) => {
                    self.apply_run(reporter)?;
                    Ok(Verdict::Consistent)
                }
                Err(e) => {
                    tracing::debug!("the entries read do not lead to a prefix of the checkpoint of size {to_size}: {e}", to_size = to.checkpoint.size);
                    self.mismatch(to, reporter)
                }
            },
        }
    }

    /// Reports a split view that the state shared with the user's other commands
    /// ([`crate::client::trust_state`], the file at `path`) found between a checkpoint they
    /// accepted and the one this monitor verified: `inconsistent-checkpoint`, with both notes.
    ///
    /// # Errors
    /// Store and output errors.
    pub fn split_view(
        &self,
        split: &SplitView,
        path: &str,
        reporter: &mut Reporter,
    ) -> Result<(), MonitorError> {
        let f = Finding::about_log(
            FindingKind::InconsistentCheckpoint,
            &split.old_note,
            format!(
                "{}: the checkpoint this monitor verified does not fit the one the \
                 user's other glasslog commands accepted (split-view state {path}); both \
                 are signed by the log's key. Accepted before:\n{}\nVerified by this \
                 monitor:\n{}",
                split.reason, split.old_note, split.new_note
            ),
        );
        self.report_now(vec![f], reporter)
    }

    /// A served checkpoint whose signature verified under the pinned key, or `None` when it did
    /// not (reported: `bad-checkpoint-signature`).
    ///
    /// # Errors
    /// [`MonitorError::Protocol`] for unsigned fields that disagree with the note; store and
    /// output errors.
    fn verify_signed(
        &self,
        sc: proto::SignedCheckpoint,
        reporter: &mut Reporter,
    ) -> Result<Option<VerifiedCheckpoint>, MonitorError> {
        let checkpoint = match self.verifier.verify(&sc.note) {
            Ok(c) => c,
            Err(e) => {
                let f = bad_signature(&self.state, &sc.note, &e.to_string());
                self.report_now(vec![f], reporter)?;
                return Ok(None);
            }
        };
        client::check_checkpoint_fields(&sc, &checkpoint)
            .map_err(|e| MonitorError::Protocol(e.to_string()))?;
        Ok(Some(VerifiedCheckpoint {
            checkpoint,
            note: sc.note,
        }))
    }

    /// Checks `other`, no larger than the verified checkpoint, against it: the same root at the
    /// same size, the empty tree's root at size 0, else a consistency proof is needed.
    fn older(
        &mut self,
        other: VerifiedCheckpoint,
        then: Then,
        reporter: &mut Reporter,
    ) -> Result<Verdict, MonitorError> {
        let (size, root) = (self.state.size(), self.state.range.root());
        let (from, from_root) = (other.checkpoint.size, other.checkpoint.root);
        let why = if from == size {
            if from_root == root {
                return self.then(then, reporter);
            }
            "it has the same size as the verified checkpoint and another root"
        } else if from == 0 {
            if from_root == merkle::EMPTY_HASH {
                return self.then(then, reporter);
            }
            "it has size 0 and a root other than the empty tree's"
        } else {
            return Ok(Verdict::NeedsProof(ProofRequest {
                from,
                to: size,
                from_root,
                to_root: root,
                question: Question::Older { other, then },
            }));
        };
        self.reject(self.inconsistency(&other, why), reporter)
    }

    fn then(&mut self, then: Then, reporter: &mut Reporter) -> Result<Verdict, MonitorError> {
        match then {
            Then::Consistent => Ok(Verdict::Consistent),
            Then::Progressed => self.progressed(reporter),
        }
    }

    /// After the state moved: a pending `GetCheckpoint` answer it has reached is checked now.
    fn progressed(&mut self, reporter: &mut Reporter) -> Result<Verdict, MonitorError> {
        let size = self.state.size();
        match self.pending.take_if(|p| p.checkpoint.size <= size) {
            Some(p) => self.older(p, Then::Progressed, reporter),
            None => Ok(Verdict::Verified),
        }
    }

    fn reject(&self, f: Finding, reporter: &mut Reporter) -> Result<Verdict, MonitorError> {
        self.report_now(vec![f], reporter)?;
        Ok(Verdict::Rejected)
    }

    /// Applies the checks to the run's entries, reports, and commits store then state file.
    fn accept(
        &mut self,
        new: VerifiedCheckpoint,
        reporter: &mut Reporter,
    ) -> Result<(), MonitorError> {
        self.apply_run(reporter)?;
        let size = new.checkpoint.size;
        let next = Run::at(size, self.run.range.clone(), self.run.last_ms);
        let run = std::mem::replace(&mut self.run, next);
        self.state.range = run.range;
        self.state.remember(&run.leaves);
        self.state.checkpoint = Some(new);
        self.state.last_integrated_ms = run.last_ms;
        self.state.save(&self.state_path, &self.verifier)?;
        tracing::debug!(size, "committed checkpoint");
        self.log_progress();
        Ok(())
    }

    /// Applies the checks to the run's entries not checked yet, reports, and commits the store
    /// up to the run's position; the run keeps its compact range and its last leaf hashes
    /// ([`RECENT_LEAVES`], all the state keeps of them). The state file is the caller's.
    fn apply_run(&mut self, reporter: &mut Reporter) -> Result<(), MonitorError> {
        let run = &mut self.run;
        let mut tx = self.store.tx();
        let mut last_ms = run.last_ms;
        for (index, facts) in (run.facts_from..).zip(&run.facts) {
            let checked = index >= self.applied;
            let findings = match facts {
                Err(reason) => vec![invalid(index, reason.clone())],
                Ok(f) if f.integrated_ms < last_ms => vec![invalid(
                    index,
                    format!(
                        "its integrated time {} ms is before the previous entry's, {last_ms} ms",
                        f.integrated_ms
                    ),
                )],
                Ok(f) if checked => rules::apply(&mut tx, index, f, self.rules)?,
                Ok(_) => Vec::new(),
            };
            if let Ok(f) = facts {
                last_ms = last_ms.max(f.integrated_ms);
            }
            if checked {
                report_all(&mut tx, findings, reporter)?;
            }
        }
        let end = run.range.size();
        // Everything is verified and every finding printed; what follows makes it durable.
        tracing::debug!(end, entries = run.facts.len(), "checked entries");
        self.applied = self.applied.max(end);
        tx.set_applied(self.applied);
        self.store.commit(tx)?;
        run.facts.clear();
        run.facts_from = end;
        run.last_ms = last_ms;
        let excess = run.leaves.len().saturating_sub(RECENT_LEAVES);
        run.leaves.drain(..excess);
        Ok(())
    }

    fn log_progress(&mut self) {
        if self.progress.last_log.elapsed().as_secs() >= 5 {
            self.progress.last_log = Instant::now();
            let (entries, secs) = self.throughput();
            tracing::info!(
                size = self.state.size(),
                "verified {entries} entries in {secs:.1} s ({:.0} entries/s)",
                entries as f64 / secs
            );
        }
    }

    /// Reports findings that do not wait for a checkpoint, and commits their identities.
    ///
    /// # Errors
    /// Store and output errors.
    pub fn report_now(
        &self,
        findings: Vec<Finding>,
        reporter: &mut Reporter,
    ) -> Result<(), MonitorError> {
        if findings.is_empty() {
            return Ok(());
        }
        let mut tx = self.store.tx();
        report_all(&mut tx, findings, reporter)?;
        self.store.commit(tx)
    }
}

/// Reports each finding that is watched and not reported before, and records it in `tx`.
fn report_all(
    tx: &mut Tx<'_>,
    findings: Vec<Finding>,
    reporter: &mut Reporter,
) -> Result<(), MonitorError> {
    for f in findings {
        if !reporter.wants(&f) {
            continue;
        }
        let id = f.id();
        if !tx.is_reported(&id)? {
            reporter.report(&f)?;
            tx.mark_reported(&id);
        }
    }
    Ok(())
}

/// Why a consistency proof reply does not verify, in words for a finding.
fn proof_failure(e: ClientError) -> String {
    match e {
        ClientError::Proof(e) => e.to_string(),
        e => e.to_string(),
    }
}

fn invalid(index: u64, reason: String) -> Finding {
    Finding::new(
        FindingKind::InvalidEntry,
        Severity::Critical,
        [index],
        [],
        format!("entry {index} would be refused by admission: {reason}"),
    )
}

/// `bad-checkpoint-signature` for `note`, anchored at the verified state.
fn bad_signature(state: &LogState, note: &str, error: &str) -> Finding {
    Finding::about_log(
        FindingKind::BadCheckpointSignature,
        state.note(),
        format!("a checkpoint served by the log does not verify under the pinned log key: {error}. The checkpoint:\n{note}"),
    )
}

/// `inconsistent-checkpoint` between the verified checkpoint and `other`, with both notes.
fn inconsistent(state: &LogState, other: &VerifiedCheckpoint, why: &str) -> Finding {
    let verified = match &state.checkpoint {
        Some(c) => format!("size {}:\n{}", c.checkpoint.size, c.note),
        None => "size 0 (the empty tree, no note)".to_string(),
    };
    Finding::about_log(
        FindingKind::InconsistentCheckpoint,
        state.note(),
        format!(
            "the log signed a checkpoint of size {} that is not consistent with the verified checkpoint of {verified}: {why}. \
             The other checkpoint:\n{}",
            other.checkpoint.size, other.note
        ),
    )
}

/// `root-mismatch`: the entries `[state size, other size)` do not hash to `other`'s root.
fn root_mismatch(state: &LogState, other: &VerifiedCheckpoint, why: &str) -> Finding {
    Finding::about_log(
        FindingKind::RootMismatch,
        state.note(),
        format!(
            "the entries {}..{} served do not hash to the root of the signed checkpoint that covers them ({why}). The checkpoint:\n{}",
            state.size(),
            other.checkpoint.size,
            other.note
        ),
    )
}

#[cfg(test)]
mod tests;

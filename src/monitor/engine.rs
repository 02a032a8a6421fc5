//! The monitor's synchronous core: it takes what a `Tail` stream delivers (runs of entries, each
//! closed by a checkpoint), verifies each run against its checkpoint, applies the per-entry and
//! per-name checks, reports findings and commits state. No networking: [`super::follow`] feeds it
//! and fetches the proofs it needs to explain a failure.
//!
//! Invariants:
//! - the state ([`LogState`]) only ever moves to a checkpoint whose signature verified and whose
//!   root the monitor recomputed from its previous compact range and the entries received;
//! - no per-name state, and no finding about an entry's contents, comes from entries whose
//!   checkpoint did not verify;
//! - memory: one run's leaf hashes and entry facts (a run is capped at [`MAX_RUN_ENTRIES`]), the
//!   chunks of leaf data the stream reader has examined ahead (a few, each capped in entries and
//!   bytes, see [`super::follow`]), and the store's bounded cache and memtables.

use std::path::PathBuf;
use std::time::Instant;

use std::sync::Arc;

use super::examine::{EntryFacts, Examined, Examiner};
use super::report::Reporter;
use super::rules::{self, RuleOptions};
use super::state::{LogState, VerifiedCheckpoint};
use super::store::{Store, Tx};
use super::{Config, Finding, FindingKind, MonitorError, Severity};
use crate::proto;
use crate::tlog::compact::CompactRange;
use crate::tlog::merkle::{self, Hash};
use crate::tlog::note::LogVerifier;

/// Most entries between two checkpoints of a stream (the server's are at most a few thousand).
pub const MAX_RUN_ENTRIES: usize = 1 << 18;

/// What became of a checkpoint.
#[derive(Debug)]
pub enum Verdict {
    /// Verified and accepted: the state moved to it (or it equals the state's).
    Verified,
    /// Refused, and the finding reported.
    Rejected,
    /// Its signature verified, but the entries received do not lead from the verified checkpoint
    /// to its root: the caller asks for a consistency proof to tell which is wrong.
    Mismatch(VerifiedCheckpoint),
    /// Its signature verified and it is smaller than the verified checkpoint (a stream resumed
    /// early closed a run before reaching it): the caller checks it with a consistency proof.
    Behind(VerifiedCheckpoint),
}

/// The entries of the stream since the last checkpoint.
struct Run {
    /// The index the next streamed entry must have.
    next: u64,
    /// The state's compact range with the run's new entries appended.
    range: CompactRange,
    /// Leaf hashes of the new entries (index `state.size()` onwards).
    leaves: Vec<Hash>,
    facts: Vec<Result<EntryFacts, String>>,
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
        let run = Run {
            next: state.size(),
            range: state.range.clone(),
            leaves: Vec::new(),
            facts: Vec::new(),
        };
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
        self.run = Run {
            next: start,
            range: self.state.range.clone(),
            leaves: Vec::new(),
            facts: Vec::new(),
        };
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

    /// Takes the checkpoint that closes a run: verifies its signature, then its root against the
    /// verified compact range and the run's entries, then checks and commits the run.
    ///
    /// # Errors
    /// [`MonitorError::Protocol`] for a checkpoint whose unsigned fields disagree with its note or
    /// whose size is not the stream's position; store, state and output errors.
    pub fn checkpoint(
        &mut self,
        sc: proto::SignedCheckpoint,
        reporter: &mut Reporter,
    ) -> Result<Verdict, MonitorError> {
        let checkpoint = match self.verifier.verify(&sc.note) {
            Ok(c) => c,
            Err(e) => {
                let f = bad_signature(&self.state, &sc.note, &e.to_string());
                self.report_now(vec![f], reporter)?;
                return Ok(Verdict::Rejected);
            }
        };
        if checkpoint.size != sc.size || checkpoint.root.0.as_slice() != sc.root_hash.as_slice() {
            return Err(MonitorError::Protocol(format!(
                "a checkpoint's size and root fields ({}, {}) differ from its signed note's",
                sc.size,
                hex::encode(&sc.root_hash)
            )));
        }
        if checkpoint.size != self.run.next {
            return Err(MonitorError::Protocol(format!(
                "a checkpoint of size {} closed a run at stream position {}",
                checkpoint.size, self.run.next
            )));
        }
        let new = VerifiedCheckpoint {
            checkpoint,
            note: sc.note,
        };
        if new.checkpoint.size < self.state.size() {
            return Ok(Verdict::Behind(new));
        }
        if new.checkpoint.size == self.state.size() {
            return self.same_size(new, reporter);
        }
        if self.run.range.root() != new.checkpoint.root {
            return Ok(Verdict::Mismatch(new));
        }
        self.accept(new, reporter)?;
        Ok(Verdict::Verified)
    }

    /// A checkpoint of the verified size: its root must be the verified root.
    fn same_size(
        &mut self,
        new: VerifiedCheckpoint,
        reporter: &mut Reporter,
    ) -> Result<Verdict, MonitorError> {
        if new.checkpoint.root != self.state.range.root() {
            let f = inconsistent(
                &self.state,
                &new,
                "it has the same size as the verified checkpoint and another root",
            );
            self.report_now(vec![f], reporter)?;
            return Ok(Verdict::Rejected);
        }
        if self.state.checkpoint.is_none() {
            self.state.checkpoint = Some(new);
            self.state.save(&self.state_path, &self.verifier)?;
        }
        Ok(Verdict::Verified)
    }

    /// Applies the checks to the run's entries, reports, and commits store then state file.
    fn accept(
        &mut self,
        new: VerifiedCheckpoint,
        reporter: &mut Reporter,
    ) -> Result<(), MonitorError> {
        let next = Run {
            next: new.checkpoint.size,
            range: self.run.range.clone(),
            leaves: Vec::new(),
            facts: Vec::new(),
        };
        let run = std::mem::replace(&mut self.run, next);
        let mut tx = self.store.tx();
        let mut last_ms = self.state.last_integrated_ms;
        for (index, facts) in (self.state.size()..).zip(&run.facts) {
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
        let size = new.checkpoint.size;
        // Everything is verified and every finding printed; what follows makes it durable.
        tracing::debug!(size, entries = run.leaves.len(), "checked checkpoint");
        self.applied = self.applied.max(size);
        tx.set_applied(self.applied);
        self.store.commit(tx)?;
        self.state.range = run.range;
        self.state.remember(&run.leaves);
        self.state.checkpoint = Some(new);
        self.state.last_integrated_ms = last_ms;
        self.state.save(&self.state_path, &self.verifier)?;
        tracing::debug!(size, "committed checkpoint");
        self.log_progress();
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
pub fn bad_signature(state: &LogState, note: &str, error: &str) -> Finding {
    Finding::about_log(
        FindingKind::BadCheckpointSignature,
        state.note(),
        format!("a checkpoint served by the log does not verify under the pinned log key: {error}. The checkpoint:\n{note}"),
    )
}

/// `inconsistent-checkpoint` between the verified checkpoint and `other`, with both notes.
pub fn inconsistent(state: &LogState, other: &VerifiedCheckpoint, why: &str) -> Finding {
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
pub fn root_mismatch(state: &LogState, other: &VerifiedCheckpoint, why: &str) -> Finding {
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

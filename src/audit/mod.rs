//! Auditing a log from the outside: everything a client can check about a log without trusting
//! its server, for the whole log ([`run`], behind `glasslog audit`) or for one declaration
//! ([`verify`], behind `glasslog verify`).
//!
//! An audit streams every entry up to a signed checkpoint and
//!
//! 1. recomputes the Merkle tree's root from the leaves ([`crate::tlog::compact::CompactRange`]) and
//!    compares it with the checkpoint's (signed by the pinned key, which the caller checked):
//!    the log's commitment covers exactly these entries, in this order;
//! 2. re-runs, on every entry, the admission checks the server ran at Submit
//!    ([`entry_check`]): the leaf decodes, the logged publisher keys are what the log writes,
//!    the DSSE envelope parses and (unless disabled) every signature verifies, and the statement
//!    passes the declaration rules;
//! 3. checks the entries against each other in log order ([`ledger`]): every reference to a log
//!    index holds (the server's rules, [`crate::admission::references`]), no submission is logged twice, the log's
//!    clock never goes back;
//! 4. counts entries by kind, publishers (key ids) and names.
//!
//! Every failed check is a [`Finding`] that says what, where and why, in the kinds the monitor
//! reports too ([`crate::check`]).
//!
//! # Sources
//!
//! Entries are fetched with GetEntries, several ranges in flight ([`fetch`]), or from the log's
//! entry bundles (`--tiles`, [`tiles`]): the checks, the findings and the summary are the same.
//! From tiles the audit also compares every entry's leaf hash with the level-0 hash tile,
//! authenticated against the checkpoint, that commits to it: hash tiles that do not fit the
//! bundles or the checkpoint are `bad-reply` findings (a mirror that cannot prove what it
//! serves), and the audit goes on.
//!
//! # Throughput and memory
//!
//! Worker threads hash the leaves and run the per-entry checks (signatures included) on runs of entries; the
//! main thread takes the runs back in order, folds the leaf hashes into the compact range and
//! makes the cross-entry checks. Memory is bounded by the runs in flight: the cross-entry state is in a
//! temporary RocksDB database ([`ledger`]), the summary keeps only the most frequent publishers
//! and names.
//!
//! What an audit is not: a witness of what other clients were shown. It proves that the
//! checkpoint it was given commits to a well-formed log; split views are caught by comparing
//! checkpoints ([`crate::client::trust_state`]), which the command line does before auditing.

pub mod entry_check;
mod fetch;
pub mod ledger;
mod tiles;

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::check::{Finding, FindingKind};
use crate::client::source::Source;
use crate::proto;
use crate::tlog::checkpoint::Checkpoint;
use crate::tlog::compact::CompactRange;
use crate::tlog::merkle::Hash;

pub use entry_check::Facts;
use fetch::{FetchError, Run};
use ledger::{Kinds, Ledger, Top};

/// Runs of entries handed to the workers and not yet taken back.
const MAX_JOBS: u64 = 8;
/// Publishers and names listed in the summary.
const TOP: usize = 20;

/// Why an audit could not be completed (failed checks are [`Finding`]s, not errors).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The log's entries could not be fetched.
    #[error("{0}")]
    Fetch(#[from] FetchError),
    /// The working directory or its database could not be created.
    #[error("cannot create the audit's working database under {}: {reason}", path.display())]
    WorkDir {
        path: std::path::PathBuf,
        reason: String,
    },
    /// The working database failed.
    #[error("the audit's working database failed: {0}")]
    Db(#[from] rocksdb::Error),
    /// A bug in the auditor (a worker thread failed).
    #[error("internal error: {0}")]
    Internal(String),
}

/// How to audit.
#[derive(Clone, Debug)]
pub struct Options {
    /// Verify every DSSE signature (the expensive part).
    pub signature_checks: bool,
    /// Predicate types of other statements the log accepts besides declarations.
    pub extra_predicate_types: Vec<String>,
    /// Where to create the temporary working database.
    pub work_dir: std::path::PathBuf,
    /// Worker threads for the per-entry checks.
    pub threads: usize,
    /// Print progress to stderr about every second.
    pub progress: bool,
}

/// What an audit saw.
#[derive(Clone, Debug)]
pub struct Summary {
    pub origin: String,
    /// The audited checkpoint's size and root.
    pub size: u64,
    pub root: Hash,
    /// The root recomputed from the entries, if they were all read.
    pub computed_root: Option<Hash>,
    pub entries: u64,
    pub kinds: Kinds,
    pub publishers: Top,
    pub names: Top,
    pub signature_checks: bool,
    /// Envelopes whose signatures were verified, and the worker time that took.
    pub signatures: u64,
    pub signature_time: Duration,
    pub threads: usize,
    /// Wall time, and the CPU time of this process (all threads, user and system).
    pub elapsed: Duration,
    pub cpu_time: Duration,
    pub findings: u64,
}

impl Summary {
    /// Entries audited per second of wall time.
    pub fn entries_per_second(&self) -> f64 {
        self.entries as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Entries audited per second of this process's CPU time: the rate on an idle machine with
    /// enough cores, whatever else was running.
    pub fn entries_per_cpu_second(&self) -> f64 {
        self.entries as f64 / self.cpu_time.as_secs_f64().max(1e-9)
    }

    /// Envelopes verified per second of worker CPU time (one core).
    pub fn signatures_per_core_second(&self) -> f64 {
        self.signatures as f64 / self.signature_time.as_secs_f64().max(1e-9)
    }

    /// The summary as one JSON object, `{"type": "summary", ...}`.
    pub fn to_json(&self) -> Value {
        let top = |t: &Top, key: &str| json!({"distinct": t.distinct, "top": t.top.iter().map(|(k, n)| json!({key: k, "entries": n})).collect::<Vec<_>>()});
        json!({
            "type": "summary",
            "result": if self.findings == 0 { "ok" } else { "fail" },
            "origin": self.origin,
            "checkpoint_size": self.size,
            "checkpoint_root": hex::encode(self.root.0),
            "computed_root": self.computed_root.map(|r| hex::encode(r.0)),
            "entries": self.entries,
            "kinds": {"model": self.kinds.models, "dataset": self.kinds.datasets, "other": self.kinds.other, "invalid": self.kinds.invalid},
            "publishers": top(&self.publishers, "key_id"),
            "names": top(&self.names, "name"),
            "signature_checks": self.signature_checks,
            "signatures_verified": self.signatures,
            "signature_cpu_seconds": self.signature_time.as_secs_f64(),
            "signatures_per_core_second": self.signatures_per_core_second(),
            "threads": self.threads,
            "seconds": self.elapsed.as_secs_f64(),
            "cpu_seconds": self.cpu_time.as_secs_f64(),
            "entries_per_second": self.entries_per_second(),
            "entries_per_cpu_second": self.entries_per_cpu_second(),
            "findings": self.findings,
        })
    }

    /// The summary for people, `key: value` lines.
    pub fn to_text(&self) -> String {
        let mut out = vec![
            format!("result: {}", if self.findings == 0 { "ok" } else { "FAIL" }),
            format!("log: {}", self.origin),
            format!("checkpoint: size {}, root {}", self.size, self.root),
            match self.computed_root {
                Some(r) if r == self.root => {
                    "merkle root: recomputed from every entry, equal to the checkpoint's".into()
                }
                Some(r) => format!("merkle root: recomputed as {r}, NOT the checkpoint's"),
                None => "merkle root: not recomputed (the entries could not all be read)".into(),
            },
            format!("entries: {}", self.entries),
            format!(
                "kinds: {} model, {} dataset, {} other statements, {} invalid",
                self.kinds.models,
                self.kinds.datasets,
                self.kinds.other.values().sum::<u64>(),
                self.kinds.invalid
            ),
        ];
        for (t, n) in &self.kinds.other {
            out.push(format!("  other: {t}: {n}"));
        }
        out.push(format!("publishers: {} key ids", self.publishers.distinct));
        out.extend(
            self.publishers
                .top
                .iter()
                .map(|(k, n)| format!("  {k}: {n} entries")),
        );
        out.push(format!("names: {} distinct", self.names.distinct));
        out.extend(
            self.names
                .top
                .iter()
                .map(|(k, n)| format!("  {k}: {n} declarations")),
        );
        out.push(match self.signature_checks {
            true => format!(
                "signatures: {} envelopes verified, {:.0}/s per core ({:.1} s of CPU time on {} threads)",
                self.signatures,
                self.signatures_per_core_second(),
                self.signature_time.as_secs_f64(),
                self.threads
            ),
            false => "signatures: not checked (--no-signature-checks)".into(),
        });
        out.push(format!(
            "rate: {:.0} entries/s ({:.2} s; {:.1} s of CPU time, {:.0} entries per CPU-second)",
            self.entries_per_second(),
            self.elapsed.as_secs_f64(),
            self.cpu_time.as_secs_f64(),
            self.entries_per_cpu_second()
        ));
        out.push(format!("findings: {}", self.findings));
        out.join("\n")
    }
}

/// Audits the log of `source` (its server or its tiles) up to `checkpoint` (which the caller
/// verified under the pinned key), reporting each finding to `report` as it is made, in log
/// order per check.
///
/// Fetching runs on `runtime`; the checks run on this thread and `opts.threads` workers. Must
/// not be called from inside an async context (it blocks).
///
/// # Errors
/// The entries could not be fetched (an rpc failed, the tiles are unreachable), the working
/// database failed, or a worker failed. A source that answers with the wrong entries is a
/// finding, not an error.
pub fn run(
    runtime: &tokio::runtime::Handle,
    source: &Source,
    checkpoint: &Checkpoint,
    opts: &Options,
    report: &mut dyn FnMut(&Finding),
) -> Result<Summary, AuditError> {
    let (started, cpu_started) = (Instant::now(), process_cpu_time());
    let threads = opts.threads.max(1);
    let runs = match source {
        Source::Server(client) => fetch::spawn(runtime, client.rpc(), checkpoint.size),
        Source::Tiles(tiles) => tiles::spawn(runtime, tiles.clone(), checkpoint.clone()),
    };
    let mut stream = Stream {
        runs,
        tile_hashes: BTreeMap::new(),
        pool: Pool::start(threads, opts.signature_checks, &opts.extra_predicate_types),
        ledger: Ledger::create(&opts.work_dir)?,
        range: CompactRange::new(),
        progress: Progress::new(opts.progress, checkpoint.size),
        findings: 0,
    };
    stream.drive(report)?;
    let computed_root = (stream.range.size() == checkpoint.size).then(|| stream.range.root());
    if let Some(root) = computed_root.filter(|r| *r != checkpoint.root) {
        stream.findings += 1;
        report(&root_mismatch(checkpoint, root));
    }
    let (signature_time, signatures) = stream.pool.finish()?;
    Ok(Summary {
        origin: checkpoint.origin.clone(),
        size: checkpoint.size,
        root: checkpoint.root,
        computed_root,
        entries: stream.range.size(),
        kinds: stream.ledger.kinds.clone(),
        publishers: stream.ledger.publishers(TOP)?,
        names: stream.ledger.names(TOP)?,
        signature_checks: opts.signature_checks,
        signatures,
        signature_time,
        threads,
        elapsed: started.elapsed(),
        cpu_time: process_cpu_time().saturating_sub(cpu_started),
        findings: stream.findings,
    })
}

/// The audit's pipeline: runs of entries from the fetcher, to the workers, back in log order
/// into the compact range and the ledger.
struct Stream {
    runs: tokio::sync::mpsc::Receiver<Result<Run, FetchError>>,
    /// Of the runs handed to the workers and not yet absorbed, by number: the tile hashes that
    /// came with them.
    tile_hashes: BTreeMap<u64, Option<Result<Vec<Hash>, String>>>,
    pool: Pool,
    ledger: Ledger,
    range: CompactRange,
    progress: Progress,
    findings: u64,
}

impl Stream {
    /// Runs the pipeline until the fetcher ends (after the last entry, or at a reply that is not
    /// the entries asked for, which is a finding).
    fn drive(&mut self, report: &mut dyn FnMut(&Finding)) -> Result<(), AuditError> {
        let (mut sent, mut done, mut fetching) = (0u64, 0u64, true);
        let mut back: BTreeMap<u64, Vec<Facts>> = BTreeMap::new();
        loop {
            while fetching && sent - done < MAX_JOBS {
                match self.runs.blocking_recv() {
                    Some(Ok(run)) => {
                        self.tile_hashes.insert(sent, run.tile_hashes);
                        self.pool.submit(sent, run.entries)?;
                        sent += 1;
                    }
                    Some(Err(e)) if e.is_bad_reply() => {
                        self.findings += 1;
                        report(&Finding::of(
                            FindingKind::BadReply,
                            format!("{e}; the audit stops here"),
                        ));
                        fetching = false;
                    }
                    Some(Err(e)) => return Err(e.into()),
                    None => fetching = false,
                }
            }
            if done == sent {
                break;
            }
            let (seq, facts) = self.pool.take()?;
            back.insert(seq, facts);
            while let Some(facts) = back.remove(&done) {
                let tile_hashes = self.tile_hashes.remove(&done).flatten();
                self.absorb(&facts, tile_hashes, report)?;
                done += 1;
            }
        }
        self.progress.finish();
        Ok(())
    }

    /// Takes back the next run in log order, with the tile hashes it was read with, if any.
    fn absorb(
        &mut self,
        facts: &[Facts],
        tile_hashes: Option<Result<Vec<Hash>, String>>,
        report: &mut dyn FnMut(&Finding),
    ) -> Result<(), AuditError> {
        if let Some(f) = tiles_finding(facts, tile_hashes) {
            self.findings += 1;
            report(&f);
        }
        facts.iter().for_each(|f| self.range.append(f.leaf_hash));
        for f in self.ledger.absorb(facts)? {
            self.findings += 1;
            report(&f);
        }
        self.progress.add(facts.len() as u64);
        Ok(())
    }
}

/// The CPU time of the calling thread (zero if the clock cannot be read).
fn thread_cpu_time() -> Duration {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// The CPU time of this process, all threads (zero if the clock cannot be read).
fn process_cpu_time() -> Duration {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn cpu_clock(clock: libc::clockid_t) -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) writes one timespec into `t`, which lives across the call.
    if unsafe { libc::clock_gettime(clock, &mut t) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

fn root_mismatch(checkpoint: &Checkpoint, computed: Hash) -> Finding {
    Finding::of(
        FindingKind::RootMismatch,
        format!(
            "the checkpoint of size {} signs root {}, but the {} entries the log serves hash to {}: the log's \
             signed commitment is not to the entries it serves",
            checkpoint.size, checkpoint.root, checkpoint.size, computed
        ),
    )
}

/// `bad-reply` for a run read from tiles whose authenticated level-0 tile hashes are not its
/// entries' leaf hashes, or could not be authenticated; one finding per run, naming the first
/// entry that differs.
fn tiles_finding(
    facts: &[Facts],
    tile_hashes: Option<Result<Vec<Hash>, String>>,
) -> Option<Finding> {
    let (first, last) = (facts.first()?.index, facts.last()?.index);
    let hashes = match tile_hashes? {
        Ok(h) => h,
        Err(why) => {
            return Some(
                Finding::of(
                    FindingKind::BadReply,
                    format!("the hash tiles of entries {first}..={last} do not check out: {why}"),
                )
                .at(first),
            )
        }
    };
    let differ: Vec<(&Facts, Hash)> = facts
        .iter()
        .zip(hashes)
        .filter(|(f, h)| f.leaf_hash != *h)
        .collect();
    let (f, want) = differ.first()?;
    Some(
        Finding::of(
            FindingKind::BadReply,
            format!(
                "entry {} is served in its entry bundle with leaf hash {}, but the level-0 hash \
                 tile, authenticated against the checkpoint, holds {want} ({} of entries \
                 {first}..={last} differ): the bundles are not the entries the tiles commit to",
                f.index,
                f.leaf_hash,
                differ.len()
            ),
        )
        .at(f.index),
    )
}

/// A job: a run of entries numbered `seq`.
type Job = (u64, Vec<proto::Entry>);
/// A worker's answer: the run's facts, or why the worker failed.
type Answer = (u64, Result<Vec<Facts>, String>);

/// Worker threads running [`entry_check::Checker`] on runs of entries.
struct Pool {
    jobs: Option<mpsc::Sender<Job>>,
    answers: mpsc::Receiver<Answer>,
    workers: Vec<JoinHandle<(Duration, u64)>>,
}

impl Pool {
    fn start(threads: usize, signature_checks: bool, extra_types: &[String]) -> Pool {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let (answer_tx, answers) = mpsc::channel::<Answer>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let workers = (0..threads)
            .map(|_| {
                let (job_rx, answer_tx) = (job_rx.clone(), answer_tx.clone());
                let mut checker = entry_check::Checker::new(signature_checks, extra_types.to_vec());
                std::thread::spawn(move || {
                    loop {
                        let job = job_rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                        let Ok((seq, run)) = job else { break };
                        let facts = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            run.iter()
                                .map(|e| checker.check(e.index, &e.leaf_data))
                                .collect::<Vec<_>>()
                        }))
                        .map_err(|_| {
                            format!(
                                "a worker failed on the run of entries from {}",
                                run.first().map_or(0, |e| e.index)
                            )
                        });
                        if answer_tx.send((seq, facts)).is_err() {
                            break;
                        }
                    }
                    (checker.signature_time, checker.signatures)
                })
            })
            .collect();
        Pool {
            jobs: Some(jobs),
            answers,
            workers,
        }
    }

    fn submit(&self, seq: u64, run: Vec<proto::Entry>) -> Result<(), AuditError> {
        let jobs = self
            .jobs
            .as_ref()
            .ok_or_else(|| AuditError::Internal("the pool is finished".into()))?;
        jobs.send((seq, run))
            .map_err(|_| AuditError::Internal("every worker thread has stopped".into()))
    }

    fn take(&self) -> Result<(u64, Vec<Facts>), AuditError> {
        let (seq, facts) = self
            .answers
            .recv()
            .map_err(|_| AuditError::Internal("every worker thread has stopped".into()))?;
        Ok((seq, facts.map_err(AuditError::Internal)?))
    }

    /// Stops the workers; the time they spent on signatures and how many envelopes they verified.
    fn finish(&mut self) -> Result<(Duration, u64), AuditError> {
        drop(self.jobs.take());
        let mut total = (Duration::ZERO, 0);
        for w in self.workers.drain(..) {
            let (t, n) = w
                .join()
                .map_err(|_| AuditError::Internal("a worker thread panicked".into()))?;
            total = (total.0 + t, total.1 + n);
        }
        Ok(total)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        drop(self.jobs.take());
    }
}

/// Progress on stderr, about once a second.
struct Progress {
    on: bool,
    total: u64,
    done: u64,
    started: Instant,
    last: Instant,
}

impl Progress {
    fn new(on: bool, total: u64) -> Progress {
        let now = Instant::now();
        Progress {
            on,
            total,
            done: 0,
            started: now,
            last: now,
        }
    }

    fn add(&mut self, n: u64) {
        self.done += n;
        if self.on && self.last.elapsed() >= Duration::from_secs(1) {
            self.last = Instant::now();
            let rate = self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
            eprint!(
                "\raudited {}/{} entries ({rate:.0}/s)   ",
                self.done, self.total
            );
        }
    }

    fn finish(&self) {
        if self.on && self.done > 0 {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(computed: Option<Hash>, findings: u64) -> Summary {
        Summary {
            origin: "example.org/log".into(),
            size: 3,
            root: Hash([1; 32]),
            computed_root: computed,
            entries: 3,
            kinds: Kinds {
                models: 2,
                datasets: 1,
                ..Kinds::default()
            },
            publishers: Top {
                distinct: 1,
                top: vec![("ab".into(), 3)],
            },
            names: Top {
                distinct: 2,
                top: vec![("org/m".into(), 2), ("org/d".into(), 1)],
            },
            signature_checks: true,
            signatures: 3,
            signature_time: Duration::from_millis(3),
            threads: 2,
            elapsed: Duration::from_millis(10),
            cpu_time: Duration::from_millis(15),
            findings,
        }
    }

    #[test]
    fn summaries_say_whether_the_root_was_recomputed() {
        let ok = summary(Some(Hash([1; 32])), 0);
        let text = ok.to_text();
        assert!(text.starts_with("result: ok\n"), "{text}");
        assert!(
            text.contains("merkle root: recomputed from every entry, equal to the checkpoint's")
        );
        assert!(text.contains("kinds: 2 model, 1 dataset, 0 other statements, 0 invalid"));
        assert!(text.contains("  org/m: 2 declarations"));
        let v = ok.to_json();
        assert_eq!(v["type"], "summary");
        assert_eq!(v["computed_root"], v["checkpoint_root"]);
        assert_eq!(v["names"]["top"][0]["name"], "org/m");
        assert!((v["entries_per_second"].as_f64().unwrap() - 300.0).abs() < 1.0);
        let bad = summary(Some(Hash([2; 32])), 1);
        assert!(bad.to_text().contains("NOT the checkpoint's"));
        assert_eq!(bad.to_json()["result"], "fail");
        assert!(summary(None, 1).to_text().contains("not recomputed"));
    }

    #[test]
    fn a_root_mismatch_names_both_roots() {
        let c = Checkpoint {
            origin: "o".into(),
            size: 3,
            root: Hash([1; 32]),
        };
        let f = root_mismatch(&c, Hash([2; 32]));
        assert_eq!(f.kind, FindingKind::RootMismatch);
        assert!(f.message.contains(&Hash([1; 32]).to_string()));
        assert!(f.message.contains(&Hash([2; 32]).to_string()));
    }
}

//! The checks across entries, made in log order as the audit streams the log, and the summary's
//! counts: the integration time never decreases, no submission is logged twice, every reference
//! to a log index holds (admission's rules, [`crate::admission::references`], with the entry's
//! own index as the size of the log before it).
//!
//! What they need of the past lives on disk, so that memory stays bounded whatever the size of
//! the log: a temporary RocksDB database (in a directory of its own, removed when the ledger is
//! dropped) maps
//!
//! - `i ‖ index` → kind ‖ subject digest ‖ name, for every admissible declaration, references
//!   included (reference targets);
//! - `d ‖ dedup key` → index, for every entry (duplicates);
//! - `p ‖ key id` and `n ‖ name` → entry count (publishers and names, by a merge operator).
//!
//! Writes skip the write-ahead log: the database is scratch space for one run.

use std::collections::{BinaryHeap, HashMap};
use std::path::{Path, PathBuf};

use rocksdb::{MergeOperands, Options, WriteBatch, WriteOptions, DB};

use crate::admission::declaration::{Digest, Kind};
use crate::admission::keys::KeyId;
use crate::admission::references::{self, Lookup, Target};
use crate::admission::AdmissionError;

use super::entry_check::{Class, Facts};
use super::AuditError;
use crate::check::{Finding, FindingKind};

const TARGET: u8 = b'i';
const DEDUP: u8 = b'd';
const PUBLISHER: u8 = b'p';
const NAME: u8 = b'n';

/// Entries by kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kinds {
    pub models: u64,
    pub datasets: u64,
    /// Accepted statements of extra predicate types, by type.
    pub other: std::collections::BTreeMap<String, u64>,
    /// Entries with a finding of their own (leaf, keys, envelope, signature, statement).
    pub invalid: u64,
}

/// A count of distinct keys and the most frequent ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Top {
    pub distinct: u64,
    /// `(key, entries)`, most entries first, then by key.
    pub top: Vec<(String, u64)>,
}

/// The cross-entry state of an audit.
pub struct Ledger {
    db: Option<DB>,
    dir: PathBuf,
    last_time: Option<(u64, i64)>,
    pub kinds: Kinds,
}

impl Ledger {
    /// A fresh ledger in a new directory under `parent`.
    ///
    /// # Errors
    /// [`AuditError::WorkDir`] if the directory or the database cannot be created.
    pub fn create(parent: &Path) -> Result<Ledger, AuditError> {
        let work = |e: String| AuditError::WorkDir {
            path: parent.to_path_buf(),
            reason: e,
        };
        std::fs::create_dir_all(parent).map_err(|e| work(e.to_string()))?;
        let nonce: u64 = rand_core::RngCore::next_u64(&mut rand_core::OsRng);
        let dir = parent.join(format!(
            "glasslog-audit-{}-{nonce:016x}",
            std::process::id()
        ));
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_merge_operator_associative("glasslog-count", add_counts);
        opts.set_write_buffer_size(32 << 20);
        opts.set_max_background_jobs(1);
        let db = DB::open(&opts, &dir).map_err(|e| work(e.to_string()))?;
        Ok(Ledger {
            db: Some(db),
            dir,
            last_time: None,
            kinds: Kinds::default(),
        })
    }

    fn db(&self) -> &DB {
        self.db.as_ref().expect("the database is open until drop")
    }

    /// Checks a run of consecutive entries in log order against each other and the past, records
    /// them, and returns the findings of the entries and of these checks, in log order.
    ///
    /// # Errors
    /// The database failed.
    pub fn absorb(&mut self, facts: &[Facts]) -> Result<Vec<Finding>, AuditError> {
        let duplicates = self.duplicates(facts)?;
        let mut findings = Vec::new();
        let mut batch = WriteBatch::default();
        let mut publishers: HashMap<KeyId, u64> = HashMap::new();
        let mut names: HashMap<&str, u64> = HashMap::new();
        let mut run_targets = HashMap::new();
        for (f, duplicate_of) in facts.iter().zip(duplicates) {
            findings.extend(f.findings.iter().cloned());
            findings.extend(self.time_order(f));
            match (duplicate_of, &f.dedup) {
                (Some(of), _) => findings.push(duplicate(f, of)),
                (None, Some(key)) => batch.put(dedup_key(key), f.index.to_be_bytes()),
                (None, None) => {}
            }
            let broken = self.references(f, &run_targets)?;
            let target = match (&f.class, &f.declared) {
                (Class::Declaration, Some(d)) if broken.is_none() => Target::Declaration {
                    kind: d.kind,
                    name: d.name.to_string(),
                    digest: d.digest,
                },
                _ => Target::NotDeclaration,
            };
            findings.extend(broken);
            self.count(f);
            for id in &f.key_ids {
                *publishers.entry(*id).or_default() += 1;
            }
            if let Some(d) = &f.declared {
                *names.entry(d.name.as_str()).or_default() += 1;
            }
            if let Target::Declaration { .. } = &target {
                batch.put(target_key(f.index), encode_target(&target));
            }
            run_targets.insert(f.index, target);
        }
        for (id, n) in publishers {
            batch.merge(prefixed(PUBLISHER, &id.0), n.to_le_bytes());
        }
        for (name, n) in names {
            batch.merge(prefixed(NAME, name.as_bytes()), n.to_le_bytes());
        }
        let mut no_wal = WriteOptions::default();
        no_wal.disable_wal(true);
        self.db().write_opt(batch, &no_wal)?;
        Ok(findings)
    }

    /// For each entry, the earlier index it repeats, if any: in the database or earlier in `facts`.
    fn duplicates(&self, facts: &[Facts]) -> Result<Vec<Option<u64>>, AuditError> {
        let keys: Vec<[u8; 33]> = facts
            .iter()
            .map(|f| dedup_key(&f.dedup.unwrap_or_default()))
            .collect();
        let stored = self.db().multi_get(&keys);
        let mut seen: HashMap<[u8; 32], u64> = HashMap::new();
        let mut out = Vec::with_capacity(facts.len());
        for (f, got) in facts.iter().zip(stored) {
            let Some(key) = f.dedup else {
                out.push(None);
                continue;
            };
            let earlier = match got? {
                Some(v) => Some(decode_u64(&v)?),
                None => seen.get(&key).copied(),
            };
            if earlier.is_none() {
                seen.insert(key, f.index);
            }
            out.push(earlier);
        }
        Ok(out)
    }

    fn time_order(&mut self, f: &Facts) -> Option<Finding> {
        let t = f.time_ms?;
        let previous = self.last_time.replace((f.index, t));
        match previous {
            Some((at, before)) if t < before => Some(
                Finding::of(
                    FindingKind::InvalidEntry,
                    format!(
                        "integrated at {t} ms since the epoch, before entry {at} ({before} ms): the log's \
                         clock must never go back as the index grows"
                    ),
                )
                .at(f.index),
            ),
            _ => None,
        }
    }

    /// The reference finding of `f`, if one of its references breaks a rule: targets earlier in
    /// the current run are read from `run`, earlier ones from the database.
    fn references(
        &self,
        f: &Facts,
        run: &HashMap<u64, Target>,
    ) -> Result<Option<Finding>, AuditError> {
        let Some(d) = &f.declared else {
            return Ok(None);
        };
        let lookup = Targets { ledger: self, run };
        let verdict = references::check(d.name.as_str(), &d.references, f.index, &lookup)?;
        Ok(verdict.err().map(|broken| {
            let e = AdmissionError::from(broken);
            Finding::of(FindingKind::InvalidEntry, e.to_string())
                .at(f.index)
                .named(d.name.to_string())
        }))
    }

    fn target(&self, index: u64) -> Result<Target, AuditError> {
        match self.db().get(target_key(index))? {
            Some(v) => decode_target(&v),
            None => Ok(Target::NotDeclaration),
        }
    }

    fn count(&mut self, f: &Facts) {
        let k = &mut self.kinds;
        match (&f.class, f.declared.as_ref().map(|d| d.kind)) {
            (Class::Declaration, Some(Kind::Model)) => k.models += 1,
            (Class::Declaration, Some(Kind::Dataset)) => k.datasets += 1,
            (Class::Other(t), _) => *k.other.entry(t.clone()).or_default() += 1,
            _ => k.invalid += 1,
        }
    }

    /// Publishers (key ids in hex): how many, and the `limit` that signed the most entries.
    ///
    /// # Errors
    /// The database failed.
    pub fn publishers(&self, limit: usize) -> Result<Top, AuditError> {
        self.top(PUBLISHER, limit, |b| hex::encode(b))
    }

    /// Declared names: how many, and the `limit` with the most declarations.
    ///
    /// # Errors
    /// The database failed.
    pub fn names(&self, limit: usize) -> Result<Top, AuditError> {
        self.top(NAME, limit, |b| String::from_utf8_lossy(b).into_owned())
    }

    fn top(
        &self,
        prefix: u8,
        limit: usize,
        show: impl Fn(&[u8]) -> String,
    ) -> Result<Top, AuditError> {
        // Min-heap of (entries, reversed key order) keeps the `limit` largest.
        let mut heap: BinaryHeap<std::cmp::Reverse<(u64, std::cmp::Reverse<Vec<u8>>)>> =
            BinaryHeap::new();
        let mut distinct = 0;
        for item in self.db().prefix_iterator([prefix]) {
            let (k, v) = item?;
            if k.first() != Some(&prefix) {
                break;
            }
            distinct += 1;
            heap.push(std::cmp::Reverse((
                decode_count(&v)?,
                std::cmp::Reverse(k[1..].to_vec()),
            )));
            if heap.len() > limit {
                heap.pop();
            }
        }
        let mut top: Vec<(u64, Vec<u8>)> = heap
            .into_iter()
            .map(|std::cmp::Reverse((n, std::cmp::Reverse(k)))| (n, k))
            .collect();
        top.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        Ok(Top {
            distinct,
            top: top.into_iter().map(|(n, k)| (show(&k), n)).collect(),
        })
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        drop(self.db.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn duplicate(f: &Facts, of: u64) -> Finding {
    let finding = Finding::of(
        FindingKind::DuplicateEntry,
        format!(
            "repeats entry {of}: the same statement signed by the same keys; the log must answer a \
             resubmission with the existing index instead of appending it again"
        ),
    )
    .at(f.index);
    match &f.declared {
        Some(d) => finding.named(d.name.to_string()),
        None => finding,
    }
}

fn prefixed(tag: u8, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + key.len());
    k.push(tag);
    k.extend_from_slice(key);
    k
}

fn decode_u64(v: &[u8]) -> Result<u64, AuditError> {
    <[u8; 8]>::try_from(v)
        .map(u64::from_be_bytes)
        .map_err(|_| AuditError::Internal("a stored index is not 8 bytes".into()))
}

fn decode_count(v: &[u8]) -> Result<u64, AuditError> {
    <[u8; 8]>::try_from(v)
        .map(u64::from_le_bytes)
        .map_err(|_| AuditError::Internal("a stored count is not 8 bytes".into()))
}

/// Sums little-endian u64 counts (the merge operator of `p` and `n` keys).
fn add_counts(_key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    let read = |v: &[u8]| <[u8; 8]>::try_from(v).map(u64::from_le_bytes).unwrap_or(0);
    let mut total = existing.map(read).unwrap_or(0);
    for op in operands {
        total = total.saturating_add(read(op));
    }
    Some(total.to_le_bytes().to_vec())
}

/// What the audit knows of the entries before the one checked: those of the current run, then
/// the database.
struct Targets<'a> {
    ledger: &'a Ledger,
    run: &'a HashMap<u64, Target>,
}

impl Lookup for Targets<'_> {
    type Error = AuditError;

    fn target(&self, index: u64) -> Result<Target, AuditError> {
        match self.run.get(&index) {
            Some(t) => Ok(t.clone()),
            None => self.ledger.target(index),
        }
    }
}

fn target_key(index: u64) -> [u8; 9] {
    let mut k = [TARGET; 9];
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

fn dedup_key(key: &[u8; 32]) -> [u8; 33] {
    let mut k = [DEDUP; 33];
    k[1..].copy_from_slice(key);
    k
}

/// kind (0 not a declaration, 1 model, 2 dataset) ‖ subject digest ‖ name.
fn encode_target(t: &Target) -> Vec<u8> {
    let Target::Declaration { kind, name, digest } = t else {
        return vec![0];
    };
    let kind = match kind {
        Kind::Model => 1u8,
        Kind::Dataset => 2u8,
    };
    [&[kind][..], &digest.0, name.as_bytes()].concat()
}

fn decode_target(v: &[u8]) -> Result<Target, AuditError> {
    let corrupt = || AuditError::Internal("a stored reference target does not decode".into());
    let (&k, rest) = v.split_first().ok_or_else(corrupt)?;
    let kind = match k {
        0 => return Ok(Target::NotDeclaration),
        1 => Kind::Model,
        2 => Kind::Dataset,
        _ => return Err(corrupt()),
    };
    if rest.len() < 32 {
        return Err(corrupt());
    }
    let digest = Digest(rest[..32].try_into().map_err(|_| corrupt())?);
    let name = String::from_utf8(rest[32..].to_vec()).map_err(|_| corrupt())?;
    Ok(Target::Declaration { kind, name, digest })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::declaration::{parse_statement, Declaration};
    use crate::audit::entry_check::Declared;

    const MODEL: &[u8] = include_bytes!("../../tests/data/declarations/model-release.json");
    const DATASET: &[u8] = include_bytes!("../../tests/data/declarations/training-data.json");

    fn facts(index: u64, time: i64, d: Option<Declaration>, dedup: u8) -> Facts {
        Facts {
            index,
            time_ms: Some(time),
            class: if d.is_some() {
                Class::Declaration
            } else {
                Class::Other("t".into())
            },
            leaf_hash: crate::tlog::merkle::EMPTY_HASH,
            declared: d.as_ref().map(Declared::of),
            key_ids: vec![KeyId([dedup % 2; 32])],
            dedup: Some([dedup; 32]),
            findings: vec![],
        }
    }

    fn declared(index: u64, kind: Kind, name: &str, refs: &[(u64, Kind, &str)]) -> Facts {
        let mut f = facts(index, 1, None, index as u8);
        f.class = Class::Declaration;
        f.declared = Some(Declared {
            kind,
            name: name.parse().unwrap(),
            digest: Digest([index as u8; 32]),
            references: refs
                .iter()
                .map(
                    |&(at, kind, name)| crate::admission::declaration::Reference {
                        field: format!("$.ref{at}"),
                        kind,
                        name: crate::admission::declaration::NameRule::Is(name.parse().unwrap()),
                        digest: Digest([at as u8; 32]),
                        log_index: Some(at),
                    },
                )
                .collect(),
        });
        f
    }

    #[test]
    fn references_are_checked_within_a_run_and_against_earlier_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::create(dir.path()).unwrap();
        let first = [
            declared(0, Kind::Dataset, "org/d", &[]),
            facts(1, 1, None, 9),
        ];
        assert!(ledger.absorb(&first).unwrap().is_empty());
        let second = [
            declared(2, Kind::Model, "org/m", &[]),
            // Good references to the earlier run (0) and to this run (2).
            declared(
                3,
                Kind::Model,
                "org/n",
                &[(0, Kind::Dataset, "org/d"), (2, Kind::Model, "org/m")],
            ),
            // A non-declaration (1, from the earlier run); a wrong kind (2, this run).
            declared(4, Kind::Model, "org/o", &[(1, Kind::Dataset, "org/x")]),
            declared(5, Kind::Model, "org/p", &[(2, Kind::Dataset, "org/m")]),
            // An entry whose own reference is broken is not a target.
            declared(6, Kind::Model, "org/q", &[(5, Kind::Model, "org/p")]),
        ];
        let found = ledger.absorb(&second).unwrap();
        let got: Vec<(&[u64], &str)> = found
            .iter()
            .map(|f| (f.indexes.as_slice(), f.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    &[4][..],
                    "declaration rejected: $.ref1: entry 1 is not a model or dataset declaration"
                ),
                (
                    &[5][..],
                    "declaration rejected: $.ref2: entry 2 is a model declaration, not a dataset"
                ),
                (
                    &[6][..],
                    "declaration rejected: $.ref5: entry 5 is not a model or dataset declaration"
                ),
            ]
        );
    }

    #[test]
    fn targets_round_trip() {
        let t = Target::Declaration {
            kind: Kind::Dataset,
            name: "org/x".into(),
            digest: Digest([9; 32]),
        };
        assert_eq!(decode_target(&encode_target(&t)).unwrap(), t);
        assert_eq!(decode_target(&[0]).unwrap(), Target::NotDeclaration);
        assert!(decode_target(&[1, 2]).is_err());
    }

    #[test]
    fn duplicates_time_and_counts_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::create(dir.path()).unwrap();
        let model = parse_statement(MODEL).unwrap();
        let Declaration::Dataset(mut dataset) = parse_statement(DATASET).unwrap() else {
            panic!("not a dataset")
        };
        dataset.supersedes = None;
        let dataset = Declaration::Dataset(dataset);
        let first = vec![
            facts(0, 10, Some(dataset.clone()), 1),
            facts(1, 10, None, 2),
            facts(2, 11, None, 2),
        ];
        let found = ledger.absorb(&first).unwrap();
        assert_eq!(
            found
                .iter()
                .map(|f| (f.kind, f.indexes.clone()))
                .collect::<Vec<_>>(),
            vec![(FindingKind::DuplicateEntry, vec![2])]
        );
        let second = vec![facts(3, 9, Some(model), 1)];
        let found: Vec<_> = ledger
            .absorb(&second)
            .unwrap()
            .iter()
            .map(|f| f.kind)
            .collect();
        // Earlier time, a repeat of entry 0 across runs, and the model's references (indexes 7, 40
        // and 41 are not before index 3).
        assert_eq!(
            &found[..2],
            [FindingKind::InvalidEntry, FindingKind::DuplicateEntry]
        );
        assert!(
            found[2..].iter().all(|k| *k == FindingKind::InvalidEntry),
            "{found:?}"
        );
        assert_eq!(ledger.kinds.models + ledger.kinds.datasets, 2);
        assert_eq!(ledger.kinds.other.get("t"), Some(&2));
        let names = ledger.names(10).unwrap();
        assert_eq!(names.distinct, 2);
        let publishers = ledger.publishers(1).unwrap();
        assert_eq!(publishers.distinct, 2);
        // A tie: the smaller key id first.
        assert_eq!(publishers.top, vec![(hex::encode([0u8; 32]), 2)]);
        let path = ledger.dir.clone();
        drop(ledger);
        assert!(!path.exists());
    }
}

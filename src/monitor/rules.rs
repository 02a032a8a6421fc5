//! The per-name rules: what a declaration must be consistent with among the declarations logged
//! before it, and the records in the [`super::store`] that remember those declarations.
//!
//! Entries are applied one at a time, in log order, after the checkpoint covering them verified.
//! Every check looks only at entries *before* the one applied: the monitor judges an entry by
//! the log as it was when the entry was logged, as admission did. So a model naming training data
//! that is logged only later is a `dangling-reference` (a publisher should log its data first),
//! and stays one.
//!
//! Records (keys start with a tag byte, then the declaration kind for per-name records):
//!
//! | key | value | meaning |
//! |---|---|---|
//! | `V kind name version` | [`VersionRecord`] | the first declaration of `name@version` |
//! | `H kind name` | [`HeadRecord`] | the latest release of `name` (the head) |
//! | `D kind digest` | [`DigestRecord`] | the first declaration with that subject digest |
//! | `I index` | [`IndexRecord`] | what the declaration at a log index declares |
//!
//! The rules, as findings:
//! - `invalid-entry`: a reference by log index that admission would refuse (the entry must be
//!   earlier, a declaration of the right kind, with the right name and subject digest);
//! - `equivocation`: `name@version` declared again with another subject digest (the same digest
//!   again is a re-declaration). The one exception is a private dataset revealed as the
//!   documentation describes: a dataset declaration with a manifest whose `supersedes` names the
//!   manifest-less declaration (the commitment) of the same `name@version`;
//! - `broken-history`: a new release (not a re-declaration) whose `supersedes` does not name the
//!   head, by index and digest;
//! - `key-change`: a new release signed by none of the keys that signed the head (a new key is
//!   consented to by signing the new release with the old key and the new one);
//! - `data-substitution`: a training-data declaration of an already declared `name@version` or
//!   subject digest whose descriptive fields differ from the first declaration's, naming them;
//! - `dangling-reference`: a model's `trainingData` entry without `logIndex` whose digest no
//!   earlier training-data declaration has (warning), or a `baseModels` entry without `logIndex`
//!   whose digest no earlier model release has (info: a base model from outside glasslog);
//! - `backdating`: a `releaseTime` more than the window before the entry was logged (for a
//!   re-declaration: before the first declaration was logged).
//!
//! An entry refused as invalid is not applied further: it is not a release.

use super::examine::{DatasetFields, DeclarationFacts, EntryFacts};
use super::finding::{Finding, FindingKind, Severity};
use super::store::Tx;
use super::MonitorError;
use crate::admission::declaration::{Digest, Kind, NameRule, Timestamp};
use crate::admission::keys::KeyId;
use crate::admission::references::{self, Lookup, Target};
use crate::admission::AdmissionError;

/// The rules' settings.
#[derive(Clone, Copy, Debug)]
pub struct RuleOptions {
    /// A release time more than this before the entry was logged is backdating.
    pub backdate_window_ms: i64,
}

/// Applies the declaration in entry `index` (if it is one) to the per-name state in `tx`, and
/// returns what it breaks, in a fixed order.
///
/// # Errors
/// Store failures and damaged records.
pub fn apply(
    tx: &mut Tx<'_>,
    index: u64,
    facts: &EntryFacts,
    opts: RuleOptions,
) -> Result<Vec<Finding>, MonitorError> {
    let Some(d) = &facts.declaration else {
        return Ok(Vec::new());
    };
    if let Some(reason) = check_references(tx, index, d)? {
        return Ok(vec![Finding::new(
            FindingKind::InvalidEntry,
            Severity::Critical,
            [index],
            [d.name.clone()],
            format!(
                "entry {index} ({} {}@{}) would be refused by admission: {reason}",
                d.kind, d.name, d.version
            ),
        )]);
    }
    let mut findings = Vec::new();
    let version_key = version_key(d.kind, &d.name, &d.version);
    let first_version = read(tx, &version_key, VersionRecord::decode)?;
    let first_digest = read(tx, &digest_key(d.kind, &d.digest), DigestRecord::decode)?;
    let redeclaration = first_version.as_ref().is_some_and(|v| v.digest == d.digest);
    if let Some(v) = first_version
        .as_ref()
        .filter(|v| v.digest != d.digest && !reveals(d, v))
    {
        findings.push(equivocation(index, d, v));
    }
    let logged_ms = match &first_version {
        Some(v) if redeclaration => v.integrated_ms,
        _ => facts.integrated_ms,
    };
    findings.extend(backdating(index, d, logged_ms, opts));
    if let Some(fields) = &d.dataset {
        findings.extend(substitution(
            index,
            d,
            fields,
            first_version.as_ref(),
            first_digest.as_ref(),
        ));
    }
    findings.extend(dangling(tx, index, d)?);
    if !redeclaration {
        findings.extend(history(tx, index, d, &facts.key_ids)?);
    }
    record(
        tx,
        index,
        d,
        facts,
        first_version.is_none(),
        first_digest.is_none(),
    );
    Ok(findings)
}

fn read<T>(
    tx: &Tx<'_>,
    key: &[u8],
    decode: fn(&[u8]) -> Option<T>,
) -> Result<Option<T>, MonitorError> {
    match tx.get(key)? {
        None => Ok(None),
        Some(v) => decode(&v)
            .map(Some)
            .ok_or_else(|| MonitorError::Corrupt(format!("record {}", hex::encode(key)))),
    }
}

fn record(
    tx: &mut Tx<'_>,
    index: u64,
    d: &DeclarationFacts,
    facts: &EntryFacts,
    new_version: bool,
    new_digest: bool,
) {
    if new_version {
        let v = VersionRecord {
            index,
            digest: d.digest,
            integrated_ms: facts.integrated_ms,
            has_manifest: d.has_manifest,
            fields: d.dataset,
        };
        tx.put(version_key(d.kind, &d.name, &d.version), v.encode());
    }
    if new_digest {
        let r = DigestRecord {
            index,
            name: d.name.clone(),
            version: d.version.clone(),
            fields: d.dataset,
        };
        tx.put(digest_key(d.kind, &d.digest), r.encode());
    }
    tx.put(
        index_key(index),
        IndexRecord {
            kind: d.kind,
            digest: d.digest,
            name: d.name.clone(),
        }
        .encode(),
    );
}

/// The reason admission would refuse the references of `d` in entry `index`, if any: admission's
/// rules, with `index` as the size of the log before the entry.
fn check_references(
    tx: &Tx<'_>,
    index: u64,
    d: &DeclarationFacts,
) -> Result<Option<String>, MonitorError> {
    let verdict = references::check(&d.name, &d.references, index, &Recorded(tx))?;
    Ok(verdict.err().map(|b| AdmissionError::from(b).to_string()))
}

/// The monitor's [`Lookup`]: the index records of the declarations it applied (admissible ones,
/// references included); any other index is not a declaration.
struct Recorded<'a, 'b>(&'a Tx<'b>);

impl Lookup for Recorded<'_, '_> {
    type Error = MonitorError;

    fn target(&self, index: u64) -> Result<Target, MonitorError> {
        Ok(
            match read(self.0, &index_key(index), IndexRecord::decode)? {
                Some(t) => Target::Declaration {
                    kind: t.kind,
                    name: t.name,
                    digest: t.digest,
                },
                None => Target::NotDeclaration,
            },
        )
    }
}

/// A private dataset's reveal: a declaration with a manifest superseding the manifest-less
/// first declaration of the same `name@version`.
fn reveals(d: &DeclarationFacts, first: &VersionRecord) -> bool {
    d.kind == Kind::Dataset
        && d.has_manifest
        && !first.has_manifest
        && d.supersedes
            .as_ref()
            .is_some_and(|s| s.log_index == first.index && s.digest == first.digest)
}

fn equivocation(index: u64, d: &DeclarationFacts, first: &VersionRecord) -> Finding {
    Finding::new(
        FindingKind::Equivocation,
        Severity::Critical,
        [first.index, index],
        [d.name.clone()],
        format!(
            "{} {}@{} is declared with subject digest {} in entry {index}, but entry {} declared it with subject digest {}",
            d.kind, d.name, d.version, d.digest, first.index, first.digest
        ),
    )
}

fn backdating(
    index: u64,
    d: &DeclarationFacts,
    logged_ms: i64,
    opts: RuleOptions,
) -> Option<Finding> {
    let released = d.release_time.unix_ms();
    let early = logged_ms.saturating_sub(released);
    (early > opts.backdate_window_ms).then(|| {
        Finding::new(
            FindingKind::Backdating,
            Severity::Warning,
            [index],
            [d.name.clone()],
            format!(
                "{} {}@{} in entry {index} has releaseTime {}, {:.1} days before it was logged at {} (the window is {:.1} days)",
                d.kind,
                d.name,
                d.version,
                d.release_time,
                early as f64 / DAY_MS,
                format_ms(logged_ms),
                opts.backdate_window_ms as f64 / DAY_MS
            ),
        )
    })
}

const DAY_MS: f64 = 86_400_000.0;

fn substitution(
    index: u64,
    d: &DeclarationFacts,
    fields: &DatasetFields,
    by_version: Option<&VersionRecord>,
    by_digest: Option<&DigestRecord>,
) -> Option<Finding> {
    let mut earlier: Vec<(u64, String, DatasetFields)> = Vec::new();
    if let Some(v) = by_version {
        earlier.extend(
            v.fields
                .map(|f| (v.index, format!("{}@{}", d.name, d.version), f)),
        );
    }
    if let Some(r) = by_digest.filter(|r| Some(r.index) != by_version.map(|v| v.index)) {
        earlier.extend(r.fields.map(|f| {
            (
                r.index,
                format!("{}@{} with the same subject digest", r.name, r.version),
                f,
            )
        }));
    }
    let changes: Vec<(u64, String)> = earlier
        .iter()
        .filter_map(|(i, what, f)| {
            let changed = f.changed(fields);
            (!changed.is_empty()).then(|| {
                (
                    *i,
                    format!("entry {i} ({what}): {} changed", changed.join(", ")),
                )
            })
        })
        .collect();
    if changes.is_empty() {
        return None;
    }
    let described: Vec<&str> = changes.iter().map(|(_, s)| s.as_str()).collect();
    Some(Finding::new(
        FindingKind::DataSubstitution,
        Severity::Critical,
        changes.iter().map(|(i, _)| *i).chain([index]),
        [d.name.clone()],
        format!(
            "training data {}@{} (subject digest {}) in entry {index} re-declares an already logged dataset with different descriptive fields; compared with {}",
            d.name,
            d.version,
            d.digest,
            described.join("; ")
        ),
    ))
}

fn dangling(tx: &Tx<'_>, index: u64, d: &DeclarationFacts) -> Result<Vec<Finding>, MonitorError> {
    let mut findings = Vec::new();
    for r in d.references.iter().filter(|r| r.log_index.is_none()) {
        if tx.get(&digest_key(r.kind, &r.digest))?.is_some() {
            continue;
        }
        let named = match &r.name {
            NameRule::Is(name) => name.as_str(),
            NameRule::Any | NameRule::SameAsReferrer => "",
        };
        let (severity, what) = match r.kind {
            Kind::Dataset => (Severity::Warning, "training data"),
            Kind::Model => (Severity::Info, "base model"),
        };
        let outside = if r.kind == Kind::Model {
            " (a base model from outside glasslog)"
        } else {
            ""
        };
        findings.push(Finding::new(
            FindingKind::DanglingReference,
            severity,
            [index],
            [d.name.clone(), named.to_string()],
            format!(
                "{} {}@{} in entry {index} names {what} {named} by subject digest {} ({}), which no earlier {} declaration in the log has{outside}",
                d.kind, d.name, d.version, r.digest, r.field, r.kind
            ),
        ));
    }
    Ok(findings)
}

fn history(
    tx: &mut Tx<'_>,
    index: u64,
    d: &DeclarationFacts,
    key_ids: &[KeyId],
) -> Result<Vec<Finding>, MonitorError> {
    let key = head_key(d.kind, &d.name);
    let head = read(tx, &key, HeadRecord::decode)?;
    let mut findings = Vec::new();
    if let Some(h) = &head {
        let superseded = d.supersedes.as_ref().map(|s| (s.log_index, s.digest));
        if superseded != Some((h.index, h.digest)) {
            let what = match superseded {
                None => "supersedes nothing".to_string(),
                Some((i, _)) if i == h.index => format!("supersedes entry {i} with another digest"),
                Some((i, _)) => format!("supersedes entry {i} instead"),
            };
            findings.push(Finding::new(
                FindingKind::BrokenHistory,
                Severity::Warning,
                [h.index, index],
                [d.name.clone()],
                format!(
                    "{} {} release {} in entry {index} does not supersede the current head, release {} in entry {}; it {what}",
                    d.kind, d.name, d.version, h.version, h.index
                ),
            ));
        }
        if !key_ids.iter().any(|k| h.keys.contains(k)) {
            findings.push(Finding::new(
                FindingKind::KeyChange,
                Severity::Critical,
                [h.index, index],
                [d.name.clone()],
                format!(
                    "{} {} release {} in entry {index} is signed by {} and by none of the keys that signed the head, release {} in entry {} ({}); a new key is consented to by signing the new release with the old key too",
                    d.kind, d.name, d.version, key_list(key_ids), h.version, h.index, key_list(&h.keys)
                ),
            ));
        }
    }
    let new_head = HeadRecord {
        index,
        digest: d.digest,
        version: d.version.clone(),
        keys: key_ids.to_vec(),
    };
    tx.put(key, new_head.encode());
    Ok(findings)
}

fn key_list(keys: &[KeyId]) -> String {
    keys.iter()
        .map(|k| format!("key {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `ms` since the Unix epoch as RFC 3339 UTC, to the second.
fn format_ms(ms: i64) -> String {
    Timestamp::from_unix_seconds(ms.div_euclid(1000))
        .map_or_else(|| format!("{ms} ms after 1970"), |t| t.as_str().to_string())
}

// ---------------------------------------------------------------------------
// Keys and records.

const KIND_MODEL: u8 = b'm';
const KIND_DATASET: u8 = b'd';

fn kind_byte(kind: Kind) -> u8 {
    match kind {
        Kind::Model => KIND_MODEL,
        Kind::Dataset => KIND_DATASET,
    }
}

fn kind_of(b: u8) -> Option<Kind> {
    match b {
        KIND_MODEL => Some(Kind::Model),
        KIND_DATASET => Some(Kind::Dataset),
        _ => None,
    }
}

fn version_key(kind: Kind, name: &str, version: &str) -> Vec<u8> {
    let mut e = Enc(vec![b'V', kind_byte(kind)]);
    e.bytes(name.as_bytes());
    e.0.extend_from_slice(version.as_bytes());
    e.0
}

fn head_key(kind: Kind, name: &str) -> Vec<u8> {
    [&[b'H', kind_byte(kind)][..], name.as_bytes()].concat()
}

fn digest_key(kind: Kind, digest: &Digest) -> Vec<u8> {
    [&[b'D', kind_byte(kind)][..], &digest.0[..]].concat()
}

fn index_key(index: u64) -> Vec<u8> {
    [&[b'I'][..], &index.to_be_bytes()[..]].concat()
}

/// The first declaration of a `name@version`.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionRecord {
    pub index: u64,
    pub digest: Digest,
    pub integrated_ms: i64,
    pub has_manifest: bool,
    pub fields: Option<DatasetFields>,
}

/// The latest release of a name.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadRecord {
    pub index: u64,
    pub digest: Digest,
    pub version: String,
    /// The key ids that signed it.
    pub keys: Vec<KeyId>,
}

/// The first declaration with a subject digest.
#[derive(Clone, Debug, PartialEq)]
pub struct DigestRecord {
    pub index: u64,
    pub name: String,
    pub version: String,
    pub fields: Option<DatasetFields>,
}

/// The declaration at a log index.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexRecord {
    pub kind: Kind,
    pub digest: Digest,
    pub name: String,
}

impl VersionRecord {
    fn encode(&self) -> Vec<u8> {
        let mut e = Enc(Vec::with_capacity(140));
        e.u64(self.index);
        e.0.extend_from_slice(&self.digest.0);
        e.u64(self.integrated_ms as u64);
        e.0.push(u8::from(self.has_manifest));
        e.fields(self.fields.as_ref());
        e.0
    }

    fn decode(b: &[u8]) -> Option<VersionRecord> {
        let mut d = Dec(b);
        let r = VersionRecord {
            index: d.u64()?,
            digest: Digest(d.array()?),
            integrated_ms: d.u64()? as i64,
            has_manifest: d.u8()? != 0,
            fields: d.fields()?,
        };
        d.end().then_some(r)
    }
}

impl HeadRecord {
    fn encode(&self) -> Vec<u8> {
        let mut e = Enc(Vec::new());
        e.u64(self.index);
        e.0.extend_from_slice(&self.digest.0);
        e.bytes(self.version.as_bytes());
        for k in &self.keys {
            e.0.extend_from_slice(&k.0);
        }
        e.0
    }

    fn decode(b: &[u8]) -> Option<HeadRecord> {
        let mut d = Dec(b);
        let (index, digest, version) = (d.u64()?, Digest(d.array()?), d.string()?);
        let mut keys = Vec::new();
        while !d.end() {
            keys.push(KeyId(d.array()?));
        }
        Some(HeadRecord {
            index,
            digest,
            version,
            keys,
        })
    }
}

impl DigestRecord {
    fn encode(&self) -> Vec<u8> {
        let mut e = Enc(Vec::new());
        e.u64(self.index);
        e.bytes(self.name.as_bytes());
        e.bytes(self.version.as_bytes());
        e.fields(self.fields.as_ref());
        e.0
    }

    fn decode(b: &[u8]) -> Option<DigestRecord> {
        let mut d = Dec(b);
        let r = DigestRecord {
            index: d.u64()?,
            name: d.string()?,
            version: d.string()?,
            fields: d.fields()?,
        };
        d.end().then_some(r)
    }
}

impl IndexRecord {
    fn encode(&self) -> Vec<u8> {
        let mut e = Enc(vec![kind_byte(self.kind)]);
        e.0.extend_from_slice(&self.digest.0);
        e.0.extend_from_slice(self.name.as_bytes());
        e.0
    }

    fn decode(b: &[u8]) -> Option<IndexRecord> {
        let mut d = Dec(b);
        let (kind, digest) = (kind_of(d.u8()?)?, Digest(d.array()?));
        Some(IndexRecord {
            kind,
            digest,
            name: String::from_utf8(d.0.to_vec()).ok()?,
        })
    }
}

/// Record encoding: fixed-width big-endian integers, u32-length-prefixed byte strings.
struct Enc(Vec<u8>);

impl Enc {
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        // Names and versions come from envelopes of at most a few MiB.
        self.0
            .extend_from_slice(&u32::try_from(b.len()).unwrap_or(u32::MAX).to_be_bytes());
        self.0.extend_from_slice(b);
    }

    fn fields(&mut self, f: Option<&DatasetFields>) {
        match f {
            None => self.0.push(0),
            Some(f) => {
                self.0.push(1);
                f.0.iter().for_each(|h| self.0.extend_from_slice(h));
            }
        }
    }
}

struct Dec<'a>(&'a [u8]);

impl Dec<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_be_bytes)
    }

    fn string(&mut self) -> Option<String> {
        let len = u32::from_be_bytes(self.array()?) as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }

    fn fields(&mut self) -> Option<Option<DatasetFields>> {
        match self.u8()? {
            0 => Some(None),
            1 => {
                let mut f = [[0; 16]; 5];
                for h in &mut f {
                    *h = self.array()?;
                }
                Some(Some(DatasetFields(f)))
            }
            _ => None,
        }
    }

    fn end(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests;

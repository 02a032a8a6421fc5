//! Verifying a declaration against a local directory: the checks behind `glasslog verify`.
//!
//! Online ([`verify_name`]): every declaration of a name that the log's Search returns (all
//! pages), or, from the log's tiles, that a scan of every entry finds ([`scan`]), is checked — the DSSE signatures over the logged envelope under the logged keys, the
//! admission rules, the inclusion proof against the latest checkpoint the search saw, whose
//! signature is checked against the caller's pinned key (never one the server announces) — and
//! that checkpoint must be consistent with the last one this client accepted
//! ([`crate::client::trust_state`]). Then one declaration is compared with the directory, file by file.
//!
//! Which one, when no version is given: the latest in log order whose manifest matches the
//! directory; if none matches, the latest, so that the differences shown are those from the
//! current release. With a version, the same rule among the declarations of that version.
//! Declarations without a manifest (private datasets, which log a commitment) cannot be compared.
//!
//! A model release whose manifest is detached (`detachedManifest`, too large for a log entry)
//! is compared file by file with the manifest file given ([`ManifestFile`], `--manifest`) once
//! that file is shown to be the declared one: its root digest must be the subject digest, then
//! its SHA-256 the one `detachedManifest` records (which binds the names and hashing settings
//! that the root digest does not cover). Without the file, or with a file that is not the
//! declared one, only the directory's root digest (hashed with the settings the declaration
//! records) is compared with the subject digest: the files that differ cannot be named. A file
//! given for a declaration whose manifest is in the statement must equal that manifest, which
//! is the one used.
//!
//! Offline ([`verify_bundle`]): the same for the one declaration of a proof bundle, whose
//! embedded log key must be the pinned one; split views can only be detected for a stored
//! checkpoint of the same size, and later declarations are unknown.
//!
//! What this cannot prove over gRPC: that the log holds no other declaration of the name. Search
//! results show what the log holds up to the checkpoint returned with them; that nothing else
//! exists is the server's word until monitors have seen the whole log (`glasslog audit` does
//! that). A scan of the tiles reads every entry, so it does prove it ([`Report::complete`]).

mod scan;

use std::path::Path;

use crate::admission::declaration::{Declaration, Digest, Kind, Name};
use crate::admission::keys::{KeyCache, KeyId};
use crate::admission::manifest::{
    self, HashOptions, Manifest, ManifestDiff, ManifestError, Serialization,
};
use crate::admission::{self, Policy};
use crate::client::bundle::{BundleError, ProofBundle};
use crate::client::source::Source;
use crate::client::trust_state::{Accepted, TrustError, TrustState};
use crate::client::{ClientError, LogClient};
use crate::entry::decode_leaf;
use crate::proto::{self, search_request::Query};
use crate::tlog::checkpoint::Checkpoint;
use crate::tlog::note::LogVerifier;
use crate::tlog::policy::{Cosignatures, WitnessPolicy};

use crate::check::{Finding, FindingKind};

/// Search results per page asked for.
const PAGE_SIZE: u32 = 1000;

/// Why a verification could not be completed (as opposed to a check that failed, which is a
/// [`Finding`]).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The log could not be reached or refused a request.
    #[error("{0}")]
    Client(#[from] ClientError),
    /// The directory could not be hashed.
    #[error("cannot hash the directory: {0}")]
    Manifest(#[from] ManifestError),
    /// The split-view state could not be used.
    #[error("{0}")]
    Trust(TrustError),
}

/// A declaration of the name that verified: signatures, admission rules, inclusion.
#[derive(Clone, Debug)]
pub struct Logged {
    pub index: u64,
    pub declaration: Declaration,
    /// The signers' key ids.
    pub key_ids: Vec<KeyId>,
}

/// What became of the split-view check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustNote {
    /// Online: the state accepted the checkpoint.
    Accepted(Accepted),
    /// Offline: a stored checkpoint of the same size has the same root.
    SameAsStored,
    /// Offline: the stored checkpoint is of another size (or there is none); consistency needs
    /// the log.
    NotCheckable,
    /// The check found a split view (see the findings).
    Failed,
}

/// The declaration compared with the directory.
#[derive(Clone, Debug)]
pub struct Compared {
    pub logged: Logged,
    /// How the directory was compared with it.
    pub by: ComparedBy,
}

/// How a directory was compared with a declaration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComparedBy {
    /// Not at all: no directory was given, or the declaration has no manifest (a private
    /// dataset's commitment).
    Nothing,
    /// File by file, with a manifest of `files` files: the logged one, or (`detached`) the
    /// detached manifest file given, shown to be the declared one.
    Manifest { files: usize, detached: bool },
    /// By root digest alone: the manifest is detached and its file was not given (or was not
    /// the declared one), so the files that differ cannot be named.
    RootDigest,
}

impl ComparedBy {
    /// The files of the manifest compared, if the comparison was by manifest.
    pub fn files(self) -> Option<usize> {
        match self {
            ComparedBy::Manifest { files, .. } => Some(files),
            _ => None,
        }
    }
}

/// A manifest file given to verify (`--manifest`): a model release's detached manifest, as
/// `glasslog declare` wrote it beside the declaration.
#[derive(Clone, Debug)]
pub struct ManifestFile {
    /// The manifest the file holds.
    pub manifest: Manifest,
    /// SHA-256 of the file's bytes, which a declaration's `detachedManifest` records.
    pub digest: Digest,
}

impl ManifestFile {
    /// Reads a manifest file's bytes.
    ///
    /// # Errors
    /// The bytes are not a manifest as glasslog admits them ([`Manifest::from_json`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<ManifestFile, ManifestError> {
        Ok(ManifestFile {
            manifest: Manifest::from_json(bytes)?,
            digest: Digest::of(bytes),
        })
    }
}

/// A later declaration of the same name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Later {
    pub index: u64,
    pub kind: Kind,
    pub version: String,
    /// The index it supersedes, if it supersedes one.
    pub supersedes: Option<u64>,
}

/// Everything a verification found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// The checkpoint the proofs are against, and its note.
    pub checkpoint: Option<(Checkpoint, String)>,
    pub trust: Option<TrustNote>,
    /// The declaration compared, if one was found.
    pub compared: Option<Compared>,
    /// Declarations of the name after the compared one (online only).
    pub later: Vec<Later>,
    /// The latest verified declaration of the name (online only).
    pub head: Option<Logged>,
    /// Whether later declarations are known (false offline, and for `--entry`).
    pub online: bool,
    /// Whether every entry up to the checkpoint was read (a scan of the tiles): then the log
    /// holds no declaration of the name but those found, which no Search can prove.
    pub complete: bool,
}

impl Report {
    /// Whether every check passed.
    pub fn ok(&self) -> bool {
        self.findings.is_empty() && self.compared.is_some()
    }
}

/// Verifies the declarations of `name` (of `version`, if given) in the log of `source`, and
/// compares the chosen one with `dir`. See the module documentation. From tiles, `at` (if not
/// empty) names the entries to read instead of scanning the log; over gRPC it must be empty.
///
/// # Errors
/// The log could not be reached, the directory could not be hashed, or the split-view state
/// could not be read or written. Failed checks are findings in the report.
#[allow(clippy::too_many_arguments)] // each is its own input of `glasslog verify`, its one caller
pub async fn verify_name(
    source: &Source,
    trust: &mut TrustState,
    name: &Name,
    version: Option<&str>,
    dir: &Path,
    file: Option<&ManifestFile>,
    policy: Option<&WitnessPolicy>,
    at: &[u64],
) -> Result<Report, VerifyError> {
    let mut report = Report {
        online: at.is_empty(),
        complete: at.is_empty() && matches!(source, Source::Tiles(_)),
        ..Report::default()
    };
    let found = match source {
        Source::Server(client) => search_name(client, name, &mut report.findings).await?,
        Source::Tiles(tiles) => scan::find(tiles, name, at, &mut report.findings).await?,
    };
    let Some((mut entries, mut checkpoint, mut note)) = found else {
        return Ok(report);
    };
    if let Some(policy) = policy {
        // Prove against the latest witnessed checkpoint instead; what it does not cover yet is
        // not trusted.
        match witnessed(source, policy, &checkpoint, &note).await {
            Ok((w, cosigned, _)) => {
                for e in entries.iter().filter(|e| e.index >= w.size) {
                    report.findings.push(
                        Finding::of(
                            FindingKind::NotWitnessed,
                            format!(
                                "entry {} is beyond the latest witnessed checkpoint (size {}); \
                                 it is not trusted until a checkpoint covering it meets the \
                                 witness policy",
                                e.index, w.size
                            ),
                        )
                        .at(e.index),
                    );
                }
                entries.retain(|e| e.index < w.size);
                (checkpoint, note) = (w, cosigned);
            }
            Err(e) => {
                report.findings.push(Finding::of(
                    FindingKind::NotWitnessed,
                    format!("no checkpoint of this log meets the witness policy: {e}"),
                ));
                return Ok(report);
            }
        }
    }
    report.trust = Some(
        match trust.check_and_update(source, &checkpoint, &note).await {
            Ok(a) => TrustNote::Accepted(a),
            Err(TrustError::SplitView(s)) => {
                report.findings.push(Finding::split_view(&s));
                TrustNote::Failed
            }
            Err(e) => return Err(VerifyError::Trust(e)),
        },
    );
    let mut logged = Vec::new();
    for e in &entries {
        match check_logged(source, &checkpoint, e, name).await {
            Ok(l) => logged.push(l),
            Err(f) => report.findings.push(f),
        }
    }
    report.checkpoint = Some((checkpoint, note));
    report.head = logged.last().cloned();
    let candidates: Vec<&Logged> = logged
        .iter()
        .filter(|l| version.is_none_or(|v| l.declaration.version() == v))
        .collect();
    let Some((chosen, by)) = compare(&candidates, dir, file, &mut report.findings)? else {
        report
            .findings
            .push(not_found(name, version, &logged, &report));
        return Ok(report);
    };
    report.later = later_than(&logged, chosen.index);
    report.compared = Some(Compared { logged: chosen, by });
    Ok(report)
}

/// The witnessed checkpoint to prove against: the server's latest (`GetCheckpoint { witnessed
/// }`), or the tiles' checkpoint that was read (`checkpoint`, `note`), if it meets `policy`.
async fn witnessed(
    source: &Source,
    policy: &WitnessPolicy,
    checkpoint: &Checkpoint,
    note: &str,
) -> Result<(Checkpoint, String, Cosignatures), ClientError> {
    match source {
        Source::Server(client) => client.witnessed_checkpoint(policy).await,
        Source::Tiles(_) => {
            let cosignatures = policy.check(note)?;
            Ok((checkpoint.clone(), note.to_string(), cosignatures))
        }
    }
}

/// The declarations in `logged` after `index`.
fn later_than(logged: &[Logged], index: u64) -> Vec<Later> {
    logged
        .iter()
        .filter(|l| l.index > index)
        .map(|l| Later {
            index: l.index,
            kind: l.declaration.kind(),
            version: l.declaration.version().to_string(),
            supersedes: l.declaration.supersedes().map(|s| s.log_index),
        })
        .collect()
}

/// Verifies a proof bundle offline against the pinned `verifier`, and compares its declaration
/// with `dir` if given (with the detached manifest `file`, if given; without `dir`, `file` is
/// still checked to be the declared manifest). `trust`, if given, is checked (never written) for
/// a stored checkpoint of the same size.
///
/// # Errors
/// The directory could not be hashed, or the split-view state is unusable. Failed checks are
/// findings in the report.
pub fn verify_bundle(
    bundle: &[u8],
    verifier: &LogVerifier,
    dir: Option<&Path>,
    file: Option<&ManifestFile>,
    trust: Option<&TrustState>,
    policy: Option<&WitnessPolicy>,
) -> Result<Report, VerifyError> {
    let mut report = Report::default();
    let bundle = match ProofBundle::from_json(bundle) {
        Ok(b) => b,
        Err(e) => {
            report
                .findings
                .push(Finding::of(FindingKind::BadBundle, e.to_string()));
            return Ok(report);
        }
    };
    if bundle.log_verifier_key != verifier.verifier_key() {
        report.findings.push(Finding::of(
            FindingKind::WrongLogKey,
            format!(
                "the bundle is for the log whose key is {:?}, not the key given with --log-key ({:?}); a bundle \
                 proves nothing about a log whose key you have not pinned",
                bundle.log_verifier_key,
                verifier.verifier_key()
            ),
        ));
        return Ok(report);
    }
    let verified = match policy.map_or_else(|| bundle.verify(), |p| bundle.verify_witnessed(p)) {
        Ok(v) => v,
        Err(e) => {
            let kind = match e {
                BundleError::Witnesses(_) | BundleError::NotInPolicy(_) => {
                    FindingKind::NotWitnessed
                }
                _ => FindingKind::BadBundle,
            };
            report
                .findings
                .push(Finding::of(kind, e.to_string()).at(bundle.index));
            return Ok(report);
        }
    };
    report.trust =
        match trust.map(|t| t.check_offline(verifier, &verified.checkpoint, &bundle.checkpoint)) {
            None | Some(Ok(false)) => Some(TrustNote::NotCheckable),
            Some(Ok(true)) => Some(TrustNote::SameAsStored),
            Some(Err(TrustError::SplitView(s))) => {
                report.findings.push(Finding::split_view(&s));
                Some(TrustNote::Failed)
            }
            Some(Err(e)) => return Err(VerifyError::Trust(e)),
        };
    let key_ids = verified.keys.iter().map(|k| k.key_id()).collect();
    let logged = Logged {
        index: verified.index,
        declaration: verified.declaration,
        key_ids,
    };
    let by = match dir {
        Some(dir) => {
            let compared = compare(&[&logged], dir, file, &mut report.findings)?;
            compared.map_or(ComparedBy::Nothing, |(_, by)| by)
        }
        None => {
            report.findings.extend(listing(&logged, file).1);
            ComparedBy::Nothing
        }
    };
    report.checkpoint = Some((verified.checkpoint, bundle.checkpoint));
    report.compared = Some(Compared { logged, by });
    Ok(report)
}

/// Every entry Search returns for `name`, all pages, with the largest checkpoint the pages came
/// with (verified). `None` after a finding that leaves nothing to check.
async fn search_name(
    client: &LogClient,
    name: &Name,
    findings: &mut Vec<Finding>,
) -> Result<Option<(Vec<proto::Entry>, Checkpoint, String)>, VerifyError> {
    let mut entries: Vec<proto::Entry> = Vec::new();
    let mut latest: Option<(Checkpoint, String)> = None;
    let mut page_token = String::new();
    loop {
        let req = proto::SearchRequest {
            query: Some(Query::Name(name.to_string())),
            page_token,
            page_size: PAGE_SIZE,
        };
        let page = client
            .rpc()
            .search(req)
            .await
            .map_err(ClientError::from)?
            .into_inner();
        let bad = |m: String| Finding::of(FindingKind::BadReply, m).named(name.to_string());
        let Some(sc) = page.checkpoint else {
            findings.push(bad("the server's search reply carries no checkpoint".into()));
            return Ok(None);
        };
        let checkpoint = match client.verify_checkpoint(&sc) {
            Ok(c) => c,
            Err(e) => {
                findings.push(Finding::of(
                    FindingKind::BadCheckpointSignature,
                    format!("the checkpoint of the search reply does not verify with the given --log-key: {e}"),
                ));
                return Ok(None);
            }
        };
        for e in page.entries {
            let previous = entries.last().map(|p| p.index);
            if e.index >= checkpoint.size || previous.is_some_and(|p| e.index <= p) {
                findings.push(bad(format!(
                    "the server returned index {} out of log order or beyond its checkpoint of size {}",
                    e.index, checkpoint.size
                )));
                return Ok(None);
            }
            entries.push(e);
        }
        if latest
            .as_ref()
            .is_none_or(|(c, _)| checkpoint.size > c.size)
        {
            latest = Some((checkpoint, sc.note));
        }
        if page.next_page_token.is_empty() {
            break;
        }
        if entries.is_empty() {
            findings.push(bad(
                "the server returned an empty page with a next page token".into(),
            ));
            return Ok(None);
        }
        page_token = page.next_page_token;
    }
    Ok(latest.map(|(c, n)| (entries, c, n)))
}

/// The checks of one search result: leaf, signatures, admission, name, inclusion.
async fn check_logged(
    source: &Source,
    checkpoint: &Checkpoint,
    e: &proto::Entry,
    name: &Name,
) -> Result<Logged, Finding> {
    let fail = |kind, m: String| Finding::of(kind, m).at(e.index).named(name.to_string());
    let entry = decode_leaf(&e.leaf_data).map_err(|err| {
        fail(
            FindingKind::InvalidEntry,
            format!("the leaf is not an encoded LogEntry: {err}"),
        )
    })?;
    // The log's own admission, re-run: keys as the log writes them, every signature, the
    // statement's rules (references are the log's word here: `audit` checks them).
    let admitted = admission::admit_logged(&entry, &KeyCache::default(), &Policy::default())
        .map_err(|err| fail(FindingKind::InvalidEntry, err.to_string()))?;
    let Some(declaration) = admitted.declaration else {
        return Err(fail(
            FindingKind::BadReply,
            "the server returned an entry that is not a declaration".into(),
        ));
    };
    if declaration.name() != name {
        return Err(fail(
            FindingKind::BadReply,
            format!(
                "the server returned an entry that declares {:?}",
                declaration.name()
            ),
        ));
    }
    source
        .verify_inclusion(e.index, &e.leaf_data, checkpoint)
        .await
        .map_err(|err| {
            fail(
                FindingKind::UnprovenInclusion,
                format!(
                    "the entry is not proven to be in the log's checkpoint of size {}: {err}",
                    checkpoint.size
                ),
            )
        })?;
    let key_ids = admitted.key_ids;
    Ok(Logged {
        index: e.index,
        declaration,
        key_ids,
    })
}

fn not_found(name: &Name, version: Option<&str>, logged: &[Logged], report: &Report) -> Finding {
    let size = report.checkpoint.as_ref().map(|(c, _)| c.size).unwrap_or(0);
    let versions: Vec<&str> = logged.iter().map(|l| l.declaration.version()).collect();
    let message = match version {
        Some(v) if !versions.is_empty() => format!(
            "the log (checkpoint size {size}) has no verified declaration of {name} version {v}; it has versions {}",
            versions.join(", ")
        ),
        Some(v) => format!("the log (checkpoint size {size}) has no verified declaration of {name} version {v}, as far as its Search says"),
        None => format!("the log (checkpoint size {size}) has no verified declaration of {name}, as far as its Search says"),
    };
    Finding::of(FindingKind::NotFound, message).named(name.to_string())
}

/// How a declaration's files can be compared with a directory.
#[derive(Clone, Copy)]
enum Listing<'a> {
    /// File by file, with this manifest: the one in the statement, or (`detached`) the
    /// `--manifest` file once shown to be the declared detached manifest.
    Manifest {
        manifest: &'a Manifest,
        detached: bool,
    },
    /// By root digest, hashing the directory with these settings: a detached manifest without
    /// a trusted file.
    Root(&'a Serialization),
    /// Not at all: no manifest (a private dataset's commitment).
    Nothing,
}

/// The listing of `c`'s files, given the `--manifest` file if any, and what is wrong with that
/// file as `c`'s manifest: findings, to be reported if `c` is the declaration compared. The
/// checks of a detached manifest file, in order: its root digest is the subject digest, the
/// SHA-256 of its bytes is the one `detachedManifest` records, its settings are the recorded
/// ones.
fn listing<'a>(c: &'a Logged, file: Option<&'a ManifestFile>) -> (Listing<'a>, Vec<Finding>) {
    let d = &c.declaration;
    let mismatch = |message: String| {
        vec![Finding::of(FindingKind::ManifestMismatch, message)
            .at(c.index)
            .named(d.name().to_string())]
    };
    let release = release(c);
    if let Some(logged) = d.manifest() {
        let listing = Listing::Manifest {
            manifest: logged,
            detached: false,
        };
        return match file {
            Some(f) if !same_manifest(&f.manifest, logged) => {
                let root = Digest(f.manifest.root_digest());
                let message = format!(
                    "the --manifest file (root digest {root}) is not the manifest in the statement \
                     of {release} (root digest {}); the manifest in the statement is used",
                    d.subject_digest()
                );
                (listing, mismatch(message))
            }
            _ => (listing, Vec::new()),
        };
    }
    let Some(record) = d.detached_manifest() else {
        return (Listing::Nothing, Vec::new());
    };
    let root_only = Listing::Root(&record.serialization);
    let Some(f) = file else {
        return (root_only, Vec::new());
    };
    let alone = "the directory is compared with the subject digest alone";
    let root = Digest(f.manifest.root_digest());
    if root != *d.subject_digest() {
        let message = format!(
            "the --manifest file's root digest {root} is not the subject digest {} of {release}: \
             it lists other files than the release; {alone}",
            d.subject_digest()
        );
        return (root_only, mismatch(message));
    }
    if f.digest != record.digest {
        let message = format!(
            "the --manifest file has the root digest of {release}, but its SHA-256 {} is not {}, \
             the one the declaration's detachedManifest records: its file names or hashing \
             settings are not those the publisher declared; {alone}",
            f.digest, record.digest
        );
        return (root_only, mismatch(message));
    }
    let listing = Listing::Manifest {
        manifest: &f.manifest,
        detached: true,
    };
    if f.manifest.serialization() != record.serialization {
        let message = format!(
            "the --manifest file is the one {release} declares, but its serialization (ignore \
             paths, symlinks) is not the one its detachedManifest records; the file's is used"
        );
        return (listing, mismatch(message));
    }
    (listing, Vec::new())
}

/// Whether two manifests list the same files and were made with the same settings (the order
/// of ignore paths, which the tool writes in any order, aside).
fn same_manifest(a: &Manifest, b: &Manifest) -> bool {
    let sorted = |m: &Manifest| {
        let mut paths = m.ignore_paths.clone();
        paths.sort();
        paths
    };
    a.resources == b.resources && a.allow_symlinks == b.allow_symlinks && sorted(a) == sorted(b)
}

/// What comparing a directory with a declaration found.
enum Outcome<'a> {
    /// By manifest: the manifest and the differences from it.
    Diff(&'a Manifest, ManifestDiff),
    /// By root digest: the directory's.
    Root([u8; 32]),
}

/// Chooses among `candidates` (in log order, not empty) the one to compare with `dir`, with
/// the detached manifest `file` if given, and reports each difference: the latest that matches
/// (whose listing raised no finding), else the latest that can be compared at all.
fn compare(
    candidates: &[&Logged],
    dir: &Path,
    file: Option<&ManifestFile>,
    findings: &mut Vec<Finding>,
) -> Result<Option<(Logged, ComparedBy)>, VerifyError> {
    let mut local = LocalHashes {
        dir,
        cache: Vec::new(),
    };
    let mut fallback = None;
    for c in candidates.iter().rev() {
        let (listing, problems) = listing(c, file);
        let outcome = match listing {
            Listing::Nothing => continue,
            Listing::Manifest { manifest, .. } => {
                let here = local.manifest(&manifest.serialization())?;
                let diff = manifest::diff(manifest, here);
                if diff.is_empty() && problems.is_empty() {
                    check_root(c, here.root_digest(), findings);
                    return Ok(Some(((*c).clone(), compared_by(listing))));
                }
                Outcome::Diff(manifest, diff)
            }
            Listing::Root(serialization) => {
                let root = local.manifest(serialization)?.root_digest();
                if root == c.declaration.subject_digest().0 && problems.is_empty() {
                    return Ok(Some(((*c).clone(), ComparedBy::RootDigest)));
                }
                Outcome::Root(root)
            }
        };
        if fallback.is_none() {
            fallback = Some((c, listing, problems, outcome));
        }
    }
    let Some((c, listing, problems, outcome)) = fallback else {
        let Some(latest) = candidates.last() else {
            return Ok(None);
        };
        findings.push(
            Finding::of(
                FindingKind::NoManifest,
                "the declaration logs no manifest (a private dataset logs only a commitment to its files), so \
                 its files cannot be compared with the directory",
            )
            .at(latest.index)
            .named(latest.declaration.name().to_string()),
        );
        return Ok(Some(((*latest).clone(), ComparedBy::Nothing)));
    };
    let file_refused = !problems.is_empty();
    findings.extend(problems);
    let by = compared_by(listing);
    match outcome {
        Outcome::Diff(manifest, diff) => {
            let here = local.manifest(&manifest.serialization())?;
            report_diff(c, manifest, by, &diff, here, findings);
            if diff.is_empty() {
                check_root(c, here.root_digest(), findings);
            }
        }
        Outcome::Root(root) => root_mismatch(c, root, file_refused, findings),
    }
    Ok(Some(((*c).clone(), by)))
}

fn compared_by(listing: Listing<'_>) -> ComparedBy {
    match listing {
        Listing::Manifest { manifest, detached } => ComparedBy::Manifest {
            files: manifest.resources.len(),
            detached,
        },
        Listing::Root(_) => ComparedBy::RootDigest,
        Listing::Nothing => ComparedBy::Nothing,
    }
}

/// A directory compared by root digest alone that does not have the subject digest (`root`
/// may also equal it, when the finding is about the `--manifest` file given: nothing to add).
fn root_mismatch(c: &Logged, root: [u8; 32], file_refused: bool, findings: &mut Vec<Finding>) {
    let d = &c.declaration;
    if root == d.subject_digest().0 {
        return;
    }
    let why = if file_refused {
        "the --manifest file given is not the declared one (see above)"
    } else {
        "the manifest is detached and was not given (--manifest FILE: the manifest file published \
         with the declaration, DECLARATION.manifest.json as glasslog declare names it)"
    };
    findings.push(
        Finding::of(
            FindingKind::SubjectMismatch,
            format!(
                "the directory's root digest {} is not the subject digest {} of {}; {why}, so the \
                 files that differ cannot be named",
                hex::encode(root),
                d.subject_digest(),
                release(c)
            ),
        )
        .at(c.index)
        .named(d.name().to_string()),
    );
}

/// `name version (log index i)`, for messages.
fn release(c: &Logged) -> String {
    let d = &c.declaration;
    format!("{} {} (log index {})", d.name(), d.version(), c.index)
}

/// The directory's root digest must be the declared subject digest (it is, when the manifests
/// agree and the logged one passed admission; checked anyway).
fn check_root(c: &Logged, root: [u8; 32], findings: &mut Vec<Finding>) {
    if root != c.declaration.subject_digest().0 {
        findings.push(
            Finding::of(
                FindingKind::SubjectMismatch,
                format!(
                    "the directory's files match the logged manifest, but its root digest {} is not the declared \
                     subject digest {}",
                    hex::encode(root),
                    c.declaration.subject_digest()
                ),
            )
            .at(c.index)
            .named(c.declaration.name().to_string()),
        );
    }
}

/// Each difference of the directory (`here`) from the manifest `logged` (of `c`, or its
/// detached manifest, as `by` says), as a finding naming the file.
fn report_diff(
    c: &Logged,
    logged: &Manifest,
    by: ComparedBy,
    diff: &ManifestDiff,
    here: &Manifest,
    findings: &mut Vec<Finding>,
) {
    let d = &c.declaration;
    let at = |kind, file: &str, m: String| {
        Finding::of(kind, m)
            .at(c.index)
            .named(d.name().to_string())
            .file(file)
    };
    let detached = matches!(by, ComparedBy::Manifest { detached: true, .. });
    let (manifest, there) = match detached {
        false => (
            format!("the logged manifest of {}", release(c)),
            "in the log",
        ),
        true => (
            format!("the detached manifest (--manifest) of {}", release(c)),
            "in the manifest",
        ),
    };
    for f in &diff.added {
        findings.push(at(
            FindingKind::FileAdded,
            f,
            format!("{f} is in the directory but not in {manifest}"),
        ));
    }
    for f in &diff.removed {
        findings.push(at(
            FindingKind::FileRemoved,
            f,
            format!("{f} is in {manifest} but not in the directory"),
        ));
    }
    for f in &diff.changed {
        let digest = |m: &Manifest| m.get(f).map(|r| hex::encode(r.digest)).unwrap_or_default();
        findings.push(at(
            FindingKind::FileChanged,
            f,
            format!(
                "{f} differs from {manifest}: SHA-256 {} here, {} {there}",
                digest(here),
                digest(logged)
            ),
        ));
    }
}

/// The directory hashed once per distinct set of hashing options.
struct LocalHashes<'a> {
    dir: &'a Path,
    cache: Vec<(HashOptions, Manifest)>,
}

impl LocalHashes<'_> {
    /// The directory's manifest hashed as a manifest of `serialization` was (its ignore paths
    /// and symlink setting).
    fn manifest(&mut self, serialization: &Serialization) -> Result<&Manifest, ManifestError> {
        let opts = HashOptions::for_serialization(serialization);
        let at = match self.cache.iter().position(|(o, _)| *o == opts) {
            Some(at) => at,
            None => {
                let m = manifest::hash_directory(self.dir, &opts, None)?;
                self.cache.push((opts, m));
                self.cache.len() - 1
            }
        };
        Ok(&self.cache[at].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::declaration::{
        self, parse_statement, DetachedManifest, ModelManifest, ModelRelease,
    };
    use crate::admission::manifest::Resource;

    const MODEL: &[u8] = include_bytes!("../../tests/data/declarations/model-release.json");

    /// The manifest of `files` (name, contents) in the model example's settings.
    fn manifest_of(files: &[(&str, &[u8])]) -> Manifest {
        let Some(mut m) = parse_statement(MODEL).unwrap().manifest().cloned() else {
            panic!("no manifest")
        };
        m.resources = files
            .iter()
            .map(|(n, data)| Resource {
                name: n.to_string(),
                digest: declaration::Digest::of(data).0,
            })
            .collect();
        m
    }

    /// A model declaration whose manifest lists `files` (name, contents).
    fn logged(index: u64, files: &[(&str, &[u8])]) -> Logged {
        let Declaration::Model(mut m): Declaration = parse_statement(MODEL).unwrap() else {
            panic!("not a model")
        };
        let manifest = manifest_of(files);
        m.digest = declaration::Digest(manifest.root_digest());
        m.manifest = ModelManifest::Embedded(manifest);
        m.version = format!("v{index}");
        let d: ModelRelease = m;
        Logged {
            index,
            declaration: Declaration::Model(d),
            key_ids: vec![],
        }
    }

    fn dir(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (n, data) in files {
            std::fs::write(d.path().join(n), data).unwrap();
        }
        d
    }

    #[test]
    fn the_latest_matching_declaration_is_chosen_else_the_latest() {
        let old = logged(1, &[("a", b"1")]);
        let new = logged(5, &[("a", b"2")]);
        let newest = logged(9, &[("a", b"3"), ("b", b"4")]);
        let candidates = [&old, &new, &newest];
        let mut findings = vec![];
        let here = dir(&[("a", b"2")]);
        assert_eq!(
            compare(&candidates, here.path(), None, &mut findings)
                .unwrap()
                .unwrap()
                .0
                .index,
            5
        );
        assert!(findings.is_empty(), "{findings:?}");
        let here = dir(&[("a", b"9"), ("c", b"0")]);
        assert_eq!(
            compare(&candidates, here.path(), None, &mut findings)
                .unwrap()
                .unwrap()
                .0
                .index,
            9
        );
        let got: Vec<(&str, Option<&str>)> = findings
            .iter()
            .map(|f| (f.kind.as_str(), f.file.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("file-added", Some("c")),
                ("file-removed", Some("b")),
                ("file-changed", Some("a"))
            ]
        );
        assert!(findings[2]
            .message
            .contains(&hex::encode(declaration::Digest::of(b"9").0)));
        assert!(findings.iter().all(|f| f.indexes == [9]));
    }

    /// `logged` with its manifest detached as the file `ManifestFile` the publisher wrote.
    fn detached(mut l: Logged) -> (Logged, ManifestFile) {
        let Declaration::Model(m) = &mut l.declaration else {
            panic!("not a model")
        };
        let ModelManifest::Embedded(manifest) = &m.manifest else {
            panic!("not embedded")
        };
        let bytes = manifest.to_json();
        m.manifest = ModelManifest::Detached(DetachedManifest::of(manifest, &bytes));
        let file = ManifestFile::from_bytes(&bytes).unwrap();
        (l, file)
    }

    fn kinds(findings: &[Finding]) -> Vec<(&str, Option<&str>)> {
        findings
            .iter()
            .map(|f| (f.kind.as_str(), f.file.as_deref()))
            .collect()
    }

    #[test]
    fn a_detached_manifest_names_changed_files_once_shown_to_be_the_declared_one() {
        let files: &[(&str, &[u8])] = &[("a", b"1"), ("b", b"2")];
        let (release, file) = detached(logged(3, files));
        let compare1 = |dir: &Path, file: Option<&ManifestFile>| {
            let mut findings = vec![];
            let (chosen, by) = compare(&[&release], dir, file, &mut findings)
                .unwrap()
                .unwrap();
            assert_eq!(chosen.index, 3);
            (by, findings)
        };
        let same = dir(files);
        let changed = dir(&[("a", b"1"), ("b", b"X")]);

        // With the file: file by file.
        let (by, f) = compare1(same.path(), Some(&file));
        assert_eq!(
            by,
            ComparedBy::Manifest {
                files: 2,
                detached: true
            }
        );
        assert!(f.is_empty(), "{f:?}");
        let (_, f) = compare1(changed.path(), Some(&file));
        assert_eq!(kinds(&f), [("file-changed", Some("b"))]);
        assert!(
            f[0].message.contains("detached manifest"),
            "{}",
            f[0].message
        );

        // Without it: the root digest alone, which cannot name the file.
        let (by, f) = compare1(same.path(), None);
        assert_eq!((by, f.len()), (ComparedBy::RootDigest, 0));
        let (by, f) = compare1(changed.path(), None);
        assert_eq!(by, ComparedBy::RootDigest);
        assert_eq!(kinds(&f), [("subject-mismatch", None)]);
        assert!(f[0].message.contains("--manifest"), "{}", f[0].message);

        // A manifest of other files: refused first, naming both digests; the directory is
        // still compared with the subject digest.
        let other = ManifestFile::from_bytes(&manifest_of(&[("a", b"9")]).to_json()).unwrap();
        let (by, f) = compare1(same.path(), Some(&other));
        assert_eq!(by, ComparedBy::RootDigest);
        assert_eq!(kinds(&f), [("manifest-mismatch", None)]);
        let subject = release.declaration.subject_digest().to_string();
        let root = hex::encode(other.manifest.root_digest());
        assert!(
            f[0].message.contains(&subject) && f[0].message.contains(&root),
            "{}",
            f[0].message
        );
        let (_, f) = compare1(changed.path(), Some(&other));
        assert_eq!(
            kinds(&f),
            [("manifest-mismatch", None), ("subject-mismatch", None)]
        );

        // The right root but not the declared file: another name for the same contents.
        let renamed = manifest_of(&[("a", b"1"), ("c", b"2")]).to_json();
        let renamed = ManifestFile::from_bytes(&renamed).unwrap();
        let (by, f) = compare1(same.path(), Some(&renamed));
        assert_eq!(by, ComparedBy::RootDigest);
        assert_eq!(kinds(&f), [("manifest-mismatch", None)]);
        assert!(
            f[0].message.contains("detachedManifest"),
            "{}",
            f[0].message
        );
        // Re-encoded bytes of the right manifest are not the declared file either.
        let mut pretty: serde_json::Value =
            serde_json::from_slice(&file.manifest.to_json()).unwrap();
        pretty["x-note"] = "added".into();
        let reencoded = ManifestFile::from_bytes(pretty.to_string().as_bytes()).unwrap();
        assert_eq!(reencoded.manifest, file.manifest);
        let (_, f) = compare1(same.path(), Some(&reencoded));
        assert_eq!(kinds(&f), [("manifest-mismatch", None)]);
    }

    #[test]
    fn a_manifest_file_given_for_an_embedded_manifest_must_equal_it() {
        let files: &[(&str, &[u8])] = &[("a", b"1"), ("b", b"2")];
        let release = logged(4, files);
        let here = dir(files);
        let mut findings = vec![];
        let same = ManifestFile::from_bytes(&manifest_of(files).to_json()).unwrap();
        let (_, by) = compare(&[&release], here.path(), Some(&same), &mut findings)
            .unwrap()
            .unwrap();
        assert_eq!(
            by,
            ComparedBy::Manifest {
                files: 2,
                detached: false
            }
        );
        assert!(findings.is_empty(), "{findings:?}");
        let other = ManifestFile::from_bytes(&manifest_of(&[("a", b"1")]).to_json()).unwrap();
        compare(&[&release], here.path(), Some(&other), &mut findings).unwrap();
        assert_eq!(kinds(&findings), [("manifest-mismatch", None)]);
        assert!(
            findings[0].message.contains("in the statement"),
            "{}",
            findings[0].message
        );
    }
}

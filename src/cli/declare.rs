//! `glasslog declare model|dataset`: hash a directory, write a signed declaration.
//!
//! The directory is hashed into an OpenSSF Model Signing manifest ([`crate::admission::manifest`]), the
//! declaration is built with the typed structs of [`crate::admission::declaration`] (or, with `--from`, read
//! from a JSON file of predicate fields), checked with the validation the server applies, signed
//! as a DSSE envelope over the in-toto statement, and written to `--out`. Nothing is sent
//! anywhere: `glasslog submit` does that.
//!
//! References to other declarations (`--trained-on`, `--base-model`, `--supersedes`) are given as
//! the proof bundle `submit` wrote for them, which is verified and read for the name, digest and
//! log index, or as `NAME=sha256:HEX[@INDEX]`.
//!
//! A log entry is at most [`MAX_LEAF_BYTES`] (C2SP tlog-tiles). A model release whose manifest
//! would make it longer (thousands of files) gets a *detached* manifest: the manifest is written
//! to `OUT.manifest.json` ([`manifest_path`]), to be published with the declaration, and the
//! statement names it by the SHA-256 of that file (`detachedManifest`,
//! [`crate::admission::declaration::DetachedManifest`]); the subject digest is its root digest as
//! ever. Its file digests are then not searchable in the log. A dataset's manifest is never
//! detached: a dataset declaration too large for the log is refused here, with the ways out.
//!
//! What this is not: a way to edit or withdraw a declaration (a log never forgets; a later
//! declaration can only supersede an earlier one), nor a secret store: `--private` writes its salt
//! to a file beside the declaration, and keeping it is the publisher's job.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use rand_core::{OsRng, RngCore};
use serde_json::Value;

use super::keygen::{public_key_path, write_new};
use super::CliError;
use crate::admission::declaration::{
    self, BaseModel, DataDisclosure, Declaration, DetachedManifest, Digest, Kind,
    LicenseExpression, ModelManifest, ModelRelease, Name, PersonalData, PersonalDataPresence,
    Relation, Role, Source, SourceCategory, Supersedes, Timestamp, TrainingData, TrainingDataRef,
    Uri, PAYLOAD_TYPE,
};
use crate::admission::dsse::Envelope;
use crate::admission::keys::{KeyCache, PrivateKey};
use crate::admission::manifest::{self, HashOptions, Manifest};
use crate::admission::strict_json::{self, Map};
use crate::admission::{self, Policy};
use crate::client::bundle::ProofBundle;
use crate::entry::{check_leaf_len, MAX_LEAF_BYTES};
use crate::files;

/// Largest `--from` file read.
const MAX_FROM_BYTES: u64 = 1 << 20;
/// Largest proof bundle read (a bundle holds an envelope of at most a few MiB, in base64).
const MAX_BUNDLE_BYTES: u64 = 64 << 20;

#[derive(Args, Debug)]
pub struct DeclareArgs {
    #[command(subcommand)]
    kind: DeclareKind,
}

#[derive(Subcommand, Debug)]
enum DeclareKind {
    /// Declare a model release: its files, license, training data and base models.
    Model(ModelArgs),
    /// Declare a training dataset: its files (or, with --private, a commitment to them), sources,
    /// processing and personal data.
    Dataset(DatasetArgs),
}

/// What both kinds of declaration take.
#[derive(Args, Debug)]
struct CommonArgs {
    /// The directory to hash; every file in it is listed by name and SHA-256 in the declaration.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Name: segments of A-Z a-z 0-9 . _ - joined by '/', e.g. example-org/tiny-chat.
    #[arg(long, required_unless_present = "from", conflicts_with = "from")]
    name: Option<Name>,
    /// Version, free text, e.g. 1.2.0.
    #[arg(long, required_unless_present = "from", conflicts_with = "from")]
    version: Option<String>,
    /// SPDX license expression, e.g. Apache-2.0, "MIT OR Apache-2.0", LicenseRef-my-license.
    #[arg(
        long,
        value_name = "EXPR",
        required_unless_present = "from",
        conflicts_with = "from"
    )]
    license: Option<LicenseExpression>,
    /// The earlier declaration of the same name that this one replaces: its proof bundle, or
    /// NAME=sha256:HEX@INDEX (the log index is required here).
    #[arg(long, value_name = "REF", value_parser = parse_ref)]
    supersedes: Option<RefTarget>,
    /// Read the descriptive fields from a JSON file instead of flags (YAML is not supported;
    /// JSON is enough): an object of predicate members as in docs/declarations.md, e.g.
    /// {"name", "version", "license", "description", "supplier", ...}. releaseTime and manifest
    /// are computed and must not be in it; --trained-on, --base-model and --supersedes add to it.
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    /// The publisher's private key (PKCS#8 PEM, as written by glasslog keygen).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Where to write the signed declaration (a DSSE envelope, JSON); must not exist.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// A path to leave out of the manifest, relative to DIR (repeatable); .git, .gitattributes,
    /// .github and .gitignore are always left out.
    #[arg(long, value_name = "PATH")]
    ignore: Vec<String>,
    /// Hash symbolic links to files as their targets (recorded in the manifest) instead of
    /// refusing them; links to directories are skipped.
    #[arg(long)]
    allow_symlinks: bool,
}

#[derive(Args, Debug)]
struct ModelArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// A dataset the model was trained on (repeatable): its proof bundle, or
    /// NAME=sha256:HEX[@INDEX]; ROLE is pretraining (default), finetuning or evaluation.
    #[arg(long, value_name = "REF[:ROLE]", value_parser = parse_trained_on)]
    trained_on: Vec<(RefTarget, Role)>,
    /// How much of the training data --trained-on lists: full (default), partial, withheld or
    /// none (withheld and none take no --trained-on).
    #[arg(
        long,
        value_name = "full|partial|withheld|none",
        conflicts_with = "from"
    )]
    data_disclosure: Option<DataDisclosure>,
    /// A model this one derives from (repeatable): its proof bundle, or NAME=sha256:HEX[@INDEX];
    /// RELATION is finetune (default), adapter, quantized, merge or distill.
    #[arg(long, value_name = "REF[:RELATION]", value_parser = parse_base_model)]
    base_model: Vec<(RefTarget, Relation)>,
}

#[derive(Args, Debug)]
struct DatasetArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Where data came from (repeatable, at least one). CATEGORY is publicDataset,
    /// licensedThirdParty, webCrawl, userData, synthetic or other; NAME is free text without ':';
    /// URI is optional, e.g. webCrawl:Common Crawl 2024-10:https://commoncrawl.org.
    #[arg(long, value_name = "CATEGORY:NAME[:URI]", value_parser = parse_source, required_unless_present = "from", conflicts_with = "from")]
    source: Vec<Source>,
    /// How the data was collected, filtered and transformed.
    #[arg(
        long,
        value_name = "TEXT",
        required_unless_present = "from",
        conflicts_with = "from"
    )]
    processing: Option<String>,
    /// Whether the data contains personal data: yes, no or unknown.
    #[arg(
        long,
        value_name = "yes|no|unknown",
        required_unless_present = "from",
        conflicts_with = "from"
    )]
    contains_personal_data: Option<PersonalDataPresence>,
    /// How personal data was handled (filtered, pseudonymised, ...), or why there is none.
    #[arg(
        long,
        value_name = "TEXT",
        required_unless_present = "from",
        conflicts_with = "from"
    )]
    personal_data_handling: Option<String>,
    /// Log only a commitment to the files: a random 32-byte salt is written (hex) to OUT.salt
    /// (mode 0600; keep it to reveal the dataset later), the subject digest is
    /// SHA-256(salt || manifest root), and no file names or digests are included.
    #[arg(long)]
    private: bool,
}

/// A declaration referred to by a flag.
#[derive(Clone, Debug)]
enum RefTarget {
    /// A proof bundle file written by `glasslog submit`.
    Bundle(PathBuf),
    /// `NAME=sha256:HEX[@INDEX]`.
    Digest {
        name: Name,
        digest: Digest,
        index: Option<u64>,
    },
}

/// A reference once resolved: the referenced declaration's name, digest and log index.
struct Resolved {
    name: Name,
    digest: Digest,
    index: Option<u64>,
}

/// Builds the statement from the files (the manifest, or a model release's detached manifest),
/// the subject digest and the release time.
type Build<'a> = dyn Fn(ModelManifest, Digest, Timestamp) -> Result<Vec<u8>, CliError> + 'a;

/// What the flags or `--from` say besides the files, references resolved.
struct Described {
    name: Name,
    supersedes: Option<Supersedes>,
    /// The `--from` file and its predicate members, flag references merged in.
    from: Option<(PathBuf, Map)>,
}

pub fn run(args: DeclareArgs) -> Result<ExitCode, CliError> {
    match &args.kind {
        DeclareKind::Model(m) => run_model(m),
        DeclareKind::Dataset(d) => run_dataset(d),
    }
}

/// Everything that can fail without hashing is checked before hashing: outputs, key, references.
fn run_model(m: &ModelArgs) -> Result<ExitCode, CliError> {
    let c = &m.common;
    let key = start(c, Kind::Model, false)?;
    let training = m
        .trained_on
        .iter()
        .map(|(t, role)| resolve(t, "--trained-on", Kind::Dataset).map(|r| training_ref(r, *role)))
        .collect::<Result<Vec<_>, _>>()?;
    let base_models = m
        .base_model
        .iter()
        .map(|(t, relation)| {
            resolve(t, "--base-model", Kind::Model).map(|r| base_model(r, *relation))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut described = describe(c, Kind::Model)?;
    let data_disclosure = m.data_disclosure.unwrap_or(DataDisclosure::Full);
    match &mut described.from {
        Some((file, p)) => {
            append(
                p,
                "trainingData",
                training.iter().map(TrainingDataRef::to_json_value),
                file,
            )?;
            append(
                p,
                "baseModels",
                base_models.iter().map(BaseModel::to_json_value),
                file,
            )?;
        }
        None => check_disclosure(data_disclosure, training.len())?,
    }
    finish(c, Kind::Model, &key, false, &|manifest, digest, now| {
        if let Some((file, p)) = &described.from {
            return from_file(
                file,
                Kind::Model,
                p.clone(),
                &described.name,
                Some(manifest),
                digest,
                now,
            );
        }
        let release = ModelRelease {
            name: described.name.clone(),
            digest,
            version: required(&c.version, "--version")?,
            release_time: now,
            license: required(&c.license, "--license")?,
            manifest,
            training_data: training.clone(),
            data_disclosure,
            base_models: base_models.clone(),
            supersedes: described.supersedes.clone(),
            supplier: None,
            download_location: None,
            model_card: None,
            description: None,
            extensions: Map::new(),
        };
        Ok(release.to_statement_json())
    })
}

fn run_dataset(d: &DatasetArgs) -> Result<ExitCode, CliError> {
    let c = &d.common;
    let key = start(c, Kind::Dataset, d.private)?;
    let described = describe(c, Kind::Dataset)?;
    finish(c, Kind::Dataset, &key, d.private, &|files, digest, now| {
        let ModelManifest::Embedded(manifest) = files else {
            return Err("a dataset's manifest cannot be detached".into());
        };
        let manifest = (!d.private).then_some(manifest);
        if let Some((file, p)) = &described.from {
            return from_file(
                file,
                Kind::Dataset,
                p.clone(),
                &described.name,
                manifest.map(ModelManifest::Embedded),
                digest,
                now,
            );
        }
        let data = TrainingData {
            name: described.name.clone(),
            digest,
            version: required(&c.version, "--version")?,
            release_time: now,
            license: required(&c.license, "--license")?,
            sources: d.source.clone(),
            processing: required(&d.processing, "--processing")?,
            personal_data: PersonalData {
                contains: required(&d.contains_personal_data, "--contains-personal-data")?,
                handling: required(&d.personal_data_handling, "--personal-data-handling")?,
            },
            manifest,
            supersedes: described.supersedes.clone(),
            known_limitations: None,
            intended_use: None,
            supplier: None,
            download_location: None,
            description: None,
            extensions: Map::new(),
        };
        Ok(data.to_statement_json())
    })
}

/// `OUT.salt`, where a private dataset's salt goes.
fn salt_path(c: &CommonArgs) -> PathBuf {
    files::with_suffix(&c.out, ".salt")
}

/// `OUT.manifest.json`, where a model release's detached manifest goes: the OMS manifest of the
/// directory, whose SHA-256 the statement's `detachedManifest` holds.
fn manifest_path(c: &CommonArgs) -> PathBuf {
    files::with_suffix(&c.out, ".manifest.json")
}

/// Refuses outputs that exist (a model release's detached manifest too, although it is written
/// only for a large manifest), and loads the key.
fn start(c: &CommonArgs, kind: Kind, private: bool) -> Result<PrivateKey, CliError> {
    let salt = private.then(|| salt_path(c));
    let manifest = (kind == Kind::Model).then(|| manifest_path(c));
    for path in std::iter::once(&c.out).chain(&salt).chain(&manifest) {
        if path.exists() {
            return Err(format!(
                "{} already exists; it is never overwritten (remove it, or choose another --out)",
                path.display()
            )
            .into());
        }
    }
    load_key(&c.key)
}

/// The name and `--supersedes`, from the flags or from the `--from` file.
fn describe(c: &CommonArgs, kind: Kind) -> Result<Described, CliError> {
    let Some(file) = &c.from else {
        let name = required(&c.name, "--name")?;
        return Ok(Described {
            supersedes: supersedes(c, kind, &name)?,
            name,
            from: None,
        });
    };
    let mut p = read_from(file)?;
    let name = strict_json::require_str(&p, "name", "$.predicate")
        .map_err(CliError::from)
        .and_then(|n| Name::from_str(n).map_err(CliError::from))
        .map_err(|e| in_file(file, &e))?;
    let supersedes = supersedes(c, kind, &name)?;
    if let Some(s) = &supersedes {
        if p.contains_key("supersedes") {
            return Err(format!(
                "{} has \"supersedes\" and --supersedes is given too; keep one",
                file.display()
            )
            .into());
        }
        p.insert("supersedes".into(), s.to_json_value());
    }
    Ok(Described {
        name,
        supersedes,
        from: Some((file.clone(), p)),
    })
}

/// The steps both kinds share once the description is ready: hash, build, validate as the
/// server does, sign, detach a model release's manifest if the entry would be too large for the
/// log, write.
fn finish(
    c: &CommonArgs,
    kind: Kind,
    key: &PrivateKey,
    private: bool,
    build: &Build<'_>,
) -> Result<ExitCode, CliError> {
    warn_public(kind, private);
    let manifest = hash(c)?;
    let files = manifest.resources.len();
    let root = Digest(manifest.root_digest());
    let salt = if private { Some(new_salt()?) } else { None };
    let digest = salt
        .as_ref()
        .map_or(root, |s| declaration::commitment(s, &root));
    let now = now()?;
    let statement = build(
        ModelManifest::Embedded(manifest.clone()),
        digest,
        now.clone(),
    )?;
    let (mut envelope, mut declaration, leaf) = sign_and_admit(&statement, key)?;
    let mut detached = None;
    if check_leaf_len(leaf).is_err() {
        if kind != Kind::Model || private {
            return Err(too_large(kind, private, files, leaf));
        }
        // The same statement naming the manifest file instead of embedding it.
        let file = manifest.to_json();
        let statement = build(
            ModelManifest::Detached(DetachedManifest::of(&manifest, &file)),
            digest,
            now,
        )?;
        let leaf;
        (envelope, declaration, leaf) = sign_and_admit(&statement, key)?;
        if check_leaf_len(leaf).is_err() {
            return Err(format!(
                "even with its manifest detached, the declaration would make a log entry of \
                 {leaf} bytes; a log entry is at most {MAX_LEAF_BYTES} bytes (C2SP tlog-tiles): \
                 shorten its text fields"
            )
            .into());
        }
        detached = Some((manifest_path(c), file));
    }
    // Written in this order, all or none. The signer's public key goes beside the envelope,
    // where `glasslog submit` looks for it.
    let salt_file = salt.map(|s| (salt_path(c), format!("{}\n", hex::encode(s)).into_bytes()));
    let mut outputs: Vec<(PathBuf, Vec<u8>, u32)> = Vec::new();
    outputs.extend(salt_file.iter().map(|(p, s)| (p.clone(), s.clone(), 0o600)));
    outputs.extend(detached.iter().map(|(p, f)| (p.clone(), f.clone(), 0o644)));
    outputs.push((c.out.clone(), envelope, 0o644));
    let pem = key.public_key().to_pem().into_bytes();
    outputs.push((files::with_suffix(&c.out, ".pub"), pem, 0o644));
    write_all_new(&outputs)?;
    report(
        c,
        &declaration,
        files,
        salt_file.as_ref().map(|(p, _)| p.as_path()),
        detached.as_ref().map(|(p, _)| p.as_path()),
    );
    Ok(ExitCode::SUCCESS)
}

/// Signs `statement` and checks the envelope as the log will, references aside (a declaration
/// it would refuse is not written). Returns the envelope, its declaration, and the length of the
/// leaf the log would write for it now.
fn sign_and_admit(
    statement: &[u8],
    key: &PrivateKey,
) -> Result<(Vec<u8>, Declaration, usize), CliError> {
    let envelope = Envelope::sign(PAYLOAD_TYPE, statement, &[key]).to_json();
    let public_key = key.public_key().to_pem();
    let admitted = admission::admit_envelope(
        &envelope,
        &[public_key],
        &KeyCache::default(),
        &Policy::default(),
    )
    .map_err(|e| format!("the declaration made is not admissible: {e}"))?;
    let leaf = super::leaf_len_now(&admitted, envelope.len());
    let declaration = admitted
        .declaration
        .ok_or("the statement is not a glasslog declaration")?;
    Ok((envelope, declaration, leaf))
}

/// Why a declaration that only a model release's detached manifest could shrink is refused.
fn too_large(kind: Kind, private: bool, files: usize, leaf: usize) -> CliError {
    let way_out = if kind == Kind::Dataset && !private {
        format!(
            "its manifest lists {files} files, and only a model release can leave its manifest \
             out of the statement: declare the dataset with --private (a commitment, no file \
             list), leave files out with --ignore, or split it into several datasets"
        )
    } else {
        "shorten its text fields".to_string()
    };
    format!(
        "the declaration would make a log entry of {leaf} bytes; a log entry is at most \
         {MAX_LEAF_BYTES} bytes (C2SP tlog-tiles): {way_out}"
    )
    .into()
}

/// Writes each `(path, data, mode)` as a new file, in order; if one cannot be written, removes
/// those written before it (they belong to a declaration that was not written).
fn write_all_new(outputs: &[(PathBuf, Vec<u8>, u32)]) -> Result<(), CliError> {
    for (i, (path, data, mode)) in outputs.iter().enumerate() {
        if let Err(e) = write_new(path, data, *mode) {
            for (written, _, _) in &outputs[..i] {
                let _ = std::fs::remove_file(written);
            }
            return Err(e);
        }
    }
    Ok(())
}

fn load_key(path: &Path) -> Result<PrivateKey, CliError> {
    let pem = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the private key {}: {e}", path.display()))?;
    PrivateKey::from_pkcs8_pem(&pem).map_err(|e| {
        format!(
            "{} is not a usable private key ({e}); --key takes an unencrypted PKCS#8 PEM key, as \
             written by glasslog keygen",
            path.display()
        )
        .into()
    })
}

fn warn_public(kind: Kind, private: bool) {
    let what = if private {
        "the name, version, license, sources, processing and personal-data descriptions"
    } else {
        "the name, version, license, descriptions and every file name and file digest in the directory"
    };
    eprintln!(
        "Note: once this {kind} declaration is submitted, {what} become public forever: a \
         transparency log cannot delete or edit entries. Check them before you submit."
    );
}

/// Hashes the directory, with a progress bar on stderr when it is a terminal.
fn hash(c: &CommonArgs) -> Result<Manifest, CliError> {
    let mut opts = HashOptions {
        allow_symlinks: c.allow_symlinks,
        ..HashOptions::default()
    };
    opts.ignore_paths.extend(c.ignore.iter().cloned());
    let bar = std::io::stderr().is_terminal().then(progress_bar);
    let report = |done: u64, total: u64| {
        if let Some(bar) = &bar {
            bar.set_length(total);
            bar.set_position(done);
        }
    };
    let result = manifest::hash_directory(&c.dir, &opts, Some(&report));
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let manifest = result.map_err(|e| format!("cannot hash {}: {e}", c.dir.display()))?;
    if manifest.is_empty() {
        return Err(format!(
            "{} has no files to hash (.git, .gitattributes, .github, .gitignore and --ignore paths \
             are left out); a declaration lists at least one file",
            c.dir.display()
        )
        .into());
    }
    Ok(manifest)
}

fn progress_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "hashing {wide_bar} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

fn new_salt() -> Result<[u8; 32], CliError> {
    let mut salt = [0u8; 32];
    OsRng.try_fill_bytes(&mut salt).map_err(|e| {
        format!("cannot get random bytes for the salt from the operating system: {e}")
    })?;
    Ok(salt)
}

/// The current time as RFC 3339 in UTC with `Z`, to the second.
pub(super) fn now() -> Result<Timestamp, CliError> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "the system clock is before 1970; set it")?
        .as_secs();
    let secs = i64::try_from(secs).map_err(|_| "the system clock is far in the future; set it")?;
    Ok(Timestamp::from_unix_seconds(secs).ok_or("the system clock is after 9999; set it")?)
}

fn report(
    c: &CommonArgs,
    d: &Declaration,
    files: usize,
    salt: Option<&Path>,
    detached: Option<&Path>,
) {
    println!("declaration: {}", c.out.display());
    println!("name: {}", d.name());
    println!("version: {}", d.version());
    println!("digest: sha256:{}", d.subject_digest());
    println!("files: {files}");
    if let Some(manifest) = detached {
        println!("manifest: detached, {}", manifest.display());
        eprintln!(
            "The manifest of {files} files would make the log entry longer than the \
             {MAX_LEAF_BYTES} bytes a log entry may have, so it is not in the statement: it is \
             in {}, which the statement names by its SHA-256 (detachedManifest). Publish it \
             with the model: glasslog verify --manifest needs it to name changed files, and the \
             log cannot be searched by the digests of these files.",
            manifest.display()
        );
    }
    if let Some(salt) = salt {
        println!("salt: {}", salt.display());
        eprintln!(
            "Keep {} secret and safe: without it the commitment can never be opened.",
            salt.display()
        );
    }
    let public = public_key_path(&c.key);
    eprintln!(
        "Next: glasslog submit {} --server URL --public-key {}",
        c.out.display(),
        public.display()
    );
}

// ---------------------------------------------------------------------------
// Building the statement.

/// A flag clap requires unless `--from` is given.
fn required<T: Clone>(value: &Option<T>, flag: &str) -> Result<T, CliError> {
    value
        .clone()
        .ok_or_else(|| format!("{flag} is required (or give --from FILE)").into())
}

/// [`DataDisclosure::agrees_with`], worded for the flags.
fn check_disclosure(disclosure: DataDisclosure, listed: usize) -> Result<(), CliError> {
    if disclosure.agrees_with(listed) {
        return Ok(());
    }
    match disclosure {
        DataDisclosure::Full | DataDisclosure::Partial => Err(format!(
            "a model release lists its training data: give --trained-on (a dataset's proof bundle, or \
             NAME=sha256:HEX), or say --data-disclosure withheld (not listed) or none (no training data \
             of its own); --data-disclosure is {disclosure}"
        )
        .into()),
        DataDisclosure::Withheld | DataDisclosure::None => Err(format!(
            "--data-disclosure {disclosure} takes no --trained-on; use partial or full (the default) \
             when you list training data"
        )
        .into()),
    }
}

fn training_ref(r: Resolved, role: Role) -> TrainingDataRef {
    TrainingDataRef {
        name: r.name,
        digest: r.digest,
        role,
        log_index: r.index,
    }
}

fn base_model(r: Resolved, relation: Relation) -> BaseModel {
    BaseModel {
        name: r.name,
        digest: r.digest,
        relation,
        log_index: r.index,
    }
}

/// `--supersedes`, resolved and checked: same kind, same name, a log index.
fn supersedes(c: &CommonArgs, kind: Kind, name: &Name) -> Result<Option<Supersedes>, CliError> {
    let Some(target) = &c.supersedes else {
        return Ok(None);
    };
    let r = resolve(target, "--supersedes", kind)?;
    if &r.name != name {
        return Err(format!(
            "--supersedes names {}, but this declaration is {name}; a declaration supersedes only an \
             earlier one of the same name",
            r.name
        )
        .into());
    }
    let log_index = r.index.ok_or(
        "--supersedes needs the superseded entry's log index: give its proof bundle, or \
         NAME=sha256:HEX@INDEX",
    )?;
    Ok(Some(Supersedes {
        log_index,
        digest: r.digest,
    }))
}

// ---------------------------------------------------------------------------
// --from FILE.

/// An error about the `--from` file.
fn in_file(file: &Path, e: &dyn std::fmt::Display) -> CliError {
    format!(
        "{}: {e} (the file is the statement's $.predicate: $.predicate.X is its member X)",
        file.display()
    )
    .into()
}

/// The predicate members in `file`: a JSON object, without the computed members.
fn read_from(file: &Path) -> Result<Map, CliError> {
    let bytes = read_limited(file, MAX_FROM_BYTES, "--from file")?;
    let value = strict_json::parse(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    let Value::Object(map) = value else {
        return Err(format!("{}: want a JSON object of predicate fields", file.display()).into());
    };
    for computed in ["releaseTime", "manifest", "detachedManifest"] {
        if map.contains_key(computed) {
            return Err(format!(
                "{}: remove \"{computed}\"; declare computes it (the release time is now, the \
                 manifest is DIR's, detached when it is too large for a log entry)",
                file.display()
            )
            .into());
        }
    }
    Ok(map)
}

/// Appends flag references to the array member `key` of the predicate.
fn append(
    p: &mut Map,
    key: &str,
    items: impl Iterator<Item = Value>,
    file: &Path,
) -> Result<(), CliError> {
    let items: Vec<Value> = items.collect();
    if items.is_empty() {
        return Ok(());
    }
    match p.entry(key).or_insert_with(|| Value::Array(Vec::new())) {
        Value::Array(list) => list.extend(items),
        _ => return Err(format!("{}: \"{key}\" must be an array", file.display()).into()),
    }
    Ok(())
}

/// The statement of a predicate read from `file`, checked and rewritten by the typed code.
fn from_file(
    file: &Path,
    kind: Kind,
    mut p: Map,
    name: &Name,
    manifest: Option<ModelManifest>,
    digest: Digest,
    now: Timestamp,
) -> Result<Vec<u8>, CliError> {
    p.insert("releaseTime".into(), now.as_str().into());
    match manifest {
        Some(ModelManifest::Embedded(m)) => p.insert("manifest".into(), m.to_json_value()),
        Some(ModelManifest::Detached(d)) => p.insert("detachedManifest".into(), d.to_json_value()),
        None => None,
    };
    let statement = declaration::statement_json(name, &digest, kind, p);
    let declaration = declaration::parse_statement(&statement).map_err(|e| in_file(file, &e))?;
    Ok(declaration.to_statement_json())
}

// ---------------------------------------------------------------------------
// References.

/// Reads what `target` refers to; a bundle is verified and must be of kind `want`.
fn resolve(target: &RefTarget, flag: &str, want: Kind) -> Result<Resolved, CliError> {
    let path = match target {
        RefTarget::Digest {
            name,
            digest,
            index,
        } => {
            return Ok(Resolved {
                name: name.clone(),
                digest: *digest,
                index: *index,
            })
        }
        RefTarget::Bundle(path) => path,
    };
    let bytes = read_limited(path, MAX_BUNDLE_BYTES, "proof bundle")
        .map_err(|e| with_ref_hint(e, flag, path))?;
    let bundle =
        ProofBundle::from_json(&bytes).map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    let verified = bundle
        .verify()
        .map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    let d = &verified.declaration;
    if d.kind() != want {
        return Err(format!(
            "{flag} {}: the bundle is of the {} declaration {}, but {flag} takes a {want} declaration",
            path.display(),
            d.kind(),
            d.name()
        )
        .into());
    }
    Ok(Resolved {
        name: d.name().clone(),
        digest: *d.subject_digest(),
        index: Some(verified.index),
    })
}

/// A reference that is not a readable file may have been meant as something else.
fn with_ref_hint(e: CliError, flag: &str, path: &Path) -> CliError {
    let text = path.to_string_lossy();
    let hint = if text.contains('=') {
        " (to refer by digest, write NAME=sha256:<64 lowercase hex>[@INDEX])"
    } else if text.contains(':') {
        match flag {
            "--trained-on" => " (the roles after ':' are pretraining, finetuning and evaluation)",
            "--base-model" => {
                " (the relations after ':' are finetune, adapter, quantized, merge and distill)"
            }
            _ => "",
        }
    } else {
        ""
    };
    format!("{flag}: {e}{hint}").into()
}

fn read_limited(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, CliError> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {what} {}: {e}", path.display()))?;
    if bytes.len() as u64 > limit {
        return Err(format!("{what} {} is larger than {limit} bytes", path.display()).into());
    }
    Ok(bytes)
}

// ---------------------------------------------------------------------------
// Flag values.

/// `REF`: a bundle path, or `NAME=sha256:HEX[@INDEX]`.
fn parse_ref(s: &str) -> Result<RefTarget, String> {
    let Some((name, rest)) = s.split_once('=') else {
        return Ok(RefTarget::Bundle(PathBuf::from(s)));
    };
    let Some(hex) = rest.strip_prefix("sha256:") else {
        // Perhaps a file whose name has '='; reading it will say if not.
        return Ok(RefTarget::Bundle(PathBuf::from(s)));
    };
    let (hex, index) = match hex.split_once('@') {
        Some((hex, index)) => {
            let index = index.parse::<u64>().map_err(|_| {
                format!("{index:?} after '@' is not a log index (a non-negative integer)")
            })?;
            (hex, Some(index))
        }
        None => (hex, None),
    };
    Ok(RefTarget::Digest {
        name: name.parse().map_err(|e| format!("{e}"))?,
        digest: hex.parse().map_err(|e| format!("{e}"))?,
        index,
    })
}

/// `REF[:SUFFIX]`, where SUFFIX parses as `T`; a last `:` field that does not parse is part of
/// the reference (paths and `sha256:` contain colons).
fn parse_suffixed<T: FromStr>(s: &str) -> Result<(RefTarget, Option<T>), String> {
    if let Some((head, tail)) = s.rsplit_once(':') {
        if let Ok(value) = tail.parse::<T>() {
            return Ok((parse_ref(head)?, Some(value)));
        }
    }
    Ok((parse_ref(s)?, None))
}

fn parse_trained_on(s: &str) -> Result<(RefTarget, Role), String> {
    let (target, role) = parse_suffixed(s)?;
    Ok((target, role.unwrap_or(Role::Pretraining)))
}

fn parse_base_model(s: &str) -> Result<(RefTarget, Relation), String> {
    let (target, relation) = parse_suffixed(s)?;
    Ok((target, relation.unwrap_or(Relation::Finetune)))
}

/// `CATEGORY:NAME[:URI]`.
fn parse_source(s: &str) -> Result<Source, String> {
    let (category, rest) = s
        .split_once(':')
        .ok_or("want CATEGORY:NAME[:URI], e.g. publicDataset:Wikipedia 2024-01:https://dumps.wikimedia.org")?;
    let category: SourceCategory = category.parse().map_err(|e| format!("the category {e}"))?;
    let (name, uri) = match rest.split_once(':') {
        Some((name, uri)) => (name, Some(uri.parse::<Uri>().map_err(|e| format!("{e}"))?)),
        None => (rest, None),
    };
    if name.is_empty() {
        return Err("the source NAME is empty; say where the data came from".into());
    }
    Ok(Source {
        category,
        name: name.to_owned(),
        uri,
        license: None,
        collection_period: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let hex = "ab".repeat(32);
        let (t, role) = parse_trained_on(&format!("org/ds=sha256:{hex}:finetuning")).unwrap();
        assert!(matches!(t, RefTarget::Digest { index: None, .. }));
        assert_eq!(role, Role::Finetuning);
        let (t, role) = parse_trained_on(&format!("org/ds=sha256:{hex}@7")).unwrap();
        assert!(matches!(t, RefTarget::Digest { index: Some(7), .. }));
        assert_eq!(role, Role::Pretraining);
        let (t, _) = parse_trained_on("a/b.bundle.json:evaluation").unwrap();
        assert!(matches!(t, RefTarget::Bundle(p) if p == Path::new("a/b.bundle.json")));
        let (t, _) = parse_trained_on("x.json:finetune").unwrap();
        assert!(matches!(t, RefTarget::Bundle(p) if p == Path::new("x.json:finetune")));
        assert!(parse_trained_on("bad name=sha256:00").is_err());
        assert!(parse_ref(&format!("org/ds=sha256:{hex}@x")).is_err());
    }

    #[test]
    fn sources() {
        let s = parse_source("webCrawl:Common Crawl:https://commoncrawl.org/x").unwrap();
        assert_eq!(s.category, SourceCategory::WebCrawl);
        assert_eq!(s.name, "Common Crawl");
        assert_eq!(s.uri.unwrap().as_str(), "https://commoncrawl.org/x");
        assert!(parse_source("web:x").is_err());
        assert!(parse_source("synthetic").is_err());
        assert!(parse_source("synthetic:").is_err());
    }
}

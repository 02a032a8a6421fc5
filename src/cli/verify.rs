//! `glasslog verify`: is this directory what the log says was released under this name?
//!
//! Online, `glasslog verify DIR --name N [--version V] --server URL --log-key VKEY`: the checks
//! of [`crate::verify::verify_name`] — every declaration of the name found through the
//! log's Search verified (signatures, admission rules, inclusion in a checkpoint signed by
//! `--log-key`), that checkpoint checked against the last one accepted for the log (split views),
//! and one declaration compared with the directory file by file. Which one: the latest in log
//! order whose manifest matches, else the latest (of the version, if given).
//!
//! From the log's tiles, `--tiles URL` instead of `--server`: the same checks, the declarations
//! found by reading every entry bundle (the whole log; see `verify/scan.rs` for the cost), or
//! only the entries named with `--entry INDEX`.
//!
//! Offline, `glasslog verify --bundle FILE --log-key VKEY [DIR]`: the same for the declaration of
//! a proof bundle written by `submit`, whose embedded log key must equal `--log-key`.
//!
//! `--manifest FILE` gives a model release's detached manifest (`OUT.manifest.json` of
//! `glasslog declare`), without which a directory can be compared with such a release by root
//! digest only ([`crate::verify::ManifestFile`] says what is checked of the file).
//!
//! Output: findings (`FAIL ...` lines, or with `--json` JSON lines as the monitor writes them,
//! [`crate::check`]), then a summary of `key: value` lines (or one JSON object). Exit status 0
//! when everything verified and matched, 1 on any finding, 2 when the verification could not be
//! completed (unreachable server, unreadable directory or state).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::CliError;
use crate::admission::declaration::Name;
use crate::check::{FindingKind, Printer};
use crate::client::trust_state::{Accepted, TrustError, TrustState};
use crate::client::LogClient;
use crate::tlog::note::LogVerifier;
use crate::verify::{self, ComparedBy, ManifestFile, Report, TrustNote};

/// HTTP/2 flow-control windows of the client's connection.
const STREAM_WINDOW: u32 = 8 << 20;
const CONNECTION_WINDOW: u32 = 32 << 20;

/// Largest proof bundle read.
const MAX_BUNDLE_BYTES: u64 = 64 << 20;

/// Largest manifest file read (about 150 bytes a file: over a million files).
const MAX_MANIFEST_BYTES: u64 = 256 << 20;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The model or dataset directory to compare with the logged manifest (optional with
    /// --bundle).
    #[arg(value_name = "DIR", required_unless_present = "bundle")]
    dir: Option<PathBuf>,
    /// The declared name, e.g. example-org/tiny-chat.
    #[arg(long, required_unless_present = "bundle", conflicts_with = "bundle")]
    name: Option<Name>,
    /// Only declarations of this version.
    #[arg(long, conflicts_with = "bundle")]
    version: Option<String>,
    /// The log server's URL, e.g. http://127.0.0.1:50051.
    #[arg(
        long,
        value_name = "URL",
        required_unless_present_any = ["bundle", "tiles"],
        conflicts_with_all = ["bundle", "tiles"]
    )]
    server: Option<String>,
    /// Read the log from its tiles instead of its server (C2SP tlog-tiles): the server's
    /// --http-listen URL, its --publish location, or a mirror: http(s)://HOST/PREFIX,
    /// file:///DIR or s3://BUCKET/PREFIX. Without --entry, every entry bundle of the log is read
    /// to find the name's declarations (a download of the whole log).
    #[arg(long, value_name = "URL", conflicts_with = "bundle")]
    tiles: Option<String>,
    /// With --tiles: read only the entry at this log index (repeatable) instead of scanning the
    /// log; later declarations of the name are then unknown.
    #[arg(long = "entry", value_name = "INDEX", conflicts_with = "bundle")]
    entries: Vec<u64>,
    /// The S3 endpoint for --tiles s3://… (an http:// endpoint is used as given).
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
    /// The log's verifier key (<origin>+<key id>+<base64>), pinned out of band.
    #[arg(long, value_name = "VKEY")]
    log_key: String,
    /// Verify offline from a proof bundle written by glasslog submit.
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
    /// A model release's detached manifest: the OMS manifest file published with a
    /// declaration whose manifest was too large for the log (DECLARATION.manifest.json, as
    /// glasslog declare writes it). It must be the declared one (root digest = subject digest,
    /// SHA-256 = the declaration's detachedManifest digest); DIR is then compared with it file by
    /// file. Without it such a release is compared by root digest only. Given for a declaration
    /// whose manifest is in the statement, it must equal that manifest.
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// The split-view state file [default: one per log key under
    /// $XDG_CONFIG_HOME/glasslog/checkpoints or ~/.config/glasslog/checkpoints]. With --bundle it
    /// is only read.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Print one JSON object per finding, then a summary object, one per line.
    #[arg(long)]
    json: bool,
    /// Seconds to wait for the server to connect and to answer.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    timeout: u64,
    /// A C2SP tlog-policy file: trust only checkpoints that carry its quorum of witness
    /// cosignatures (online: prove against the latest witnessed checkpoint; with --bundle: the
    /// bundle's checkpoint and cosignatures must meet it).
    #[arg(long, value_name = "FILE")]
    witness_policy: Option<PathBuf>,
}

pub fn run(args: VerifyArgs) -> Result<ExitCode, CliError> {
    let mut printer = Printer::new(args.json);
    match check(&args) {
        Ok((report, state_path)) => {
            for f in &report.findings {
                printer.report(f)?;
            }
            print_summary(&report, &args, state_path.as_deref());
            Ok(ExitCode::from(if report.ok() { 0 } else { 1 }))
        }
        Err(e) => {
            printer.error("verify", &e);
            Ok(ExitCode::from(2))
        }
    }
}

/// The report, and the split-view state file used.
fn check(args: &VerifyArgs) -> Result<(Report, Option<PathBuf>), CliError> {
    let verifier = LogVerifier::new(&args.log_key).map_err(|e| format!("--log-key: {e}"))?;
    let state_path = args
        .state
        .clone()
        .or_else(|| TrustState::default_path(&verifier).ok());
    let file = args.manifest.as_deref().map(read_manifest).transpose()?;
    let report = match (&args.dir, &args.bundle) {
        (Some(dir), _) if !dir.is_dir() => {
            return Err(format!("{} is not a directory", dir.display()).into())
        }
        (_, Some(bundle)) => offline(args, bundle, &verifier, file.as_ref())?,
        (_, None) => online(args, verifier, file.as_ref())?,
    };
    Ok((report, state_path))
}

/// `--manifest FILE`, read and validated (whether it is the declared one is a finding).
fn read_manifest(path: &Path) -> Result<ManifestFile, CliError> {
    let bytes = read_limited(path, MAX_MANIFEST_BYTES, "manifest file")?;
    ManifestFile::from_bytes(&bytes).map_err(|e| {
        format!(
            "--manifest {} is not an OMS manifest as glasslog admits it: {e}",
            path.display()
        )
        .into()
    })
}

/// The bytes of `path`, of at most `limit`.
fn read_limited(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, CliError> {
    use std::io::Read;
    let context = |e: std::io::Error| format!("cannot read the {what} {}: {e}", path.display());
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(context)?
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(context)?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "{} is larger than {limit} bytes; it is not a {what}",
            path.display()
        )
        .into());
    }
    Ok(bytes)
}

fn online(
    args: &VerifyArgs,
    verifier: LogVerifier,
    file: Option<&ManifestFile>,
) -> Result<Report, CliError> {
    let (Some(name), Some(dir)) = (&args.name, &args.dir) else {
        return Err("--name, --server (or --tiles) and DIR are required without --bundle".into());
    };
    if !args.entries.is_empty() && args.tiles.is_none() {
        return Err("--entry goes with --tiles (over --server, Search finds the entries)".into());
    }
    let mut trust = TrustState::open(&verifier, args.state.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let source = super::open_source(
            args.server.as_deref(),
            args.tiles.as_deref(),
            args.s3_endpoint.as_deref(),
            verifier,
            Duration::from_secs(args.timeout),
        )
        .await?;
        let policy = args
            .witness_policy
            .as_deref()
            .map(super::load_witness_policy)
            .transpose()?;
        Ok(verify::verify_name(
            &source,
            &mut trust,
            name,
            args.version.as_deref(),
            dir,
            file,
            policy.as_ref(),
            &args.entries,
        )
        .await?)
    })
}

fn offline(
    args: &VerifyArgs,
    bundle: &Path,
    verifier: &LogVerifier,
    file: Option<&ManifestFile>,
) -> Result<Report, CliError> {
    let bytes = read_limited(bundle, MAX_BUNDLE_BYTES, "proof bundle")?;
    // Read-only: an offline check proves nothing newer to store.
    let trust = match TrustState::open(verifier, args.state.as_deref()) {
        Ok(t) => Some(t),
        Err(TrustError::NoConfigDir) => None,
        Err(e) => return Err(e.into()),
    };
    let policy = args
        .witness_policy
        .as_deref()
        .map(super::load_witness_policy)
        .transpose()?;
    Ok(verify::verify_bundle(
        &bytes,
        verifier,
        args.dir.as_deref(),
        file,
        trust.as_ref(),
        policy.as_ref(),
    )?)
}

/// Connects to `server` for the log of `verifier`, with `timeout` on connecting and on each call.
pub(super) async fn connect(
    server: &str,
    verifier: LogVerifier,
    timeout: Duration,
) -> Result<LogClient, CliError> {
    if !server.contains("://") {
        return Err(
            format!("--server {server:?} has no scheme; write e.g. http://{server}").into(),
        );
    }
    let timeout = timeout.max(Duration::from_secs(1));
    let channel = crate::client::endpoint(server)
        .map_err(|e| format!("--server {server:?} is not a valid URL: {e}"))?
        .connect_timeout(timeout)
        .timeout(timeout)
        // Replies of GetEntries are megabytes: windows of 64 KiB would make reading the log a
        // matter of round trips rather than bandwidth.
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| format!("cannot connect to {server}: {e}"))?;
    Ok(LogClient::with_channel(channel, verifier))
}

fn print_summary(report: &Report, args: &VerifyArgs, state: Option<&Path>) {
    let findings = report.findings.len();
    if args.json {
        println!("{}", summary_json(report, findings));
        return;
    }
    for line in summary_lines(report, args, state) {
        println!("{line}");
    }
}

fn summary_json(report: &Report, findings: usize) -> serde_json::Value {
    let c = report.compared.as_ref().map(|c| {
        let d = &c.logged.declaration;
        json!({
            "index": c.logged.index, "name": d.name().to_string(), "version": d.version(), "kind": d.kind().as_str(),
            "subject_digest": d.subject_digest().to_string(),
            "publisher_keys": c.logged.key_ids.iter().map(|k| k.to_string()).collect::<Vec<_>>(),
            "files": c.by.files(),
            "compared_by": compared_by_code(c.by),
        })
    });
    let later: Vec<_> = report
        .later
        .iter()
        .map(|l| json!({"index": l.index, "kind": l.kind.as_str(), "version": l.version, "supersedes": l.supersedes}))
        .collect();
    json!({
        "type": "summary",
        "result": if report.ok() { "ok" } else { "fail" },
        "declaration": c,
        "checkpoint_size": report.checkpoint.as_ref().map(|(c, _)| c.size),
        "checkpoint": report.checkpoint.as_ref().map(|(_, n)| n),
        "split_view_check": report.trust.as_ref().map(trust_code),
        "online": report.online,
        "complete": report.complete,
        "head": report.online.then(|| head(report)).flatten(),
        "head_index": report.head.as_ref().map(|h| h.index),
        "later": later,
        "findings": findings,
    })
}

/// How the directory was compared, in the JSON summary: `manifest`, `detached-manifest`,
/// `root-digest`, or null.
fn compared_by_code(by: ComparedBy) -> Option<&'static str> {
    match by {
        ComparedBy::Nothing => None,
        ComparedBy::Manifest {
            detached: false, ..
        } => Some("manifest"),
        ComparedBy::Manifest { detached: true, .. } => Some("detached-manifest"),
        ComparedBy::RootDigest => Some("root-digest"),
    }
}

fn head(report: &Report) -> Option<bool> {
    let (c, h) = (report.compared.as_ref()?, report.head.as_ref()?);
    Some(c.logged.index == h.index)
}

fn trust_code(t: &TrustNote) -> String {
    match t {
        TrustNote::Accepted(Accepted::FirstUse) => "first-use".into(),
        TrustNote::Accepted(Accepted::Same) => "same".into(),
        TrustNote::Accepted(Accepted::Extended { from_size }) => {
            format!("consistent-from-{from_size}")
        }
        TrustNote::Accepted(Accepted::Older { stored_size }) => format!("prefix-of-{stored_size}"),
        TrustNote::SameAsStored => "same".into(),
        TrustNote::NotCheckable => "not-checkable-offline".into(),
        TrustNote::Failed => "inconsistent-checkpoint".into(),
    }
}

/// The `files:` line: how the directory was compared and whether it matched.
fn files_line(report: &Report, by: ComparedBy, dir: bool) -> String {
    let differs = |kind| report.findings.iter().any(|f| f.kind == kind);
    let file_findings = report.findings.iter().any(|f| f.file.is_some());
    let which = |detached| match detached {
        false => "the logged manifest",
        true => "the detached manifest (--manifest)",
    };
    match by {
        _ if !dir => "files: not compared (no DIR given)".into(),
        ComparedBy::Manifest { files, detached } if !file_findings => {
            format!("files: all {files} match {}", which(detached))
        }
        ComparedBy::Manifest { files, detached } => format!(
            "files: the directory differs from {} of {files} files (see FAIL lines)",
            which(detached)
        ),
        ComparedBy::RootDigest if !differs(FindingKind::SubjectMismatch) => {
            "files: the directory's root digest is the subject digest; file names not compared \
             (the manifest is detached: give --manifest FILE to compare them)"
                .into()
        }
        ComparedBy::RootDigest => "files: the directory's root digest is not the subject digest; \
             the files that differ cannot be named without the detached manifest (--manifest FILE)"
            .into(),
        ComparedBy::Nothing => "files: not compared (no manifest logged)".into(),
    }
}

fn summary_lines(report: &Report, args: &VerifyArgs, state: Option<&Path>) -> Vec<String> {
    let mut out = vec![format!(
        "result: {}",
        if report.ok() { "ok" } else { "FAIL" }
    )];
    if let Some(c) = &report.compared {
        let d = &c.logged.declaration;
        out.push(format!("name: {}", d.name()));
        out.push(format!("version: {}", d.version()));
        out.push(format!("kind: {}", d.kind()));
        out.push(format!("index: {}", c.logged.index));
        out.push(format!("digest: sha256:{}", d.subject_digest()));
        let keys: Vec<String> = c.logged.key_ids.iter().map(|k| k.to_string()).collect();
        out.push(format!("publisher keys: {}", keys.join(", ")));
        out.push(files_line(report, c.by, args.dir.is_some()));
    }
    if let Some((cp, _)) = &report.checkpoint {
        out.push(format!(
            "checkpoint: {} size {}, signature verified with --log-key",
            cp.origin, cp.size
        ));
    }
    if let Some(t) = &report.trust {
        let path = state.map(|p| p.display().to_string()).unwrap_or_default();
        out.push(format!("split-view check: {} ({path})", trust_code(t)));
    }
    if !report.online {
        out.push(match args.entries.is_empty() {
            true => "later declarations: unknown offline (verify online to see them)".into(),
            false => "later declarations: unknown (only the --entry indexes were read)".into(),
        });
        return out;
    }
    if let Some(h) = &report.head {
        let is_head = head(report) == Some(true);
        out.push(format!(
            "head: {}",
            match is_head {
                true => "yes".to_string(),
                false => format!(
                    "no (the latest declaration of {} is index {}, version {})",
                    h.declaration.name(),
                    h.index,
                    h.declaration.version()
                ),
            }
        ));
    }
    for l in &report.later {
        let supersedes = match l.supersedes {
            Some(i) => format!(", supersedes index {i}"),
            None => String::new(),
        };
        out.push(format!(
            "later: index {}, {} version {}{supersedes}",
            l.index, l.kind, l.version
        ));
    }
    if let (Some(name), Some((cp, _)), true) = (&args.name, &report.checkpoint, report.complete) {
        out.push(format!(
            "note: every entry up to checkpoint size {} was read from the tiles and authenticated: \
             the log holds no other declaration of {name} up to it",
            cp.size
        ));
    } else if let (Some(name), Some((cp, _))) = (&args.name, &report.checkpoint) {
        out.push(format!(
            "note: Search shows the declarations of {name} up to checkpoint size {}; that no other exists is the \
             server's word until monitors have seen the whole log (glasslog audit)",
            cp.size
        ));
    }
    out
}

//! `glasslog audit`: check a whole log from the outside.
//!
//! Reads the log from its server (`--server`) or from its tiles (`--tiles`: the server's HTTP
//! listener, its published bucket or directory, a mirror), with the same checks and findings.
//! Takes the log's latest checkpoint (its signature checked against `--log-key`, never a key the
//! server announces), checks it against the last checkpoint this client accepted for the log
//! (split views, [`crate::client::trust_state`]), then streams every entry up to it and runs the checks
//! of [`crate::audit`]: the Merkle root recomputed from the entries, every entry re-validated with
//! the admission code, every reference between entries, duplicates and time order. Findings are
//! printed as they are made (text, or with `--json` one JSON line each, as the monitor writes
//! them, [`crate::check`]), then a summary; the exit status is 1 if there was any finding, 2 if
//! the audit could not be completed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::CliError;
use crate::audit::{self, Options};
use crate::check::{Finding, Printer};
use crate::client::trust_state::{Accepted, TrustError, TrustState};
use crate::tlog::note::LogVerifier;

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["server", "tiles"])))]
pub struct AuditArgs {
    /// The log server's URL, e.g. http://127.0.0.1:50051.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Read the log from its tiles instead of its server (C2SP tlog-tiles): the server's
    /// --http-listen URL, its --publish location, or a mirror: http(s)://HOST/PREFIX,
    /// file:///DIR or s3://BUCKET/PREFIX.
    #[arg(long, value_name = "URL")]
    tiles: Option<String>,
    /// The S3 endpoint for --tiles s3://… (an http:// endpoint is used as given).
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
    /// The log's verifier key (<origin>+<key id>+<base64>), pinned out of band.
    #[arg(long, value_name = "VKEY")]
    log_key: String,
    /// Print one JSON object per finding, then a summary object, one per line.
    #[arg(long)]
    json: bool,
    /// Skip the DSSE signature checks (everything else is still checked).
    #[arg(long)]
    no_signature_checks: bool,
    /// Where to create the audit's temporary working database (removed at the end); it holds
    /// about 150 bytes per entry [default: the system's temporary directory].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The split-view state file [default: one per log key under
    /// $XDG_CONFIG_HOME/glasslog/checkpoints or ~/.config/glasslog/checkpoints].
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// A predicate type of other in-toto statements this log's operator accepts (as the server's
    /// --extra-predicate-type; repeatable). Other statement types are findings.
    #[arg(long, value_name = "TYPE")]
    extra_predicate_type: Vec<String>,
    /// Worker threads for the per-entry checks [default: the number of CPUs].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Seconds to wait for the server to connect and to answer each request (--server).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
    /// A C2SP tlog-policy file: audit up to the latest checkpoint that carries its quorum of
    /// witness cosignatures, instead of the latest log-signed one.
    #[arg(long, value_name = "FILE")]
    witness_policy: Option<PathBuf>,
}

pub fn run(args: AuditArgs) -> Result<ExitCode, CliError> {
    let mut printer = Printer::new(args.json);
    match audit(&args, &mut printer) {
        Ok(summary) => {
            match args.json {
                true => println!("{}", summary.to_json()),
                false => println!("{}", summary.to_text()),
            }
            Ok(ExitCode::from(if printer.count() == 0 { 0 } else { 1 }))
        }
        Err(e) => {
            printer.error("audit", &e);
            Ok(ExitCode::from(2))
        }
    }
}

fn audit(args: &AuditArgs, printer: &mut Printer) -> Result<audit::Summary, CliError> {
    let verifier = LogVerifier::new(&args.log_key).map_err(|e| format!("--log-key: {e}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let mut trust = TrustState::open(&verifier, args.state.as_deref())?;
    let timeout = Duration::from_secs(args.timeout);
    let source = runtime.block_on(super::open_source(
        args.server.as_deref(),
        args.tiles.as_deref(),
        args.s3_endpoint.as_deref(),
        verifier,
        timeout,
    ))?;
    let (checkpoint, note) = match args.witness_policy.as_deref() {
        None => runtime
            .block_on(source.checkpoint())
            .map_err(|e| format!("cannot get a checkpoint that verifies with --log-key: {e}"))?,
        Some(path) => {
            let policy = super::load_witness_policy(path)?;
            let (checkpoint, note, _) = runtime
                .block_on(source.witnessed_checkpoint(&policy))
                .map_err(|e| format!("cannot get a witnessed checkpoint: {e}"))?;
            (checkpoint, note)
        }
    };
    match runtime.block_on(trust.check_and_update(&source, &checkpoint, &note)) {
        Ok(accepted) => describe_trust(&accepted, &trust, printer.json()),
        Err(TrustError::SplitView(s)) => printer.report(&Finding::split_view(&s))?,
        Err(e) => return Err(e.into()),
    }
    let opts = Options {
        signature_checks: !args.no_signature_checks,
        extra_predicate_types: args.extra_predicate_type.clone(),
        work_dir: args.state_dir.clone().unwrap_or_else(std::env::temp_dir),
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        progress: !args.json && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    // The first failure to write a finding ends the output; the audit runs on to its end.
    let mut written = Ok(());
    let mut report = |f: &Finding| {
        if written.is_ok() {
            written = printer.report(f);
        }
    };
    let mut summary = audit::run(runtime.handle(), &source, &checkpoint, &opts, &mut report)?;
    written?;
    summary.findings = printer.count();
    Ok(summary)
}

/// What the split-view check did, on stderr (stdout carries findings and the summary).
fn describe_trust(accepted: &Accepted, trust: &TrustState, json: bool) {
    if json {
        return;
    }
    let path = trust.path().display();
    match accepted {
        Accepted::FirstUse => eprintln!("split-view state: first use, checkpoint stored in {path}"),
        Accepted::Same => eprintln!("split-view state: same checkpoint as the one stored in {path}"),
        Accepted::Extended { from_size } => {
            eprintln!("split-view state: consistent with the checkpoint of size {from_size} stored in {path}")
        }
        Accepted::Older { stored_size } => eprintln!(
            "split-view state: this checkpoint is a prefix of the one of size {stored_size} stored in {path}"
        ),
    }
}

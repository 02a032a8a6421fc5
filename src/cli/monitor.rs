//! `glasslog monitor`: follow a log, verify it, and report findings as JSON lines on stdout.
//! The log is read from its server (`--server`, Tail) or its tiles (`--tiles`, polled every
//! `--interval`).
//!
//! This file only turns flags into a [`crate::monitor::Config`] and the outcome into an exit
//! code. With `--once`: 0 nothing found, 1 findings (or a log that fails verification because of
//! a finding reported before). Following: 0 when stopped by SIGINT or SIGTERM. Always 2 when the
//! monitor could not do its job (state, store, stdout; a server unreachable with `--once`). See
//! `docs/monitor.md`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::CliError;
use crate::admission::declaration::Name;
use crate::bucket::S3Options;
use crate::monitor::{self, Config, ExamineOptions, Location};
use crate::tlog::note::LogVerifier;

#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["server", "tiles"])))]
pub struct MonitorArgs {
    /// The log server's URL, e.g. http://127.0.0.1:50051 (followed with Tail).
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Follow the log from its tiles instead of its server (C2SP tlog-tiles): the server's
    /// --http-listen URL, its --publish location, or a mirror: http(s)://HOST/PREFIX,
    /// file:///DIR or s3://BUCKET/PREFIX. The checkpoint is read every --interval.
    #[arg(long, value_name = "URL")]
    tiles: Option<String>,
    /// With --tiles: seconds between two reads of the checkpoint [default: 5].
    #[arg(long, value_name = "SECONDS")]
    interval: Option<u64>,
    /// The S3 endpoint for --tiles s3://… (an http:// endpoint is used as given).
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
    /// The log's verifier key (<origin>+<key id>+<base64>), pinned out of band.
    #[arg(long, value_name = "VKEY")]
    log_key: String,
    /// The state file (created on first run); a database FILE.db is kept beside it.
    #[arg(long, value_name = "FILE")]
    state: PathBuf,
    /// Report findings about publishers only for these model or dataset names (repeatable,
    /// or several after one flag). Findings about the log itself are always reported.
    #[arg(long, value_name = "NAME", num_args = 1..)]
    watch: Vec<String>,
    /// Catch up to the latest checkpoint, report, and exit: 0 if nothing was found, 1 if
    /// something was, 2 on error.
    #[arg(long)]
    once: bool,
    /// Run this shell command (sh -c) for each finding, with the finding's JSON line on stdin.
    #[arg(long, value_name = "CMD")]
    exec: Option<String>,
    /// A releaseTime more than this many days before the entry was logged is backdating.
    #[arg(long, value_name = "DAYS", default_value_t = monitor::DEFAULT_BACKDATE_WINDOW_DAYS)]
    backdate_window: u32,
    /// An in-toto predicate type the log accepts without declaration checks (repeat the log's
    /// --extra-predicate-type flags); entries of other types are invalid entries.
    #[arg(long = "extra-predicate-type", value_name = "URI")]
    extra_predicate_types: Vec<String>,
    /// The split-view state shared with submit, verify and audit, which the monitor checks its
    /// verified checkpoints against and updates [default: one per log key under
    /// $XDG_CONFIG_HOME/glasslog/checkpoints or ~/.config/glasslog/checkpoints].
    #[arg(long, value_name = "FILE")]
    split_view_state: Option<PathBuf>,
    /// Skip DSSE signature verification of entries (envelopes, keys and declarations are still
    /// checked): for measuring, or for a second monitor that trusts a first one.
    #[arg(long)]
    no_signature_checks: bool,
    /// A C2SP tlog-policy file: check every witnessed checkpoint the log announces against its
    /// quorum (`not-witnessed`), and report a witnessed checkpoint inconsistent with the
    /// verified log as `witness-equivocation`.
    #[arg(long, value_name = "FILE")]
    witness_policy: Option<PathBuf>,
}

pub fn run(args: MonitorArgs) -> Result<ExitCode, CliError> {
    let config = config(args)?;
    let once = config.once;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async {
        if once {
            // An interrupted --once has not caught up and must not exit 0 or 1: SIGINT and
            // SIGTERM keep their default action and end the process.
            monitor::run(config, std::future::pending()).await
        } else {
            monitor::run(config, super::shutdown_signal()).await
        }
    });
    match outcome {
        Ok(s) if once && (s.reported > 0 || s.blocked) => Ok(ExitCode::from(1)),
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("glasslog: {e}");
            Ok(ExitCode::from(2))
        }
    }
}

fn config(args: MonitorArgs) -> Result<Config, CliError> {
    let verifier = LogVerifier::new(&args.log_key).map_err(|e| format!("--log-key: {e}"))?;
    let mut watch = BTreeSet::new();
    for name in args.watch {
        name.parse::<Name>()
            .map_err(|e| format!("--watch {name:?}: {e}"))?;
        watch.insert(name);
    }
    let location = match (args.server, args.tiles) {
        (Some(_), None) if args.interval.is_some() || args.s3_endpoint.is_some() => {
            return Err("--interval and --s3-endpoint go with --tiles, not --server".into())
        }
        (Some(url), None) => Location::Server(url),
        (None, Some(url)) => {
            let interval = args.interval.unwrap_or(monitor::DEFAULT_POLL_INTERVAL_SECS);
            if interval == 0 {
                return Err("--interval must be at least 1 second".into());
            }
            Location::Tiles {
                url,
                s3: S3Options {
                    endpoint: args.s3_endpoint,
                },
                interval: std::time::Duration::from_secs(interval),
            }
        }
        _ => return Err("give one of --server URL and --tiles URL".into()),
    };
    Ok(Config {
        location,
        verifier,
        state_path: args.state,
        watch,
        once: args.once,
        exec: args.exec,
        backdate_window_ms: i64::from(args.backdate_window) * 86_400_000,
        examine: ExamineOptions {
            check_signatures: !args.no_signature_checks,
            extra_predicate_types: args.extra_predicate_types,
        },
        split_view_state: args.split_view_state,
        witness_policy: args
            .witness_policy
            .as_deref()
            .map(super::load_witness_policy)
            .transpose()?
            .map(std::sync::Arc::new),
    })
}

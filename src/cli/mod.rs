//! The `glasslog` command line. Each subcommand lives in its own file; this one parses the
//! arguments, sets up logging and dispatches.

mod audit;
mod backup;
mod bench;
mod declare;
mod keygen;
mod monitor;
mod reindex;
mod restore;
mod serve;
mod submit;
mod verify;
mod witness;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// glasslog: a transparency log for AI model releases and training-data declarations.
#[derive(Parser, Debug)]
#[command(name = "glasslog", version, about, long_about = None)]
pub struct Cli {
    /// Log output format (logs go to stderr).
    #[arg(long, value_enum, default_value_t = LogFormat::Auto, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable with colours on a terminal, plain otherwise.
    Auto,
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // one value per process
pub enum Command {
    /// Run the log server (creates the data directory and log key on first start).
    Serve(serve::ServeArgs),
    /// Load-test a running server: submit pre-signed envelopes, verify every reply, report.
    Bench(bench::BenchArgs),
    /// Make a publisher key pair: a PKCS#8 PEM private key and its public key beside it.
    Keygen(keygen::KeygenArgs),
    /// Hash a model or dataset directory and write a signed declaration (nothing is sent).
    Declare(declare::DeclareArgs),
    /// Submit a signed declaration to a log, verify the answer and write a proof bundle.
    Submit(submit::SubmitArgs),
    /// Rebuild the search index from the log's entries (with the server stopped).
    Reindex(reindex::ReindexArgs),
    /// Rebuild a log's database from its published tiles (s3://, file:// or http(s)://),
    /// checking every bundle and tile against the signed checkpoint, or from a backup
    /// (`--backup DIR`), checking every checkpoint, hash and index row.
    Restore(restore::RestoreArgs),
    /// Back up a log's database (from the running server, without stopping it) into a new
    /// directory; `restore --backup` verifies and restores it.
    Backup(backup::BackupArgs),
    /// Follow a log, verify it and report findings about it and its publishers (JSON lines).
    Monitor(monitor::MonitorArgs),
    /// Check that a directory is what the log says was released under a name (or check a proof
    /// bundle offline).
    Verify(verify::VerifyArgs),
    /// Check a whole log: Merkle root, every entry's admission checks, references; a summary.
    Audit(audit::AuditArgs),
    /// Run a C2SP tlog-witness: cosign the checkpoints of the logs given, once they are
    /// consistent with what it cosigned before (HTTP, POST /add-checkpoint).
    Witness(witness::WitnessArgs),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Declare(args) => declare::run(args),
        Command::Submit(args) => submit::run(args),
        Command::Reindex(args) => reindex::run(args),
        Command::Restore(args) => restore::run(args),
        Command::Backup(args) => backup::run(args),
        Command::Monitor(args) => monitor::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Witness(args) => witness::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("glasslog: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("GLASSLOG_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_ansi(false).init(),
        LogFormat::Auto => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

/// A boxed error for the command line's top level, where every layer's error ends up printed.
pub type CliError = Box<dyn std::error::Error + Send + Sync>;

/// Reads the C2SP tlog-policy file of `--witness-policy`.
pub(crate) fn load_witness_policy(
    path: &std::path::Path,
) -> Result<crate::tlog::policy::WitnessPolicy, CliError> {
    let text =
        std::fs::read(path).map_err(|e| format!("--witness-policy {}: {e}", path.display()))?;
    crate::tlog::policy::WitnessPolicy::parse(&text)
        .map_err(|e| format!("--witness-policy {}: {e}", path.display()).into())
}

/// The log a checking command reads: its server (`--server URL`, connected with `timeout` on
/// connecting and on each call) or its tiles (`--tiles URL`: `s3://`, `file:///`,
/// `http(s)://`; `s3_endpoint` for `s3://`). Exactly one must be given (clap's argument group
/// sees to it).
pub(crate) async fn open_source(
    server: Option<&str>,
    tiles: Option<&str>,
    s3_endpoint: Option<&str>,
    verifier: crate::tlog::note::LogVerifier,
    timeout: std::time::Duration,
) -> Result<crate::client::source::Source, CliError> {
    use crate::client::source::Source;
    match (server, tiles) {
        (Some(_), None) if s3_endpoint.is_some() => {
            Err("--s3-endpoint goes with --tiles s3://…, not --server".into())
        }
        (Some(server), None) => Ok(Source::Server(
            verify::connect(server, verifier, timeout).await?,
        )),
        (None, Some(url)) => {
            let s3 = crate::bucket::S3Options {
                endpoint: s3_endpoint.map(str::to_string),
            };
            let tiles = crate::client::tiles::TileClient::open(url, &s3, verifier)
                .map_err(|e| format!("--tiles: {e}"))?;
            Ok(Source::Tiles(tiles))
        }
        _ => Err("give one of --server URL and --tiles URL".into()),
    }
}

/// The length of the leaf a log would write for `admitted` (`envelope_len` bytes of envelope)
/// if it logged it now: the log's clock is part of the leaf, but its encoding is 6 bytes for every
/// time from 1971 to 2109, so when the log actually logs it does not matter.
pub(crate) fn leaf_len_now(admitted: &crate::admission::Admitted, envelope_len: usize) -> usize {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    admitted.leaf_len(envelope_len, now_ms)
}

/// Completes on the first SIGINT (ctrl-c) or SIGTERM: the shutdown signal that `serve` and a
/// following `monitor` stop on. Without a SIGTERM handler, only SIGINT.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

//! `glasslog witness`: run a C2SP tlog-witness for the logs given, until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use serde::Deserialize;

use super::CliError;
use crate::tlog::note::LogVerifier;
use crate::witness::check::TrustedLogs;
use crate::witness::{Witness, WitnessConfig};

#[derive(Args, Debug)]
pub struct WitnessArgs {
    /// TOML config file: `data_dir`, `listen`, `name`, `logs = ["<vkey>", ...]`; flags override
    /// it and --log adds to its logs.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory: the witness key and its record of each log [default: ./glasslog-witness].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address of the HTTP listener; port 0 picks a free port [default: 127.0.0.1:7380].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The witness's key name, set on first start (e.g. witness.example.org/w1) [default:
    /// <host name>/witness].
    #[arg(long)]
    name: Option<String>,
    /// A log to witness, by its C2SP verifier key (its origin is the key name; repeatable).
    #[arg(long = "log", value_name = "VKEY")]
    logs: Vec<String>,
}

/// The config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WitnessFile {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    name: Option<String>,
    #[serde(default)]
    logs: Vec<String>,
}

pub fn run(args: WitnessArgs) -> Result<ExitCode, CliError> {
    let file: WitnessFile = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => WitnessFile::default(),
    };
    let mut logs = TrustedLogs::default();
    for vkey in file.logs.iter().chain(&args.logs) {
        let log = LogVerifier::new(vkey).map_err(|e| format!("--log {vkey}: {e}"))?;
        logs.add(log);
    }
    let config = WitnessConfig {
        data_dir: args
            .data_dir
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("glasslog-witness")),
        name: args.name.or(file.name),
        logs,
    };
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 7380)));
    let witness = Arc::new(Witness::open(config)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        println!("witness key: {}", witness.verifier_key());
        println!("listening on {addr}");
        tracing::info!(key = %witness.verifier_key(), %addr, logs = witness.logs().len(), "witnessing");
        crate::witness::http::serve(witness, listener, super::shutdown_signal()).await
    })?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

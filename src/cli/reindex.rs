//! `glasslog reindex`: rebuilds the search index from the log's entries, in the layout this
//! glasslog reads; it also migrates a store of an older search layout (schema version 1). Run
//! it with the server stopped (RocksDB's lock refuses a second opener). Crash-safe: if the run
//! is interrupted, the server refuses the store until a new run finishes
//! ([`crate::server::rebuild::reindex`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::CliError;
use crate::server::rebuild::{reindex, ReindexEvent};
use crate::server::storage::Store;

#[derive(Args, Debug)]
pub struct ReindexArgs {
    /// The server's data directory.
    #[arg(long, default_value = crate::server::config::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

/// Entries read and re-indexed per RocksDB batch: at most 64 MiB of leaves in memory.
const CHUNK: u64 = 1_000;

pub fn run(args: ReindexArgs) -> Result<ExitCode, CliError> {
    let store = Store::open_for_reindex(&crate::server::config::database_path(&args.data_dir))
        .map_err(|e| {
            format!(
                "cannot open the log at {} (is the server still running?): {e}",
                args.data_dir.display()
            )
        })?;
    let done = reindex(&store, CHUNK, |event| match event {
        ReindexEvent::Progress { done, size } => eprintln!("reindexed {done} of {size} entries"),
        ReindexEvent::KeysOnly { index, why } => eprintln!(
            "warning: entry {index} is indexed under its publisher keys only: today's \
             admission refuses it ({why})"
        ),
    })
    .map_err(|e| format!("reindex: {e}"))?;
    println!(
        "rebuilt the search index: {} entries, {} index keys",
        done.entries, done.index_keys
    );
    Ok(ExitCode::SUCCESS)
}

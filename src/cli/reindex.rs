//! `glasslog reindex`: rebuilds the search index from the log's entries. Run it with the server
//! stopped (RocksDB's lock refuses a second opener). The index is cleared first and rewritten in
//! batches; if the run is interrupted, run it again.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::CliError;
use crate::server::rebuild::{leaf_keys, KeyIds};
use crate::server::storage::Store;

#[derive(Args, Debug)]
pub struct ReindexArgs {
    /// The server's data directory.
    #[arg(long, default_value = crate::server::config::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

/// Entries read and re-indexed per RocksDB batch.
const CHUNK: u64 = 10_000;

pub fn run(args: ReindexArgs) -> Result<ExitCode, CliError> {
    let store =
        Store::open(&crate::server::config::database_path(&args.data_dir)).map_err(|e| {
            format!(
                "cannot open the log at {} (is the server still running?): {e}",
                args.data_dir.display()
            )
        })?;
    let size = store.latest_checkpoint()?.map_or(0, |c| c.size);
    let mut clear = store.batch();
    clear.clear_search();
    store.commit(clear)?;
    let mut index_keys = 0usize;
    let mut keys = KeyIds::default();
    let mut start = 0;
    while start < size {
        let mut batch = store.batch();
        for (index, leaf) in store.entries(start, (start + CHUNK).min(size), usize::MAX)? {
            let prefixes = leaf_keys(&leaf, &mut keys)
                .map_err(|e| format!("entry {index}: {e}"))?
                .search_prefixes;
            for p in &prefixes {
                batch.put_search(p, index);
            }
            index_keys += prefixes.len();
        }
        store.commit(batch)?;
        start += CHUNK;
        eprintln!("reindexed {} of {size} entries", start.min(size));
    }
    println!("rebuilt the search index: {size} entries, {index_keys} index keys");
    Ok(ExitCode::SUCCESS)
}

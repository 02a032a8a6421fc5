//! `glasslog backup`: a consistent backup of a log's database, taken by the running server
//! through its admin socket ([`crate::server::admin`]) without stopping it, or taken here when
//! no server runs on the data directory ([`crate::backup`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::CliError;
use crate::backup::{self, Manifest};
use crate::server::admin::{self, Request, Response};
use crate::server::config::database_path;
use crate::server::storage::Store;

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The server's data directory.
    #[arg(long, default_value = crate::server::config::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// The backup directory to create (it must not exist; it is created 0700).
    #[arg(long, value_name = "OUT")]
    to: PathBuf,
    /// Copy the log's secret key (log.key, 0600) into the backup too. Without it the backup
    /// holds no secret, and the key must be kept elsewhere: a log cannot continue without it.
    #[arg(long)]
    with_key: bool,
}

pub fn run(args: BackupArgs) -> Result<ExitCode, CliError> {
    // The server resolves paths against its own working directory: send an absolute one.
    let to = std::path::absolute(&args.to)?;
    if to.exists() {
        return Err(format!("{} exists: a backup goes to a new directory", to.display()).into());
    }
    let started = std::time::Instant::now();
    let request = Request::Backup {
        to: to.clone(),
        with_key: args.with_key,
    };
    let (manifest, by) = match admin::request(&args.data_dir, &request)? {
        Some(Response::Backup(manifest)) => (manifest, "the running server"),
        Some(Response::Error(e)) => return Err(format!("the server refused: {e}").into()),
        None => (
            offline(&args.data_dir, &to, args.with_key)?,
            "this process (no server was running)",
        ),
    };
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "backed up {} entries (root {}) of {} into {} in {seconds:.2} s ({} bytes), taken by {by}",
        manifest.tree_size,
        manifest.root,
        manifest.origin,
        to.display(),
        Store::disk_usage(&database_path(&to)),
    );
    println!("verifier key: {}", manifest.verifier_key);
    if manifest.log_key_included {
        println!(
            "the backup holds the log's secret key (log.key, 0600): guard it as you guard the key"
        );
    } else {
        println!(
            "the log key (log.key) is NOT in the backup: it is secret; keep a copy of it elsewhere \
             (or use --with-key), a restored log cannot continue without it"
        );
    }
    println!(
        "restore: glasslog restore --backup {} --data-dir NEW --log-key '{}'",
        to.display(),
        manifest.verifier_key
    );
    Ok(ExitCode::SUCCESS)
}

/// Takes the backup with the store opened here: RocksDB's lock refuses it if a server (one
/// without an admin socket) has the database open.
fn offline(data_dir: &Path, to: &Path, with_key: bool) -> Result<Manifest, CliError> {
    let db = database_path(data_dir);
    if !db.exists() {
        return Err(format!("{}: no log database here", db.display()).into());
    }
    let store = Store::open(&db).map_err(|e| {
        format!(
            "no server answered on {}, and the database cannot be opened (is a server without \
             an admin socket running?): {e}",
            admin::socket_path(data_dir).display()
        )
    })?;
    Ok(backup::take(&store, data_dir, to, with_key)?)
}

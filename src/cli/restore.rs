//! `glasslog restore`: rebuilds a log's database from its published tiles, or copies it from a
//! backup, verified either way ([`crate::restore`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::CliError;
use crate::bucket::S3Options;
use crate::restore::{restore, restore_backup, BackupRestoreOptions, RestoreOptions, Restored};

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The published log: s3://BUCKET/PREFIX, file:///DIR or http(s)://HOST/PREFIX.
    #[arg(
        long,
        value_name = "URL",
        required_unless_present = "backup",
        conflicts_with = "backup"
    )]
    from: Option<String>,
    /// A backup directory written by `glasslog backup --to` (instead of --from).
    #[arg(long, value_name = "DIR")]
    backup: Option<PathBuf>,
    /// The S3 endpoint for s3:// (an http:// endpoint is used as given).
    #[arg(long, value_name = "URL", conflicts_with = "backup")]
    s3_endpoint: Option<String>,
    /// The data directory to restore into; it must not hold a database yet.
    #[arg(long)]
    data_dir: PathBuf,
    /// The log's verifier key (C2SP signed-note form, as `serve` prints it): the published
    /// checkpoint, or every checkpoint in the backup, must verify under it.
    #[arg(long, value_name = "VKEY")]
    log_key: String,
}

pub fn run(args: RestoreArgs) -> Result<ExitCode, CliError> {
    let mut last = std::time::Instant::now();
    let progress = |what: &str, done: u64, total: u64| {
        if last.elapsed().as_secs() >= 2 && done < total {
            eprintln!("{what} {done} of {total} entries");
            last = std::time::Instant::now();
        }
    };
    let data_dir = args.data_dir.clone();
    let (restored, checked) = match (args.from, args.backup) {
        (Some(from), None) => {
            let opts = RestoreOptions {
                from,
                s3: S3Options {
                    endpoint: args.s3_endpoint,
                },
                data_dir: args.data_dir,
                log_key: args.log_key,
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let mut progress = progress;
            let restored = runtime.block_on(restore(&opts, |done, total| {
                progress("restored", done, total)
            }))?;
            (
                restored,
                "every bundle and tile checked against the signed checkpoint",
            )
        }
        (None, Some(backup)) => {
            let opts = BackupRestoreOptions {
                backup,
                data_dir: args.data_dir,
                log_key: args.log_key,
            };
            let mut progress = progress;
            let restored = restore_backup(&opts, |done, total| progress("verified", done, total))?;
            (
                restored,
                "every checkpoint's signature and root, every stored hash and index row checked",
            )
        }
        _ => return Err("give one of --from URL and --backup DIR".into()),
    };
    report(&restored, &data_dir, checked);
    Ok(ExitCode::SUCCESS)
}

fn report(restored: &Restored, data_dir: &std::path::Path, checked: &str) {
    let cp = &restored.checkpoint;
    println!(
        "restored {} entries (root {}) into {} in {:.1} s ({:.0} entries/s); {checked}",
        cp.size,
        cp.root,
        data_dir.display(),
        restored.seconds,
        cp.size as f64 / restored.seconds.max(1e-9),
    );
    if restored.key_copied {
        println!("copied the log key (log.key, 0600) from the backup");
    }
    if !restored.key_present {
        println!(
            "next: copy the log's key file (log.key, from your backup) into {}, then run `glasslog serve --data-dir {}`",
            data_dir.display(),
            data_dir.display()
        );
    } else {
        println!(
            "next: run `glasslog serve --data-dir {}`",
            data_dir.display()
        );
    }
}

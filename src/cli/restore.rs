//! `glasslog restore`: rebuilds a log's database from its published tiles ([`crate::restore`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::CliError;
use crate::bucket::S3Options;
use crate::restore::{restore, RestoreOptions};

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The published log: s3://BUCKET/PREFIX, file:///DIR or http(s)://HOST/PREFIX.
    #[arg(long, value_name = "URL")]
    from: String,
    /// The S3 endpoint for s3:// (an http:// endpoint is used as given).
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
    /// The data directory to restore into; it must not hold a database yet.
    #[arg(long)]
    data_dir: PathBuf,
    /// The log's verifier key (C2SP signed-note form, as `serve` prints it): the published
    /// checkpoint must verify under it.
    #[arg(long, value_name = "VKEY")]
    log_key: String,
}

pub fn run(args: RestoreArgs) -> Result<ExitCode, CliError> {
    let opts = RestoreOptions {
        from: args.from,
        s3: S3Options {
            endpoint: args.s3_endpoint,
        },
        data_dir: args.data_dir,
        log_key: args.log_key,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut last = std::time::Instant::now();
    let restored = runtime.block_on(restore(&opts, |done, total| {
        if last.elapsed().as_secs() >= 2 && done < total {
            eprintln!("restored {done} of {total} entries");
            last = std::time::Instant::now();
        }
    }))?;
    let cp = &restored.checkpoint;
    println!(
        "restored {} entries (root {}) into {} in {:.1} s ({:.0} entries/s); every bundle and tile checked against the signed checkpoint",
        cp.size,
        cp.root,
        opts.data_dir.display(),
        restored.seconds,
        cp.size as f64 / restored.seconds.max(1e-9),
    );
    if !restored.key_present {
        println!(
            "next: copy the log's key file (log.key, from your backup) into {}, then run `glasslog serve --data-dir {}`",
            opts.data_dir.display(),
            opts.data_dir.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

//! `glasslog keygen`: make a publisher key pair.
//!
//! Writes the private key as unencrypted PKCS#8 PEM to `--out` (created with mode 0600; an
//! existing file is never overwritten) and the public key as PEM SubjectPublicKeyInfo to
//! `<out>.pub`, then prints the key id (SHA-256 of the public key's DER, as the log shows it).
//!
//! It is not a key store: the private key is not encrypted, so keep the file on a disk you trust
//! (or move it to your secret manager) and never commit it.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::CliError;
use crate::admission::keys::{KeyType, PrivateKey};

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// File to write the private key to (PKCS#8 PEM, mode 0600); the public key goes to
    /// FILE.pub. Neither file may exist already.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Signature scheme of the key.
    #[arg(long = "type", value_name = "TYPE", value_enum, default_value_t = KeyKind::Ed25519)]
    key_type: KeyKind,
}

/// A signature scheme on the command line (`--type` here, `--key-type` in `bench`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub(super) enum KeyKind {
    /// Ed25519 (RFC 8032).
    Ed25519,
    /// ECDSA over NIST P-256 with SHA-256.
    P256,
}

impl From<KeyKind> for KeyType {
    fn from(k: KeyKind) -> KeyType {
        match k {
            KeyKind::Ed25519 => KeyType::Ed25519,
            KeyKind::P256 => KeyType::P256,
        }
    }
}

/// `FILE.pub`: the public key's file beside the private key's `FILE`.
pub fn public_key_path(private: &Path) -> PathBuf {
    crate::files::with_suffix(private, ".pub")
}

pub fn run(args: KeygenArgs) -> Result<ExitCode, CliError> {
    let pub_path = public_key_path(&args.out);
    for path in [&args.out, &pub_path] {
        if path.exists() {
            return Err(format!(
                "{} already exists; keygen never overwrites a key (choose another --out)",
                path.display()
            )
            .into());
        }
    }
    let key = PrivateKey::generate(args.key_type.into());
    let public = key.public_key();
    write_new(&args.out, key.to_pkcs8_pem().as_bytes(), 0o600)?;
    if let Err(e) = write_new(&pub_path, public.to_pem().as_bytes(), 0o644) {
        // Do not leave half a key pair behind: the private key file is ours, made just now.
        let _ = std::fs::remove_file(&args.out);
        return Err(e);
    }
    eprintln!(
        "wrote the {} private key to {} (unencrypted: keep it secret) and its public key to {}",
        args.key_type
            .to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default(),
        args.out.display(),
        pub_path.display()
    );
    println!("{}", public.key_id());
    Ok(ExitCode::SUCCESS)
}

/// Creates `path` (which must not exist) with `mode` and writes `data` to disk.
pub fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<(), CliError> {
    let context = |e: std::io::Error| -> CliError {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!("{} already exists; it is never overwritten", path.display()).into()
        } else {
            format!("cannot write {}: {e}", path.display()).into()
        }
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(context)?;
    file.write_all(data).map_err(context)?;
    file.sync_all().map_err(context)?;
    Ok(())
}

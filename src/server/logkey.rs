//! The log's identity: its Ed25519 signing key and origin, kept in `DATA_DIR/log.key`.
//!
//! The key file holds the key in the C2SP signed-note private key encoding
//! (`PRIVATE+KEY+<origin>+<key id>+<base64>`), so the origin, which is the key name, is stored
//! with the key and fixed from the first start: every verifier pins both.
//!
//! Invariants:
//! - the key file is created with mode 0600 (never readable by others, not even briefly: it is
//!   written to a new 0600 file and renamed), and a key file readable by group or others is
//!   refused at start;
//! - the file and its directory are fsynced before [`open_or_create`] returns, so no checkpoint
//!   is ever signed with a key that a crash could lose.

use std::fs::{self, File};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::files::{self, FileError};
use crate::tlog::checkpoint::Origin;
use crate::tlog::note::LogSigner;

/// The key file's name inside the data directory.
pub const KEY_FILE: &str = "log.key";

/// Errors opening or creating the log's identity.
#[derive(Debug, thiserror::Error)]
pub enum LogKeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "key file {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("key file {path} is not a signed-note private key: {reason}")]
    Malformed { path: PathBuf, reason: String },
    #[error(
        "this log's origin is {existing:?} (fixed at first start, and pinned by every verifier); \
         refusing to start with --origin {requested:?}"
    )]
    OriginChanged { existing: String, requested: String },
    #[error("invalid origin: {0}")]
    Origin(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogKeyError + '_ {
    move |source| LogKeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens the log key in `data_dir`, or creates the directory and a new key on first start.
/// `origin` is required to match on later starts; on first start it defaults to
/// `<host name>/glasslog`.
///
/// # Errors
/// I/O errors, a key file with loose permissions or bad contents, or a changed origin.
pub fn open_or_create(data_dir: &Path, origin: Option<&str>) -> Result<LogSigner, LogKeyError> {
    let path = data_dir.join(KEY_FILE);
    if path.exists() {
        return open(&path, origin);
    }
    let origin = match origin {
        Some(o) => Origin::new(o),
        None => Origin::from_hostname(&hostname()),
    }
    .map_err(|e| LogKeyError::Origin(e.to_string()))?;
    create_dir_private(data_dir)?;
    let signer = LogSigner::generate(&origin);
    let contents = format!("{}\n", signer.to_skey());
    files::write_atomically(&path, contents.as_bytes(), 0o600)
        .map_err(|FileError { path, source }| LogKeyError::Io { path, source })?;
    Ok(signer)
}

fn open(path: &Path, origin: Option<&str>) -> Result<LogSigner, LogKeyError> {
    let mode = fs::metadata(path).map_err(io(path))?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(LogKeyError::Permissions {
            path: path.into(),
            mode: mode & 0o7777,
        });
    }
    let text = fs::read_to_string(path).map_err(io(path))?;
    let signer = LogSigner::from_skey(text.trim_end()).map_err(|e| LogKeyError::Malformed {
        path: path.into(),
        reason: e.to_string(),
    })?;
    if let Some(requested) = origin {
        if requested != signer.origin() {
            return Err(LogKeyError::OriginChanged {
                existing: signer.origin().to_string(),
                requested: requested.to_string(),
            });
        }
    }
    Ok(signer)
}

fn create_dir_private(dir: &Path) -> Result<(), LogKeyError> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io(dir))?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(parent)
                .and_then(|d| d.sync_all())
                .map_err(io(parent))?;
        }
    }
    Ok(())
}

/// The machine's host name, for the default origin.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if rc == 0 && len > 0 {
        String::from_utf8_lossy(&buf[..len]).into_owned()
    } else {
        "localhost".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let a = open_or_create(&data, Some("example.org/log")).unwrap();
        let mode = fs::metadata(data.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = open_or_create(&data, None).unwrap();
        assert_eq!(a.verifier_key(), b.verifier_key());
        let c = open_or_create(&data, Some("example.org/log")).unwrap();
        assert_eq!(a.verifier_key(), c.verifier_key());
    }

    #[test]
    fn changed_origin_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        open_or_create(dir.path(), Some("example.org/log")).unwrap();
        let err = open_or_create(dir.path(), Some("example.org/other")).unwrap_err();
        assert!(matches!(err, LogKeyError::OriginChanged { .. }), "{err}");
    }

    #[test]
    fn readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        open_or_create(dir.path(), Some("example.org/log")).unwrap();
        let path = dir.path().join(KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = open_or_create(dir.path(), None).unwrap_err();
        assert!(
            matches!(err, LogKeyError::Permissions { mode: 0o644, .. }),
            "{err}"
        );
    }

    #[test]
    fn bad_origin_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [
            "https://example.org/log",
            "example.org/log/",
            "a b",
            "a+b",
            "",
        ] {
            assert!(
                open_or_create(&dir.path().join("x"), Some(bad)).is_err(),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn default_origin_comes_from_the_host_name() {
        let dir = tempfile::tempdir().unwrap();
        let signer = open_or_create(dir.path(), None).unwrap();
        assert!(
            signer.origin().ends_with("/glasslog"),
            "{}",
            signer.origin()
        );
    }
}

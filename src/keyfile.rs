//! Secret keys kept in a data directory, in the signed-note private key encoding
//! (`PRIVATE+KEY+<name>+<key id>+<base64>`): the log's checkpoint key
//! ([`crate::server::logkey`]) and a witness's cosigning key ([`crate::witness`]). The key name
//! (a log's origin, a witness's name) is stored with the key and fixed from the first start:
//! verifiers pin both.
//!
//! Invariants:
//! - a key file is created with mode 0600 (never readable by others, not even briefly: it is
//!   written to a new 0600 file and renamed), and a key file readable by group or others is
//!   refused;
//! - the file and its directory are fsynced before [`open_or_create`] returns, so nothing is
//!   ever signed with a key that a crash could lose.

use std::fs::{self, File};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::files::{self, FileError};

/// A key stored in a key file.
pub trait StoredKey: Sized {
    /// Whose key, for messages: "log", "witness".
    const OWNER: &'static str;
    /// What its key name is called, for messages: "origin", "name".
    const NAME_WORD: &'static str;
    /// The command-line flag that sets the name.
    const NAME_FLAG: &'static str;

    /// A new key named `name`.
    ///
    /// # Errors
    /// Why `name` cannot name this key.
    fn generate(name: &str) -> Result<Self, String>;
    /// Reads the private key encoding.
    ///
    /// # Errors
    /// Why it does not read (never echoing the key).
    fn from_skey(skey: &str) -> Result<Self, String>;
    /// The private key encoding.
    fn to_skey(&self) -> String;
    /// The key name.
    fn name(&self) -> &str;
}

/// Errors opening or creating a key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
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
        "this {owner}'s {word} is {existing:?} (fixed at first start, and pinned by every \
         verifier); refusing to start with {flag} {requested:?}"
    )]
    NameChanged {
        owner: &'static str,
        word: &'static str,
        flag: &'static str,
        existing: String,
        requested: String,
    },
    #[error("invalid {word}: {reason}")]
    InvalidName { word: &'static str, reason: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyFileError + '_ {
    move |source| KeyFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Opens the key at `path`, or creates its directory (0700) and a new key named `name` (or
/// `default_name()`, or its error) on first start. A `name` given on later starts must match the
/// stored one.
///
/// # Errors
/// I/O errors, a key file with loose permissions or bad contents, an invalid or changed name.
pub fn open_or_create<K: StoredKey>(
    path: &Path,
    name: Option<&str>,
    default_name: impl FnOnce() -> Result<String, String>,
) -> Result<K, KeyFileError> {
    if path.exists() {
        return open(path, name);
    }
    let invalid = |reason| KeyFileError::InvalidName {
        word: K::NAME_WORD,
        reason,
    };
    let name = match name {
        Some(name) => name.to_string(),
        None => default_name().map_err(invalid)?,
    };
    let key = K::generate(&name).map_err(invalid)?;
    create_dir_private(files::parent_dir(path))?;
    let contents = format!("{}\n", key.to_skey());
    files::write_atomically(path, contents.as_bytes(), 0o600)
        .map_err(|FileError { path, source }| KeyFileError::Io { path, source })?;
    Ok(key)
}

/// Opens an existing key file (permissions and contents checked as at start).
///
/// # Errors
/// As [`open_or_create`].
pub fn open_existing<K: StoredKey>(path: &Path) -> Result<K, KeyFileError> {
    open(path, None)
}

fn open<K: StoredKey>(path: &Path, name: Option<&str>) -> Result<K, KeyFileError> {
    let mode = fs::metadata(path).map_err(io(path))?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions {
            path: path.into(),
            mode: mode & 0o7777,
        });
    }
    let text = fs::read_to_string(path).map_err(io(path))?;
    let key = K::from_skey(text.trim_end()).map_err(|reason| KeyFileError::Malformed {
        path: path.into(),
        reason,
    })?;
    if let Some(requested) = name {
        if requested != key.name() {
            return Err(KeyFileError::NameChanged {
                owner: K::OWNER,
                word: K::NAME_WORD,
                flag: K::NAME_FLAG,
                existing: key.name().to_string(),
                requested: requested.to_string(),
            });
        }
    }
    Ok(key)
}

/// Creates `dir` (and its parents) readable by its owner only, if it does not exist.
///
/// # Errors
/// I/O errors.
pub fn create_dir_private(dir: &Path) -> Result<(), KeyFileError> {
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

/// The machine's host name, for default key names.
pub fn hostname() -> String {
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

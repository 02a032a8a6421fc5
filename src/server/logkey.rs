//! The log's identity: its Ed25519 signing key and origin, kept in `DATA_DIR/log.key` (a
//! [`crate::keyfile`]: created 0600 and fsynced on first start, refused if readable by others).
//! The origin is the key name, so it is stored with the key and fixed from the first start.

use std::path::Path;

use crate::keyfile::{self, KeyFileError, StoredKey};
use crate::tlog::checkpoint::Origin;
use crate::tlog::note::LogSigner;

/// The key file's name inside the data directory.
pub const KEY_FILE: &str = "log.key";

impl StoredKey for LogSigner {
    const OWNER: &'static str = "log";
    const NAME_WORD: &'static str = "origin";
    const NAME_FLAG: &'static str = "--origin";

    fn generate(name: &str) -> Result<Self, String> {
        let origin = Origin::new(name).map_err(|e| e.to_string())?;
        Ok(LogSigner::generate(&origin))
    }

    fn from_skey(skey: &str) -> Result<Self, String> {
        LogSigner::from_skey(skey).map_err(|e| e.to_string())
    }

    fn to_skey(&self) -> String {
        LogSigner::to_skey(self)
    }

    fn name(&self) -> &str {
        self.origin()
    }
}

/// Opens the log key in `data_dir`, or creates the directory and a new key on first start.
/// `origin` is required to match on later starts; on first start it defaults to
/// `<host name>/glasslog`.
///
/// # Errors
/// I/O errors, a key file with loose permissions or bad contents, or a changed origin.
pub fn open_or_create(data_dir: &Path, origin: Option<&str>) -> Result<LogSigner, KeyFileError> {
    keyfile::open_or_create(&data_dir.join(KEY_FILE), origin, || {
        Origin::from_hostname(&keyfile::hostname())
            .map(|o| o.as_str().to_string())
            .map_err(|e| e.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

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
        assert!(matches!(err, KeyFileError::NameChanged { .. }), "{err}");
    }

    #[test]
    fn readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        open_or_create(dir.path(), Some("example.org/log")).unwrap();
        let path = dir.path().join(KEY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = open_or_create(dir.path(), None).unwrap_err();
        assert!(
            matches!(err, KeyFileError::Permissions { mode: 0o644, .. }),
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

//! The witness's cosigning key, `DATA_DIR/witness.key` (a [`crate::keyfile`]: created 0600 and
//! fsynced on first start, refused if readable by others). Its key name, the witness's name, is
//! fixed from the first start; it defaults to `<host name>/witness`.

use std::path::Path;

use crate::keyfile::{self, KeyFileError, StoredKey};
use crate::tlog::checkpoint::Origin;
use crate::tlog::cosignature::Cosigner;

/// The key file's name inside the data directory.
pub const KEY_FILE: &str = "witness.key";

impl StoredKey for Cosigner {
    const OWNER: &'static str = "witness";
    const NAME_WORD: &'static str = "name";
    const NAME_FLAG: &'static str = "--name";

    fn generate(name: &str) -> Result<Self, String> {
        Cosigner::generate(name).map_err(|e| e.to_string())
    }

    fn from_skey(skey: &str) -> Result<Self, String> {
        Cosigner::from_skey(skey).map_err(|e| e.to_string())
    }

    fn to_skey(&self) -> String {
        Cosigner::to_skey(self)
    }

    fn name(&self) -> &str {
        self.public().name()
    }
}

/// Opens the witness key in `data_dir`, or creates it on first start.
///
/// # Errors
/// Those of [`keyfile::open_or_create`].
pub fn open_or_create(data_dir: &Path, name: Option<&str>) -> Result<Cosigner, KeyFileError> {
    keyfile::open_or_create(&data_dir.join(KEY_FILE), name, || {
        let host = Origin::from_hostname(&keyfile::hostname()).map_err(|e| e.to_string())?;
        let glasslog = host
            .as_str()
            .strip_suffix("/glasslog")
            .unwrap_or(host.as_str());
        Ok(format!("{glasslog}/witness"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn created_once_then_reopened_and_the_name_is_fixed() {
        let dir = tempfile::tempdir().unwrap();
        let a = open_or_create(dir.path(), Some("w.example/1")).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = open_or_create(dir.path(), None).unwrap();
        assert_eq!(a.public(), b.public());
        assert!(a.public().to_vkey().starts_with("w.example/1+"));
        let err = open_or_create(dir.path(), Some("w.example/2")).unwrap_err();
        assert!(matches!(err, KeyFileError::NameChanged { .. }), "{err}");
        let fresh = tempfile::tempdir().unwrap();
        let c = open_or_create(fresh.path(), None).unwrap();
        assert!(
            c.public().name().ends_with("/witness"),
            "{}",
            c.public().name()
        );
    }
}

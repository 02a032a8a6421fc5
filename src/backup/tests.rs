//! Unit tests of taking a backup and of the identity checks; the whole path (a running server,
//! tampered backups, restore) is in tests/backup.rs.

use super::*;
use crate::tlog::checkpoint::Origin;

fn signer() -> LogSigner {
    LogSigner::generate(&Origin::new("example.org/backup-test").unwrap())
}

/// A store that records `signer`'s identity and the signed empty checkpoint, as a first start does.
fn empty_log(dir: &Path, signer: &LogSigner) -> Store {
    let store = Store::open(&database_path(dir)).unwrap();
    let mut b = store.batch();
    b.put_meta(schema::META_ORIGIN, signer.origin().as_bytes());
    b.put_meta(schema::META_VERIFIER_KEY, signer.verifier_key().as_bytes());
    let empty = Checkpoint {
        origin: signer.origin().to_string(),
        size: 0,
        root: merkle::EMPTY_HASH,
    };
    b.put_checkpoint(0, &signer.sign(&empty).unwrap());
    store.commit(b).unwrap();
    store
}

#[test]
fn a_backup_is_a_new_private_directory_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let signer = signer();
    let store = empty_log(dir.path(), &signer);
    let to = dir.path().join("out");
    let manifest = take(&store, dir.path(), &to, false).unwrap();
    assert_eq!(
        (manifest.tree_size, manifest.verifier_key.as_str()),
        (0, signer.verifier_key().as_str())
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&to).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    assert!(!to.join(KEY_FILE).exists(), "no key unless asked for");
    assert_eq!(read_manifest(&to).unwrap(), manifest);
    let copy = Store::open(&database_path(&to)).unwrap();
    let verifier = LogVerifier::new(&signer.verifier_key()).unwrap();
    let verified = verify_store(&copy, &verifier, |_, _| {}).unwrap();
    assert_eq!((verified.checkpoint.size, verified.checkpoints), (0, 1));

    let again = take(&store, dir.path(), &to, false).unwrap_err();
    assert!(matches!(again, BackupError::Exists(_)), "{again}");
    let relative = take(&store, dir.path(), Path::new("out2"), false).unwrap_err();
    assert!(
        matches!(relative, BackupError::NotAbsolute(_)),
        "{relative}"
    );
}

#[test]
fn a_failed_backup_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&database_path(dir.path())).unwrap();
    let to = dir.path().join("out");
    let err = take(&store, dir.path(), &to, false).unwrap_err();
    assert!(matches!(err, BackupError::Empty), "{err}");
    assert!(!to.exists());
}

#[test]
fn with_key_copies_the_key_private() {
    let dir = tempfile::tempdir().unwrap();
    let signer = crate::server::logkey::open_or_create(dir.path(), Some("example.org/k")).unwrap();
    let store = empty_log(dir.path(), &signer);
    let to = dir.path().join("out");
    assert!(
        take(&store, dir.path(), &to, true)
            .unwrap()
            .log_key_included
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(to.join(KEY_FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let copied: LogSigner = keyfile::open_existing(&to.join(KEY_FILE)).unwrap();
    assert_eq!(copied.verifier_key(), signer.verifier_key());
}

#[test]
fn another_logs_key_is_refused_naming_what_differs() {
    let dir = tempfile::tempdir().unwrap();
    let store = empty_log(dir.path(), &signer());
    let other = LogVerifier::new(&signer().verifier_key()).unwrap();
    let err = verify_store(&store, &other, |_, _| {}).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Identity {
                what: "verifier key",
                ..
            }
        ),
        "{err}"
    );
}

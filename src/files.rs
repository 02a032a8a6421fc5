//! Small file helpers shared by the server, the checkers and the CLI: atomic replacement of a
//! file (state files, key files, bundles) and `FILE.suffix` paths beside a file.
//!
//! Not a general file-system layer: no locking (see `client::trust_state`), no reading.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// An I/O failure, with the file it happened to (the temporary file, the target or its directory).
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

fn at(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |source| FileError {
        path: path.to_path_buf(),
        source,
    }
}

/// `FILE` with `suffix` appended to its whole name: `with_suffix("a/key", ".pub")` is
/// `a/key.pub` (unlike [`Path::with_extension`], which would replace an extension).
pub fn with_suffix(path: &Path, suffix: impl AsRef<OsStr>) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The directory holding `path`: its parent, or `.` for a bare file name.
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replaces (or creates) `path` with `data`, so that a reader, or the file after a crash, has
/// the old contents or the new, never a part: the data goes to a new file
/// `FILE.<process id>.tmp` created with `mode` (so a 0600 key is never readable by others, not
/// even briefly), which is fsynced, renamed over `path`, and the directory fsynced. The parent
/// directory is created if missing. On failure the temporary file is removed and `path` is
/// unchanged. The file gets `mode` less the umask (0o666 gives what `File::create` would), also
/// when it replaces a file of another mode.
///
/// # Errors
/// The I/O failure, with the path it concerns.
pub fn write_atomically(path: &Path, data: &[u8], mode: u32) -> Result<(), FileError> {
    let dir = parent_dir(path);
    fs::create_dir_all(dir).map_err(at(dir))?;
    let tmp = with_suffix(path, format!(".{}.tmp", std::process::id()));
    // A leftover of an earlier crash of a process with the same id.
    let _ = fs::remove_file(&tmp);
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()
    };
    if let Err(e) = write().and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(at(&tmp)(e));
    }
    File::open(dir).and_then(|d| d.sync_all()).map_err(at(dir))
}

/// Creates `path` with `data` only if it does not exist yet, atomically: the data goes to a
/// temporary file (fsynced) that is then hard-linked to `path`, which fails if `path` exists, so
/// no reader ever sees a partial file and no existing file is ever replaced. Returns `false`
/// (writing nothing) if `path` exists. The directory is fsynced after a creation.
///
/// # Errors
/// The I/O failure, with the path it concerns.
pub fn create_exclusively(path: &Path, data: &[u8], mode: u32) -> Result<bool, FileError> {
    let dir = parent_dir(path);
    fs::create_dir_all(dir).map_err(at(dir))?;
    let tmp = with_suffix(path, format!(".{}.tmp", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let write = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()
    };
    let linked = write().and_then(|()| fs::hard_link(&tmp, path));
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(at(dir))?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(at(path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn exclusive_creation_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/tile");
        assert!(create_exclusively(&path, b"one", 0o644).unwrap());
        assert!(!create_exclusively(&path, b"two", 0o644).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"one");
        let names: Vec<_> = fs::read_dir(dir.path().join("a/b")).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left");
    }

    #[test]
    fn suffixes_append_to_the_whole_name() {
        assert_eq!(
            with_suffix(Path::new("a/key.pem"), ".pub"),
            PathBuf::from("a/key.pem.pub")
        );
        assert_eq!(parent_dir(Path::new("state")), Path::new("."));
        assert_eq!(parent_dir(Path::new("d/state")), Path::new("d"));
    }

    #[test]
    fn replaces_with_the_mode_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state");
        write_atomically(&path, b"one", 0o600).unwrap();
        write_atomically(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path().join("sub")).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_failed_write_leaves_the_target_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        write_atomically(&path, b"old", 0o644).unwrap();
        // A directory in the way of the rename.
        let blocked = dir.path().join("blocked");
        fs::create_dir_all(blocked.join("x")).unwrap();
        assert!(write_atomically(&blocked, b"new", 0o644).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}

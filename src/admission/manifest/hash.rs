//! Hashing a directory into its manifest ([`hash_directory`]): the walk, with
//! `model_signing`'s rules for ignore paths, symlinks and special files, then
//! the files hashed in parallel. Not here: reading or checking a received
//! manifest ([`super::Manifest::from_json_value`]).

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::mpsc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::{
    compare_names, io_error, Manifest, ManifestError, Resource, Serialization, DEFAULT_IGNORE_PATHS,
};

/// Size of each thread's read buffer in [`hash_directory`] (the tool's chunk size too).
pub const READ_BUFFER: usize = 1 << 20;

/// How often [`hash_directory`] reports progress while hashing.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// What [`hash_directory`] hashes and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashOptions {
    /// Paths to leave out, relative to the directory, `/`-separated; each excludes itself and,
    /// if a directory, everything below it. The default is [`DEFAULT_IGNORE_PATHS`]; to add
    /// paths, push onto the default; to hash `.git` & co. too, remove them.
    pub ignore_paths: Vec<String>,
    /// Hash symbolic links to files as their targets instead of refusing every symlink.
    pub allow_symlinks: bool,
}

impl Default for HashOptions {
    /// `model_signing`'s defaults: git paths ignored, symlinks refused.
    fn default() -> Self {
        HashOptions {
            ignore_paths: DEFAULT_IGNORE_PATHS.iter().map(|p| p.to_string()).collect(),
            allow_symlinks: false,
        }
    }
}

impl HashOptions {
    /// The options to re-hash a directory for comparison with `logged`, as `model_signing
    /// verify` does: its `allow_symlinks`, and its `ignore_paths` together with the default
    /// ignores (which the tool's verifier always applies).
    pub fn for_verifying(logged: &Manifest) -> HashOptions {
        HashOptions::for_serialization(&logged.serialization())
    }

    /// [`HashOptions::for_verifying`] from a manifest's `serialization` alone (that of a
    /// detached manifest, as its declaration records it).
    pub fn for_serialization(s: &Serialization) -> HashOptions {
        let mut ignore_paths: Vec<String> =
            DEFAULT_IGNORE_PATHS.iter().map(|p| p.to_string()).collect();
        ignore_paths.extend(s.ignore_paths.iter().cloned());
        HashOptions {
            ignore_paths,
            allow_symlinks: s.allow_symlinks,
        }
    }
}

/// Builds the OMS manifest of directory `dir` as `model_signing` 1.1 would (see the module
/// documentation), hashing files in parallel on `available_parallelism` threads with one
/// [`READ_BUFFER`]-sized buffer each. `progress`, if given, is called on the calling thread
/// about every 100 ms and once at the end with (bytes hashed, bytes to hash).
pub fn hash_directory(
    dir: &Path,
    opts: &HashOptions,
    progress: Option<&dyn Fn(u64, u64)>,
) -> Result<Manifest, ManifestError> {
    let ignore = normalize_ignore_paths(&opts.ignore_paths)?;
    let mut files = walk(dir, &ignore, opts.allow_symlinks)?;
    files.sort_by(|a, b| compare_names(&a.name, &b.name));
    let digests = hash_files(&files, progress)?;
    let resources = files
        .into_iter()
        .zip(digests)
        .map(|(file, digest)| Resource {
            name: file.name,
            digest,
        })
        .collect();
    Ok(Manifest {
        ignore_paths: ignore.iter().map(|parts| parts.join("/")).collect(),
        allow_symlinks: opts.allow_symlinks,
        resources,
    })
}

/// Ignore paths as component lists, normalised as `pathlib` does (`./a//b/` is `a/b`),
/// deduplicated and in manifest order.
fn normalize_ignore_paths(paths: &[String]) -> Result<Vec<Vec<String>>, ManifestError> {
    let mut out: Vec<Vec<String>> = Vec::with_capacity(paths.len());
    for p in paths {
        let bad = |reason| ManifestError::InvalidIgnorePath {
            path: p.clone(),
            reason,
        };
        if p.starts_with('/') {
            return Err(bad("is absolute"));
        }
        let parts: Vec<String> = p
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .map(str::to_owned)
            .collect();
        if parts.iter().any(|s| s == "..") {
            return Err(bad("contains '..'"));
        }
        if parts.is_empty() {
            return Err(bad("names the model directory itself"));
        }
        if p.contains('\0') {
            return Err(bad("contains a NUL character"));
        }
        out.push(parts);
    }
    // `Vec<String>` order is component-wise by bytes: the manifest order of the joined paths.
    out.sort();
    out.dedup();
    Ok(out)
}

/// A file found by [`walk`].
struct FileJob {
    name: String,
    path: PathBuf,
    size: u64,
}

fn is_ignored(rel: &[OsString], ignore: &[Vec<String>]) -> bool {
    ignore.iter().any(|parts| {
        parts.len() <= rel.len()
            && parts
                .iter()
                .zip(rel)
                .all(|(p, r)| r.as_os_str() == p.as_str())
    })
}

/// The files of `root` to hash, in no particular order, with the reference tool's checks.
fn walk(
    root: &Path,
    ignore: &[Vec<String>],
    allow_symlinks: bool,
) -> Result<Vec<FileJob>, ManifestError> {
    // As pathlib: `model/` is `model`, so that lstat sees a symlink rather than its target.
    let root: PathBuf = root.components().collect();
    let root = root.as_path();
    let meta = fs::symlink_metadata(root).map_err(io_error(root))?;
    if meta.file_type().is_symlink() && !allow_symlinks {
        return Err(ManifestError::Symlink {
            path: root.to_path_buf(),
        });
    }
    let meta = fs::metadata(root).map_err(io_error(root))?;
    if !meta.is_dir() {
        return Err(ManifestError::NotADirectory {
            path: root.to_path_buf(),
        });
    }

    let mut files = Vec::new();
    let mut stack: Vec<(PathBuf, Vec<OsString>)> = vec![(root.to_path_buf(), Vec::new())];
    while let Some((dir, rel)) = stack.pop() {
        for entry in fs::read_dir(&dir).map_err(io_error(&dir))? {
            let entry = entry.map_err(io_error(&dir))?;
            let path = entry.path();
            let mut entry_rel = rel.clone();
            entry_rel.push(entry.file_name());
            let file_type = entry.file_type().map_err(io_error(&path))?;
            let size = if file_type.is_symlink() {
                // The tool checks every entry, ignored or not, before applying ignores.
                if !allow_symlinks {
                    return Err(ManifestError::Symlink { path });
                }
                match fs::metadata(&path) {
                    Err(source) => return Err(ManifestError::BrokenSymlink { path, source }),
                    Ok(m) if m.is_file() => m.len(),
                    // A link to a directory: pathlib's glob neither lists nor descends it.
                    Ok(m) if m.is_dir() => continue,
                    Ok(_) => return Err(ManifestError::SpecialFile { path }),
                }
            } else if file_type.is_dir() {
                stack.push((path, entry_rel));
                continue;
            } else if file_type.is_file() {
                entry.metadata().map_err(io_error(&path))?.len()
            } else {
                return Err(ManifestError::SpecialFile { path });
            };
            if is_ignored(&entry_rel, ignore) {
                continue;
            }
            let mut name = String::new();
            for (i, component) in entry_rel.iter().enumerate() {
                let Some(s) = component.to_str() else {
                    return Err(ManifestError::NonUtf8Path {
                        path: path.to_string_lossy().into_owned(),
                    });
                };
                if i > 0 {
                    name.push('/');
                }
                name.push_str(s);
            }
            files.push(FileJob { name, path, size });
        }
    }
    Ok(files)
}

/// SHA-256 of each file, in the order of `files`.
fn hash_files(
    files: &[FileJob],
    progress: Option<&dyn Fn(u64, u64)>,
) -> Result<Vec<[u8; 32]>, ManifestError> {
    let total: u64 = files.iter().map(|f| f.size).sum();
    // Largest first, so that one big file does not start last and finish alone.
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by(|&a, &b| files[b].size.cmp(&files[a].size));
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let done = AtomicU64::new(0);
    let failed = AtomicBool::new(false);

    let worker = |_alive: mpsc::Sender<()>| -> Result<Vec<(usize, [u8; 32])>, ManifestError> {
        let mut buffer = vec![0u8; READ_BUFFER];
        let mut out = Vec::new();
        loop {
            let k = next.fetch_add(1, AtomicOrdering::Relaxed);
            if k >= order.len() || failed.load(AtomicOrdering::Relaxed) {
                return Ok(out);
            }
            let file = &files[order[k]];
            match hash_file(&file.path, &mut buffer, &done) {
                Ok(digest) => out.push((order[k], digest)),
                Err(source) => {
                    failed.store(true, AtomicOrdering::Relaxed);
                    return Err(ManifestError::Io {
                        path: file.path.clone(),
                        source,
                    });
                }
            }
        }
    };

    let results = std::thread::scope(|scope| {
        let (alive, watch) = mpsc::channel::<()>();
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let alive = alive.clone();
                let worker = &worker;
                scope.spawn(move || worker(alive))
            })
            .collect();
        drop(alive);
        if let Some(report) = progress {
            // Every worker holds a sender: the channel disconnects when the last one ends.
            let mut last = None;
            while let Err(mpsc::RecvTimeoutError::Timeout) = watch.recv_timeout(PROGRESS_INTERVAL) {
                let now = done.load(AtomicOrdering::Relaxed);
                if last != Some(now) {
                    report(now, total);
                    last = Some(now);
                }
            }
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect::<Vec<_>>()
    });

    let mut digests = vec![[0u8; 32]; files.len()];
    for result in results {
        for (i, digest) in result? {
            digests[i] = digest;
        }
    }
    if let Some(report) = progress {
        report(done.load(AtomicOrdering::Relaxed), total);
    }
    Ok(digests)
}

/// SHA-256 of one file's bytes, read with `buffer`, counting bytes into `done`.
fn hash_file(path: &Path, buffer: &mut [u8], done: &AtomicU64) -> io::Result<[u8; 32]> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    loop {
        let n = match file.read(buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buffer[..n]);
        done.fetch_add(n as u64, AtomicOrdering::Relaxed);
    }
    Ok(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::manifest::tests::sha;
    use std::cell::RefCell;

    fn write(root: &Path, name: &str, data: &[u8]) {
        let path = root.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    }

    fn names(m: &Manifest) -> Vec<&str> {
        m.resources.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn hashes_a_small_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "a/b", b"1");
        write(root, "a-b", b"2");
        write(root, "empty", b"");
        write(root, ".git/HEAD", b"ref");
        write(root, ".gitignore", b"*.tmp");
        write(root, ".github/workflows/ci.yml", b"on: push");
        write(root, ".gitattributes", b"");
        write(root, ".gitmodules", b"");
        write(root, "sub/.git/x", b"");
        write(root, "sub/.gitignore", b"");
        fs::create_dir_all(root.join("empty_dir/nested")).unwrap();
        let m = hash_directory(root, &HashOptions::default(), None).unwrap();
        assert_eq!(
            names(&m),
            [
                ".gitmodules",
                "a/b",
                "a-b",
                "empty",
                "sub/.git/x",
                "sub/.gitignore"
            ]
        );
        assert_eq!(m.get("a/b").unwrap().digest, sha(b"1"));
        assert_eq!(m.get("empty").unwrap().digest, sha(b""));
        assert_eq!(m.ignore_paths, DEFAULT_IGNORE_PATHS);
        assert!(!m.allow_symlinks);
        // What we write, we accept.
        assert_eq!(
            Manifest::from_json_value(&m.to_json_value(), "$").unwrap(),
            m
        );

        // Without the default ignores, git paths are hashed too.
        let all = HashOptions {
            ignore_paths: vec![],
            allow_symlinks: false,
        };
        let m = hash_directory(root, &all, None).unwrap();
        assert!(m.get(".git/HEAD").is_some());
        assert!(m.get(".github/workflows/ci.yml").is_some());
        assert!(m.ignore_paths.is_empty());

        // User ignore paths are normalised and matched by components.
        let mut opts = HashOptions::default();
        opts.ignore_paths.push("./sub//".into());
        opts.ignore_paths.push("a".into());
        opts.ignore_paths.push(".git".into());
        let m = hash_directory(root, &opts, None).unwrap();
        assert_eq!(names(&m), [".gitmodules", "a-b", "empty"]);
        assert_eq!(
            m.ignore_paths,
            [
                ".git",
                ".gitattributes",
                ".github",
                ".gitignore",
                "a",
                "sub"
            ]
        );
        // A verifier re-applies them.
        let again = hash_directory(root, &HashOptions::for_verifying(&m), None).unwrap();
        assert_eq!(again, m);
    }

    #[test]
    fn bad_ignore_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for p in ["/abs", "../x", "a/../b", "", ".", "./"] {
            let opts = HashOptions {
                ignore_paths: vec![p.into()],
                allow_symlinks: false,
            };
            let e = hash_directory(dir.path(), &opts, None).unwrap_err();
            assert!(
                matches!(e, ManifestError::InvalidIgnorePath { .. }),
                "{p:?}: {e}"
            );
        }
    }

    #[test]
    fn empty_directory_hashes_to_empty_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let m = hash_directory(dir.path(), &HashOptions::default(), None).unwrap();
        assert!(m.is_empty());
        assert_eq!(m.root_digest(), sha(b""));
    }

    #[test]
    fn a_file_is_not_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "f", b"x");
        let e = hash_directory(&dir.path().join("f"), &HashOptions::default(), None).unwrap_err();
        assert!(matches!(e, ManifestError::NotADirectory { .. }), "{e}");
        let e =
            hash_directory(&dir.path().join("nope"), &HashOptions::default(), None).unwrap_err();
        assert!(matches!(e, ManifestError::Io { .. }), "{e}");
    }

    #[test]
    fn progress_reaches_total_and_files_span_buffers() {
        let dir = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..(2 * READ_BUFFER + 7))
            .map(|i| (i % 251) as u8)
            .collect();
        write(dir.path(), "big", &big);
        for i in 0..20 {
            write(dir.path(), &format!("small/{i}"), format!("{i}").as_bytes());
        }
        let calls = RefCell::new(Vec::new());
        let report = |done: u64, total: u64| calls.borrow_mut().push((done, total));
        let m = hash_directory(dir.path(), &HashOptions::default(), Some(&report)).unwrap();
        assert_eq!(m.get("big").unwrap().digest, sha(&big));
        assert_eq!(m.resources.len(), 21);
        let calls = calls.into_inner();
        let total = big.len() as u64 + (0..20).map(|i| format!("{i}").len() as u64).sum::<u64>();
        assert_eq!(*calls.last().unwrap(), (total, total));
        assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_follow_the_reference_rules() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "d/f", b"1");
        symlink("d/f", root.join("link")).unwrap();
        symlink("d", root.join("dirlink")).unwrap();
        let e = hash_directory(root, &HashOptions::default(), None).unwrap_err();
        assert!(matches!(e, ManifestError::Symlink { .. }), "{e}");
        assert!(e.to_string().contains("allow_symlinks"), "{e}");

        let opts = HashOptions {
            allow_symlinks: true,
            ..HashOptions::default()
        };
        let m = hash_directory(root, &opts, None).unwrap();
        assert_eq!(names(&m), ["d/f", "link"]);
        assert_eq!(m.get("link").unwrap().digest, sha(b"1"));
        assert!(m.allow_symlinks);

        symlink("missing", root.join("dangling")).unwrap();
        let e = hash_directory(root, &opts, None).unwrap_err();
        assert!(matches!(e, ManifestError::BrokenSymlink { .. }), "{e}");

        // Even inside an ignored directory (the tool checks before it ignores).
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "f", b"");
        write(dir.path(), ".git/HEAD", b"");
        symlink("HEAD", dir.path().join(".git/link")).unwrap();
        let e = hash_directory(dir.path(), &HashOptions::default(), None).unwrap_err();
        assert!(matches!(e, ManifestError::Symlink { .. }), "{e}");

        // The directory itself.
        let outer = tempfile::tempdir().unwrap();
        symlink(dir.path(), outer.path().join("model")).unwrap();
        for model in ["model", "model/", "model/."] {
            let e = hash_directory(&outer.path().join(model), &HashOptions::default(), None)
                .unwrap_err();
            assert!(matches!(e, ManifestError::Symlink { .. }), "{model}: {e}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn special_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = hash_directory(dir.path(), &HashOptions::default(), None).unwrap_err();
        assert!(matches!(e, ManifestError::SpecialFile { .. }), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_names_are_refused_unless_ignored() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let bad = std::ffi::OsStr::from_bytes(b"w\xffx.bin");
        fs::create_dir_all(dir.path().join(".git")).unwrap();
        fs::write(dir.path().join(".git").join(bad), b"").unwrap();
        fs::create_dir_all(dir.path().join("empty").join(bad)).unwrap();
        write(dir.path(), "ok", b"");
        assert_eq!(
            names(&hash_directory(dir.path(), &HashOptions::default(), None).unwrap()),
            ["ok"]
        );
        fs::write(dir.path().join(bad), b"").unwrap();
        let e = hash_directory(dir.path(), &HashOptions::default(), None).unwrap_err();
        assert!(matches!(e, ManifestError::NonUtf8Path { .. }), "{e}");
        assert!(e.to_string().contains("w\u{FFFD}x.bin"), "{e}");
    }
}

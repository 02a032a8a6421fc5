//! The OpenSSF Model Signing (OMS) manifest of a directory, and its root digest.
//!
//! A model-release or training-data declaration names its files with the body of an OMS
//! predicate (`https://model_signing/signature/v1.0`):
//!
//! ```json
//! {"serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": false,
//!                    "ignore_paths": [".git", ".gitattributes", ".github", ".gitignore"]},
//!  "resources": [{"name": "config.json", "algorithm": "sha256", "digest": "<64 hex>"}, ...]}
//! ```
//!
//! and the model as a whole by the *root digest*: SHA-256 over the concatenated raw 32-byte
//! resource digests, in manifest order (OMS spec §6.5.1; `model_signing` puts it in the
//! statement's `subject[0].digest.sha256`). This module builds that manifest for a local
//! directory ([`hash_directory`]), reads and validates one received from a client
//! ([`Manifest::from_json_value`]), writes one ([`Manifest::to_json_value`]), computes the root
//! ([`Manifest::root_digest`]) and compares a logged manifest with a local one ([`diff`]).
//!
//! # Compatibility
//!
//! The root digest must be byte-for-byte what the OpenSSF reference tool computes, or a
//! publisher's signature and our log would name two different models. The behaviour here was
//! read from, and is tested against, **`model_signing` 1.1.1** (PyPI `model-signing`, run on
//! CPython 3.11.7: its walk is `pathlib.Path.glob`), modules `hashing`, `manifest`,
//! `_serialization.serialization`, `_serialization.file`, `_hashing.io` and
//! `_signing.signing`. The OMS specification text consulted is "OpenSSF Model Signing (OMS)
//! Specification, Version 1.0" (`SPEC.md` of the model-signing-spec repository). The test
//! `tests/manifest_compat.rs` compares this module with the tool's output on a tree of awkward
//! names, stored in `tests/data/manifest/` with the script that produced it.
//!
//! What the tool does, and so what this module does, with `method: "files"`, `sha256`:
//!
//! - **Walk**: every entry below the directory, hidden ones included. Directories are
//!   descended into, *including ignored ones*, but symbolic links to directories never are.
//! - **Default ignores**: `.git`, `.gitattributes`, `.github`, `.gitignore`, each only at the
//!   top level, as a file or a whole directory. `sub/.git/…`, `sub/.gitignore` and a top-level
//!   `.gitmodules` are hashed. User ignore paths are relative paths from the top matched
//!   component-wise (`x` ignores `x` and `x/…`, not `xy` nor `sub/x`); `./a//b/` means `a/b`.
//! - **Files**: each regular file is one resource, its digest plain SHA-256 of its bytes (no
//!   header, no length prefix, independent of read size). An empty file is a resource with
//!   digest `e3b0c442…b855`, SHA-256 of nothing. Empty directories contribute nothing.
//! - **Order**: resources are sorted as Python sorts `PurePosixPath`s: by the list of path
//!   components, each component compared by code point (= UTF-8 byte order). So `a/b` comes
//!   before `a-b` and `a.b`, although `-` (0x2D) and `.` (0x2E) sort before `/` (0x2F) in a
//!   plain string comparison. Case-sensitive; NFC and NFD spellings are different names. See
//!   [`compare_names`].
//! - **Symlinks**: by default any symbolic link met by the walk, *even inside an ignored
//!   directory such as `.git/`*, and the directory itself if it is one, is an error. With
//!   `allow_symlinks` a link to a file is hashed with its target's bytes under the *link's*
//!   name, a link to a directory is silently skipped (neither listed nor descended), and a
//!   dangling or looping link is an error.
//! - **Other file types** (FIFOs, sockets, devices) anywhere, ignored directories included,
//!   are errors.
//! - **Recorded `ignore_paths`**: the effective set (defaults plus user paths); the tool writes
//!   it in an order that changes from run to run (it is a Python `frozenset`), and omits the key
//!   when the set is empty. It is not covered by the root digest. Here it is kept sorted.
//!
//! # Where the tool and the OMS text disagree (we follow the tool)
//!
//! 1. **Order.** Spec §5.2.1: "sorted lexicographically by the `name` field using Unicode code
//!    point ordering". The tool sorts by path components, as above. They differ exactly when a
//!    component is a proper prefix of a sibling's name and the sibling continues with a
//!    character below `/` (space, `!`, `-`, `.`, …): the tool puts `a/b` before `a-b`, the
//!    spec's rule after. We follow the tool; a manifest in the spec's order is refused when
//!    the two orders differ.
//! 2. **Empty models.** Spec §5.2.1 and §6.1: at least one resource; an empty model "MUST be
//!    rejected". The tool hashes an empty directory to no resources and root
//!    `e3b0c442…b855`, and signs it. We do the same; [`Manifest::is_empty`] is there for a
//!    policy that wants to refuse it.
//! 3. **Symlinks with `allow_symlinks`.** Spec §6.1.1: resolve links and hash targets, warn on
//!    links leaving the root and on cycles. The tool hashes links to files (no warning for
//!    targets outside the root), skips links to directories (so no cycles) and refuses
//!    dangling links. §6.1 also lists exclusion before symlink handling; the tool checks every
//!    entry, ignored ones included, first.
//! 4. **Non-UTF-8 names.** Spec §6.1.2: the signer MUST reject the file. The tool hashes it
//!    (Python's surrogate escapes) and then fails building the statement with a
//!    `UnicodeEncodeError`; we refuse it up front, naming the path. A non-UTF-8 name that is
//!    ignored, or an empty directory with one, is accepted by both.
//! 5. **Single-file models.** Spec §6.1.2: the resource name is the file's basename. The tool
//!    names it `.`. glasslog hashes directories only, and [`Manifest::from_json_value`]
//!    refuses the name `.`.
//! 6. **User ignore paths.** Spec §6.2.1 forbids glob characters, a leading `/` and `..`. The
//!    tool takes glob characters literally and silently drops paths outside the model; we
//!    take glob characters literally (as the tool) and refuse absolute, `..` and empty paths.
//!
//! One deviation from the tool, on purpose: CPython's `pathlib` glob silently skips a directory
//! it may not list (`PermissionError`), so the tool would sign a partial model. We fail with
//! the directory's path instead.
//!
//! # Received manifests
//!
//! [`Manifest::from_json_value`] accepts only what the tool produces with `files`/`sha256`:
//! names relative, `/`-separated, normalised, unique, in the order above, none inside the
//! manifest's own `ignore_paths`; digests 64 lowercase hex. Two honest tools therefore agree
//! on one root for one manifest. Unknown members of the predicate, of `serialization` and of
//! each resource descriptor are ignored, as the OMS spec (§5.2.1, and in-toto's parsing rules)
//! and glasslog's admission rules say ("unknown predicate fields are kept and ignored"): they
//! are not part of [`Manifest`], so they do not survive [`Manifest::to_json_value`]; keep the
//! received bytes if they matter.
//!
//! # Speed
//!
//! Files are hashed in parallel, one thread per available core taking the largest files first,
//! each streaming through its own 1 MiB buffer, so memory stays flat whatever the file sizes.
//! One file is one SHA-256 chain, so a single huge file runs on one core (the `shards`
//! serialization exists for that; glasslog does not use it). `sha2` uses the SHA-NI
//! instructions where the CPU has them. `benches/manifest.rs` measures it.
//!
//! # What this is not
//!
//! Not a signer or verifier of OMS bundles (signatures live in [`crate::admission::dsse`]), not the
//! `shards` serialization, not BLAKE2/BLAKE3 digests, not the deprecated v0.1 predicate. It
//! does not interpret `.gitignore` files. Hashing reads each file once, while it may change
//! under us: the result describes the bytes read, not a snapshot.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::admission::strict_json::{self, element_path, member_path, JsonError};

/// The only serialization method glasslog accepts.
pub const METHOD_FILES: &str = "files";

/// The only digest algorithm glasslog accepts, for `hash_type` and every resource.
pub const SHA256: &str = "sha256";

/// The paths `model_signing` ignores unless told otherwise (`ignore_git_paths=True`), each
/// matched at the top of the model only.
pub const DEFAULT_IGNORE_PATHS: [&str; 4] = [".git", ".gitattributes", ".github", ".gitignore"];

/// Size of each thread's read buffer in [`hash_directory`] (the tool's chunk size too).
pub const READ_BUFFER: usize = 1 << 20;

/// How often [`hash_directory`] reports progress while hashing.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// One file of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resource {
    /// Path relative to the model directory, `/`-separated.
    pub name: String,
    /// SHA-256 of the file's bytes.
    pub digest: [u8; 32],
}

/// A model directory's OMS manifest (`method: "files"`, `hash_type: "sha256"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The paths that were excluded, relative to the model directory. Informative: not
    /// covered by the root digest; a verifier re-applies them (see [`HashOptions::for_verifying`]).
    pub ignore_paths: Vec<String>,
    /// Whether symbolic links to files were hashed (as their targets).
    pub allow_symlinks: bool,
    /// The files, in the reference tool's order ([`compare_names`]).
    pub resources: Vec<Resource>,
}

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
        let mut ignore_paths: Vec<String> =
            DEFAULT_IGNORE_PATHS.iter().map(|p| p.to_string()).collect();
        ignore_paths.extend(logged.ignore_paths.iter().cloned());
        HashOptions {
            ignore_paths,
            allow_symlinks: logged.allow_symlinks,
        }
    }
}

/// The files that differ between a logged manifest and a local one, each list in manifest
/// order. A renamed file is one removed and one added name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestDiff {
    /// In the local manifest only.
    pub added: Vec<String>,
    /// In the logged manifest only.
    pub removed: Vec<String>,
    /// In both, with different digests.
    pub changed: Vec<String>,
}

impl ManifestDiff {
    /// True when both manifests name the same files with the same digests.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// Why a manifest could not be read or a directory not hashed.
#[derive(Debug, Error)]
pub enum ManifestError {
    /// The JSON is missing a member or has one of the wrong type.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// The value at `path` breaks a rule of OMS manifests as glasslog admits them.
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
    /// An ignore path given to [`hash_directory`] cannot name anything inside the directory.
    #[error(
        "ignore path {path:?} {reason}; ignore paths are relative to the model directory, \
         '/'-separated, without '..'"
    )]
    InvalidIgnorePath { path: String, reason: &'static str },
    /// What was given to [`hash_directory`] is not a directory.
    #[error(
        "{} is not a directory; glasslog hashes model directories only \
         (put a single-file model in a directory of its own)",
        path.display()
    )]
    NotADirectory { path: PathBuf },
    /// A symbolic link was found and symlinks are not allowed.
    #[error(
        "{} is a symbolic link; OMS manifests refuse symlinks by default, even in ignored \
         directories (model_signing does too): replace it with a copy of its target, or hash \
         with allow_symlinks, which is then recorded in the manifest",
        path.display()
    )]
    Symlink { path: PathBuf },
    /// A symbolic link (allowed) points nowhere, or into a loop.
    #[error(
        "{} is a symbolic link whose target cannot be read ({source}); fix or remove the link",
        path.display()
    )]
    BrokenSymlink { path: PathBuf, source: io::Error },
    /// A FIFO, socket or device file was found.
    #[error(
        "{} is neither a regular file nor a directory (a FIFO, socket or device); \
         OMS manifests cannot describe it: move it out of the model directory",
        path.display()
    )]
    SpecialFile { path: PathBuf },
    /// A file to be hashed has a path that is not UTF-8; shown with U+FFFD for each bad byte.
    #[error(
        "the path {path} is not valid UTF-8 (invalid bytes shown as \u{FFFD}); OMS resource \
         names are JSON strings, so rename the file or add it to the ignore paths"
    )]
    NonUtf8Path { path: String },
    /// Reading the directory tree or a file failed.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn invalid(path: String, reason: impl Into<String>) -> ManifestError {
    ManifestError::Invalid {
        path,
        reason: reason.into(),
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ManifestError + '_ {
    move |source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The order of resource names in `model_signing` manifests: component lists compared
/// lexicographically, components by code point, i.e. by UTF-8 bytes (Python's ordering of
/// `PurePosixPath`). Equivalently, a byte-wise comparison in which `/` sorts below every
/// other character. Not the OMS spec's plain code point order of the whole name (see the
/// module documentation).
pub fn compare_names(a: &str, b: &str) -> Ordering {
    a.split('/').cmp(b.split('/'))
}

impl Manifest {
    /// The OMS root digest: SHA-256 of the raw resource digests concatenated in order.
    pub fn root_digest(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        for resource in &self.resources {
            hasher.update(resource.digest);
        }
        hasher.finalize().into()
    }

    /// True when the manifest names no file (see the module documentation on empty models).
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// The resource named `name`, if any (binary search: resources are in order).
    pub fn get(&self, name: &str) -> Option<&Resource> {
        self.resources
            .binary_search_by(|r| compare_names(&r.name, name))
            .ok()
            .map(|i| &self.resources[i])
    }

    /// The OMS predicate body, as `model_signing` writes it. `ignore_paths` is omitted when
    /// empty, as the tool does.
    pub fn to_json_value(&self) -> Value {
        let mut serialization = json!({
            "method": METHOD_FILES,
            "hash_type": SHA256,
            "allow_symlinks": self.allow_symlinks,
        });
        if !self.ignore_paths.is_empty() {
            serialization["ignore_paths"] = json!(self.ignore_paths);
        }
        let resources: Vec<Value> = self
            .resources
            .iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "algorithm": SHA256,
                    "digest": hex::encode(r.digest),
                })
            })
            .collect();
        json!({ "serialization": serialization, "resources": resources })
    }

    /// Reads and validates an OMS predicate body found at JSON path `path` (e.g.
    /// `$.predicate`). Errors name the JSON path and the rule broken. Unknown members are
    /// ignored (see the module documentation).
    pub fn from_json_value(v: &Value, path: &str) -> Result<Manifest, ManifestError> {
        let top = strict_json::object(v, path)?;

        let ser_path = member_path(path, "serialization");
        let ser = strict_json::require_object(top, "serialization", path)?;
        let method = strict_json::require_str(ser, "method", &ser_path)?;
        if method != METHOD_FILES {
            return Err(invalid(
                member_path(&ser_path, "method"),
                format!(
                    "serialization method {method:?} is not supported; glasslog accepts only \
                     \"files\" (one SHA-256 digest per file)"
                ),
            ));
        }
        let hash_type = strict_json::require_str(ser, "hash_type", &ser_path)?;
        if hash_type != SHA256 {
            return Err(invalid(
                member_path(&ser_path, "hash_type"),
                format!(
                    "hash type {hash_type:?} is not supported; glasslog accepts only \"sha256\""
                ),
            ));
        }
        let symlinks_path = member_path(&ser_path, "allow_symlinks");
        let allow_symlinks = match strict_json::require(ser, "allow_symlinks", &ser_path)? {
            Value::Bool(b) => *b,
            other => {
                return Err(JsonError::WrongType {
                    path: symlinks_path,
                    expected: "a boolean",
                    found: json_type(other),
                }
                .into())
            }
        };
        let mut ignore_paths = Vec::new();
        if let Some(list) = ser.get("ignore_paths") {
            let list_path = member_path(&ser_path, "ignore_paths");
            let mut seen = HashSet::new();
            for (i, item) in strict_json::array(list, &list_path)?.iter().enumerate() {
                let item_path = element_path(&list_path, i);
                let p = strict_json::string(item, &item_path)?;
                check_relative_path(p).map_err(|reason| invalid(item_path.clone(), reason))?;
                if !seen.insert(p) {
                    return Err(invalid(item_path, format!("{p:?} is listed twice")));
                }
                ignore_paths.push(p.to_owned());
            }
        }
        let ignore_parts: Vec<Vec<&str>> = ignore_paths
            .iter()
            .map(|p| p.split('/').collect())
            .collect();

        let res_path = member_path(path, "resources");
        let items = strict_json::require_array(top, "resources", path)?;
        let mut resources: Vec<Resource> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let item_path = element_path(&res_path, i);
            let obj = strict_json::object(item, &item_path)?;
            let name = strict_json::require_str(obj, "name", &item_path)?;
            let name_path = member_path(&item_path, "name");
            check_relative_path(name).map_err(|reason| invalid(name_path.clone(), reason))?;
            let algorithm = strict_json::require_str(obj, "algorithm", &item_path)?;
            if algorithm != SHA256 {
                return Err(invalid(
                    member_path(&item_path, "algorithm"),
                    format!("algorithm {algorithm:?} is not supported; it must be \"sha256\""),
                ));
            }
            let digest_hex = strict_json::require_str(obj, "digest", &item_path)?;
            let digest = parse_digest(digest_hex)
                .map_err(|reason| invalid(member_path(&item_path, "digest"), reason))?;
            if let Some(ignored) = ignore_parts.iter().find(|parts| is_under(parts, name)) {
                return Err(invalid(
                    name_path,
                    format!(
                        "{name:?} lies inside the ignore path {:?} of this same manifest",
                        ignored.join("/")
                    ),
                ));
            }
            if let Some(previous) = resources.last() {
                match compare_names(&previous.name, name) {
                    Ordering::Less => {}
                    Ordering::Equal => {
                        return Err(invalid(
                            name_path,
                            format!("{name:?} is listed twice (also at index {})", i - 1),
                        ))
                    }
                    Ordering::Greater => {
                        return Err(invalid(
                            name_path,
                            format!(
                                "{name:?} is out of order: it must come before {:?} (index {}); \
                                 resources are sorted as model_signing sorts them, by path \
                                 components, each compared by code point (so \"a/b\" precedes \
                                 \"a-b\")",
                                previous.name,
                                i - 1
                            ),
                        ))
                    }
                }
            }
            resources.push(Resource {
                name: name.to_owned(),
                digest,
            });
        }
        Ok(Manifest {
            ignore_paths,
            allow_symlinks,
            resources,
        })
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A resource name or recorded ignore path: relative, `/`-separated, normalised.
fn check_relative_path(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("the path is empty".into());
    }
    if p.starts_with('/') {
        return Err(format!(
            "{p:?} is absolute; paths are relative to the model directory"
        ));
    }
    if p.contains('\0') {
        return Err(format!(
            "{p:?} contains a NUL character, which no file name can"
        ));
    }
    for segment in p.split('/') {
        let reason = match segment {
            "" => "an empty segment (a doubled or trailing '/')",
            "." => "a '.' segment",
            ".." => "a '..' segment",
            _ => continue,
        };
        return Err(format!(
            "{p:?} has {reason}; paths must be normalised, '/'-separated and stay inside the \
             model directory"
        ));
    }
    Ok(())
}

fn parse_digest(s: &str) -> Result<[u8; 32], String> {
    if s.len() != 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "{s:?} is not a SHA-256 digest: it must be 64 lowercase hexadecimal characters"
        ));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Whether `name` is `prefix` (as components) or lies below it.
fn is_under(prefix: &[&str], name: &str) -> bool {
    let mut components = name.split('/');
    prefix.iter().all(|p| components.next() == Some(*p))
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

/// What changed from `logged` to `local`, by name and digest (serialization settings are not
/// compared). Needs no particular order of either manifest's resources.
pub fn diff(logged: &Manifest, local: &Manifest) -> ManifestDiff {
    let logged_by_name: HashMap<&str, &[u8; 32]> = logged
        .resources
        .iter()
        .map(|r| (r.name.as_str(), &r.digest))
        .collect();
    let local_names: HashSet<&str> = local.resources.iter().map(|r| r.name.as_str()).collect();
    let mut out = ManifestDiff::default();
    for r in &local.resources {
        match logged_by_name.get(r.name.as_str()) {
            None => out.added.push(r.name.clone()),
            Some(digest) if **digest != r.digest => out.changed.push(r.name.clone()),
            Some(_) => {}
        }
    }
    for r in &logged.resources {
        if !local_names.contains(r.name.as_str()) {
            out.removed.push(r.name.clone());
        }
    }
    for list in [&mut out.added, &mut out.removed, &mut out.changed] {
        list.sort_by(|a, b| compare_names(a, b));
        list.dedup();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn sha(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    fn manifest(names: &[&str]) -> Manifest {
        Manifest {
            ignore_paths: vec![],
            allow_symlinks: false,
            resources: names
                .iter()
                .map(|n| Resource {
                    name: n.to_string(),
                    digest: sha(n.as_bytes()),
                })
                .collect(),
        }
    }

    fn write(root: &Path, name: &str, data: &[u8]) {
        let path = root.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data).unwrap();
    }

    fn names(m: &Manifest) -> Vec<&str> {
        m.resources.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn order_is_by_components_then_code_points() {
        let mut v = vec![
            "a.b", "a-b", "a/b", "a b", "B", "a", "Z.txt", "_x", "b", "é", "z", "😀", "～", "a/c/d",
        ];
        v.sort_by(|a, b| compare_names(a, b));
        // As model_signing 1.1.1 printed them (tests/data/manifest has the full tree).
        assert_eq!(
            v,
            [
                "B", "Z.txt", "_x", "a", "a/b", "a/c/d", "a b", "a-b", "a.b", "b", "z", "é", "～",
                "😀"
            ]
        );
        assert_eq!(compare_names("a/b", "a/b"), Ordering::Equal);
        assert_eq!(compare_names("a", "a/b"), Ordering::Less);
    }

    #[test]
    fn root_digest_concatenates_raw_digests() {
        assert_eq!(manifest(&[]).root_digest(), sha(b""));
        let m = manifest(&["a", "b"]);
        let mut cat = Vec::new();
        cat.extend_from_slice(&sha(b"a"));
        cat.extend_from_slice(&sha(b"b"));
        assert_eq!(m.root_digest(), sha(&cat));
    }

    #[test]
    fn json_round_trip() {
        let mut m = manifest(&["a/b", "a-b", "x"]);
        m.ignore_paths = vec![".git".into(), "y".into()];
        let v = m.to_json_value();
        assert_eq!(v["serialization"]["method"], "files");
        assert_eq!(v["serialization"]["hash_type"], "sha256");
        assert_eq!(v["resources"][0]["algorithm"], "sha256");
        assert_eq!(v["resources"][0]["digest"], hex::encode(sha(b"a/b")));
        assert_eq!(Manifest::from_json_value(&v, "$").unwrap(), m);

        // No ignore paths: the key is omitted, and absence reads as empty.
        let m = manifest(&["x"]);
        let v = m.to_json_value();
        assert!(v["serialization"].get("ignore_paths").is_none());
        assert_eq!(Manifest::from_json_value(&v, "$").unwrap(), m);
    }

    #[test]
    fn unknown_members_are_ignored() {
        let mut v = manifest(&["x"]).to_json_value();
        v["future"] = json!({"anything": 1});
        v["serialization"]["shard_size"] = json!(5);
        v["resources"][0]["annotations"] = json!({"k": "v"});
        assert_eq!(
            Manifest::from_json_value(&v, "$").unwrap(),
            manifest(&["x"])
        );
    }

    fn error_of(v: &Value) -> String {
        Manifest::from_json_value(v, "$.predicate")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn validation_names_path_and_reason() {
        let good = manifest(&["a", "b"]).to_json_value();
        let case = |edit: &dyn Fn(&mut Value), want: &[&str]| {
            let mut v = good.clone();
            edit(&mut v);
            let e = error_of(&v);
            for w in want {
                assert!(e.contains(w), "{e:?} lacks {w:?}");
            }
        };
        case(&|v| *v = json!([]), &["$.predicate must be an object"]);
        case(
            &|v| v["serialization"]["method"] = json!("shards"),
            &["$.predicate.serialization.method", "\"shards\""],
        );
        case(
            &|v| v["serialization"]["hash_type"] = json!("blake3"),
            &["$.predicate.serialization.hash_type", "sha256"],
        );
        case(
            &|v| {
                v["serialization"]
                    .as_object_mut()
                    .unwrap()
                    .remove("allow_symlinks");
            },
            &["missing required field $.predicate.serialization.allow_symlinks"],
        );
        case(
            &|v| v["serialization"]["allow_symlinks"] = json!("false"),
            &["$.predicate.serialization.allow_symlinks must be a boolean"],
        );
        case(
            &|v| v["serialization"]["ignore_paths"] = json!(["ok", "/abs"]),
            &["$.predicate.serialization.ignore_paths[1]", "absolute"],
        );
        case(
            &|v| v["serialization"]["ignore_paths"] = json!(["x", "x"]),
            &["ignore_paths[1]", "twice"],
        );
        case(
            &|v| v["resources"][1]["algorithm"] = json!("SHA256"),
            &["$.predicate.resources[1].algorithm"],
        );
        case(
            &|v| v["resources"][0]["digest"] = json!("AB".repeat(32)),
            &["$.predicate.resources[0].digest", "lowercase"],
        );
        case(
            &|v| v["resources"][0]["digest"] = json!("ab".repeat(31)),
            &["resources[0].digest", "64"],
        );
        case(
            &|v| v["resources"][1]["name"] = json!("a"),
            &["$.predicate.resources[1].name", "twice"],
        );
        case(
            &|v| v["resources"].as_array_mut().unwrap().reverse(),
            &["$.predicate.resources[1].name", "out of order", "\"b\""],
        );
        case(
            &|v| {
                v["resources"][1].as_object_mut().unwrap().remove("digest");
            },
            &["missing required field $.predicate.resources[1].digest"],
        );
        case(
            &|v| v["serialization"]["ignore_paths"] = json!(["b"]),
            &["resources[1].name", "inside the ignore path \"b\""],
        );
        for (name, why) in [
            ("", "empty"),
            ("/etc/passwd", "absolute"),
            ("a//b", "empty segment"),
            ("a/", "empty segment"),
            ("./a", "'.'"),
            (".", "'.'"),
            ("a/../b", "'..'"),
            ("a\0b", "NUL"),
        ] {
            case(
                &|v| v["resources"][0]["name"] = json!(name),
                &["$.predicate.resources[0].name", why],
            );
        }
    }

    #[test]
    fn spec_order_is_refused_where_it_differs_from_the_tools() {
        // Code point order of whole names: "a-b" < "a/b". The tool's: "a/b" < "a-b".
        let mut m = manifest(&["a-b", "a/b"]);
        let e = Manifest::from_json_value(&m.to_json_value(), "$").unwrap_err();
        assert!(e.to_string().contains("out of order"), "{e}");
        m.resources.reverse();
        assert!(Manifest::from_json_value(&m.to_json_value(), "$").is_ok());
    }

    #[test]
    fn empty_manifest_is_accepted_like_the_tool() {
        let m = manifest(&[]);
        let read = Manifest::from_json_value(&m.to_json_value(), "$").unwrap();
        assert!(read.is_empty());
        assert_eq!(
            hex::encode(read.root_digest()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn get_finds_by_name() {
        let m = manifest(&["a/b", "a-b", "x"]);
        assert_eq!(m.get("a-b").unwrap().digest, sha(b"a-b"));
        assert!(m.get("a").is_none());
    }

    #[test]
    fn diff_names_each_kind() {
        let logged = manifest(&["a", "b", "c"]);
        let mut local = manifest(&["a", "c", "d"]);
        local.resources[1].digest[0] ^= 1;
        let d = diff(&logged, &local);
        assert_eq!(d.added, ["d"]);
        assert_eq!(d.removed, ["b"]);
        assert_eq!(d.changed, ["c"]);
        assert!(!d.is_empty());
        assert!(diff(&logged, &logged).is_empty());
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

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
//! ([`Manifest::from_json_value`]) or from a file ([`Manifest::from_json`], a detached manifest),
//! writes one ([`Manifest::to_json_value`], [`Manifest::to_json`]), computes the root
//! ([`Manifest::root_digest`]) and compares a logged manifest with a local one ([`diff`]). Its
//! `serialization` object alone is a [`Serialization`].
//!
//! Layout: this file holds the manifest, its JSON and its validation; `hash.rs` hashes a
//! directory; `diff.rs` compares two manifests.
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

mod diff;
mod hash;

pub use diff::{diff, ManifestDiff};
pub use hash::{hash_directory, HashOptions, READ_BUFFER};

use std::cmp::Ordering;
use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

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

/// How a directory was hashed into a manifest: the manifest's `serialization` object, whose
/// `method` and `hash_type` are always `files` and `sha256` here. Not covered by the root
/// digest. A detached manifest's declaration records it (see
/// [`crate::admission::declaration::DetachedManifest`]), so that a directory can be hashed as the
/// publisher did without the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Serialization {
    /// As [`Manifest::ignore_paths`].
    pub ignore_paths: Vec<String>,
    /// As [`Manifest::allow_symlinks`].
    pub allow_symlinks: bool,
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

    /// How the directory was hashed.
    pub fn serialization(&self) -> Serialization {
        Serialization {
            ignore_paths: self.ignore_paths.clone(),
            allow_symlinks: self.allow_symlinks,
        }
    }

    /// The OMS predicate body, as `model_signing` writes it. `ignore_paths` is omitted when
    /// empty, as the tool does.
    pub fn to_json_value(&self) -> Value {
        let serialization = self.serialization().to_json_value();
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

    /// The manifest as a file: [`Manifest::to_json_value`] as pretty-printed JSON with a final
    /// newline. `glasslog declare` writes a detached manifest so; a declaration names the file
    /// by the SHA-256 of its bytes, whatever JSON writer made them.
    pub fn to_json(&self) -> Vec<u8> {
        // `{:#}` is serde_json's infallible pretty printer.
        format!("{:#}\n", self.to_json_value()).into_bytes()
    }

    /// Reads a manifest file: strict JSON ([`strict_json::parse`]: UTF-8, no duplicate keys)
    /// holding an OMS predicate body, validated by [`Manifest::from_json_value`] with paths from
    /// `$`.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        Manifest::from_json_value(&strict_json::parse(bytes)?, strict_json::ROOT)
    }

    /// Reads and validates an OMS predicate body found at JSON path `path` (e.g.
    /// `$.predicate`). Errors name the JSON path and the rule broken. Unknown members are
    /// ignored (see the module documentation).
    pub fn from_json_value(v: &Value, path: &str) -> Result<Manifest, ManifestError> {
        let top = strict_json::object(v, path)?;
        let ser = strict_json::require(top, "serialization", path)?;
        let Serialization {
            ignore_paths,
            allow_symlinks,
        } = Serialization::from_json_value(ser, &member_path(path, "serialization"))?;
        let ignored = IgnoreSet::new(&ignore_paths);

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
            let digest = strict_json::sha256_hex(digest_hex).map_err(|why| {
                let reason = format!(
                    "{digest_hex:?} is not a SHA-256 digest: {why}; write exactly 64 lowercase \
                     hex digits"
                );
                invalid(member_path(&item_path, "digest"), reason)
            })?;
            if let Some(ignore) = ignored.first_covering(name) {
                return Err(invalid(
                    name_path,
                    format!(
                        "{name:?} lies inside the ignore path {ignore:?} of this same manifest"
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

impl Serialization {
    /// The `serialization` object, as `model_signing` writes it; `ignore_paths` is omitted
    /// when empty, as the tool does.
    pub fn to_json_value(&self) -> Value {
        let mut serialization = json!({
            "method": METHOD_FILES,
            "hash_type": SHA256,
            "allow_symlinks": self.allow_symlinks,
        });
        if !self.ignore_paths.is_empty() {
            serialization["ignore_paths"] = json!(self.ignore_paths);
        }
        serialization
    }

    /// Reads and validates a `serialization` object found at JSON path `path` (e.g.
    /// `$.predicate.manifest.serialization`): method `files`, hash type `sha256`, a boolean
    /// `allow_symlinks`, and optional `ignore_paths` that are relative, normalised and unique.
    /// Unknown members are ignored, as in a manifest.
    pub fn from_json_value(v: &Value, path: &str) -> Result<Serialization, ManifestError> {
        let ser = strict_json::object(v, path)?;
        let method = strict_json::require_str(ser, "method", path)?;
        if method != METHOD_FILES {
            return Err(invalid(
                member_path(path, "method"),
                format!(
                    "serialization method {method:?} is not supported; glasslog accepts only \
                     \"files\" (one SHA-256 digest per file)"
                ),
            ));
        }
        let hash_type = strict_json::require_str(ser, "hash_type", path)?;
        if hash_type != SHA256 {
            return Err(invalid(
                member_path(path, "hash_type"),
                format!(
                    "hash type {hash_type:?} is not supported; glasslog accepts only \"sha256\""
                ),
            ));
        }
        let symlinks_path = member_path(path, "allow_symlinks");
        let allow_symlinks = match strict_json::require(ser, "allow_symlinks", path)? {
            Value::Bool(b) => *b,
            other => return Err(strict_json::wrong_type(other, &symlinks_path, "a boolean").into()),
        };
        let mut ignore_paths = Vec::new();
        if let Some(list) = ser.get("ignore_paths") {
            let list_path = member_path(path, "ignore_paths");
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
        Ok(Serialization {
            ignore_paths,
            allow_symlinks,
        })
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

/// A manifest's ignore paths, for asking which of them covers a name: a path covers itself and
/// every name below it, component-wise (`a/b` covers `a/b` and `a/b/c`, not `a/bc`).
///
/// Cost: one hash lookup per component of the name asked about, whatever the number of ignore
/// paths (a list scan per resource made a manifest quadratic to admit).
struct IgnoreSet<'a> {
    /// Each ignore path, normalised as [`check_relative_path`] requires, with its position in
    /// the manifest's list.
    positions: std::collections::HashMap<&'a str, usize>,
}

impl<'a> IgnoreSet<'a> {
    fn new(paths: &'a [String]) -> Self {
        let mut positions = std::collections::HashMap::with_capacity(paths.len());
        for (i, p) in paths.iter().enumerate() {
            positions.entry(p.as_str()).or_insert(i);
        }
        IgnoreSet { positions }
    }

    /// The ignore path that covers `name`, the first in the manifest's list if several do.
    fn first_covering(&self, name: &str) -> Option<&'a str> {
        if self.positions.is_empty() {
            return None;
        }
        // Every prefix of `name` that ends at a component boundary, and `name` itself.
        let prefixes = name
            .match_indices('/')
            .map(|(i, _)| &name[..i])
            .chain(std::iter::once(name));
        prefixes
            .filter_map(|prefix| self.positions.get_key_value(prefix))
            .min_by_key(|(_, &position)| position)
            .map(|(&path, _)| path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn sha(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    pub(super) fn manifest(names: &[&str]) -> Manifest {
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
    fn files_and_serializations_round_trip() {
        let mut m = manifest(&["a/b", "x"]);
        m.ignore_paths = vec![".git".into()];
        m.allow_symlinks = true;
        let file = m.to_json();
        assert!(file.ends_with(b"}\n"));
        assert_eq!(Manifest::from_json(&file).unwrap(), m);
        let s = m.serialization();
        assert_eq!(
            Serialization::from_json_value(&s.to_json_value(), "$").unwrap(),
            s
        );
        assert_eq!(s.to_json_value(), m.to_json_value()["serialization"]);
        // A file is strict JSON: a repeated key is refused, not read as its last value.
        let twice = br#"{"resources": [], "resources": [], "serialization": {}}"#;
        let e = Manifest::from_json(twice).unwrap_err();
        assert!(e.to_string().contains("duplicate"), "{e}");
        let e = Manifest::from_json(b"[]").unwrap_err();
        assert!(e.to_string().contains("$ must be an object"), "{e}");
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

    /// The first ignore path covering `name`, by a scan of the list: the rule, literally.
    fn first_covering_naive<'a>(paths: &'a [String], name: &str) -> Option<&'a str> {
        paths.iter().map(String::as_str).find(|p| {
            let mut components = name.split('/');
            p.split('/').all(|c| components.next() == Some(c))
        })
    }

    #[test]
    fn ignore_set_agrees_with_a_scan_of_the_list() {
        let paths: Vec<String> = ["a/b", "a", "b/c/d", "x.y", "a-b", "c/d"]
            .map(String::from)
            .to_vec();
        let set = IgnoreSet::new(&paths);
        for name in [
            "a", "a/b", "a/b/c", "ab", "a-b", "a-b/c", "b", "b/c", "b/c/d", "b/c/de", "b/c/d/e",
            "x.y", "x", "c/d/e", "d/c/d", "z",
        ] {
            assert_eq!(
                set.first_covering(name),
                first_covering_naive(&paths, name),
                "{name}"
            );
        }
        assert_eq!(IgnoreSet::new(&[]).first_covering("a"), None);
    }

    #[test]
    fn get_finds_by_name() {
        let m = manifest(&["a/b", "a-b", "x"]);
        assert_eq!(m.get("a-b").unwrap().digest, sha(b"a-b"));
        assert!(m.get("a").is_none());
    }
}

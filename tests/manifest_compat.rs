//! Compatibility of `glasslog::admission::manifest` with the OpenSSF reference tool, `model_signing` 1.1.1.
//!
//! The tree described by `tests/data/manifest/fixture.json` is built in a temporary directory
//! and hashed; the result must equal, case by case, what the reference tool produced for the
//! same tree (`tests/data/manifest/expected.json`, written by `reference.py` there): the same
//! names in the same order, the same digests, the same root digest, the same serialization
//! block. Then the refusals (symlinks, non-UTF-8 names) and `diff`.

#![cfg(unix)]

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use glasslog::admission::manifest::{
    diff, hash_directory, HashOptions, Manifest, ManifestError, DEFAULT_IGNORE_PATHS,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn load(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/manifest")
        .join(name);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key:?} in {v}"))
}

/// The file contents `fixture.json` describes (same rule as `reference.py`).
fn content(entry: &Value) -> Vec<u8> {
    if let Some(text) = entry["text"].as_str() {
        return text.as_bytes().to_vec();
    }
    let spec = &entry["pseudorandom"];
    let seed = str_of(spec, "seed").as_bytes();
    let len = spec["len"].as_u64().unwrap() as usize;
    let mut out = Vec::with_capacity(len + 32);
    let mut counter: u32 = 0;
    while out.len() < len {
        let mut h = Sha256::new();
        h.update(seed);
        h.update(counter.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        counter += 1;
    }
    out.truncate(len);
    out
}

/// Builds the fixture tree at `root` (directories, then files, then symlinks if asked).
fn build(root: &Path, entries: &[Value], symlinks: bool) {
    fs::create_dir(root).unwrap();
    for e in entries.iter().filter(|e| e["dir"] == true) {
        fs::create_dir_all(root.join(str_of(e, "path"))).unwrap();
    }
    for e in entries
        .iter()
        .filter(|e| e.get("text").is_some() || e.get("pseudorandom").is_some())
    {
        let path = root.join(str_of(e, "path"));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content(e)).unwrap();
    }
    if symlinks {
        for e in entries.iter().filter(|e| e.get("symlink").is_some()) {
            std::os::unix::fs::symlink(str_of(e, "symlink"), root.join(str_of(e, "path"))).unwrap();
        }
    }
}

fn fixture() -> (Vec<Value>, Vec<Value>) {
    let f = load("fixture.json");
    (
        f["entries"].as_array().unwrap().clone(),
        f["cases"].as_array().unwrap().clone(),
    )
}

fn case_options(case: &Value) -> HashOptions {
    let mut ignore_paths: Vec<String> = if case["ignore_git_paths"] == true {
        DEFAULT_IGNORE_PATHS.iter().map(|p| p.to_string()).collect()
    } else {
        vec![]
    };
    for p in case["ignore_paths"].as_array().unwrap() {
        ignore_paths.push(p.as_str().unwrap().to_owned());
    }
    HashOptions {
        ignore_paths,
        allow_symlinks: case["allow_symlinks"].as_bool().unwrap(),
    }
}

/// The fixture's tree without symlinks, hashed with the defaults, in `dir/model`.
fn default_tree(dir: &Path) -> (PathBuf, Manifest) {
    let (entries, _) = fixture();
    let root = dir.join("model");
    build(&root, &entries, false);
    let m = hash_directory(&root, &HashOptions::default(), None).unwrap();
    (root, m)
}

#[test]
fn every_case_matches_the_reference_tool() {
    let (entries, cases) = fixture();
    let expected = load("expected.json");
    assert_eq!(expected["generated_by"]["model_signing"], "1.1.1");
    let symlink_names: BTreeSet<&str> = entries
        .iter()
        .filter(|e| e.get("symlink").is_some())
        .map(|e| str_of(e, "path"))
        .collect();

    let mut compared = 0;
    let mut refused = 0;
    for case in &cases {
        let name = str_of(case, "name");
        let want = &expected["cases"][name];
        assert!(want.is_object(), "expected.json lacks case {name}");
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("model");
        build(&root, &entries, case["symlinks"] == true);
        let got = hash_directory(&root, &case_options(case), None);

        if let Some(error) = want.get("error") {
            // The tool: "ValueError: Cannot use '<model>/link-to-weights' because it is a
            // symlink. ...". Both walks stop at the first symlink they meet, in their own order.
            assert!(
                error.as_str().unwrap().contains("is a symlink"),
                "{name}: {error}"
            );
            match got {
                Err(ManifestError::Symlink { path }) => {
                    let rel = path.strip_prefix(&root).unwrap().to_str().unwrap();
                    assert!(symlink_names.contains(rel), "{name}: {rel}");
                }
                other => panic!("{name}: expected a symlink error, got {other:?}"),
            }
            refused += 1;
            continue;
        }

        let got = got.unwrap_or_else(|e| panic!("{name}: {e}"));
        let predicate = &want["predicate"];
        let want_names: Vec<&str> = predicate["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| str_of(r, "name"))
            .collect();
        let got_names: Vec<&str> = got.resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(got_names, want_names, "{name}: names or order");
        for (r, w) in got
            .resources
            .iter()
            .zip(predicate["resources"].as_array().unwrap())
        {
            assert_eq!(
                hex::encode(r.digest),
                str_of(w, "digest"),
                "{name}: {}",
                r.name
            );
        }
        assert_eq!(
            hex::encode(got.root_digest()),
            str_of(want, "root_digest"),
            "{name}"
        );
        // The whole predicate body, serialization block included (ignore_paths, which the
        // tool writes in a varying order, is stored sorted, in the same order as ours).
        assert_eq!(got.to_json_value(), *predicate, "{name}: predicate");
        // And the tool's predicate reads back as the same manifest.
        let read = Manifest::from_json_value(predicate, "$.predicate").unwrap();
        assert_eq!(read, got, "{name}: from_json_value");
        compared += 1;
    }
    assert_eq!(
        (compared, refused),
        (4, 1),
        "every case of fixture.json was checked"
    );
}

#[test]
fn fixture_exercises_the_ordering_differences() {
    let expected = load("expected.json");
    let names: Vec<String> = expected["cases"]["default"]["predicate"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| str_of(r, "name").to_owned())
        .collect();
    // Plain code point order of whole names (the OMS spec's wording) differs from the tool's.
    let mut code_point = names.clone();
    code_point.sort();
    assert_ne!(code_point, names);
    let pos = |n: &str| names.iter().position(|x| x == n).unwrap();
    assert!(pos("a/b") < pos("a-b") && pos("a-b") < pos("a.b") && pos("a.b") < pos("ab/c"));
    assert!(pos("B") < pos("Z.txt") && pos("Z.txt") < pos("_x") && pos("_x") < pos("b"));
    // U+FF5E before U+1F600 (code points), unlike UTF-16 order.
    assert!(pos("unicode/～.txt") < pos("unicode/😀.txt"));
    assert!(pos("unicode/z") < pos("unicode/é"));
    // NFC and NFD spellings are two files.
    assert!(names.contains(&"unicode/café.txt".to_owned()));
    assert!(names.contains(&"unicode/cafe\u{301}.txt".to_owned()));

    // A manifest in the spec's order is refused where the orders differ.
    let mut predicate = expected["cases"]["default"]["predicate"].clone();
    predicate["resources"]
        .as_array_mut()
        .unwrap()
        .sort_by(|a, b| str_of(a, "name").cmp(str_of(b, "name")));
    let e = Manifest::from_json_value(&predicate, "$.predicate").unwrap_err();
    assert!(e.to_string().contains("out of order"), "{e}");
}

#[test]
fn symlinks_are_refused_by_default_and_hashed_as_targets_when_allowed() {
    let (entries, _) = fixture();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("model");
    build(&root, &entries, true);

    let e = hash_directory(&root, &HashOptions::default(), None).unwrap_err();
    assert!(matches!(e, ManifestError::Symlink { .. }), "{e}");
    let message = e.to_string();
    assert!(message.contains(root.to_str().unwrap()), "{message}");
    assert!(message.contains("allow_symlinks"), "{message}");

    let opts = HashOptions {
        allow_symlinks: true,
        ..HashOptions::default()
    };
    let m = hash_directory(&root, &opts, None).unwrap();
    let digest = |n: &str| m.get(n).unwrap_or_else(|| panic!("no {n}")).digest;
    assert_eq!(digest("link-to-weights"), digest("模型/权重.bin"));
    assert_eq!(digest("données/lien"), digest("données/été.txt"));
    // The link to a directory is neither listed nor descended, as in the tool.
    assert!(m
        .resources
        .iter()
        .all(|r| !r.name.starts_with("linked-dir")));
}

#[test]
fn non_utf8_file_name_is_refused_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let (root, _) = default_tree(dir.path());
    let bad = root.join("données").join(OsStr::from_bytes(b"caf\xe9.txt"));
    fs::write(&bad, b"latin-1 name").unwrap();
    let e = hash_directory(&root, &HashOptions::default(), None).unwrap_err();
    assert!(matches!(e, ManifestError::NonUtf8Path { .. }), "{e}");
    let message = e.to_string();
    assert!(message.contains("données/caf\u{FFFD}.txt"), "{message}");
    assert!(message.contains("not valid UTF-8"), "{message}");
}

#[test]
fn diff_names_changed_renamed_added_and_removed_files() {
    let dir = tempfile::tempdir().unwrap();
    let (root, logged) = default_tree(dir.path());

    // A flipped byte in the middle of the multi-MiB file (in its fourth 1 MiB read).
    let big = root.join("weights/model-00001-of-00002.safetensors");
    let mut data = fs::read(&big).unwrap();
    data[3 * 1024 * 1024 + 5] ^= 0x01;
    fs::write(&big, data).unwrap();
    // An empty file no longer empty.
    fs::write(root.join("empty.bin"), b"\0").unwrap();
    // A rename, an addition, a removal.
    fs::rename(root.join("données/été.txt"), root.join("données/ete.txt")).unwrap();
    fs::create_dir_all(root.join("new")).unwrap();
    fs::write(root.join("new/file.bin"), b"new").unwrap();
    fs::remove_file(root.join("unicode/Ω.bin")).unwrap();
    // Changes in ignored paths do not count.
    fs::write(root.join(".git/HEAD"), b"ref: refs/heads/other\n").unwrap();
    fs::write(root.join(".github/new.yml"), b"").unwrap();

    let local = hash_directory(&root, &HashOptions::for_verifying(&logged), None).unwrap();
    let d = diff(&logged, &local);
    assert_eq!(d.added, ["données/ete.txt", "new/file.bin"]);
    assert_eq!(d.removed, ["données/été.txt", "unicode/Ω.bin"]);
    assert_eq!(
        d.changed,
        ["empty.bin", "weights/model-00001-of-00002.safetensors"]
    );
    assert_ne!(local.root_digest(), logged.root_digest());

    // Undo everything: no difference, same root.
    let mut data = fs::read(&big).unwrap();
    data[3 * 1024 * 1024 + 5] ^= 0x01;
    fs::write(&big, data).unwrap();
    fs::write(root.join("empty.bin"), b"").unwrap();
    fs::rename(root.join("données/ete.txt"), root.join("données/été.txt")).unwrap();
    fs::remove_dir_all(root.join("new")).unwrap();
    fs::write(root.join("unicode/Ω.bin"), b"omega\n").unwrap();
    let again = hash_directory(&root, &HashOptions::for_verifying(&logged), None).unwrap();
    assert!(diff(&logged, &again).is_empty());
    assert_eq!(again.root_digest(), logged.root_digest());
}

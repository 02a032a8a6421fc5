//! `glasslog verify` and `glasslog audit` end to end: the real binary against real servers on
//! loopback. Verify catches every kind of change to a model directory and reports later
//! releases; a proof bundle verifies offline and not when tampered with or under another key;
//! an honest log with mixed declarations and references audits clean, a log whose stored entries
//! were altered does not; and the split-view state catches a second log signed with the same key.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Publisher, TestServer, ORIGIN, TEST_PREDICATE};
use glasslog::admission::declaration;
use glasslog::admission::dsse::Envelope;
use glasslog::admission::keys::KeyType;
use glasslog::admission::manifest::{hash_directory, HashOptions};
use glasslog::client::trust_state::{Accepted, TrustState};
use glasslog::client::LogClient;
use glasslog::tlog::checkpoint::Origin;
use glasslog::tlog::note::LogSigner;
use serde_json::{json, Value};

/// Runs glasslog with its config directory inside `home` (so no test touches the user's).
fn glasslog<S: AsRef<OsStr>>(home: &Path, args: impl IntoIterator<Item = S>) -> Output {
    Command::new(common::glasslog_bin())
        .args(args)
        .env("GLASSLOG_LOG", "off")
        .env("XDG_CONFIG_HOME", home.join("config"))
        .output()
        .expect("run glasslog")
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Requires exit status `code`; returns stdout.
fn expect<S: AsRef<OsStr>>(home: &Path, code: i32, args: impl IntoIterator<Item = S>) -> String {
    let out = glasslog(home, args);
    assert_eq!(out.status.code(), Some(code), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn write_files(dir: &Path, files: &[(&str, &[u8])]) -> PathBuf {
    for (name, data) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
    dir.to_path_buf()
}

/// The JSON lines of a `--json` run: findings (the monitor's shape), then the summary.
fn json_lines(stdout: &str) -> (Vec<Value>, Value) {
    let mut lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let summary = lines.pop().expect("a summary line");
    assert_eq!(summary["type"], "summary", "{stdout}");
    assert!(
        lines
            .iter()
            .all(|l| l["kind"].is_string() && l.get("type").is_none()),
        "{stdout}"
    );
    (lines, summary)
}

fn keygen(home: &Path) -> PathBuf {
    let key = home.join("publisher.key");
    expect(
        home,
        0,
        [OsStr::new("keygen"), "--out".as_ref(), key.as_os_str()],
    );
    key
}

fn pub_of(key: &Path) -> PathBuf {
    PathBuf::from(format!("{}.pub", key.display()))
}

/// `declare` (model or dataset) then `submit` with the pinned key; returns the bundle's path.
fn declare_and_submit(
    home: &Path,
    server: &TestServer,
    key: &Path,
    kind: &str,
    dir: &Path,
    out: &str,
    flags: &[&str],
) -> PathBuf {
    let decl = home.join(out);
    let mut args: Vec<&OsStr> = vec!["declare".as_ref(), kind.as_ref(), dir.as_os_str()];
    args.extend(flags.iter().map(OsStr::new));
    args.extend([
        "--key".as_ref(),
        key.as_os_str(),
        "--out".as_ref(),
        decl.as_os_str(),
    ]);
    expect(home, 0, args);
    let public = pub_of(key);
    expect(
        home,
        0,
        [
            OsStr::new("submit"),
            decl.as_os_str(),
            "--server".as_ref(),
            server.url.as_ref(),
            "--log-key".as_ref(),
            server.verifier_key.as_ref(),
            "--public-key".as_ref(),
            public.as_os_str(),
        ],
    );
    PathBuf::from(format!("{}.bundle.json", decl.display()))
}

/// `verify DIR --name NAME [extra] --server --log-key --state`, expecting exit status `code`.
fn verify(
    home: &Path,
    server: &TestServer,
    dir: &Path,
    name: &str,
    extra: &[&str],
    code: i32,
) -> String {
    let state = home.join("state.json");
    let mut args: Vec<&OsStr> = vec![
        "verify".as_ref(),
        dir.as_os_str(),
        "--name".as_ref(),
        name.as_ref(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    args.extend([
        "--server".as_ref(),
        server.url.as_ref(),
        "--log-key".as_ref(),
        server.verifier_key.as_ref(),
        "--state".as_ref(),
        state.as_os_str(),
    ]);
    expect(home, code, args)
}

fn field<'a>(stdout: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}: ");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key:?} in {stdout}"))
}

const MODEL_FILES: [(&str, &[u8]); 4] = [
    ("config.json", b"{\"layers\": 2}"),
    (
        "model.safetensors",
        b"\x00\x01\x02 weights weights weights \xfe\xff",
    ),
    ("tokenizer.json", b"{\"vocab\": [\"a\", \"b\"]}"),
    ("sub/notes.md", b"# notes\n"),
];

#[test]
fn verify_names_every_change_to_a_model_directory_and_later_releases() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let server = TestServer::start(&home.join("data"), &["--origin", ORIGIN]);
    let key = keygen(home);
    let data_dir = write_files(
        &home.join("corpus"),
        &[("train.jsonl", b"{\"text\": \"hi\"}\n")],
    );
    let corpus = declare_and_submit(
        home,
        &server,
        &key,
        "dataset",
        &data_dir,
        "corpus.dsse.json",
        &[
            "--name",
            "org/corpus",
            "--version",
            "1",
            "--license",
            "CC-BY-4.0",
            "--source",
            "synthetic:generated",
            "--processing",
            "none",
            "--contains-personal-data",
            "no",
            "--personal-data-handling",
            "none present",
        ],
    );
    let model_dir = write_files(&home.join("model"), &MODEL_FILES);
    let trained_on = format!("{}:pretraining", corpus.display());
    let v1 = declare_and_submit(
        home,
        &server,
        &key,
        "model",
        &model_dir,
        "model-1.dsse.json",
        &[
            "--name",
            "org/model",
            "--version",
            "1.0",
            "--license",
            "Apache-2.0",
            "--trained-on",
            &trained_on,
        ],
    );

    // The untouched directory verifies, and is the head.
    let out = verify(home, &server, &model_dir, "org/model", &[], 0);
    assert_eq!(field(&out, "result"), "ok");
    assert_eq!(field(&out, "index"), "1");
    assert_eq!(field(&out, "version"), "1.0");
    assert_eq!(field(&out, "head"), "yes");
    assert_eq!(field(&out, "files"), "all 4 match the logged manifest");
    assert!(
        field(&out, "split-view check").starts_with("first-use"),
        "{out}"
    );

    // One flipped byte in one file.
    let weights = model_dir.join("model.safetensors");
    let original = std::fs::read(&weights).unwrap();
    let mut flipped = original.clone();
    flipped[7] ^= 0x01;
    std::fs::write(&weights, &flipped).unwrap();
    let out = verify(home, &server, &model_dir, "org/model", &[], 1);
    assert!(out.contains("FAIL file-changed (index 1, org/model, file model.safetensors): model.safetensors differs"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("FAIL ")).count(),
        1,
        "{out}"
    );
    assert_eq!(field(&out, "result"), "FAIL");
    std::fs::write(&weights, &original).unwrap();

    // A renamed file: one removed, one added.
    std::fs::rename(model_dir.join("tokenizer.json"), model_dir.join("tok.json")).unwrap();
    let out = verify(home, &server, &model_dir, "org/model", &["--json"], 1);
    let (findings, summary) = json_lines(&out);
    let got: Vec<(&str, &str)> = findings
        .iter()
        .map(|f| (f["kind"].as_str().unwrap(), f["file"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            ("file-added", "tok.json"),
            ("file-removed", "tokenizer.json")
        ]
    );
    assert!(findings
        .iter()
        .all(|f| f["indexes"] == json!([1]) && f["names"] == json!(["org/model"])));
    assert_eq!(summary["result"], "fail");
    assert_eq!(summary["findings"], 2);
    std::fs::rename(model_dir.join("tok.json"), model_dir.join("tokenizer.json")).unwrap();

    // An added file, then a removed one.
    std::fs::write(model_dir.join("sub/extra.bin"), b"x").unwrap();
    let out = verify(home, &server, &model_dir, "org/model", &[], 1);
    assert!(
        out.contains("FAIL file-added (index 1, org/model, file sub/extra.bin)"),
        "{out}"
    );
    std::fs::remove_file(model_dir.join("sub/extra.bin")).unwrap();
    std::fs::remove_file(model_dir.join("config.json")).unwrap();
    let out = verify(home, &server, &model_dir, "org/model", &[], 1);
    assert!(
        out.contains("FAIL file-removed (index 1, org/model, file config.json)"),
        "{out}"
    );
    write_files(&model_dir, &MODEL_FILES[..1]);
    verify(home, &server, &model_dir, "org/model", &[], 0);

    // A later release that supersedes 1.0: the old directory still verifies, as 1.0, not the head.
    let model2_dir = write_files(
        &home.join("model2"),
        &[("model.safetensors", b"new weights")],
    );
    let supersedes = v1.display().to_string();
    declare_and_submit(
        home,
        &server,
        &key,
        "model",
        &model2_dir,
        "model-2.dsse.json",
        &[
            "--name",
            "org/model",
            "--version",
            "2.0",
            "--license",
            "Apache-2.0",
            "--data-disclosure",
            "withheld",
            "--supersedes",
            &supersedes,
        ],
    );
    for extra in [&[][..], &["--version", "1.0"][..]] {
        let out = verify(home, &server, &model_dir, "org/model", extra, 0);
        assert_eq!(field(&out, "index"), "1", "{out}");
        assert_eq!(
            field(&out, "head"),
            "no (the latest declaration of org/model is index 2, version 2.0)"
        );
        assert_eq!(
            field(&out, "later"),
            "index 2, model version 2.0, supersedes index 1"
        );
        assert!(
            field(&out, "split-view check").starts_with("consistent-from-2") || extra.len() == 2,
            "{out}"
        );
    }
    let out = verify(home, &server, &model2_dir, "org/model", &["--json"], 0);
    let (_, summary) = json_lines(&out);
    assert_eq!(summary["declaration"]["index"], 2);
    assert_eq!(summary["head"], true);
    // The old directory against 2.0 only: the differences from the current release.
    let out = verify(
        home,
        &server,
        &model_dir,
        "org/model",
        &["--version", "2.0"],
        1,
    );
    assert!(
        out.contains("FAIL file-changed (index 2, org/model, file model.safetensors)"),
        "{out}"
    );
    assert!(
        out.contains("FAIL file-added (index 2, org/model, file config.json)"),
        "{out}"
    );
    // Unknown names and versions.
    let out = verify(home, &server, &model_dir, "org/nothing", &[], 1);
    assert!(out.contains("FAIL not-found (org/nothing)"), "{out}");
    let out = verify(
        home,
        &server,
        &model_dir,
        "org/model",
        &["--version", "9"],
        1,
    );
    assert!(out.contains("it has versions 1.0, 2.0"), "{out}");
    // What cannot be checked at all exits 2, saying why.
    let out = glasslog(
        home,
        [
            "verify",
            "/nonexistent",
            "--name",
            "org/model",
            "--server",
            &server.url,
            "--log-key",
            &server.verifier_key,
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent is not a directory"));
    let args = [
        "verify",
        "--json",
        "--bundle",
        "x",
        "--log-key",
        "not-a-key",
    ];
    let out = glasslog(home, args);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let error: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(error["type"], "error");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("--log-key: "),
        "{error}"
    );

    // Offline, from the bundle, with the server gone.
    drop(server);
    let vkey = std::fs::read_to_string(&v1)
        .map(|b| {
            serde_json::from_str::<Value>(&b).unwrap()["log_verifier_key"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .unwrap();
    let bundle_args = |bundle: &Path, key: &str, dir: Option<&Path>| -> Vec<std::ffi::OsString> {
        let mut a: Vec<std::ffi::OsString> = vec![
            "verify".into(),
            "--bundle".into(),
            bundle.into(),
            "--log-key".into(),
            key.into(),
            "--state".into(),
            home.join("state.json").into(),
        ];
        a.extend(dir.map(|d| d.into()));
        a
    };
    let out = expect(home, 0, bundle_args(&v1, &vkey, Some(&model_dir)));
    assert_eq!(field(&out, "index"), "1");
    assert_eq!(field(&out, "files"), "all 4 match the logged manifest");
    assert!(field(&out, "later declarations").starts_with("unknown offline"));
    expect(home, 0, bundle_args(&v1, &vkey, None));
    let out = expect(home, 1, bundle_args(&v1, &vkey, Some(&model2_dir)));
    assert!(
        out.contains("FAIL file-removed (index 1, org/model, file tokenizer.json)"),
        "{out}"
    );
    // Another log key.
    let other = LogSigner::generate(&Origin::new(ORIGIN).unwrap()).verifier_key();
    let out = expect(home, 1, bundle_args(&v1, &other, Some(&model_dir)));
    assert!(out.contains("FAIL wrong-log-key"), "{out}");
    // A tampered bundle: another index, or one altered byte of the leaf.
    let mut bundle: Value = serde_json::from_slice(&std::fs::read(&v1).unwrap()).unwrap();
    bundle["index"] = json!(0);
    let tampered = home.join("tampered.bundle.json");
    std::fs::write(&tampered, bundle.to_string()).unwrap();
    let out = expect(home, 1, bundle_args(&tampered, &vkey, None));
    assert!(
        out.contains("FAIL bad-bundle (index 0): proof bundle's inclusion proof does not verify"),
        "{out}"
    );
    let mut bundle: Value = serde_json::from_slice(&std::fs::read(&v1).unwrap()).unwrap();
    let leaf = bundle["leaf_data"].as_str().unwrap().to_string();
    let at = leaf.len() / 2;
    let swapped = if &leaf[at..at + 1] == "A" { "B" } else { "A" };
    bundle["leaf_data"] = json!(format!("{}{swapped}{}", &leaf[..at], &leaf[at + 1..]));
    std::fs::write(&tampered, bundle.to_string()).unwrap();
    let out = expect(home, 1, bundle_args(&tampered, &vkey, Some(&model_dir)));
    assert!(out.contains("FAIL bad-bundle"), "{out}");
    assert_eq!(field(&out, "result"), "FAIL");
}

#[test]
fn a_large_model_gets_a_detached_manifest_that_verify_checks() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let server = TestServer::start(&home.join("data"), &["--origin", ORIGIN]);
    let key = keygen(home);
    // 600 files: a manifest of about 90 KB, too large for a log entry (64 KiB).
    let contents: Vec<(String, Vec<u8>)> = (0..600)
        .map(|i| {
            (
                format!("shards/part-{i:04}.bin"),
                format!("shard {i}").into_bytes(),
            )
        })
        .collect();
    let files: Vec<(&str, &[u8])> = contents
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_slice()))
        .collect();
    let model_dir = write_files(&home.join("large"), &files);
    let decl = home.join("large.dsse.json");
    let out = expect(
        home,
        0,
        [
            OsStr::new("declare"),
            "model".as_ref(),
            model_dir.as_os_str(),
            "--name".as_ref(),
            "org/large".as_ref(),
            "--version".as_ref(),
            "1".as_ref(),
            "--license".as_ref(),
            "MIT".as_ref(),
            "--data-disclosure".as_ref(),
            "none".as_ref(),
            "--key".as_ref(),
            key.as_os_str(),
            "--out".as_ref(),
            decl.as_os_str(),
        ],
    );
    let manifest_file = PathBuf::from(format!("{}.manifest.json", decl.display()));
    assert_eq!(
        field(&out, "manifest"),
        format!("detached, {}", manifest_file.display())
    );
    assert_eq!(field(&out, "files"), "600");
    let subject = field(&out, "digest")
        .strip_prefix("sha256:")
        .unwrap()
        .to_string();
    let file_bytes = std::fs::read(&manifest_file).unwrap();
    assert!(file_bytes.len() > 64 << 10, "{}", file_bytes.len());
    let m = hash_directory(&model_dir, &HashOptions::default(), None).unwrap();
    assert_eq!(hex::encode(m.root_digest()), subject);
    let envelope = std::fs::read(&decl).unwrap();
    assert!(envelope.len() < 8 << 10, "{}", envelope.len());
    let payload = Envelope::parse(&envelope).unwrap().payload;
    let Some(record) = declaration::parse_statement(&payload)
        .unwrap()
        .detached_manifest()
        .cloned()
    else {
        panic!("no detachedManifest")
    };
    assert_eq!(record.digest, declaration::Digest::of(&file_bytes));

    // The log takes it.
    let public = pub_of(&key);
    let submitted = expect(
        home,
        0,
        [
            OsStr::new("submit"),
            decl.as_os_str(),
            "--server".as_ref(),
            server.url.as_ref(),
            "--log-key".as_ref(),
            server.verifier_key.as_ref(),
            "--public-key".as_ref(),
            public.as_os_str(),
        ],
    );
    assert_eq!(field(&submitted, "index"), "0");

    // With the manifest: file by file; without: by root digest, saying names are not compared.
    let with_manifest = ["--manifest", manifest_file.to_str().unwrap()];
    let out = verify(home, &server, &model_dir, "org/large", &with_manifest, 0);
    assert_eq!(
        field(&out, "files"),
        "all 600 match the detached manifest (--manifest)"
    );
    let out = verify(home, &server, &model_dir, "org/large", &["--json"], 0);
    let (_, summary) = json_lines(&out);
    assert_eq!(summary["declaration"]["compared_by"], "root-digest");
    let out = verify(home, &server, &model_dir, "org/large", &[], 0);
    assert!(
        field(&out, "files").contains("file names not compared"),
        "{out}"
    );

    // One changed file is named with the manifest, only detected without it.
    let part = model_dir.join("shards/part-0007.bin");
    std::fs::write(&part, b"tampered").unwrap();
    let out = verify(home, &server, &model_dir, "org/large", &with_manifest, 1);
    assert!(
        out.contains("FAIL file-changed (index 0, org/large, file shards/part-0007.bin)"),
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("FAIL ")).count(),
        1,
        "{out}"
    );
    let out = verify(home, &server, &model_dir, "org/large", &[], 1);
    assert!(
        out.contains("FAIL subject-mismatch (index 0, org/large)"),
        "{out}"
    );
    assert!(out.contains("cannot be named"), "{out}");

    // A manifest of other files is refused first, naming both root digests; the directory is
    // then compared with the subject digest alone.
    let other = hash_directory(&model_dir, &HashOptions::default(), None).unwrap();
    let other_file = home.join("other.manifest.json");
    std::fs::write(&other_file, other.to_json()).unwrap();
    std::fs::write(&part, b"shard 7").unwrap();
    let out = verify(
        home,
        &server,
        &model_dir,
        "org/large",
        &["--manifest", other_file.to_str().unwrap()],
        1,
    );
    let fails: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL ")).collect();
    assert_eq!(fails.len(), 1, "{out}");
    assert!(
        fails[0].starts_with("FAIL manifest-mismatch (index 0, org/large)"),
        "{out}"
    );
    assert!(
        fails[0].contains(&subject) && fails[0].contains(&hex::encode(other.root_digest())),
        "{out}"
    );
    assert!(
        field(&out, "files").starts_with("the directory's root digest is the subject digest"),
        "{out}"
    );
    // Not a manifest at all: the verification cannot be done.
    let out = glasslog(
        home,
        [
            "verify",
            model_dir.to_str().unwrap(),
            "--name",
            "org/large",
            "--manifest",
            decl.to_str().unwrap(),
            "--server",
            &server.url,
            "--log-key",
            &server.verifier_key,
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--manifest"),
        "{}",
        text(&out)
    );

    // Offline, from the bundle.
    let bundle = PathBuf::from(format!("{}.bundle.json", decl.display()));
    let out = expect(
        home,
        0,
        [
            OsStr::new("verify"),
            "--bundle".as_ref(),
            bundle.as_os_str(),
            "--log-key".as_ref(),
            server.verifier_key.as_ref(),
            "--state".as_ref(),
            home.join("state.json").as_os_str(),
            "--manifest".as_ref(),
            manifest_file.as_os_str(),
            model_dir.as_os_str(),
        ],
    );
    assert_eq!(
        field(&out, "files"),
        "all 600 match the detached manifest (--manifest)"
    );
}

// ---- Logs built with the library, for audit and split views.

/// A model-release or training-data statement for the files of `dir`, with `extra` predicate
/// members.
fn statement(
    kind: declaration::Kind,
    name: &str,
    version: &str,
    dir: &Path,
    extra: Value,
) -> Value {
    let m = hash_directory(dir, &HashOptions::default(), None).unwrap();
    let mut p = json!({"name": name, "version": version, "license": "Apache-2.0",
        "releaseTime": "2026-01-02T03:04:05Z", "manifest": m.to_json_value()});
    match kind {
        declaration::Kind::Model => p["dataDisclosure"] = json!("withheld"),
        declaration::Kind::Dataset => {
            p["sources"] = json!([{"category": "publicDataset", "name": "a corpus"}]);
            p["processing"] = json!("deduplicated");
            p["personalData"] = json!({"containsPersonalData": "no", "handling": "none present"});
        }
    }
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    json!({"_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": hex::encode(m.root_digest())}}],
        "predicateType": kind.predicate_type(), "predicate": p})
}

async fn submit(client: &LogClient, p: &Publisher, st: &Value) -> u64 {
    let env = Envelope::sign(
        declaration::PAYLOAD_TYPE,
        &serde_json::to_vec(st).unwrap(),
        &[&p.key],
    )
    .to_json();
    client.submit(env, vec![p.pem.clone()]).await.unwrap().index
}

fn digest_of(st: &Value) -> String {
    st["subject"][0]["digest"]["sha256"]
        .as_str()
        .unwrap()
        .to_string()
}

fn audit(home: &Path, server: &TestServer, state: &str, extra: &[&str], code: i32) -> String {
    let state = home.join(state);
    let mut args: Vec<&OsStr> = vec![
        "audit".as_ref(),
        "--server".as_ref(),
        server.url.as_ref(),
        "--log-key".as_ref(),
        server.verifier_key.as_ref(),
        "--state".as_ref(),
        state.as_os_str(),
        "--state-dir".as_ref(),
        home.as_os_str(),
    ];
    args.extend(extra.iter().map(OsStr::new));
    expect(home, code, args)
}

#[tokio::test]
async fn audit_passes_an_honest_log_and_catches_altered_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let data = home.join("data");
    let mut server = TestServer::start(&data, &["--origin", ORIGIN]);
    let client = server.client().await;
    let (ed, p256) = (
        Publisher::new(KeyType::Ed25519),
        Publisher::new(KeyType::P256),
    );
    use declaration::Kind::{Dataset, Model};

    // Mixed declarations, two publishers, references of every kind, an extra statement type.
    let corpus_dir = write_files(
        &home.join("corpus"),
        &[("a.txt", b"alpha"), ("b.txt", b"beta")],
    );
    let corpus = statement(Dataset, "org/corpus", "1", &corpus_dir, json!({}));
    assert_eq!(submit(&client, &ed, &corpus).await, 0);
    let base_dir = write_files(&home.join("base"), &[("w.bin", b"base")]);
    let base = statement(Model, "org/base", "1", &base_dir, json!({}));
    assert_eq!(submit(&client, &p256, &base).await, 1);
    let model_dir = write_files(&home.join("model"), &MODEL_FILES);
    let model = statement(
        Model,
        "org/model",
        "1.0",
        &model_dir,
        json!({
            "dataDisclosure": "full",
            "trainingData": [{"name": "org/corpus", "digest": {"sha256": digest_of(&corpus)}, "role": "pretraining", "logIndex": 0}],
            "baseModels": [{"name": "org/base", "digest": {"sha256": digest_of(&base)}, "relation": "finetune", "logIndex": 1}],
        }),
    );
    assert_eq!(submit(&client, &ed, &model).await, 2);
    client
        .submit(p256.envelope("an extra statement"), vec![p256.pem.clone()])
        .await
        .unwrap();
    let model2_dir = write_files(&home.join("model2"), &[("w.bin", b"v2")]);
    let model2 = statement(
        Model,
        "org/model",
        "2.0",
        &model2_dir,
        json!({
            "supersedes": {"logIndex": 2, "digest": {"sha256": digest_of(&model)}},
            "trainingData": [{"name": "org/corpus", "digest": {"sha256": digest_of(&corpus)}, "role": "finetuning"}],
            "dataDisclosure": "partial",
        }),
    );
    assert_eq!(submit(&client, &ed, &model2).await, 4);

    let test_type = ["--extra-predicate-type", TEST_PREDICATE];
    let out = audit(home, &server, "state.json", &test_type, 0);
    assert_eq!(field(&out, "result"), "ok", "{out}");
    assert_eq!(field(&out, "entries"), "5");
    assert_eq!(
        field(&out, "kinds"),
        "3 model, 1 dataset, 1 other statements, 0 invalid"
    );
    assert_eq!(field(&out, "publishers"), "2 key ids");
    assert_eq!(field(&out, "names"), "3 distinct");
    assert!(out.contains("  org/model: 2 declarations"), "{out}");
    assert_eq!(
        field(&out, "merkle root"),
        "recomputed from every entry, equal to the checkpoint's"
    );
    assert!(
        field(&out, "signatures").starts_with("5 envelopes verified"),
        "{out}"
    );

    let mut json_args = test_type.to_vec();
    json_args.extend(["--json", "--no-signature-checks"]);
    let (findings, summary) = json_lines(&audit(home, &server, "state.json", &json_args, 0));
    assert!(findings.is_empty());
    assert_eq!(summary["result"], "ok");
    assert_eq!(summary["kinds"]["other"][TEST_PREDICATE], 1);
    assert_eq!(summary["signature_checks"], false);
    assert_eq!(summary["computed_root"], summary["checkpoint_root"]);

    // Without being told of the extra type, the statement is a finding that says what to do.
    let (findings, _) = json_lines(&audit(home, &server, "state.json", &["--json"], 1));
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0]["kind"], "invalid-entry");
    assert_eq!(findings[0]["indexes"], json!([3]));
    assert!(findings[0]["message"]
        .as_str()
        .unwrap()
        .contains("--extra-predicate-type"));

    // Alter a stored entry behind the server's back: the log no longer matches its checkpoint.
    assert!(server.terminate().success());
    {
        let store = glasslog::server::storage::Store::open(&data.join("db")).unwrap();
        let leaf = store.entry(2).unwrap().unwrap();
        let mut entry = glasslog::entry::decode_leaf(&leaf).unwrap();
        entry.integrated_time_ms = 0;
        let altered = prost::Message::encode_to_vec(&entry);
        let mut batch = store.batch();
        batch.put_entry(
            2,
            &altered,
            &glasslog::tlog::merkle::leaf_hash(&altered),
            &[0; 32],
        );
        store.commit(batch).unwrap();
    }
    let server = TestServer::start(&data, &[]);
    let (findings, summary) = json_lines(&audit(
        home,
        &server,
        "state.json",
        &[&test_type[..], &["--json"]].concat(),
        1,
    ));
    let kinds: Vec<(&str, &Value)> = findings
        .iter()
        .map(|f| (f["kind"].as_str().unwrap(), &f["indexes"]))
        .collect();
    assert_eq!(
        kinds,
        [
            ("invalid-entry", &json!([2])),
            ("root-mismatch", &json!([]))
        ],
        "{findings:?}"
    );
    assert_ne!(summary["computed_root"], summary["checkpoint_root"]);
}

#[tokio::test]
async fn split_view_state_catches_a_second_log_with_the_same_key() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (data_a, data_b) = (home.join("a"), home.join("b"));
    let a = TestServer::start(&data_a, &["--origin", ORIGIN]);
    std::fs::create_dir_all(&data_b).unwrap();
    std::fs::copy(data_a.join("log.key"), data_b.join("log.key")).unwrap();
    let b = TestServer::start(&data_b, &["--origin", ORIGIN]);
    assert_eq!(a.verifier_key, b.verifier_key);
    let publisher = Publisher::new(KeyType::Ed25519);
    let model_dir = write_files(&home.join("model"), &MODEL_FILES);
    let model = statement(
        declaration::Kind::Model,
        "org/model",
        "1.0",
        &model_dir,
        json!({}),
    );
    // The two logs diverge: A holds one statement before the model, B two others.
    let (ca, cb) = (a.client().await, b.client().await);
    let first_a = ca
        .submit(publisher.envelope("only in A"), vec![publisher.pem.clone()])
        .await
        .unwrap();
    assert_eq!(submit(&ca, &publisher, &model).await, 1);
    for text in ["only in B", "also only in B"] {
        cb.submit(publisher.envelope(text), vec![publisher.pem.clone()])
            .await
            .unwrap();
    }
    assert_eq!(submit(&cb, &publisher, &model).await, 2);
    let (note_a, note_b) = (
        ca.checkpoint().await.unwrap().1,
        cb.checkpoint().await.unwrap().1,
    );

    // Each log alone verifies; one state file shown both catches the fork, whichever comes first.
    let out = verify(home, &a, &model_dir, "org/model", &[], 0);
    assert!(
        field(&out, "split-view check").starts_with("first-use"),
        "{out}"
    );
    // The library: an older checkpoint of A is accepted as a prefix of the stored one, not stored.
    let mut state = TrustState::load(home.join("state.json")).unwrap();
    let older = state
        .check_and_update(&ca, &first_a.checkpoint, &first_a.note)
        .await
        .unwrap();
    assert_eq!(older, Accepted::Older { stored_size: 2 });
    assert_eq!(state.stored_note(), Some(note_a.as_str()));
    let out = verify(home, &b, &model_dir, "org/model", &["--json"], 1);
    let (findings, summary) = json_lines(&out);
    assert_eq!(findings.len(), 1, "{out}");
    assert_eq!(findings[0]["kind"], "inconsistent-checkpoint");
    assert_eq!(findings[0]["evidence"]["old_checkpoint"], note_a.as_str());
    assert_eq!(findings[0]["evidence"]["new_checkpoint"], note_b.as_str());
    assert_eq!(summary["split_view_check"], "inconsistent-checkpoint");
    // The stored checkpoint is unchanged, so the fork is reported again, in text with both notes.
    let out = verify(home, &b, &model_dir, "org/model", &[], 1);
    assert!(out.contains("FAIL inconsistent-checkpoint: "), "{out}");
    for line in note_a
        .lines()
        .chain(note_b.lines())
        .filter(|l| !l.is_empty())
    {
        assert!(
            out.contains(&format!("    {line}")),
            "{line:?} not in {out}"
        );
    }

    // The other way round: B first (size 3), then A (size 2), which cannot prove itself a prefix.
    let state = home.join("state-b-first.json");
    let args = |s: &TestServer| -> Vec<std::ffi::OsString> {
        vec![
            "verify".into(),
            model_dir.clone().into(),
            "--name".into(),
            "org/model".into(),
            "--server".into(),
            s.url.clone().into(),
            "--log-key".into(),
            s.verifier_key.clone().into(),
            "--state".into(),
            state.clone().into(),
        ]
    };
    expect(home, 0, args(&b));
    let out = expect(home, 1, args(&a));
    assert!(
        out.contains(
            "FAIL inconsistent-checkpoint: the log refuses to prove that its tree of size 2"
        ),
        "{out}"
    );

    // audit uses the same state: A's checkpoint against the stored one from A passes, B's fails.
    audit(
        home,
        &a,
        "state.json",
        &["--extra-predicate-type", TEST_PREDICATE],
        0,
    );
    let out = audit(
        home,
        &b,
        "state.json",
        &["--extra-predicate-type", TEST_PREDICATE],
        1,
    );
    assert!(out.contains("FAIL inconsistent-checkpoint"), "{out}");
    assert_eq!(
        field(&out, "merkle root"),
        "recomputed from every entry, equal to the checkpoint's"
    );
}

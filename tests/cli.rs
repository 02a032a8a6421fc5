//! The publisher's command line end to end: `glasslog keygen`, `declare` and `submit` run as the
//! real binary against a real server on loopback, and every proof bundle checked offline with
//! `ProofBundle::verify`.

mod common;

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{TestServer, ORIGIN};
use glasslog::admission::declaration::{self, Declaration, Digest, ModelManifest, Role};
use glasslog::admission::dsse::Envelope;
use glasslog::admission::keys::{PrivateKey, PublicKey};
use glasslog::admission::manifest::{hash_directory, HashOptions};
use glasslog::client::bundle::{BundleError, ProofBundle, VerifiedBundle};
use glasslog::tlog::checkpoint::Origin;
use glasslog::tlog::note::LogSigner;

fn glasslog<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Output {
    // The split-view state that submit keeps by default goes to a scratch config directory, not
    // the user's (each test's log has its own key, so the files never meet).
    Command::new(common::glasslog_bin())
        .args(args)
        .env("GLASSLOG_LOG", "off")
        .env("XDG_CONFIG_HOME", scratch_config())
        .output()
        .expect("run glasslog")
}

/// This test process's scratch config directory, under cargo's temporary directory for
/// integration tests. Statics are never dropped, so a `TempDir` would outlive the process: the
/// directories of processes that have ended are removed instead when the first one is made.
fn scratch_config() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let parent = Path::new(env!("CARGO_TARGET_TMPDIR"));
        for old in std::fs::read_dir(parent).into_iter().flatten().flatten() {
            let name = old.file_name();
            let pid = name
                .to_str()
                .and_then(|n| n.strip_prefix("cli-tests-config-"));
            if pid.is_some_and(|pid| !Path::new("/proc").join(pid).exists()) {
                let _ = std::fs::remove_dir_all(old.path());
            }
        }
        parent.join(format!("cli-tests-config-{}", std::process::id()))
    })
}

/// Runs glasslog, requires success, returns stdout.
fn ok<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> String {
    let out = glasslog(args);
    assert!(
        out.status.success(),
        "glasslog failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs glasslog, requires failure, returns stderr.
fn fails<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> String {
    let out = glasslog(args);
    assert!(
        !out.status.success(),
        "glasslog succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// The value of the `key: value` line of a command's output.
fn field(stdout: &str, key: &str) -> String {
    let prefix = format!("{key}: ");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key:?} in {stdout:?}"))
        .to_string()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn write_files(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir.to_path_buf()
}

fn keygen(dir: &Path, kind: &str) -> PathBuf {
    let key = dir.join(format!("{kind}.key"));
    ok([
        OsStr::new("keygen"),
        OsStr::new("--out"),
        key.as_os_str(),
        OsStr::new("--type"),
        OsStr::new(kind),
    ]);
    key
}

fn pub_of(key: &Path) -> PathBuf {
    PathBuf::from(format!("{}.pub", key.display()))
}

fn statement_of(declaration_file: &Path) -> Declaration {
    let env = Envelope::parse(&std::fs::read(declaration_file).unwrap()).unwrap();
    assert_eq!(env.payload_type, declaration::PAYLOAD_TYPE);
    declaration::parse_statement(&env.payload).unwrap()
}

/// A publisher with a key, a server and a scratch directory.
struct Setup {
    tmp: tempfile::TempDir,
    server: TestServer,
    key: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let server = TestServer::start(&tmp.path().join("data"), &["--origin", ORIGIN]);
        let key = keygen(tmp.path(), "ed25519");
        Setup { tmp, server, key }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// `declare dataset` of a fresh directory; returns the declaration file.
    fn declare_dataset(&self, name: &str, extra: &[&str]) -> PathBuf {
        let dir = write_files(
            &self.path(&format!("{}-files", name.replace('/', "_"))),
            &[
                ("train.jsonl", &format!("{{\"text\": \"{name}\"}}\n")),
                ("sub/README.md", "# data\n"),
            ],
        );
        let out = self.path(&format!("{}.declaration.json", name.replace('/', "_")));
        let mut args: Vec<&OsStr> = vec!["declare".as_ref(), "dataset".as_ref(), dir.as_os_str()];
        for a in [
            "--name",
            name,
            "--version",
            "1",
            "--license",
            "CC-BY-4.0",
            "--source",
            "webCrawl:Common Crawl 2024-10:https://commoncrawl.org",
            "--source",
            "synthetic:Paraphrases",
            "--processing",
            "Deduplicated, filtered for language.",
            "--contains-personal-data",
            "no",
            "--personal-data-handling",
            "Filtered out with a PII classifier.",
        ] {
            args.push(a.as_ref());
        }
        args.extend(extra.iter().map(OsStr::new));
        args.extend([
            "--key".as_ref(),
            self.key.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ]);
        let stdout = ok(args);
        assert_eq!(field(&stdout, "name"), name);
        out
    }

    /// `submit` with the pinned log key; returns the bundle's path and stdout.
    fn submit(&self, declaration: &Path) -> (PathBuf, String) {
        let out = submit_to(
            &self.server,
            declaration,
            &["--public-key".as_ref(), pub_of(&self.key).as_os_str()],
        );
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8(out.stdout).unwrap();
        let bundle = PathBuf::from(format!("{}.bundle.json", declaration.display()));
        assert_eq!(field(&stdout, "bundle"), bundle.display().to_string());
        (bundle, stdout)
    }
}

/// `glasslog submit FILE --server --log-key` against `server`, with `extra` flags.
fn submit_to(server: &TestServer, file: &Path, extra: &[&OsStr]) -> Output {
    let mut args = vec![
        OsStr::new("submit"),
        file.as_os_str(),
        "--server".as_ref(),
        server.url.as_ref(),
        "--log-key".as_ref(),
        server.verifier_key.as_ref(),
    ];
    args.extend(extra);
    glasslog(args)
}

fn verify_bundle(path: &Path) -> VerifiedBundle {
    ProofBundle::from_json(&std::fs::read(path).unwrap())
        .unwrap()
        .verify()
        .unwrap()
}

#[test]
fn keygen_writes_both_key_types_and_never_overwrites() {
    let tmp = tempfile::tempdir().unwrap();
    for kind in ["ed25519", "p256"] {
        let key = tmp.path().join(kind);
        let stdout = ok([
            OsStr::new("keygen"),
            "--out".as_ref(),
            key.as_os_str(),
            "--type".as_ref(),
            kind.as_ref(),
        ]);
        assert_eq!(mode(&key), 0o600, "private key mode");
        let private = PrivateKey::from_pkcs8_pem(&std::fs::read_to_string(&key).unwrap()).unwrap();
        assert_eq!(private.key_type().to_string(), kind);
        let public = PublicKey::from_pem(&std::fs::read_to_string(pub_of(&key)).unwrap()).unwrap();
        assert_eq!(public, private.public_key());
        assert_eq!(
            stdout.trim(),
            public.key_id().to_string(),
            "prints the key id"
        );

        let before = std::fs::read(&key).unwrap();
        let err = fails([OsStr::new("keygen"), "--out".as_ref(), key.as_os_str()]);
        assert!(err.contains("already exists"), "{err}");
        assert_eq!(std::fs::read(&key).unwrap(), before, "the key is untouched");
    }
    // A free private key path whose .pub is taken is refused too, and nothing is written.
    let lone = tmp.path().join("lone");
    std::fs::write(pub_of(&lone), "x").unwrap();
    let err = fails([OsStr::new("keygen"), "--out".as_ref(), lone.as_os_str()]);
    assert!(err.contains("already exists"), "{err}");
    assert!(!lone.exists());
    let err = fails([
        OsStr::new("keygen"),
        "--out".as_ref(),
        tmp.path().join("k").as_os_str(),
        "--type".as_ref(),
        "rsa".as_ref(),
    ]);
    assert!(err.contains("ed25519") && err.contains("p256"), "{err}");
}

#[test]
fn declare_submit_and_reference_by_bundle_and_by_digest() {
    let s = Setup::new();
    // A dataset, declared, submitted, and its bundle checked offline.
    let web = s.declare_dataset("example-org/web-corpus", &[]);
    let d = statement_of(&web);
    let Declaration::Dataset(data) = &d else {
        panic!("not a dataset: {d:?}")
    };
    assert_eq!(data.sources.len(), 2);
    let names: Vec<&str> = data
        .manifest
        .as_ref()
        .unwrap()
        .resources
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(names, ["sub/README.md", "train.jsonl"]);
    assert!(data.release_time.as_str().ends_with('Z'));
    let (web_bundle, stdout) = s.submit(&web);
    assert_eq!(field(&stdout, "log key"), s.server.verifier_key);
    let verified = verify_bundle(&web_bundle);
    assert_eq!(verified.declaration, d);
    assert_eq!(verified.checkpoint.origin, ORIGIN);
    let web_index = verified.index;
    let bundle = ProofBundle::from_json(&std::fs::read(&web_bundle).unwrap()).unwrap();
    assert_eq!(bundle.log_verifier_key, s.server.verifier_key);

    // A second dataset, submitted with neither --log-key (the announced key is trusted and
    // printed) nor --public-key (the OUT.pub that declare wrote is used).
    let eval = s.declare_dataset("example-org/eval-suite", &[]);
    assert_eq!(
        std::fs::read_to_string(format!("{}.pub", eval.display())).unwrap(),
        std::fs::read_to_string(pub_of(&s.key)).unwrap()
    );
    let stdout = ok([
        OsStr::new("submit"),
        eval.as_os_str(),
        "--server".as_ref(),
        s.server.url.as_ref(),
    ]);
    assert_eq!(field(&stdout, "log key"), s.server.verifier_key);
    let eval_digest = *verify_bundle(&PathBuf::from(format!("{}.bundle.json", eval.display())))
        .declaration
        .subject_digest();

    // A model trained on the first by bundle and on the second by digest only.
    let model_dir = write_files(
        &s.path("model"),
        &[("config.json", "{}"), ("model.safetensors", "weights")],
    );
    let model = s.path("model.declaration.json");
    let digest_ref = format!("example-org/eval-suite=sha256:{eval_digest}:evaluation");
    let trained_on_bundle = format!("{}:finetuning", web_bundle.display());
    ok([
        OsStr::new("declare"),
        "model".as_ref(),
        model_dir.as_os_str(),
        "--name".as_ref(),
        "example-org/tiny-chat".as_ref(),
        "--version".as_ref(),
        "1.0".as_ref(),
        "--license".as_ref(),
        "Apache-2.0".as_ref(),
        "--trained-on".as_ref(),
        trained_on_bundle.as_ref(),
        "--trained-on".as_ref(),
        digest_ref.as_ref(),
        "--key".as_ref(),
        s.key.as_os_str(),
        "--out".as_ref(),
        model.as_os_str(),
    ]);
    let (model_bundle, _) = s.submit(&model);
    let verified = verify_bundle(&model_bundle);
    let Declaration::Model(release) = &verified.declaration else {
        panic!("not a model")
    };
    assert_eq!(release.name.as_str(), "example-org/tiny-chat");
    assert_eq!(release.training_data.len(), 2);
    let (by_bundle, by_digest) = (&release.training_data[0], &release.training_data[1]);
    assert_eq!(
        (by_bundle.name.as_str(), by_bundle.role, by_bundle.log_index),
        ("example-org/web-corpus", Role::Finetuning, Some(web_index))
    );
    assert_eq!(&by_bundle.digest, d.subject_digest());
    assert_eq!(
        (by_digest.role, by_digest.log_index, by_digest.digest),
        (Role::Evaluation, None, eval_digest)
    );
    let ModelManifest::Embedded(manifest) = &release.manifest else {
        panic!("a small manifest is embedded")
    };
    assert_eq!(manifest.resources.len(), 2);

    // A new version of the model, described in a --from file, superseding the first by bundle.
    let from = s.path("model-v2.json");
    std::fs::write(
        &from,
        r#"{"name": "example-org/tiny-chat", "version": "1.1", "license": "Apache-2.0",
            "description": "Retrained.", "dataDisclosure": "partial"}"#,
    )
    .unwrap();
    std::fs::write(model_dir.join("model.safetensors"), "weights v2").unwrap();
    let model2 = s.path("model2.declaration.json");
    ok([
        OsStr::new("declare"),
        "model".as_ref(),
        model_dir.as_os_str(),
        "--from".as_ref(),
        from.as_os_str(),
        "--trained-on".as_ref(),
        web_bundle.as_os_str(),
        "--supersedes".as_ref(),
        model_bundle.as_os_str(),
        "--key".as_ref(),
        s.key.as_os_str(),
        "--out".as_ref(),
        model2.as_os_str(),
    ]);
    let (model2_bundle, _) = s.submit(&model2);
    let Declaration::Model(v2) = verify_bundle(&model2_bundle).declaration else {
        panic!()
    };
    assert_eq!(
        (v2.version.as_str(), v2.description.as_deref()),
        ("1.1", Some("Retrained."))
    );
    assert_eq!(v2.training_data[0].role, Role::Pretraining);
    assert_eq!(v2.supersedes.unwrap().log_index, verified.index);

    // The log refuses a reference to an entry it does not have, and says why.
    let bad = s.path("bad.declaration.json");
    let missing = format!("example-org/eval-suite=sha256:{eval_digest}@99");
    ok([
        OsStr::new("declare"),
        "model".as_ref(),
        model_dir.as_os_str(),
        "--name".as_ref(),
        "example-org/bad".as_ref(),
        "--version".as_ref(),
        "1".as_ref(),
        "--license".as_ref(),
        "MIT".as_ref(),
        "--trained-on".as_ref(),
        missing.as_ref(),
        "--key".as_ref(),
        s.key.as_os_str(),
        "--out".as_ref(),
        bad.as_os_str(),
    ]);
    let out = submit_to(
        &s.server,
        &bad,
        &["--public-key".as_ref(), pub_of(&s.key).as_os_str()],
    );
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("refused") && err.contains("trainingData[0]") && err.contains("99"),
        "{err}"
    );
    assert!(!PathBuf::from(format!("{}.bundle.json", bad.display())).exists());

    // Submitting again is idempotent: the same index, a fresh bundle that verifies.
    let (_, again) = s.submit(&model2);
    assert_eq!(
        field(&again, "index"),
        verify_bundle(&model2_bundle).index.to_string()
    );
}

#[test]
fn private_dataset_logs_a_commitment_and_keeps_the_salt() {
    let s = Setup::new();
    let out = s.declare_dataset("example-org/support-dialogues", &["--private"]);
    let salt_path = PathBuf::from(format!("{}.salt", out.display()));
    assert_eq!(mode(&salt_path), 0o600);
    let salt_hex = std::fs::read_to_string(&salt_path).unwrap();
    let salt: [u8; 32] = hex::decode(salt_hex.trim()).unwrap().try_into().unwrap();

    let Declaration::Dataset(data) = statement_of(&out) else {
        panic!()
    };
    assert!(
        data.manifest.is_none(),
        "a private dataset logs no manifest"
    );
    let files = s.path("example-org_support-dialogues-files");
    let root = Digest(
        hash_directory(&files, &HashOptions::default(), None)
            .unwrap()
            .root_digest(),
    );
    assert_eq!(data.digest, declaration::commitment(&salt, &root));
    let payload = Envelope::parse(&std::fs::read(&out).unwrap())
        .unwrap()
        .payload;
    assert!(
        !String::from_utf8_lossy(&payload).contains("train.jsonl"),
        "no file names"
    );

    let (bundle, _) = s.submit(&out);
    assert_eq!(
        verify_bundle(&bundle).declaration.subject_digest(),
        &data.digest
    );
}

#[test]
fn a_dataset_too_large_for_a_log_entry_is_refused_with_the_ways_out() {
    let s = Setup::new();
    // 600 files: a manifest of about 90 KB; only a model release can detach it.
    let dir = s.path("big-corpus");
    for i in 0..600 {
        write_files(&dir, &[(&format!("part-{i:04}.jsonl"), &format!("{i}\n"))]);
    }
    let out = s.path("big.declaration.json");
    let err = fails([
        OsStr::new("declare"),
        "dataset".as_ref(),
        dir.as_os_str(),
        "--name".as_ref(),
        "org/big".as_ref(),
        "--version".as_ref(),
        "1".as_ref(),
        "--license".as_ref(),
        "CC0-1.0".as_ref(),
        "--source".as_ref(),
        "synthetic:generated".as_ref(),
        "--processing".as_ref(),
        "none".as_ref(),
        "--contains-personal-data".as_ref(),
        "no".as_ref(),
        "--personal-data-handling".as_ref(),
        "none present".as_ref(),
        "--key".as_ref(),
        s.key.as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    assert!(
        err.contains("at most 65535 bytes")
            && err.contains("600 files")
            && err.contains("--private"),
        "{err}"
    );
    assert!(!out.exists(), "nothing written");
    assert!(!PathBuf::from(format!("{}.manifest.json", out.display())).exists());
}

#[test]
fn bad_flags_give_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let key = keygen(tmp.path(), "p256");
    let dir = write_files(&tmp.path().join("m"), &[("w.bin", "w")]);
    let out = tmp.path().join("out.json");
    let model = |flags: &[&str]| {
        let mut args: Vec<&OsStr> = vec!["declare".as_ref(), "model".as_ref(), dir.as_os_str()];
        args.extend(flags.iter().map(OsStr::new));
        args.extend(["--out".as_ref(), out.as_os_str()]);
        fails(args)
    };
    let key_s = key.to_str().unwrap();
    let with = |name: &str, license: &str, rest: &[&str]| {
        let mut flags = vec!["--name", name, "--license", license, "--version", "1"];
        flags.extend_from_slice(rest);
        model(&flags)
    };
    let err = with(
        "org/m",
        "MIT AND",
        &["--data-disclosure", "none", "--key", key_s],
    );
    assert!(
        err.contains("--license") && err.contains("SPDX license expression"),
        "{err}"
    );
    let err = with(
        "org//m",
        "MIT",
        &["--data-disclosure", "none", "--key", key_s],
    );
    assert!(
        err.contains("--name") && err.contains("not a valid name"),
        "{err}"
    );
    let err = with("org/m", "MIT", &["--data-disclosure", "none"]);
    assert!(err.contains("--key"), "{err}");
    let err = with("org/m", "MIT", &["--key", key_s]);
    assert!(
        err.contains("--trained-on") && err.contains("--data-disclosure"),
        "{err}"
    );
    let err = with(
        "org/m",
        "MIT",
        &[
            "--trained-on",
            "missing.bundle.json:finetune",
            "--key",
            key_s,
        ],
    );
    assert!(
        err.contains("missing.bundle.json:finetune") && err.contains("roles"),
        "{err}"
    );
    let err = with(
        "org/m",
        "MIT",
        &["--trained-on", "org/d=sha256:abc", "--key", key_s],
    );
    assert!(
        err.contains("--trained-on") && err.contains("64 lowercase hex"),
        "{err}"
    );
    let err = with(
        "org/m",
        "MIT",
        &["--data-disclosure", "none", "--key", "/nonexistent/key"],
    );
    assert!(err.contains("/nonexistent/key"), "{err}");
    assert!(!out.exists(), "nothing written on failure");

    let err = fails([
        OsStr::new("declare"),
        "dataset".as_ref(),
        dir.as_os_str(),
        "--name".as_ref(),
        "org/d".as_ref(),
    ]);
    assert!(err.contains("--source"), "{err}");

    let err = fails([
        OsStr::new("submit"),
        out.as_os_str(),
        "--server".as_ref(),
        "http://127.0.0.1:1".as_ref(),
    ]);
    assert!(err.contains("--public-key"), "{err}");
}

#[test]
fn a_tampered_bundle_does_not_verify() {
    let s = Setup::new();
    let decl = s.declare_dataset("example-org/ds", &[]);
    // Two more entries, so that the proof is not empty.
    let (path, _) = s.submit(&decl);
    s.submit(&s.declare_dataset("example-org/ds2", &[]));
    s.submit(&s.declare_dataset("example-org/ds3", &[]));
    let good = ProofBundle::from_json(&std::fs::read(&path).unwrap()).unwrap();
    good.verify().unwrap();

    // Rewriting the bundle's checkpoint and proof to the latest tree still verifies.
    let latest = s.submit(&decl).0;
    let fresh = ProofBundle::from_json(&std::fs::read(latest).unwrap()).unwrap();
    assert_eq!(fresh.tree_size, 3);
    assert!(!fresh.proof.is_empty());
    fresh.verify().unwrap();

    let mut b = fresh.clone();
    let last = b.leaf_data.len() - 1;
    b.leaf_data[last] ^= 1;
    assert!(matches!(b.verify(), Err(BundleError::Inclusion(..))));

    let mut b = fresh.clone();
    b.proof[0].0[0] ^= 1;
    assert!(matches!(b.verify(), Err(BundleError::Inclusion(..))));

    let mut b = fresh.clone();
    b.index += 1;
    assert!(matches!(b.verify(), Err(BundleError::Inclusion(..))));

    let mut b = fresh.clone();
    b.tree_size -= 1;
    assert!(matches!(b.verify(), Err(BundleError::TreeSize { .. })));

    let mut b = fresh.clone();
    b.checkpoint = b.checkpoint.replacen("\n3\n", "\n2\n", 1);
    assert!(matches!(b.verify(), Err(BundleError::Checkpoint(_))));

    // Another key of the same origin: the note is not signed by it.
    let mut b = fresh.clone();
    b.log_verifier_key = LogSigner::generate(&Origin::new(ORIGIN).unwrap()).verifier_key();
    assert!(matches!(b.verify(), Err(BundleError::Checkpoint(_))));

    // Unknown members are refused when read.
    let mut json: serde_json::Value = serde_json::from_slice(&fresh.to_json()).unwrap();
    json["note"] = "x".into();
    assert!(ProofBundle::from_json(json.to_string().as_bytes()).is_err());
}

#[test]
fn submit_keeps_the_split_view_state_and_reports_a_fork() {
    let s = Setup::new();
    let state = s.path("split-view.json");
    // B: a second log under the same key and origin, which will show another history.
    let data_b = s.path("data-b");
    std::fs::create_dir_all(&data_b).unwrap();
    std::fs::copy(s.path("data").join("log.key"), data_b.join("log.key")).unwrap();
    let b = TestServer::start(&data_b, &["--origin", ORIGIN]);
    assert_eq!(b.verifier_key, s.server.verifier_key);
    let (first, second) = (
        s.declare_dataset("org/first", &[]),
        s.declare_dataset("org/second", &[]),
    );
    let submit_to = |server: &TestServer, file: &Path| {
        submit_to(server, file, &["--state".as_ref(), state.as_os_str()])
    };
    let stdout = |o: &Output| String::from_utf8_lossy(&o.stdout).into_owned();
    let stored = || {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
        v["checkpoint"].as_str().unwrap().to_string()
    };

    // A, honestly: first use, then a consistency proof from the stored checkpoint.
    let o = submit_to(&s.server, &first);
    assert!(o.status.success(), "{o:?}");
    assert!(field(&stdout(&o), "split-view check").starts_with("first-use"));
    let o = submit_to(&s.server, &second);
    assert!(o.status.success(), "{o:?}");
    assert!(field(&stdout(&o), "split-view check").starts_with("consistent-from-1"));
    let note_a = stored();
    assert!(note_a.contains("\n2\n"), "{note_a}");

    // B logs the same two statements in the other order: a tree of size 1 that B cannot prove to
    // be a prefix of A's size 2, then a second tree of size 2. Each is reported with both notes;
    // the bundle is written all the same (it proves what B signed) and the state keeps A's note.
    for (file, size) in [(&second, 1), (&first, 2)] {
        let bundle = PathBuf::from(format!("{}.bundle.json", file.display()));
        std::fs::remove_file(&bundle).unwrap();
        let o = submit_to(&b, file);
        assert_eq!(o.status.code(), Some(1), "{o:?}");
        assert_eq!(
            field(&stdout(&o), "split-view check"),
            "inconsistent-checkpoint"
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("inconsistent-checkpoint: "), "{err}");
        verify_bundle(&bundle);
        let note_b = ProofBundle::from_json(&std::fs::read(&bundle).unwrap())
            .unwrap()
            .checkpoint;
        assert!(note_b.contains(&format!("\n{size}\n")), "{note_b}");
        for line in note_a
            .lines()
            .chain(note_b.lines())
            .filter(|l| !l.is_empty())
        {
            assert!(
                err.contains(&format!("    {line}")),
                "{line:?} not in {err}"
            );
        }
        assert_eq!(stored(), note_a);
    }

    // A damaged state file stops a submission before anything is sent.
    std::fs::write(&state, b"{}").unwrap();
    let third = s.declare_dataset("org/third", &[]);
    let o = submit_to(&s.server, &third);
    assert!(!o.status.success(), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("split-view state"),
        "{o:?}"
    );
    assert!(!PathBuf::from(format!("{}.bundle.json", third.display())).exists());
}

//! `glasslog monitor --once` end to end, as a child process against the real server: nothing on
//! an honest log; each publisher misbehaviour and (with `--features fault-injection`) each lie of
//! a hostile server reported with the right kind; findings reported once across restarts; live
//! following across a server restart; nothing on an honest log of 100,000 entries. The benchmark
//! (catch-up rate and live latency on 100,000 entries) is an ignored test: `cargo test --test monitor --features fault-injection -- --ignored
//! --nocapture benchmark`.

mod common;

use common::free_port;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::statements::{days_ago, in_toto as statement, manifest, merged, sha};
use common::{Publisher, TestServer, ORIGIN, TEST_PREDICATE};
use glasslog::admission::declaration::{MODEL_RELEASE, PAYLOAD_TYPE, TRAINING_DATA};
use glasslog::admission::dsse::Envelope;
use glasslog::admission::keys::{KeyType, PrivateKey};
use glasslog::client::trust_state::TrustState;
use glasslog::client::LogClient;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// Declarations.

/// A training-data declaration of a dataset whose one file holds `content`, released a day ago.
fn dataset(name: &str, version: &str, content: &str, extra: Value) -> (Value, [u8; 32]) {
    let (m, root) = manifest(content);
    let p = json!({
        "name": name, "version": version, "license": "CC-BY-4.0", "releaseTime": days_ago(1.0),
        "sources": [{"category": "publicDataset", "name": "a corpus",
            "collectionPeriod": {"start": "2025-01-01T00:00:00Z", "end": "2025-06-30T00:00:00Z"}}],
        "processing": "deduplicated", "personalData": {"containsPersonalData": "no", "handling": "none present"},
        "manifest": m,
    });
    (
        statement(TRAINING_DATA, name, &root, merged(p, extra)),
        root,
    )
}

/// A model release whose one file holds `content`, released a day ago, data withheld.
fn model(name: &str, version: &str, content: &str, extra: Value) -> (Value, [u8; 32]) {
    let (m, root) = manifest(content);
    let p = json!({
        "name": name, "version": version, "license": "Apache-2.0", "releaseTime": days_ago(1.0),
        "manifest": m, "dataDisclosure": "withheld",
    });
    (
        statement(MODEL_RELEASE, name, &root, merged(p, extra)),
        root,
    )
}

fn supersedes(index: u64, digest: &[u8; 32]) -> Value {
    json!({"supersedes": {"logIndex": index, "digest": {"sha256": hex::encode(digest)}}})
}

fn trained_on(name: &str, digest: &[u8; 32], index: Option<u64>) -> Value {
    let mut t =
        json!({"name": name, "digest": {"sha256": hex::encode(digest)}, "role": "pretraining"});
    if let Some(i) = index {
        t["logIndex"] = json!(i);
    }
    t
}

fn envelope(signers: &[&Publisher], st: &Value) -> (Vec<u8>, Vec<String>) {
    let keys: Vec<&PrivateKey> = signers.iter().map(|p| &p.key).collect();
    let env = Envelope::sign(PAYLOAD_TYPE, &serde_json::to_vec(st).unwrap(), &keys).to_json();
    (env, signers.iter().map(|p| p.pem.clone()).collect())
}

async fn submit(client: &LogClient, signers: &[&Publisher], st: &Value) -> u64 {
    let (env, keys) = envelope(signers, st);
    match client.submit(env, keys).await {
        Ok(s) => s.index,
        Err(e) => panic!("refused: {e}\n{st:#}"),
    }
}

// ---------------------------------------------------------------------------
// Servers and monitors.

/// Starts the server with `env` set, on `port` (0: any free port).
fn start_server(data_dir: &Path, env: &[(&str, String)], port: u16) -> TestServer {
    let mut cmd = Command::new(common::glasslog_bin());
    cmd.args([
        "serve",
        "--origin",
        ORIGIN,
        "--extra-predicate-type",
        TEST_PREDICATE,
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
    ])
    .arg(data_dir)
    .env("GLASSLOG_LOG", "warn")
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut origin, mut vkey) = (String::new(), String::new());
    loop {
        let Some(line) = lines.next() else {
            let status = child.wait().unwrap();
            panic!("the server exited before listening: {status}");
        };
        let line = line.unwrap();
        if let Some(o) = line.strip_prefix("origin: ") {
            origin = o.into();
        } else if let Some(k) = line.strip_prefix("verifier key: ") {
            vkey = k.into();
        } else if let Some(addr) = line.strip_prefix("listening on ") {
            std::thread::spawn(move || for _ in lines {});
            return TestServer {
                child,
                url: format!("http://{addr}"),
                http_url: None,
                verifier_key: vkey,
                origin,
                data_dir: data_dir.into(),
            };
        }
    }
}

/// What a `glasslog monitor --once` run printed and returned.
#[derive(Debug)]
struct Outcome {
    code: i32,
    findings: Vec<Value>,
    stderr: String,
}

impl Outcome {
    fn kinds(&self) -> Vec<String> {
        let mut k: Vec<String> = self
            .findings
            .iter()
            .map(|f| f["kind"].as_str().unwrap().to_string())
            .collect();
        k.sort();
        k
    }

    /// Requires exit status 1 and exactly one finding, of `kind`.
    fn only(&self, kind: &str) {
        assert_eq!(
            (self.code, self.kinds()),
            (1, vec![kind.to_string()]),
            "{self:#?}"
        );
    }

    fn one(&self, kind: &str) -> &Value {
        let found: Vec<&Value> = self.findings.iter().filter(|f| f["kind"] == kind).collect();
        assert_eq!(found.len(), 1, "want one {kind} finding: {self:#?}");
        found[0]
    }
}

fn monitor_args(server: &TestServer, state: &Path) -> Vec<String> {
    vec![
        "monitor".into(),
        "--server".into(),
        server.url.clone(),
        "--log-key".into(),
        server.verifier_key.clone(),
        "--state".into(),
        state.display().to_string(),
        "--split-view-state".into(),
        split_view_state(state).display().to_string(),
        "--extra-predicate-type".into(),
        TEST_PREDICATE.into(),
    ]
}

/// The split-view state file (shared with the other commands) of the monitor whose state file is
/// `state`, in the tests: one per monitor, beside its state file.
fn split_view_state(state: &Path) -> PathBuf {
    PathBuf::from(format!("{}.split-view.json", state.display()))
}

/// Runs `glasslog monitor --once` and parses its stdout, which must be finding JSON lines only.
fn monitor_once(server: &TestServer, state: &Path, extra: &[&str]) -> Outcome {
    let out = Command::new(common::glasslog_bin())
        .args(monitor_args(server, state))
        .arg("--once")
        .args(extra)
        .env("GLASSLOG_LOG", "info")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let findings = stdout.lines().map(parse_finding).collect();
    Outcome {
        code: out.status.code().unwrap_or(-1),
        findings,
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// A finding line: exactly the contract's fields, of the contract's types.
fn parse_finding(line: &str) -> Value {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 5, "{line}");
    for k in ["kind", "severity", "indexes", "names", "message"] {
        assert!(v.get(k).is_some(), "no {k}: {line}");
    }
    assert!(
        ["critical", "warning", "info"].contains(&v["severity"].as_str().unwrap()),
        "{line}"
    );
    assert!(
        v["indexes"].as_array().unwrap().iter().all(Value::is_u64),
        "{line}"
    );
    assert!(
        v["names"].as_array().unwrap().iter().all(Value::is_string),
        "{line}"
    );
    v
}

fn assert_clean(o: &Outcome) {
    assert_eq!((o.code, o.findings.len()), (0, 0), "{o:#?}");
}

struct Setup {
    _dir: tempfile::TempDir,
    server: TestServer,
    client: LogClient,
    state: PathBuf,
}

async fn setup(env: &[(&str, String)]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(&dir.path().join("data"), env, 0);
    let client = server.client().await;
    let state = dir.path().join("monitor.state");
    Setup {
        _dir: dir,
        server,
        client,
        state,
    }
}

// ---------------------------------------------------------------------------
// An honest log.

/// One round of honest publishing under `org`: datasets, a private dataset revealed, a model
/// history with supersedes, a co-signed re-declaration, a consented key change, a derived model
/// and a statement of the extra test type. Returns the number of entries.
async fn honest_round(client: &LogClient, org: &str, p: &[Publisher; 3]) -> u64 {
    let [alice, bob, carol] = p;
    let data = format!("{org}/data");
    let (d1, d1_root) = dataset(&data, "1", &format!("{org} data 1"), json!({}));
    let d1_index = submit(client, &[alice], &d1).await;
    let private = format!("{org}/private");
    let (mut committed, _) = dataset(&private, "1", &format!("{org} private"), json!({}));
    let commitment = sha(format!("{org} salt").as_bytes());
    committed["predicate"]
        .as_object_mut()
        .unwrap()
        .remove("manifest");
    committed["subject"][0]["digest"]["sha256"] = json!(hex::encode(commitment));
    let committed_index = submit(client, &[alice], &committed).await;
    let (revealed, _) = dataset(
        &private,
        "1",
        &format!("{org} private"),
        supersedes(committed_index, &commitment),
    );
    submit(client, &[alice], &revealed).await;

    let name = format!("{org}/model");
    let training = json!({"dataDisclosure": "full", "trainingData": [trained_on(&data, &d1_root, Some(d1_index))]});
    let (m1, m1_root) = model(&name, "1", &format!("{org} weights 1"), training);
    let i1 = submit(client, &[alice], &m1).await;
    let by_digest =
        json!({"dataDisclosure": "full", "trainingData": [trained_on(&data, &d1_root, None)]});
    let (m2, m2_root) = model(
        &name,
        "2",
        &format!("{org} weights 2"),
        merged(by_digest, supersedes(i1, &m1_root)),
    );
    let i2 = submit(client, &[alice], &m2).await;
    submit(client, &[alice, bob], &m2).await; // co-signed re-declaration
    let (m3, m3_root) = model(
        &name,
        "3",
        &format!("{org} weights 3"),
        supersedes(i2, &m2_root),
    );
    let i3 = submit(client, &[alice, carol], &m3).await; // consent to carol's key
    let (m4, m4_root) = model(
        &name,
        "4",
        &format!("{org} weights 4"),
        supersedes(i3, &m3_root),
    );
    let i4 = submit(client, &[carol], &m4).await;
    let (d2, _) = dataset(
        &data,
        "2",
        &format!("{org} data 2"),
        supersedes(d1_index, &d1_root),
    );
    submit(client, &[alice], &d2).await;
    let base = json!({"baseModels": [{"name": name, "digest": {"sha256": hex::encode(m4_root)}, "relation": "finetune", "logIndex": i4}]});
    let (tuned, _) = model(&format!("{org}/tuned"), "1", &format!("{org} tuned"), base);
    submit(client, &[bob], &tuned).await;
    client
        .submit(bob.envelope(&format!("{org} note")), vec![bob.pem.clone()])
        .await
        .unwrap();
    11
}

fn publishers() -> [Publisher; 3] {
    [
        Publisher::new(KeyType::Ed25519),
        Publisher::new(KeyType::P256),
        Publisher::new(KeyType::Ed25519),
    ]
}

#[tokio::test]
async fn an_honest_log_has_no_findings_and_monitoring_resumes() {
    let s = setup(&[]).await;
    let p = publishers();
    let mut size = 0;
    for round in 0..25 {
        size += honest_round(&s.client, &format!("org{round}"), &p).await;
    }
    assert_eq!(s.client.checkpoint().await.unwrap().0.size, size);
    let first = monitor_once(&s.server, &s.state, &[]);
    assert_clean(&first);
    assert!(
        first.stderr.contains(&format!("verified {size} entries")),
        "{}",
        first.stderr
    );

    for round in 25..28 {
        size += honest_round(&s.client, &format!("org{round}"), &p).await;
    }
    let second = monitor_once(&s.server, &s.state, &[]);
    assert_clean(&second);
    assert!(
        second.stderr.contains("verified 33 entries"),
        "resumes from the state file: {}",
        second.stderr
    );
    let state: Value = serde_json::from_str(&std::fs::read_to_string(&s.state).unwrap()).unwrap();
    assert_eq!(state["nextIndex"], json!(size));
    // Nothing new: still clean, and quick.
    assert_clean(&monitor_once(&s.server, &s.state, &[]));
}

// ---------------------------------------------------------------------------
// The monitor and the split-view state of the user's other commands.

#[tokio::test]
async fn the_monitor_compares_its_view_with_the_other_commands() {
    let dir = tempfile::tempdir().unwrap();
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let a = start_server(&data_a, &[], 0);
    std::fs::create_dir_all(&data_b).unwrap();
    std::fs::copy(data_a.join("log.key"), data_b.join("log.key")).unwrap();
    let b = start_server(&data_b, &[], 0);
    assert_eq!(a.verifier_key, b.verifier_key);
    let (ca, cb) = (a.client().await, b.client().await);
    let p = Publisher::new(KeyType::Ed25519);
    for (client, log, n) in [(&ca, "a", 5), (&cb, "b", 8)] {
        for i in 0..n {
            let env = p.envelope(&format!("{log} {i}"));
            client.submit(env, vec![p.pem.clone()]).await.unwrap();
        }
    }
    // `submit` or `verify` accepted A's checkpoint of size 5 and stored it.
    let (checkpoint_a, note_a) = ca.checkpoint().await.unwrap();
    let stored = |state: &Path| {
        let v: Value =
            serde_json::from_slice(&std::fs::read(split_view_state(state)).unwrap()).unwrap();
        v["checkpoint"].as_str().unwrap().to_string()
    };
    let store_a = |state: &Path| {
        let mut trust = TrustState::load(split_view_state(state)).unwrap();
        let (ca, checkpoint_a, note_a) = (&ca, &checkpoint_a, &note_a);
        async move {
            trust
                .check_and_update(ca, checkpoint_a, note_a)
                .await
                .unwrap()
        }
    };

    // A monitor of B, whose own view is consistent, finds that it does not fit A's.
    let state_b = dir.path().join("b.state");
    store_a(&state_b).await;
    let o = monitor_once(&b, &state_b, &[]);
    o.only("inconsistent-checkpoint");
    let message = o.one("inconsistent-checkpoint")["message"]
        .as_str()
        .unwrap();
    let note_b = cb.checkpoint().await.unwrap().1;
    for note in [&note_a, &note_b] {
        assert!(message.contains(note.as_str()), "{note} not in {message}");
    }
    assert_eq!(stored(&state_b), note_a, "the accepted checkpoint is kept");
    // Reported once.
    assert_clean(&monitor_once(&b, &state_b, &[]));

    // A monitor of A agrees with what the other commands accepted, and stores its newer view.
    let state_a = dir.path().join("a.state");
    store_a(&state_a).await;
    for i in 5..7 {
        let env = p.envelope(&format!("a {i}"));
        ca.submit(env, vec![p.pem.clone()]).await.unwrap();
    }
    assert_clean(&monitor_once(&a, &state_a, &[]));
    assert_eq!(stored(&state_a), ca.checkpoint().await.unwrap().1);

    // A damaged state file is not trusted, nor silently replaced: the monitor stops.
    std::fs::write(split_view_state(&state_a), b"{}").unwrap();
    let o = monitor_once(&a, &state_a, &[]);
    assert_eq!(o.code, 2, "{o:#?}");
    assert!(o.stderr.contains("split-view state"), "{o:#?}");
}

// ---------------------------------------------------------------------------
// Hostile publishers, one finding each.

#[tokio::test]
async fn a_publisher_that_equivocates() {
    let s = setup(&[]).await;
    let alice = Publisher::new(KeyType::Ed25519);
    let (a, a_root) = model("org/m", "1.0", "weights a", json!({}));
    let i = submit(&s.client, &[&alice], &a).await;
    let (b, _) = model("org/m", "1.0", "weights b", supersedes(i, &a_root));
    submit(&s.client, &[&alice], &b).await;
    let o = monitor_once(&s.server, &s.state, &[]);
    o.only("equivocation");
    let f = o.one("equivocation");
    assert_eq!(
        (
            f["indexes"].clone(),
            f["names"].clone(),
            f["severity"].clone()
        ),
        (json!([0, 1]), json!(["org/m"]), json!("critical"))
    );
}

#[tokio::test]
async fn a_publisher_that_rewrites_history() {
    let s = setup(&[]).await;
    let alice = Publisher::new(KeyType::Ed25519);
    let (v1, _) = model("org/m", "1", "weights 1", json!({}));
    submit(&s.client, &[&alice], &v1).await;
    let (v2, _) = model("org/m", "2", "weights 2", json!({}));
    submit(&s.client, &[&alice], &v2).await;
    let o = monitor_once(&s.server, &s.state, &[]);
    o.only("broken-history");
    assert_eq!(o.one("broken-history")["indexes"], json!([0, 1]));
}

#[tokio::test]
async fn a_publisher_whose_key_changes() {
    let s = setup(&[]).await;
    let (alice, mallory) = (
        Publisher::new(KeyType::Ed25519),
        Publisher::new(KeyType::P256),
    );
    let (v1, v1_root) = model("org/m", "1", "weights 1", json!({}));
    let i = submit(&s.client, &[&alice], &v1).await;
    let (v2, _) = model("org/m", "2", "weights 2", supersedes(i, &v1_root));
    submit(&s.client, &[&mallory], &v2).await;
    let o = monitor_once(&s.server, &s.state, &[]);
    o.only("key-change");
    assert_eq!(o.one("key-change")["severity"], json!("critical"));
}

#[tokio::test]
async fn a_publisher_that_swaps_a_training_data_declaration() {
    let s = setup(&[]).await;
    let alice = Publisher::new(KeyType::Ed25519);
    let (d, root) = dataset("org/d", "1", "the data", json!({}));
    submit(&s.client, &[&alice], &d).await;
    // The same dataset (name, version, digest) again, now under another license and handling.
    let changed = json!({"license": "MIT", "personalData": {"containsPersonalData": "yes", "handling": "kept as is"}});
    let (swapped, same_root) = dataset("org/d", "1", "the data", changed);
    assert_eq!(root, same_root);
    submit(&s.client, &[&alice], &swapped).await;
    // A new version with a new digest and new fields is not a finding.
    let (v2, _) = dataset(
        "org/d",
        "2",
        "new data",
        merged(json!({"license": "MIT"}), supersedes(0, &root)),
    );
    submit(&s.client, &[&alice], &v2).await;
    let o = monitor_once(&s.server, &s.state, &[]);
    o.only("data-substitution");
    let message = o.one("data-substitution")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("license, personalData changed"),
        "{message}"
    );
}

#[tokio::test]
async fn a_publisher_that_backdates() {
    let s = setup(&[]).await;
    let alice = Publisher::new(KeyType::Ed25519);
    let (m, _) = model(
        "org/old",
        "1",
        "weights",
        json!({"releaseTime": days_ago(30.0)}),
    );
    submit(&s.client, &[&alice], &m).await;
    let (ok, _) = model(
        "org/recent",
        "1",
        "weights r",
        json!({"releaseTime": days_ago(6.0)}),
    );
    submit(&s.client, &[&alice], &ok).await;
    let o = monitor_once(&s.server, &s.state, &[]);
    o.only("backdating");
    assert_eq!(o.one("backdating")["names"], json!(["org/old"]));
    // A wider window accepts it.
    let wide = s.state.with_extension("wide");
    assert_clean(&monitor_once(
        &s.server,
        &wide,
        &["--backdate-window", "31"],
    ));
}

#[tokio::test]
async fn a_model_that_names_a_missing_dataset() {
    let s = setup(&[]).await;
    let alice = Publisher::new(KeyType::Ed25519);
    let missing = sha(b"never logged");
    let base = json!({"name": "other/base", "digest": {"sha256": hex::encode(sha(b"outside"))}, "relation": "finetune"});
    let (m, _) = model(
        "org/m",
        "1",
        "weights",
        json!({"dataDisclosure": "full", "trainingData": [trained_on("org/d", &missing, None)], "baseModels": [base]}),
    );
    submit(&s.client, &[&alice], &m).await;
    let o = monitor_once(&s.server, &s.state, &[]);
    assert_eq!(o.code, 1, "{o:#?}");
    let mut got: Vec<(String, String, Value)> = o
        .findings
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().into(),
                f["severity"].as_str().unwrap().into(),
                f["names"].clone(),
            )
        })
        .collect();
    got.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        got,
        vec![
            (
                "dangling-reference".into(),
                "info".into(),
                json!(["org/m", "other/base"])
            ),
            (
                "dangling-reference".into(),
                "warning".into(),
                json!(["org/d", "org/m"])
            ),
        ]
    );
}

// ---------------------------------------------------------------------------
// Once, across restarts; --watch; --exec; following live.

#[tokio::test]
async fn findings_are_reported_once_across_restarts() {
    let s = setup(&[]).await;
    let alice = Publisher::new(KeyType::Ed25519);
    for v in ["1", "2"] {
        let (m, _) = model("org/m", "1", &format!("weights {v}"), json!({}));
        submit(&s.client, &[&alice], &m).await;
    }
    let log = s.state.with_extension("exec.log");
    let exec = format!("cat >> '{}'", log.display());
    let first = monitor_once(&s.server, &s.state, &["--exec", &exec]);
    assert_eq!(
        (first.code, first.kinds()),
        (
            1,
            vec!["broken-history".to_string(), "equivocation".to_string()]
        ),
        "{first:#?}"
    );
    let handed: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(parse_finding)
        .collect();
    assert_eq!(
        handed, first.findings,
        "--exec gets each finding line on stdin"
    );

    let again = monitor_once(&s.server, &s.state, &[]);
    assert_clean(&again);

    let (late, _) = model(
        "org/late",
        "1",
        "late",
        json!({"releaseTime": days_ago(40.0)}),
    );
    submit(&s.client, &[&alice], &late).await;
    let third = monitor_once(&s.server, &s.state, &[]);
    assert_eq!(
        (third.code, third.kinds()),
        (1, vec!["backdating".to_string()]),
        "{third:#?}"
    );
    assert_eq!(third.one("backdating")["indexes"], json!([2]));

    // --watch restricts publisher findings to the names watched.
    let watched = s.state.with_extension("watch");
    let o = monitor_once(&s.server, &watched, &["--watch", "org/nothing", "org/late"]);
    assert_eq!(o.kinds(), vec!["backdating".to_string()], "{o:#?}");
    let none = s.state.with_extension("none");
    assert_clean(&monitor_once(&s.server, &none, &["--watch", "org/other"]));
}

/// Reads a child's stdout lines on a thread.
fn lines_of(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let out = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

#[tokio::test]
async fn follows_the_log_live_and_across_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let mut server = start_server(&data, &[], port);
    let state = dir.path().join("monitor.state");
    let mut monitor = Command::new(common::glasslog_bin())
        .args(monitor_args(&server, &state))
        .env("GLASSLOG_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let lines = lines_of(&mut monitor);
    let alice = Publisher::new(KeyType::Ed25519);
    {
        let client = server.client().await;
        let (m, _) = model("org/old", "1", "w", json!({"releaseTime": days_ago(20.0)}));
        submit(&client, &[&alice], &m).await;
    }
    let line = lines
        .recv_timeout(Duration::from_secs(20))
        .expect("a finding while following");
    assert_eq!(parse_finding(&line)["kind"], json!("backdating"));

    // The server goes away and comes back on the same address: the monitor reconnects.
    assert!(server.terminate().success());
    std::thread::sleep(Duration::from_millis(1500));
    let server = start_server(&data, &[], port);
    let client = server.client().await;
    let (v1, _) = model("org/m", "1", "a", json!({}));
    submit(&client, &[&alice], &v1).await;
    let (v1b, _) = model(
        "org/m",
        "1",
        "b",
        json!({"supersedes": {"logIndex": 1, "digest": {"sha256": hex::encode(manifest("a").1)}}}),
    );
    submit(&client, &[&alice], &v1b).await;
    let line = lines
        .recv_timeout(Duration::from_secs(40))
        .expect("a finding after reconnecting");
    assert_eq!(parse_finding(&line)["kind"], json!("equivocation"));

    // SIGTERM: a clean stop.
    unsafe { libc::kill(monitor.id() as i32, libc::SIGTERM) };
    let status = monitor.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(
        lines.recv_timeout(Duration::from_millis(100)).is_err(),
        "nothing else reported"
    );
}

// ---------------------------------------------------------------------------
// A hostile server (fault injection).

#[cfg(feature = "fault-injection")]
mod hostile_server {
    use super::*;

    fn fault(spec: &str) -> Vec<(&'static str, String)> {
        vec![("GLASSLOG_FAULT", spec.to_string())]
    }

    async fn entries(client: &LogClient, from: usize, n: usize) {
        let p = Publisher::new(KeyType::Ed25519);
        for i in from..from + n {
            client
                .submit(p.envelope(&format!("entry {i}")), vec![p.pem.clone()])
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn checkpoints_with_bad_signatures() {
        let s = setup(&fault("checkpoint-signature:5")).await;
        entries(&s.client, 0, 3).await;
        assert_clean(&monitor_once(&s.server, &s.state, &[]));
        entries(&s.client, 3, 4).await;
        let o = monitor_once(&s.server, &s.state, &[]);
        o.only("bad-checkpoint-signature");
        // Still refused, not reported again.
        let again = monitor_once(&s.server, &s.state, &[]);
        assert_eq!((again.code, again.findings.len()), (1, 0), "{again:#?}");
    }

    #[tokio::test]
    async fn entries_that_do_not_hash_to_the_root() {
        let s = setup(&fault("root:25")).await;
        entries(&s.client, 0, 20).await;
        assert_clean(&monitor_once(&s.server, &s.state, &[]));
        entries(&s.client, 20, 20).await;
        let o = monitor_once(&s.server, &s.state, &[]);
        o.only("root-mismatch");
        let message = o.one("root-mismatch")["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains("proven consistent"), "{message}");
        let state: Value =
            serde_json::from_str(&std::fs::read_to_string(&s.state).unwrap()).unwrap();
        assert_eq!(
            state["nextIndex"],
            json!(20),
            "nothing past the failure is accepted"
        );
    }

    #[tokio::test]
    async fn an_entry_served_differently_to_a_returning_monitor() {
        let s = setup(&fault("entry:15")).await;
        entries(&s.client, 0, 20).await;
        assert_clean(&monitor_once(&s.server, &s.state, &[]));
        entries(&s.client, 20, 5).await;
        let o = monitor_once(&s.server, &s.state, &[]);
        o.only("entry-changed");
        assert_eq!(o.one("entry-changed")["indexes"], json!([15]));
    }

    #[tokio::test]
    async fn a_split_view() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let state = dir.path().join("monitor.state");
        let mut server = start_server(&data, &[], 0);
        entries(&server.client().await, 0, 20).await;
        assert_clean(&monitor_once(&server, &state, &[]));
        assert!(server.terminate().success());
        // The same log, now showing a history in which entry 2 is another: every checkpoint
        // covering it is re-signed over the altered tree.
        let key = data.join("log.key").display().to_string();
        let server = start_server(
            &data,
            &[
                ("GLASSLOG_FAULT", "inconsistent:2".into()),
                ("GLASSLOG_FAULT_KEY_FILE", key),
            ],
            0,
        );
        entries(&server.client().await, 20, 10).await;
        let o = monitor_once(&server, &state, &[]);
        o.only("inconsistent-checkpoint");
        let message = o.one("inconsistent-checkpoint")["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            message.matches(&format!("\u{2014} {ORIGIN} ")).count(),
            2,
            "both signed checkpoints: {message}"
        );
        // A monitor that never saw the honest history cannot tell: the forked view is consistent.
        assert_clean(&monitor_once(&server, &dir.path().join("fresh.state"), &[]));
    }

    #[tokio::test]
    async fn entries_the_log_should_have_refused() {
        let s = setup(&fault("admission")).await;
        let (alice, mallory) = (
            Publisher::new(KeyType::Ed25519),
            Publisher::new(KeyType::Ed25519),
        );
        // Signed by mallory, logged under alice's key.
        let (m, _) = model("org/m", "1", "w", json!({}));
        let (env, _) = envelope(&[&mallory], &m);
        s.client.submit(env, vec![alice.pem.clone()]).await.unwrap();
        // A model that breaks the declaration rules (full disclosure, no training data).
        let (bad, _) = model("org/n", "1", "w", json!({"dataDisclosure": "full"}));
        let (env, keys) = envelope(&[&alice], &bad);
        s.client.submit(env, keys).await.unwrap();
        let o = monitor_once(&s.server, &s.state, &[]);
        assert_eq!(
            (o.code, o.kinds()),
            (
                1,
                vec!["invalid-entry".to_string(), "invalid-entry".to_string()]
            ),
            "{o:#?}"
        );
        // Signature checks off: the forgery passes, the broken declaration does not.
        let o = monitor_once(
            &s.server,
            &s.state.with_extension("nosig"),
            &["--no-signature-checks"],
        );
        assert_eq!(o.kinds(), vec!["invalid-entry".to_string()], "{o:#?}");
    }
}

// ---------------------------------------------------------------------------
// 100,000 honest entries: no findings (always run), and the benchmark (ignored).

/// Entries per family in the large honest log: a dataset, a chain of model releases each
/// superseding the last and trained on the dataset by digest, and a second dataset version that
/// supersedes the first.
const FAMILY: usize = 10;

async fn submit_family(client: &LogClient, f: usize, signer: &Publisher) {
    let data = format!("bench{f}/data");
    let (d1, d_root) = dataset(&data, "1", &format!("d{f}"), json!({}));
    let d_index = submit(client, &[signer], &d1).await;
    let name = format!("bench{f}/model");
    let mut previous: Option<(u64, [u8; 32])> = None;
    for v in 0..FAMILY - 2 {
        let training =
            json!({"dataDisclosure": "full", "trainingData": [trained_on(&data, &d_root, None)]});
        let extra = match previous {
            Some((i, root)) => merged(training, supersedes(i, &root)),
            None => training,
        };
        let (m, root) = model(&name, &v.to_string(), &format!("m{f}.{v}"), extra);
        previous = Some((submit(client, &[signer], &m).await, root));
    }
    let (d2, _) = dataset(&data, "2", &format!("d{f}.2"), supersedes(d_index, &d_root));
    submit(client, &[signer], &d2).await;
}

/// Logs `families` families with 64 concurrent submitters, each family signed by one of three
/// publishers (Ed25519 and P-256) in turn; returns the log's size.
async fn fill_families(client: Arc<LogClient>, families: usize) -> u64 {
    let signers = Arc::new(publishers());
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let workers: Vec<_> = (0..64)
        .map(|_| {
            let (client, signers, next) = (client.clone(), signers.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let f = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if f >= families {
                        return;
                    }
                    submit_family(&client, f, &signers[f % signers.len()]).await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    client.checkpoint().await.unwrap().0.size
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_log_of_100000_entries_has_no_findings() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(&dir.path().join("data"), &[], 0);
    let client = Arc::new(server.client().await);
    let size = fill_families(client, 100_000 / FAMILY).await;
    assert_eq!(size, 100_000);
    // Every check, signatures included.
    let o = monitor_once(&server, &dir.path().join("monitor.state"), &[]);
    assert_clean(&o);
    assert!(o.stderr.contains("verified 100000 entries"), "{}", o.stderr);
}

/// `glasslog bench` fills a log with declarations an honest monitor accepts, so that the
/// catch-up rate it helps measure is the rate of checking, not of reporting findings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_benchmarked_log_has_no_findings() {
    let s = setup(&[]).await;
    let bench = common::log::bench(&s.server, 2_000);
    assert!(
        bench.status.success(),
        "{}",
        String::from_utf8_lossy(&bench.stderr)
    );
    let o = monitor_once(&s.server, &s.state, &[]);
    assert_clean(&o);
    assert!(o.stderr.contains("verified 2000 entries"), "{}", o.stderr);
}

/// Reads the whole log with Tail, recomputing the root and verifying each checkpoint's signature:
/// the rate the server and transport allow, before any per-entry check.
async fn merkle_only(client: &LogClient, size: u64) -> String {
    use glasslog::proto::tail_event::Event;
    let started = Instant::now();
    let mut stream = client
        .rpc()
        .tail(glasslog::proto::TailRequest { start: 0 })
        .await
        .unwrap()
        .into_inner();
    let mut range = glasslog::tlog::compact::CompactRange::new();
    while range.size() < size {
        match stream.message().await.unwrap().unwrap().event.unwrap() {
            Event::Entry(e) => range.append(glasslog::tlog::merkle::leaf_hash(&e.leaf_data)),
            Event::Checkpoint(c) => {
                assert_eq!(client.verify_checkpoint(&c).unwrap().root, range.root())
            }
            Event::Witnessed(_) => {
                panic!("a log without a witness policy sent a witnessed checkpoint")
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    format!(
        "{size} entries in {secs:.2} s ({:.0} entries/s)",
        size as f64 / secs
    )
}

/// Runs `glasslog monitor --once` and returns its own rate line.
fn timed_once(server: &TestServer, state: &Path, extra: &[&str]) -> String {
    let started = Instant::now();
    let o = monitor_once(server, state, extra);
    assert_clean(&o);
    let line = o
        .stderr
        .lines()
        .rfind(|l| l.contains("findings reported"))
        .unwrap_or("")
        .to_string();
    format!(
        "{line} [process wall time {:.2} s]",
        started.elapsed().as_secs_f64()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test --test monitor -- --ignored --nocapture benchmark"]
async fn benchmark_catch_up_and_live_latency() {
    let n: usize = std::env::var("GLASSLOG_MONITOR_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    // GLASSLOG_MONITOR_BENCH_DIR keeps the log there and reuses it on the next run.
    let temp = tempfile::tempdir().unwrap();
    let dir = std::env::var("GLASSLOG_MONITOR_BENCH_DIR")
        .map_or_else(|_| temp.path().to_path_buf(), PathBuf::from);
    let reuse = dir.join("data").exists();
    for old in ["a.state", "a.state.db", "b.state", "b.state.db"] {
        let _ = std::fs::remove_dir_all(dir.join(old));
        let _ = std::fs::remove_file(dir.join(old));
    }
    let server = start_server(&dir.join("data"), &[], 0);
    let client = Arc::new(server.client().await);
    let started = Instant::now();
    let size = fill_families(client.clone(), if reuse { 0 } else { n / FAMILY }).await;
    eprintln!(
        "bench: logged {size} entries in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    eprintln!(
        "bench: Tail read + Merkle only (in the test process): {}",
        merkle_only(&client, size).await
    );
    let structure = timed_once(&server, &dir.join("a.state"), &["--no-signature-checks"]);
    eprintln!("bench: catch-up, Merkle + structure checks (--no-signature-checks): {structure}");
    let full = timed_once(&server, &dir.join("b.state"), &[]);
    eprintln!("bench: catch-up, all checks incl. signatures: {full}");

    // Live: a following monitor; each submission's acknowledgement against the moment the
    // monitor logs the verified checkpoint that covers it.
    let state = dir.join("b.state");
    let mut monitor = Command::new(common::glasslog_bin())
        .args(monitor_args(&server, &state))
        .env("GLASSLOG_LOG", "glasslog::monitor=debug,warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, bool, u64)>();
    let stderr = BufReader::new(monitor.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let committed = line.contains("committed checkpoint");
            if !committed && !line.contains("checked checkpoint") {
                continue;
            }
            let size = line
                .split("size=")
                .nth(1)
                .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|s| s.parse().ok());
            if let Some(size) = size {
                let _ = tx.send((Instant::now(), committed, size));
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    let live = Publisher::new(KeyType::Ed25519);
    let mut acks = Vec::new();
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    for i in 0..500 {
        let (m, _) = model(
            &format!("live{run}/m{i}"),
            "1",
            &format!("live {run} {i}"),
            json!({}),
        );
        let index = submit(&client, &[&live], &m).await;
        acks.push((index, Instant::now()));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    unsafe { libc::kill(monitor.id() as i32, libc::SIGTERM) };
    let _ = monitor.wait();
    let seen: Vec<(Instant, bool, u64)> = rx.try_iter().collect();
    for (committed, what) in [
        (false, "checked (findings printed)"),
        (true, "committed (state durable)"),
    ] {
        let mut latencies: Vec<f64> = acks
            .iter()
            .map(|(index, ack)| {
                let (at, _, _) = seen
                    .iter()
                    .find(|(_, c, size)| *c == committed && size > index)
                    .expect("every entry seen");
                at.saturating_duration_since(*ack).as_secs_f64() * 1000.0
            })
            .collect();
        latencies.sort_by(f64::total_cmp);
        let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
        eprintln!(
            "bench: live latency, acknowledgement to {what}, {} entries: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            latencies.len(),
            pct(0.5),
            pct(0.99),
            latencies[latencies.len() - 1]
        );
    }
}

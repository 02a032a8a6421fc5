//! `audit`, `monitor` and `verify` reading a log from its tiles (`--tiles URL`) instead of its
//! server, end to end: the real binary against a real server with its HTTP listener
//! (`--http-listen`) and a publication to a directory (`--publish file:///…`). Each command
//! gives from the tiles what it gives over gRPC on the same log: the audit's summary, the
//! monitor's findings (publisher misbehaviour, a rewritten history), verify's verdict on a
//! model directory; and a published copy with one byte flipped in a bundle or a hash tile is
//! caught and named.

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::log::{current_size, fill_to, submit_one};
use common::{Publisher, TestServer, ORIGIN, TEST_PREDICATE};
use glasslog::admission::declaration;
use glasslog::admission::dsse::Envelope;
use glasslog::admission::keys::KeyType;
use glasslog::admission::manifest::{hash_directory, HashOptions};
use glasslog::client::LogClient;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// Running glasslog.

/// Runs glasslog with its config directory inside `home` (so no test touches the user's).
fn glasslog<S: AsRef<OsStr>>(home: &Path, args: impl IntoIterator<Item = S>) -> Output {
    glasslog_env(home, args, &[])
}

/// [`glasslog`] with extra environment variables (an S3 store's `AWS_*`).
fn glasslog_env<S: AsRef<OsStr>>(
    home: &Path,
    args: impl IntoIterator<Item = S>,
    env: &[(&str, String)],
) -> Output {
    Command::new(common::glasslog_bin())
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("GLASSLOG_LOG", "warn")
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

/// The JSON lines of a `--json` run: findings, then the summary.
fn json_lines(stdout: &str) -> (Vec<Value>, Value) {
    let mut lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let summary = lines.pop().expect("a summary line");
    assert_eq!(summary["type"], "summary", "{stdout}");
    (lines, summary)
}

fn kinds(findings: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = findings
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect();
    k.sort();
    k
}

// ---------------------------------------------------------------------------
// A server that serves and publishes its tiles.

/// A server with an HTTP listener, publishing to `home/published`.
fn start(home: &Path, data: &str) -> (TestServer, PathBuf) {
    let published = home.join(format!("{data}-published"));
    std::fs::create_dir_all(&published).unwrap();
    let server = TestServer::start(
        &home.join(data),
        &[
            "--origin",
            ORIGIN,
            "--http-listen",
            "127.0.0.1:0",
            "--publish",
            &file_url(&published),
        ],
    );
    assert!(
        server.http_url.is_some(),
        "the server announced no HTTP listener"
    );
    (server, published)
}

fn file_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

fn http_url(server: &TestServer) -> String {
    server.http_url.clone().unwrap()
}

/// Waits until the publication in `dir` has caught up with the log's `size`.
fn wait_published(dir: &Path, size: u64) {
    let started = Instant::now();
    loop {
        let published = std::fs::read_to_string(dir.join("checkpoint"))
            .ok()
            .and_then(|note| note.lines().nth(1).and_then(|l| l.parse::<u64>().ok()));
        if published == Some(size) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "publication stuck at {published:?}, want {size}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A copy of a published directory.
fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Flips one bit of the byte at `at` from the end of `dir/path`.
fn flip(dir: &Path, path: &str, at: usize) {
    let p = dir.join(path);
    let mut b = std::fs::read(&p).unwrap();
    let i = b.len() - 1 - at;
    b[i] ^= 1;
    std::fs::write(p, b).unwrap();
}

// ---------------------------------------------------------------------------
// audit

/// `audit --json` reading the log from `source` (`["--server", URL]` or `["--tiles", URL]`).
fn audit(home: &Path, server: &TestServer, source: [&str; 2], code: i32) -> (Vec<Value>, Value) {
    audit_with(home, server, &source, &[], code)
}

/// [`audit`] from `source` (flags), with environment variables `env`.
fn audit_with(
    home: &Path,
    server: &TestServer,
    source: &[&str],
    env: &[(&str, String)],
    code: i32,
) -> (Vec<Value>, Value) {
    let state = home.join("audit-state.json");
    let mut args: Vec<&OsStr> = vec!["audit".as_ref(), "--json".as_ref()];
    args.extend(source.iter().map(OsStr::new));
    args.extend([
        "--log-key".as_ref(),
        server.verifier_key.as_ref(),
        "--state".as_ref(),
        state.as_os_str(),
        "--state-dir".as_ref(),
        home.as_os_str(),
        "--extra-predicate-type".as_ref(),
        TEST_PREDICATE.as_ref(),
    ]);
    let out = glasslog_env(home, args, env);
    assert_eq!(out.status.code(), Some(code), "{}", text(&out));
    json_lines(&String::from_utf8(out.stdout).unwrap())
}

/// A summary without its timings.
fn untimed(mut summary: Value) -> Value {
    for k in [
        "seconds",
        "cpu_seconds",
        "entries_per_second",
        "entries_per_cpu_second",
        "signature_cpu_seconds",
        "signatures_per_core_second",
    ] {
        summary.as_object_mut().unwrap().remove(k);
    }
    summary
}

/// `monitor --once` reading the log from `source`, with its own state; its exit status and
/// findings.
fn monitor_run(
    home: &Path,
    server: &TestServer,
    source: [&str; 2],
    state: &str,
) -> (i32, Vec<Value>) {
    let state = home.join(state);
    let split = PathBuf::from(format!("{}.split-view.json", state.display()));
    let mut args: Vec<&OsStr> = vec!["monitor".as_ref(), "--once".as_ref()];
    args.extend(source.iter().map(OsStr::new));
    args.extend([
        "--log-key".as_ref(),
        server.verifier_key.as_ref(),
        "--state".as_ref(),
        state.as_os_str(),
        "--split-view-state".as_ref(),
        split.as_os_str(),
        "--extra-predicate-type".as_ref(),
        TEST_PREDICATE.as_ref(),
    ]);
    let out = glasslog(home, args);
    let code = out
        .status
        .code()
        .unwrap_or_else(|| panic!("{}", text(&out)));
    assert!(code == 0 || code == 1, "{}", text(&out));
    let findings = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (code, findings)
}

/// [`monitor_run`], which must exit with `code`; the findings.
fn monitor_once(
    home: &Path,
    server: &TestServer,
    source: [&str; 2],
    state: &str,
    code: i32,
) -> Vec<Value> {
    let (got, findings) = monitor_run(home, server, source, state);
    assert_eq!(got, code, "{findings:?}");
    findings
}

#[test]
fn audit_and_monitor_read_the_same_log_from_the_server_its_listener_and_its_publication() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (server, published) = start(home, "data");
    // Full bundles and a partial one: declarations from the load generator, then statements of
    // the test type one at a time, so that the log signs (and serves the partial tiles of) each
    // size.
    fill_to(&server, 600);
    let p = Publisher::new(KeyType::Ed25519);
    for n in 0..5 {
        submit_one(&server, &p, n);
    }
    let size = current_size(&server);
    assert_eq!(size, 605);
    wait_published(&published, size);
    let (http, dir) = (http_url(&server), file_url(&published));

    let (findings, from_server) = audit(home, &server, ["--server", &server.url], 0);
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(from_server["entries"], 605);
    for tiles in [&http, &dir] {
        let (findings, from_tiles) = audit(home, &server, ["--tiles", tiles], 0);
        assert!(findings.is_empty(), "{tiles}: {findings:?}");
        assert_eq!(untimed(from_tiles), untimed(from_server.clone()), "{tiles}");
    }

    // The monitor: the same findings from the server and from the tiles, then a resumed run
    // after the log grew (the partial bundle read again, the rest not).
    let over_grpc = monitor_run(home, &server, ["--server", &server.url], "grpc.state");
    let from_http = monitor_run(home, &server, ["--tiles", &http], "http.state");
    let from_dir = monitor_run(home, &server, ["--tiles", &dir], "dir.state");
    assert_eq!(from_http, over_grpc);
    assert_eq!(from_dir, over_grpc);
    for n in 5..8 {
        submit_one(&server, &p, n);
    }
    wait_published(&published, 608);
    for (source, state) in [(&http, "http.state"), (&dir, "dir.state")] {
        assert!(monitor_once(home, &server, ["--tiles", source], state, 0).is_empty());
    }

    // A published copy with one byte of an entry flipped (its integrated time): the entries no
    // longer hash to the signed root, as when a server serves altered entries, and the bundle no
    // longer matches its authenticated hash tile.
    let damaged = home.join("damaged-bundle");
    copy_dir(&published, &damaged);
    flip(&damaged, "tile/entries/001", 0);
    let damaged_url = file_url(&damaged);
    let (findings, summary) = audit(home, &server, ["--tiles", &damaged_url], 1);
    let k = kinds(&findings);
    assert!(k.contains(&"root-mismatch".to_string()), "{findings:?}");
    let bad = findings
        .iter()
        .find(|f| f["kind"] == "bad-reply")
        .expect("a bad-reply");
    assert_eq!(bad["indexes"], json!([511]), "{bad}");
    assert_ne!(summary["computed_root"], summary["checkpoint_root"]);
    let from_damaged = monitor_once(home, &server, ["--tiles", &damaged_url], "damaged.state", 1);
    assert!(
        kinds(&from_damaged).contains(&"root-mismatch".to_string()),
        "{from_damaged:?}"
    );

    // A copy with one byte of a hash tile flipped: the entries are the log's (the root is
    // recomputed equal), but the tiles cannot prove anything, which is named.
    let damaged = home.join("damaged-tile");
    copy_dir(&published, &damaged);
    flip(&damaged, "tile/0/000", 0);
    let (findings, summary) = audit(home, &server, ["--tiles", &file_url(&damaged)], 1);
    assert_eq!(kinds(&findings), ["bad-reply"], "{findings:?}");
    let message = findings[0]["message"].as_str().unwrap();
    assert!(message.contains("tile/0/000"), "{message}");
    assert_eq!(summary["computed_root"], summary["checkpoint_root"]);
}

#[test]
fn audit_reads_an_s3_publication_signed_and_through_its_public_face() {
    use common::seaweed::SeaweedFs;
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let s3 = SeaweedFs::start();
    s3.create_bucket("tiles");
    let env = s3.aws_env();
    let endpoint = s3.s3_endpoint();
    let server = TestServer::try_start_env(
        &home.join("data"),
        &[
            "--origin",
            ORIGIN,
            "--publish",
            "s3://tiles/log",
            "--s3-endpoint",
            &endpoint,
        ],
        &env,
    )
    .unwrap();
    fill_to(&server, 300);
    let size = current_size(&server);
    // Anonymous readers see the bucket over plain HTTP, as through a CDN.
    let public = s3.public_url("tiles", "log");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bucket = glasslog::bucket::Bucket::open(&public, &Default::default()).unwrap();
    let started = Instant::now();
    while runtime
        .block_on(bucket.get("checkpoint"))
        .ok()
        .flatten()
        .and_then(|v| String::from_utf8(v.bytes.to_vec()).ok())
        .and_then(|note| note.lines().nth(1).and_then(|l| l.parse::<u64>().ok()))
        != Some(size)
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{}",
            s3.log_tail(20)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let (_, from_server) = audit(home, &server, ["--server", &server.url], 0);
    let signed = ["--tiles", "s3://tiles/log", "--s3-endpoint", &endpoint];
    let (findings, from_s3) = audit_with(home, &server, &signed, &env, 0);
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(untimed(from_s3), untimed(from_server.clone()));
    let (findings, from_public) = audit(home, &server, ["--tiles", &public], 0);
    assert!(findings.is_empty(), "{findings:?}");
    assert_eq!(untimed(from_public), untimed(from_server));
}

// ---------------------------------------------------------------------------
// verify, and publisher misbehaviour seen by the monitor

const MODEL_FILES: [(&str, &[u8]); 3] = [
    ("config.json", b"{\"layers\": 2}"),
    ("model.safetensors", b"\x00\x01 weights \xfe\xff"),
    ("sub/notes.md", b"# notes\n"),
];

fn write_files(dir: &Path, files: &[(&str, &[u8])]) -> PathBuf {
    for (name, data) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
    dir.to_path_buf()
}

/// A model-release statement for the files of `dir`, with `extra` predicate members.
fn model(name: &str, version: &str, dir: &Path, extra: Value) -> Value {
    let m = hash_directory(dir, &HashOptions::default(), None).unwrap();
    let mut st = json!({"_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": hex::encode(m.root_digest())}}],
        "predicateType": declaration::MODEL_RELEASE,
        "predicate": {"name": name, "version": version, "license": "Apache-2.0",
            "releaseTime": common::statements::days_ago(1.0), "manifest": m.to_json_value(),
            "dataDisclosure": "withheld"}});
    for (k, v) in extra.as_object().unwrap() {
        st["predicate"][k] = v.clone();
    }
    st
}

fn digest_of(st: &Value) -> String {
    st["subject"][0]["digest"]["sha256"]
        .as_str()
        .unwrap()
        .to_string()
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

/// `verify DIR --name NAME` reading the log from `source`, with `extra` flags.
fn verify(
    home: &Path,
    server: &TestServer,
    dir: &Path,
    source: [&str; 2],
    extra: &[&str],
    code: i32,
) -> String {
    let mut args: Vec<&OsStr> = vec![
        "verify".as_ref(),
        dir.as_os_str(),
        "--name".as_ref(),
        "org/model".as_ref(),
        "--log-key".as_ref(),
        server.verifier_key.as_ref(),
    ];
    args.extend(source.iter().map(OsStr::new));
    args.extend(extra.iter().map(OsStr::new));
    expect(home, code, args)
}

fn field<'a>(stdout: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}: ");
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {key:?} in {stdout}"))
}

#[tokio::test]
async fn verify_and_monitor_from_tiles_judge_declarations_as_over_grpc() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (server, published) = start(home, "data");
    let client = server.client().await;
    let alice = Publisher::new(KeyType::Ed25519);
    let model_dir = write_files(&home.join("model"), &MODEL_FILES);
    for i in 0..3 {
        client
            .submit(
                alice.envelope(&format!("before {i}")),
                vec![alice.pem.clone()],
            )
            .await
            .unwrap();
    }
    let released = model("org/model", "1.0", &model_dir, json!({}));
    assert_eq!(submit(&client, &alice, &released).await, 3);
    // An equivocation: another model under the same name and version.
    let other_dir = write_files(&home.join("other"), &[("w.bin", b"other weights")]);
    let first = model("org/other", "1", &other_dir, json!({}));
    assert_eq!(submit(&client, &alice, &first).await, 4);
    let supersedes =
        json!({"supersedes": {"logIndex": 4, "digest": {"sha256": digest_of(&first)}}});
    let second = model("org/other", "1", &model_dir, supersedes);
    assert_eq!(submit(&client, &alice, &second).await, 5);
    client
        .submit(alice.envelope("after"), vec![alice.pem.clone()])
        .await
        .unwrap();
    wait_published(&published, 7);
    let (http, dir) = (http_url(&server), file_url(&published));

    // verify: the untouched directory, from the server and from the tiles.
    let out = verify(home, &server, &model_dir, ["--server", &server.url], &[], 0);
    assert_eq!(field(&out, "index"), "3");
    for tiles in [&http, &dir] {
        let out = verify(home, &server, &model_dir, ["--tiles", tiles], &[], 0);
        assert_eq!(field(&out, "result"), "ok", "{out}");
        assert_eq!(field(&out, "index"), "3");
        assert_eq!(field(&out, "files"), "all 3 match the logged manifest");
        assert!(
            field(&out, "note").starts_with("every entry up to checkpoint size 7 was read"),
            "{out}"
        );
    }
    let out = verify(
        home,
        &server,
        &model_dir,
        ["--tiles", &http],
        &["--entry", "3"],
        0,
    );
    assert!(
        field(&out, "later declarations").starts_with("unknown"),
        "{out}"
    );
    let out = verify(
        home,
        &server,
        &model_dir,
        ["--tiles", &http],
        &["--entry", "4", "--json"],
        1,
    );
    let (findings, _) = json_lines(&out);
    assert_eq!(kinds(&findings), ["not-found", "not-found"], "{out}");
    assert!(findings[0]["message"]
        .as_str()
        .unwrap()
        .contains("declares org/other"));

    // A changed file is named, from the tiles as from the server.
    let weights = model_dir.join("model.safetensors");
    std::fs::write(&weights, b"\x00\x01 weights \xfe\xfe").unwrap();
    for source in [
        ["--server", server.url.as_str()],
        ["--tiles", &http],
        ["--tiles", &dir],
    ] {
        let out = verify(home, &server, &model_dir, source, &[], 1);
        assert!(
            out.contains("FAIL file-changed (index 3, org/model, file model.safetensors)"),
            "{source:?}: {out}"
        );
    }

    // The monitor reports the equivocation (and nothing else) from either source.
    let over_grpc = monitor_once(home, &server, ["--server", &server.url], "grpc.state", 1);
    assert_eq!(kinds(&over_grpc), ["equivocation"], "{over_grpc:?}");
    assert_eq!(over_grpc[0]["indexes"], json!([4, 5]));
    for (tiles, state) in [(&http, "http.state"), (&dir, "dir.state")] {
        assert_eq!(
            monitor_once(home, &server, ["--tiles", tiles], state, 1),
            over_grpc
        );
    }
}

#[tokio::test]
async fn a_following_monitor_polls_the_tiles_and_reports_as_the_log_grows() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let (server, _) = start(home, "data");
    let client = server.client().await;
    let alice = Publisher::new(KeyType::Ed25519);
    client
        .submit(alice.envelope("first"), vec![alice.pem.clone()])
        .await
        .unwrap();
    let state = home.join("live.state");
    let mut child = Command::new(common::glasslog_bin())
        .args([
            "monitor",
            "--tiles",
            &http_url(&server),
            "--interval",
            "1",
            "--log-key",
        ])
        .arg(&server.verifier_key)
        .arg("--state")
        .arg(&state)
        .arg("--split-view-state")
        .arg(home.join("live.split-view.json"))
        .args(["--extra-predicate-type", TEST_PREDICATE])
        .env("GLASSLOG_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });

    // While it follows, a publisher equivocates.
    let dir = write_files(&home.join("m"), &[("w.bin", b"one")]);
    let first = model("org/live", "1", &dir, json!({}));
    let at = submit(&client, &alice, &first).await;
    let dir = write_files(&home.join("m2"), &[("w.bin", b"two")]);
    let supersedes =
        json!({"supersedes": {"logIndex": at, "digest": {"sha256": digest_of(&first)}}});
    submit(&client, &alice, &model("org/live", "1", &dir, supersedes)).await;
    let line = lines
        .recv_timeout(Duration::from_secs(60))
        .expect("the following monitor reported nothing");
    let finding: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(finding["kind"], "equivocation", "{line}");
    assert_eq!(finding["indexes"], json!([1, 2]));

    // SIGTERM: a clean stop, and what it verified is kept.
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(saved["nextIndex"], json!(3));
}

// ---------------------------------------------------------------------------
// A rewritten history

#[test]
fn a_rewritten_history_is_inconsistent_from_tiles_as_from_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    // Two logs under one key: B is A's history rewritten (its entries are others) and longer.
    let (a, published_a) = start(home, "a");
    std::fs::create_dir_all(home.join("b")).unwrap();
    std::fs::copy(home.join("a/log.key"), home.join("b/log.key")).unwrap();
    let (b, _) = start(home, "b");
    assert_eq!(a.verifier_key, b.verifier_key);
    let p = Publisher::new(KeyType::Ed25519);
    for n in 0..3 {
        submit_one(&a, &p, n);
    }
    for n in 0..300 {
        submit_one(&b, &p, 1000 + n);
    }
    wait_published(&published_a, 3);

    // Each monitor verifies A, then is shown B: the same findings over gRPC and from tiles.
    let mut seen = Vec::new();
    for (name, at_a, at_b) in [
        (
            "grpc",
            ["--server", a.url.as_str()],
            ["--server", b.url.as_str()],
        ),
        (
            "tiles",
            ["--tiles", &http_url(&a)],
            ["--tiles", &http_url(&b)],
        ),
        (
            "dir",
            ["--tiles", &file_url(&published_a)],
            ["--tiles", &http_url(&b)],
        ),
    ] {
        let state = format!("{name}.state");
        assert!(monitor_once(home, &a, at_a, &state, 0).is_empty());
        let findings = monitor_once(home, &b, at_b, &state, 1);
        let k = kinds(&findings);
        assert!(
            k.contains(&"inconsistent-checkpoint".to_string()),
            "{name}: {findings:?}"
        );
        seen.push(k);
        // Refused, and not reported again.
        assert!(monitor_once(home, &b, at_b, &state, 1).is_empty());
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0], seen[2]);

    // The split-view state of audit and verify: A first, then B's tiles.
    audit(home, &a, ["--tiles", &http_url(&a)], 0);
    let (findings, _) = audit(home, &b, ["--tiles", &http_url(&b)], 1);
    assert_eq!(
        kinds(&findings),
        ["inconsistent-checkpoint"],
        "{findings:?}"
    );
}

#[test]
fn tiles_flags_go_with_tiles() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let origin = glasslog::tlog::checkpoint::Origin::new("flags.example/log").unwrap();
    let key = glasslog::tlog::note::LogSigner::generate(&origin).verifier_key();
    let server = ["--server", "http://127.0.0.1:9"];
    let dir = home.display().to_string();
    for (args, says) in [
        (
            vec!["verify", &dir, "--name", "org/m", "--entry", "3"],
            "--entry goes with --tiles",
        ),
        (
            vec!["audit", "--s3-endpoint", "http://127.0.0.1:9"],
            "--s3-endpoint goes with --tiles",
        ),
        (
            vec!["monitor", "--state", "s", "--interval", "3"],
            "--interval and --s3-endpoint go with --tiles",
        ),
        (
            vec!["audit", "--tiles", "file:///nowhere/at/all"],
            "no such directory",
        ),
    ] {
        let mut all: Vec<&str> = args.clone();
        if !args.contains(&"--tiles") {
            all.extend(server);
        }
        all.extend(["--log-key", &key]);
        let out = glasslog(home, &all);
        assert_ne!(out.status.code(), Some(0), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

//! Interoperability: the wire formats verify with someone else's code.
//!
//! The real server runs on loopback; `tests/interop/client.py` (Python gRPC stubs generated from
//! the proto at run time, DSSE signed with `cryptography`, its own RFC 6962/9162 and C2SP
//! signed-note verification) exercises every rpc and prints what it saw as one JSON line;
//! `tests/interop/verify.go` checks that line with Go's `golang.org/x/mod/sumdb/note` and
//! `golang.org/x/mod/sumdb/tlog`. A second test tampers with the line and expects Go to refuse.
//!
//! Needs `python3` with grpcio, grpcio-tools and cryptography, and `go` with Debian's
//! golang-golang-x-mod-dev. `.ci/dev test` installs them; without them these tests fail (never
//! skip).

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use common::{TestServer, ORIGIN};
use serde_json::Value;

/// Where Debian's golang-golang-x-mod-dev puts golang.org/x/mod.
const DEBIAN_GOCODE: &str = "/usr/share/gocode";

const INSTALL_HINT: &str = "run `.ci/dev test` (it installs golang-go, golang-golang-x-mod-dev and \
                            python3's grpcio, grpcio-tools and cryptography), or install them yourself";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn client_py() -> PathBuf {
    repo().join("tests/interop/client.py")
}

fn verify_go() -> PathBuf {
    repo().join("tests/interop/verify.go")
}

/// Runs `cmd` with `stdin`, killing it after `limit`; returns its output.
fn run(mut cmd: Command, stdin: &[u8], limit: Duration, what: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}; {INSTALL_HINT}"));
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let err_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err_reader.join().unwrap();
            panic!(
                "{what} did not finish within {limit:?}; stderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    writer.join().unwrap();
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

fn show(o: &Output) -> String {
    format!(
        "exit status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `go` in GOPATH mode over Debian's golang.org/x/mod, with writable cache and GOPATH dirs.
fn go_command() -> Command {
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-go");
    let gopath = scratch.join("gopath");
    std::fs::create_dir_all(&gopath).unwrap();
    let mut cmd = Command::new("go");
    cmd.current_dir(repo())
        .env("GO111MODULE", "off")
        .env("GOPATH", format!("{DEBIAN_GOCODE}:{}", gopath.display()))
        .env("GOFLAGS", "")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off");
    if std::env::var_os("GOCACHE").is_none() {
        let cache = match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".cache/go-build"),
            None => scratch.join("go-build"),
        };
        cmd.env("GOCACHE", cache);
    }
    cmd
}

/// Fails (never skips) with instructions when python3's modules or Go's are missing.
fn require_tools() {
    let py = Command::new("python3")
        .args(["-c", "import grpc, grpc_tools, cryptography"])
        .output();
    match py {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "python3 lacks grpcio, grpcio-tools or cryptography; {INSTALL_HINT}\n{}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("cannot run python3 ({e}); {INSTALL_HINT}"),
    }
    match go_command().arg("version").output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!("`go version` failed; {INSTALL_HINT}\n{}", show(&o)),
        Err(e) => panic!("cannot run go ({e}); {INSTALL_HINT}"),
    }
    for pkg in ["note", "tlog"] {
        let dir = Path::new(DEBIAN_GOCODE)
            .join("src/golang.org/x/mod/sumdb")
            .join(pkg);
        assert!(
            dir.is_dir(),
            "{} is missing (Debian package golang-golang-x-mod-dev); {INSTALL_HINT}",
            dir.display()
        );
    }
}

/// Runs the Python client against the server; returns its JSON line, parsed.
fn python_client(server: &TestServer) -> Value {
    let target = server
        .url
        .strip_prefix("http://")
        .expect("server URL is http://host:port");
    let mut cmd = Command::new("python3");
    cmd.current_dir(repo())
        .arg(client_py())
        .arg(target)
        .args(["--vkey", &server.verifier_key])
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let out = run(
        cmd,
        b"",
        Duration::from_secs(240),
        "tests/interop/client.py",
    );
    assert!(
        out.status.success(),
        "the Python client failed against the server:\n{}",
        show(&out)
    );
    let stdout = String::from_utf8(out.stdout.clone()).expect("client.py stdout is UTF-8");
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "client.py must print exactly one JSON line:\n{}",
        show(&out)
    );
    let seen: Value = serde_json::from_str(lines[0])
        .unwrap_or_else(|e| panic!("client.py's line is not JSON ({e}):\n{}", show(&out)));
    // The key Go is given is the one pinned from the server's own output, not one it advertised.
    assert_eq!(
        seen["vkey"].as_str(),
        Some(server.verifier_key.as_str()),
        "client.py reported another verifier key"
    );
    assert!(
        server.verifier_key.starts_with(&format!("{ORIGIN}+")),
        "verifier key {} is not named {ORIGIN}",
        server.verifier_key
    );
    eprintln!(
        "client.py stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    seen
}

/// Pipes `seen` into `go run tests/interop/verify.go`.
fn go_verify(seen: &Value) -> Output {
    let mut cmd = go_command();
    cmd.arg("run").arg(verify_go());
    let input = serde_json::to_vec(seen).unwrap();
    run(
        cmd,
        &input,
        Duration::from_secs(300),
        "go run tests/interop/verify.go",
    )
}

fn assert_go_accepts(seen: &Value) {
    let out = go_verify(seen);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "Go's sumdb note/tlog REJECTED what glasslog served:\n{}\ninput: {seen}",
        show(&out)
    );
    eprintln!("verify.go: {}", String::from_utf8_lossy(&out.stderr).trim());
}

/// Go must refuse `seen`, for the reason `because` names (so that a Go that does not even build
/// does not pass as a refusal).
fn assert_go_rejects(seen: &Value, case: &str, because: &str) {
    let out = go_verify(seen);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stdout).trim() != "ok",
        "Go ACCEPTED a tampered input ({case}):\n{}\ninput: {seen}",
        show(&out)
    );
    assert!(
        stderr.contains("verify.go: REJECTED") && stderr.contains(because),
        "Go refused {case}, but not with a message containing {because:?}:\n{}",
        show(&out)
    );
    eprintln!(
        "{case}: {}",
        stderr
            .lines()
            .find(|l| l.contains("REJECTED"))
            .unwrap_or_default()
    );
}

fn start_server() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("data"), &["--origin", ORIGIN]);
    (dir, server)
}

/// Flips bit `bit` of byte `byte` of a standard-base64 string.
fn flip_b64(s: &str, byte: usize, bit: u8) -> String {
    let mut b = BASE64.decode(s).expect("standard base64");
    b[byte] ^= 1 << bit;
    BASE64.encode(b)
}

/// Flips one bit of the Ed25519 signature (not the key id) on every signature line of a note.
fn flip_note_signature(note: &str) -> String {
    let split = note.rfind("\n\n").expect("a signed note has a blank line") + 2;
    let (text, sigs) = note.split_at(split);
    let mut out = text.to_string();
    for line in sigs.lines() {
        let (name, sig) = line
            .strip_prefix("— ")
            .expect("signature line")
            .split_once(' ')
            .expect("name and signature");
        out.push_str(&format!("— {name} {}\n", flip_b64(sig, 4 + 17, 3)));
    }
    out
}

#[test]
fn python_client_and_go_verifier_agree_with_the_server() {
    require_tools();
    let (_dir, server) = start_server();
    let seen = python_client(&server);
    for field in ["note", "old_note"] {
        assert!(
            seen[field]
                .as_str()
                .is_some_and(|n| n.starts_with(&format!("{ORIGIN}\n"))),
            "{field}: {seen}"
        );
    }
    assert!(
        !seen["consistency"].as_array().unwrap().is_empty(),
        "the consistency proof should be non-trivial: {seen}"
    );
    assert!(
        !seen["proof"].as_array().unwrap().is_empty(),
        "the inclusion proof should be non-trivial: {seen}"
    );
    assert_go_accepts(&seen);
}

#[test]
fn go_verifier_rejects_tampered_proofs_and_signatures() {
    require_tools();
    let (_dir, server) = start_server();
    let seen = python_client(&server);
    // The untampered input passes, so each refusal below is about the one bit flipped.
    assert_go_accepts(&seen);

    let tampered = |edit: &dyn Fn(&mut Value)| {
        let mut v = seen.clone();
        edit(&mut v);
        assert_ne!(v, seen);
        v
    };
    let flip_first = |field: &'static str| {
        move |v: &mut Value| {
            let h = v[field][0].as_str().unwrap().to_string();
            v[field][0] = Value::from(flip_b64(&h, 0, 0));
        }
    };

    assert_go_rejects(
        &tampered(&flip_first("proof")),
        "one bit of the inclusion proof flipped",
        "inclusion proof",
    );
    assert_go_rejects(
        &tampered(&|v| v["note"] = Value::from(flip_note_signature(v["note"].as_str().unwrap()))),
        "one bit of the checkpoint note's signature flipped",
        "invalid signature",
    );
    assert_go_rejects(
        &tampered(&|v| {
            v["old_note"] = Value::from(flip_note_signature(v["old_note"].as_str().unwrap()))
        }),
        "one bit of the old checkpoint note's signature flipped",
        "invalid signature",
    );
    assert_go_rejects(
        &tampered(&flip_first("consistency")),
        "one bit of the consistency proof flipped",
        "consistency proof",
    );
    assert_go_rejects(
        &tampered(&|v| {
            let d = v["leaf_data"].as_str().unwrap().to_string();
            v["leaf_data"] = Value::from(flip_b64(&d, 5, 1));
        }),
        "one bit of the leaf data flipped",
        "inclusion proof",
    );
    assert_go_rejects(
        &tampered(&|v| v["index"] = Value::from(v["index"].as_u64().unwrap() - 1)),
        "the leaf's index changed",
        "inclusion proof",
    );
    // The note's body changed (a root that is not the signed one): the signature must catch it.
    assert_go_rejects(
        &tampered(&|v| {
            let note = v["note"].as_str().unwrap();
            let mut lines: Vec<String> = note.split('\n').map(str::to_string).collect();
            lines[2] = flip_b64(&lines[2], 31, 7);
            v["note"] = Value::from(lines.join("\n"));
        }),
        "one bit of the checkpoint root flipped",
        "invalid signature",
    );
}

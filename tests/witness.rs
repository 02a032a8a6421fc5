//! `glasslog witness`, the real binary on loopback, driven over plain HTTP as any C2SP log
//! would drive it: checkpoints of an origin that is not glasslog's, signed by a key made here.
//! One test per row of tlog-witness v1.0.0's table, a restart, a crash test under concurrent
//! requests, and the cosignatures checked by `tests/interop/cosignature.py` (written from the
//! spec) and against real cosignatures by production witnesses.

mod common;

use common::witness::{add_checkpoint, Answer, TestWitness};

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{SigningKey, VerifyingKey};
use glasslog::tlog::checkpoint::{Checkpoint, Origin};
use glasslog::tlog::cosignature::{parse_line, CosignerKey};
use glasslog::tlog::merkle::{self, leaf_hash, Hash, MemoryTree};
use glasslog::tlog::note::LogSigner;
use glasslog::tlog::witness_protocol::AddCheckpoint;
use sha2::{Digest, Sha256};

/// A log built here: its key, its tree, and a leaf namespace (two logs with one key and
/// different namespaces are a fork).
pub struct TestLog {
    pub signer: LogSigner,
    pub tree: MemoryTree,
    fork: u8,
}

impl TestLog {
    pub fn new(origin: &str, seed: u8, fork: u8) -> TestLog {
        TestLog {
            signer: LogSigner::new(
                Origin::new(origin).unwrap(),
                SigningKey::from_bytes(&[seed; 32]),
            ),
            tree: MemoryTree::new(),
            fork,
        }
    }

    /// Grows the tree to `size` leaves (leaf i is the same in every fork below 10).
    pub fn grow_to(&mut self, size: u64) {
        while self.tree.size() < size {
            let i = self.tree.size();
            let tag = if i < 10 { 0 } else { self.fork };
            let mut data = i.to_be_bytes().to_vec();
            data.push(tag);
            self.tree.append(leaf_hash(&data)).unwrap();
        }
    }

    pub fn checkpoint(&self, size: u64) -> Checkpoint {
        let root = if size == 0 {
            merkle::EMPTY_HASH
        } else {
            merkle::root_hash(size, &self.tree).unwrap()
        };
        Checkpoint {
            origin: self.signer.origin().to_string(),
            size,
            root,
        }
    }

    pub fn note(&self, size: u64) -> String {
        self.signer.sign(&self.checkpoint(size)).unwrap()
    }

    pub fn request(&self, old: u64, size: u64) -> AddCheckpoint {
        let proof = if old == 0 || old == size {
            vec![]
        } else {
            merkle::prove_consistency(old, size, &self.tree).unwrap()
        };
        AddCheckpoint {
            old_size: old,
            proof,
            note: self.note(size),
        }
    }
}

fn send(w: &TestWitness, req: &AddCheckpoint) -> Answer {
    add_checkpoint(&w.url, &req.to_body()).unwrap()
}

/// Checks a 200 answer: one line, a valid cosignature by the witness over the note's text.
fn assert_cosigned(w: &TestWitness, note: &str, a: &Answer) -> u64 {
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(
        a.body.ends_with('\n') && a.body.starts_with("— witness.test/w "),
        "{}",
        a.body
    );
    let sig = parse_line(&a.body).unwrap();
    let key = w.key();
    assert!(key.matches(&sig));
    let text = note.split_once("\n\n").unwrap().0.to_string() + "\n";
    key.verify(&text, sig.signature()).unwrap()
}

#[test]
fn the_witness_answers_each_row_of_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = TestLog::new("example.org/some-other-log", 1, 1);
    let stranger = TestLog::new("example.org/some-other-log", 2, 1);
    let w = TestWitness::start(dir.path(), 0, &[&log.signer.verifier_key()]);
    assert!(w.vkey.starts_with("witness.test/w+"), "{}", w.vkey);
    log.grow_to(20);

    // 400: not a request body.
    assert_eq!(add_checkpoint(&w.url, b"hello\n").unwrap().status, 400);
    assert_eq!(
        add_checkpoint(&w.url, b"old 01\n\nx\n").unwrap().status,
        400
    );
    // 404: an origin the witness does not witness.
    let unknown = TestLog::new("example.org/unknown", 1, 1);
    assert_eq!(send(&w, &unknown.request(0, 0)).status, 404);
    // 403: the right origin, signed by a key the witness does not trust.
    let mut s = stranger;
    s.grow_to(5);
    assert_eq!(send(&w, &s.request(0, 5)).status, 403);
    // 400: old size above the checkpoint's size.
    let mut bad = log.request(0, 5);
    bad.old_size = 6;
    assert_eq!(add_checkpoint(&w.url, &bad.to_body()).unwrap().status, 400);
    // 200: the first checkpoint, from old size 0.
    let first = log.request(0, 5);
    let t = assert_cosigned(&w, &first.note, &send(&w, &first));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(t <= now && now - t < 600, "timestamp {t}");
    // 409 with the known size when the old size is not the recorded one.
    for old in [0, 3, 7] {
        let a = send(&w, &log.request(old, 12));
        assert_eq!(a.status, 409, "old {old}: {}", a.body);
        assert_eq!(a.content_type, "text/x.tlog.size");
        assert_eq!(a.body, "5\n");
    }
    // 422: a consistency proof that does not verify.
    let mut wrong = log.request(5, 12);
    wrong.proof[0] = Hash([0; 32]);
    assert_eq!(send(&w, &wrong).status, 422);
    let mut short = log.request(5, 12);
    short.proof.pop();
    assert_eq!(send(&w, &short).status, 422);
    // 409: the recorded size with another root (v1.0.0's answer; the current draft says 422).
    let mut fork = TestLog::new("example.org/some-other-log", 1, 2);
    fork.grow_to(20);
    let same_size_other_root = {
        let mut f = TestLog::new("example.org/some-other-log", 1, 2);
        f.tree = MemoryTree::new();
        for i in 0..5u64 {
            f.tree.append(leaf_hash(&[i as u8, 9])).unwrap();
        }
        f.request(5, 5)
    };
    let a = send(&w, &same_size_other_root);
    assert_eq!(a.status, 409, "{}", a.body);
    assert_ne!(a.content_type, "text/x.tlog.size");
    // 200: the same checkpoint again, and growth with a valid proof.
    assert_cosigned(&w, &log.note(5), &send(&w, &log.request(5, 5)));
    let grow = log.request(5, 12);
    assert_cosigned(&w, &grow.note, &send(&w, &grow));
    // A fork beyond the shared prefix is refused: its proof fails against the recorded root.
    assert_eq!(send(&w, &fork.request(12, 20)).status, 422);
    // Extension lines are covered by the cosignature (the note's whole text).
    let body = format!("{}extension line\n", log.checkpoint(12).to_body());
    let mut note = signed_note::Note::new(body.as_bytes(), &[]).unwrap();
    let signer = signed_note::StandardSigner::new(&log.signer.to_skey()).unwrap();
    note.add_sigs(&[&signer]).unwrap();
    let note = String::from_utf8(note.to_bytes()).unwrap();
    let req = AddCheckpoint {
        old_size: 12,
        proof: vec![],
        note: note.clone(),
    };
    assert_cosigned(&w, &note, &send(&w, &req));
}

#[test]
fn a_restarted_witness_resumes_from_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = TestLog::new("example.org/restart", 3, 1);
    log.grow_to(40);
    let mut w = TestWitness::start(dir.path(), 0, &[&log.signer.verifier_key()]);
    let vkey = w.vkey.clone();
    assert_eq!(send(&w, &log.request(0, 30)).status, 200);
    let port = w.port;
    w.kill();
    let w = TestWitness::start(dir.path(), port, &[&log.signer.verifier_key()]);
    assert_eq!(w.vkey, vkey, "the key is kept");
    let a = send(&w, &log.request(0, 40));
    assert_eq!((a.status, a.body.as_str()), (409, "30\n"));
    assert_eq!(send(&w, &log.request(30, 40)).status, 200);
    // Its key deleted: refused, and no new witness identity is made.
    drop(w);
    std::fs::remove_file(dir.path().join("witness.key")).unwrap();
    let out = Command::new(common::glasslog_bin())
        .args(["witness", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(["--log", &log.signer.verifier_key()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("restore the key file"));
    assert!(!dir.path().join("witness.key").exists());
}

/// SIGKILLs the witness repeatedly while 8 clients send checkpoints of two forks of one log
/// (same key, different leaves after index 10), each client following the sizes the witness
/// gives it. Every 200 is recorded; the witness must never have cosigned two roots for one
/// size, nor checkpoints of both forks past their shared prefix.
#[test]
fn a_witness_killed_under_load_never_cosigns_two_roots_for_one_size() {
    /// The largest size sent: large enough that the clients are still sending at the last kill.
    const LAST: u64 = 4000;
    let dir = tempfile::tempdir().unwrap();
    let mut a = TestLog::new("example.org/forked", 4, 1);
    let mut b = TestLog::new("example.org/forked", 4, 2);
    a.grow_to(LAST + 1);
    b.grow_to(LAST + 1);
    let logs = Arc::new([a, b]);
    let vkey = logs[0].signer.verifier_key();
    let mut w = TestWitness::start(dir.path(), 0, &[&vkey]);
    let port = w.port;
    let url = Arc::new(Mutex::new(w.url.clone()));
    // Size → the (fork, root) pairs the witness cosigned at that size.
    type Cosigned = BTreeMap<u64, BTreeSet<(u8, [u8; 32])>>;
    let cosigned: Arc<Mutex<Cosigned>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..8u64)
        .map(|c| {
            let (logs, url, cosigned, stop) =
                (logs.clone(), url.clone(), cosigned.clone(), stop.clone());
            std::thread::spawn(move || {
                let fork = (c % 2) as usize;
                let (mut old, mut size) = (0u64, 11 + c);
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let req = logs[fork].request(old.min(size), size);
                    let target = url.lock().unwrap().clone();
                    let Ok(answer) = add_checkpoint(&target, &req.to_body()) else {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    };
                    match answer.status {
                        200 => {
                            let root = logs[fork].checkpoint(size).root.0;
                            cosigned
                                .lock()
                                .unwrap()
                                .entry(size)
                                .or_default()
                                .insert((fork as u8, root));
                            old = size;
                            size = (size + 1 + c).min(LAST);
                        }
                        409 if answer.content_type == "text/x.tlog.size" => {
                            old = answer.body.trim_end().parse().unwrap();
                            if old >= size {
                                size = (old + 1 + c).min(LAST);
                            }
                            if old >= LAST {
                                return;
                            }
                        }
                        _ => {
                            // 409 (same size, other root) or 422 (the other fork): try further on.
                            size = (size + 3).min(LAST);
                        }
                    }
                }
            })
        })
        .collect();
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(150));
        w.kill();
        w = TestWitness::start(dir.path(), port, &[&vkey]);
        *url.lock().unwrap() = w.url.clone();
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let cosigned = cosigned.lock().unwrap();
    assert!(
        cosigned.len() > 5,
        "too few cosignatures to mean anything: {cosigned:?}"
    );
    let mut forks_past_prefix = BTreeSet::new();
    for (size, roots) in cosigned.iter() {
        let distinct: BTreeSet<&[u8; 32]> = roots.iter().map(|(_, r)| r).collect();
        assert_eq!(
            distinct.len(),
            1,
            "two roots cosigned for size {size}: {roots:?}"
        );
        if *size > 10 {
            forks_past_prefix.extend(roots.iter().map(|(f, _)| *f));
        }
    }
    assert!(
        forks_past_prefix.len() <= 1,
        "both forks cosigned past the shared prefix"
    );
    eprintln!(
        "{} sizes cosigned, largest {:?}, across 6 kills",
        cosigned.len(),
        cosigned.keys().last()
    );
}

#[test]
fn cosignatures_verify_with_a_verifier_written_from_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = TestLog::new("example.org/interop", 5, 1);
    log.grow_to(3);
    let w = TestWitness::start(dir.path(), 0, &[&log.signer.verifier_key()]);
    let req = log.request(0, 3);
    let a = send(&w, &req);
    assert_eq!(a.status, 200);
    let cosigned = format!("{}{}", req.note, a.body);
    let run = |note: &str| {
        let mut child = Command::new("python3")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/interop/cosignature.py"
            ))
            .arg(&w.vkey)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 (run .ci/dev test, which installs it with cryptography)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(note.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let ok = run(&cosigned);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(out.contains("\"witness.test/w\""), "{out}");
    // The same cosignature on another checkpoint is refused by the independent verifier too.
    let tampered = cosigned.replacen("\n3\n", "\n4\n", 1);
    assert!(!run(&tampered).status.success());
}

#[test]
fn real_cosignatures_by_production_witnesses_verify() {
    let data = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/sigsum_cosignatures.txt"
    ))
    .unwrap();
    let (mut keyhash, mut size, mut root) = (String::new(), String::new(), Vec::new());
    let mut witnesses = BTreeMap::new();
    let mut cosigs = Vec::new();
    for line in data.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split(' ').collect();
        match f[0] {
            "log_keyhash" => keyhash = f[1].to_string(),
            "size" => size = f[1].to_string(),
            "root_hash" => root = hex::decode(f[1]).unwrap(),
            "witness" => {
                let key = hex::decode(f[2]).unwrap();
                witnesses.insert(hex::encode(Sha256::digest(&key)), (f[1].to_string(), key));
            }
            "cosignature" => cosigs.push((
                f[1].to_string(),
                f[2].parse::<u64>().unwrap(),
                hex::decode(f[3]).unwrap(),
            )),
            _ => panic!("{line}"),
        }
    }
    let text = format!(
        "sigsum.org/v1/tree/{keyhash}\n{size}\n{}\n",
        BASE64.encode(&root)
    );
    let mut verified = 0;
    for (kh, time, sig) in &cosigs {
        let Some((name, key)) = witnesses.get(kh) else {
            continue;
        };
        let key = CosignerKey::new(
            name,
            VerifyingKey::from_bytes(&key[..].try_into().unwrap()).unwrap(),
        )
        .unwrap();
        let blob = [&time.to_be_bytes()[..], sig].concat();
        assert_eq!(key.verify(&text, &blob), Ok(*time), "{name}");
        // Any change to the checkpoint or the time breaks it.
        assert!(key.verify(&text.replace(&size, "381383"), &blob).is_err());
        let later = [&(time + 1).to_be_bytes()[..], sig].concat();
        assert!(key.verify(&text, &later).is_err());
        verified += 1;
    }
    assert!(
        verified >= 4,
        "only {verified} of the policy's witnesses found"
    );
}

/// One keep-alive HTTP/1.1 connection to a witness, for the benchmark.
struct KeepAlive {
    stream: BufReader<TcpStream>,
    addr: String,
}

impl KeepAlive {
    fn connect(url: &str) -> KeepAlive {
        let addr = url.strip_prefix("http://").unwrap().to_string();
        let s = TcpStream::connect(&addr).unwrap();
        s.set_nodelay(true).unwrap();
        KeepAlive {
            stream: BufReader::new(s),
            addr,
        }
    }

    /// Sends one add-checkpoint and returns the status.
    fn post(&mut self, body: &[u8]) -> u16 {
        let s = self.stream.get_mut();
        write!(
            s,
            "POST /add-checkpoint HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        )
        .unwrap();
        s.write_all(body).unwrap();
        let mut status_line = String::new();
        self.stream.read_line(&mut status_line).unwrap();
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.stream.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).unwrap();
        status_line.split(' ').nth(1).unwrap().parse().unwrap()
    }
}

/// Benchmark, not a test (`cargo test --release --test witness -- --ignored --nocapture
/// benchmark`): cosigned add-checkpoint requests per second of one witness, for one origin
/// (necessarily one request at a time: each starts from the size the previous one recorded)
/// and for 100 origins (8 client threads, keep-alive connections). Every answer is checked to
/// be 200; each request carries a real consistency proof and the witness fsyncs each record.
#[test]
#[ignore]
fn benchmark_witness_throughput() {
    const SECONDS: f64 = 5.0;
    for origins in [1usize, 100] {
        let dir = tempfile::tempdir().unwrap();
        let logs: Vec<TestLog> = (0..origins)
            .map(|i| {
                let mut l = TestLog::new(&format!("bench.example/log{i}"), i as u8 + 1, 1);
                l.grow_to(if origins == 1 { 200_000 } else { 10_000 });
                l
            })
            .collect();
        let vkeys: Vec<String> = logs.iter().map(|l| l.signer.verifier_key()).collect();
        let vkey_refs: Vec<&str> = vkeys.iter().map(String::as_str).collect();
        let w = TestWitness::start(dir.path(), 0, &vkey_refs);
        let logs = Arc::new(logs);
        let threads = origins.min(8);
        let started = std::time::Instant::now();
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (logs, url) = (logs.clone(), w.url.clone());
                std::thread::spawn(move || {
                    let mut conn = KeepAlive::connect(&url);
                    let mine: Vec<usize> = (t..logs.len()).step_by(threads).collect();
                    let mut sizes = vec![0u64; logs.len()];
                    let mut done = 0u64;
                    let mut k = 0;
                    while started.elapsed().as_secs_f64() < SECONDS {
                        let i = mine[k % mine.len()];
                        k += 1;
                        let next = sizes[i] + 1 + (k as u64 % 7);
                        assert!(next <= logs[i].tree.size(), "grow the benchmark's trees");
                        let body = logs[i].request(sizes[i], next).to_body();
                        assert_eq!(conn.post(&body), 200);
                        sizes[i] = next;
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "witness: {origins} origin(s), {threads} client thread(s): {total} cosignatures in {secs:.1} s = {:.0} add-checkpoint/s",
            total as f64 / secs
        );
    }
}

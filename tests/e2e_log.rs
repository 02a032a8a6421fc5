//! End to end: the real server on loopback, a temporary RocksDB directory, signed envelopes, and
//! every answer verified with the project's own verifier.

mod common;

use common::{Publisher, TestServer, ORIGIN};
use glasslog::admission::dsse::Envelope;
use glasslog::admission::keys::KeyType;
use glasslog::client::decode_hashes;
use glasslog::entry::decode_leaf;
use glasslog::proto::{self, get_inclusion_proof_request::Leaf, tail_event::Event};
use glasslog::tlog::compact::CompactRange;
use glasslog::tlog::merkle;
use glasslog::tlog::proof;
use tokio_stream::StreamExt;
use tonic::Code;

fn new_server() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("data"), &["--origin", ORIGIN]);
    (dir, server)
}

#[tokio::test]
async fn submit_prove_and_read_back() {
    let (_dir, server) = new_server();
    assert_eq!(server.origin, ORIGIN);
    let client = server.client().await;
    let info = client
        .rpc()
        .get_log_info(proto::GetLogInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (info.origin.as_str(), info.verifier_key.as_str()),
        (ORIGIN, server.verifier_key.as_str())
    );

    let (ed, p256) = (
        Publisher::new(KeyType::Ed25519),
        Publisher::new(KeyType::P256),
    );
    let mut seen = Vec::new();
    for n in 0..12 {
        let publisher = if n % 2 == 0 { &ed } else { &p256 };
        let env = publisher.envelope(&format!(r#"{{"n":{n}}}"#));
        let s = client
            .submit(env.clone(), vec![publisher.pem.clone()])
            .await
            .unwrap();
        assert_eq!((s.index, s.duplicate), (n, false));
        let entry = decode_leaf(&s.leaf_data).unwrap();
        assert_eq!(entry.envelope, env, "the envelope is logged byte for byte");
        assert_eq!(entry.public_keys, vec![publisher.key.public_key().to_pem()]);
        seen.push(s);
    }
    // Integration times never decrease.
    let times: Vec<i64> = seen
        .iter()
        .map(|s| decode_leaf(&s.leaf_data).unwrap().integrated_time_ms)
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));

    let (latest, _) = client.checkpoint().await.unwrap();
    assert_eq!(latest.size, 12);
    // Every checkpoint a submitter saw is consistent with every later one, and every entry is
    // provable in every tree that contains it, by index and by leaf hash.
    for (i, a) in seen.iter().enumerate() {
        client
            .verify_consistency(&a.checkpoint, &latest)
            .await
            .unwrap();
        for b in &seen[i..] {
            client
                .verify_consistency(&a.checkpoint, &b.checkpoint)
                .await
                .unwrap();
            client
                .verify_inclusion(a.index, &a.leaf_data, &b.checkpoint)
                .await
                .unwrap();
        }
        let req = proto::GetInclusionProofRequest {
            leaf: Some(Leaf::LeafHash(merkle::leaf_hash(&a.leaf_data).0.to_vec())),
            tree_size: 0,
        };
        let p = client
            .rpc()
            .get_inclusion_proof(req)
            .await
            .unwrap()
            .into_inner();
        assert_eq!((p.index, p.tree_size), (a.index, 12));
        proof::verify_inclusion(
            a.index,
            12,
            &merkle::leaf_hash(&a.leaf_data),
            &decode_hashes(&p.hashes).unwrap(),
            &latest.root,
        )
        .unwrap();
    }

    // GetEntries returns exactly the acknowledged leaves; `end` is clamped to the size.
    let got = client
        .rpc()
        .get_entries(proto::GetEntriesRequest {
            start: 3,
            end: 1000,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.entries.len(), 9);
    for e in &got.entries {
        assert_eq!(e.leaf_data, seen[e.index as usize].leaf_data);
    }
}

#[tokio::test]
async fn duplicates_return_the_original_entry() {
    let (_dir, server) = new_server();
    let client = server.client().await;
    let publisher = Publisher::new(KeyType::Ed25519);
    let payload = r#"{"model":"org/m","v":1}"#;
    let first = client
        .submit(publisher.envelope(payload), vec![publisher.pem.clone()])
        .await
        .unwrap();
    client
        .submit(publisher.envelope("other"), vec![publisher.pem.clone()])
        .await
        .unwrap();

    // Same statement, same key: a fresh signature and a re-encoded envelope (URL-safe base64,
    // different field order and whitespace) are still the same submission.
    let env = Envelope::sign(
        glasslog::admission::declaration::PAYLOAD_TYPE,
        &common::statement(payload),
        &[&publisher.key],
    );
    let reencoded = format!(
        "{{ \"signatures\": [{{\"sig\": \"{}\"}}], \"payload\": \"{}\", \"payloadType\": \"{}\" }}",
        base64_url(&env.signatures[0].sig),
        base64_url(&env.payload),
        env.payload_type
    );
    let again = client
        .submit(reencoded.into_bytes(), vec![publisher.pem.clone()])
        .await
        .unwrap();
    assert!(again.duplicate);
    assert_eq!(again.index, first.index);
    assert_eq!(
        again.leaf_data, first.leaf_data,
        "the duplicate reply carries the original leaf"
    );
    assert_eq!(again.checkpoint.size, 2, "nothing was added");

    // The same statement signed by another key is a different submission.
    let other = Publisher::new(KeyType::P256);
    let s = client
        .submit(other.envelope(payload), vec![other.pem.clone()])
        .await
        .unwrap();
    assert_eq!((s.index, s.duplicate), (2, false));
}

fn base64_url(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[tokio::test]
async fn bad_requests_get_actionable_errors() {
    let (_dir, server) = new_server();
    let client = server.client().await;
    let publisher = Publisher::new(KeyType::Ed25519);
    for n in 0..3 {
        client
            .submit(
                publisher.envelope(&n.to_string()),
                vec![publisher.pem.clone()],
            )
            .await
            .unwrap();
    }
    let mut rpc = client.rpc();

    // Submit: unsigned, wrong key, garbage, too large.
    let other = Publisher::new(KeyType::Ed25519);
    let submit = |envelope: Vec<u8>, keys: Vec<String>| proto::SubmitRequest {
        envelope,
        public_keys: keys,
    };
    let wrong_key = rpc
        .submit(submit(publisher.envelope("x"), vec![other.pem.clone()]))
        .await
        .unwrap_err();
    assert_eq!(wrong_key.code(), Code::InvalidArgument);
    assert!(
        wrong_key.message().contains("signature"),
        "{}",
        wrong_key.message()
    );
    let garbage = rpc
        .submit(submit(b"{not json".to_vec(), vec![publisher.pem.clone()]))
        .await
        .unwrap_err();
    assert_eq!(garbage.code(), Code::InvalidArgument);
    let no_keys = rpc
        .submit(submit(publisher.envelope("y"), vec![]))
        .await
        .unwrap_err();
    assert_eq!(no_keys.code(), Code::InvalidArgument);
    let big = publisher.envelope(&"z".repeat(1 << 20));
    let too_big = rpc
        .submit(submit(big, vec![publisher.pem.clone()]))
        .await
        .unwrap_err();
    assert_eq!(too_big.code(), Code::ResourceExhausted);
    assert!(
        too_big.message().contains("1048576"),
        "the limit is named: {}",
        too_big.message()
    );

    // Reads beyond the log.
    let entries = |start, end| proto::GetEntriesRequest { start, end };
    assert_eq!(
        rpc.get_entries(entries(3, 5)).await.unwrap_err().code(),
        Code::OutOfRange
    );
    assert_eq!(
        rpc.get_entries(entries(2, 2)).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    let incl = |leaf, tree_size| proto::GetInclusionProofRequest {
        leaf: Some(leaf),
        tree_size,
    };
    let e = rpc
        .get_inclusion_proof(incl(Leaf::Index(3), 0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{}", e.message());
    let e = rpc
        .get_inclusion_proof(incl(Leaf::Index(0), 4))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{}", e.message());
    let e = rpc
        .get_inclusion_proof(incl(Leaf::Index(2), 2))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{}", e.message());
    let e = rpc
        .get_inclusion_proof(incl(Leaf::LeafHash(vec![7; 32]), 0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{}", e.message());
    let e = rpc
        .get_inclusion_proof(incl(Leaf::LeafHash(vec![7; 5]), 0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
    let e = rpc
        .get_inclusion_proof(proto::GetInclusionProofRequest {
            leaf: None,
            tree_size: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{}", e.message());
    let cons = |from_size, to_size| proto::GetConsistencyProofRequest { from_size, to_size };
    for (from, to, want) in [
        (0, 2, Code::InvalidArgument),
        (3, 2, Code::InvalidArgument),
        (1, 4, Code::OutOfRange),
    ] {
        let e = rpc.get_consistency_proof(cons(from, to)).await.unwrap_err();
        assert_eq!(e.code(), want, "from {from} to {to}: {}", e.message());
    }
    // The server is still healthy after all that.
    client
        .submit(publisher.envelope("after"), vec![publisher.pem.clone()])
        .await
        .unwrap();
}

#[tokio::test]
async fn tail_streams_history_then_live_entries_with_covering_checkpoints() {
    let (_dir, server) = new_server();
    let client = server.client().await;
    let publisher = Publisher::new(KeyType::Ed25519);
    let mut leaves = Vec::new();
    for n in 0..5 {
        leaves.push(
            client
                .submit(
                    publisher.envelope(&n.to_string()),
                    vec![publisher.pem.clone()],
                )
                .await
                .unwrap()
                .leaf_data,
        );
    }
    let mut stream = client
        .rpc()
        .tail(proto::TailRequest { start: 2 })
        .await
        .unwrap()
        .into_inner();
    let mut next = 2u64;
    let mut range_leaves: Vec<Vec<u8>> = leaves.clone();
    let mut checkpoints = 0;
    let submitter = {
        let url = server.url.clone();
        let verifier = server.verifier();
        let (key, pem) = (publisher.key.to_pkcs8_pem(), publisher.pem.clone());
        tokio::spawn(async move {
            let client = glasslog::client::LogClient::connect(&url, verifier)
                .await
                .unwrap();
            let key = glasslog::admission::keys::PrivateKey::from_pkcs8_pem(&key).unwrap();
            for n in 5..25 {
                let env = Envelope::sign(
                    glasslog::admission::declaration::PAYLOAD_TYPE,
                    &common::statement(&n.to_string()),
                    &[&key],
                )
                .to_json();
                client.submit(env, vec![pem.clone()]).await.unwrap();
            }
        })
    };
    while next < 25 {
        let event = stream.next().await.unwrap().unwrap().event.unwrap();
        match event {
            Event::Entry(e) => {
                assert_eq!(e.index, next, "entries arrive in order without gaps");
                if (e.index as usize) < range_leaves.len() {
                    assert_eq!(e.leaf_data, range_leaves[e.index as usize]);
                } else {
                    range_leaves.push(e.leaf_data);
                }
                next += 1;
            }
            Event::Checkpoint(c) => {
                let cp = client.verify_checkpoint(&c).unwrap();
                assert_eq!(cp.size, next, "the checkpoint covers exactly what was sent");
                let mut range = CompactRange::new();
                for l in &range_leaves[..next as usize] {
                    range.append(merkle::leaf_hash(l));
                }
                assert_eq!(
                    range.root(),
                    cp.root,
                    "streamed entries hash to the checkpoint root"
                );
                checkpoints += 1;
            }
            Event::Witnessed(_) => {
                panic!("a log without a witness policy sent a witnessed checkpoint")
            }
        }
    }
    submitter.await.unwrap();
    assert!(checkpoints >= 2);
}

#[tokio::test]
async fn tail_streams_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        &dir.path().join("data"),
        &["--origin", ORIGIN, "--max-tail-streams", "2"],
    );
    let client = server.client().await;
    let _a = client
        .rpc()
        .tail(proto::TailRequest { start: 0 })
        .await
        .unwrap();
    let _b = client
        .rpc()
        .tail(proto::TailRequest { start: 0 })
        .await
        .unwrap();
    let e = client
        .rpc()
        .tail(proto::TailRequest { start: 0 })
        .await
        .err()
        .unwrap();
    assert_eq!(e.code(), Code::ResourceExhausted, "{}", e.message());
    drop(_a);
    // The slot is released once the server notices the stream is gone.
    let mut ok = false;
    for _ in 0..50 {
        if client
            .rpc()
            .tail(proto::TailRequest { start: 0 })
            .await
            .is_ok()
        {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ok, "a closed stream frees its slot");
}

#[tokio::test]
async fn restart_keeps_the_log_and_refuses_a_new_origin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = TestServer::start(&data, &["--origin", ORIGIN]);
    let client = server.client().await;
    let publisher = Publisher::new(KeyType::Ed25519);
    let s = client
        .submit(publisher.envelope("kept"), vec![publisher.pem.clone()])
        .await
        .unwrap();
    let vkey = server.verifier_key.clone();
    assert!(server.terminate().success(), "SIGTERM is a clean stop");

    let err = TestServer::try_start(&data, &["--origin", "test.glasslog.dev/other"])
        .err()
        .unwrap();
    assert!(err.contains("origin"), "{err}");

    let server = TestServer::start(&data, &[]);
    assert_eq!(server.verifier_key, vkey, "the key survives restarts");
    let client = server.client().await;
    let (latest, note) = client.checkpoint().await.unwrap();
    assert_eq!(note, s.note, "no new checkpoint without new entries");
    client
        .verify_inclusion(s.index, &s.leaf_data, &latest)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_key_file_readable_by_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = TestServer::start(&data, &["--origin", ORIGIN]);
    let key = data.join("log.key");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    server.terminate();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let err = TestServer::try_start(&data, &[]).err().unwrap();
    assert!(err.contains("chmod 600"), "{err}");
}

/// A deleted log key next to an existing database is refused, and no new key is written: a new
/// key would start another log under the same data directory, pinned by nobody.
#[tokio::test]
async fn a_missing_key_next_to_a_database_is_refused_not_replaced() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = TestServer::start(&data, &["--origin", ORIGIN]);
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
        0o700,
        "the data directory is private"
    );
    server.terminate();
    std::fs::remove_file(data.join("log.key")).unwrap();
    let err = TestServer::try_start(&data, &[]).err().unwrap();
    assert!(err.contains("restore the key file"), "{err}");
    assert!(!data.join("log.key").exists(), "no orphan key was written");
}

#[tokio::test]
async fn a_tail_consumer_that_falls_behind_catches_up_from_storage() {
    let (_dir, server) = new_server();
    let client = server.client().await;
    let publisher = Publisher::new(KeyType::Ed25519);
    // Open the stream but read nothing while 300 batches are committed: far more than the
    // server buffers for a stream, so it must drop behind the broadcast and read storage.
    // (The stream gets a connection of its own: an unread stream holds HTTP/2 flow-control
    // credit of its connection.)
    let tail_client = server.client().await;
    let mut stream = tail_client
        .rpc()
        .tail(proto::TailRequest { start: 0 })
        .await
        .unwrap()
        .into_inner();
    let mut leaves = Vec::new();
    for n in 0..300 {
        leaves.push(
            client
                .submit(
                    publisher.envelope(&n.to_string()),
                    vec![publisher.pem.clone()],
                )
                .await
                .unwrap()
                .leaf_data,
        );
    }
    let mut next = 0u64;
    let mut range = CompactRange::new();
    while next < 300 {
        match stream.next().await.unwrap().unwrap().event.unwrap() {
            Event::Entry(e) => {
                assert_eq!(e.index, next, "no gap and no repeat after falling behind");
                assert_eq!(e.leaf_data, leaves[next as usize]);
                range.append(merkle::leaf_hash(&e.leaf_data));
                next += 1;
            }
            Event::Checkpoint(c) => {
                let cp = client.verify_checkpoint(&c).unwrap();
                assert_eq!((cp.size, cp.root), (range.size(), range.root()));
            }
            Event::Witnessed(_) => {
                panic!("a log without a witness policy sent a witnessed checkpoint")
            }
        }
    }
}

/// `--rocksdb-cache-mib` bounds RocksDB's memory: the memtables are charged to the cache, so
/// with a small budget RocksDB flushes them to table files long before the write-ahead log's
/// own bound (64 MiB) would; the log stays whole and provable. A budget under 8 MiB is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rocksdb_memory_budget_flushes_memtables_early() {
    let dir = tempfile::tempdir().unwrap();
    let err = TestServer::try_start(&dir.path().join("refused"), &["--rocksdb-cache-mib", "4"])
        .err()
        .unwrap();
    assert!(
        err.contains("rocksdb_cache_mib must be at least 8"),
        "{err}"
    );

    let data = dir.path().join("data");
    let server = TestServer::start(&data, &["--origin", ORIGIN, "--rocksdb-cache-mib", "8"]);
    let tables = || {
        std::fs::read_dir(data.join("db"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension() == Some("sst".as_ref()))
            .count()
    };
    assert_eq!(tables(), 0, "a new store has no table files");
    let bench = tokio::task::block_in_place(|| common::log::bench(&server, 8_000));
    assert!(
        bench.status.success(),
        "{}",
        String::from_utf8_lossy(&bench.stderr)
    );
    // 8,000 entries are some 16 MB of writes: past the 4 MiB of memtables the budget allows.
    assert!(tables() > 0, "memtables were flushed while the server ran");
    let client = server.client().await;
    let publisher = Publisher::new(KeyType::Ed25519);
    let s = client
        .submit(publisher.envelope("after"), vec![publisher.pem.clone()])
        .await
        .unwrap();
    assert_eq!(s.index, 8_000);
    let (latest, _) = client.checkpoint().await.unwrap();
    client
        .verify_inclusion(s.index, &s.leaf_data, &latest)
        .await
        .unwrap();
}

/// `glasslog bench --mode proofs` runs against a real log, every proof verified (a proof that
/// fails fails the run), and reports the server's CPU time per rpc, which docs/performance.md's
/// proof figures use.
#[tokio::test(flavor = "multi_thread")]
async fn bench_proofs_verifies_every_proof_and_reports_cpu_per_rpc() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("data"), &[]);
    let checkpoints = dir.path().join("checkpoints");
    let run = |args: &[&str]| {
        std::process::Command::new(common::glasslog_bin())
            .args(["bench", "--json", "--server", &server.url, "--log-key"])
            .arg(&server.verifier_key)
            .args(args)
            .output()
            .unwrap()
    };
    let cps = checkpoints.to_str().unwrap();
    let fill =
        tokio::task::block_in_place(|| run(&["-n", "300", "-c", "16", "--checkpoints-out", cps]));
    assert!(
        fill.status.success(),
        "{}",
        String::from_utf8_lossy(&fill.stderr)
    );
    let pid = server.child.id().to_string();
    let proofs = tokio::task::block_in_place(|| {
        run(&[
            "--mode",
            "proofs",
            "-n",
            "2000",
            "-c",
            "8",
            "--checkpoints",
            cps,
            "--server-pid",
            &pid,
        ])
    });
    assert!(
        proofs.status.success(),
        "{}",
        String::from_utf8_lossy(&proofs.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&proofs.stdout).unwrap();
    assert_eq!(report["mode"], "proofs");
    assert_eq!(report["count"], 2000);
    assert_eq!(report["log_size"], 300);
    assert!(report["rpcs_per_s"].as_f64().unwrap() > 0.0, "{report}");
    // The server did the work of 2,000 proofs: some CPU time per rpc, however fast the machine.
    assert!(
        report["server_cpu_us_per_rpc"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(
        report["client_cpu_us_per_rpc"].as_f64().unwrap() > 0.0,
        "{report}"
    );
}

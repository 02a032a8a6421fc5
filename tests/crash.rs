//! Crash safety: the server is killed with SIGKILL while clients submit, then restarted. Every
//! acknowledged entry must be present with identical leaf data at its index, and every checkpoint
//! any client saw must be consistent with the checkpoint after restart.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Publisher, TestServer, ORIGIN};
use glasslog::admission::keys::KeyType;
use glasslog::client::LogClient;
use glasslog::proto;
use glasslog::tlog::checkpoint::Checkpoint;

/// Kill/restart rounds; each round kills the server at a different moment.
const ROUNDS: u64 = 12;
const SUBMITTERS: usize = 8;

#[derive(Clone, Default)]
struct Seen {
    /// (index, leaf data) of every acknowledged submission.
    acked: Vec<(u64, Vec<u8>)>,
    /// Every verified checkpoint a client was given.
    checkpoints: Vec<Checkpoint>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_submissions_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let publisher = Arc::new(Publisher::new(KeyType::Ed25519));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut vkey = None;

    for round in 0..ROUNDS {
        let mut server = TestServer::start(&data, &["--origin", ORIGIN]);
        assert_eq!(
            *vkey.get_or_insert_with(|| server.verifier_key.clone()),
            server.verifier_key
        );
        // A copy: the lock is not held across the checks' awaits.
        let so_far = seen.lock().unwrap().clone();
        check_everything_seen_survived(&server, &so_far).await;

        let tasks = submit_until_gone(&server, &publisher, &seen, round);
        // Kill at a different moment each round: 20 ms to ~400 ms into the load.
        tokio::time::sleep(Duration::from_millis(20 + (round * 7919) % 380)).await;
        server.kill();
        for t in tasks {
            t.await.unwrap();
        }
    }
    let server = TestServer::start(&data, &[]);
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert!(
        seen.acked.len() > ROUNDS as usize,
        "the test acknowledged too little to mean anything"
    );
    check_everything_seen_survived(&server, &seen).await;
}

/// Starts [`SUBMITTERS`] clients that submit to `server` until it is gone, recording in `seen`
/// every acknowledged entry and checkpoint. `round` makes their statements new.
fn submit_until_gone(
    server: &TestServer,
    publisher: &Arc<Publisher>,
    seen: &Arc<Mutex<Seen>>,
    round: u64,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..SUBMITTERS)
        .map(|w| {
            let (url, verifier, publisher, seen) = (
                server.url.clone(),
                server.verifier(),
                publisher.clone(),
                seen.clone(),
            );
            tokio::spawn(async move {
                let Ok(client) = LogClient::connect(&url, verifier).await else {
                    return;
                };
                for n in 0.. {
                    let env =
                        publisher.envelope(&format!(r#"{{"round":{round},"worker":{w},"n":{n}}}"#));
                    match client.submit(env, vec![publisher.pem.clone()]).await {
                        Ok(s) => {
                            let mut seen = seen.lock().unwrap();
                            seen.acked.push((s.index, s.leaf_data));
                            seen.checkpoints.push(s.checkpoint);
                        }
                        Err(glasslog::client::ClientError::Rpc(_)) => return, // the server is gone
                        Err(e) => panic!("a reply did not verify: {e}"),
                    }
                }
            })
        })
        .collect()
}

/// The same, with the write-ahead log in a recycled file: RocksDB reuses WAL files that
/// flushes made obsolete (`recycle_log_file_num`), so the file the server is killed on still
/// holds an earlier life's records past the point where the new ones end. Recovery must stop
/// where the new records end, neither losing an acknowledged entry nor replaying an old one.
/// A small memory budget makes RocksDB flush, and so switch WAL files, every few thousand
/// entries; `glasslog audit` then recomputes the whole tree after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_on_a_recycled_wal_file_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let flags = ["--origin", ORIGIN, "--rocksdb-cache-mib", "8"];
    let mut server = TestServer::start(&data, &flags);
    let fill = tokio::task::block_in_place(|| common::log::bench(&server, 12_000));
    assert!(
        fill.status.success(),
        "{}",
        String::from_utf8_lossy(&fill.stderr)
    );
    let rocksdb_log = std::fs::read_to_string(data.join("db").join("LOG")).unwrap();
    assert!(
        rocksdb_log.contains("from recycle list"),
        "the test needs the server to write to a recycled WAL file; RocksDB's LOG shows none"
    );

    let publisher = Arc::new(Publisher::new(KeyType::Ed25519));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let tasks = submit_until_gone(&server, &publisher, &seen, 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill();
    for t in tasks {
        t.await.unwrap();
    }

    let server = TestServer::start(&data, &flags);
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert!(
        !seen.acked.is_empty(),
        "nothing was acknowledged before the kill"
    );
    check_everything_seen_survived(&server, &seen).await;
    let state = dir.path().join("audit");
    let audit = tokio::task::block_in_place(|| {
        std::process::Command::new(common::glasslog_bin())
            .args(["audit", "--json", "--server", &server.url, "--log-key"])
            .arg(&server.verifier_key)
            .arg("--state")
            .arg(state.join("audit.state"))
            .arg("--state-dir")
            .arg(&state)
            .args(["--extra-predicate-type", common::TEST_PREDICATE])
            .output()
            .unwrap()
    });
    assert!(
        audit.status.success(),
        "audit of the log after the restart: {}{}",
        String::from_utf8_lossy(&audit.stdout),
        String::from_utf8_lossy(&audit.stderr)
    );
}

async fn check_everything_seen_survived(server: &TestServer, seen: &Seen) {
    let client = server.client().await;
    let (latest, _) = client.checkpoint().await.unwrap();
    let mut rpc = client.rpc();
    for (index, leaf) in &seen.acked {
        assert!(
            *index < latest.size,
            "acknowledged entry {index} is beyond the log's size {}",
            latest.size
        );
        let got = rpc
            .get_entries(proto::GetEntriesRequest {
                start: *index,
                end: index + 1,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            &got.entries[0].leaf_data, leaf,
            "entry {index} changed across a crash"
        );
    }
    let mut sizes: Vec<&Checkpoint> = seen.checkpoints.iter().collect();
    sizes.sort_by_key(|c| c.size);
    sizes.dedup(); // exact duplicates only: two roots for one size must both be checked
    for old in sizes {
        client
            .verify_consistency(old, &latest)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "checkpoint of size {} is not consistent with {} after restart: {e}",
                    old.size, latest.size
                )
            });
    }
}

/// SIGTERM under load: every submission is either acknowledged (and then present after restart)
/// or refused; the server exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_submissions_finishes_or_refuses_each_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let publisher = Arc::new(Publisher::new(KeyType::Ed25519));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut server = TestServer::start(&data, &["--origin", ORIGIN]);
    let mut tasks = Vec::new();
    for w in 0..SUBMITTERS {
        let (url, verifier, publisher, seen) = (
            server.url.clone(),
            server.verifier(),
            publisher.clone(),
            seen.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let client = LogClient::connect(&url, verifier).await.unwrap();
            for n in 0.. {
                let env = publisher.envelope(&format!(r#"{{"term":{w},"n":{n}}}"#));
                match client.submit(env, vec![publisher.pem.clone()]).await {
                    Ok(s) => seen.lock().unwrap().acked.push((s.index, s.leaf_data)),
                    Err(glasslog::client::ClientError::Rpc(_)) => return,
                    Err(e) => panic!("a reply did not verify: {e}"),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = tokio::task::spawn_blocking(move || {
        let status = server.terminate();
        (server, status)
    })
    .await
    .unwrap();
    assert!(status.1.success(), "clean exit on SIGTERM: {:?}", status.1);
    for t in tasks {
        t.await.unwrap();
    }
    drop(status.0);
    let server = TestServer::start(&data, &[]);
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert!(!seen.acked.is_empty());
    check_everything_seen_survived(&server, &seen).await;
}

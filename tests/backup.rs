//! `glasslog backup` and `glasslog restore --backup` against the real server: a backup taken
//! while writers submit restores into a log that serves the same checkpoint and goes on; a
//! tampered backup is refused naming what failed and leaves nothing; an existing target is
//! refused; with no server running (or one killed, its socket left behind) the command takes
//! the backup itself.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{glasslog_bin, Publisher, TestServer, ORIGIN};
use glasslog::admission::keys::KeyType;
use glasslog::backup::{read_manifest, Manifest};
use glasslog::client::LogClient;
use glasslog::server::storage::schema;

/// Writers submitting during the backup.
const WRITERS: usize = 4;
/// Entries submitted before the backup starts, at least.
const BEFORE: u64 = 40;

fn glasslog(args: &[&str]) -> Output {
    Command::new(glasslog_bin())
        .args(args)
        .env("GLASSLOG_LOG", "warn")
        .output()
        .expect("run glasslog")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn backup(data: &Path, to: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "backup",
        "--data-dir",
        data.to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
    ];
    args.extend(extra);
    glasslog(&args)
}

fn restore(backup: &Path, data: &Path, vkey: &str) -> Output {
    glasslog(&[
        "restore",
        "--backup",
        backup.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
        "--log-key",
        vkey,
    ])
}

/// Submits `n` entries, one at a time.
async fn submit(client: &LogClient, publisher: &Publisher, tag: &str, n: u64) {
    for i in 0..n {
        client
            .submit(
                publisher.envelope(&format!("{tag} {i}")),
                vec![publisher.pem.clone()],
            )
            .await
            .unwrap();
    }
}

/// Copies the backup directory `from` (a manifest and a flat database directory) to `to`.
fn copy_backup(from: &Path, to: &Path) {
    std::fs::create_dir(to).unwrap();
    std::fs::copy(from.join("backup.json"), to.join("backup.json")).unwrap();
    std::fs::create_dir(to.join("db")).unwrap();
    for f in std::fs::read_dir(from.join("db")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), to.join("db").join(f.file_name())).unwrap();
    }
}

/// Opens a backup's database with RocksDB directly, to damage it.
fn rocks(backup: &Path) -> rocksdb::DB {
    rocksdb::DB::open_cf(
        &rocksdb::Options::default(),
        backup.join("db"),
        schema::COLUMN_FAMILIES,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_writers_submit_restores_and_continues_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = TestServer::start(&data, &["--origin", ORIGIN]);
    let publisher = Arc::new(Publisher::new(KeyType::Ed25519));
    let (stop, acked) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (client, publisher, stop, acked) = (
            server.client().await,
            publisher.clone(),
            stop.clone(),
            acked.clone(),
        );
        writers.push(tokio::spawn(async move {
            // Bounded: the backup is taken long before, and the loop ends when told.
            for n in 0..2_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                client
                    .submit(
                        publisher.envelope(&format!("w{w} {n}")),
                        vec![publisher.pem.clone()],
                    )
                    .await
                    .unwrap();
                acked.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    while acked.load(Ordering::SeqCst) < BEFORE {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out_dir = dir.path().join("backup");
    let (d, o) = (data.clone(), out_dir.clone());
    let out = tokio::task::spawn_blocking(move || backup(&d, &o, &[]))
        .await
        .unwrap();
    let during = acked.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("taken by the running server"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("NOT in the backup"), "{}", text(&out));
    assert!(
        !out_dir.join("log.key").exists(),
        "the secret key is not copied by default"
    );
    let manifest: Manifest = read_manifest(&out_dir).unwrap();
    assert!(manifest.tree_size >= BEFORE, "{manifest:?}");
    let after = acked.load(Ordering::SeqCst);
    assert!(
        during > 0 && after >= during,
        "writers ran during the backup"
    );

    // The backup's checkpoint is one the log signed: the live log is consistent with it.
    let client = server.client().await;
    let (live, _) = client.checkpoint().await.unwrap();
    let verifier = server.verifier();
    let backed_up = verifier.verify(&manifest.checkpoint).unwrap();
    client.verify_consistency(&backed_up, &live).await.unwrap();
    assert!(live.size >= backed_up.size);
    server.terminate();
    assert!(
        !data.join("admin.sock").exists(),
        "a clean shutdown removes the admin socket"
    );

    let restored = dir.path().join("restored");
    let out = restore(&out_dir, &restored, &server.verifier_key);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("next: copy the log's key file"),
        "{}",
        text(&out)
    );
    std::fs::copy(data.join("log.key"), restored.join("log.key")).unwrap();
    let again = TestServer::start(&restored, &[]);
    assert_eq!(again.verifier_key, server.verifier_key);
    let client = again.client().await;
    let (served, note) = client.checkpoint().await.unwrap();
    assert_eq!(
        served, backed_up,
        "the restored log serves the backup's checkpoint"
    );
    assert_eq!(note, manifest.checkpoint);
    let next = client
        .submit(
            publisher.envelope("after the restore"),
            vec![publisher.pem.clone()],
        )
        .await
        .unwrap();
    assert_eq!(next.index, backed_up.size, "the restored log goes on");
    client
        .verify_consistency(&backed_up, &next.checkpoint)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_tampered_backup_is_refused_naming_what_failed_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = TestServer::start(&data, &["--origin", ORIGIN]);
    let publisher = Publisher::new(KeyType::Ed25519);
    submit(&server.client().await, &publisher, "entry", 20).await;
    let good = dir.path().join("good");
    let out = backup(&data, &good, &[]);
    assert!(out.status.success(), "{}", text(&out));
    server.terminate();
    let vkey = server.verifier_key.clone();

    // A byte of entry 5 flipped.
    let flipped = dir.path().join("flipped");
    copy_backup(&good, &flipped);
    {
        let db = rocks(&flipped);
        let cf = db.cf_handle(schema::ENTRIES).unwrap();
        let key = schema::u64_key(5);
        let mut leaf = db.get_cf(cf, key).unwrap().unwrap();
        let last = leaf.len() - 1;
        leaf[last] ^= 1;
        db.put_cf(cf, key, leaf).unwrap();
    }
    // Stored hash 7 deleted.
    let holed = dir.path().join("holed");
    copy_backup(&good, &holed);
    {
        let db = rocks(&holed);
        db.delete_cf(db.cf_handle(schema::HASHES).unwrap(), schema::u64_key(7))
            .unwrap();
    }
    for (damaged, named) in [(&flipped, "entry 5"), (&holed, "stored hash 7")] {
        let target = dir.path().join("target");
        let out = restore(damaged, &target, &vkey);
        assert!(!out.status.success(), "{} restored", damaged.display());
        assert!(text(&out).contains("does not verify"), "{}", text(&out));
        assert!(text(&out).contains(named), "{}", text(&out));
        assert_eq!(
            std::fs::read_dir(&target).unwrap().count(),
            0,
            "a refused restore leaves nothing behind"
        );
    }
    // Another log's key.
    let other = glasslog::tlog::note::LogSigner::generate(
        &glasslog::tlog::checkpoint::Origin::new(ORIGIN).unwrap(),
    );
    let out = restore(&good, &dir.path().join("other"), &other.verifier_key());
    assert!(!out.status.success());
    assert!(text(&out).contains("not the --log-key"), "{}", text(&out));
    // The undamaged copy restores.
    let out = restore(&good, &dir.path().join("target"), &vkey);
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test]
async fn a_backup_to_an_existing_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _server = TestServer::start(&data, &["--origin", ORIGIN]);
    let out_dir = dir.path().join("exists");
    std::fs::create_dir(&out_dir).unwrap();
    std::fs::write(out_dir.join("mine"), b"untouched").unwrap();
    let out = backup(&data, &out_dir, &[]);
    assert!(!out.status.success());
    assert!(text(&out).contains("exists"), "{}", text(&out));
    assert_eq!(std::fs::read(out_dir.join("mine")).unwrap(), b"untouched");
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 1);
}

/// Killed with SIGKILL, the server leaves its socket behind: nobody answers on it, and the
/// command takes the backup itself. With `--with-key` the restore brings the key along.
#[tokio::test]
async fn with_no_server_running_backup_takes_it_itself() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = TestServer::start(&data, &["--origin", ORIGIN]);
    let publisher = Publisher::new(KeyType::Ed25519);
    let client = server.client().await;
    submit(&client, &publisher, "offline", 10).await;
    let (live, _) = client.checkpoint().await.unwrap();
    server.kill();
    assert!(
        data.join("admin.sock").exists(),
        "SIGKILL leaves the socket"
    );

    let out_dir: PathBuf = dir.path().join("backup");
    let out = backup(&data, &out_dir, &["--with-key"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("no server was running"),
        "{}",
        text(&out)
    );
    assert_eq!(read_manifest(&out_dir).unwrap().tree_size, live.size);

    let restored = dir.path().join("restored");
    let out = restore(&out_dir, &restored, &server.verifier_key);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("copied the log key"), "{}", text(&out));
    use std::os::unix::fs::PermissionsExt;
    for (path, mode) in [(restored.clone(), 0o700), (restored.join("log.key"), 0o600)] {
        let found = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(found, mode, "{}", path.display());
    }
    let again = TestServer::start(&restored, &[]);
    let (served, _) = again.client().await.checkpoint().await.unwrap();
    assert_eq!(served, live);
}

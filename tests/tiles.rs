//! The log as C2SP tlog-tiles: the HTTP listener (`serve --http-listen`), publication to a
//! directory (`serve --publish file:///…`) and `glasslog restore`, against the real server.
//!
//! Every tiled copy is checked by an independent reader, `tests/interop/tiles.go` (Go's
//! `golang.org/x/mod/sumdb/tlog` and `note`): the checkpoint's signature, the root recomputed from
//! tiles, every entry of every bundle against the level-0 tiles, and inclusion and consistency
//! proofs built from tiles alone, at sizes around tile boundaries.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::http::get;
use common::log::{fill_to, root_of, submit_one};
use common::tiles::go_verify_tiles;
use common::{Publisher, TestServer};
use glasslog::admission::keys::KeyType;

fn http_server(dir: &Path) -> (TestServer, String) {
    let server = TestServer::start(dir, &["--http-listen", "127.0.0.1:0"]);
    let http = server.http_url.clone().expect("an HTTP listener");
    (server, http)
}

#[test]
fn the_tiles_listener_serves_the_log_at_tile_boundaries_as_go_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let (server, http) = http_server(dir.path());
    let publisher = Publisher::new(KeyType::Ed25519);

    // The empty log: a checkpoint of size 0 and no tile at all.
    let cp = get(&http, "/checkpoint");
    assert_eq!(cp.status, 200);
    assert!(String::from_utf8_lossy(&cp.body).contains("\n0\n"));
    assert_eq!(get(&http, "/tile/0/000.p/1").status, 404);

    let mut older: Vec<(u64, String)> = Vec::new();
    let check = |size: u64, note: &str, older: &mut Vec<(u64, String)>| {
        let served = get(&http, "/checkpoint");
        assert_eq!(String::from_utf8_lossy(&served.body), note, "at {size}");
        let seen = go_verify_tiles(&http, &server.verifier_key, older);
        assert_eq!(seen["size"].as_u64(), Some(size), "{seen}");
        assert_eq!(seen["entries_checked"].as_u64(), Some(size), "{seen}");
        older.push((size, root_of(note)));
    };
    for n in 1..=3 {
        let (size, note) = submit_one(&server, &publisher, n);
        check(size, &note, &mut older);
    }
    fill_to(&server, 254);
    for n in 255..=257 {
        let (size, note) = submit_one(&server, &publisher, n);
        assert_eq!(size, n);
        check(size, &note, &mut older);
    }
    fill_to(&server, 65_534);
    for n in 65_535..=65_537 {
        let (size, note) = submit_one(&server, &publisher, n);
        assert_eq!(size, n);
        check(size, &note, &mut older);
    }
    let mut extra = 1 + u64::from(std::process::id() % 3000);
    // The checks below need a partial tile at the end: the size after the next submission
    // (65,538 + extra) must not fall on a tile boundary.
    if (65_538 + extra) % 256 == 0 {
        extra += 1;
    }
    fill_to(&server, 65_537 + extra);
    let (size, note) = submit_one(&server, &publisher, 0);
    check(size, &note, &mut older);

    // Headers, encodings and what is not served.
    let cp = get(&http, "/checkpoint");
    assert_eq!(cp.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(cp.header("cache-control"), Some("no-cache, max-age=0"));
    let full = get(&http, "/tile/0/000");
    assert_eq!(full.status, 200);
    assert_eq!(full.body.len(), 8192);
    assert_eq!(
        full.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(
        full.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let bundle = get(&http, "/tile/entries/000");
    assert_eq!(bundle.header("content-encoding"), Some("gzip"));
    let leaves = glasslog::tlog::tiles::decode_bundle(&bundle.decoded(), 256)
        .unwrap()
        .into_iter()
        .map(glasslog::tlog::merkle::leaf_hash)
        .flat_map(|h| h.0)
        .collect::<Vec<u8>>();
    assert_eq!(leaves, full.body, "bundle 0 hashes to level-0 tile 0");
    // An earlier checkpoint's partial tile is served (size 2 was signed), as the spec requires.
    assert_eq!(get(&http, "/tile/0/000.p/2").status, 200);
    let full_tiles = size / 256;
    let partial = size % 256;
    let next_full = glasslog::tlog::tiles::TileId::new(
        glasslog::tlog::tiles::TileKind::Hashes { level: 0 },
        full_tiles,
        256,
    )
    .unwrap();
    for path in [
        format!("/{}", next_full.path()),
        format!("/{}", next_full.path()).replace("tile/0", "tile/entries"),
        format!("/{}.p/{}", next_full.path(), partial + 1),
        "/tile/3/000.p/1".to_string(),
        "/tile/0/x000/000".to_string(),
        "/tile/0/000.p/256".to_string(),
        "/tile/0/000.p/0".to_string(),
        "/tile/8/0/000".to_string(),
        "/tile/entries/../checkpoint".to_string(),
    ] {
        assert_eq!(get(&http, &path).status, 404, "{path}");
    }
    assert_eq!(
        get(&http, &format!("/{}.p/{partial}", next_full.path())).status,
        200
    );
}

/// Waits until the directory's checkpoint is `note`.
fn wait_published(dir: &Path, note: &str) {
    let started = Instant::now();
    loop {
        if std::fs::read_to_string(dir.join("checkpoint"))
            .ok()
            .as_deref()
            == Some(note)
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the directory did not reach the head within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_log_published_to_a_directory_verifies_and_restores_into_a_log_that_continues() {
    let data = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let site = out.path().join("site");
    let url = format!("file://{}", site.display());
    let mut server = TestServer::start(data.path(), &["--publish", &url]);
    let publisher = Publisher::new(KeyType::Ed25519);
    let mut older = Vec::new();
    for target in [1u64, 300, 5_000] {
        fill_to(&server, target - 1);
        let (size, note) = submit_one(&server, &publisher, target);
        wait_published(&site, &note);
        let seen = go_verify_tiles(site.to_str().unwrap(), &server.verifier_key, &older);
        assert_eq!(seen["size"].as_u64(), Some(size), "{seen}");
        older.push((size, root_of(&note)));
    }
    let head = server
        .verifier()
        .verify(&common::log::current_note(&server))
        .unwrap();
    assert_eq!(server.terminate().code(), Some(0));

    // Restore into a new data directory, with the log key from "the backup".
    let restored_dir = out.path().join("restored");
    let run = std::process::Command::new(common::glasslog_bin())
        .args([
            "restore",
            "--from",
            &url,
            "--log-key",
            &server.verifier_key,
            "--data-dir",
        ])
        .arg(&restored_dir)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let said = String::from_utf8_lossy(&run.stdout);
    assert!(said.contains("restored 5000 entries"), "{said}");
    assert!(
        said.contains("log.key"),
        "restore says to bring the key file: {said}"
    );
    // A second restore into the same directory refuses to touch the database.
    let again = std::process::Command::new(common::glasslog_bin())
        .args([
            "restore",
            "--from",
            &url,
            "--log-key",
            &server.verifier_key,
            "--data-dir",
        ])
        .arg(&restored_dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never touches an existing one"));

    let key = data.path().join("log.key");
    std::fs::copy(&key, restored_dir.join("log.key")).unwrap();
    std::fs::set_permissions(
        restored_dir.join("log.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let restored = TestServer::start(&restored_dir, &["--publish", &url]);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let original = glasslog::client::LogClient::connect(&restored.url, restored.verifier())
            .await
            .unwrap();
        let (cp, _) = original.checkpoint().await.unwrap();
        assert_eq!(cp, head, "same size and root after restore");
        // Dedup survived: resubmitting an old entry answers its original index.
        let again = original
            .submit(publisher.envelope("entry 300"), vec![publisher.pem.clone()])
            .await
            .unwrap();
        assert_eq!(again.index, 299);
        // The restored log continues, and keeps publishing to the same directory.
        let s = original
            .submit(
                publisher.envelope("after restore"),
                vec![publisher.pem.clone()],
            )
            .await
            .unwrap();
        assert_eq!(s.index, 5_000);
        let (_, note) = original.checkpoint().await.unwrap();
        wait_published(&site, &note);
    });
    let seen = go_verify_tiles(site.to_str().unwrap(), &restored.verifier_key, &older);
    assert_eq!(seen["size"].as_u64(), Some(5_001), "{seen}");
}

#[test]
fn restore_refuses_a_tampered_bundle_and_leaves_no_database() {
    let data = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let site = out.path().join("site");
    let url = format!("file://{}", site.display());
    let server = TestServer::start(data.path(), &["--publish", &url]);
    let publisher = Publisher::new(KeyType::Ed25519);
    fill_to(&server, 299);
    let (_, note) = submit_one(&server, &publisher, 1);
    wait_published(&site, &note);
    drop(server);
    // Flip one byte inside the first entry of bundle 0.
    let bundle = site.join("tile/entries/000");
    let mut bytes = std::fs::read(&bundle).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&bundle, bytes).unwrap();
    let target = out.path().join("restored");
    let run = std::process::Command::new(common::glasslog_bin())
        .args(["restore", "--from", &url, "--log-key"])
        .arg(common_vkey(data.path()))
        .arg("--data-dir")
        .arg(&target)
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("entry") || err.contains("root"), "{err}");
    assert!(
        !target.join("db").exists(),
        "a failed restore leaves no database"
    );
}

/// The verifier key of the log in `data_dir`, as `serve` printed it (read back from the key file).
fn common_vkey(data_dir: &Path) -> String {
    let skey = std::fs::read_to_string(data_dir.join("log.key")).unwrap();
    glasslog::tlog::note::LogSigner::from_skey(skey.trim_end())
        .unwrap()
        .verifier_key()
}

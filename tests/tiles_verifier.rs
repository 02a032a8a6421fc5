//! The independent tlog-tiles verifier (tests/interop/tiles.go, through tests/common/tiles.rs)
//! checked before glasslog publishes tiles: it accepts logs Go's own tlog code writes, from a
//! directory and from SeaweedFS over S3's anonymous HTTP reads, and refuses them damaged.
//!
//! Needs `go` with Debian's golang-golang-x-mod-dev and SeaweedFS's `weed`; `.ci/dev test`
//! installs them. Without them these tests fail (never skip).

mod common;

use std::path::Path;

use common::seaweed::SeaweedFs;
use common::tiles::{
    go_generate_tiles, go_refuse_tiles, go_tiles_selftest, go_verify_tiles, go_verify_tiles_with,
};
use serde_json::Value;

#[test]
fn tiles_go_accepts_logs_go_writes_and_refuses_them_damaged() {
    let summary = go_tiles_selftest();
    eprintln!("tiles.go -selftest: {summary}");
    // 9 sizes from a directory and over HTTP, and one with -allow-ahead.
    assert_eq!(summary["accepted"], 19, "{summary}");
    assert!(summary["refused"].as_u64().unwrap() >= 45, "{summary}");
}

/// A generated log: its directory, verifier key, size, root and older trees.
struct Generated {
    _dir: tempfile::TempDir,
    vkey: String,
    size: u64,
    root: String,
    older: Vec<(u64, String)>,
}

fn generate(size: u64) -> Generated {
    let dir = tempfile::tempdir().unwrap();
    let g = go_generate_tiles(dir.path(), size);
    let older = g["older"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["size"].as_u64().unwrap(),
                t["root"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    Generated {
        vkey: g["vkey"].as_str().unwrap().to_string(),
        size: g["size"].as_u64().unwrap(),
        root: g["root"].as_str().unwrap().to_string(),
        older,
        _dir: dir,
    }
}

fn assert_summary(s: &Value, g: &Generated) {
    assert_eq!(s["size"], g.size, "{s}");
    assert_eq!(s["root"], g.root.as_str(), "{s}");
    assert_eq!(s["entries_checked"], g.size, "{s}");
    assert_eq!(s["consistency_proofs"], g.older.len(), "{s}");
    assert!(s["inclusion_proofs"].as_u64().unwrap() >= 6, "{s}");
}

/// The Content-Type tlog-tiles requires for a file of the log.
fn content_type(key: &str) -> &'static str {
    if key.ends_with("checkpoint") {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

/// Uploads every file under `dir` to `bucket`, under `prefix`.
fn upload(fs: &SeaweedFs, bucket: &str, prefix: &str, dir: &Path) -> usize {
    let mut count = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(dir).unwrap().to_str().unwrap();
            let key = format!("{prefix}/{rel}");
            let body = std::fs::read(&path).unwrap();
            let a = fs.put(bucket, &key, &body, &[("Content-Type", content_type(&key))]);
            assert_eq!(a.status, 200, "PUT {key}: {}", a.text());
            count += 1;
        }
    }
    count
}

#[test]
fn tiles_go_reads_a_directory_and_seaweedfs_and_refuses_damage_there() {
    // Past 65536, so that level 0 and level 1 have full tiles and level 2 a partial one.
    let g = generate(70_001);
    let dir = g._dir.path();
    assert_summary(
        &go_verify_tiles(dir.to_str().unwrap(), &g.vkey, &g.older),
        &g,
    );

    let fs = SeaweedFs::start();
    fs.create_bucket("tiles");
    let files = upload(&fs, "tiles", "log", dir);
    eprintln!("uploaded {files} files");
    let base = fs.public_url("tiles", "log");
    assert_summary(&go_verify_tiles(&base, &g.vkey, &g.older), &g);

    // Each damage below is undone before the next, by putting back the file.
    let restore = |rel: &str| {
        let body = std::fs::read(dir.join(rel)).unwrap();
        let key = format!("log/{rel}");
        assert_eq!(
            fs.put(
                "tiles",
                &key,
                &body,
                &[("Content-Type", content_type(&key))]
            )
            .status,
            200
        );
    };
    let damage = |rel: &str, edit: &dyn Fn(&mut Vec<u8>)| {
        let mut body = std::fs::read(dir.join(rel)).unwrap();
        edit(&mut body);
        let key = format!("log/{rel}");
        assert_eq!(
            fs.put(
                "tiles",
                &key,
                &body,
                &[("Content-Type", content_type(&key))]
            )
            .status,
            200
        );
    };
    let refuse = |what: &str, want: &str| {
        let reason = go_refuse_tiles(&base, &g.vkey, &g.older, &[]);
        assert!(
            reason.contains(want),
            "{what}: refused, but not for {want:?}: {reason}"
        );
        eprintln!("{what}: {reason}");
    };

    damage("tile/0/100", &|b| b[77] ^= 0x40);
    refuse("a bit of a level-0 tile flipped", "but tile/0/100 holds");
    restore("tile/0/100");

    damage("tile/1/000", &|b| b[8000] ^= 0x01);
    refuse("a bit of the level-1 tile flipped", "tile/0/250 hashes to");
    restore("tile/1/000");

    damage("tile/entries/273.p/113", &|b| {
        let last = b.len() - 1;
        b[last] ^= 0x01
    });
    refuse(
        "a bit of the last entry flipped",
        "(bundle tile/entries/273.p/113, entry 112)",
    );
    restore("tile/entries/273.p/113");

    assert_eq!(fs.delete("tiles", "log/tile/entries/012").status, 204);
    refuse("a bundle deleted", "tile/entries/012 does not exist");
    restore("tile/entries/012");

    let cp = std::fs::read(dir.join("checkpoint")).unwrap();
    let json = ("Content-Type", "application/json");
    assert_eq!(fs.put("tiles", "log/checkpoint", &cp, &[json]).status, 200);
    refuse(
        "the checkpoint served as application/json",
        "Content-Type \"application/json\"",
    );
    restore("checkpoint");

    // A tile ahead of the checkpoint: refused, unless allowed.
    let mut wider = std::fs::read(dir.join("tile/0/273.p/113")).unwrap();
    wider.extend_from_slice(&[7; 32]);
    assert_eq!(
        fs.put(
            "tiles",
            "log/tile/0/273.p/114",
            &wider,
            &[("Content-Type", "application/octet-stream")]
        )
        .status,
        200
    );
    refuse(
        "a partial tile beyond the checkpoint",
        "lies beyond the checkpoint",
    );
    assert_summary(
        &go_verify_tiles_with(&base, &g.vkey, &g.older, &["-allow-ahead"]),
        &g,
    );
    assert_eq!(fs.delete("tiles", "log/tile/0/273.p/114").status, 204);

    assert_summary(&go_verify_tiles(&base, &g.vkey, &g.older), &g);
}

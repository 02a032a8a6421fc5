//! End to end: declarations are admitted or refused by the real server, and Search finds exactly
//! what a brute-force scan of the log finds, before and after `glasslog reindex`.

mod common;

use std::collections::BTreeSet;

use common::statements::{in_toto as statement, sha};
use common::{Publisher, TestServer, ORIGIN};
use glasslog::admission::declaration::{self, Declaration};
use glasslog::admission::dsse::Envelope;
use glasslog::admission::keys::{KeyType, PublicKey};
use glasslog::admission::logged_declaration;
use glasslog::entry::decode_leaf;
use glasslog::proto::{self, search_request::Query};
use serde_json::{json, Value};
use tonic::Code;

/// A manifest of files with the given contents, and its root digest.
fn manifest(files: &[(&str, &[u8])]) -> (Value, [u8; 32]) {
    let resources: Vec<Value> = files
        .iter()
        .map(|(name, data)| json!({"name": name, "algorithm": "sha256", "digest": hex::encode(sha(data))}))
        .collect();
    let mut concat = Vec::new();
    for (_, data) in files {
        concat.extend(sha(data));
    }
    let m = json!({
        "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": false,
            "ignore_paths": [".git", ".gitattributes", ".github", ".gitignore"]},
        "resources": resources,
    });
    (m, sha(&concat))
}

fn dataset(name: &str, files: &[(&str, &[u8])]) -> (Value, [u8; 32]) {
    let (m, root) = manifest(files);
    let p = json!({
        "name": name, "version": "1", "license": "CC-BY-4.0", "releaseTime": "2026-01-02T03:04:05Z",
        "sources": [{"category": "publicDataset", "name": "a corpus"}],
        "processing": "deduplicated", "personalData": {"containsPersonalData": "no", "handling": "none present"},
        "manifest": m,
    });
    (statement(declaration::TRAINING_DATA, name, &root, p), root)
}

fn model(name: &str, version: &str, files: &[(&str, &[u8])], extra: Value) -> (Value, [u8; 32]) {
    let (m, root) = manifest(files);
    let mut p = json!({
        "name": name, "version": version, "license": "Apache-2.0", "releaseTime": "2026-01-02T03:04:05Z",
        "manifest": m, "dataDisclosure": "withheld",
    });
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    (statement(declaration::MODEL_RELEASE, name, &root, p), root)
}

async fn submit(
    client: &glasslog::client::LogClient,
    p: &Publisher,
    st: &Value,
) -> Result<u64, tonic::Status> {
    let env = Envelope::sign(
        declaration::PAYLOAD_TYPE,
        &serde_json::to_vec(st).unwrap(),
        &[&p.key],
    )
    .to_json();
    match client.submit(env, vec![p.pem.clone()]).await {
        Ok(s) => Ok(s.index),
        Err(glasslog::client::ClientError::Rpc(status)) => Err(*status),
        Err(e) => panic!("reply did not verify: {e}"),
    }
}

async fn search_all(
    client: &glasslog::client::LogClient,
    query: Query,
    page_size: u32,
) -> Vec<u64> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let req = proto::SearchRequest {
            query: Some(query.clone()),
            page_token: token,
            page_size,
        };
        let resp = client.rpc().search(req).await.unwrap().into_inner();
        let cp = client
            .verify_checkpoint(resp.checkpoint.as_ref().unwrap())
            .unwrap();
        for e in &resp.entries {
            assert!(
                e.index < cp.size,
                "a result beyond the checkpoint the search saw"
            );
        }
        out.extend(resp.entries.iter().map(|e| e.index));
        if resp.next_page_token.is_empty() {
            return out;
        }
        token = resp.next_page_token;
    }
}

/// Every query an entry can be found by, computed by scanning the whole log.
async fn brute_force(client: &glasslog::client::LogClient) -> Vec<(Query, Vec<u64>)> {
    let (latest, _) = client.checkpoint().await.unwrap();
    let resp = client
        .rpc()
        .get_entries(proto::GetEntriesRequest {
            start: 0,
            end: latest.size,
        })
        .await
        .unwrap();
    let mut expected: std::collections::BTreeMap<String, (Query, BTreeSet<u64>)> =
        Default::default();
    let mut add = |q: Query, i: u64| {
        expected
            .entry(format!("{q:?}"))
            .or_insert((q, BTreeSet::new()))
            .1
            .insert(i)
    };
    for e in resp.into_inner().entries {
        for pem in decode_leaf(&e.leaf_data).unwrap().public_keys {
            add(
                Query::PublisherKeyId(PublicKey::from_pem(&pem).unwrap().key_id().0.to_vec()),
                e.index,
            );
        }
        let Some(d): Option<Declaration> = logged_declaration(&e.leaf_data).unwrap() else {
            continue;
        };
        add(Query::Name(d.name().as_str().into()), e.index);
        add(
            Query::NameVersion(format!("{}@{}", d.name().as_str(), d.version())),
            e.index,
        );
        add(Query::SubjectDigest(d.subject_digest().0.to_vec()), e.index);
        for f in d.file_digests() {
            add(Query::FileDigest(f.0.to_vec()), e.index);
        }
        for t in d.trained_on() {
            add(Query::TrainedOnDigest(t.0.to_vec()), e.index);
        }
    }
    expected
        .into_values()
        .map(|(q, s)| (q, s.into_iter().collect()))
        .collect()
}

async fn assert_search_matches_scan(client: &glasslog::client::LogClient) {
    let expected = brute_force(client).await;
    assert!(expected.len() > 10);
    for (query, indexes) in expected {
        assert_eq!(
            search_all(client, query.clone(), 0).await,
            indexes,
            "{query:?}"
        );
        assert_eq!(
            search_all(client, query.clone(), 1).await,
            indexes,
            "{query:?}, one per page"
        );
    }
}

#[tokio::test]
async fn declarations_are_admitted_checked_and_searchable() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = TestServer::start(&data, &["--origin", ORIGIN]);
    let client = server.client().await;
    let publisher = Publisher::new(KeyType::Ed25519);

    let (d1, d1_root) = dataset("org/data", &[("a.txt", b"alpha"), ("b.txt", b"beta")]);
    assert_eq!(submit(&client, &publisher, &d1).await.unwrap(), 0);
    let training = json!({"trainingData": [{"name": "org/data", "digest": {"sha256": hex::encode(d1_root)},
        "role": "pretraining", "logIndex": 0}], "dataDisclosure": "full"});
    let (m1, m1_root) = model("org/model", "1.0", &[("w.bin", b"alpha")], training.clone());
    assert_eq!(submit(&client, &publisher, &m1).await.unwrap(), 1);
    let mut extra = training.clone();
    extra["supersedes"] = json!({"logIndex": 1, "digest": {"sha256": hex::encode(m1_root)}});
    extra["trainingData"][0]
        .as_object_mut()
        .unwrap()
        .remove("logIndex");
    let (m2, _) = model("org/model", "2.0", &[("w.bin", b"gamma")], extra);
    assert_eq!(submit(&client, &publisher, &m2).await.unwrap(), 2);

    // References to the log must point at the right kind, name and digest.
    let refused = [
        (
            "trainingData naming a model",
            json!({"trainingData": [{"name": "org/model", "digest": {"sha256": hex::encode(m1_root)}, "role": "evaluation", "logIndex": 1}], "dataDisclosure": "full"}),
            "trainingData",
        ),
        (
            "supersedes naming a dataset",
            json!({"supersedes": {"logIndex": 0, "digest": {"sha256": hex::encode(d1_root)}}}),
            "supersedes",
        ),
        (
            "supersedes with a wrong digest",
            json!({"supersedes": {"logIndex": 1, "digest": {"sha256": hex::encode(d1_root)}}}),
            "supersedes",
        ),
        (
            "a log index beyond the log",
            json!({"supersedes": {"logIndex": 99, "digest": {"sha256": hex::encode(m1_root)}}}),
            "99",
        ),
    ];
    for (what, extra, needle) in refused {
        let (st, _) = model("org/model", "3.0", &[("w.bin", b"delta")], extra);
        let e = submit(&client, &publisher, &st).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {}", e.message());
        assert!(e.message().contains(needle), "{what}: {}", e.message());
    }
    // supersedes of another name is refused too.
    let (other, _) = model(
        "org/other",
        "1",
        &[("w.bin", b"x")],
        json!({"supersedes": {"logIndex": 1, "digest": {"sha256": hex::encode(m1_root)}}}),
    );
    assert_eq!(
        submit(&client, &publisher, &other)
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    // A manifest that does not hash to the subject, an unknown predicate type, a non-statement.
    let mut bad_root = m1.clone();
    bad_root["subject"][0]["digest"]["sha256"] = json!(hex::encode([7u8; 32]));
    let e = submit(&client, &publisher, &bad_root).await.unwrap_err();
    assert!(e.message().contains("manifest"), "{}", e.message());
    let mut unknown = m1.clone();
    unknown["predicateType"] = json!("https://example.org/other/v1");
    assert_eq!(
        submit(&client, &publisher, &unknown)
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    let raw = Envelope::sign("text/plain", b"hello", &[&publisher.key]).to_json();
    let e = client
        .submit(raw, vec![publisher.pem.clone()])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("payload"), "{e}");

    // A model release with a detached manifest: found by name and subject digest, never by the
    // digests of its files, which the log does not see.
    let (big, big_root) = model("org/big", "1", &[("w.bin", b"omega")], json!({}));
    let mut big = big;
    let manifest = big["predicate"]
        .as_object_mut()
        .unwrap()
        .remove("manifest")
        .unwrap();
    big["predicate"]["detachedManifest"] = json!({
        "digest": {"sha256": hex::encode(sha(manifest.to_string().as_bytes()))},
        "serialization": manifest["serialization"],
    });
    let big_index = submit(&client, &publisher, &big).await.unwrap();
    assert_eq!(
        search_all(&client, Query::SubjectDigest(big_root.to_vec()), 0).await,
        vec![big_index]
    );

    // An extra-type statement from another key, then everything Search finds equals a scan.
    let other_publisher = Publisher::new(KeyType::P256);
    client
        .submit(
            other_publisher.envelope("not a declaration"),
            vec![other_publisher.pem.clone()],
        )
        .await
        .unwrap();
    assert_search_matches_scan(&client).await;
    assert_eq!(
        search_all(&client, Query::Name("org/model".into()), 0).await,
        vec![1, 2]
    );
    assert_eq!(
        search_all(&client, Query::FileDigest(sha(b"alpha").to_vec()), 0).await,
        vec![0, 1]
    );
    assert_eq!(
        search_all(&client, Query::TrainedOnDigest(d1_root.to_vec()), 0).await,
        vec![1, 2]
    );
    assert!(search_all(&client, Query::Name("org/nothing".into()), 0)
        .await
        .is_empty());
    for bad in [
        proto::SearchRequest {
            query: None,
            page_token: String::new(),
            page_size: 0,
        },
        proto::SearchRequest {
            query: Some(Query::FileDigest(vec![1; 3])),
            page_token: String::new(),
            page_size: 0,
        },
        proto::SearchRequest {
            query: Some(Query::Name("org/model".into())),
            page_token: "garbage!".into(),
            page_size: 0,
        },
        proto::SearchRequest {
            query: Some(Query::Name("org/model".into())),
            page_token: String::new(),
            page_size: 5000,
        },
    ] {
        assert_eq!(
            client.rpc().search(bad).await.unwrap_err().code(),
            Code::InvalidArgument
        );
    }

    // The index rebuilt from the log answers the same.
    assert!(server.terminate().success());
    let out = std::process::Command::new(common::glasslog_bin())
        .args(["reindex", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = TestServer::start(&data, &[]);
    let client = server.client().await;
    assert_search_matches_scan(&client).await;
}

/// Leaf data of `envelope` signed by `p`, if the log logged it now.
fn leaf_len(p: &Publisher, envelope: &[u8]) -> usize {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    glasslog::entry::leaf_len(envelope.len(), std::slice::from_ref(&p.pem), now_ms)
}

#[tokio::test]
async fn a_leaf_of_exactly_the_tiles_limit_is_logged_and_one_byte_more_is_not() {
    use glasslog::entry::MAX_LEAF_BYTES;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("data"), &["--origin", ORIGIN]);
    let client = server.client().await;
    let publisher = Publisher::new(KeyType::Ed25519);

    // A model release padded by its description to just under the limit (base64 moves in steps
    // of 4 bytes), then by whitespace after the envelope's JSON, which the log keeps as sent.
    let sign = |description_len: usize| {
        let extra = json!({"description": "d".repeat(description_len)});
        let (st, _) = model("org/huge", "1", &[("w.bin", b"w")], extra);
        let payload = serde_json::to_vec(&st).unwrap();
        Envelope::sign(declaration::PAYLOAD_TYPE, &payload, &[&publisher.key]).to_json()
    };
    let room = MAX_LEAF_BYTES - leaf_len(&publisher, &sign(1));
    let envelope = sign(1 + room * 3 / 4 - 8);
    let short = MAX_LEAF_BYTES - leaf_len(&publisher, &envelope);
    assert!((1..32).contains(&short), "{short}");
    let padded = |n: usize| [envelope.clone(), vec![b' '; n]].concat();
    let (at, over) = (padded(short), padded(short + 1));
    assert_eq!(leaf_len(&publisher, &at), MAX_LEAF_BYTES);

    let refused = client
        .rpc()
        .submit(proto::SubmitRequest {
            envelope: over,
            public_keys: vec![publisher.pem.clone()],
        })
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Code::ResourceExhausted,
        "{}",
        refused.message()
    );
    for want in [
        "65536 bytes",
        "at most 65535 bytes",
        "tlog-tiles",
        "detachedManifest",
    ] {
        assert!(
            refused.message().contains(want),
            "{want:?}: {}",
            refused.message()
        );
    }
    // Nothing was logged, so the same statement is not a duplicate of it.
    let logged = client
        .submit(at, vec![publisher.pem.clone()])
        .await
        .unwrap();
    assert_eq!((logged.index, logged.duplicate), (0, false));
    assert_eq!(logged.leaf_data.len(), MAX_LEAF_BYTES);
    let (cp, _) = client.checkpoint().await.unwrap();
    assert_eq!(cp.size, 1);
}

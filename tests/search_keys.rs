//! End to end: search keys that cannot collide (issue #11).
//!
//! The attack: a declaration whose version is `"2.0\u0000"`. Under the search index of schema
//! version 1 (text fields ended by a 0x00 byte) its `name@version` keys started with a victim's
//! `name@2.0` prefix, and every Search for the victim's release answered INTERNAL. Here: such
//! submissions and queries are refused with INVALID_ARGUMENT and leave the log as it was; a
//! store of schema version 1 (written by this file's own encoder of the old layout, which the
//! production code no longer has) is refused by the server until `glasslog reindex` rewrites
//! it, and an interrupted reindex is refused until a new run finishes.
//!
//! Not here: the codec's own properties (unit tests in `src/server/storage/schema.rs`) or a
//! reindex killed mid-write (`src/server/rebuild.rs`, by injected commit failures).

mod common;

use std::process::Command;

use common::statements::{days_ago, in_toto, manifest, merged};
use common::{Publisher, TestServer, ORIGIN};
use glasslog::admission::declaration::{MODEL_RELEASE, PAYLOAD_TYPE, TRAINING_DATA};
use glasslog::admission::dsse::Envelope;
use glasslog::admission::keys::KeyType;
use glasslog::client::{ClientError, LogClient};
use glasslog::proto::{self, search_request::Query, SubmitRequest};
use glasslog::server::storage::{schema, Store};
use serde_json::{json, Value};
use tonic::Code;

const VICTIM: &str = "org/victim";

fn model(name: &str, version: &str, content: &str, extra: Value) -> Value {
    let (m, root) = manifest(content);
    let p = json!({
        "name": name, "version": version, "license": "Apache-2.0",
        "releaseTime": days_ago(1.0), "manifest": m, "dataDisclosure": "withheld",
    });
    in_toto(MODEL_RELEASE, name, &root, merged(p, extra))
}

fn dataset(name: &str, source: &str) -> Value {
    let (m, root) = manifest(name);
    let p = json!({
        "name": name, "version": "1", "license": "CC-BY-4.0", "releaseTime": days_ago(1.0),
        "sources": [{"category": "publicDataset", "name": source}],
        "processing": "deduplicated",
        "personalData": {"containsPersonalData": "no", "handling": "none present"},
        "manifest": m,
    });
    in_toto(TRAINING_DATA, name, &root, p)
}

fn request(p: &Publisher, st: &Value) -> SubmitRequest {
    SubmitRequest {
        envelope: Envelope::sign(PAYLOAD_TYPE, &serde_json::to_vec(st).unwrap(), &[&p.key])
            .to_json(),
        public_keys: vec![p.pem.clone()],
    }
}

async fn submit(client: &LogClient, p: &Publisher, st: &Value) -> Result<u64, tonic::Status> {
    let req = request(p, st);
    match client.submit(req.envelope, req.public_keys).await {
        Ok(s) => Ok(s.index),
        Err(ClientError::Rpc(status)) => Err(*status),
        Err(e) => panic!("reply did not verify: {e}"),
    }
}

async fn search(client: &LogClient, query: Query) -> Result<Vec<u64>, tonic::Status> {
    let req = proto::SearchRequest {
        query: Some(query),
        page_token: String::new(),
        page_size: 0,
    };
    let resp = client.rpc().search(req).await?.into_inner();
    assert!(resp.next_page_token.is_empty());
    Ok(resp.entries.iter().map(|e| e.index).collect())
}

fn name_version(version: &str) -> Query {
    Query::NameVersion(format!("{VICTIM}@{version}"))
}

async fn log_size(client: &LogClient) -> u64 {
    client.checkpoint().await.unwrap().0.size
}

#[tokio::test]
async fn control_characters_are_refused_and_the_victims_search_keeps_working() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("data"), &["--origin", ORIGIN]);
    let client = server.client().await;
    let (victim, attacker) = (
        Publisher::new(KeyType::Ed25519),
        Publisher::new(KeyType::P256),
    );
    assert_eq!(
        submit(
            &client,
            &victim,
            &model(VICTIM, "2.0", "weights", json!({}))
        )
        .await
        .unwrap(),
        0
    );

    // Each submission names the field and the code point, and logs nothing.
    let attempts = [
        (
            model(VICTIM, "2.0\u{0}", "w1", json!({})),
            "$.predicate.version: contains U+0000 at character 3",
        ),
        (
            model(VICTIM, "2.0\u{0}\u{0}", "w2", json!({})),
            "$.predicate.version: contains U+0000 at character 3",
        ),
        (
            model(VICTIM, "\u{0}2.0", "w3", json!({})),
            "$.predicate.version: contains U+0000 at character 0",
        ),
        (
            model(VICTIM, "2.0\u{1b}[2K", "w4", json!({})),
            "$.predicate.version: contains U+001B",
        ),
        (
            model(VICTIM, "2.0\u{85}", "w5", json!({})),
            "$.predicate.version: contains U+0085",
        ),
        (
            model(VICTIM, "2.1", "w6", json!({"supplier": "Org\u{7}"})),
            "$.predicate.supplier: contains U+0007",
        ),
        (
            dataset("org/data", "a corpus\u{0}"),
            "$.predicate.sources[0].name: contains U+0000",
        ),
        (model("org/victim\u{0}", "2.0", "w7", json!({})), "(U+0000)"),
    ];
    for (st, message) in &attempts {
        let status = submit(&client, &attacker, st).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(message), "{status:?}");
    }
    assert_eq!(log_size(&client).await, 1, "nothing refused was logged");

    // Queries with a control character are refused, naming the field.
    for (query, message) in [
        (name_version("2.0\u{0}"), "name_version contains U+0000"),
        (name_version("\u{0}"), "name_version contains U+0000"),
        (name_version("2.0\u{9f}"), "name_version contains U+009F"),
        (
            Query::Name(format!("{VICTIM}\u{0}")),
            "name contains U+0000",
        ),
    ] {
        let status = search(&client, query).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().starts_with(message), "{status:?}");
    }

    // The victim's release is found as before the attempts.
    assert_eq!(search(&client, name_version("2.0")).await.unwrap(), [0]);
    assert_eq!(
        search(&client, Query::Name(VICTIM.into())).await.unwrap(),
        [0]
    );
    assert_eq!(
        search(&client, name_version("2.0\u{a0}")).await.unwrap(),
        Vec::<u64>::new()
    );
}

/// A search prefix in the layout of schema version 1 (text ended by 0x00, digests as is), for
/// this test only: production code no longer writes it.
fn v1_prefix(tag: u8, texts: &[&str]) -> Vec<u8> {
    let mut key = vec![tag];
    for t in texts {
        key.extend_from_slice(t.as_bytes());
        key.push(0);
    }
    key
}

fn glasslog_reindex(data: &std::path::Path) -> std::process::Output {
    Command::new(common::glasslog_bin())
        .args(["reindex", "--data-dir"])
        .arg(data)
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_schema_1_store_is_refused_until_reindex_migrates_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (victim, attacker) = (
        Publisher::new(KeyType::Ed25519),
        Publisher::new(KeyType::P256),
    );

    // A log holding what a server of schema version 1 admitted: the victim's 2.0, then the
    // attacker's "2.0\0" (logged here past today's admission, by the fault-injection build).
    std::env::set_var("GLASSLOG_FAULT", "admission-on-request");
    let mut server = TestServer::start(&data, &["--origin", ORIGIN]);
    std::env::remove_var("GLASSLOG_FAULT");
    let client = server.client().await;
    let versions = [(&victim, "2.0"), (&attacker, "2.0\u{0}"), (&victim, "3.0")];
    for (i, (p, version)) in versions.iter().enumerate() {
        let st = model(VICTIM, version, &format!("w{i}"), json!({}));
        let mut req = tonic::Request::new(request(p, &st));
        // `UNCHECKED_METADATA` of src/server/faults.rs: logged as the old admission would have.
        req.metadata_mut()
            .insert("glasslog-fault", "unchecked".parse().unwrap());
        let index = client.rpc().submit(req).await.unwrap().into_inner().index;
        assert_eq!(index, i as u64);
    }
    assert!(server.terminate().success());

    // Its search index as schema version 1 wrote it.
    {
        let store = Store::open(&data.join("db")).unwrap();
        let mut b = store.batch();
        b.clear_search();
        for (index, (p, version)) in versions.iter().enumerate() {
            let index = index as u64;
            b.put_search(&v1_prefix(1, &[VICTIM]), index);
            b.put_search(&v1_prefix(2, &[VICTIM, version]), index);
            let key_id = p.key.public_key().key_id();
            b.put_search(&[&[5u8][..], &key_id.0[..]].concat(), index);
        }
        b.put_meta(schema::META_SCHEMA_VERSION, &schema::u64_key(1));
        store.commit(b).unwrap();
    }
    let refused = TestServer::try_start(&data, &[]).err().expect("refused");
    assert!(
        refused.contains("schema version 1") && refused.contains("glasslog reindex"),
        "{refused}"
    );

    // As a reindex killed after its first batch leaves it: refused, saying to run it again.
    {
        let store = Store::open_for_reindex(&data.join("db")).unwrap();
        let mut b = store.batch();
        b.clear_search();
        b.put_meta(schema::META_SEARCH_REBUILDING, b"");
        store.commit(b).unwrap();
    }
    let refused = TestServer::try_start(&data, &[]).err().expect("refused");
    assert!(
        refused.contains("did not finish") && refused.contains("glasslog reindex"),
        "{refused}"
    );

    let out = glasslog_reindex(&data);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("entry 1 is indexed under its publisher keys only")
            && stderr.contains("contains U+0000"),
        "{stderr}"
    );

    let server = TestServer::start(&data, &[]);
    let client = server.client().await;
    assert_eq!(search(&client, name_version("2.0")).await.unwrap(), [0]);
    assert_eq!(search(&client, name_version("3.0")).await.unwrap(), [2]);
    assert_eq!(
        search(&client, Query::Name(VICTIM.into())).await.unwrap(),
        [0, 2]
    );
    let attacker_key = attacker.key.public_key().key_id().0.to_vec();
    assert_eq!(
        search(&client, Query::PublisherKeyId(attacker_key))
            .await
            .unwrap(),
        [1]
    );
    // A reference to the entry today's rules refuse is a broken reference, as audit and monitor
    // read it: INVALID_ARGUMENT, not INTERNAL.
    let base = json!({"baseModels": [{"name": VICTIM, "relation": "finetune", "logIndex": 1,
        "digest": {"sha256": hex::encode(manifest("w1").1)}}]});
    let status = submit(&client, &victim, &model("org/derived", "1", "d", base))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // A second reindex of a migrated store is a no-op in effect.
    drop(server);
    assert!(glasslog_reindex(&data).status.success());
    let server = TestServer::start(&data, &[]);
    let client = server.client().await;
    assert_eq!(search(&client, name_version("2.0")).await.unwrap(), [0]);
}

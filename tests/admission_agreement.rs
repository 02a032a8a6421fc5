//! The differential test of admission: the server (at Submit), `glasslog audit` and `glasslog
//! monitor` must judge every entry of a log alike.
//!
//! A corpus of a few hundred generated entries, valid and subtly invalid (every admission rule
//! and every reference rule broken at least once), is submitted in order to the real server on
//! loopback. Its verdict on each entry is the answer of an ordinary Submit; an entry it refuses
//! is then logged anyway, through the fault-injection build's unchecked admission
//! (`GLASSLOG_FAULT=admission-on-request` and the request's `glasslog-fault: unchecked`), so the
//! log holds the whole corpus in order. Then `glasslog audit` and `glasslog monitor --once` read
//! the log, and the entries each reports as inadmissible must be exactly the ones the server
//! refused.
//!
//! References only name entries the server admitted (or out-of-range indexes): the server
//! reads its store as admitted entries, which a log written with the fault is not.
#![cfg(feature = "fault-injection")]

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::statements::{days_ago, in_toto, manifest, merged, sha};
use common::{statement as test_statement, TestServer, ORIGIN, TEST_PREDICATE};
use glasslog::admission::declaration::{MODEL_RELEASE, PAYLOAD_TYPE, TRAINING_DATA};
use glasslog::admission::dsse::Envelope;
use glasslog::admission::keys::{KeyType, PrivateKey};
use glasslog::proto::transparency_log_client::TransparencyLogClient;
use glasslog::proto::SubmitRequest;
use serde_json::{json, Value};
use tonic::transport::Channel;

/// Entries in the corpus.
const ENTRIES: usize = 300;

/// A small deterministic generator (xorshift64*), so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A declaration the server admitted: a reference target.
#[derive(Clone)]
struct Logged {
    index: u64,
    model: bool,
    name: String,
    digest: [u8; 32],
}

fn dataset(name: &str, content: &str, extra: Value) -> (Value, [u8; 32]) {
    let (m, root) = manifest(content);
    let p = json!({
        "name": name, "version": "1", "license": "CC-BY-4.0", "releaseTime": days_ago(1.0),
        "sources": [{"category": "publicDataset", "name": "a corpus"}],
        "processing": "deduplicated", "personalData": {"containsPersonalData": "no", "handling": "none present"},
        "manifest": m,
    });
    (in_toto(TRAINING_DATA, name, &root, merged(p, extra)), root)
}

fn model(name: &str, version: &str, content: &str, extra: Value) -> (Value, [u8; 32]) {
    let (m, root) = manifest(content);
    let p = json!({
        "name": name, "version": version, "license": "Apache-2.0",
        "releaseTime": days_ago(1.0), "manifest": m, "dataDisclosure": "withheld",
    });
    (in_toto(MODEL_RELEASE, name, &root, merged(p, extra)), root)
}

/// `st` (a model release) with its manifest detached: named by the SHA-256 of its JSON text.
fn detached(mut st: Value) -> Value {
    let p = st["predicate"].as_object_mut().unwrap();
    let m = p.remove("manifest").unwrap();
    p.insert(
        "detachedManifest".into(),
        json!({"digest": {"sha256": hex::encode(sha(m.to_string().as_bytes()))},
            "serialization": m["serialization"]}),
    );
    st
}

fn trained_on(name: &str, digest: &[u8; 32], index: u64) -> Value {
    json!({"trainingData": [{"name": name, "digest": {"sha256": hex::encode(digest)},
        "role": "pretraining", "logIndex": index}], "dataDisclosure": "partial"})
}

fn based_on(name: &str, digest: &[u8; 32], index: u64) -> Value {
    json!({"baseModels": [{"name": name, "digest": {"sha256": hex::encode(digest)}, "relation": "finetune", "logIndex": index}]})
}

fn supersedes(index: u64, digest: &[u8; 32]) -> Value {
    json!({"supersedes": {"logIndex": index, "digest": {"sha256": hex::encode(digest)}}})
}

/// One generated submission: envelope, keys, what it is meant to test, and (if admitted) the
/// reference target it becomes.
struct Case {
    envelope: Vec<u8>,
    keys: Vec<String>,
    what: &'static str,
    target: Option<Logged>,
}

/// The corpus generator: publishers, the admitted declarations so far, a counter for unique
/// names and contents.
struct Corpus {
    rng: Rng,
    alice: PrivateKey,
    bob: PrivateKey,
    logged: Vec<Logged>,
    /// The index of an admitted statement of the extra type, once there is one.
    other: Option<u64>,
    n: usize,
}

impl Corpus {
    fn signed(&self, st: &Value, signers: &[&PrivateKey]) -> Vec<u8> {
        Envelope::sign(PAYLOAD_TYPE, &serde_json::to_vec(st).unwrap(), signers).to_json()
    }

    fn case(&self, what: &'static str, st: &Value, target: Option<Logged>) -> Case {
        Case {
            envelope: self.signed(st, &[&self.alice]),
            keys: vec![self.alice.public_key().to_pem()],
            what,
            target,
        }
    }

    fn pick(&mut self, model: bool) -> Option<Logged> {
        let of_kind: Vec<&Logged> = self.logged.iter().filter(|l| l.model == model).collect();
        (!of_kind.is_empty()).then(|| of_kind[self.rng.below(of_kind.len())].clone())
    }

    /// The next case, given `size` entries in the log.
    fn next(&mut self, size: u64) -> Case {
        self.n += 1;
        let n = self.n;
        let (dname, mname) = (format!("org/data{n}"), format!("org/model{n}"));
        let target = |model: bool, name: &str, digest: [u8; 32]| Logged {
            index: size,
            model,
            name: name.to_string(),
            digest,
        };
        // The first entries give later ones something to reference.
        let choice = if n <= 4 { n % 3 } else { self.rng.below(29) };
        match choice {
            0 => {
                let (st, root) = dataset(&dname, &format!("d{n}"), json!({}));
                self.case("dataset", &st, Some(target(false, &dname, root)))
            }
            1 => {
                let (st, root) = model(&mname, "1", &format!("m{n}"), json!({}));
                self.case("model", &st, Some(target(true, &mname, root)))
            }
            2 => Case {
                envelope: self.signed(
                    &serde_json::from_slice(&test_statement(&format!("t{n}"))).unwrap(),
                    &[&self.alice],
                ),
                keys: vec![self.alice.public_key().to_pem()],
                what: "extra statement",
                target: None,
            },
            3 => match self.pick(false) {
                Some(d) => {
                    let (st, root) = model(
                        &mname,
                        "1",
                        &format!("m{n}"),
                        trained_on(&d.name, &d.digest, d.index),
                    );
                    self.case(
                        "model trained on a logged dataset",
                        &st,
                        Some(target(true, &mname, root)),
                    )
                }
                None => self.next_fallback(size),
            },
            4 => match self.pick(true) {
                Some(m) => {
                    let (st, root) = model(
                        &mname,
                        "1",
                        &format!("m{n}"),
                        based_on(&m.name, &m.digest, m.index),
                    );
                    self.case(
                        "model based on a logged model",
                        &st,
                        Some(target(true, &mname, root)),
                    )
                }
                None => self.next_fallback(size),
            },
            5 => match self.pick(true) {
                Some(m) => {
                    let (st, root) = model(
                        &m.name,
                        &format!("v{n}"),
                        &format!("m{n}"),
                        supersedes(m.index, &m.digest),
                    );
                    self.case(
                        "a new release superseding",
                        &st,
                        Some(target(true, &m.name, root)),
                    )
                }
                None => self.next_fallback(size),
            },
            6 => {
                let (st, _) = model(&mname, "1", &format!("m{n}"), json!({}));
                Case {
                    envelope: self.signed(&st, &[&self.bob]),
                    keys: vec![self.alice.public_key().to_pem()],
                    what: "signed by another key than the one given",
                    target: None,
                }
            }
            7 => {
                let (st, _) = model(&mname, "1", &format!("m{n}"), json!({}));
                // In the order the log writes them, so that the refusal names the same key index.
                let mut keys = [self.alice.public_key(), self.bob.public_key()];
                keys.sort_by_key(|k| k.key_id());
                Case {
                    envelope: self.signed(&st, &[&self.alice]),
                    keys: keys.iter().map(|k| k.to_pem()).collect(),
                    what: "a key that signed nothing",
                    target: None,
                }
            }
            8 => {
                let (st, root) = model(&mname, "1", &format!("m{n}"), json!({}));
                Case {
                    envelope: self.signed(&st, &[&self.alice, &self.bob]),
                    keys: vec![
                        self.bob.public_key().to_pem(),
                        self.alice.public_key().to_pem(),
                    ],
                    what: "model signed by two publishers",
                    target: Some(target(true, &mname, root)),
                }
            }
            9 => {
                let (st, _) = model(&mname, "1", &format!("m{n}"), json!({}));
                let json = Envelope::sign(
                    "application/json",
                    &serde_json::to_vec(&st).unwrap(),
                    &[&self.alice],
                )
                .to_json();
                Case {
                    envelope: json,
                    keys: vec![self.alice.public_key().to_pem()],
                    what: "another payload type",
                    target: None,
                }
            }
            10 => {
                let (mut st, _) = model(&mname, "1", &format!("m{n}"), json!({}));
                st["predicateType"] = json!("https://example.org/unknown/v1");
                self.case("an unknown predicate type", &st, None)
            }
            11 => {
                let (st, _) = model(
                    &mname,
                    "1",
                    &format!("m{n}"),
                    json!({"dataDisclosure": "full"}),
                );
                self.case("full disclosure without training data", &st, None)
            }
            12 => {
                let (st, _) = model(
                    &mname,
                    "1",
                    &format!("m{n}"),
                    json!({"license": "NOT A LICENSE("}),
                );
                self.case("a licence that is no SPDX expression", &st, None)
            }
            13 => {
                let (st, _) = model(
                    &mname,
                    "1",
                    &format!("m{n}"),
                    json!({"releaseTime": "2025-07-01 00:00:00"}),
                );
                self.case("a release time that is not RFC 3339", &st, None)
            }
            14 => {
                let (mut st, _) = model(&mname, "1", &format!("m{n}"), json!({}));
                st["subject"][0]["digest"]["sha256"] = json!(hex::encode(sha(b"other")));
                self.case(
                    "a subject digest that is not the manifest's root",
                    &st,
                    None,
                )
            }
            15 => {
                let (mut st, _) = dataset(&dname, &format!("d{n}"), json!({}));
                st["predicate"]
                    .as_object_mut()
                    .unwrap()
                    .remove("processing");
                self.case("a dataset without processing", &st, None)
            }
            16 => {
                let bad = format!("Org//model{n}");
                let (st, _) = model(&bad, "1", &format!("m{n}"), json!({}));
                self.case("a name that is not a name", &st, None)
            }
            17 => {
                let (st, _) = model(
                    &mname,
                    "1",
                    &format!("m{n}"),
                    json!({"dataDisclosure": "everything"}),
                );
                self.case("a data disclosure that is none of the values", &st, None)
            }
            18 => {
                // The boundary: the index this entry will get, then one past it.
                let at = size + (n % 2) as u64;
                let (st, _) = model(
                    &mname,
                    "1",
                    &format!("m{n}"),
                    trained_on("org/x", &sha(b"x"), at),
                );
                self.case("a reference to a later index", &st, None)
            }
            19 => match self.other {
                Some(at) => {
                    let (st, _) = model(
                        &mname,
                        "1",
                        &format!("m{n}"),
                        trained_on("org/x", &sha(b"x"), at),
                    );
                    self.case("a reference to a non-declaration", &st, None)
                }
                None => self.next_fallback(size),
            },
            20 => match self.pick(true) {
                Some(m) => {
                    let (st, _) = model(
                        &mname,
                        "1",
                        &format!("m{n}"),
                        trained_on(&m.name, &m.digest, m.index),
                    );
                    self.case("training data that is a model", &st, None)
                }
                None => self.next_fallback(size),
            },
            21 => match self.pick(false) {
                Some(d) => {
                    let (st, _) = model(
                        &mname,
                        "1",
                        &format!("m{n}"),
                        trained_on(&format!("{}x", d.name), &d.digest, d.index),
                    );
                    self.case("training data of another name", &st, None)
                }
                None => self.next_fallback(size),
            },
            22 => match self.pick(false) {
                Some(d) => {
                    let (st, _) = model(
                        &mname,
                        "1",
                        &format!("m{n}"),
                        trained_on(&d.name, &sha(b"wrong"), d.index),
                    );
                    self.case("training data with another digest", &st, None)
                }
                None => self.next_fallback(size),
            },
            23 => match self.pick(true) {
                Some(m) => {
                    let (st, _) = model(
                        &mname,
                        "2",
                        &format!("m{n}"),
                        supersedes(m.index, &m.digest),
                    );
                    self.case("supersedes of another name", &st, None)
                }
                None => self.next_fallback(size),
            },
            24 => match self.pick(false) {
                Some(d) => {
                    let (st, _) = model(
                        &d.name,
                        "2",
                        &format!("m{n}"),
                        supersedes(d.index, &d.digest),
                    );
                    self.case("a model superseding a dataset of its name", &st, None)
                }
                None => self.next_fallback(size),
            },
            25 => {
                let (st, root) = model(&mname, "1", &format!("m{n}"), json!({}));
                self.case(
                    "model with a detached manifest",
                    &detached(st),
                    Some(target(true, &mname, root)),
                )
            }
            26 => {
                let (st, _) = model(&mname, "1", &format!("m{n}"), json!({}));
                let mut both = detached(st.clone());
                both["predicate"]["manifest"] = st["predicate"]["manifest"].clone();
                self.case("a manifest both embedded and detached", &both, None)
            }
            27 => {
                // Schema version 1 of the search index let this one break Search for `1`.
                let (st, _) = model(&mname, "1\u{0}", &format!("m{n}"), json!({}));
                self.case("a version with a control character", &st, None)
            }
            _ => match self.pick(true) {
                Some(m) => {
                    let (st, _) = model(
                        &mname,
                        "1",
                        &format!("m{n}"),
                        based_on(&m.name, &sha(b"wrong"), m.index),
                    );
                    self.case("a base model with another digest", &st, None)
                }
                None => self.next_fallback(size),
            },
        }
    }

    /// A valid dataset, when the chosen case has nothing to reference yet.
    fn next_fallback(&mut self, size: u64) -> Case {
        let name = format!("org/data{}", self.n);
        let (st, root) = dataset(&name, &format!("d{}", self.n), json!({}));
        self.case(
            "dataset",
            &st,
            Some(Logged {
                index: size,
                model: false,
                name,
                digest: root,
            }),
        )
    }
}

/// Submits `case` normally; if refused, logs it unchecked. Returns the index and the server's
/// refusal (none if admitted).
async fn log(client: &mut TransparencyLogClient<Channel>, case: &Case) -> (u64, Option<String>) {
    let request = || SubmitRequest {
        envelope: case.envelope.clone(),
        public_keys: case.keys.clone(),
    };
    match client.submit(request()).await {
        Ok(r) => (r.into_inner().index, None),
        Err(status) => {
            assert_eq!(
                status.code(),
                tonic::Code::InvalidArgument,
                "{}: {status}",
                case.what
            );
            let mut unchecked = tonic::Request::new(request());
            // `UNCHECKED_METADATA` of src/server/faults.rs.
            unchecked
                .metadata_mut()
                .insert("glasslog-fault", "unchecked".parse().unwrap());
            let index = client
                .submit(unchecked)
                .await
                .unwrap_or_else(|e| panic!("{}: not logged unchecked: {e}", case.what))
                .into_inner()
                .index;
            (index, Some(status.message().to_string()))
        }
    }
}

fn glasslog(args: &[&str]) -> (i32, String) {
    let out = Command::new(common::glasslog_bin())
        .args(args)
        .env("GLASSLOG_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

/// Indexes `audit` finds inadmissible: its `invalid-entry` findings (the monitor's kind and
/// JSON line shape, docs/auditing.md).
fn audit_verdicts(server: &TestServer, home: &std::path::Path) -> BTreeMap<u64, String> {
    let state = home.join("audit.state");
    let (code, out) = glasslog(&[
        "audit",
        "--server",
        &server.url,
        "--log-key",
        &server.verifier_key,
        "--state",
        state.to_str().unwrap(),
        "--state-dir",
        home.to_str().unwrap(),
        "--extra-predicate-type",
        TEST_PREDICATE,
        "--json",
    ]);
    assert_eq!(code, 1, "the corpus has invalid entries: {out}");
    let mut found = BTreeMap::new();
    for line in out.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if v["kind"] != "invalid-entry" {
            continue;
        }
        if let [i] = v["indexes"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let i = i.as_u64().expect("an index");
            found.insert(i, v["message"].as_str().unwrap_or_default().to_string());
        }
    }
    found
}

/// Indexes `monitor --once` finds inadmissible (`invalid-entry`).
fn monitor_verdicts(server: &TestServer, home: &std::path::Path) -> BTreeMap<u64, String> {
    let state = home.join("monitor.state");
    let split = home.join("monitor.split-view.json");
    let (code, out) = glasslog(&[
        "monitor",
        "--server",
        &server.url,
        "--log-key",
        &server.verifier_key,
        "--state",
        state.to_str().unwrap(),
        "--split-view-state",
        split.to_str().unwrap(),
        "--extra-predicate-type",
        TEST_PREDICATE,
        "--once",
    ]);
    assert_eq!(code, 1, "the corpus has invalid entries: {out}");
    let mut found = BTreeMap::new();
    for line in out.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if v["kind"] == "invalid-entry" {
            let indexes = v["indexes"].as_array().unwrap();
            assert_eq!(indexes.len(), 1, "{v}");
            found.insert(
                indexes[0].as_u64().unwrap(),
                v["message"].as_str().unwrap().to_string(),
            );
        }
    }
    found
}

#[tokio::test]
async fn server_audit_and_monitor_agree_entry_by_entry() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    std::env::set_var("GLASSLOG_FAULT", "admission-on-request");
    let server = TestServer::start(&home.join("data"), &["--origin", ORIGIN]);
    std::env::remove_var("GLASSLOG_FAULT");
    let mut client = TransparencyLogClient::connect(server.url.clone())
        .await
        .unwrap();
    let mut corpus = Corpus {
        rng: Rng(0x9e37_79b9_7f4a_7c15),
        alice: PrivateKey::generate(KeyType::Ed25519),
        bob: PrivateKey::generate(KeyType::P256),
        logged: Vec::new(),
        other: None,
        n: 0,
    };

    // The server's verdicts, entry by entry, and what each entry was meant to test.
    let mut refused: BTreeMap<u64, String> = BTreeMap::new();
    let mut tested: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    for size in 0..ENTRIES as u64 {
        let case = corpus.next(size);
        let (index, refusal) = log(&mut client, &case).await;
        assert_eq!(index, size, "{}: every entry is new", case.what);
        let counts = tested.entry(case.what).or_default();
        match refusal {
            Some(why) => {
                counts.1 += 1;
                refused.insert(index, why);
            }
            None => {
                counts.0 += 1;
                if case.what == "extra statement" {
                    corpus.other = Some(index);
                }
                corpus.logged.extend(case.target);
            }
        }
    }

    // The corpus is what it is meant to be: each kind of case judged the way it was built, and
    // every rule broken at least once.
    for (what, (admitted, refusals)) in &tested {
        let valid = [
            "dataset",
            "model",
            "extra statement",
            "model trained on a logged dataset",
            "model based on a logged model",
            "a new release superseding",
            "model signed by two publishers",
            "model with a detached manifest",
        ]
        .contains(what);
        assert_eq!(
            (*admitted == 0, *refusals == 0),
            (!valid, valid),
            "{what}: {admitted} admitted, {refusals} refused"
        );
    }
    assert_eq!(tested.len(), 29, "every case was generated: {tested:?}");

    let audit = audit_verdicts(&server, home);
    let monitor = monitor_verdicts(&server, home);
    for index in 0..ENTRIES as u64 {
        let verdicts = (refused.get(&index), audit.get(&index), monitor.get(&index));
        assert_eq!(
            (
                verdicts.0.is_some(),
                verdicts.1.is_some(),
                verdicts.2.is_some()
            ),
            (
                verdicts.0.is_some(),
                verdicts.0.is_some(),
                verdicts.0.is_some()
            ),
            "entry {index}: server, audit and monitor disagree: {verdicts:#?}"
        );
        // One wording: the checkers say what Submit said.
        if let (Some(server), Some(audit), Some(monitor)) = verdicts {
            assert!(
                audit.starts_with(server.as_str()),
                "entry {index}: {server} / {audit}"
            );
            assert!(
                monitor.ends_with(server.as_str()),
                "entry {index}: {server} / {monitor}"
            );
        }
    }
}

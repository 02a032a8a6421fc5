use super::*;
use crate::admission::dsse::Envelope;
use crate::admission::keys::{KeyType, PrivateKey};
use crate::entry::LogEntry;
use crate::monitor::ExamineOptions;
use crate::tlog::checkpoint::{Checkpoint, Origin};
use crate::tlog::note::LogSigner;
use prost::Message;

const TEST_TYPE: &str = "https://example.org/test/v1";

struct Log {
    signer: LogSigner,
    leaves: Vec<Vec<u8>>,
    key: PrivateKey,
}

impl Log {
    fn new() -> Log {
        Log {
            signer: LogSigner::generate(&Origin::new("example.com/log").unwrap()),
            leaves: Vec::new(),
            key: PrivateKey::generate(KeyType::Ed25519),
        }
    }

    fn leaf(&self, text: &str, signer: &PrivateKey, time: i64) -> Vec<u8> {
        let statement = serde_json::to_vec(&serde_json::json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "t", "digest": {"sha256": hex::encode([1u8; 32])}}],
            "predicateType": TEST_TYPE, "predicate": {"text": text}}))
        .unwrap();
        let envelope = Envelope::sign(
            crate::admission::declaration::PAYLOAD_TYPE,
            &statement,
            &[signer],
        )
        .to_json();
        LogEntry {
            envelope,
            public_keys: vec![self.key.public_key().to_pem()],
            integrated_time_ms: time,
        }
        .encode_to_vec()
    }

    fn append(&mut self, n: usize) {
        for _ in 0..n {
            let i = self.leaves.len();
            let leaf = self.leaf(&format!("entry {i}"), &self.key, 1000 + i as i64);
            self.leaves.push(leaf);
        }
    }

    fn checkpoint_of(&self, leaves: &[Vec<u8>]) -> proto::SignedCheckpoint {
        let mut range = CompactRange::new();
        leaves
            .iter()
            .for_each(|l| range.append(merkle::leaf_hash(l)));
        let c = Checkpoint {
            origin: self.signer.origin().into(),
            size: range.size(),
            root: range.root(),
        };
        proto::SignedCheckpoint {
            note: self.signer.sign(&c).unwrap(),
            size: c.size,
            root_hash: c.root.0.to_vec(),
        }
    }

    fn checkpoint(&self) -> proto::SignedCheckpoint {
        self.checkpoint_of(&self.leaves)
    }
}

fn config(log: &Log, dir: &std::path::Path) -> Config {
    Config {
        server: String::new(),
        verifier: LogVerifier::new(&log.signer.verifier_key()).unwrap(),
        state_path: dir.join("state.json"),
        watch: Default::default(),
        once: true,
        exec: None,
        backdate_window_ms: 7 * 86_400_000,
        examine: ExamineOptions {
            check_signatures: true,
            extra_predicate_types: vec![TEST_TYPE.into()],
        },
        split_view_state: Some(dir.join("split-view.json")),
    }
}

fn reporter() -> Reporter {
    Reporter::new(Default::default(), None)
}

fn kinds(r: &Reporter) -> Vec<FindingKind> {
    r.seen.iter().map(|f| f.kind).collect()
}

/// Streams `log.leaves[from..]` in one chunk and then `checkpoint`.
fn stream(
    e: &mut Engine,
    log: &Log,
    r: &mut Reporter,
    checkpoint: proto::SignedCheckpoint,
) -> Verdict {
    let start = e.begin_stream();
    entries(e, start, &log.leaves[start as usize..], r).unwrap();
    e.checkpoint(checkpoint, r).unwrap()
}

/// Examines `leaves` with the engine's examiner and hands them over, as the stream reader does.
fn entries(
    e: &mut Engine,
    first: u64,
    leaves: &[Vec<u8>],
    r: &mut Reporter,
) -> Result<(), MonitorError> {
    let examined = e.examiner().examine_all(leaves);
    e.examined_entries(first, leaves, examined, r)
}

#[test]
fn verifies_runs_and_resumes_from_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::new();
    let mut r = reporter();
    log.append(100);
    {
        let mut e = Engine::open(&config(&log, dir.path())).unwrap();
        assert!(matches!(
            stream(&mut e, &log, &mut r, log.checkpoint()),
            Verdict::Verified
        ));
        assert_eq!(e.state().size(), 100);
    }
    log.append(30);
    let mut e = Engine::open(&config(&log, dir.path())).unwrap();
    assert_eq!(e.state().size(), 100);
    // The stream resumes a few entries early and those are compared, not appended again.
    assert_eq!(
        e.begin_stream(),
        100 - crate::monitor::state::RECENT_LEAVES as u64
    );
    assert!(matches!(
        stream(&mut e, &log, &mut r, log.checkpoint()),
        Verdict::Verified
    ));
    assert_eq!(e.state().size(), 130);
    assert_eq!(
        e.state().range.root().0.to_vec(),
        log.checkpoint().root_hash
    );
    assert!(r.seen.is_empty(), "{:?}", r.seen);
}

#[test]
fn a_changed_entry_is_a_mismatch_and_nothing_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::new();
    let mut r = reporter();
    log.append(10);
    let honest = log.checkpoint();
    log.leaves[3] = log.leaf("something else", &log.key, 1003);
    let mut e = Engine::open(&config(&log, dir.path())).unwrap();
    assert!(matches!(
        stream(&mut e, &log, &mut r, honest),
        Verdict::Mismatch(_)
    ));
    assert_eq!(e.state().size(), 0);
    assert!(r.seen.is_empty());
}

#[test]
fn bad_signatures_are_reported_once_per_verified_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::new();
    let mut r = reporter();
    log.append(5);
    let mut forged = log.checkpoint();
    forged.note = forged.note.replace("\n\n", "\nextension\n\n");
    let mut e = Engine::open(&config(&log, dir.path())).unwrap();
    assert!(matches!(
        stream(&mut e, &log, &mut r, forged.clone()),
        Verdict::Rejected
    ));
    assert!(matches!(
        stream(&mut e, &log, &mut r, forged.clone()),
        Verdict::Rejected
    ));
    assert_eq!(kinds(&r), vec![FindingKind::BadCheckpointSignature]);
    drop(e);
    let mut e = Engine::open(&config(&log, dir.path())).unwrap();
    assert!(matches!(
        stream(&mut e, &log, &mut r, forged),
        Verdict::Rejected
    ));
    assert_eq!(r.seen.len(), 1, "not reported again after a restart");
}

#[test]
fn entries_served_again_must_be_the_verified_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::new();
    let mut r = reporter();
    log.append(20);
    let mut e = Engine::open(&config(&log, dir.path())).unwrap();
    assert!(matches!(
        stream(&mut e, &log, &mut r, log.checkpoint()),
        Verdict::Verified
    ));
    let honest = log.checkpoint();
    log.leaves[18] = log.leaf("rewritten", &log.key, 1018);
    assert!(matches!(
        stream(&mut e, &log, &mut r, honest),
        Verdict::Verified
    ));
    assert_eq!(kinds(&r), vec![FindingKind::EntryChanged]);
    assert_eq!(r.seen[0].indexes, vec![18]);
}

#[test]
fn invalid_entries_and_out_of_order_streams() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::new();
    let mut r = reporter();
    log.append(3);
    let stranger = PrivateKey::generate(KeyType::Ed25519);
    let forged = log.leaf("signed by someone else", &stranger, 2000);
    log.leaves.push(forged);
    log.leaves
        .push(log.leaf("time goes backwards", &log.key, 5));
    let mut e = Engine::open(&config(&log, dir.path())).unwrap();
    assert!(matches!(
        stream(&mut e, &log, &mut r, log.checkpoint()),
        Verdict::Verified
    ));
    assert_eq!(
        kinds(&r),
        vec![FindingKind::InvalidEntry, FindingKind::InvalidEntry]
    );
    assert_eq!(
        r.seen.iter().map(|f| f.indexes.clone()).collect::<Vec<_>>(),
        vec![vec![3], vec![4]]
    );

    let start = e.begin_stream();
    assert!(matches!(
        entries(&mut e, start + 1, &log.leaves[..1], &mut r),
        Err(MonitorError::Protocol(_))
    ));
    let mut wrong_size = log.checkpoint();
    wrong_size.size += 1;
    e.begin_stream();
    assert!(matches!(
        e.checkpoint(wrong_size, &mut r),
        Err(MonitorError::Protocol(_))
    ));
}

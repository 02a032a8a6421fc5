use super::*;
use crate::admission::dsse::Envelope;
use crate::admission::keys::{KeyType, PrivateKey};
use crate::entry::LogEntry;
use crate::monitor::ExamineOptions;
use crate::tlog::checkpoint::{Checkpoint, Origin};
use crate::tlog::merkle::MemoryTree;
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
        self.signed(range.size(), range.root())
    }

    /// A checkpoint signed by the log's key, whatever its root.
    fn signed(&self, size: u64, root: Hash) -> proto::SignedCheckpoint {
        let c = Checkpoint {
            origin: self.signer.origin().into(),
            size,
            root,
        };
        proto::SignedCheckpoint {
            note: self.signer.sign(&c).unwrap(),
            size: c.size,
            root_hash: c.root.0.to_vec(),
        }
    }

    /// The server's consistency proof from `from` to `to` leaves of this log.
    fn proof(&self, from: u64, to: u64) -> proto::ConsistencyProof {
        proof_over(&self.leaves, from, to)
    }

    fn checkpoint(&self) -> proto::SignedCheckpoint {
        self.checkpoint_of(&self.leaves)
    }
}

/// The consistency proof from `from` to `to` of `leaves`.
fn proof_over(leaves: &[Vec<u8>], from: u64, to: u64) -> proto::ConsistencyProof {
    let mut tree = MemoryTree::new();
    for l in &leaves[..to as usize] {
        tree.append(merkle::leaf_hash(l)).unwrap();
    }
    proto::ConsistencyProof {
        from_size: from,
        to_size: to,
        hashes: merkle::prove_consistency(from, to, &tree)
            .unwrap()
            .iter()
            .map(|h| h.0.to_vec())
            .collect(),
    }
}

fn config(log: &Log, dir: &std::path::Path) -> Config {
    Config {
        location: crate::monitor::Location::Server(String::new()),
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
        witness_policy: None,
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
fn a_changed_entry_from_the_empty_tree_is_a_root_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::new();
    let mut r = reporter();
    log.append(10);
    let honest = log.checkpoint();
    log.leaves[3] = log.leaf("something else", &log.key, 1003);
    let mut e = Engine::open(&config(&log, dir.path())).unwrap();
    // No proof can tell anything from the empty tree: the entries do not lead to the root.
    assert!(matches!(
        stream(&mut e, &log, &mut r, honest),
        Verdict::Rejected
    ));
    assert_eq!(e.state().size(), 0);
    assert_eq!(kinds(&r), vec![FindingKind::RootMismatch]);
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

/// Streams `log.leaves[from..to]` and the checkpoint of the first `to` leaves.
fn stream_to(e: &mut Engine, log: &Log, r: &mut Reporter, to: usize) -> Verdict {
    let start = e.begin_stream() as usize;
    entries(e, start as u64, &log.leaves[start..to], r).unwrap();
    e.checkpoint(log.checkpoint_of(&log.leaves[..to]), r)
        .unwrap()
}

/// A log of `n` entries and an engine, in a new directory, that verified the first `verified`.
fn verified(n: usize, verified: usize) -> (tempfile::TempDir, Log, Engine, Reporter) {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::new();
    let mut r = reporter();
    log.append(n);
    let mut e = Engine::open(&config(&log, dir.path())).unwrap();
    assert!(matches!(
        stream_to(&mut e, &log, &mut r, verified),
        Verdict::Verified
    ));
    (dir, log, e, r)
}

/// Hands `e` the checkpoint `latest` from `GetCheckpoint`, which needs a proof, and `reply` for
/// it.
fn latest_with_proof(
    e: &mut Engine,
    r: &mut Reporter,
    latest: proto::SignedCheckpoint,
    reply: Result<proto::ConsistencyProof, MonitorError>,
) -> Result<Verdict, MonitorError> {
    let Verdict::NeedsProof(request) = e.latest(latest, r).unwrap() else {
        panic!("a smaller checkpoint needs a proof")
    };
    e.consistency_proof(request, reply, r)
}

#[test]
fn a_latest_checkpoint_ahead_is_checked_once_reached() {
    let (_dir, log, mut e, mut r) = verified(10, 4);
    let latest = log.checkpoint_of(&log.leaves[..6]);
    assert!(matches!(
        e.latest(latest, &mut r).unwrap(),
        Verdict::Consistent
    ));
    assert!(!e.caught_up());
    let Verdict::NeedsProof(request) = stream_to(&mut e, &log, &mut r, 10) else {
        panic!("the checkpoint of 6 needs a proof to the verified 10")
    };
    assert_eq!((request.from, request.to), (6, 10));
    assert_eq!(e.state().size(), 10, "the run itself was accepted");
    let reply = Ok(log.proof(6, 10));
    assert!(matches!(
        e.consistency_proof(request, reply, &mut r).unwrap(),
        Verdict::Verified
    ));
    assert!(e.caught_up());
    assert!(r.seen.is_empty(), "{:?}", r.seen);
}

#[test]
fn a_forked_latest_checkpoint_is_inconsistent() {
    let (_dir, log, mut e, mut r) = verified(10, 10);
    // Same size, another root: no proof needed.
    let same_size = log.signed(10, merkle::leaf_hash(b"fork"));
    assert!(matches!(
        e.latest(same_size, &mut r).unwrap(),
        Verdict::Rejected
    ));
    assert_eq!(kinds(&r), vec![FindingKind::InconsistentCheckpoint]);
    // Smaller, another root: the server's proof does not join it to the verified tree. The
    // finding is the same one (same kind, same verified checkpoint): refused, not reported again.
    let smaller = log.signed(6, merkle::leaf_hash(b"fork"));
    let verdict = latest_with_proof(&mut e, &mut r, smaller, Ok(log.proof(6, 10)));
    assert!(matches!(verdict.unwrap(), Verdict::Rejected));
    assert_eq!(kinds(&r), vec![FindingKind::InconsistentCheckpoint]);
    assert_eq!(e.state().size(), 10);
    // From another monitor's state, the smaller fork alone is reported.
    let (_dir, log, mut e, mut r) = verified(10, 10);
    let smaller = log.signed(6, merkle::leaf_hash(b"fork"));
    let verdict = latest_with_proof(&mut e, &mut r, smaller, Ok(log.proof(6, 10)));
    assert!(matches!(verdict.unwrap(), Verdict::Rejected));
    assert_eq!(kinds(&r), vec![FindingKind::InconsistentCheckpoint]);
}

#[test]
fn an_older_checkpoint_without_a_proof_is_not_decided() {
    let (_dir, log, mut e, mut r) = verified(10, 10);
    let older = log.checkpoint_of(&log.leaves[..6]);
    let down = Err(MonitorError::Rpc(tonic::Status::unavailable("down")));
    let verdict = latest_with_proof(&mut e, &mut r, older.clone(), down);
    assert!(matches!(verdict, Err(MonitorError::Rpc(_))));
    assert!(r.seen.is_empty());
    // A reply for other sizes proves nothing: the checkpoints are not shown consistent.
    let verdict = latest_with_proof(&mut e, &mut r, older, Ok(log.proof(5, 10)));
    assert!(matches!(verdict.unwrap(), Verdict::Rejected));
    assert_eq!(kinds(&r), vec![FindingKind::InconsistentCheckpoint]);
}

#[test]
fn a_latest_checkpoint_with_a_bad_signature_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::new();
    let mut r = reporter();
    log.append(3);
    let mut forged = log.checkpoint();
    forged.note = forged.note.replace("\n\n", "\nextension\n\n");
    let mut e = Engine::open(&config(&log, dir.path())).unwrap();
    assert!(matches!(
        e.latest(forged, &mut r).unwrap(),
        Verdict::Rejected
    ));
    assert_eq!(kinds(&r), vec![FindingKind::BadCheckpointSignature]);
    let mut lying = log.checkpoint();
    lying.size += 1;
    assert!(matches!(
        e.latest(lying, &mut r),
        Err(MonitorError::Protocol(_))
    ));
}

/// Verifies 5 of 10 entries, then streams the rest with entry 7 changed and the honest
/// checkpoint of 10, and hands the engine `reply` to its proof request.
fn mismatch_explained_by(
    reply: impl FnOnce(&Log) -> Result<proto::ConsistencyProof, MonitorError>,
) -> Vec<FindingKind> {
    let (_dir, mut log, mut e, mut r) = verified(10, 5);
    let honest = log.checkpoint();
    let reply = reply(&log);
    log.leaves[7] = log.leaf("something else", &log.key, 1007);
    let Verdict::NeedsProof(request) = stream(&mut e, &log, &mut r, honest) else {
        panic!("entries that do not lead to the root need a proof")
    };
    assert_eq!((request.from, request.to), (5, 10));
    assert!(matches!(
        e.consistency_proof(request, reply, &mut r).unwrap(),
        Verdict::Rejected
    ));
    assert_eq!(e.state().size(), 5);
    kinds(&r)
}

#[test]
fn a_mismatch_is_told_apart_by_the_consistency_proof() {
    assert_eq!(
        mismatch_explained_by(|log| Ok(log.proof(5, 10))),
        vec![FindingKind::RootMismatch],
        "proven consistent: the entries are wrong"
    );
    assert_eq!(
        mismatch_explained_by(|log| {
            let mut p = log.proof(5, 10);
            p.hashes[0][0] ^= 1;
            Ok(p)
        }),
        vec![FindingKind::InconsistentCheckpoint],
        "no valid proof: the checkpoints fork"
    );
    assert_eq!(
        mismatch_explained_by(|_| Err(MonitorError::Rpc(tonic::Status::unavailable("down")))),
        vec![FindingKind::RootMismatch],
        "no proof at all: still a root mismatch"
    );
}

#[test]
fn witnessed_checkpoints_are_held_to_the_policy_and_a_witnessed_fork_is_equivocation() {
    use crate::tlog::cosignature::Cosigner;
    use crate::tlog::policy::WitnessPolicy;
    let (dir, log, _, _) = verified(10, 10);
    let witnesses: Vec<Cosigner> = (1..=2u8)
        .map(|i| {
            Cosigner::new(
                &format!("w{i}.example"),
                ed25519_dalek::SigningKey::from_bytes(&[i; 32]),
            )
            .unwrap()
        })
        .collect();
    let policy = format!(
        "witness A {}\nwitness B {}\ngroup both all A B\nquorum both\n",
        witnesses[0].public().to_vkey(),
        witnesses[1].public().to_vkey()
    );
    let mut c = config(&log, dir.path());
    c.witness_policy = Some(Arc::new(WitnessPolicy::parse(policy.as_bytes()).unwrap()));
    let mut e = Engine::open(&c).unwrap();
    let mut r = reporter();
    let cosign = |mut sc: proto::SignedCheckpoint, by: &[&Cosigner]| {
        let body = sc.note.split_once("\n\n").unwrap().0.to_string() + "\n";
        for w in by {
            sc.note += &w.cosign(&body, 1_000);
        }
        sc
    };
    // Below the quorum: a warning, nothing rejected.
    let one = cosign(log.checkpoint(), &[&witnesses[0]]);
    assert!(matches!(
        e.witnessed(one, &mut r).unwrap(),
        Verdict::Consistent
    ));
    assert_eq!(kinds(&r), vec![FindingKind::NotWitnessed]);
    // Meeting it and consistent: nothing to report.
    let both = cosign(log.checkpoint(), &[&witnesses[0], &witnesses[1]]);
    assert!(!matches!(
        e.witnessed(both, &mut r).unwrap(),
        Verdict::Rejected
    ));
    assert_eq!(kinds(&r), vec![FindingKind::NotWitnessed]);
    // A witnessed fork of the verified size: witness-equivocation.
    let fork = cosign(
        log.signed(10, merkle::leaf_hash(b"fork")),
        &[&witnesses[0], &witnesses[1]],
    );
    assert!(matches!(
        e.witnessed(fork, &mut r).unwrap(),
        Verdict::Rejected
    ));
    assert_eq!(
        kinds(&r),
        vec![FindingKind::NotWitnessed, FindingKind::WitnessEquivocation]
    );
}

/// Streams `log.leaves[start..]` towards `log.checkpoint()` in runs of `segment` entries, each
/// proven a prefix of it with `prove(from)` before the next; returns the verdicts of the
/// segments and of the checkpoint.
fn segmented(
    e: &mut Engine,
    log: &Log,
    r: &mut Reporter,
    segment: usize,
    prove: impl Fn(u64) -> proto::ConsistencyProof,
) -> Vec<Verdict> {
    let target = log.checkpoint();
    let start = e.begin_stream() as usize;
    let mut verdicts = Vec::new();
    let mut at = start;
    while at + segment < log.leaves.len() {
        entries(e, at as u64, &log.leaves[at..at + segment], r).unwrap();
        at += segment;
        let verdict = match e.segment(target.clone(), r).unwrap() {
            Verdict::NeedsProof(request) => {
                assert_eq!((request.from, request.to), (at as u64, target.size));
                let reply = Ok(prove(request.from));
                e.consistency_proof(request, reply, r).unwrap()
            }
            other => other,
        };
        let go_on = matches!(verdict, Verdict::Consistent);
        verdicts.push(verdict);
        if !go_on {
            return verdicts;
        }
    }
    entries(e, at as u64, &log.leaves[at..], r).unwrap();
    verdicts.push(e.checkpoint(target, r).unwrap());
    verdicts
}

#[test]
fn a_long_catch_up_is_committed_in_segments_proven_prefixes_of_the_checkpoint() {
    let (dir, mut log, mut e, mut r) = verified(10, 10);
    log.append(90);
    // An entry the rules see in the first segment: invalid (its time goes backwards).
    log.leaves[25] = log.leaf("late", &log.key, 5);
    let verdicts = segmented(&mut e, &log, &mut r, 30, |from| log.proof(from, 100));
    assert!(matches!(
        verdicts[..],
        [
            Verdict::Consistent,
            Verdict::Consistent,
            Verdict::Consistent,
            Verdict::Verified
        ]
    ));
    assert_eq!(e.state().size(), 100);
    assert_eq!(kinds(&r), vec![FindingKind::InvalidEntry]);
    assert_eq!(r.seen[0].indexes, vec![25]);
    // The state kept the last leaves across segments: entries served again compare equal.
    drop(e);
    let mut e = Engine::open(&config(&log, dir.path())).unwrap();
    assert!(matches!(
        stream(&mut e, &log, &mut r, log.checkpoint()),
        Verdict::Verified
    ));
    assert_eq!(r.seen.len(), 1);
}

#[test]
fn a_segment_that_does_not_lead_to_the_checkpoint_is_told_apart_like_a_run() {
    // Altered entries under an honest checkpoint: root-mismatch, nothing committed.
    let (_dir, mut log, mut e, mut r) = verified(10, 10);
    log.append(90);
    let honest = log.leaves.clone();
    let target = log.checkpoint();
    log.leaves[15] = log.leaf("altered", &log.key, 1015);
    let start = e.begin_stream() as usize;
    entries(&mut e, start as u64, &log.leaves[start..40], &mut r).unwrap();
    let Verdict::NeedsProof(segment) = e.segment(target, &mut r).unwrap() else {
        panic!("a segment needs a proof")
    };
    let reply = Ok(proof_over(&honest, 40, 100));
    let Verdict::NeedsProof(mismatch) = e.consistency_proof(segment, reply, &mut r).unwrap() else {
        panic!("a segment that fails is asked about like a run that fails")
    };
    assert_eq!((mismatch.from, mismatch.to), (10, 100));
    let reply = Ok(proof_over(&honest, 10, 100));
    let verdict = e.consistency_proof(mismatch, reply, &mut r).unwrap();
    assert!(matches!(verdict, Verdict::Rejected));
    assert_eq!(kinds(&r), vec![FindingKind::RootMismatch]);
    assert_eq!(e.state().size(), 10);
}

//! Sequencer tests on a real RocksDB store in a temporary directory.

use std::time::Duration;

use super::*;
use crate::entry::{PendingEntry, MAX_LEAF_BYTES};
use crate::tlog::checkpoint::Origin;
use crate::tlog::compact::CompactRange;

fn signer() -> LogSigner {
    LogSigner::generate(&Origin::new("example.org/sequencer-test").unwrap())
}

fn pending(n: u64) -> PendingEntry {
    PendingEntry {
        envelope: format!("envelope {n}").into_bytes(),
        public_keys: vec![format!("key {n}")],
        dedup_key: crate::tlog::merkle::leaf_hash(&n.to_be_bytes()).0,
        search_prefixes: vec![vec![1, (n % 3) as u8]],
    }
}

fn start(
    dir: &std::path::Path,
    signer: LogSigner,
    config: SequencerConfig,
) -> (
    Arc<Store>,
    Sequencer,
    std::thread::JoinHandle<Result<(), SequencerError>>,
) {
    let store = Arc::new(Store::open(dir).unwrap());
    let (seq, thread) = Sequencer::start(
        store.clone(),
        signer,
        config,
        Gate::always_open(),
        Metrics::new(),
    )
    .unwrap();
    (store, seq, thread)
}

/// Checks `appended` against an independent recomputation of the root from every stored leaf.
fn check_root(store: &Store, published: &Published) {
    let mut range = CompactRange::new();
    for (_, leaf) in store
        .entries(0, published.checkpoint.size, usize::MAX)
        .unwrap()
    {
        range.append(crate::tlog::merkle::leaf_hash(&leaf));
    }
    assert_eq!(range.size(), published.checkpoint.size);
    assert_eq!(range.root(), published.checkpoint.root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_are_durable_signed_and_provable() {
    let dir = tempfile::tempdir().unwrap();
    let signer = signer();
    let verifier = LogVerifier::new(&signer.verifier_key()).unwrap();
    let (store, seq, _thread) = start(dir.path(), signer, SequencerConfig::default());
    assert_eq!(seq.latest().checkpoint.size, 0);
    for n in 0..20 {
        let a = seq.append(pending(n)).await.unwrap();
        assert_eq!((a.index, a.duplicate), (n, false));
        let p = &a.batch.published;
        assert_eq!(verifier.verify(&p.note).unwrap(), p.checkpoint);
        assert!(p.checkpoint.size > n);
        let leaf = a.leaf_data().unwrap();
        assert_eq!(store.entry(n).unwrap().as_deref(), Some(leaf));
        let proof = crate::tlog::merkle::prove_inclusion(n, p.checkpoint.size, &*store).unwrap();
        crate::tlog::proof::verify_inclusion(
            n,
            p.checkpoint.size,
            &crate::tlog::merkle::leaf_hash(leaf),
            &proof,
            &p.checkpoint.root,
        )
        .unwrap();
    }
    check_root(&store, &seq.latest());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_get_distinct_indexes_and_dedup_holds_within_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let config = SequencerConfig {
        batch_window: Duration::from_millis(5),
        ..Default::default()
    };
    let (store, seq, _thread) = start(dir.path(), signer(), config);
    // 200 distinct entries, each submitted twice at once: the copies race into the same batches.
    let mut tasks = Vec::new();
    for n in 0..400u64 {
        let seq = seq.clone();
        tasks.push(tokio::spawn(async move {
            (n % 200, seq.append(pending(n % 200)).await.unwrap())
        }));
    }
    let mut index_of = HashMap::new();
    let mut new = 0;
    for t in tasks {
        let (n, a) = t.await.unwrap();
        if !a.duplicate {
            new += 1;
        }
        let prev = index_of.insert(n, a.index);
        assert!(
            prev.is_none() || prev == Some(a.index),
            "entry {n} logged twice"
        );
    }
    assert_eq!(new, 200, "each distinct entry is logged exactly once");
    let latest = seq.latest();
    assert_eq!(latest.checkpoint.size, 200);
    check_root(&store, &latest);
    // Integration times never decrease with the index.
    let times: Vec<i64> = store
        .entries(0, 200, usize::MAX)
        .unwrap()
        .iter()
        .map(|(_, l)| decode_leaf(l).unwrap().integrated_time_ms)
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}

/// Entry `n` with its envelope padded so that its leaf, logged now, is `leaf_bytes` long.
fn pending_of_leaf_len(n: u64, leaf_bytes: usize) -> PendingEntry {
    let mut e = pending(n);
    e.envelope.clear();
    // The envelope's length varint is 3 bytes for every length near the limit.
    let rest = e.leaf_len(now_ms()) + 1 + 3;
    e.envelope = vec![b'x'; leaf_bytes - rest];
    assert_eq!(e.leaf_len(now_ms()), leaf_bytes);
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaf_over_the_tiles_limit_is_refused_alone() {
    let dir = tempfile::tempdir().unwrap();
    let config = SequencerConfig {
        batch_window: Duration::from_millis(20),
        ..SequencerConfig::default()
    };
    let (store, seq, _thread) = start(dir.path(), signer(), config);
    // Announced first, so that the sequencer waits for more than the first and the refused leaf
    // shares its batch: one leaf of exactly the limit, one a byte longer, one small.
    let (a, b, c) = (seq.announce(), seq.announce(), seq.announce());
    let (at, over, small) = tokio::join!(
        seq.append_announced(pending_of_leaf_len(0, MAX_LEAF_BYTES), a),
        seq.append_announced(pending_of_leaf_len(1, MAX_LEAF_BYTES + 1), b),
        seq.append_announced(pending(2), c),
    );
    let at = at.unwrap();
    assert_eq!(at.leaf_data().unwrap().len(), MAX_LEAF_BYTES);
    match over {
        Err(SequencerError::LeafTooLarge(e)) => assert_eq!(e.size, MAX_LEAF_BYTES + 1),
        other => panic!("{other:?}"),
    }
    small.unwrap();
    // Nothing of the refused entry is stored; the log goes on.
    assert_eq!(seq.latest().checkpoint.size, 2);
    assert!(store.entry(2).unwrap().is_none());
    assert_eq!(seq.append(pending(3)).await.unwrap().index, 2);
    check_root(&store, &seq.latest());
}

/// The longest window the configuration allows, so that a wait would be unmistakable.
fn long_window() -> SequencerConfig {
    SequencerConfig {
        batch_window: Duration::from_secs(1),
        ..SequencerConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batch_waits_for_a_submission_announced_on_its_way() {
    let dir = tempfile::tempdir().unwrap();
    let (store, seq, _thread) = start(dir.path(), signer(), long_window());
    let (on_its_way, still_admitting) = (seq.announce(), seq.announce());
    let first = tokio::spawn({
        let seq = seq.clone();
        async move { seq.append(pending(1)).await.unwrap() }
    });
    // The sequencer has taken the first by now and waits: two are on their way, more than the
    // one it holds.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !first.is_finished(),
        "the batch was committed without waiting"
    );
    // With the second the batch holds two and one is on its way: it commits without that one.
    let second = seq.append_announced(pending(2), on_its_way).await.unwrap();
    let first = first.await.unwrap();
    assert_eq!((first.batch.start, first.batch.leaves.len()), (0, 2));
    assert!(Arc::ptr_eq(&first.batch, &second.batch));
    assert_eq!(seq.latest().checkpoint.size, 2);
    let third = seq
        .append_announced(pending(3), still_admitting)
        .await
        .unwrap();
    assert_eq!((third.batch.start, third.batch.leaves.len()), (2, 1));
    check_root(&store, &seq.latest());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_with_nothing_on_its_way_is_not_held_by_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, seq, _thread) = start(dir.path(), signer(), long_window());
    // Alone: committed at once, not after the 1 s window.
    let started = std::time::Instant::now();
    seq.append(pending(1)).await.unwrap();
    // An announced submission that is refused on its way (dropped) is not waited for either.
    drop(seq.announce());
    seq.append(pending(2)).await.unwrap();
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(900),
        "two lone appends took {took:?}: the window held them"
    );
    assert_eq!(seq.latest().checkpoint.size, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resubmission_after_commit_is_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, seq, _thread) = start(dir.path(), signer(), SequencerConfig::default());
    let first = seq.append(pending(7)).await.unwrap();
    seq.append(pending(8)).await.unwrap();
    let again = seq.append(pending(7)).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.index, first.index);
    assert_eq!(again.leaf_data(), None);
    assert_eq!(seq.latest().checkpoint.size, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_resumes_from_the_latest_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let signer = signer();
    let skey = signer.to_skey();
    let before = {
        let (_store, seq, thread) = start(dir.path(), signer, SequencerConfig::default());
        for n in 0..10 {
            seq.append(pending(n)).await.unwrap();
        }
        let latest = seq.latest();
        drop(seq);
        thread.join().unwrap().unwrap();
        latest
    };
    let (store, seq, _thread) = start(
        dir.path(),
        LogSigner::from_skey(&skey).unwrap(),
        SequencerConfig::default(),
    );
    assert_eq!(seq.latest().note, before.note);
    assert!(seq.append(pending(3)).await.unwrap().duplicate);
    assert_eq!(seq.append(pending(10)).await.unwrap().index, 10);
    check_root(&store, &seq.latest());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_store, seq, thread) = start(dir.path(), signer(), SequencerConfig::default());
        seq.append(pending(1)).await.unwrap();
        drop(seq);
        thread.join().unwrap().unwrap();
    }
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let err = Sequencer::start(
        store,
        signer(),
        SequencerConfig::default(),
        Gate::always_open(),
        Metrics::new(),
    )
    .err()
    .unwrap();
    assert!(matches!(err, SequencerError::Inconsistent(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_is_fatal_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let signer = signer();
    let skey = signer.to_skey();
    let (store, seq, thread) = start(dir.path(), signer, SequencerConfig::default());
    for n in 0..5 {
        seq.append(pending(n)).await.unwrap();
    }
    let good = seq.latest();
    store.inject_commit_failures(true);
    let err = seq.append(pending(5)).await.unwrap_err();
    assert!(matches!(err, SequencerError::Unavailable(_)), "{err}");
    // The sequencer has stopped: later submissions are refused, never silently dropped.
    assert!(matches!(
        seq.append(pending(6)).await,
        Err(SequencerError::Unavailable(_))
    ));
    assert!(thread.join().unwrap().is_err());
    assert_eq!(
        seq.latest().note,
        good.note,
        "nothing unwritten was published"
    );
    drop(seq);
    drop(store);
    let (store, seq, _thread) = start(
        dir.path(),
        LogSigner::from_skey(&skey).unwrap(),
        SequencerConfig::default(),
    );
    assert_eq!(seq.latest().note, good.note);
    assert_eq!(seq.append(pending(5)).await.unwrap().index, 5);
    check_root(&store, &seq.latest());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shut_gate_refuses_every_submission_and_signs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let gate = Gate::shut("no lease");
    let (seq, _thread) = Sequencer::start(
        store.clone(),
        signer(),
        SequencerConfig::default(),
        gate.clone(),
        Metrics::new(),
    )
    .unwrap();
    match seq.append(pending(1)).await {
        Err(SequencerError::Unavailable(why)) => assert_eq!(why, "no lease"),
        other => panic!("appended through a shut gate: {other:?}"),
    }
    assert_eq!(seq.latest().checkpoint.size, 0);
    assert_eq!(store.latest_checkpoint().unwrap().unwrap().size, 0);
    assert!(store.entry(0).unwrap().is_none());
    // Opened (a lease taken), the same submission is logged; expired, refused again.
    gate.open_until(u64::MAX - 1, "lease expired");
    assert_eq!(seq.append(pending(1)).await.unwrap().index, 0);
    gate.open_until(1, "lease expired");
    assert!(matches!(
        seq.append(pending(2)).await,
        Err(SequencerError::Unavailable(why)) if why == "lease expired"
    ));
    assert_eq!(seq.latest().checkpoint.size, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_signing_batch_is_measured_and_the_queue_empties() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let metrics = Metrics::new();
    let (seq, _thread) = Sequencer::start(
        store,
        signer(),
        SequencerConfig::default(),
        Gate::always_open(),
        metrics.clone(),
    )
    .unwrap();
    for n in 0..3 {
        seq.append(pending(n)).await.unwrap();
    }
    // A duplicate signs nothing and is no batch.
    assert!(seq.append(pending(0)).await.unwrap().duplicate);
    let batches = metrics.batch_entries();
    assert_eq!((batches.count, batches.sum), (3, 3.0));
    assert_eq!(batches.buckets[0], (1.0, 3));
    assert_eq!(metrics.commit_seconds().count, 3);
    assert_eq!(metrics.fsync_seconds().count, 3);
    assert_eq!(metrics.queue_depth(), 0);
    assert_eq!(metrics.checkpoint_size(), 3);
    let in_a_minute = SystemTime::now() + Duration::from_secs(60);
    let age = metrics.checkpoint_age(in_a_minute);
    assert!((60.0..3600.0).contains(&age), "signed just now: {age}");
}

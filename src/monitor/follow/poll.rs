//! Following a log from its tiles (`monitor --tiles URL`): the checkpoint read every
//! `--interval`, the entry bundles up to it, consistency proofs computed from the tiles. The
//! engine decides exactly as for a `Tail` stream, so the findings are the same.
//!
//! One poll:
//! 1. the checkpoint is handed to the engine as a `GetCheckpoint` answer ([`Engine::latest`]: its
//!    signature; if no larger than the verified one, its consistency with it) and, with a
//!    witness policy, as a witnessed checkpoint ([`Engine::witnessed`]): a log with a witness
//!    policy publishes its witnessed checkpoint as tiles;
//! 2. if it is larger, the bundles from the verified size (less the last few entries, compared
//!    again as after a reconnection: `entry-changed`) up to it are read ahead, examined on all
//!    cores and handed to the engine in chunks. Every [`SEGMENT_ENTRIES`] entries the engine has
//!    the entries read so far proven a prefix of the checkpoint's tree and commits them
//!    ([`Engine::segment`]), so memory stays bounded however far behind the monitor is; then the
//!    checkpoint closes the run ([`Engine::checkpoint`]).
//!
//! A log that grew is checked by recomputing its root from the verified compact range and the
//! new entries, as over gRPC: no hash tile is read. Hash tiles are read only for the consistency
//! proofs the engine asks for (a checkpoint no larger than the verified one, a segment, telling a
//! fork from altered entries), and kept in the tile client's cache between polls.
//!
//! Bundles are handed over as read, not first checked against the hash tiles: the engine
//! authenticates them by the root, so altered entries are the same `root-mismatch` as over gRPC
//! (the proof computed from the tiles then tells them from a fork) and a rewritten history under
//! a new checkpoint the same `inconsistent-checkpoint`. Tiles that are missing, unreachable or
//! do not hash to their checkpoint prove nothing about the log: they are errors, retried with
//! backoff (with `--once`, exit 2 after 6 attempts). A location that is behind the verified
//! checkpoint (a lagging mirror) cannot prove its smaller checkpoint a prefix of the verified
//! one, and is retried the same way until it catches up.

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc;

use super::{send, AbortOnDrop, Chunk, End, Follower, TailItem, CHANNEL_DEPTH};
use crate::client::tiles::TileClient;
use crate::monitor::examine::Examiner;
use crate::monitor::MonitorError;
use crate::proto;
use crate::tlog::tiles::TILE_WIDTH;

/// Entries of a catch-up between two segments (a quarter of the engine's run limit; in unit
/// tests, a few chunks, so that a small log crosses several).
#[cfg(not(test))]
const SEGMENT_ENTRIES: u64 = 1 << 16;
#[cfg(test)]
const SEGMENT_ENTRIES: u64 = 2000;
/// Bundles read ahead.
const BUNDLES_IN_FLIGHT: usize = 8;

impl Follower {
    /// Polls the tiles until `--once` has caught up, a checkpoint is refused, or an error.
    pub(super) async fn poll_session(&mut self, tiles: &TileClient) -> Result<End, MonitorError> {
        loop {
            if let Some(end) = self.poll(tiles).await? {
                return Ok(end);
            }
            self.share_checkpoint().await?;
            tokio::time::sleep(self.interval).await;
        }
    }

    /// One poll (see the module documentation); `Some` when the session ends.
    async fn poll(&mut self, tiles: &TileClient) -> Result<Option<End>, MonitorError> {
        let sc = signed_checkpoint(tiles, tiles.note().await?);
        let (engine, reporter) = (&mut self.engine, &mut self.reporter);
        let verdict = tokio::task::block_in_place(|| engine.latest(sc.clone(), reporter))?;
        if let Some(end) = self.settle(verdict).await? {
            return Ok(Some(end));
        }
        if self.engine.demands_witnesses() {
            let (engine, reporter) = (&mut self.engine, &mut self.reporter);
            let verdict = tokio::task::block_in_place(|| engine.witnessed(sc.clone(), reporter))?;
            if let Some(end) = self.settle(verdict).await? {
                return Ok(Some(end));
            }
        }
        if sc.size > self.engine.state().size() {
            if let Some(end) = self.catch_up(tiles, sc).await? {
                return Ok(Some(end));
            }
        }
        Ok((self.once && self.engine.caught_up()).then_some(End::CaughtUp))
    }

    /// Reads the entries from the verified position to `sc`'s size (a checkpoint whose
    /// signature the engine verified), commits them segment by segment, and closes the run
    /// with `sc`.
    async fn catch_up(
        &mut self,
        tiles: &TileClient,
        sc: proto::SignedCheckpoint,
    ) -> Result<Option<End>, MonitorError> {
        let start = self.engine.begin_stream();
        let size = sc.size;
        let (tx, mut rx) = mpsc::channel(CHANNEL_DEPTH);
        let examiner = self.engine.examiner();
        let _reader = AbortOnDrop(tokio::spawn(read_bundles(
            tiles.clone(),
            size,
            start,
            examiner,
            tx,
        )));
        let mut segment_end = self.engine.state().size() + SEGMENT_ENTRIES;
        while let Some(item) = rx.recv().await {
            let TailItem::Entries { first, examining } = item? else {
                return Err(MonitorError::Protocol(
                    "the bundle reader sent a checkpoint".into(),
                ));
            };
            let (leaves, examined) = examining
                .await
                .map_err(|e| MonitorError::Protocol(format!("examining entries failed: {e}")))?;
            let next = first + leaves.len() as u64;
            let (engine, reporter) = (&mut self.engine, &mut self.reporter);
            tokio::task::block_in_place(|| {
                engine.examined_entries(first, &leaves, examined, reporter)
            })?;
            if next >= segment_end && next < size {
                let verdict = tokio::task::block_in_place(|| engine.segment(sc.clone(), reporter))?;
                if let Some(end) = self.settle(verdict).await? {
                    return Ok(Some(end));
                }
                segment_end = next + SEGMENT_ENTRIES;
            }
        }
        let (engine, reporter) = (&mut self.engine, &mut self.reporter);
        let verdict = tokio::task::block_in_place(|| engine.checkpoint(sc, reporter))?;
        self.settle(verdict).await
    }
}

/// The tiles' checkpoint note as the engine takes a served checkpoint: with the size and root
/// its body states, when it verifies (if it does not, the engine reports it and the fields do
/// not matter).
fn signed_checkpoint(tiles: &TileClient, note: String) -> proto::SignedCheckpoint {
    let (size, root_hash) = match tiles.verifier().verify(&note) {
        Ok(c) => (c.size, c.root.0.to_vec()),
        Err(_) => (0, Vec::new()),
    };
    proto::SignedCheckpoint {
        note,
        size,
        root_hash,
    }
}

/// Reads the bundles of the tree of `size` from index `start` on, several in flight, and sends
/// the entries in chunks, each examined on a blocking thread as it is sent (as the Tail reader
/// does). Ends after the last entry (dropping `tx`), or at the first error, which it sends.
async fn read_bundles(
    tiles: TileClient,
    size: u64,
    start: u64,
    examiner: Arc<Examiner>,
    tx: mpsc::Sender<Result<TailItem, MonitorError>>,
) {
    let mut chunk = Chunk {
        first: start,
        leaves: Vec::new(),
        bytes: 0,
    };
    let result: Result<(), MonitorError> = async {
        let mut bundles = futures::stream::iter(start / TILE_WIDTH..size.div_ceil(TILE_WIDTH))
            .map(|n| {
                let tiles = tiles.clone();
                async move { tiles.bundle(size, n).await.map(|leaves| (n, leaves)) }
            })
            .buffered(BUNDLES_IN_FLIGHT);
        while let Some(bundle) = bundles.next().await {
            let (n, leaves) = bundle?;
            for (index, leaf) in (n * TILE_WIDTH..).zip(leaves) {
                if index < start {
                    continue;
                }
                chunk.bytes += leaf.len();
                chunk.leaves.push(leaf);
                if chunk.leaves.len() >= super::CHUNK_ENTRIES || chunk.bytes >= super::CHUNK_BYTES {
                    send(&tx, chunk.take(&examiner)).await?;
                }
            }
        }
        if !chunk.leaves.is_empty() {
            send(&tx, chunk.take(&examiner)).await?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = tx.send(Err(e)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use prost::Message;

    use crate::admission::declaration::PAYLOAD_TYPE;
    use crate::admission::dsse::Envelope;
    use crate::admission::keys::{KeyType, PrivateKey};
    use crate::bucket::S3Options;
    use crate::client::tiles::testing::{flip, TiledLog};
    use crate::entry::LogEntry;
    use crate::monitor::{self, Config, ExamineOptions, Location, Summary};
    use crate::tlog::note::{LogSigner, LogVerifier};

    const TEST_TYPE: &str = "https://example.org/test/v1";

    /// A logged statement of the test type signed by `key`, integrated at `1000 + i` ms.
    fn leaf(key: &PrivateKey, i: u64, text: &str) -> Vec<u8> {
        let statement = serde_json::to_vec(&serde_json::json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "t", "digest": {"sha256": hex::encode([1u8; 32])}}],
            "predicateType": TEST_TYPE, "predicate": {"text": text}}))
        .unwrap();
        LogEntry {
            envelope: Envelope::sign(PAYLOAD_TYPE, &statement, &[key]).to_json(),
            public_keys: vec![key.public_key().to_pem()],
            integrated_time_ms: 1000 + i as i64,
        }
        .encode_to_vec()
    }

    fn grow(log: &mut TiledLog, key: &PrivateKey, to: u64, tag: &str) {
        for i in log.tree.size()..to {
            log.append(leaf(key, i, &format!("{tag} {i}")));
        }
    }

    fn config(log: &TiledLog, tiles: &Path, state: &Path) -> Config {
        Config {
            location: Location::Tiles {
                url: format!("file://{}", tiles.display()),
                s3: S3Options::default(),
                interval: Duration::from_millis(10),
            },
            verifier: LogVerifier::new(&log.signer.verifier_key()).unwrap(),
            state_path: state.to_path_buf(),
            watch: Default::default(),
            once: true,
            exec: None,
            backdate_window_ms: 7 * 86_400_000,
            examine: ExamineOptions {
                check_signatures: false,
                extra_predicate_types: vec![TEST_TYPE.into()],
            },
            split_view_state: Some(state.with_extension("split-view")),
            witness_policy: None,
        }
    }

    async fn run(config: Config) -> Summary {
        monitor::run(config, std::future::pending()).await.unwrap()
    }

    fn summary(reported: u64, blocked: bool, verified_size: u64) -> Summary {
        Summary {
            reported,
            blocked,
            verified_size,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_catch_up_crosses_segments_and_a_later_poll_resumes() {
        let tmp = tempfile::tempdir().unwrap();
        let (tiles, state) = (tmp.path().join("tiles"), tmp.path().join("state"));
        std::fs::create_dir(&tiles).unwrap();
        let key = PrivateKey::generate(KeyType::Ed25519);
        let mut log = TiledLog::new();
        grow(&mut log, &key, 7_000, "a");
        log.publish(&tiles);
        assert_eq!(
            run(config(&log, &tiles, &state)).await,
            summary(0, false, 7_000)
        );
        grow(&mut log, &key, 7_010, "a");
        log.publish(&tiles);
        assert_eq!(
            run(config(&log, &tiles, &state)).await,
            summary(0, false, 7_010)
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn altered_bundles_and_rewritten_histories_are_findings() {
        let tmp = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate(KeyType::Ed25519);
        let mut log = TiledLog::new();
        grow(&mut log, &key, 4_000, "a");
        let honest = tmp.path().join("honest");
        std::fs::create_dir(&honest).unwrap();
        log.publish(&honest);

        // An entry altered in the first segment: root-mismatch (the segment's proof from the
        // tiles fails, the one from the verified empty tree cannot tell), nothing accepted.
        let altered = tmp.path().join("altered");
        std::fs::create_dir(&altered).unwrap();
        let mut copy = TiledLog {
            signer: LogSigner::from_skey(&log.signer.to_skey()).unwrap(),
            ..TiledLog::new()
        };
        grow(&mut copy, &key, 4_000, "a");
        copy.publish(&altered);
        flip(&altered, "tile/entries/001");
        let state = tmp.path().join("altered.state");
        assert_eq!(
            run(config(&log, &altered, &state)).await,
            summary(1, true, 0)
        );

        // A monitor that verified the honest log is shown a longer history in which entry 100
        // is another: inconsistent-checkpoint, and it stays at what it verified.
        let state = tmp.path().join("honest.state");
        assert_eq!(
            run(config(&log, &honest, &state)).await,
            summary(0, false, 4_000)
        );
        let mut fork = TiledLog {
            signer: LogSigner::from_skey(&log.signer.to_skey()).unwrap(),
            ..TiledLog::new()
        };
        for (i, l) in log.leaves.iter().enumerate() {
            match i {
                100 => fork.append(leaf(&key, 100, "rewritten")),
                _ => fork.append(l.clone()),
            }
        }
        grow(&mut fork, &key, 5_000, "b");
        let forked = tmp.path().join("forked");
        std::fs::create_dir(&forked).unwrap();
        fork.publish(&forked);
        assert_eq!(
            run(config(&log, &forked, &state)).await,
            summary(1, true, 4_000)
        );
    }
}

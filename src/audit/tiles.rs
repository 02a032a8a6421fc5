//! Streams the entries `[0, size)` of a log from its entry bundles (`audit --tiles`), several
//! bundles in flight, in order, each run with the level-0 tile hashes that authenticate it.
//!
//! The bundles are handed on as read: the audit authenticates the entries itself, by recomputing
//! the root from all of them, exactly as over gRPC, so the same log gives the same findings from
//! either source. The tile hashes, authenticated against the checkpoint by
//! [`TileClient::leaf_hashes`] (which reads every tile of the tree as the audit walks it), are
//! compared with the entries' leaf hashes by the audit ([`super::Stream`]): a location whose hash
//! tiles do not fit its bundles, or its checkpoint, cannot serve the proofs its readers need, and
//! that is reported (`bad-reply`) without stopping the audit.
//!
//! A bundle that is missing or does not decode to its width of entries is a `bad-reply` that
//! stops the audit (the root can no longer be recomputed); an unreachable location is an error.
//! Memory: the bundles in flight ([`IN_FLIGHT`]) and the runs buffered.

use futures::StreamExt;
use tokio::sync::mpsc;

use super::fetch::{FetchError, Run};
use crate::client::tiles::{TileClient, TilesError};
use crate::proto;
use crate::tlog::checkpoint::Checkpoint;
use crate::tlog::tiles::TILE_WIDTH;

/// Bundles fetched at once (each with its level-0 tile).
const IN_FLIGHT: usize = 16;
/// Bundles per run: 2,048 entries, as GetEntries' largest ranges.
const BUNDLES_PER_RUN: usize = 8;
/// Runs buffered between the fetcher and the auditor.
const BUFFERED: usize = 4;

/// Starts reading the bundles of `checkpoint`'s tree (verified by the caller) on `runtime`;
/// runs arrive in order on the returned channel, which ends after the last run or after the first
/// error.
pub fn spawn(
    runtime: &tokio::runtime::Handle,
    tiles: TileClient,
    checkpoint: Checkpoint,
) -> mpsc::Receiver<Result<Run, FetchError>> {
    let (tx, rx) = mpsc::channel(BUFFERED);
    runtime.spawn(async move {
        let bundles = checkpoint.size.div_ceil(TILE_WIDTH);
        let mut runs = futures::stream::iter(0..bundles)
            .map(|n| read(&tiles, &checkpoint, n))
            .buffered(IN_FLIGHT)
            .chunks(BUNDLES_PER_RUN);
        while let Some(read) = runs.next().await {
            let run = join(read);
            let failed = run.is_err();
            if tx.send(run).await.is_err() || failed {
                break;
            }
        }
    });
    rx
}

/// Bundle `n` as entries, and its leaf hashes from authenticated tiles (or why not).
async fn read(tiles: &TileClient, checkpoint: &Checkpoint, n: u64) -> Result<Run, FetchError> {
    let first = n * TILE_WIDTH;
    let end = (first + TILE_WIDTH).min(checkpoint.size);
    let (leaves, hashes) = futures::join!(
        tiles.bundle(checkpoint.size, n),
        tiles.leaf_hashes(checkpoint, first, end)
    );
    let leaves = leaves.map_err(|e| match e {
        TilesError::Missing { .. } | TilesError::Malformed { .. } => FetchError::BadBundle(e),
        e => FetchError::Tiles(e),
    })?;
    let tile_hashes = match hashes {
        Ok(h) => Ok(h),
        Err(e @ (TilesError::Bucket(_) | TilesError::Unsettled { .. })) => {
            return Err(FetchError::Tiles(e))
        }
        Err(e) => Err(e.to_string()),
    };
    let entries = (first..)
        .zip(leaves)
        .map(|(index, leaf_data)| proto::Entry { index, leaf_data })
        .collect();
    Ok(Run {
        entries,
        tile_hashes: Some(tile_hashes),
    })
}

/// Consecutive bundles as one run; the first error instead, if any.
fn join(read: Vec<Result<Run, FetchError>>) -> Result<Run, FetchError> {
    let mut run = Run {
        entries: Vec::new(),
        tile_hashes: Some(Ok(Vec::new())),
    };
    for r in read {
        let r = r?;
        run.entries.extend(r.entries);
        run.tile_hashes = match (run.tile_hashes, r.tile_hashes) {
            (Some(Ok(mut all)), Some(Ok(h))) => {
                all.extend(h);
                Some(Ok(all))
            }
            (Some(Err(e)), _) | (_, Some(Err(e))) => Some(Err(e)),
            _ => None,
        };
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::S3Options;
    use crate::client::tiles::testing::{flip, TiledLog};
    use crate::tlog::merkle;
    use crate::tlog::note::LogVerifier;

    async fn runs(dir: &std::path::Path, log: &TiledLog) -> Vec<Result<Run, FetchError>> {
        let verifier = LogVerifier::new(&log.signer.verifier_key()).unwrap();
        let url = format!("file://{}", dir.display());
        let tiles = TileClient::open(&url, &S3Options::default(), verifier).unwrap();
        let mut rx = spawn(&tokio::runtime::Handle::current(), tiles, log.checkpoint());
        let mut out = Vec::new();
        while let Some(r) = rx.recv().await {
            out.push(r);
        }
        out
    }

    #[tokio::test]
    async fn runs_are_the_bundles_in_order_with_their_tile_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = TiledLog::new();
        log.append_n(2_100, "a");
        log.publish(dir.path());
        let got = runs(dir.path(), &log).await;
        assert_eq!(got.len(), 2);
        let mut index = 0;
        for run in got {
            let run = run.unwrap();
            let hashes = run.tile_hashes.unwrap().unwrap();
            assert_eq!(hashes.len(), run.entries.len());
            for (e, h) in run.entries.iter().zip(hashes) {
                assert_eq!(e.index, index);
                assert_eq!(e.leaf_data, log.leaves[index as usize]);
                assert_eq!(h, merkle::leaf_hash(&e.leaf_data));
                index += 1;
            }
        }
        assert_eq!(index, 2_100);

        // A damaged hash tile: the entries still come, with the reason their tiles do not.
        flip(dir.path(), "tile/0/003");
        let got = runs(dir.path(), &log).await;
        let first = got[0].as_ref().unwrap();
        let Some(Err(why)) = &first.tile_hashes else {
            panic!("the damaged tile went unnoticed")
        };
        assert!(why.contains("tile/0/003"), "{why}");
        assert!(got[1]
            .as_ref()
            .unwrap()
            .tile_hashes
            .as_ref()
            .unwrap()
            .is_ok());
        flip(dir.path(), "tile/0/003");

        // A missing bundle ends the stream with a bad reply.
        std::fs::remove_file(dir.path().join("tile/entries/005")).unwrap();
        let got = runs(dir.path(), &log).await;
        assert_eq!(got.len(), 1);
        let Err(err) = &got[0] else {
            panic!("the missing bundle went unnoticed")
        };
        assert!(
            err.is_bad_reply() && err.to_string().contains("tile/entries/005"),
            "{err}"
        );
    }
}

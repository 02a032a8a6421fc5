//! Streams the entries `[0, size)` of a log with GetEntries, several ranges in flight, in order.
//!
//! Ranges are sized so that each is about one reply (a reply holds at most 4 MiB), from the mean
//! leaf size seen so far; a short reply is continued from its last index + 1. Every reply is
//! checked to hold exactly the next indexes asked for: a server that skips, repeats or reorders
//! entries, or sends none, is reported, never silently tolerated. Memory is bounded by the
//! ranges in flight and the channel.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc;
use tonic::transport::Channel;

use crate::client::tiles::TilesError;
use crate::proto::{self, transparency_log_client::TransparencyLogClient};
use crate::tlog::merkle::Hash;

/// Ranges requested at once.
const IN_FLIGHT: usize = 4;
/// Runs of entries buffered between the fetcher and the auditor.
const BUFFERED: usize = 4;
/// The bytes one range aims at (a reply's limit is 4 MiB).
const RANGE_BYTES: u64 = 3 << 20;
/// Entries per range, at most and at least.
const MAX_RANGE: u64 = 2048;
const MIN_RANGE: u64 = 16;

/// Why the log's entries could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The rpc failed.
    #[error("GetEntries [{start}, {end}) failed: {}: {}", .status.code(), .status.message())]
    Rpc {
        start: u64,
        end: u64,
        status: tonic::Status,
    },
    /// The reply is not the entries asked for.
    #[error("GetEntries [{start}, {end}): {reason}")]
    BadReply {
        start: u64,
        end: u64,
        reason: String,
    },
    /// The tiles could not be read (the location is unreachable).
    #[error("{0}")]
    Tiles(TilesError),
    /// An entry bundle the checkpoint covers is missing, or is not the entries it should hold.
    #[error("{0}")]
    BadBundle(TilesError),
}

impl FetchError {
    /// Whether the source answered with something that is not the entries asked for (a
    /// finding), rather than not answering (an error).
    pub fn is_bad_reply(&self) -> bool {
        matches!(self, FetchError::BadReply { .. } | FetchError::BadBundle(_))
    }
}

/// One run of consecutive entries.
#[derive(Debug)]
pub struct Run {
    pub entries: Vec<proto::Entry>,
    /// Read from tiles: the level-0 tile hashes of these entries, authenticated against the
    /// checkpoint, or why they could not be. `None` over gRPC, which has no tiles.
    pub tile_hashes: Option<Result<Vec<Hash>, String>>,
}

/// Starts fetching `[0, size)` on `runtime`; runs arrive in order on the returned channel, which
/// ends after the last run or after the first error.
pub fn spawn(
    runtime: &tokio::runtime::Handle,
    rpc: TransparencyLogClient<Channel>,
    size: u64,
) -> mpsc::Receiver<Result<Run, FetchError>> {
    let (tx, rx) = mpsc::channel(BUFFERED);
    runtime.spawn(async move {
        let range = Arc::new(AtomicU64::new(256));
        let next = range.clone();
        let ranges = futures::stream::unfold(0u64, move |start| {
            let len = next.load(Ordering::Relaxed);
            let end = start.saturating_add(len).min(size);
            std::future::ready((start < size).then_some(((start, end), end)))
        });
        let mut runs = ranges
            .map(|(start, end)| {
                let fetching = fetch_range(rpc.clone(), start, end, range.clone());
                async move {
                    fetching.await.map(|entries| Run {
                        entries,
                        tile_hashes: None,
                    })
                }
            })
            .buffered(IN_FLIGHT);
        while let Some(run) = runs.next().await {
            let failed = run.is_err();
            if tx.send(run).await.is_err() || failed {
                break;
            }
        }
    });
    rx
}

/// Entries `[start, end)`, in as many requests as the server needs.
async fn fetch_range(
    mut rpc: TransparencyLogClient<Channel>,
    start: u64,
    end: u64,
    range: Arc<AtomicU64>,
) -> Result<Vec<proto::Entry>, FetchError> {
    let mut out = Vec::with_capacity((end - start) as usize);
    let mut bytes = 0u64;
    while (out.len() as u64) < end - start {
        let from = start + out.len() as u64;
        let reply = rpc
            .get_entries(proto::GetEntriesRequest { start: from, end })
            .await
            .map_err(|status| FetchError::Rpc {
                start: from,
                end,
                status,
            })?
            .into_inner();
        check_reply(&reply.entries, from, end)?;
        bytes += reply
            .entries
            .iter()
            .map(|e| e.leaf_data.len() as u64)
            .sum::<u64>();
        out.extend(reply.entries);
    }
    let mean = (bytes / (end - start).max(1)).max(1);
    range.store(
        (RANGE_BYTES / mean).clamp(MIN_RANGE, MAX_RANGE),
        Ordering::Relaxed,
    );
    Ok(out)
}

/// A reply to `[from, end)` must be a non-empty run of consecutive indexes from `from`, below
/// `end`.
fn check_reply(entries: &[proto::Entry], from: u64, end: u64) -> Result<(), FetchError> {
    let bad = |reason: String| {
        Err(FetchError::BadReply {
            start: from,
            end,
            reason,
        })
    };
    if entries.is_empty() {
        return bad(
            "the server sent no entries, though the range is below its checkpoint's size".into(),
        );
    }
    if entries.len() as u64 > end - from {
        return bad(format!(
            "the server sent {} entries for {} indexes",
            entries.len(),
            end - from
        ));
    }
    for (i, e) in entries.iter().enumerate() {
        let want = from + i as u64;
        if e.index != want {
            return bad(format!(
                "the server sent index {} where index {want} belongs",
                e.index
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(indexes: &[u64]) -> Vec<proto::Entry> {
        indexes
            .iter()
            .map(|&index| proto::Entry {
                index,
                leaf_data: vec![],
            })
            .collect()
    }

    #[test]
    fn replies_must_be_the_next_indexes() {
        assert!(check_reply(&run(&[5, 6, 7]), 5, 10).is_ok());
        assert!(check_reply(&run(&[5]), 5, 6).is_ok());
        for (bad, needle) in [
            (run(&[]), "no entries"),
            (run(&[5, 7]), "index 7 where index 6"),
            (run(&[4, 5]), "index 4 where index 5"),
            (run(&[5, 5]), "index 5 where index 6"),
            (run(&[5, 6, 7, 8, 9, 10]), "6 entries for 5"),
        ] {
            let e = check_reply(&bad, 5, 10).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }
}

//! Finding the declarations of a name in a log's tiles (`verify --tiles`), which have no search
//! index.
//!
//! Without `--entry`, every entry bundle up to the checkpoint is read and authenticated
//! ([`TileClient::entries`]: every leaf hash against the level-0 hash tile, the tiles against the
//! checkpoint's root) and every declaration of the name is kept: the entries a Search for the
//! name would return, found by the same reading of each statement
//! ([`crate::admission::logged_declaration`], what the server indexes). The cost is a download
//! of the whole log (its bundles and level-0 tiles: the log's size and about 3 % more for
//! entries of 1 KiB) and a parse of every statement, spread over all cores. In return the
//! answer proves what a Search cannot: that the log holds no other declaration of the name up to
//! that checkpoint.
//!
//! With `--entry INDEX` (repeatable) only those entries are read (a bundle and its tiles each):
//! for a user who knows where the release was logged (from `submit`'s proof bundle, a release
//! note). Later declarations are then unknown, as offline.

use futures::StreamExt;

use super::VerifyError;
use crate::admission::declaration::Name;
use crate::admission::logged_declaration;
use crate::check::{Finding, FindingKind};
use crate::client::tiles::{TileClient, TilesError};
use crate::client::ClientError;
use crate::proto;
use crate::tlog::checkpoint::Checkpoint;
use crate::tlog::tiles::TILE_WIDTH;

/// Bundles read at once.
const IN_FLIGHT: usize = 8;

/// The entries of the tiles' log that declare `name` (of the indexes `at`, if given), with the
/// checkpoint (verified) they were read under and its note. `None` after a finding that leaves
/// nothing to check: a checkpoint that does not verify, tiles or bundles that contradict it.
///
/// # Errors
/// The tiles cannot be reached.
pub async fn find(
    tiles: &TileClient,
    name: &Name,
    at: &[u64],
    findings: &mut Vec<Finding>,
) -> Result<Option<(Vec<proto::Entry>, Checkpoint, String)>, VerifyError> {
    let (checkpoint, note) = match tiles.checkpoint().await {
        Ok(c) => c,
        Err(e @ TilesError::Checkpoint { .. }) => {
            findings.push(Finding::of(
                FindingKind::BadCheckpointSignature,
                format!(
                    "the checkpoint of the tiles does not verify with the given --log-key: {e}"
                ),
            ));
            return Ok(None);
        }
        Err(e) => return Err(ClientError::from(e).into()),
    };
    let found = match at {
        [] => scan(tiles, &checkpoint, name).await,
        at => pick(tiles, &checkpoint, name, at, findings).await,
    };
    match found {
        Ok(entries) => Ok(Some((entries, checkpoint, note))),
        Err(e) if e.is_contradiction() || matches!(e, TilesError::Missing { .. }) => {
            findings.push(
                Finding::of(
                    FindingKind::BadReply,
                    format!("the tiles do not hold the log their checkpoint signs: {e}"),
                )
                .named(name.to_string()),
            );
            Ok(None)
        }
        Err(e) => Err(ClientError::from(e).into()),
    }
}

/// Every entry of `checkpoint`'s tree, authenticated, that declares `name`, in log order.
async fn scan(
    tiles: &TileClient,
    checkpoint: &Checkpoint,
    name: &Name,
) -> Result<Vec<proto::Entry>, TilesError> {
    let bundles = checkpoint.size.div_ceil(TILE_WIDTH);
    let mut read = futures::stream::iter(0..bundles)
        .map(|n| async move {
            let first = n * TILE_WIDTH;
            let end = (first + TILE_WIDTH).min(checkpoint.size);
            let leaves = tiles.entries(checkpoint, first, end).await?;
            let name = name.clone();
            // Reading statements is the scan's CPU cost: on the blocking threads, all cores.
            let matched = tokio::task::spawn_blocking(move || declaring(first, leaves, &name))
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            Ok::<_, TilesError>(matched)
        })
        .buffered(IN_FLIGHT);
    let mut found = Vec::new();
    while let Some(matched) = read.next().await {
        found.extend(matched?);
    }
    Ok(found)
}

/// The entries at `at` (authenticated) that declare `name`; a `not-found` finding for each that
/// does not, or lies beyond the checkpoint.
async fn pick(
    tiles: &TileClient,
    checkpoint: &Checkpoint,
    name: &Name,
    at: &[u64],
    findings: &mut Vec<Finding>,
) -> Result<Vec<proto::Entry>, TilesError> {
    let mut indexes = at.to_vec();
    indexes.sort_unstable();
    indexes.dedup();
    let mut found = Vec::new();
    for index in indexes {
        let not_found = |why: String| {
            Finding::of(FindingKind::NotFound, format!("--entry {index}: {why}"))
                .at(index)
                .named(name.to_string())
        };
        if index >= checkpoint.size {
            findings.push(not_found(format!(
                "the log's checkpoint has {} entries",
                checkpoint.size
            )));
            continue;
        }
        let leaf = tiles
            .entries(checkpoint, index, index + 1)
            .await?
            .pop()
            .unwrap_or_default();
        match logged_declaration(&leaf) {
            Ok(Some(d)) if d.name() == name => found.push(proto::Entry {
                index,
                leaf_data: leaf,
            }),
            Ok(Some(d)) => findings.push(not_found(format!(
                "the entry declares {}, not {name}",
                d.name()
            ))),
            _ => findings.push(not_found("the entry is not a declaration".into())),
        }
    }
    Ok(found)
}

/// The leaves from index `first` that declare `name`.
fn declaring(first: u64, leaves: Vec<Vec<u8>>, name: &Name) -> Vec<proto::Entry> {
    (first..)
        .zip(leaves)
        .filter(|(_, leaf)| matches!(logged_declaration(leaf), Ok(Some(d)) if d.name() == name))
        .map(|(index, leaf_data)| proto::Entry { index, leaf_data })
        .collect()
}

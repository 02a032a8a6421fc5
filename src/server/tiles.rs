//! The log's tiles read from storage (C2SP tlog-tiles, the format in [`crate::tlog::tiles`]):
//! which tiles the head makes public, and their bytes. Used by the HTTP face, the publisher and
//! nothing else; it knows nothing of HTTP or buckets.

use crate::server::storage::{StorageError, Store};
use crate::tlog::tiles::{encode_bundle, TileId, TileKind, TileError};

/// Why a tile could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TileReadError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A logged entry too large for a bundle (logged before the leaf limit existed).
    #[error(transparent)]
    Unbundleable(#[from] TileError),
}

/// Whether a log whose public head has `head_size` leaves serves `tile`: a full tile inside the
/// head's tree, or a partial tile of a size the log signed a checkpoint for, at or below the head
/// (C2SP tlog-tiles: "Logs MUST serve partial tiles corresponding to tree sizes for which a
/// checkpoint was produced").
///
/// # Errors
/// RocksDB read errors.
pub fn is_public(store: &Store, tile: TileId, head_size: u64) -> Result<bool, StorageError> {
    if tile.is_full() || tile.in_tree(head_size) {
        return Ok(tile.in_tree(head_size));
    }
    // The sizes whose partial tile at this level has this width: [lo, hi).
    let shift = tile.tree_level();
    let lo = tile.nodes().end << shift;
    if lo > head_size {
        return Ok(false);
    }
    let hi = u64::try_from(u128::from(tile.nodes().end + 1) << shift).unwrap_or(u64::MAX);
    Ok(store
        .checkpoint_at_or_after(lo)?
        .is_some_and(|c| c.size < hi && c.size <= head_size))
}

/// The bytes of `tile`: the concatenated hashes of a hash tile, or the encoded entry bundle.
/// The caller has checked that the tile lies below a durable size ([`is_public`]).
///
/// # Errors
/// Storage errors (a missing hash or entry is [`StorageError::Corrupt`]), or an entry that no
/// bundle can carry.
pub fn read(store: &Store, tile: TileId) -> Result<Vec<u8>, TileReadError> {
    match tile.kind {
        TileKind::Hashes { .. } => {
            let hashes = store.hashes(&tile.stored_hash_indexes())?;
            Ok(hashes.iter().flat_map(|h| h.0).collect())
        }
        TileKind::Entries => {
            let range = tile.nodes();
            let entries = store.entries(range.start, range.end, usize::MAX)?;
            if entries.len() as u64 != tile.width() {
                return Err(StorageError::Corrupt(format!(
                    "entries {range:?}: {} found",
                    entries.len()
                ))
                .into());
            }
            let leaves: Vec<&[u8]> = entries.iter().map(|(_, e)| e.as_slice()).collect();
            Ok(encode_bundle(range.start, &leaves)?)
        }
    }
}

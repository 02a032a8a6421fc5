//! The log's tiles read from storage (C2SP tlog-tiles, the format in [`crate::tlog::tiles`]):
//! which tiles the head makes public, and their bytes. Used by the HTTP face, the publisher and
//! nothing else; it knows nothing of HTTP or buckets.

use crate::server::storage::{StorageError, Store};
use crate::tlog::tiles::{encode_bundle, TileError, TileId, TileKind};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::merkle::{leaf_hash, HashReader, MemoryTree};

    /// A store holding a log of `size` leaves with signed checkpoints (unsigned notes suffice
    /// here) at `checkpoints`.
    fn log(dir: &std::path::Path, size: u64, checkpoints: &[u64]) -> Store {
        let store = Store::open(dir).unwrap();
        let mut tree = MemoryTree::new();
        let mut b = store.batch();
        for i in 0..size {
            let leaf = format!("leaf {i}").into_bytes();
            let h = leaf_hash(&leaf);
            tree.append(h).unwrap();
            b.put_entry(i, &leaf, &h, &h.0);
        }
        let all: Vec<u64> = (0..crate::tlog::merkle::stored_hash_count(size)).collect();
        for (i, h) in all.iter().zip(tree.read_hashes(&all).unwrap()) {
            b.put_hash(*i, &h);
        }
        for &c in checkpoints {
            b.put_checkpoint(c, &format!("origin\n{c}\nroot\n\n— sig\n"));
        }
        store.commit(b).unwrap();
        store
    }

    fn tile(level: u8, index: u64, width: u64) -> TileId {
        TileId::new(TileKind::Hashes { level }, index, width).unwrap()
    }

    #[test]
    fn partial_tiles_are_public_only_for_signed_sizes_at_or_below_the_head() {
        let dir = tempfile::tempdir().unwrap();
        let store = log(dir.path(), 600, &[3, 300, 520, 600]);
        assert!(is_public(&store, tile(0, 0, 3), 600).unwrap());
        assert!(
            !is_public(&store, tile(0, 0, 4), 600).unwrap(),
            "no checkpoint at 4"
        );
        assert!(
            is_public(&store, tile(0, 2, 88), 600).unwrap(),
            "the head's own partial"
        );
        assert!(is_public(&store, tile(0, 2, 8), 600).unwrap(), "size 520");
        assert!(
            !is_public(&store, tile(0, 2, 8), 519).unwrap(),
            "size 520 is beyond head 519"
        );
        assert!(is_public(&store, tile(0, 1, 256), 600).unwrap());
        assert!(
            !is_public(&store, tile(0, 2, 256), 600).unwrap(),
            "beyond the head"
        );
        // Level 1: width ⌊s/256⌋ mod 256; sizes 520 and 600 both give width 2.
        assert!(is_public(&store, tile(1, 0, 2), 600).unwrap());
        assert!(is_public(&store, tile(1, 0, 1), 600).unwrap(), "size 300");
        assert!(!is_public(&store, tile(1, 0, 3), 600).unwrap());
        let bundle = TileId::new(TileKind::Entries, 1, 44).unwrap();
        assert!(is_public(&store, bundle, 600).unwrap(), "size 300");
    }

    #[test]
    fn tile_bytes_are_the_stored_hashes_and_bundles_the_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let store = log(dir.path(), 300, &[300]);
        let t = read(&store, tile(0, 1, 44)).unwrap();
        assert_eq!(t.len(), 44 * 32);
        assert_eq!(&t[..32], &leaf_hash(b"leaf 256").0);
        let upper = read(&store, tile(1, 0, 1)).unwrap();
        let expected = crate::tlog::merkle::root_hash(256, &store).unwrap();
        assert_eq!(
            upper,
            expected.0.to_vec(),
            "a level-1 hash is a full tile's root"
        );
        let b = read(&store, TileId::new(TileKind::Entries, 0, 2).unwrap()).unwrap();
        assert_eq!(b, [&[0, 6][..], b"leaf 0", &[0, 6], b"leaf 1"].concat());
    }
}

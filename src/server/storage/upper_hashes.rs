//! The stored hashes of the tree's upper levels, kept in memory once read.
//!
//! Every proof reads hashes of the tree's upper levels. At 1,000,000 entries, 12 of an inclusion
//! proof's 20 hashes are those of complete subtrees of 256 leaves or more, and there are fewer
//! than 8,000 such subtrees; each one read from RocksDB is a point lookup in its SST files.
//!
//! A stored hash is the hash of a complete subtree (the storage layout of Go's
//! `x/mod/sumdb/tlog`, numbered by [`stored_hash_index`](crate::tlog::merkle::stored_hash_index)):
//! once committed it never changes (the store's durability contract). So a copy read from the
//! store can be served for as long as the process lives, with nothing to invalidate.
//!
//! Invariants:
//! - The cache holds only hashes read from the store, each at the stored index it was read from.
//! - It holds at most `capacity` hashes, all at or above the level `min_level`. When an insert
//!   would pass `capacity`, `min_level` rises by one and the level left below it is dropped.
//!   A tree of `n` leaves has fewer than `2n / 2^m` stored hashes at levels `m` and above, so
//!   `min_level` rises only as far as the log's size calls for: memory is bounded by `capacity`
//!   whatever the log's size, and the cache keeps the tree's highest levels.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::RwLock;

use crate::tlog::merkle::{split_stored_hash_index, Hash};

/// See the module documentation.
pub(super) struct UpperHashes {
    /// The most hashes held.
    capacity: usize,
    /// The lowest level held; a copy of [`Levels::min_level`] that readers check without the
    /// lock, to skip the hashes of lower levels before taking it.
    min_level: AtomicU8,
    levels: RwLock<Levels>,
}

struct Levels {
    /// The lowest level held.
    min_level: u8,
    /// Hashes by stored index, each with its level.
    hashes: HashMap<u64, (u8, Hash)>,
}

impl UpperHashes {
    /// An empty cache of at most `capacity` hashes (at least one).
    pub(super) fn new(capacity: usize) -> UpperHashes {
        UpperHashes {
            capacity: capacity.max(1),
            min_level: AtomicU8::new(0),
            levels: RwLock::new(Levels {
                min_level: 0,
                hashes: HashMap::new(),
            }),
        }
    }

    /// The cached hashes at stored indexes `indexes`, `None` where one is not cached.
    pub(super) fn get(&self, indexes: &[u64]) -> Vec<Option<Hash>> {
        let levels = self.levels.read().unwrap_or_else(|e| e.into_inner());
        indexes
            .iter()
            .map(|i| levels.hashes.get(i).map(|&(_, h)| h))
            .collect()
    }

    /// Keeps the hashes of `read`, `(stored index, hash)` pairs just read from the store, whose
    /// levels are held.
    pub(super) fn insert(&self, read: impl IntoIterator<Item = (u64, Hash)>) {
        let min_level = self.min_level.load(Ordering::Relaxed);
        let kept: Vec<(u64, u8, Hash)> = read
            .into_iter()
            .filter_map(|(index, hash)| {
                let (level, _) = split_stored_hash_index(index);
                (level >= min_level).then_some((index, level, hash))
            })
            .collect();
        if kept.is_empty() {
            return;
        }
        // A poisoned lock leaves a map that is still only stored hashes: keep using it.
        let mut levels = self.levels.write().unwrap_or_else(|e| e.into_inner());
        for (index, level, hash) in kept {
            while levels.hashes.len() >= self.capacity && !levels.hashes.contains_key(&index) {
                levels.min_level += 1;
                let min = levels.min_level;
                levels.hashes.retain(|_, &mut (l, _)| l >= min);
                self.min_level.store(min, Ordering::Relaxed);
            }
            if level >= levels.min_level {
                levels.hashes.insert(index, (level, hash));
            }
        }
    }

    /// The number of hashes held and the lowest level held.
    #[cfg(test)]
    fn shape(&self) -> (usize, u8) {
        let levels = self.levels.read().unwrap();
        (levels.hashes.len(), levels.min_level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::merkle::{leaf_hash, stored_hash_count, stored_hash_index};

    fn hash(i: u64) -> Hash {
        leaf_hash(&i.to_be_bytes())
    }

    #[test]
    fn returns_what_was_inserted_at_its_index() {
        let cache = UpperHashes::new(100);
        let a = stored_hash_index(3, 5);
        let b = stored_hash_index(0, 7);
        cache.insert([(a, hash(a)), (b, hash(b))]);
        assert_eq!(
            cache.get(&[a, b, a + 1]),
            vec![Some(hash(a)), Some(hash(b)), None]
        );
    }

    /// Reading every stored hash of a large tree leaves the cache full of the highest levels,
    /// within its capacity, and every hash it returns is the one inserted at that index.
    #[test]
    fn keeps_the_highest_levels_within_capacity() {
        let capacity = 1000;
        let cache = UpperHashes::new(capacity);
        let n = 1 << 16; // 131,071 stored hashes
        let all: Vec<u64> = (0..stored_hash_count(n)).collect();
        for chunk in all.chunks(64) {
            cache.insert(chunk.iter().map(|&i| (i, hash(i))));
        }
        let (held, min_level) = cache.shape();
        assert!(held <= capacity, "{held} hashes held");
        // Levels 7 and above of 2^16 leaves are 1,023 hashes, too many; 8 and above are 511.
        assert_eq!(min_level, 8);
        assert_eq!(held, 511);
        let got = cache.get(&all);
        for (&i, h) in all.iter().zip(got) {
            let (level, _) = split_stored_hash_index(i);
            assert_eq!(h, (level >= 8).then(|| hash(i)), "stored index {i}");
        }
        // Lower levels are no longer taken in.
        let low = stored_hash_index(2, 0);
        cache.insert([(low, hash(low))]);
        assert_eq!(cache.get(&[low]), vec![None]);
    }

    #[test]
    fn a_capacity_of_zero_holds_one() {
        let cache = UpperHashes::new(0);
        let a = stored_hash_index(0, 0);
        let b = stored_hash_index(1, 0);
        cache.insert([(a, hash(a)), (b, hash(b))]);
        assert_eq!(cache.get(&[a, b]), vec![None, Some(hash(b))]);
    }
}

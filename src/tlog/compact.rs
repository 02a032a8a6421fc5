//! The compact range: the right edge of a tree, enough to recompute its root from the leaves
//! that follow without storing any. What a monitor or an auditor keeps between runs.
//!
//! It is not the stored tree ([`crate::tlog::merkle`]): no stored-hash numbering, no proofs, no
//! I/O.

use super::merkle::{check_tree_size, node_hash, Hash, MerkleError, EMPTY_HASH};

/// The right edge of a tree of `size` leaves: the roots of the complete subtrees it decomposes
/// into, one per set bit of `size`, largest (leftmost) first; at most 64 hashes.
///
/// It is all a monitor or auditor needs to recompute a log's root from streamed entries without
/// storing them: [`append`](Self::append) each leaf hash in order, compare [`root`](Self::root)
/// with the checkpoint, and persist [`size`](Self::size) and [`hashes`](Self::hashes) to resume
/// later with [`from_parts`](Self::from_parts). `append` costs amortised O(1) node hashes (one on
/// average, at most 64), `root` at most 63. It holds no stored-hash numbering and does no I/O.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompactRange {
    size: u64,
    /// Invariant: `hashes.len() == size.count_ones()`.
    hashes: Vec<Hash>,
}

impl CompactRange {
    /// The right edge of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Restores a compact range saved from [`size`](Self::size) and [`hashes`](Self::hashes).
    ///
    /// # Errors
    /// [`MerkleError::TreeTooLarge`], or [`MerkleError::CompactRangeLength`] unless there is
    /// exactly one hash per set bit of `size`.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<Self, MerkleError> {
        check_tree_size(size)?;
        let want = size.count_ones() as usize;
        if hashes.len() != want {
            return Err(MerkleError::CompactRangeLength {
                size,
                got: hashes.len(),
                want,
            });
        }
        Ok(Self { size, hashes })
    }

    /// The number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The roots of the complete subtrees, largest first.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Appends the leaf with hash `leaf_hash` (see [`leaf_hash`](super::merkle::leaf_hash)): merges it with the subtrees it
    /// completes, one per trailing 1 bit of the size. (The size, at most [`MAX_TREE_SIZE`](super::merkle::MAX_TREE_SIZE) when
    /// restored, would need some 2^63 appends to overflow.)
    pub fn append(&mut self, leaf_hash: Hash) {
        let mut h = leaf_hash;
        for _ in 0..self.size.trailing_ones() {
            // One hash per trailing one, by the invariant.
            let Some(left) = self.hashes.pop() else { break };
            h = node_hash(&left, &h);
        }
        self.hashes.push(h);
        self.size += 1;
    }

    /// The root hash of the tree, `MTH(D[size])`: RFC 6962 §2.1 splits a tree into its largest
    /// complete subtree and the rest, so the root folds the edge from the smallest subtree up.
    pub fn root(&self) -> Hash {
        let mut from_right = self.hashes.iter().rev();
        match from_right.next() {
            None => EMPTY_HASH,
            Some(last) => from_right.fold(*last, |right, left| node_hash(left, &right)),
        }
    }
}

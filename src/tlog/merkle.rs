//! The Merkle tree math of RFC 6962 §2.1 (restated in RFC 9162 §2.1): leaf and node hashing,
//! the numbering of stored hashes, inclusion and consistency proofs, their verification, and the
//! compact range with which monitors recompute roots from streamed entries.
//!
//! This module is pure computation. It does no I/O: stored hashes are read through a
//! caller-supplied [`HashReader`] (the storage implements it), and it knows nothing of
//! encodings, signatures or checkpoints (see [`crate::tlog::checkpoint`]).
//!
//! # Two implementations that check each other
//!
//! Hashing, stored-hash numbering and *proving* come from `tlog_tiles`, Cloudflare's port of Go's
//! `golang.org/x/mod/sumdb/tlog`: the tree is kept as its stored hashes, every complete subtree
//! hash in Crosby–Wallach order ([`stored_hash_index`]); an append writes the hashes that
//! [`stored_hashes_for_record_hash`] returns, and a proof is assembled from at most
//! O(log n) of them.
//!
//! *Verifying* is written here, directly from the algorithms of RFC 9162 §2.1.3.2 (inclusion)
//! and §2.1.4.2 (consistency), and shares nothing with the prover but the two hash functions.
//! The unit tests check both against a literal transcription of the RFC 6962 §2.1 recursions
//! (MTH, PATH, PROOF) for every tree size up to 300 and every index and pair of sizes.
//!
//! # Validation
//!
//! Servers call these functions with sizes and indexes taken from clients, so no input makes
//! them panic: arguments are checked first and reported as a [`MerkleError`]. `tlog_tiles`
//! asserts on its preconditions and on the number of hashes a reader returns; both are checked
//! before or around every call into it. Proving and hashing from storage are limited to trees
//! of at most [`MAX_TREE_SIZE`] leaves, which keeps every stored-hash index below 2^63; the
//! verifiers accept any `u64`.

use std::cell::Cell;

use tlog_tiles::tlog;

/// The number of stored hashes of a tree of `n` leaves; `n` must not exceed [`MAX_TREE_SIZE`].
pub use tlog_tiles::tlog::stored_hash_count;
/// The storage position of the hash of node `n` at `level` (level 0 holds the leaf hashes).
/// Arguments must lie inside a tree of at most [`MAX_TREE_SIZE`] leaves (it overflows far beyond).
pub use tlog_tiles::tlog::stored_hash_index;
/// The error a [`HashReader`] returns.
pub use tlog_tiles::tlog::Error as HashReaderError;
/// A 32-byte SHA-256 hash. Displayed (and in error messages) in standard base64.
pub use tlog_tiles::tlog::Hash;
/// Read access to stored hashes, by [`stored_hash_index`]; implemented by the storage.
pub use tlog_tiles::tlog::HashReader;
/// The root of the empty tree: SHA-256 of the empty string (RFC 6962 §2.1).
pub use tlog_tiles::tlog::EMPTY_HASH;

/// The size of a hash in bytes (SHA-256).
pub const HASH_SIZE: usize = 32;
const _: () = assert!(HASH_SIZE == tlog::HASH_SIZE);

/// The largest tree that can be hashed or proven from stored hashes: 2^62 leaves. Every stored
/// hash index of such a tree is below 2^63, so the index arithmetic cannot overflow.
pub const MAX_TREE_SIZE: u64 = 1 << 62;

/// What went wrong in a proof, a verification or a read of stored hashes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MerkleError {
    /// A leaf index at or beyond the size of the tree.
    #[error("leaf index {index} is out of range for a tree of size {tree_size}")]
    IndexOutOfRange { index: u64, tree_size: u64 },
    /// A consistency proof was asked from a larger tree to a smaller one.
    #[error("from_size {from_size} is larger than to_size {to_size}")]
    SizeOrder { from_size: u64, to_size: u64 },
    /// A consistency proof from the empty tree: every tree extends it, so it proves nothing.
    #[error(
        "a consistency proof from the empty tree proves nothing; from_size must be at least 1"
    )]
    EmptyFromSize,
    /// A proof with more or fewer hashes than the index and sizes call for.
    #[error("the proof has {got} hashes, but these sizes call for exactly {want}")]
    WrongProofLength { got: usize, want: usize },
    /// The proof is well-formed but leads to another root: it does not prove the claim.
    #[error("root mismatch: expected {expected}, the proof gives {calculated}")]
    RootMismatch { expected: Hash, calculated: Hash },
    /// A hash that is not 32 bytes long.
    #[error("a hash is {HASH_SIZE} bytes, got {len}")]
    MalformedHash { len: usize },
    /// A tree larger than [`MAX_TREE_SIZE`].
    #[error("tree size {tree_size} exceeds the supported maximum of 2^62 leaves")]
    TreeTooLarge { tree_size: u64 },
    /// A compact range whose hash count does not match its size.
    #[error(
        "a compact range of size {size} has one hash per set bit of its size ({want}), got {got}"
    )]
    CompactRangeLength { size: u64, got: usize, want: usize },
    /// The [`HashReader`] failed.
    #[error("reading stored hashes: {0}")]
    Read(String),
    /// The [`HashReader`] returned a different number of hashes than it was asked for.
    #[error("the hash reader returned {got} hashes for {want} indexes")]
    ReadLength { got: usize, want: usize },
}

/// The hash of a leaf: SHA-256(0x00 || leaf_data). One SHA-256 over `1 + leaf_data.len()` bytes.
pub fn leaf_hash(leaf_data: &[u8]) -> Hash {
    tlog::record_hash(leaf_data) // SHA-256(0x00 || data)  // RFC 6962 §2.1
}

/// The hash of an interior node: SHA-256(0x01 || left || right). One SHA-256 over 65 bytes.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    tlog::node_hash(*left, *right) // SHA-256(0x01 || left || right)  // RFC 6962 §2.1
}

/// Reads a hash from bytes received from elsewhere (a client, a reply, a database).
///
/// # Errors
/// [`MerkleError::MalformedHash`] unless `b` is exactly [`HASH_SIZE`] bytes.
pub fn hash_from_slice(b: &[u8]) -> Result<Hash, MerkleError> {
    <[u8; HASH_SIZE]>::try_from(b)
        .map(Hash)
        .map_err(|_| MerkleError::MalformedHash { len: b.len() })
}

/// The root hash of the tree of the first `tree_size` leaves, `MTH(D[tree_size])` (RFC 6962 §2.1),
/// from at most 1 + log2(tree_size) stored hashes read in one call, and as many node hashes.
///
/// # Errors
/// [`MerkleError::TreeTooLarge`], or a reader failure.
pub fn root_hash<R: HashReader>(tree_size: u64, r: &R) -> Result<Hash, MerkleError> {
    check_tree_size(tree_size)?;
    with_reader(r, |r| tlog::tree_hash(tree_size, r))
}

/// The hashes to store when appending leaf number `index` (0-based) with hash `leaf_hash` to a
/// tree of `index` leaves whose stored hashes `r` reads: the leaf hash first, then the root of
/// every subtree the leaf completes. They go at consecutive positions from
/// `stored_hash_index(0, index)`. Reads up to log2(index) stored hashes and computes as many node
/// hashes; 2 hashes per append on average.
///
/// # Errors
/// [`MerkleError::TreeTooLarge`] if the tree would exceed [`MAX_TREE_SIZE`], or a reader failure.
pub fn stored_hashes_for_record_hash<R: HashReader>(
    index: u64,
    leaf_hash: Hash,
    r: &R,
) -> Result<Vec<Hash>, MerkleError> {
    check_tree_size(index.saturating_add(1))?;
    with_reader(r, |r| {
        tlog::stored_hashes_for_record_hash(index, leaf_hash, r)
    })
}

/// The inclusion proof of leaf `index` in the tree of `tree_size` leaves:
/// `PATH(index, D[tree_size])` of RFC 6962 §2.1.1, ordered from the leaf up. At most log2(tree_size) + 1 hashes
/// read in one call; no hashing when the siblings are complete subtrees.
///
/// # Errors
/// [`MerkleError::IndexOutOfRange`] (checked first), [`MerkleError::TreeTooLarge`], or a reader
/// failure.
pub fn prove_inclusion<R: HashReader>(
    index: u64,
    tree_size: u64,
    r: &R,
) -> Result<Vec<Hash>, MerkleError> {
    check_index(index, tree_size)?;
    check_tree_size(tree_size)?;
    with_reader(r, |r| tlog::prove_record(tree_size, index, r))
}

/// The consistency proof between the trees of `from_size` and `to_size` leaves:
/// `PROOF(from_size, D[to_size])` of RFC 6962 §2.1.2, ordered from the leaves up; empty when the sizes are equal.
/// O(log to_size) hashes read in one call.
///
/// # Errors
/// [`MerkleError::SizeOrder`], [`MerkleError::EmptyFromSize`], [`MerkleError::TreeTooLarge`], or
/// a reader failure.
pub fn prove_consistency<R: HashReader>(
    from_size: u64,
    to_size: u64,
    r: &R,
) -> Result<Vec<Hash>, MerkleError> {
    check_size_order(from_size, to_size)?;
    check_tree_size(to_size)?;
    with_reader(r, |r| tlog::prove_tree(to_size, from_size, r))
}

/// Checks that `proof` shows the leaf with hash `leaf_hash` at `index` in the tree of
/// `tree_size` leaves whose root is `root`, by the algorithm of RFC 9162 §2.1.3.2. At most 64
/// node hashes, whatever the proof's length. The proof must be exactly as long as the index and
/// size call for. The proof binds the leaf to the root, not the size to the root (leaf 0 has
/// paths of one shape in trees of 5 and 6 leaves): take both from one signed checkpoint.
///
/// # Errors
/// [`MerkleError::IndexOutOfRange`], [`MerkleError::WrongProofLength`], or
/// [`MerkleError::RootMismatch`].
pub fn verify_inclusion(
    index: u64,
    tree_size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    check_index(index, tree_size)?; // RFC 9162 §2.1.3.2 step 1
    let last = tree_size - 1;
    let calculated = root_from_inclusion_path(index, last, leaf_hash, proof).ok_or(
        MerkleError::WrongProofLength {
            got: proof.len(),
            want: inclusion_path_len(index, last),
        },
    )?;
    match_root(root, calculated)
}

/// Checks that `proof` shows the tree of `to_size` leaves with root `to_root` to extend the tree
/// of `from_size` leaves with root `from_root`, by the algorithm of RFC 9162 §2.1.4.2. Equal
/// sizes need an empty proof and equal roots. At most 128 node hashes, whatever the proof's
/// length. As for inclusion, each size must come from the signed checkpoint of its root.
///
/// # Errors
/// [`MerkleError::SizeOrder`], [`MerkleError::EmptyFromSize`] (even with an empty proof),
/// [`MerkleError::WrongProofLength`], or [`MerkleError::RootMismatch`] (against `from_root` or
/// `to_root`, whichever the proof fails to reproduce; for equal sizes the roots are compared).
pub fn verify_consistency(
    from_size: u64,
    to_size: u64,
    from_root: &Hash,
    to_root: &Hash,
    proof: &[Hash],
) -> Result<(), MerkleError> {
    check_size_order(from_size, to_size)?;
    if from_size == to_size {
        if !proof.is_empty() {
            return Err(MerkleError::WrongProofLength {
                got: proof.len(),
                want: 0,
            });
        }
        return match_root(to_root, *from_root);
    }
    let (fr, sr) = roots_from_consistency_proof(from_size, to_size, from_root, proof).ok_or(
        MerkleError::WrongProofLength {
            got: proof.len(),
            want: consistency_proof_len(from_size, to_size),
        },
    )?;
    match_root(from_root, fr)?;
    match_root(to_root, sr)
}

/// RFC 9162 §2.1.3.2 steps 2–5: the root implied by an inclusion path for leaf `fn_` in a tree
/// whose last leaf is `sn`, or `None` if the path is longer or shorter than that tree calls for.
fn root_from_inclusion_path(mut fn_: u64, mut sn: u64, leaf: &Hash, path: &[Hash]) -> Option<Hash> {
    let mut r = *leaf;
    for p in path {
        if sn == 0 {
            return None; // step 4a: the path goes on above the root
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r); // step 4b: p is a left sibling
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1; // skip the levels where the node has no right sibling
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p); // p is a right sibling
        }
        fn_ >>= 1; // step 4c
        sn >>= 1;
    }
    (sn == 0).then_some(r) // step 5: the path must end at the root
}

/// RFC 9162 §2.1.4.2 steps 1–7 for 0 < `first` < `second`: the old and new roots implied by a
/// consistency proof, or `None` if the proof is longer or shorter than the sizes call for.
fn roots_from_consistency_proof(
    first: u64,
    second: u64,
    first_hash: &Hash,
    proof: &[Hash],
) -> Option<(Hash, Hash)> {
    let (seed, path) = match proof.split_first() {
        None => return None,                                       // step 1
        Some(_) if first.is_power_of_two() => (first_hash, proof), // step 2: the old root is a node
        Some((c0, rest)) => (c0, rest),
    };
    let (mut fn_, mut sn) = (first - 1, second - 1); // step 3
    while fn_ & 1 == 1 {
        fn_ >>= 1; // step 4: climb to the root of the seed subtree
        sn >>= 1;
    }
    let (mut fr, mut sr) = (*seed, *seed); // step 5
    for c in path {
        if sn == 0 {
            return None; // step 6a
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr); // step 6b: c is a left sibling, in both trees
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c); // c is a right sibling, in the new tree only
        }
        fn_ >>= 1; // step 6c
        sn >>= 1;
    }
    (sn == 0).then_some((fr, sr)) // step 7 (the roots are compared by the caller)
}

/// The length of an inclusion path for leaf `fn_` in a tree whose last leaf is `sn` (the count of
/// iterations the §2.1.3.2 loop makes): one hash per level below the node where the paths to
/// `fn_` and `sn` part ("inner"), plus one per left sibling above it ("border").
fn inclusion_path_len(fn_: u64, sn: u64) -> usize {
    let inner = u64::BITS - (fn_ ^ sn).leading_zeros();
    let border = fn_.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// The length of a consistency proof for 0 < `first` < `second`: the root of the largest complete
/// subtree ending at leaf `first - 1` (omitted when it is the old root, i.e. `first` is a power of
/// two), then its inclusion path in the new tree, counted at that subtree's level.
fn consistency_proof_len(first: u64, second: u64) -> usize {
    let level = first.trailing_zeros();
    let seed = usize::from(!first.is_power_of_two());
    seed + inclusion_path_len((first - 1) >> level, (second - 1) >> level)
}

fn match_root(expected: &Hash, calculated: Hash) -> Result<(), MerkleError> {
    if calculated == *expected {
        Ok(())
    } else {
        Err(MerkleError::RootMismatch {
            expected: *expected,
            calculated,
        })
    }
}

fn check_index(index: u64, tree_size: u64) -> Result<(), MerkleError> {
    if index < tree_size {
        Ok(())
    } else {
        Err(MerkleError::IndexOutOfRange { index, tree_size })
    }
}

fn check_size_order(from_size: u64, to_size: u64) -> Result<(), MerkleError> {
    if from_size > to_size {
        return Err(MerkleError::SizeOrder { from_size, to_size });
    }
    if from_size == 0 {
        return Err(MerkleError::EmptyFromSize);
    }
    Ok(())
}

fn check_tree_size(tree_size: u64) -> Result<(), MerkleError> {
    if tree_size <= MAX_TREE_SIZE {
        Ok(())
    } else {
        Err(MerkleError::TreeTooLarge { tree_size })
    }
}

/// A [`HashReader`] that checks the hash count of every answer of the reader it wraps:
/// `tlog_tiles` asserts on it, so a miscount is recorded here and turned into
/// [`MerkleError::ReadLength`] instead.
struct CountChecked<'a, R> {
    inner: &'a R,
    miscount: Cell<Option<(usize, usize)>>,
}

impl<R: HashReader> HashReader for CountChecked<'_, R> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, HashReaderError> {
        let hashes = self.inner.read_hashes(indexes)?;
        if hashes.len() != indexes.len() {
            self.miscount.set(Some((hashes.len(), indexes.len())));
            return Err(HashReaderError::IndexesNotInTree);
        }
        Ok(hashes)
    }
}

/// Runs a `tlog_tiles` computation over `r`. Its arguments are validated by the caller, so its
/// only errors are the reader's.
fn with_reader<R: HashReader, T>(
    r: &R,
    f: impl FnOnce(&CountChecked<'_, R>) -> Result<T, HashReaderError>,
) -> Result<T, MerkleError> {
    let checked = CountChecked {
        inner: r,
        miscount: Cell::new(None),
    };
    f(&checked).map_err(|e| match checked.miscount.get() {
        Some((got, want)) => MerkleError::ReadLength { got, want },
        None => MerkleError::Read(e.to_string()),
    })
}

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

    /// Appends the leaf with hash `leaf_hash` (see [`leaf_hash`]): merges it with the subtrees it
    /// completes, one per trailing 1 bit of the size. (The size, at most [`MAX_TREE_SIZE`] when
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

/// A tree whose stored hashes are kept in a vector, numbered as the storage numbers them: for
/// tests, benchmarks and tools that need proofs over a tree they build themselves. The server
/// keeps the same hashes in RocksDB instead. Memory: about two hashes (64 bytes) per leaf.
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    hashes: Vec<Hash>,
    size: u64,
}

impl MemoryTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf (amortised two hashes) and returns its index.
    ///
    /// # Errors
    /// [`MerkleError::TreeTooLarge`] past [`MAX_TREE_SIZE`].
    pub fn append(&mut self, leaf_hash: Hash) -> Result<u64, MerkleError> {
        let index = self.size;
        let new = stored_hashes_for_record_hash(index, leaf_hash, self)?;
        self.hashes.extend(new);
        self.size += 1;
        Ok(index)
    }
}

impl HashReader for MemoryTree {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, HashReaderError> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.hashes.get(i).copied())
                    .ok_or(HashReaderError::IndexesNotInTree)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::cell::RefCell;
    use std::collections::HashMap;

    const MAX_N: usize = 300;

    /// RFC 6962 §2.1, transcribed literally over the leaf data, with its own SHA-256 calls.
    /// MTH is memoized so that the exhaustive tests stay fast in debug builds.
    struct Naive {
        leaves: Vec<Vec<u8>>,
        memo: RefCell<HashMap<(usize, usize), Hash>>,
    }

    fn sha256(parts: &[&[u8]]) -> Hash {
        let mut h = Sha256::new();
        parts.iter().for_each(|p| h.update(p));
        Hash(h.finalize().into())
    }

    /// The largest power of two smaller than n, for n > 1.
    fn split(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    impl Naive {
        fn new(n: usize) -> Self {
            let leaves = (0..n).map(leaf_data).collect();
            Naive {
                leaves,
                memo: RefCell::new(HashMap::new()),
            }
        }

        /// `MTH(D[lo:hi])`.
        fn mth(&self, lo: usize, hi: usize) -> Hash {
            match hi - lo {
                0 => sha256(&[]),
                1 => sha256(&[&[0x00], &self.leaves[lo]]),
                n => {
                    if let Some(h) = self.memo.borrow().get(&(lo, hi)) {
                        return *h;
                    }
                    let k = split(n);
                    let h = sha256(&[&[0x01], &self.mth(lo, lo + k).0, &self.mth(lo + k, hi).0]);
                    self.memo.borrow_mut().insert((lo, hi), h);
                    h
                }
            }
        }

        /// `PATH(m, D[lo:hi])`, §2.1.1.
        fn path(&self, m: usize, lo: usize, hi: usize) -> Vec<Hash> {
            let n = hi - lo;
            if n == 1 {
                return vec![];
            }
            let k = split(n);
            let (mut p, sibling) = if m < k {
                (self.path(m, lo, lo + k), self.mth(lo + k, hi))
            } else {
                (self.path(m - k, lo + k, hi), self.mth(lo, lo + k))
            };
            p.push(sibling);
            p
        }

        /// `SUBPROOF(m, D[lo:hi], b)`, §2.1.2.
        fn subproof(&self, m: usize, lo: usize, hi: usize, b: bool) -> Vec<Hash> {
            let n = hi - lo;
            if m == n {
                return if b { vec![] } else { vec![self.mth(lo, hi)] };
            }
            let k = split(n);
            let (mut p, sibling) = if m <= k {
                (self.subproof(m, lo, lo + k, b), self.mth(lo + k, hi))
            } else {
                (
                    self.subproof(m - k, lo + k, hi, false),
                    self.mth(lo, lo + k),
                )
            };
            p.push(sibling);
            p
        }

        fn leaf_hash(&self, m: usize) -> Hash {
            self.mth(m, m + 1)
        }
    }

    fn leaf_data(i: usize) -> Vec<u8> {
        format!("leaf {i}").into_bytes()
    }

    /// The stored hashes of a tree of `n` leaves, appended one leaf at a time.
    fn build(n: usize) -> MemoryTree {
        let mut tree = MemoryTree::new();
        for i in 0..n {
            tree.append(leaf_hash(&leaf_data(i))).unwrap();
            assert_eq!(stored_hash_count(i as u64 + 1), tree.hashes.len() as u64);
        }
        tree
    }

    fn flip(h: &Hash, bit: usize) -> Hash {
        let mut h = *h;
        h.0[bit / 8] ^= 1 << (bit % 8);
        h
    }

    #[test]
    fn hashes_follow_rfc6962() {
        assert_eq!(EMPTY_HASH, sha256(&[]));
        assert_eq!(leaf_hash(b"L123456"), sha256(&[&[0x00], b"L123456"]));
        let (l, r) = (leaf_hash(b"l"), leaf_hash(b"r"));
        assert_eq!(node_hash(&l, &r), sha256(&[&[0x01], &l.0, &r.0]));
        assert_ne!(node_hash(&l, &r), node_hash(&r, &l));
    }

    #[test]
    fn hash_from_slice_takes_exactly_32_bytes() {
        assert_eq!(hash_from_slice(&[7; 32]), Ok(Hash([7; 32])));
        for len in [0, 1, 31, 33, 64] {
            assert_eq!(
                hash_from_slice(&vec![0; len]),
                Err(MerkleError::MalformedHash { len })
            );
        }
    }

    #[test]
    fn roots_and_compact_ranges_match_rfc6962_for_every_size() {
        let naive = Naive::new(MAX_N);
        let store = build(MAX_N);
        let mut range = CompactRange::new();
        for n in 0..=MAX_N {
            let want = naive.mth(0, n);
            assert_eq!(root_hash(n as u64, &store).unwrap(), want, "root_hash({n})");
            assert_eq!(range.root(), want, "CompactRange root at size {n}");
            assert_eq!(range.size(), n as u64);
            assert_eq!(range.hashes().len(), n.count_ones() as usize);
            let restored = CompactRange::from_parts(range.size(), range.hashes().to_vec()).unwrap();
            assert_eq!(restored, range);
            if n < MAX_N {
                range.append(naive.leaf_hash(n));
            }
        }
    }

    #[test]
    fn inclusion_proofs_match_rfc6962_and_verify_for_every_pair() {
        let naive = Naive::new(MAX_N);
        let store = build(MAX_N);
        for n in 1..=MAX_N {
            let root = naive.mth(0, n);
            for m in 0..n {
                let proof = prove_inclusion(m as u64, n as u64, &store).unwrap();
                assert_eq!(proof, naive.path(m, 0, n), "PATH({m}, D[{n}])");
                assert_eq!(inclusion_path_len(m as u64, n as u64 - 1), proof.len());
                verify_inclusion(m as u64, n as u64, &naive.leaf_hash(m), &proof, &root).unwrap();
            }
        }
    }

    #[test]
    fn consistency_proofs_match_rfc6962_and_verify_for_every_pair() {
        let naive = Naive::new(MAX_N);
        let store = build(MAX_N);
        for n in 1..=MAX_N {
            let root = naive.mth(0, n);
            for m in 1..=n {
                let proof = prove_consistency(m as u64, n as u64, &store).unwrap();
                assert_eq!(proof, naive.subproof(m, 0, n, true), "PROOF({m}, D[{n}])");
                if m < n {
                    assert_eq!(consistency_proof_len(m as u64, n as u64), proof.len());
                }
                let old = naive.mth(0, m);
                verify_consistency(m as u64, n as u64, &old, &root, &proof).unwrap();
            }
        }
    }

    /// Sizes around powers of two, where the proofs change shape, and a few others.
    const SAMPLE_SIZES: [usize; 16] = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 63, 64, 65, 127, 300];

    fn sample_pairs() -> impl Iterator<Item = (usize, usize)> {
        SAMPLE_SIZES.into_iter().flat_map(|n| {
            let mut ms = vec![0, 1, n / 2, n.saturating_sub(2), n - 1];
            ms.retain(|&m| m < n);
            ms.dedup();
            ms.into_iter().map(move |m| (m, n))
        })
    }

    #[test]
    fn inclusion_verifier_rejects_every_alteration() {
        let naive = Naive::new(MAX_N);
        for (m, n) in sample_pairs() {
            let (leaf, root, proof) = (naive.leaf_hash(m), naive.mth(0, n), naive.path(m, 0, n));
            let (m64, n64) = (m as u64, n as u64);
            for bit in 0..256 {
                assert!(verify_inclusion(m64, n64, &flip(&leaf, bit), &proof, &root).is_err());
                assert!(verify_inclusion(m64, n64, &leaf, &proof, &flip(&root, bit)).is_err());
                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i] = flip(&bad[i], bit);
                    let result = verify_inclusion(m64, n64, &leaf, &bad, &root);
                    assert!(
                        result.is_err(),
                        "PATH({m}, D[{n}]) with bit {bit} of hash {i} flipped"
                    );
                }
            }
            let want = proof.len();
            for longer in [
                [&proof[..], &[root]].concat(),
                [&[root], &proof[..]].concat(),
            ] {
                let got = want + 1;
                let result = verify_inclusion(m64, n64, &leaf, &longer, &root);
                assert_eq!(result, Err(MerkleError::WrongProofLength { got, want }));
            }
            if let Some((_, shorter)) = proof.split_last() {
                let got = want - 1;
                let result = verify_inclusion(m64, n64, &leaf, shorter, &root);
                assert_eq!(result, Err(MerkleError::WrongProofLength { got, want }));
            }
            for other in (0..n64 + 2).chain([u64::MAX]).filter(|&o| o != m64) {
                let result = verify_inclusion(other, n64, &leaf, &proof, &root);
                assert!(
                    result.is_err(),
                    "PATH({m}, D[{n}]) accepted for index {other}"
                );
            }
            // The proof does not bind the size to a claimed root (leaf 0 has paths of the same
            // shape in trees of 5 and 6 leaves): the signed checkpoint does. Against the genuine
            // root of another size, it must fail.
            for other in [n - 1, n + 1, 2 * n]
                .into_iter()
                .filter(|&o| o != n && o <= MAX_N)
            {
                let result =
                    verify_inclusion(m64, other as u64, &leaf, &proof, &naive.mth(0, other));
                assert!(
                    result.is_err(),
                    "PATH({m}, D[{n}]) accepted for size {other}"
                );
            }
            assert!(verify_inclusion(m64, u64::MAX, &leaf, &proof, &root).is_err());
        }
    }

    #[test]
    fn consistency_verifier_rejects_every_alteration() {
        let naive = Naive::new(MAX_N);
        // Pairs (m, n) with 1 <= m < n.
        for (m, n) in sample_pairs()
            .map(|(m, n)| (m + 1, n + 1))
            .filter(|&(_, n)| n <= MAX_N)
        {
            let (old, new) = (naive.mth(0, m), naive.mth(0, n));
            let proof = naive.subproof(m, 0, n, true);
            let (m64, n64) = (m as u64, n as u64);
            for bit in 0..256 {
                assert!(verify_consistency(m64, n64, &flip(&old, bit), &new, &proof).is_err());
                assert!(verify_consistency(m64, n64, &old, &flip(&new, bit), &proof).is_err());
                for i in 0..proof.len() {
                    let mut bad = proof.clone();
                    bad[i] = flip(&bad[i], bit);
                    let result = verify_consistency(m64, n64, &old, &new, &bad);
                    assert!(
                        result.is_err(),
                        "PROOF({m}, D[{n}]) with bit {bit} of hash {i} flipped"
                    );
                }
            }
            let want = proof.len();
            for longer in [[&proof[..], &[new]].concat(), [&[old], &proof[..]].concat()] {
                let got = want + 1;
                let result = verify_consistency(m64, n64, &old, &new, &longer);
                assert_eq!(result, Err(MerkleError::WrongProofLength { got, want }));
            }
            let got = want - 1;
            let result = verify_consistency(m64, n64, &old, &new, &proof[1..]);
            assert_eq!(result, Err(MerkleError::WrongProofLength { got, want }));
            assert!(verify_consistency(n64, m64, &new, &old, &proof).is_err());
            assert!(verify_consistency(m64, n64, &new, &old, &proof).is_err());
            // As for inclusion, other sizes are checked against their genuine roots.
            for other in (0..=n).filter(|&o| o != m) {
                let result =
                    verify_consistency(other as u64, n64, &naive.mth(0, other), &new, &proof);
                assert!(
                    result.is_err(),
                    "PROOF({m}, D[{n}]) accepted from size {other}"
                );
            }
            for other in (m..=(2 * n).min(MAX_N)).filter(|&o| o != n) {
                let result =
                    verify_consistency(m64, other as u64, &old, &naive.mth(0, other), &proof);
                assert!(
                    result.is_err(),
                    "PROOF({m}, D[{n}]) accepted to size {other}"
                );
            }
            assert!(verify_consistency(m64, u64::MAX, &old, &new, &proof).is_err());
        }
    }

    #[test]
    fn arguments_are_checked_before_any_work() {
        let store = build(8);
        let h = leaf_hash(b"");
        let out_of_range =
            |index, tree_size| Err(MerkleError::IndexOutOfRange { index, tree_size });
        let out_of_range_v = |index, tree_size| out_of_range(index, tree_size).map(|()| vec![]);
        assert_eq!(prove_inclusion(8, 8, &store), out_of_range_v(8, 8));
        assert_eq!(prove_inclusion(0, 0, &store), out_of_range_v(0, 0));
        assert_eq!(
            verify_inclusion(u64::MAX, 1, &h, &[], &h),
            out_of_range(u64::MAX, 1)
        );
        assert_eq!(
            verify_inclusion(0, 0, &h, &[], &EMPTY_HASH),
            out_of_range(0, 0)
        );

        let order = Err(MerkleError::SizeOrder {
            from_size: 2,
            to_size: 1,
        });
        assert_eq!(prove_consistency(2, 1, &store), order);
        assert_eq!(
            verify_consistency(2, 1, &h, &h, &[]),
            order.map(|_: Vec<Hash>| ())
        );
        for to in [0, 1, 8] {
            assert_eq!(
                prove_consistency(0, to, &store),
                Err(MerkleError::EmptyFromSize)
            );
            let empty = verify_consistency(0, to, &EMPTY_HASH, &EMPTY_HASH, &[]);
            assert_eq!(empty, Err(MerkleError::EmptyFromSize));
        }
        assert_eq!(prove_consistency(5, 5, &store), Ok(vec![]));
        assert_eq!(
            verify_consistency(5, 5, &h, &h, &[h]),
            Err(MerkleError::WrongProofLength { got: 1, want: 0 })
        );
        let other = leaf_hash(b"other");
        assert_eq!(
            verify_consistency(5, 5, &h, &other, &[]),
            Err(MerkleError::RootMismatch {
                expected: other,
                calculated: h
            })
        );

        let too_large = |tree_size| MerkleError::TreeTooLarge { tree_size };
        let max = MAX_TREE_SIZE + 1;
        assert_eq!(root_hash(max, &store), Err(too_large(max)));
        assert_eq!(
            prove_inclusion(0, u64::MAX, &store),
            Err(too_large(u64::MAX))
        );
        assert_eq!(
            prove_consistency(1, u64::MAX, &store),
            Err(too_large(u64::MAX))
        );
        let append = stored_hashes_for_record_hash(u64::MAX, h, &store);
        assert_eq!(append, Err(too_large(u64::MAX)));
    }

    #[test]
    fn verifiers_take_any_u64_without_panicking() {
        let h = leaf_hash(b"");
        let long = vec![h; 200];
        for size in [
            u64::MAX,
            u64::MAX - 1,
            1 << 63,
            (1 << 63) + 1,
            MAX_TREE_SIZE + 1,
        ] {
            for index in [0, 1, size / 2, size - 2, size - 1] {
                let want = inclusion_path_len(index, size - 1);
                assert!(want <= 128);
                let proof = &long[..want];
                assert!(matches!(
                    verify_inclusion(index, size, &h, proof, &h),
                    Err(MerkleError::RootMismatch { .. })
                ));
                assert!(matches!(
                    verify_inclusion(index, size, &h, &long, &h),
                    Err(MerkleError::WrongProofLength { got: 200, .. })
                ));
                let from = index.max(1);
                if from < size {
                    let want = consistency_proof_len(from, size);
                    assert!(matches!(
                        verify_consistency(from, size, &h, &h, &long[..want]),
                        Err(MerkleError::RootMismatch { .. })
                    ));
                    assert!(verify_consistency(from, size, &h, &h, &long).is_err());
                }
            }
        }
    }

    struct ShortReader;

    impl HashReader for ShortReader {
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, HashReaderError> {
            Ok(vec![EMPTY_HASH; indexes.len().saturating_sub(1)])
        }
    }

    struct FailingReader;

    impl HashReader for FailingReader {
        fn read_hashes(&self, _: &[u64]) -> Result<Vec<Hash>, HashReaderError> {
            Err(HashReaderError::InvalidInput("disk on fire".into()))
        }
    }

    #[test]
    fn reader_failures_are_errors_not_panics() {
        let short = |want| MerkleError::ReadLength {
            got: want - 1,
            want,
        };
        assert_eq!(root_hash(7, &ShortReader), Err(short(3)));
        assert_eq!(prove_inclusion(0, 8, &ShortReader), Err(short(3)));
        assert_eq!(prove_consistency(3, 8, &ShortReader), Err(short(4)));
        let append = stored_hashes_for_record_hash(7, EMPTY_HASH, &ShortReader);
        assert_eq!(append, Err(short(3)));
        let failed = root_hash(7, &FailingReader).unwrap_err();
        assert_eq!(
            failed,
            MerkleError::Read("unmet input condition: disk on fire".into())
        );
        assert!(failed.to_string().contains("disk on fire"));
        let out_of_range = MerkleError::IndexOutOfRange {
            index: 3,
            tree_size: 3,
        };
        assert_eq!(prove_inclusion(3, 3, &FailingReader), Err(out_of_range));
    }

    #[test]
    fn compact_range_from_parts_checks_the_hash_count() {
        let h = leaf_hash(b"");
        assert_eq!(CompactRange::from_parts(0, vec![]), Ok(CompactRange::new()));
        assert_eq!(
            CompactRange::from_parts(5, vec![h]),
            Err(MerkleError::CompactRangeLength {
                size: 5,
                got: 1,
                want: 2
            })
        );
        assert_eq!(
            CompactRange::from_parts(u64::MAX, vec![h; 64]),
            Err(MerkleError::TreeTooLarge {
                tree_size: u64::MAX
            })
        );
        let mut big = CompactRange::from_parts(MAX_TREE_SIZE - 1, vec![h; 62]).unwrap();
        big.append(h);
        assert_eq!((big.size(), big.hashes().len()), (MAX_TREE_SIZE, 1));
    }
}

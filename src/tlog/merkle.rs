//! The Merkle tree of RFC 6962 §2.1 (restated in RFC 9162 §2.1) as the log stores it: leaf and
//! node hashing, the numbering of stored hashes, the tree hash, and proving inclusion and
//! consistency from stored hashes; [`MemoryTree`] keeps a tree's stored hashes in memory.
//!
//! It is not the verifiers (that is [`crate::tlog::proof`], which shares nothing with the prover
//! but the two hash functions) nor the compact range a monitor keeps
//! ([`crate::tlog::compact`]). It does no I/O: stored hashes are read through a caller-supplied
//! [`HashReader`] (the storage implements it), and it knows nothing of encodings, signatures or
//! checkpoints (see [`crate::tlog::checkpoint`]).
//!
//! Hashing, stored-hash numbering and proving come from `tlog_tiles`, Cloudflare's port of Go's
//! `golang.org/x/mod/sumdb/tlog`: the tree is kept as its stored hashes, every complete subtree
//! hash in Crosby–Wallach order ([`stored_hash_index`]); an append writes the hashes that
//! [`stored_hashes_for_record_hash`] returns, and a proof is assembled from at most
//! O(log n) of them. The unit tests ([`crate::tlog`]'s) check them against a literal
//! transcription of the RFC 6962 §2.1 recursions (MTH, PATH, PROOF) for every tree size up to
//! 300 and every index and pair of sizes.
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

/// The `(level, n)` whose [`stored_hash_index`] is `index`: its inverse.
pub use tlog_tiles::tlog::split_stored_hash_index;
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
pub(crate) fn check_index(index: u64, tree_size: u64) -> Result<(), MerkleError> {
    if index < tree_size {
        Ok(())
    } else {
        Err(MerkleError::IndexOutOfRange { index, tree_size })
    }
}

pub(crate) fn check_size_order(from_size: u64, to_size: u64) -> Result<(), MerkleError> {
    if from_size > to_size {
        return Err(MerkleError::SizeOrder { from_size, to_size });
    }
    if from_size == 0 {
        return Err(MerkleError::EmptyFromSize);
    }
    Ok(())
}

pub(crate) fn check_tree_size(tree_size: u64) -> Result<(), MerkleError> {
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

/// A tree whose stored hashes are kept in a vector, numbered as the storage numbers them: for
/// tests, benchmarks and tools that need proofs over a tree they build themselves. The server
/// keeps the same hashes in RocksDB instead. Memory: about two hashes (64 bytes) per leaf.
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    /// The stored hashes, at their [`stored_hash_index`] positions.
    pub(super) hashes: Vec<Hash>,
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

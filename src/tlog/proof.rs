//! Verifying inclusion and consistency proofs, written directly from the algorithms of RFC 9162
//! §2.1.3.2 (inclusion) and §2.1.4.2 (consistency). What a client, a monitor or an auditor
//! runs on a proof the log served.
//!
//! It is not the prover ([`crate::tlog::merkle`], from `tlog_tiles`): the two share nothing but
//! the hash functions, so that each checks the other; the unit tests check both against a literal
//! transcription of the RFC 6962 §2.1 recursions. The verifiers take any `u64` without panicking
//! and read nothing but their arguments.

use super::merkle::{check_index, check_size_order, node_hash, Hash, MerkleError};

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
pub(super) fn inclusion_path_len(fn_: u64, sn: u64) -> usize {
    let inner = u64::BITS - (fn_ ^ sn).leading_zeros();
    let border = fn_.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// The length of a consistency proof for 0 < `first` < `second`: the root of the largest complete
/// subtree ending at leaf `first - 1` (omitted when it is the old root, i.e. `first` is a power of
/// two), then its inclusion path in the new tree, counted at that subtree's level.
pub(super) fn consistency_proof_len(first: u64, second: u64) -> usize {
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

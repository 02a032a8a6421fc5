//! Tests of the Merkle math as a whole: the prover ([`super::merkle`]), the verifiers
//! ([`super::proof`]) and the compact range ([`super::compact`]) against a literal, slow
//! transcription of RFC 6962 §2.1 (MTH, PATH, PROOF), for every tree size up to 300.

use super::compact::CompactRange;
use super::merkle::*;
use super::proof::{
    consistency_proof_len, inclusion_path_len, verify_consistency, verify_inclusion,
};
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
            let result = verify_inclusion(m64, other as u64, &leaf, &proof, &naive.mth(0, other));
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
            let result = verify_consistency(other as u64, n64, &naive.mth(0, other), &new, &proof);
            assert!(
                result.is_err(),
                "PROOF({m}, D[{n}]) accepted from size {other}"
            );
        }
        for other in (m..=(2 * n).min(MAX_N)).filter(|&o| o != n) {
            let result = verify_consistency(m64, other as u64, &old, &naive.mth(0, other), &proof);
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
    let out_of_range = |index, tree_size| Err(MerkleError::IndexOutOfRange { index, tree_size });
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

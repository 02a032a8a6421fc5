//! Inclusion and consistency proof verification (`tlog::proof`, RFC 9162 §2.1.3.2 and
//! §2.1.4.2), on proofs of a real tree of up to 512 leaves that the fuzz input then damages:
//! hashes flipped, proofs cut or lengthened, indexes and sizes moved.
//!
//! Oracles: an undamaged proof verifies; damaged or not, glasslog's verifier and `tlog_tiles`'
//! (Go's `sumdb/tlog` algorithm, an independent implementation) agree on every verdict.
#![no_main]

use glasslog::tlog::merkle::{leaf_hash, prove_consistency, prove_inclusion, root_hash, Hash, MemoryTree};
use glasslog::tlog::proof::{verify_consistency, verify_inclusion};
use libfuzzer_sys::fuzz_target;
use tlog_tiles::tlog;

fn u16_at(data: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes([data[at], data[at + 1]]))
}

/// Applies the damage described by `ops` (3 bytes each) to a proof and its parameters.
fn damage(ops: &[u8], proof: &mut Vec<Hash>, a: &mut u64, b: &mut u64, root: &mut Hash) {
    for op in ops.chunks_exact(3) {
        let (kind, at, bit) = (op[0] % 7, usize::from(op[1]), op[2]);
        match kind {
            0 if !proof.is_empty() => {
                let i = at % proof.len();
                proof[i].0[usize::from(bit) % 32] ^= 1 << (bit % 8);
            }
            1 => {
                proof.truncate(at % (proof.len() + 1));
            }
            2 => proof.push(Hash([bit; 32])),
            3 => *a = a.wrapping_add(u64::from(bit)).wrapping_sub(128),
            4 => *b = b.wrapping_add(u64::from(bit)).wrapping_sub(128),
            5 => root.0[at % 32] ^= 1 << (bit % 8),
            _ if proof.len() > 1 => {
                let len = proof.len();
                proof.swap(at % len, usize::from(bit) % len);
            }
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let size = 1 + u16_at(data, 0) % 512;
    let index = u16_at(data, 2) % size;
    let from = 1 + u16_at(data, 4) % size;
    let ops = &data[6..];

    let mut tree = MemoryTree::new();
    for i in 0..size {
        tree.append(leaf_hash(&i.to_be_bytes())).expect("a small tree");
    }
    let root = root_hash(size, &tree).expect("root");
    let from_root = root_hash(from, &tree).expect("old root");
    let leaf = leaf_hash(&index.to_be_bytes());

    let mut path = prove_inclusion(index, size, &tree).expect("inclusion proof");
    verify_inclusion(index, size, &leaf, &path, &root).expect("an undamaged inclusion proof");
    let (mut i, mut n, mut r) = (index, size, root);
    damage(ops, &mut path, &mut i, &mut n, &mut r);
    let ours = verify_inclusion(i, n, &leaf, &path, &r).is_ok();
    let theirs = tlog::check_record(&path, n, r, i, leaf).is_ok();
    assert_eq!(ours, theirs, "inclusion of {i} in {n} with {} hashes", path.len());

    let mut proof = prove_consistency(from, size, &tree).expect("consistency proof");
    verify_consistency(from, size, &from_root, &root, &proof).expect("an undamaged consistency proof");
    let (mut m, mut n, mut r) = (from, size, root);
    damage(ops, &mut proof, &mut m, &mut n, &mut r);
    let ours = verify_consistency(m, n, &from_root, &r, &proof).is_ok();
    let theirs = tlog::check_tree(&proof, n, r, m, from_root).is_ok();
    assert_eq!(ours, theirs, "consistency {m} -> {n} with {} hashes", proof.len());
});

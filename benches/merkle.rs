//! Benchmarks of `glasslog::tlog::merkle`: leaf hashing, the stored hashes of an append, proving over an
//! in-memory tree of 1,000,000 leaves (built once), verifying, and a monitor's compact range.
//! In memory only, so these measure the math, not the storage. About 30 s in all:
//! `cargo bench --bench merkle`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use glasslog::tlog::compact::CompactRange;
use glasslog::tlog::merkle::{
    leaf_hash, prove_consistency, prove_inclusion, root_hash, stored_hashes_for_record_hash, Hash,
    MemoryTree,
};
use glasslog::tlog::proof::{verify_consistency, verify_inclusion};

const TREE_SIZE: u64 = 1_000_000;

fn leaf(i: u64) -> Hash {
    leaf_hash(&i.to_be_bytes())
}

fn build(n: u64) -> MemoryTree {
    let mut tree = MemoryTree::new();
    for i in 0..n {
        tree.append(leaf(i)).expect("in-memory append");
    }
    tree
}

/// Visits 0..n in a scattered order (a stride coprime with 10^6), so that successive iterations
/// neither repeat one proof shape nor stay in the cache.
struct Scatter(u64);

impl Scatter {
    fn next(&mut self) -> u64 {
        self.0 = (self.0 + 618_033) % TREE_SIZE;
        self.0
    }
}

fn hashing(c: &mut Criterion) {
    let data = vec![0xa5; 1024];
    let mut g = c.benchmark_group("leaf_hash");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("1KiB", |b| b.iter(|| leaf_hash(black_box(&data))));
    g.finish();
}

fn compact_range(c: &mut Criterion) {
    let mut range = CompactRange::new();
    let h = leaf(0);
    c.bench_function("compact_range/append", |b| {
        b.iter(|| range.append(black_box(h)))
    });
    c.bench_function("compact_range/root", |b| {
        b.iter(|| black_box(&range).root())
    });
}

fn tree(c: &mut Criterion) {
    let store = build(TREE_SIZE);
    let root = root_hash(TREE_SIZE, &store).expect("root");
    let mut at = Scatter(0);

    c.bench_function("stored_hashes_for_record_hash/1M", |b| {
        b.iter(|| {
            let n = at.next();
            stored_hashes_for_record_hash(n, leaf(n), &store).expect("append")
        })
    });
    c.bench_function("root_hash/1M", |b| {
        b.iter(|| root_hash(TREE_SIZE, &store).expect("root"))
    });
    c.bench_function("prove_inclusion/1M", |b| {
        b.iter(|| prove_inclusion(at.next(), TREE_SIZE, &store).expect("proof"))
    });
    c.bench_function("prove_consistency/1M", |b| {
        b.iter(|| prove_consistency(at.next() + 1, TREE_SIZE, &store).expect("proof"))
    });

    let inclusions: Vec<(u64, Hash, Vec<Hash>)> = (0..1024)
        .map(|_| at.next())
        .map(|i| {
            (
                i,
                leaf(i),
                prove_inclusion(i, TREE_SIZE, &store).expect("proof"),
            )
        })
        .collect();
    let mut k = 0;
    c.bench_function("verify_inclusion/1M", |b| {
        b.iter(|| {
            k = (k + 1) % inclusions.len();
            let (i, leaf, proof) = &inclusions[k];
            verify_inclusion(*i, TREE_SIZE, leaf, proof, &root).expect("valid")
        })
    });

    let consistencies: Vec<(u64, Hash, Vec<Hash>)> = (0..1024)
        .map(|_| at.next() + 1)
        .map(|m| {
            let old = root_hash(m, &store).expect("root");
            (
                m,
                old,
                prove_consistency(m, TREE_SIZE, &store).expect("proof"),
            )
        })
        .collect();
    c.bench_function("verify_consistency/1M", |b| {
        b.iter(|| {
            k = (k + 1) % consistencies.len();
            let (m, old, proof) = &consistencies[k];
            verify_consistency(*m, TREE_SIZE, old, &root, proof).expect("valid")
        })
    });
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = hashing, compact_range, tree
}
criterion_main!(benches);

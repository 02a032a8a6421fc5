//! Throughput of `glasslog::admission::manifest::hash_directory` on (a) 2 GiB in 8 files of 256 MiB and
//! (b) 10,000 small files (1 to 16 KiB, 100 directories), in release mode:
//! `cargo bench --bench manifest`.
//!
//! Each set is measured twice: wall-clock time (`…/wall`), and the process's CPU time, user plus
//! system, from `getrusage` (`…/cpu`): on a shared machine the second shows the cost per core
//! without the waiting for other processes. Throughput of `cpu` is bytes per CPU-second (up to
//! two per wall-second on two cores).
//!
//! The data is written once, before measuring, so it is in the page cache when hashed: this
//! measures hashing and the walk, not the disk. It goes to a temporary directory removed at
//! the end, or, if `GLASSLOG_MANIFEST_BENCH_DIR` is set, to that directory, kept (and reused
//! when present) so that other tools can be timed on the same files.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use glasslog::admission::manifest::{hash_directory, HashOptions};

const LARGE_FILES: usize = 8;
const LARGE_FILE_SIZE: usize = 256 << 20;
const SMALL_FILES: usize = 10_000;

/// Deterministic filler (xorshift64*), fast enough that writing 2 GiB takes seconds.
fn fill(buf: &mut [u8], seed: u64) {
    let mut x = seed | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

fn make_large(dir: &Path) -> u64 {
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..LARGE_FILES {
        let path = dir.join(format!(
            "model-{:05}-of-{LARGE_FILES:05}.safetensors",
            i + 1
        ));
        if fs::metadata(&path).ok().map(|m| m.len()) == Some(LARGE_FILE_SIZE as u64) {
            continue;
        }
        let mut f = fs::File::create(&path).unwrap();
        for j in 0..LARGE_FILE_SIZE / buf.len() {
            fill(&mut buf, (i * 1_000_003 + j) as u64);
            f.write_all(&buf).unwrap();
        }
    }
    (LARGE_FILES * LARGE_FILE_SIZE) as u64
}

fn make_small(dir: &Path) -> u64 {
    let mut total = 0;
    let mut buf = vec![0u8; 16 << 10];
    for i in 0..SMALL_FILES {
        let size = 1024 + (i * 7919) % (15 << 10);
        total += size as u64;
        let sub = dir.join(format!("shard-{:03}", i % 100));
        let path = sub.join(format!("sample-{i:05}.json"));
        if fs::metadata(&path).ok().map(|m| m.len()) == Some(size as u64) {
            continue;
        }
        fs::create_dir_all(&sub).unwrap();
        fill(&mut buf[..size], i as u64);
        fs::write(&path, &buf[..size]).unwrap();
    }
    total
}

/// This process's CPU time so far (user + system), all threads.
fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let usage = unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()), 0);
        usage.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn bench(c: &mut Criterion) {
    let (_temp, base): (Option<tempfile::TempDir>, PathBuf) =
        match std::env::var_os("GLASSLOG_MANIFEST_BENCH_DIR") {
            Some(dir) => (None, PathBuf::from(dir)),
            None => {
                let t = tempfile::tempdir().unwrap();
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
    let large = base.join("large");
    let small = base.join("small");
    fs::create_dir_all(&large).unwrap();
    fs::create_dir_all(&small).unwrap();
    let large_bytes = make_large(&large);
    let small_bytes = make_small(&small);
    let opts = HashOptions::default();

    let mut g = c.benchmark_group("hash_directory");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    for (name, dir, bytes) in [
        ("2GiB_in_8_files", &large, large_bytes),
        ("10000_small_files", &small, small_bytes),
    ] {
        g.throughput(Throughput::Bytes(bytes));
        g.bench_function(format!("{name}/wall"), |b| {
            b.iter(|| hash_directory(dir, &opts, None).unwrap())
        });
        g.bench_function(format!("{name}/cpu"), |b| {
            b.iter_custom(|iters| {
                let start = cpu_time();
                for _ in 0..iters {
                    std::hint::black_box(hash_directory(dir, &opts, None).unwrap());
                }
                cpu_time() - start
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

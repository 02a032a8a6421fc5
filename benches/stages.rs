//! The CPU cost of each stage of a Submit, measured one stage at a time, so that the load
//! generator's end-to-end figures can be split into where the time goes:
//! envelope JSON parsing, key parsing, signature verification, declaration admission, leaf
//! encoding and hashing, checkpoint
//! signing, the client's verification, and a synced RocksDB commit (which also gives the disk's
//! fsync latency). `cargo bench --bench stages`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use glasslog::admission::declaration;
use glasslog::admission::dsse::{self, Envelope};
use glasslog::admission::keys::{KeyType, PrivateKey, PublicKey};
use glasslog::entry::PendingEntry;
use glasslog::server::storage::Store;
use glasslog::tlog::checkpoint::{Checkpoint, Origin};
use glasslog::tlog::compact::CompactRange;
use glasslog::tlog::merkle;
use glasslog::tlog::note::{LogSigner, LogVerifier};

/// A signed envelope of about 1 KiB, as the load generator makes them.
fn envelope(key: &PrivateKey, n: u64) -> Vec<u8> {
    let payload = format!(
        r#"{{"bench":"stages","n":{n},"filler":"{}"}}"#,
        "x".repeat(620)
    );
    Envelope::sign(
        "application/vnd.glasslog.bench+json",
        payload.as_bytes(),
        &[key],
    )
    .to_json()
}

fn stages(c: &mut Criterion) {
    let key = PrivateKey::generate(KeyType::Ed25519);
    let pem = key.public_key().to_pem();
    let json = envelope(&key, 1);
    assert!(
        (900..1200).contains(&json.len()),
        "envelope is {} bytes",
        json.len()
    );
    let parsed = Envelope::parse(&json).unwrap();
    let public = PublicKey::from_pem(&pem).unwrap();
    let verified = dsse::verify(parsed.clone(), &[public.clone()]).unwrap();
    let key_ids = [public.key_id()];
    let pending = PendingEntry {
        envelope: json.clone(),
        public_keys: vec![pem.clone()],
        dedup_key: glasslog::entry::dedup_key(
            &verified.envelope.payload_type,
            &verified.envelope.payload,
            &key_ids,
        ),
        search_prefixes: glasslog::server::search::index_prefixes(None, &key_ids),
    };

    let mut g = c.benchmark_group("submit-stages");
    g.sample_size(30)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    g.bench_function("json: parse 1 KiB envelope", |b| {
        b.iter(|| Envelope::parse(black_box(&json)).unwrap())
    });
    g.bench_function("keys: parse PEM public key", |b| {
        b.iter(|| PublicKey::from_pem(black_box(&pem)).unwrap())
    });
    g.bench_function("signature: verify Ed25519 DSSE", |b| {
        b.iter(|| dsse::verify(black_box(parsed.clone()), std::slice::from_ref(&public)).unwrap())
    });
    let p256 = PrivateKey::generate(KeyType::P256);
    let p256_parsed = Envelope::parse(&envelope(&p256, 2)).unwrap();
    let p256_public = p256.public_key();
    g.bench_function("signature: verify P-256 DSSE", |b| {
        b.iter(|| {
            dsse::verify(
                black_box(p256_parsed.clone()),
                std::slice::from_ref(&p256_public),
            )
            .unwrap()
        })
    });
    let statement = include_bytes!("../tests/data/declarations/model-release.json");
    g.bench_function("admission: validate model-release statement", |b| {
        b.iter(|| {
            declaration::validate_envelope_payload(
                declaration::PAYLOAD_TYPE,
                black_box(statement),
                &[],
            )
            .unwrap()
        })
    });
    g.bench_function("hashing: encode leaf + leaf hash + compact append", |b| {
        let mut range = CompactRange::new();
        b.iter(|| {
            let leaf = pending.encode_leaf(1_700_000_000_000);
            range.append(merkle::leaf_hash(&leaf));
        })
    });
    let signer = LogSigner::generate(&Origin::new("bench.glasslog.dev/log").unwrap());
    let verifier = LogVerifier::new(&signer.verifier_key()).unwrap();
    let checkpoint = Checkpoint {
        origin: signer.origin().to_string(),
        size: 1_000_000,
        root: merkle::leaf_hash(b"r"),
    };
    g.bench_function("checkpoint: sign note", |b| {
        b.iter(|| signer.sign(black_box(&checkpoint)).unwrap())
    });
    let note = signer.sign(&checkpoint).unwrap();
    g.bench_function("client: verify note", |b| {
        b.iter(|| verifier.verify(black_box(&note)).unwrap())
    });
    g.finish();
}

fn rocksdb(c: &mut Criterion) {
    let dir =
        tempfile::tempdir_in(std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| ".".into()))
            .unwrap();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let leaf = vec![7u8; 1100];
    let mut g = c.benchmark_group("rocksdb");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for batch in [1u64, 64] {
        let mut next = 0u64;
        g.bench_function(format!("synced commit of {batch} entries"), |b| {
            b.iter(|| {
                let mut wb = store.batch();
                for _ in 0..batch {
                    let h = merkle::leaf_hash(&next.to_be_bytes());
                    wb.put_entry(next, &leaf, &h, &h.0);
                    wb.put_hash(2 * next, &h);
                    wb.put_hash(2 * next + 1, &h);
                    next += 1;
                }
                wb.put_checkpoint(next, "note");
                store.commit(wb).unwrap();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, stages, rocksdb);
criterion_main!(benches);

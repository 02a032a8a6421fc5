//! The CPU cost of each stage of a Submit, measured one stage at a time, so that the load
//! generator's end-to-end figures can be split into where the time goes:
//! envelope JSON parsing, key parsing, signature verification, declaration admission, leaf
//! encoding and hashing, checkpoint
//! signing, the client's verification, and a synced RocksDB commit (which also gives the disk's
//! fsync latency). `cargo bench --bench stages`.
//!
//! The group `signature-choices` measures the implementations considered for the signature
//! check (issue #13, `docs/performance.md`): ed25519-dalek's strict and plain checks and
//! AWS-LC's Ed25519 against the check glasslog uses, and P-256 in the `p256` crate against
//! AWS-LC. Batch verification is measured apart (`benches/ed25519-batch`), since it needs a
//! feature the server does not.

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
    let verified = dsse::verify(parsed.clone(), &[public]).unwrap();
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

/// Per-signature costs of the signature-check implementations weighed in `docs/performance.md`.
fn signature_choices(c: &mut Criterion) {
    use ed25519_dalek::{Signer as _, SigningKey, Verifier as _};
    let msg = vec![7u8; 1300];
    let mut g = c.benchmark_group("signature-choices");
    g.sample_size(20)
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    let key = SigningKey::from_bytes(&[1; 32]);
    let (vk, sig) = (key.verifying_key(), key.sign(&msg));
    g.bench_function("ed25519-dalek verify_strict", |b| {
        b.iter(|| vk.verify_strict(black_box(&msg), &sig).unwrap())
    });
    g.bench_function("ed25519-dalek verify (plain)", |b| {
        b.iter(|| vk.verify(black_box(&msg), &sig).unwrap())
    });
    let aws = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ED25519,
        vk.as_bytes().to_vec(),
    );
    let sig_bytes = sig.to_bytes();
    g.bench_function("AWS-LC Ed25519 verify", |b| {
        b.iter(|| aws.verify(black_box(&msg), &sig_bytes).unwrap())
    });
    let ours = PublicKey::from_der(&[&ED25519_SPKI_PREFIX[..], vk.as_bytes()].concat()).unwrap();
    g.bench_function("glasslog Ed25519 check (= verify_strict)", |b| {
        b.iter(|| ours.verify(black_box(&msg), &sig.to_bytes()).unwrap())
    });
    let p256 = p256::ecdsa::SigningKey::from_bytes(&[9u8; 32].into()).unwrap();
    let p256_sig: p256::ecdsa::Signature = p256::ecdsa::signature::Signer::sign(&p256, &msg);
    let p256_vk = *p256.verifying_key();
    g.bench_function("p256 crate ECDSA verify", |b| {
        b.iter(|| {
            p256::ecdsa::signature::Verifier::verify(&p256_vk, black_box(&msg), &p256_sig).unwrap()
        })
    });
    let p256_der = p256_sig.to_der();
    let p256_ours = PublicKey::P256(p256_vk);
    g.bench_function("glasslog P-256 check (AWS-LC)", |b| {
        b.iter(|| {
            p256_ours
                .verify(black_box(&msg), p256_der.as_bytes())
                .unwrap()
        })
    });
    g.finish();
}

/// SubjectPublicKeyInfo of an Ed25519 key up to its 32 bytes (RFC 8410 section 4).
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

criterion_group!(benches, stages, signature_choices, rocksdb);
criterion_main!(benches);

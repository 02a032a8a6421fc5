//! Median cost per signature, over 9 rounds, of Ed25519 checks on 1,300-byte messages (the
//! size of a DSSE pre-authentication encoding of a model release): `verify_strict`, the plain
//! `verify`, `verify_batch` over batches of 16 and 64, and `l·R == 0` (the torsion check).

use std::hint::black_box;
use std::time::Instant;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::OsRng;

/// Median over 9 rounds of the time per call of `f` (each round calls it `n` times), in µs,
/// divided by `per` (signatures per call).
fn median_us(n: u32, per: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..n / 4 {
        f();
    }
    let mut rounds: Vec<f64> = (0..9)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..n {
                f();
            }
            started.elapsed().as_secs_f64() * 1e6 / f64::from(n * per)
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[4]
}

fn main() {
    let keys: Vec<SigningKey> = (0..64).map(|_| SigningKey::generate(&mut OsRng)).collect();
    let messages: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 1300]).collect();
    let sigs: Vec<Signature> = keys.iter().zip(&messages).map(|(k, m)| k.sign(m)).collect();
    let vks: Vec<VerifyingKey> = keys.iter().map(SigningKey::verifying_key).collect();
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let row = |what: &str, us: f64| println!("{what:<44} {us:>7.1} µs per signature");
    row(
        "verify_strict",
        median_us(400, 1, || vks[0].verify_strict(black_box(&refs[0]), &sigs[0]).unwrap()),
    );
    row(
        "verify (plain)",
        median_us(400, 1, || {
            ed25519_dalek::Verifier::verify(&vks[0], black_box(&refs[0]), &sigs[0]).unwrap()
        }),
    );
    for n in [16usize, 64] {
        row(
            &format!("verify_batch of {n}"),
            median_us(20, n as u32, || {
                ed25519_dalek::verify_batch(black_box(&refs[..n]), &sigs[..n], &vks[..n]).unwrap()
            }),
        );
    }
    let r = curve25519_dalek::edwards::CompressedEdwardsY(*sigs[0].r_bytes())
        .decompress()
        .unwrap();
    row(
        "torsion check of R (l·R == identity)",
        median_us(400, 1, || assert!(black_box(r).is_torsion_free())),
    );
}

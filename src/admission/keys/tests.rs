//! Tests of key reading, writing and verification against OpenSSL fixtures.

use super::pem::{pem_decode, pem_encode};
use super::*;

// Fixtures made with OpenSSL 3.0:
//   openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out p256.pem
//   openssl pkey -in p256.pem -pubout
//   openssl ec -in p256.pem -pubout -conv_form compressed
//   openssl genpkey -algorithm ed25519 -out ed.pem; openssl pkey -in ed.pem -pubout
//   openssl dgst -sha256 -sign p256.pem msg.txt | base64
//   openssl pkeyutl -sign -rawin -inkey ed.pem -in msg.txt | base64
//   openssl pkey -pubin -in KEY.pem -outform DER | sha256sum
const OPENSSL_MESSAGE: &[u8] = b"glasslog cross-check: signed by openssl\n";

const P256_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgsw9i0ONL3SRnphgA
jBsv36B8gXz31GZqR1nh6s/qLRqhRANCAATtcYDZPDLdexz0Atoy7ULwhZiP5fnU
i8KlI8aO4d6EP1bkwuypyMS5nBOBPofv/uV79XbnLFyTlhjRd+6vpY/c
-----END PRIVATE KEY-----
";
const P256_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE7XGA2Twy3Xsc9ALaMu1C8IWYj+X5
1IvCpSPGjuHehD9W5MLsqcjEuZwTgT6H7/7le/V25yxck5YY0Xfur6WP3A==
-----END PUBLIC KEY-----
";
const P256_COMPRESSED_PEM: &str = "-----BEGIN PUBLIC KEY-----
MDkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDIgAC7XGA2Twy3Xsc9ALaMu1C8IWYj+X5
1IvCpSPGjuHehD8=
-----END PUBLIC KEY-----
";
const P256_KEY_ID: &str = "47cd74b13a76d704664a641faac9097551b0f4ce34c4504445a7aacb2d3feb35";
const P256_OPENSSL_SIG: &str = "MEUCIQCeUa4K3TwkS8IjVpnVqPPh8Fd4oJN6gd91wMAFzyD93wIgRZttdpgc73yL0Y9/x7wC/xsWaassRrkMywhqjnkCwSQ=";

const ED25519_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIDXa47/ty6wVpzI3KB4dFt8UQg9Obg2Ay8KlU6Vx7GNS
-----END PRIVATE KEY-----
";
const ED25519_PEM: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAo6J5Pxl1dg+ZR/42fnsRSBWCGiPbTtVgFkOuYDRVWns=
-----END PUBLIC KEY-----
";
const ED25519_KEY_ID: &str = "fc1e6ed76f205d922fd312320ca3bfb8df6f94f5e18bc23154080862bf60fec3";
const ED25519_OPENSSL_SIG: &str =
    "WW04vFraUm8eNon11jQwv6+fXCYG/x0rHH7bb3g9wcDFhYiItuEBPIhP/AaY9JJN99D0uP53XlcQ0QjYBfLAAA==";

const RSA_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDtpr1OupSq1QoER02nESFGZlwa
OurVYj+hlirMkhXehnaZo6pX1yHM8NjWpayGGYGt5P1zuuAdGm55YkbNKrqos+1E
OgltEu8H8s2k/3INCZ3OOaCLVZVKSm5wY2Y0Uv8L+WOlKW5w+fWFFXJNfnPCfKiz
pdg3L16fJTxUn5w7fQIDAQAB
-----END PUBLIC KEY-----
";
const P384_PEM: &str = "-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEjZ2yvVKoYXD6djLGLkj9+xjCorX0sl80
DV2IOn7DmihHLa0xG+oag4BaKFIwrnIqm1+LSdYvmW6q3WRRp3as3w3SMJ2NTtZn
G/ZI1dN73Y1vSl84JqO2vFLA6o0VzBwJ
-----END PUBLIC KEY-----
";
const SECP256K1_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFYwEAYHKoZIzj0CAQYFK4EEAAoDQgAEKdosJeU3c+swGbRlIRY1Bb6jUAD4dVXZ
z27qfQks9HIbu87gVM0Eoab8onz/VdbAiGwVo39eT43j2dCyjjJvsA==
-----END PUBLIC KEY-----
";
const ED448_PEM: &str = "-----BEGIN PUBLIC KEY-----
MEMwBQYDK2VxAzoA+bknqN/3tqpKdepZtUvpLSZAnQOnj1MqvASDhHFIVOl4QDIb
4bp4fHK28HnCY4DTjJlkRp/3ZU6A
-----END PUBLIC KEY-----
";

fn b64(s: &str) -> Vec<u8> {
    BASE64.decode(s).unwrap()
}

/// An Ed25519 SubjectPublicKeyInfo around `key` of any (short) length.
fn ed25519_spki(key: &[u8]) -> Vec<u8> {
    let bits = key.len() as u8 + 1;
    let algorithm = [0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];
    [&[0x30, bits + 9][..], &algorithm, &[0x03, bits, 0x00], key].concat()
}

#[test]
fn parses_openssl_public_keys_and_writes_them_back_unchanged() {
    for pem in [P256_PEM, ED25519_PEM] {
        assert_eq!(PublicKey::from_pem(pem).unwrap().to_pem(), pem);
    }
    let p256 = PublicKey::from_pem(P256_PEM).unwrap();
    assert_eq!(p256.key_type(), KeyType::P256);
    assert_eq!(p256.algorithm(), "ecdsa-p256-sha256");
    let ed = PublicKey::from_pem(ED25519_PEM).unwrap();
    assert_eq!(ed.key_type(), KeyType::Ed25519);
    assert_eq!(ed.algorithm(), "ed25519");
}

#[test]
fn key_id_is_sha256_of_normalised_der() {
    for (pem, id) in [(P256_PEM, P256_KEY_ID), (ED25519_PEM, ED25519_KEY_ID)] {
        let key = PublicKey::from_pem(pem).unwrap();
        let digest: [u8; 32] = Sha256::digest(key.to_der()).into();
        assert_eq!(key.key_id(), KeyId(digest));
        assert_eq!(key.key_id().to_string(), id);
    }
}

#[test]
fn compressed_p256_normalises_to_uncompressed() {
    let compressed = PublicKey::from_pem(P256_COMPRESSED_PEM).unwrap();
    let uncompressed = PublicKey::from_pem(P256_PEM).unwrap();
    assert_eq!(compressed, uncompressed);
    assert_eq!(compressed.key_id().to_string(), P256_KEY_ID);
    assert_eq!(compressed.to_pem(), P256_PEM);
}

#[test]
fn pem_framing_tolerates_surrounding_whitespace_and_crlf() {
    let spaced = format!("\n\t  {}\r\n\n", P256_PEM.replace('\n', "\r\n"));
    assert_eq!(PublicKey::from_pem(&spaced).unwrap().to_pem(), P256_PEM);
    let one_line = P256_PEM.replacen("X5\n1I", "X51I", 1);
    assert_eq!(PublicKey::from_pem(&one_line).unwrap().to_pem(), P256_PEM);
}

#[test]
fn rejects_other_algorithms_naming_them() {
    let cases = [
        (RSA_PEM, "1.2.840.113549.1.1.1", "RSA"),
        (ED448_PEM, "1.3.101.113", "Ed448"),
    ];
    for (pem, oid, name) in cases {
        assert_eq!(
            PublicKey::from_pem(pem),
            Err(KeyError::UnsupportedAlgorithm {
                oid: oid.into(),
                name
            })
        );
    }
    let curves = [
        (P384_PEM, "1.3.132.0.34", "P-384 (secp384r1)"),
        (SECP256K1_PEM, "1.3.132.0.10", "secp256k1"),
    ];
    for (pem, oid, name) in curves {
        assert_eq!(
            PublicKey::from_pem(pem),
            Err(KeyError::UnsupportedCurve {
                oid: oid.into(),
                name
            })
        );
    }
}

#[test]
fn rejects_malformed_pem_framing() {
    let two = format!("{P256_PEM}{ED25519_PEM}");
    assert_eq!(PublicKey::from_pem(&two), Err(KeyError::PemBlockCount(2)));
    assert_eq!(PublicKey::from_pem(""), Err(KeyError::PemBlockCount(0)));
    assert_eq!(
        PublicKey::from_pem("not a key"),
        Err(KeyError::PemBlockCount(0))
    );
    let bad = [
        format!("preamble\n{P256_PEM}"),
        format!("{P256_PEM}trailer"),
        P256_PEM.replace("-----END PUBLIC KEY-----", "-----END PRIVATE KEY-----"),
        P256_PEM.replace("-----END PUBLIC KEY-----\n", ""),
        P256_PEM.replacen("MFkw", "Proc-Type: 4,ENCRYPTED\nMFkw", 1),
        P256_PEM.replacen("MFkw", "MF w", 1),
        P256_PEM.replacen("MFkw", "MFk!", 1),
        P256_PEM.replacen("P3A==", "P3A", 1),
    ];
    for pem in &bad {
        assert!(
            matches!(PublicKey::from_pem(pem), Err(KeyError::Pem(_))),
            "{pem:?}"
        );
    }
}

#[test]
fn rejects_private_key_where_public_key_expected() {
    assert_eq!(
        PublicKey::from_pem(P256_PRIVATE_PEM),
        Err(KeyError::PemLabel {
            found: "PRIVATE KEY".into(),
            expected: "PUBLIC KEY"
        })
    );
    assert!(matches!(
        PrivateKey::from_pkcs8_pem(P256_PEM),
        Err(KeyError::PemLabel { .. })
    ));
}

#[test]
fn rejects_malformed_der() {
    let der = PublicKey::from_pem(P256_PEM).unwrap().to_der();
    let trailing = pem_encode(PUBLIC_KEY_LABEL, &[&der[..], &[0]].concat());
    let truncated = pem_encode(PUBLIC_KEY_LABEL, &der[..der.len() - 1]);
    for pem in [trailing, truncated] {
        assert!(matches!(
            PublicKey::from_pem(&pem),
            Err(KeyError::Der { .. })
        ));
    }
}

#[test]
fn rejects_bad_algorithm_parameters() {
    // Ed25519 with a NULL parameter; id-ecPublicKey with NULL (implicitCA).
    let ed = [
        &[
            0x30, 0x2c, 0x30, 0x07, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x05, 0x00,
        ][..],
        &[0x03, 0x21, 0x00],
        &[0x11; 32],
    ]
    .concat();
    let ec = [
        &[0x30, 0x51, 0x30, 0x0b, 0x06, 0x07][..],
        &[
            0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x05, 0x00, 0x03, 0x42, 0x00,
        ],
        &[0x04; 65],
    ]
    .concat();
    for der in [ed, ec] {
        assert!(matches!(
            PublicKey::from_der(&der),
            Err(KeyError::AlgorithmParameters(_))
        ));
    }
}

#[test]
fn rejects_invalid_ed25519_points() {
    let mut identity = [0u8; 32];
    identity[0] = 1;
    // y = p + 1: a non-canonical spelling of the identity's y = 1.
    let mut non_canonical = [0xffu8; 32];
    non_canonical[0] = 0xee;
    non_canonical[31] = 0x7f;
    let cases = [
        (&identity[..], "the point has small order"),
        (&non_canonical[..], "the point encoding is not canonical"),
        (&[0u8; 31][..], "the key must be 32 bytes"),
    ];
    for (key, detail) in cases {
        assert_eq!(
            PublicKey::from_der(&ed25519_spki(key)).map(|_| ()),
            Err(KeyError::InvalidPublicKey {
                algorithm: "Ed25519",
                detail
            }),
            "{}",
            hex::encode(key)
        );
    }
    // The first 32-byte string that is not a y coordinate on the curve.
    let off_curve = (2u8..)
        .map(|y| [&[y][..], &[0u8; 31]].concat())
        .find(|k| ed25519_dalek::VerifyingKey::try_from(&k[..]).is_err())
        .unwrap();
    assert!(matches!(
        PublicKey::from_der(&ed25519_spki(&off_curve)),
        Err(KeyError::InvalidPublicKey { .. })
    ));
}

#[test]
fn rejects_invalid_p256_points() {
    let der = PublicKey::from_pem(P256_PEM).unwrap().to_der();
    let point = &der[P256_SPKI_PREFIX.len()..];
    let mut off_curve = point.to_vec();
    off_curve[64] ^= 1;
    let mut hybrid = point.to_vec();
    hybrid[0] = 0x06;
    for bad in [off_curve, hybrid, point[..33].to_vec(), vec![0x00]] {
        let mut der = vec![0x30, 0, 0x30, 0x13];
        der.extend_from_slice(&P256_SPKI_PREFIX[4..23]);
        der.extend_from_slice(&[0x03, bad.len() as u8 + 1, 0x00]);
        der.extend_from_slice(&bad);
        der[1] = (der.len() - 2) as u8;
        assert!(
            matches!(
                PublicKey::from_der(&der),
                Err(KeyError::InvalidPublicKey {
                    algorithm: "P-256",
                    ..
                })
            ),
            "{}",
            hex::encode(&bad)
        );
    }
}

#[test]
fn openssl_signatures_verify() {
    let p256 = PublicKey::from_pem(P256_PEM).unwrap();
    assert_eq!(p256.verify(OPENSSL_MESSAGE, &b64(P256_OPENSSL_SIG)), Ok(()));
    let ed = PublicKey::from_pem(ED25519_PEM).unwrap();
    assert_eq!(
        ed.verify(OPENSSL_MESSAGE, &b64(ED25519_OPENSSL_SIG)),
        Ok(())
    );
    // Each under the wrong key, and over another message.
    assert!(ed.verify(OPENSSL_MESSAGE, &b64(P256_OPENSSL_SIG)).is_err());
    assert!(p256
        .verify(OPENSSL_MESSAGE, &b64(ED25519_OPENSSL_SIG))
        .is_err());
    assert_eq!(
        p256.verify(b"other", &b64(P256_OPENSSL_SIG)),
        Err(KeyError::BadSignature)
    );
}

#[test]
fn openssl_private_keys_round_trip_byte_for_byte() {
    for (private, public) in [
        (P256_PRIVATE_PEM, P256_PEM),
        (ED25519_PRIVATE_PEM, ED25519_PEM),
    ] {
        let key = PrivateKey::from_pkcs8_pem(private).unwrap();
        assert_eq!(key.to_pkcs8_pem(), private);
        assert_eq!(key.public_key().to_pem(), public);
        let sig = key.sign(OPENSSL_MESSAGE);
        assert_eq!(key.public_key().verify(OPENSSL_MESSAGE, &sig), Ok(()));
    }
}

#[test]
fn pkcs8_templates_match_the_library_encoding() {
    use p256::pkcs8::EncodePrivateKey;
    for key_type in [KeyType::Ed25519, KeyType::P256] {
        let key = PrivateKey::generate(key_type);
        let library = match &key {
            // ed25519-dalek would add the public key (PKCS#8 v2); OpenSSL does not.
            PrivateKey::Ed25519(k) => ed25519_dalek::pkcs8::KeypairBytes {
                secret_key: k.to_bytes(),
                public_key: None,
            }
            .to_pkcs8_der()
            .unwrap(),
            PrivateKey::P256(k) => k.to_pkcs8_der().unwrap(),
        };
        let ours = pem_decode(&key.to_pkcs8_pem(), PRIVATE_KEY_LABEL).unwrap();
        assert_eq!(ours.as_slice(), library.as_bytes(), "{key_type}");
    }
}

#[test]
fn generated_keys_round_trip_and_sign() {
    for key_type in [KeyType::Ed25519, KeyType::P256] {
        let key = PrivateKey::generate(key_type);
        assert_eq!(key.key_type(), key_type);
        let public = key.public_key();
        assert_eq!(PublicKey::from_pem(&public.to_pem()), Ok(public));
        let again = PrivateKey::from_pkcs8_pem(&key.to_pkcs8_pem()).unwrap();
        assert_eq!(again.public_key(), public);

        let sig = key.sign(b"message");
        assert_eq!(public.verify(b"message", &sig), Ok(()));
        assert_eq!(public.verify(b"messagE", &sig), Err(KeyError::BadSignature));
        let mut tampered = sig.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(public.verify(b"message", &tampered).is_err());
        let other = PrivateKey::generate(key_type).public_key();
        assert_eq!(other.verify(b"message", &sig), Err(KeyError::BadSignature));
    }
}

/// The group order L, little-endian (RFC 8032 section 5.1).
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

#[test]
fn rejects_ed25519_signatures_of_wrong_length_or_malleated() {
    let key = PrivateKey::from_pkcs8_pem(ED25519_PRIVATE_PEM).unwrap();
    let public = key.public_key();
    let sig = key.sign(b"m");
    assert_eq!(
        public.verify(b"m", &sig[..63]),
        Err(KeyError::SignatureLength(63))
    );
    assert_eq!(
        public.verify(b"m", &[&sig[..], &[0]].concat()),
        Err(KeyError::SignatureLength(65))
    );
    // S + L verifies the same equation; RFC 8032 section 5.1.7 requires S < L.
    let mut malleated = sig.clone();
    let mut carry = 0u16;
    for (byte, l) in malleated[32..].iter_mut().zip(L) {
        let sum = u16::from(*byte) + u16::from(l) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(public.verify(b"m", &malleated), Err(KeyError::BadSignature));
}

#[test]
fn p256_accepts_high_s_and_rejects_non_der() {
    let key = PrivateKey::from_pkcs8_pem(P256_PRIVATE_PEM).unwrap();
    let public = key.public_key();
    let der = b64(P256_OPENSSL_SIG);
    let sig = p256::ecdsa::Signature::from_der(&der).unwrap();
    let (r, s) = sig.split_scalars();
    let flipped = p256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
    assert_eq!(
        public.verify(OPENSSL_MESSAGE, flipped.to_der().as_bytes()),
        Ok(())
    );

    // Raw r || s, a BER long-form length, and trailing bytes.
    let raw = sig.to_bytes().to_vec();
    let mut long_form = vec![0x30, 0x81];
    long_form.extend_from_slice(&der[1..]);
    let trailing = [&der[..], &[0]].concat();
    for bad in [raw, long_form, trailing, vec![]] {
        assert_eq!(
            public.verify(OPENSSL_MESSAGE, &bad),
            Err(KeyError::SignatureEncoding),
            "{}",
            hex::encode(&bad)
        );
    }
}

#[test]
fn rejects_malformed_private_keys() {
    assert!(matches!(
        PrivateKey::from_pkcs8_pem(&pem_encode(PRIVATE_KEY_LABEL, b"\x30\x00")),
        Err(KeyError::Der { .. })
    ));
    // A P-256 PKCS#8 whose embedded public key does not match the scalar.
    let mut der = pem_decode(P256_PRIVATE_PEM, PRIVATE_KEY_LABEL)
        .unwrap()
        .to_vec();
    let last = der.len() - 1;
    der[last] ^= 1;
    assert!(matches!(
        PrivateKey::from_pkcs8_pem(&pem_encode(PRIVATE_KEY_LABEL, &der)),
        Err(KeyError::InvalidPrivateKey {
            algorithm: "P-256",
            ..
        })
    ));
}

#[test]
fn key_type_names_round_trip() {
    for key_type in [KeyType::Ed25519, KeyType::P256] {
        assert_eq!(key_type.to_string().parse::<KeyType>(), Ok(key_type));
    }
    assert_eq!(
        "rsa".parse::<KeyType>(),
        Err(KeyError::UnknownKeyType("rsa".into()))
    );
    assert!("Ed25519".parse::<KeyType>().is_err());
}

#[test]
fn key_ids_order_and_display() {
    let low = KeyId([0; 32]);
    let high = KeyId([0xab; 32]);
    assert!(low < high);
    assert_eq!(high.to_string(), "ab".repeat(32));
    assert_eq!(format!("{low:?}"), format!("KeyId({})", "0".repeat(64)));
}

/// [`public::SMALL_ORDER_ENCODINGS`] is E\[8\]: eight distinct canonical encodings of points
/// of small order, and the curve has exactly eight such points.
#[test]
fn small_order_encodings_are_the_eight_torsion_points() {
    use curve25519_dalek::edwards::CompressedEdwardsY;
    let mut seen = std::collections::HashSet::new();
    for bytes in super::public::SMALL_ORDER_ENCODINGS {
        let point = CompressedEdwardsY(bytes).decompress().unwrap();
        assert!(point.is_small_order(), "{}", hex::encode(bytes));
        assert_eq!(point.compress().to_bytes(), bytes, "not canonical");
        assert!(seen.insert(bytes));
    }
    for t in curve25519_dalek::constants::EIGHT_TORSION {
        assert!(seen.contains(&t.compress().to_bytes()));
    }
}

/// A deterministic stream of bytes for the agreement corpora (xorshift; the corpus must be the
/// same on every run so that a disagreement, if one appears, can be replayed).
struct Bytes(u64);

impl Bytes {
    fn fill<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for b in &mut out {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = (self.0 >> 24) as u8;
        }
        out
    }
}

/// Ed25519 (R, S) over `msg` for the key `a·B + torsion`, with `R = r·B + r_torsion`, computed
/// by hand so that keys and nonces with torsion components can be made.
fn ed25519_sign_raw(
    a: curve25519_dalek::Scalar,
    torsion: curve25519_dalek::EdwardsPoint,
    r: curve25519_dalek::Scalar,
    r_torsion: curve25519_dalek::EdwardsPoint,
    msg: &[u8],
) -> ([u8; 32], [u8; 64]) {
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT as B;
    let key = (a * B + torsion).compress().to_bytes();
    let big_r = (r * B + r_torsion).compress().to_bytes();
    let h = curve25519_dalek::Scalar::from_hash(
        sha2::Sha512::new()
            .chain_update(big_r)
            .chain_update(key)
            .chain_update(msg),
    );
    let s = r + h * a;
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&big_r);
    sig[32..].copy_from_slice(s.as_bytes());
    (key, sig)
}

/// [`PublicKey::verify`] accepts an Ed25519 signature exactly when ed25519-dalek's
/// `verify_strict` does (issue #13: the cheaper check must keep the acceptance rules). The
/// corpus: honest signatures; every small-order `R`; `R` with a torsion component; keys with a
/// torsion component (not of small order, so they are keys), signed so that the cofactorless
/// equation holds or fails; non-canonical `R` and `S`; single-bit damage.
#[test]
fn ed25519_check_agrees_with_verify_strict() {
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::{EdwardsPoint, Scalar};
    let mut rng = Bytes(0x9e37_79b9_7f4a_7c15);
    let identity = EdwardsPoint::default();
    let mut cases: Vec<([u8; 32], Vec<u8>, [u8; 64])> = Vec::new();
    for i in 0..64u32 {
        let a = Scalar::from_bytes_mod_order(rng.fill());
        let r = Scalar::from_bytes_mod_order(rng.fill());
        let msg = format!("statement {i}").into_bytes();
        let torsion = EIGHT_TORSION[(i % 8) as usize];
        // Honest, and with a torsion component on R.
        for (t_key, t_r) in [
            (identity, identity),
            (identity, torsion),
            (torsion, identity),
        ] {
            let (key, sig) = ed25519_sign_raw(a, t_key, r, t_r, &msg);
            cases.push((key, msg.clone(), sig));
        }
        // A key with torsion whose signature satisfies the cofactorless equation:
        // R = r·B − h·T, found by trying the eight choices of R's torsion.
        for t_r in EIGHT_TORSION {
            let (key, sig) = ed25519_sign_raw(a, torsion, r, t_r, &msg);
            cases.push((key, msg.clone(), sig));
        }
        // Every small-order R, with an S that is random and one from the honest equation.
        for t in EIGHT_TORSION {
            let (key, mut sig) = ed25519_sign_raw(a, identity, Scalar::ZERO, t, &msg);
            cases.push((key, msg.clone(), sig));
            sig[32..].copy_from_slice(Scalar::from_bytes_mod_order(rng.fill()).as_bytes());
            cases.push((key, msg.clone(), sig));
        }
        let (key, honest) = ed25519_sign_raw(a, identity, r, identity, &msg);
        // Non-canonical R: y + p for the small y that allow it, and x = 0 written negative.
        for y in 0u8..19 {
            let mut sig = honest;
            let mut enc = [0xffu8; 32];
            enc[0] = 0xed + y;
            enc[31] = 0x7f | (rng.fill::<1>()[0] & 0x80);
            sig[..32].copy_from_slice(&enc);
            cases.push((key, msg.clone(), sig));
        }
        let mut negative_identity = honest;
        negative_identity[..32].copy_from_slice(&[&[1u8][..], &[0; 30], &[0x80]].concat());
        cases.push((key, msg.clone(), negative_identity));
        // S + L (non-canonical S), S = L, and damage to each half.
        let mut plus_l = honest;
        let mut carry = 0u16;
        for (byte, l) in plus_l[32..].iter_mut().zip(L) {
            let sum = u16::from(*byte) + u16::from(l) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        cases.push((key, msg.clone(), plus_l));
        let bit = (rng.fill::<1>()[0] as usize) % 512;
        let mut damaged = honest;
        damaged[bit / 8] ^= 1 << (bit % 8);
        cases.push((key, msg.clone(), damaged));
    }
    let (mut accepted, mut refused) = (0, 0);
    for (key_bytes, msg, sig) in &cases {
        let dalek = ed25519_dalek::VerifyingKey::from_bytes(key_bytes).unwrap();
        let strict = dalek
            .verify_strict(msg, &ed25519_dalek::Signature::from_bytes(sig))
            .is_ok();
        let ours = PublicKey::from_der(&ed25519_spki(key_bytes))
            .unwrap()
            .verify(msg, sig)
            .is_ok();
        assert_eq!(
            ours,
            strict,
            "key {} sig {}",
            hex::encode(key_bytes),
            hex::encode(sig)
        );
        if strict {
            accepted += 1
        } else {
            refused += 1
        }
    }
    // Both answers are exercised, including acceptance with a torsion key.
    assert!(
        accepted > 64 * 2 && refused > 64 * 20,
        "{accepted} {refused}"
    );
}

/// [`PublicKey::verify`] (AWS-LC) accepts a P-256 signature exactly when the `p256` crate does
/// (issue #13): honest low- and high-S signatures, another key's, damaged messages, and
/// `(r, s)` at the ends of their range and at the low/high-S boundary.
#[test]
fn p256_check_agrees_with_the_p256_crate() {
    use p256::ecdsa::signature::Verifier as _;
    use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
    use p256::elliptic_curve::ops::Reduce;
    use p256::{NonZeroScalar, Scalar, U256};
    let mut rng = Bytes(0x2545_f491_4f6c_dd1d);
    let scalar = |rng: &mut Bytes| {
        <Scalar as Reduce<U256>>::reduce_bytes(&p256::FieldBytes::from(rng.fill::<32>()))
    };
    let n_minus = |k: u64| -Scalar::from(k);
    // (n − 1) / 2, the largest low `s`: 2 · it = n − 1 ≡ −1.
    let half = -Scalar::from(2u64).invert().unwrap();
    let (mut accepted, mut refused) = (0, 0);
    for i in 0..48u32 {
        let sk = SigningKey::from(NonZeroScalar::new(scalar(&mut rng)).unwrap());
        let vk = VerifyingKey::from(&sk);
        let other = VerifyingKey::from(&SigningKey::from(
            NonZeroScalar::new(scalar(&mut rng)).unwrap(),
        ));
        let msg = format!("statement {i}").into_bytes();
        let sig: Signature = p256::ecdsa::signature::Signer::sign(&sk, &msg[..]);
        let (r, s) = (*sig.r(), *sig.s());
        let mut sigs = vec![sig, Signature::from_scalars(r, -s).unwrap()];
        for (r2, s2) in [
            (Scalar::ONE, Scalar::ONE),
            (n_minus(1), n_minus(1)),
            (r, half),
            (r, half + Scalar::ONE),
            (r, s + Scalar::ONE),
            (scalar(&mut rng), s),
        ] {
            if let Ok(sig) = Signature::from_scalars(r2, s2) {
                sigs.push(sig);
            }
        }
        let mut damaged = msg.clone();
        damaged[i as usize % msg.len()] ^= 1;
        for sig in &sigs {
            for (key, m) in [(&vk, &msg), (&other, &msg), (&vk, &damaged)] {
                let reference = key.verify(m, &sig.normalize_s().unwrap_or(*sig)).is_ok();
                let ours = PublicKey::P256(*key)
                    .verify(m, sig.to_der().as_bytes())
                    .is_ok();
                assert_eq!(
                    ours,
                    reference,
                    "key {:?} sig {}",
                    key,
                    hex::encode(sig.to_bytes())
                );
                if reference {
                    accepted += 1
                } else {
                    refused += 1
                }
            }
        }
    }
    assert!(accepted >= 96 && refused > 500, "{accepted} {refused}");
}

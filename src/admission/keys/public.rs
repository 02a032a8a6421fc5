//! Public keys ([`PublicKey`]): reading a SubjectPublicKeyInfo, its one DER
//! encoding, its key id, and signature verification. Not here: PEM framing
//! ([`super::pem`]) or the cache of keys already read ([`super::cache`]).

use super::pem::{pem_decode, pem_encode};
use super::*;

/// A publisher's public key.
///
/// Invariant, for values built by [`PublicKey::from_pem`] or
/// [`PrivateKey::public_key`]: an Ed25519 key is canonically encoded and not
/// of small order; a P-256 key is a point on the curve other than the identity.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum PublicKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} {})", self.key_type(), self.key_id())
    }
}

impl PublicKey {
    /// Reads exactly one PEM `PUBLIC KEY` block (ASCII whitespace around it is
    /// allowed, nothing else) holding a DER SubjectPublicKeyInfo of an Ed25519
    /// key (RFC 8410) or of a P-256 key (RFC 5480, named curve only; SEC 1
    /// compressed or uncompressed point). Text longer than [`MAX_PUBLIC_KEY_PEM_BYTES`] is
    /// refused unread.
    pub fn from_pem(pem: &str) -> Result<PublicKey, KeyError> {
        if pem.len() > MAX_PUBLIC_KEY_PEM_BYTES {
            return Err(KeyError::PemTooLong {
                len: pem.len(),
                limit: MAX_PUBLIC_KEY_PEM_BYTES,
            });
        }
        Self::from_der(&pem_decode(pem, PUBLIC_KEY_LABEL)?)
    }

    /// Reads a DER SubjectPublicKeyInfo; see [`PublicKey::from_pem`].
    pub fn from_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        let spki = SubjectPublicKeyInfoRef::from_der(der).map_err(|e| KeyError::Der {
            structure: "SubjectPublicKeyInfo",
            detail: e.to_string(),
        })?;
        let key = spki.subject_public_key.as_bytes().ok_or(KeyError::Der {
            structure: "SubjectPublicKeyInfo",
            detail: "the key BIT STRING is not a whole number of bytes".to_owned(),
        })?;
        match key_type(&spki.algorithm)? {
            KeyType::Ed25519 => ed25519_public_key(key),
            KeyType::P256 => p256_public_key(key),
        }
    }

    /// The normalised SubjectPublicKeyInfo DER: the Ed25519 key as read, the
    /// P-256 point uncompressed.
    pub fn to_der(&self) -> Vec<u8> {
        match self {
            PublicKey::Ed25519(key) => [&ED25519_SPKI_PREFIX[..], key.as_bytes()].concat(),
            PublicKey::P256(key) => {
                let point = key.to_encoded_point(false);
                [&P256_SPKI_PREFIX[..], point.as_bytes()].concat()
            }
        }
    }

    /// [`PublicKey::to_der`] as a PEM `PUBLIC KEY` block: 64-column base64,
    /// LF line endings, a final newline.
    pub fn to_pem(&self) -> String {
        pem_encode(PUBLIC_KEY_LABEL, &self.to_der())
    }

    /// SHA-256 of [`PublicKey::to_der`].
    pub fn key_id(&self) -> KeyId {
        KeyId(Sha256::digest(self.to_der()).into())
    }

    /// Which scheme this key belongs to.
    pub fn key_type(&self) -> KeyType {
        match self {
            PublicKey::Ed25519(_) => KeyType::Ed25519,
            PublicKey::P256(_) => KeyType::P256,
        }
    }

    /// The signature algorithm: `"ed25519"` or `"ecdsa-p256-sha256"`.
    pub fn algorithm(&self) -> &'static str {
        match self {
            PublicKey::Ed25519(_) => "ed25519",
            PublicKey::P256(_) => "ecdsa-p256-sha256",
        }
    }

    /// Checks `sig` over `msg`. Ed25519: a 64-byte signature, accepted exactly when
    /// ed25519-dalek's `verify_strict` accepts it ([`ed25519_verify`]). P-256: a strict ASN.1 DER
    /// signature over SHA-256(`msg`), low or high `s` (normalised to low `s`, then verified by
    /// AWS-LC: [`p256_verify`]).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), KeyError> {
        match self {
            PublicKey::Ed25519(key) => {
                let bytes =
                    <[u8; 64]>::try_from(sig).map_err(|_| KeyError::SignatureLength(sig.len()))?;
                ed25519_verify(key, msg, &bytes)
            }
            PublicKey::P256(key) => {
                let sig = p256::ecdsa::Signature::from_der(sig)
                    .map_err(|_| KeyError::SignatureEncoding)?;
                // (r, s) and (r, n - s) are both valid: verify the low-S one, so that the answer
                // does not depend on whether the ECDSA library refuses high S (see the module
                // documentation for why both are accepted).
                let sig = sig.normalize_s().unwrap_or(sig);
                p256_verify(key, msg, &sig)
            }
        }
    }
}

/// The canonical encodings of the eight points of small order (the 8-torsion subgroup
/// E\[8\] of edwards25519), the values of `R` that `verify_strict` refuses on top of RFC 8032's
/// equation. Checked against curve25519-dalek in the tests.
pub(super) const SMALL_ORDER_ENCODINGS: [[u8; 32]; 8] = {
    const fn point(hex: &[u8; 64]) -> [u8; 32] {
        const fn nibble(c: u8) -> u8 {
            match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                _ => panic!("not lowercase hex"),
            }
        }
        let mut out = [0u8; 32];
        let mut i = 0;
        while i < 32 {
            out[i] = nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]);
            i += 1;
        }
        out
    }
    [
        point(b"0100000000000000000000000000000000000000000000000000000000000000"),
        point(b"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
        point(b"0000000000000000000000000000000000000000000000000000000000000000"),
        point(b"0000000000000000000000000000000000000000000000000000000000000080"),
        point(b"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
        point(b"c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),
        point(b"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
        point(b"26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),
    ]
};

/// Ed25519 verification with exactly the acceptance of ed25519-dalek's `verify_strict`
/// (RFC 8032 section 5.1.7 with `S < L`, a byte-for-byte comparison of `R` with the
/// recomputed point's canonical encoding, and neither `R` nor the key of small order), at the
/// cost of the plain check.
///
/// `verify_strict` decompresses `R` to test its order (about a tenth of a verification here).
/// The same answer comes cheaper: the plain check already refuses every `R` that is not a
/// canonical encoding (the recomputed point is written canonically and compared byte for
/// byte), so among the encodings that can pass it, the small-order ones are exactly the eight
/// of [`SMALL_ORDER_ENCODINGS`]; and keys of small order never become a [`PublicKey`].
/// `tests.rs` checks the agreement on a corpus of edge cases (every small-order `R`,
/// non-canonical `R` and `S`, keys with a torsion component) and random signatures.
fn ed25519_verify(
    key: &ed25519_dalek::VerifyingKey,
    msg: &[u8],
    sig: &[u8; 64],
) -> Result<(), KeyError> {
    use ed25519_dalek::Verifier as _;
    if SMALL_ORDER_ENCODINGS.iter().any(|r| sig[..32] == r[..]) {
        return Err(KeyError::BadSignature);
    }
    key.verify(msg, &ed25519_dalek::Signature::from_bytes(sig))
        .map_err(|_| KeyError::BadSignature)
}

/// ECDSA P-256 with SHA-256 (FIPS 186-5 section 6.4.2) of a signature already read (so
/// `1 <= r, s < n`), computed by AWS-LC: some five times faster than the pure-Rust `p256`
/// arithmetic (`benches/stages.rs`), with the same answers (`tests.rs` compares the two on
/// random and edge-case inputs). The key is handed over as the uncompressed point, which
/// AWS-LC checks is on the curve.
fn p256_verify(
    key: &p256::ecdsa::VerifyingKey,
    msg: &[u8],
    sig: &p256::ecdsa::Signature,
) -> Result<(), KeyError> {
    use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
    let point = key.to_encoded_point(false);
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point.as_bytes())
        .verify(msg, &sig.to_bytes())
        .map_err(|_| KeyError::BadSignature)
}

/// An Ed25519 public key from its 32-byte encoding (RFC 8032 section 5.1.3),
/// refusing non-canonical encodings (so that one key has one id) and points of
/// small order (which `verify_strict` would refuse to use anyway).
fn ed25519_public_key(bytes: &[u8]) -> Result<PublicKey, KeyError> {
    let invalid = |detail| KeyError::InvalidPublicKey {
        algorithm: "Ed25519",
        detail,
    };
    let bytes = <[u8; 32]>::try_from(bytes).map_err(|_| invalid("the key must be 32 bytes"))?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map_err(|_| invalid("the bytes do not encode a curve point"))?;
    if key.to_edwards().compress().to_bytes() != bytes {
        return Err(invalid("the point encoding is not canonical"));
    }
    if key.is_weak() {
        return Err(invalid("the point has small order"));
    }
    Ok(PublicKey::Ed25519(key))
}

/// A P-256 public key from a SEC 1 compressed (33-byte) or uncompressed
/// (65-byte) point (SEC 1 v2 section 2.3.4); the identity and other forms are refused.
fn p256_public_key(bytes: &[u8]) -> Result<PublicKey, KeyError> {
    let invalid = |detail| KeyError::InvalidPublicKey {
        algorithm: "P-256",
        detail,
    };
    match (bytes.first(), bytes.len()) {
        (Some(0x02 | 0x03), 33) | (Some(0x04), 65) => {}
        _ => {
            return Err(invalid(
                "the point must be SEC 1 compressed (33 bytes) or uncompressed (65 bytes)",
            ))
        }
    }
    p256::ecdsa::VerifyingKey::from_sec1_bytes(bytes)
        .map(PublicKey::P256)
        .map_err(|_| invalid("the point is not on the curve"))
}

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

    /// Checks `sig` over `msg`. Ed25519: a 64-byte signature, checked with
    /// `verify_strict`. P-256: a strict ASN.1 DER signature over
    /// SHA-256(`msg`), low or high `s` (normalised to low `s`, then verified).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), KeyError> {
        match self {
            PublicKey::Ed25519(key) => {
                let bytes =
                    <[u8; 64]>::try_from(sig).map_err(|_| KeyError::SignatureLength(sig.len()))?;
                let sig = ed25519_dalek::Signature::from_bytes(&bytes);
                key.verify_strict(msg, &sig)
                    .map_err(|_| KeyError::BadSignature)
            }
            PublicKey::P256(key) => {
                let sig = p256::ecdsa::Signature::from_der(sig)
                    .map_err(|_| KeyError::SignatureEncoding)?;
                // (r, s) and (r, n - s) are both valid: verify the low-S one, so that the answer
                // does not depend on whether the ECDSA library refuses high S (see the module
                // documentation for why both are accepted).
                let sig = sig.normalize_s().unwrap_or(sig);
                key.verify(msg, &sig).map_err(|_| KeyError::BadSignature)
            }
        }
    }
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

//! Publisher keys: Ed25519 and ECDSA P-256, their one normal encoding, their
//! key ids, and signature verification.
//!
//! A public key arrives as one PEM `PUBLIC KEY` block holding a
//! SubjectPublicKeyInfo (RFC 5280 section 4.1.2.7): Ed25519 as in RFC 8410, or
//! `id-ecPublicKey` on the named curve `prime256v1` as in RFC 5480, with the
//! point compressed or uncompressed (SEC 1 v2 section 2.3.3). Whatever the
//! input spelling, a [`PublicKey`] has exactly one DER encoding ([`PublicKey::to_der`],
//! Ed25519 as given, P-256 uncompressed), and its [`KeyId`] is the SHA-256 of that
//! encoding, so the same key always has the same id.
//!
//! Verification is deliberately narrow: Ed25519 accepts exactly what ed25519-dalek's
//! `verify_strict` accepts (RFC 8032 section 5.1.7 plus the rejection of small-order
//! keys and `R`, and of non-canonical `R` and `S`), computed more cheaply; ECDSA P-256 takes an
//! ASN.1 DER `Ecdsa-Sig-Value` (RFC 3279 section 2.2.3; BER variants are refused, read by the
//! `p256` crate) over SHA-256 of the message, verified by AWS-LC, and, like Sigstore and Go's
//! `crypto/ecdsa`, accepts either value of `s`: it verifies the low-S form `(r, min(s, n - s))`.
//! `tests.rs` holds both to the previous implementations on edge-case corpora.
//!
//! Why high S is accepted rather than refused (issue #11): ECDSA signers that publishers use
//! do not normalise `s` (Go's `ecdsa.Sign`, OpenSSL and so Python's `cryptography`, which
//! `model_signing` builds on), so half of their honest signatures are high-S; refusing them
//! would refuse those publishers at random. The malleability this allows (anyone can turn a
//! signature `(r, s)` into `(r, n - s)`) gives nothing a transparency log must defend: an entry
//! is identified and deduplicated by its payload type, payload and key ids
//! ([`crate::entry::dedup_key`]), never by signature bytes, so a malleated resubmission is the
//! same entry (Submit answers with the logged one); and signature bytes never identify a
//! signature anyway, since ECDSA and re-signing yield new bytes for the same statement.
//! The logged envelope keeps the bytes as signed: rewriting `s` would change the bytes the
//! publisher's tools hash and compare.
//!
//! Private keys ([`PrivateKey`]) exist for the command line and the tests: they
//! are read and written as unencrypted PKCS#8 (RFC 5208, RFC 5958).
//!
//! What this module is not: a certificate or key-trust layer (which keys may
//! publish what is decided elsewhere), a general PEM or ASN.1 library, or a
//! home for the log's own signing key (see `logkey`).
//!
//! Layout: this file holds key types, key ids and errors; `public.rs` public keys and
//! verification; `private.rs` private keys; `pem.rs` PEM framing; `cache.rs` the cache of keys
//! already read.

mod cache;
mod pem;
mod private;
mod public;
#[cfg(test)]
mod tests;

pub use cache::{CachedKey, KeyCache};
pub use private::PrivateKey;
pub use public::PublicKey;

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use p256::ecdsa::signature::Signer as _;
use p256::elliptic_curve::zeroize::Zeroizing;
use p256::pkcs8::der::Decode;
use p256::pkcs8::spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};
use p256::pkcs8::{AssociatedOid, DecodePrivateKey, ObjectIdentifier, PrivateKeyInfo};
use rand_core::OsRng;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// PEM label of a SubjectPublicKeyInfo (RFC 7468 section 13).
const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";
/// PEM label of an unencrypted PKCS#8 private key (RFC 7468 section 10).
const PRIVATE_KEY_LABEL: &str = "PRIVATE KEY";
/// Longest public-key PEM text read, in bytes. A key as the log writes it is 113 (Ed25519) or
/// 178 (P-256) bytes; the cap leaves room for surrounding whitespace and CRLF line endings, and
/// for an RSA key of up to 8192 bits, which is then refused naming its algorithm. Longer text
/// is refused before it is decoded, so a submission's keys cost at most
/// `dsse::MAX_KEYS × MAX_PUBLIC_KEY_PEM_BYTES` (32 KiB) to read.
pub const MAX_PUBLIC_KEY_PEM_BYTES: usize = 4096;

/// Longest PEM label worth quoting back in an error.
const MAX_LABEL_LEN: usize = 64;

/// SubjectPublicKeyInfo of an Ed25519 key up to the 32 key bytes (RFC 8410 section 4):
/// `SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (0 unused bits) ... }`.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// SubjectPublicKeyInfo of a P-256 key up to the 65-byte uncompressed point
/// (RFC 5480 section 2): `SEQUENCE { SEQUENCE { OID id-ecPublicKey, OID
/// prime256v1 }, BIT STRING (0 unused bits) ... }`.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// PKCS#8 `PrivateKeyInfo` of an Ed25519 key up to the 32-byte seed (RFC 8410
/// section 7): version 0, the algorithm, and `OCTET STRING { OCTET STRING seed }`.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// PKCS#8 `PrivateKeyInfo` of a P-256 key up to the 32-byte scalar: version 0,
/// the algorithm and curve, then an `ECPrivateKey` (RFC 5915 section 3) of
/// version 1 whose `privateKey` follows; [`P256_PKCS8_MIDDLE`] then introduces
/// the `[1] publicKey` uncompressed point. This is the form OpenSSL writes.
const P256_PKCS8_PREFIX: [u8; 36] = [
    0x30, 0x81, 0x87, 0x02, 0x01, 0x00, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
    0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x04, 0x6d, 0x30, 0x6b, 0x02,
    0x01, 0x01, 0x04, 0x20,
];
/// See [`P256_PKCS8_PREFIX`]: `[1] { BIT STRING (0 unused bits) ... }`.
const P256_PKCS8_MIDDLE: [u8; 5] = [0xa1, 0x44, 0x03, 0x42, 0x00];

/// Why a key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The text is not a single well-formed PEM block.
    #[error("malformed PEM: {0}")]
    Pem(&'static str),
    /// The text is longer than [`MAX_PUBLIC_KEY_PEM_BYTES`].
    #[error("the PEM text is {len} bytes; a public key is at most {limit} bytes of PEM")]
    PemTooLong { len: usize, limit: usize },
    /// The text holds zero or several PEM blocks.
    #[error("expected exactly one PEM block, found {0}")]
    PemBlockCount(usize),
    /// The PEM block holds something other than what was asked for.
    #[error("PEM block is labelled {found:?}, expected {expected:?}")]
    PemLabel {
        found: String,
        expected: &'static str,
    },
    /// The DER inside the PEM block does not parse.
    #[error("malformed {structure} DER: {detail}")]
    Der {
        structure: &'static str,
        detail: String,
    },
    /// The key is of an algorithm other than Ed25519 and ECDSA.
    #[error(
        "unsupported key algorithm {name} (OID {oid}): only Ed25519 and ECDSA P-256 keys \
         are accepted"
    )]
    UnsupportedAlgorithm { oid: String, name: &'static str },
    /// The key is an elliptic-curve key on a curve other than P-256.
    #[error(
        "unsupported elliptic curve {name} (OID {oid}): only P-256 (prime256v1, \
         1.2.840.10045.3.1.7) is accepted"
    )]
    UnsupportedCurve { oid: String, name: &'static str },
    /// The AlgorithmIdentifier parameters are not those the algorithm requires.
    #[error("{0}")]
    AlgorithmParameters(&'static str),
    /// The key bytes do not form an acceptable public key.
    #[error("invalid {algorithm} public key: {detail}")]
    InvalidPublicKey {
        algorithm: &'static str,
        detail: &'static str,
    },
    /// The PKCS#8 structure does not hold a usable private key.
    #[error("invalid {algorithm} private key: {detail}")]
    InvalidPrivateKey {
        algorithm: &'static str,
        detail: String,
    },
    /// An Ed25519 signature that is not 64 bytes long.
    #[error("an Ed25519 signature is 64 bytes, got {0}")]
    SignatureLength(usize),
    /// A P-256 signature that is not a DER `Ecdsa-Sig-Value` with `0 < r, s < n`.
    #[error("an ECDSA P-256 signature must be an ASN.1 DER SEQUENCE of two INTEGERs in range")]
    SignatureEncoding,
    /// A well-formed signature that does not verify.
    #[error("signature does not verify under this key")]
    BadSignature,
    /// A key type name other than `ed25519` and `p256`.
    #[error("unknown key type {0:?}: expected \"ed25519\" or \"p256\"")]
    UnknownKeyType(String),
}

/// The two supported signature schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// Ed25519 (RFC 8032).
    Ed25519,
    /// ECDSA over NIST P-256 with SHA-256 (FIPS 186-5).
    P256,
}

impl KeyType {
    fn name(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ed25519",
            KeyType::P256 => "p256",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyType {
    type Err = KeyError;

    /// Reads `ed25519` or `p256`, the names [`fmt::Display`] writes.
    fn from_str(s: &str) -> Result<Self, KeyError> {
        match s {
            "ed25519" => Ok(KeyType::Ed25519),
            "p256" => Ok(KeyType::P256),
            _ => Err(KeyError::UnknownKeyType(s.to_owned())),
        }
    }
}

/// SHA-256 of a key's normalised SubjectPublicKeyInfo DER ([`PublicKey::to_der`]).
/// Displays as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; 32]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// The key type an AlgorithmIdentifier names, checking its parameters:
/// absent for Ed25519 (RFC 8410 section 3), the namedCurve prime256v1 for
/// id-ecPublicKey (RFC 5480 section 2.1.1; implicit and specified curves are refused).
fn key_type(algorithm: &AlgorithmIdentifierRef<'_>) -> Result<KeyType, KeyError> {
    if algorithm.oid == ed25519_dalek::pkcs8::ALGORITHM_OID {
        return match algorithm.parameters {
            None => Ok(KeyType::Ed25519),
            Some(_) => Err(KeyError::AlgorithmParameters(
                "Ed25519 AlgorithmIdentifier must not have parameters (RFC 8410 section 3)",
            )),
        };
    }
    if algorithm.oid != p256::elliptic_curve::ALGORITHM_OID {
        return Err(KeyError::UnsupportedAlgorithm {
            oid: algorithm.oid.to_string(),
            name: algorithm_name(&algorithm.oid),
        });
    }
    let curve = algorithm.parameters_oid().map_err(|_| {
        KeyError::AlgorithmParameters(
            "EC key parameters must be a namedCurve OID (RFC 5480 section 2.1.1)",
        )
    })?;
    if curve != p256::NistP256::OID {
        return Err(KeyError::UnsupportedCurve {
            oid: curve.to_string(),
            name: curve_name(&curve),
        });
    }
    Ok(KeyType::P256)
}

/// A name for the key algorithms people most often send by mistake.
fn algorithm_name(oid: &ObjectIdentifier) -> &'static str {
    match oid.to_string().as_str() {
        "1.2.840.113549.1.1.1" => "RSA",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        "1.2.840.10040.4.1" => "DSA",
        "1.3.101.110" => "X25519",
        "1.3.101.111" => "X448",
        "1.3.101.113" => "Ed448",
        _ => "unknown",
    }
}

/// A name for the curves people most often send by mistake.
fn curve_name(oid: &ObjectIdentifier) -> &'static str {
    match oid.to_string().as_str() {
        "1.3.132.0.34" => "P-384 (secp384r1)",
        "1.3.132.0.35" => "P-521 (secp521r1)",
        "1.3.132.0.10" => "secp256k1",
        "1.2.840.10045.3.1.1" => "P-192 (prime192v1)",
        "1.3.132.0.33" => "P-224 (secp224r1)",
        _ => "unknown",
    }
}

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
//! Verification is deliberately narrow: Ed25519 is checked with
//! `verify_strict` (RFC 8032 section 5.1.7 plus the rejection of small-order
//! keys and of non-canonical `R` and `S`); ECDSA P-256 takes an ASN.1 DER
//! `Ecdsa-Sig-Value` (RFC 3279 section 2.2.3; BER variants are refused) over
//! SHA-256 of the message and, like Sigstore and Go's `crypto/ecdsa`, accepts
//! either value of `s`.
//!
//! Private keys ([`PrivateKey`]) exist for the command line and the tests: they
//! are read and written as unencrypted PKCS#8 (RFC 5208, RFC 5958).
//!
//! What this module is not: a certificate or key-trust layer (which keys may
//! publish what is decided elsewhere), a general PEM or ASN.1 library, or a
//! home for the log's own signing key (see `logkey`).

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
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
    /// compressed or uncompressed point).
    pub fn from_pem(pem: &str) -> Result<PublicKey, KeyError> {
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
    /// SHA-256(`msg`), low or high `s`.
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

/// A signing key, for the command line and for tests. The server never holds one.
#[derive(Debug, Clone)]
pub enum PrivateKey {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
}

impl PrivateKey {
    /// A fresh key from the operating system's random number generator.
    ///
    /// Panics if the operating system cannot supply randomness (as
    /// `rand_core::OsRng` does, and as Go's `crypto/rand` does since Go 1.24):
    /// there is no safe way to continue.
    pub fn generate(key_type: KeyType) -> PrivateKey {
        match key_type {
            KeyType::Ed25519 => {
                PrivateKey::Ed25519(ed25519_dalek::SigningKey::generate(&mut OsRng))
            }
            KeyType::P256 => PrivateKey::P256(p256::ecdsa::SigningKey::random(&mut OsRng)),
        }
    }

    /// Reads exactly one PEM `PRIVATE KEY` block holding an unencrypted PKCS#8
    /// Ed25519 (RFC 8410 section 7) or P-256 (RFC 5915) key.
    pub fn from_pkcs8_pem(pem: &str) -> Result<PrivateKey, KeyError> {
        let der = pem_decode(pem, PRIVATE_KEY_LABEL)?;
        let info = PrivateKeyInfo::try_from(der.as_slice()).map_err(|e| KeyError::Der {
            structure: "PKCS#8 PrivateKeyInfo",
            detail: e.to_string(),
        })?;
        let invalid = |algorithm, e: p256::pkcs8::Error| KeyError::InvalidPrivateKey {
            algorithm,
            detail: e.to_string(),
        };
        match key_type(&info.algorithm)? {
            KeyType::Ed25519 => ed25519_dalek::SigningKey::from_pkcs8_der(&der)
                .map(PrivateKey::Ed25519)
                .map_err(|e| invalid("Ed25519", e)),
            KeyType::P256 => p256::ecdsa::SigningKey::from_pkcs8_der(&der)
                .map(PrivateKey::P256)
                .map_err(|e| invalid("P-256", e)),
        }
    }

    /// The key as a PEM `PRIVATE KEY` block (unencrypted PKCS#8), in the same
    /// form OpenSSL writes; LF line endings.
    pub fn to_pkcs8_pem(&self) -> String {
        let der = Zeroizing::new(match self {
            PrivateKey::Ed25519(key) => [&ED25519_PKCS8_PREFIX[..], key.as_bytes()].concat(),
            PrivateKey::P256(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                let scalar = Zeroizing::new(key.to_bytes());
                [
                    &P256_PKCS8_PREFIX[..],
                    &scalar[..],
                    &P256_PKCS8_MIDDLE,
                    point.as_bytes(),
                ]
                .concat()
            }
        });
        pem_encode(PRIVATE_KEY_LABEL, &der)
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            PrivateKey::Ed25519(key) => PublicKey::Ed25519(key.verifying_key()),
            PrivateKey::P256(key) => PublicKey::P256(*key.verifying_key()),
        }
    }

    /// Which scheme this key belongs to.
    pub fn key_type(&self) -> KeyType {
        self.public_key().key_type()
    }

    /// Signs `msg`: Ed25519 (RFC 8032 section 5.1.6), or deterministic ECDSA
    /// (RFC 6979) over SHA-256(`msg`) as ASN.1 DER. [`PublicKey::verify`] accepts the result.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match self {
            PrivateKey::Ed25519(key) => ed25519_dalek::Signer::sign(key, msg).to_bytes().to_vec(),
            PrivateKey::P256(key) => {
                let sig: p256::ecdsa::Signature = key.sign(msg);
                sig.to_der().as_bytes().to_vec()
            }
        }
    }
}

/// `der` as a PEM block (RFC 7468 section 2): 64-column base64, LF endings.
fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = Zeroizing::new(BASE64.encode(der));
    let mut pem = format!("-----BEGIN {label}-----\n");
    for (i, c) in body.chars().enumerate() {
        if i > 0 && i % 64 == 0 {
            pem.push('\n');
        }
        pem.push(c);
    }
    pem.push_str("\n-----END ");
    pem.push_str(label);
    pem.push_str("-----\n");
    pem
}

/// The DER inside the only PEM block of `text`, which must be labelled `label`.
///
/// Stricter than RFC 7468's lax parser: ASCII whitespace may surround the
/// block but no other text may; no headers; body lines are base64 with no
/// spaces (any length, LF or CRLF endings), padded as RFC 4648 section 4 requires.
fn pem_decode(text: &str, label: &'static str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let blocks = text.lines().filter(|l| l.starts_with("-----BEGIN")).count();
    if blocks != 1 {
        return Err(KeyError::PemBlockCount(blocks));
    }
    let mut lines = text.lines();
    let found = lines
        .next()
        .and_then(|line| boundary_label(line, "-----BEGIN "))
        .ok_or(KeyError::Pem("the text must start with a -----BEGIN line"))?;
    if found != label {
        return Err(KeyError::PemLabel {
            found: found.to_owned(),
            expected: label,
        });
    }
    if lines
        .next_back()
        .and_then(|line| boundary_label(line, "-----END "))
        != Some(label)
    {
        return Err(KeyError::Pem(
            "the text must end with an -----END line matching the -----BEGIN line",
        ));
    }
    let mut body = Zeroizing::new(String::new());
    for line in lines {
        if line.contains(':') {
            return Err(KeyError::Pem("PEM headers are not allowed"));
        }
        body.push_str(line);
    }
    BASE64
        .decode(body.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| KeyError::Pem("the body is not padded standard base64"))
}

/// The label of a `-----BEGIN label-----` or `-----END label-----` line, if it
/// is one with a plausible label (printable ASCII, at most 64 characters).
fn boundary_label<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let label = line.strip_prefix(prefix)?.strip_suffix("-----")?;
    let plausible =
        label.len() <= MAX_LABEL_LEN && label.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
    plausible.then_some(label)
}

/// Public keys already read, by their PEM text, shared by threads. Publishers sign many
/// entries with one key, and reading a key (base64, DER, point decompression and checks, the
/// SHA-256 of its id) costs more than every other key check of an entry. Used by admission, the
/// auditor and the monitor. Bounded: emptied when full.
#[derive(Default)]
pub struct KeyCache {
    // A std Mutex: held for a lookup or an insert only, never across an await.
    keys: std::sync::Mutex<std::collections::HashMap<String, Result<CachedKey, KeyError>>>,
}

/// A key as [`KeyCache`] read it.
#[derive(Clone, Copy, Debug)]
pub struct CachedKey {
    pub key: PublicKey,
    pub id: KeyId,
    /// Whether the PEM text is exactly [`PublicKey::to_pem`] of the key: the form the log stores.
    pub normalised: bool,
}

impl KeyCache {
    /// Most PEM texts remembered.
    pub const CAPACITY: usize = 4096;

    /// The key of `pem` as [`PublicKey::from_pem`] reads it, with its id and form.
    ///
    /// # Errors
    /// Those of [`PublicKey::from_pem`] (remembered too).
    pub fn get(&self, pem: &str) -> Result<CachedKey, KeyError> {
        let lock = || self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = lock().get(pem) {
            return hit.clone();
        }
        let read = PublicKey::from_pem(pem).map(|key| CachedKey {
            key,
            id: key.key_id(),
            normalised: key.to_pem() == pem,
        });
        let mut keys = lock();
        if keys.len() >= Self::CAPACITY {
            keys.clear();
        }
        keys.insert(pem.to_string(), read.clone());
        read
    }

    /// [`PublicKey::from_pem`] through the cache.
    ///
    /// # Errors
    /// Those of [`PublicKey::from_pem`].
    pub fn key(&self, pem: &str) -> Result<PublicKey, KeyError> {
        self.get(pem).map(|k| k.key)
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn rejects_ed25519_signatures_of_wrong_length_or_malleated() {
        // The group order L, little-endian (RFC 8032 section 5.1).
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
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

    #[test]
    fn key_cache_reads_once_and_tells_the_normalised_form() {
        let key = PrivateKey::generate(KeyType::P256).public_key();
        let pem = key.to_pem();
        let cache = KeyCache::default();
        for _ in 0..2 {
            let k = cache.get(&pem).unwrap();
            assert_eq!((k.key, k.id, k.normalised), (key, key.key_id(), true));
        }
        let loose = format!("\n{pem}");
        let k = cache.get(&loose).unwrap();
        assert_eq!((k.key, k.normalised), (key, false));
        assert_eq!(cache.key("garbage"), PublicKey::from_pem("garbage"));
        for i in 0..KeyCache::CAPACITY + 1 {
            assert!(cache.get(&format!("not a key {i}")).is_err());
        }
        assert!(cache.keys.lock().unwrap().len() <= KeyCache::CAPACITY);
    }
}

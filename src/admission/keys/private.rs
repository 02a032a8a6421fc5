//! Private keys ([`PrivateKey`]) as unencrypted PKCS#8, for the command line
//! and the tests. The server never holds one.

use super::pem::{pem_decode, pem_encode};
use super::*;

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

//! Witness cosignatures, C2SP tlog-cosignature v1 (Ed25519, `cosignature/v1`): a witness's
//! statement that, at a time, the checkpoint is the largest consistent tree head it has seen of
//! that log.
//!
//! A cosignature is a signed-note signature line `— <witness name> base64(key id || timestamp ||
//! signature)`, where the key id is `SHA-256(name || "\n" || 0x04 || public key)[:4]`, the
//! timestamp a big-endian u64 of POSIX seconds, and the Ed25519 signature covers
//!
//! ```text
//! cosignature/v1
//! time <timestamp>
//! <the whole checkpoint body, extension lines included>
//! ```
//!
//! [`Cosigner`] makes them (the witness side), [`CosignerKey`] checks them (the log and every
//! client). What this module is not: it knows no witness policy ([`crate::tlog::policy`]) and no
//! witness protocol ([`crate::tlog::witness_protocol`]), and does no I/O.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};

use crate::tlog::note::{parse_key_id, parse_skey};

/// The signed-note algorithm byte of Ed25519 cosignature/v1 keys (C2SP tlog-cosignature).
pub const ALG_COSIGNATURE_V1: u8 = 0x04;

/// The largest timestamp a cosignature may carry (tlog-cosignature: at most 2^63 - 1).
const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// What is wrong with a cosigner key or a cosignature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CosignatureError {
    /// A verifier key that is not `<name>+<key id>+<base64 of 0x04 || Ed25519 public key>`.
    #[error("malformed witness verifier key {vkey:?}: {reason}")]
    MalformedVerifierKey { vkey: String, reason: &'static str },
    /// A private key that is not `PRIVATE+KEY+<name>+<key id>+<base64 of 0x04 || seed>`. The key
    /// itself is never echoed.
    #[error(
        "malformed witness signer key (want PRIVATE+KEY+<name>+<8 hex digit key id>+<base64 of \
         0x04 || 32-byte Ed25519 seed>): {reason}"
    )]
    MalformedSignerKey { reason: &'static str },
    /// A name that cannot be a signed-note key name.
    #[error("invalid witness name {0:?}: a key name is non-empty, without spaces or '+'")]
    InvalidName(String),
    /// A signature line that is not `— <name> <base64>` of a cosignature's length.
    #[error("malformed cosignature line {line:?}: {reason}")]
    MalformedLine { line: String, reason: &'static str },
    /// A cosignature of this key (name and key id) that does not verify.
    #[error("the cosignature by {name}+{key_id:08x} does not verify over this checkpoint")]
    BadSignature { name: String, key_id: u32 },
}

/// A witness's public key for cosignature/v1, with its name.
#[derive(Clone, PartialEq, Eq)]
pub struct CosignerKey {
    name: String,
    key: VerifyingKey,
    key_id: u32,
}

impl CosignerKey {
    /// Reads a C2SP verifier key of signature type 0x04.
    ///
    /// # Errors
    /// [`CosignatureError::MalformedVerifierKey`], also for a key of another type (a log's 0x01
    /// key is not a cosigner key) and for a key id that does not match.
    pub fn from_vkey(vkey: &str) -> Result<CosignerKey, CosignatureError> {
        let malformed = |reason| CosignatureError::MalformedVerifierKey {
            vkey: vkey.chars().take(300).collect(),
            reason,
        };
        let mut fields = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(malformed("want <name>+<8 hex digit key id>+<base64 key>"));
        };
        if !signed_note::is_key_name_valid(name) {
            return Err(malformed("the name is not a signed-note key name"));
        }
        let id = parse_key_id(id).ok_or(malformed("the key id is not 8 hex digits"))?;
        let key = BASE64
            .decode(key)
            .map_err(|_| malformed("the key is not padded standard base64"))?;
        let public: [u8; 32] = match key.split_first() {
            Some((&ALG_COSIGNATURE_V1, public)) => public
                .try_into()
                .map_err(|_| malformed("a cosignature/v1 key is 0x04 and 32 bytes"))?,
            Some((0x01, _)) => {
                return Err(malformed(
                    "this is a log (note signer) key, type 0x01; a witness key has type 0x04",
                ))
            }
            _ => return Err(malformed("the key is not a cosignature/v1 key (type 0x04)")),
        };
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|_| malformed("the key is not an Ed25519 point"))?;
        let built = CosignerKey::new(name, key)?;
        if built.key_id != id {
            return Err(malformed("the key id does not match the name and the key"));
        }
        Ok(built)
    }

    /// The key of witness `name`.
    ///
    /// # Errors
    /// [`CosignatureError::InvalidName`].
    pub fn new(name: &str, key: VerifyingKey) -> Result<CosignerKey, CosignatureError> {
        if !signed_note::is_key_name_valid(name) {
            return Err(CosignatureError::InvalidName(name.to_string()));
        }
        Ok(CosignerKey {
            name: name.to_string(),
            key_id: key_id(name, &key),
            key,
        })
    }

    /// The witness's name (the key name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The signed-note key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The C2SP verifier key, `<name>+<key id>+<base64 of 0x04 || public key>`.
    pub fn to_vkey(&self) -> String {
        let key = [&[ALG_COSIGNATURE_V1][..], self.key.as_bytes()].concat();
        format!("{}+{:08x}+{}", self.name, self.key_id, BASE64.encode(key))
    }

    /// Whether a signature line's name and key id are this key's (a line that is not may be
    /// another witness's, and is ignored).
    pub fn matches(&self, sig: &signed_note::Signature) -> bool {
        sig.name() == self.name && sig.id() == self.key_id
    }

    /// Checks a cosignature's bytes (after the key id: timestamp || signature) over a note's
    /// text, strictly (RFC 8032 with canonical encodings, no small-order keys), and returns its
    /// timestamp.
    ///
    /// # Errors
    /// [`CosignatureError::BadSignature`].
    pub fn verify(&self, text: &str, sig: &[u8]) -> Result<u64, CosignatureError> {
        let bad = || CosignatureError::BadSignature {
            name: self.name.clone(),
            key_id: self.key_id,
        };
        let (timestamp, signature) = split_signature(sig).ok_or_else(bad)?;
        self.key
            .verify_strict(&signed_message(text, timestamp), &signature)
            .map_err(|_| bad())?;
        Ok(timestamp)
    }
}

impl fmt::Debug for CosignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CosignerKey({})", self.to_vkey())
    }
}

/// A witness's private key: it cosigns checkpoints, and nothing else.
pub struct Cosigner {
    public: CosignerKey,
    key: SigningKey,
}

impl Cosigner {
    /// The cosigner `name` with `key`.
    ///
    /// # Errors
    /// [`CosignatureError::InvalidName`].
    pub fn new(name: &str, key: SigningKey) -> Result<Cosigner, CosignatureError> {
        Ok(Cosigner {
            public: CosignerKey::new(name, key.verifying_key())?,
            key,
        })
    }

    /// A cosigner with a new key from the operating system's random source.
    ///
    /// # Errors
    /// [`CosignatureError::InvalidName`].
    pub fn generate(name: &str) -> Result<Cosigner, CosignatureError> {
        Cosigner::new(name, SigningKey::generate(&mut rand_core::OsRng))
    }

    /// Reads `PRIVATE+KEY+<name>+<key id>+<base64 of 0x04 || 32-byte seed>` (see
    /// [`to_skey`](Self::to_skey)).
    ///
    /// # Errors
    /// [`CosignatureError::MalformedSignerKey`] or [`CosignatureError::InvalidName`].
    pub fn from_skey(skey: &str) -> Result<Cosigner, CosignatureError> {
        let malformed = |reason| CosignatureError::MalformedSignerKey { reason };
        let parts = parse_skey(
            skey.trim_end(),
            ALG_COSIGNATURE_V1,
            "the key is not a cosignature/v1 key (type 0x04)",
        )
        .map_err(malformed)?;
        let (name, id, seed) = (parts.name, parts.key_id, parts.seed);
        let cosigner = Cosigner::new(name, SigningKey::from_bytes(&seed))?;
        if cosigner.public.key_id != id {
            return Err(malformed("the key id does not match the name and the key"));
        }
        Ok(cosigner)
    }

    /// The private key encoding. It is the secret key: store it as such.
    pub fn to_skey(&self) -> String {
        let key = [&[ALG_COSIGNATURE_V1][..], &self.key.to_bytes()].concat();
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.public.name,
            self.public.key_id,
            BASE64.encode(key)
        )
    }

    /// The public side.
    pub fn public(&self) -> &CosignerKey {
        &self.public
    }

    /// Cosigns a checkpoint's note text (the body, extension lines included, ending in a
    /// newline) at `timestamp`, and returns the signature line, ending in a newline.
    ///
    /// # Panics
    /// If `timestamp` exceeds 2^63 - 1 (the caller reads it from the clock).
    pub fn cosign(&self, text: &str, timestamp: u64) -> String {
        assert!(
            timestamp <= MAX_TIMESTAMP,
            "cosignature timestamp out of range"
        );
        let signature = ed25519_dalek::Signer::sign(&self.key, &signed_message(text, timestamp));
        let mut bytes = Vec::with_capacity(4 + 8 + 64);
        bytes.extend(self.public.key_id.to_be_bytes());
        bytes.extend(timestamp.to_be_bytes());
        bytes.extend(signature.to_bytes());
        format!("— {} {}\n", self.public.name, BASE64.encode(bytes))
    }
}

impl fmt::Debug for Cosigner {
    /// Shows the public identity only, never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cosigner({})", self.public.to_vkey())
    }
}

/// `cosignature/v1\ntime <timestamp>\n` || text: the message a cosignature signs.
pub fn signed_message(text: &str, timestamp: u64) -> Vec<u8> {
    let mut msg = format!("cosignature/v1\ntime {timestamp}\n").into_bytes();
    msg.extend_from_slice(text.as_bytes());
    msg
}

/// Reads one signature line (`— <name> <base64>`, with or without its newline).
///
/// # Errors
/// [`CosignatureError::MalformedLine`].
pub fn parse_line(line: &str) -> Result<signed_note::Signature, CosignatureError> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    signed_note::Signature::from_bytes(line.as_bytes()).map_err(|_| {
        CosignatureError::MalformedLine {
            line: line.chars().take(200).collect(),
            reason: "want \"— <key name> <base64 of key id || signature>\"",
        }
    })
}

fn split_signature(sig: &[u8]) -> Option<(u64, Signature)> {
    if sig.len() != 8 + 64 {
        return None;
    }
    let timestamp = u64::from_be_bytes(sig[..8].try_into().ok()?);
    if timestamp > MAX_TIMESTAMP {
        return None;
    }
    Some((timestamp, Signature::from_bytes(sig[8..].try_into().ok()?)))
}

/// `SHA-256(name || "\n" || 0x04 || public key)[:4]`, big-endian.
fn key_id(name: &str, key: &VerifyingKey) -> u32 {
    signed_note::key_id(name, &[&[ALG_COSIGNATURE_V1][..], key.as_bytes()].concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "example.com/log\n7\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    fn cosigner(name: &str, seed: u8) -> Cosigner {
        Cosigner::new(name, SigningKey::from_bytes(&[seed; 32])).unwrap()
    }

    fn sig_bytes(line: &str) -> Vec<u8> {
        parse_line(line).unwrap().signature().to_vec()
    }

    #[test]
    fn cosignatures_verify_and_carry_their_time() {
        let w = cosigner("witness.example/w1", 1);
        let line = w.cosign(BODY, 1_679_315_147);
        assert!(line.starts_with("— witness.example/w1 ") && line.ends_with('\n'));
        let sig = parse_line(&line).unwrap();
        assert!(w.public().matches(&sig));
        assert_eq!(w.public().verify(BODY, sig.signature()), Ok(1_679_315_147));
    }

    #[test]
    fn a_cosignature_covers_the_body_the_time_and_nothing_else() {
        let w = cosigner("w", 2);
        let mut sig = sig_bytes(&w.cosign(BODY, 100));
        let other_body = BODY.replace("\n7\n", "\n8\n");
        assert!(w.public().verify(&other_body, &sig).is_err());
        sig[7] ^= 1; // the timestamp
        assert!(w.public().verify(BODY, &sig).is_err());
        // A log's note signature over the same text is not a cosignature.
        let log_sig =
            ed25519_dalek::Signer::sign(&SigningKey::from_bytes(&[2; 32]), BODY.as_bytes());
        let forged = [&100u64.to_be_bytes()[..], &log_sig.to_bytes()].concat();
        assert!(w.public().verify(BODY, &forged).is_err());
        assert!(w.public().verify(BODY, &[0; 71]).is_err());
    }

    #[test]
    fn keys_round_trip_through_their_encodings() {
        let w = cosigner("witness.example/w1", 3);
        let vkey = w.public().to_vkey();
        assert_eq!(CosignerKey::from_vkey(&vkey).unwrap(), *w.public());
        let back = Cosigner::from_skey(&w.to_skey()).unwrap();
        assert_eq!(back.public(), w.public());
        // The key id commits to the type byte: a log key of the same bytes has another id.
        let log_id = signed_note::key_id(
            "witness.example/w1",
            &[&[0x01][..], w.public().key.as_bytes()].concat(),
        );
        assert_ne!(log_id, w.public().key_id());
    }

    #[test]
    fn malformed_keys_are_refused() {
        let w = cosigner("w", 4);
        let vkey = w.public().to_vkey();
        let (name, rest) = vkey.split_once('+').unwrap();
        let (_, key) = rest.split_once('+').unwrap();
        let log_key = signed_note::new_ed25519_verifier_key("w", &w.public().key);
        for bad in [
            "",
            "w",
            &format!("{name}+00000000+{key}"),
            &format!("{name}+zz+{key}"),
            &format!("{name} x+{:08x}+{key}", w.public().key_id()),
            &log_key,
        ] {
            assert!(CosignerKey::from_vkey(bad).is_err(), "{bad}");
        }
        assert!(Cosigner::from_skey("PRIVATE+KEY+w+00000000+AAAA").is_err());
        let skey = w.to_skey();
        let err = Cosigner::from_skey(&skey.replace("+w+", "+v+")).unwrap_err();
        assert!(!err.to_string().contains(&skey[skey.len() - 20..]));
    }
}

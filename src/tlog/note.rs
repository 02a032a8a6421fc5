//! The log's signed notes: [`LogSigner`] signs checkpoints as C2SP signed notes with the log's
//! Ed25519 key, whose key name is the origin, and [`LogVerifier`] checks them against a pinned
//! verifier key; with the signed-note `PRIVATE+KEY+…` and verifier key encodings.
//!
//! It does no I/O (the key file is [`crate::server::logkey`]'s) and holds no checkpoint format
//! (the body is [`crate::tlog::checkpoint`]'s), and no witness cosignatures. The note format is
//! `signed_note`'s (the port of Go's `sumdb/note`).
//!
//! A log's key signs checkpoints and nothing else: [`LogSigner`] has no method that signs
//! arbitrary text, so no signed note of this log can be anything but a checkpoint.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use signed_note::{
    Note, NoteError, StandardVerifier, VerificationError, Verifier, VerifierError, Verifiers,
};

use crate::tlog::checkpoint::{Checkpoint, CheckpointError, Origin};

/// The signed-note algorithm byte of Ed25519 keys.
const ALG_ED25519: u8 = 0x01;

/// The log's signer: its origin and its Ed25519 key, which signs checkpoints as C2SP signed
/// notes under the key name `origin` and the key id
/// `SHA-256(origin || "\n" || 0x01 || public key)[:4]`. Signing is deterministic (Ed25519): one
/// checkpoint, one note.
pub struct LogSigner {
    origin: Origin,
    key: SigningKey,
    key_id: u32,
}

impl LogSigner {
    /// The signer of `origin` with `key`.
    pub fn new(origin: Origin, key: SigningKey) -> LogSigner {
        let key_id = signed_note::key_id(origin.as_str(), &public_key(&key));
        LogSigner {
            origin,
            key,
            key_id,
        }
    }

    /// A signer of `origin` with a new key from the operating system's random source.
    pub fn generate(origin: &Origin) -> LogSigner {
        LogSigner::new(origin.clone(), SigningKey::generate(&mut rand_core::OsRng))
    }

    /// Reads a signer from its signed-note private key encoding,
    /// `PRIVATE+KEY+<origin>+<key id>+<base64 of 0x01 || 32-byte seed>` (see
    /// [`to_skey`](Self::to_skey)).
    ///
    /// # Errors
    /// [`CheckpointError::MalformedSignerKey`] for a malformed encoding, another algorithm or a
    /// key id that does not match; [`CheckpointError::InvalidOrigin`] for the name.
    pub fn from_skey(skey: &str) -> Result<LogSigner, CheckpointError> {
        let malformed = |reason| CheckpointError::MalformedSignerKey { reason };
        let parts = parse_skey(
            skey,
            ALG_ED25519,
            "the key is not Ed25519 (algorithm byte 0x01)",
        )
        .map_err(malformed)?;
        let (origin, id, seed) = (Origin::new(parts.name)?, parts.key_id, parts.seed);
        let signer = LogSigner::new(origin, SigningKey::from_bytes(&seed));
        if signer.key_id != id {
            return Err(malformed("the key id does not match the name and the key"));
        }
        Ok(signer)
    }

    /// The signed-note private key encoding, `PRIVATE+KEY+<origin>+<key id>+<base64 of 0x01 ||
    /// seed>`. It is the secret key: store it as such.
    pub fn to_skey(&self) -> String {
        let key = [&[ALG_ED25519][..], &self.key.to_bytes()].concat();
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.origin,
            self.key_id,
            BASE64.encode(key)
        )
    }

    /// The C2SP verifier key, `<origin>+<key id>+<base64 of 0x01 || public key>`, that clients
    /// pin and give to [`LogVerifier::new`].
    pub fn verifier_key(&self) -> String {
        signed_note::new_ed25519_verifier_key(self.origin.as_str(), &self.key.verifying_key())
    }

    /// The log's origin, which is also the key name.
    pub fn origin(&self) -> &str {
        self.origin.as_str()
    }

    /// The signed-note key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// Signs `checkpoint` and returns the signed note: the body, a blank line, and the line
    /// `"— <origin> <base64 of key id || Ed25519 signature>\n"`. One Ed25519 signature.
    ///
    /// # Errors
    /// [`CheckpointError::OriginMismatch`] for a checkpoint of another origin;
    /// [`CheckpointError::Signing`] if `signed_note` refuses the note.
    pub fn sign(&self, checkpoint: &Checkpoint) -> Result<String, CheckpointError> {
        if checkpoint.origin != self.origin.as_str() {
            return Err(CheckpointError::OriginMismatch {
                want: self.origin.to_string(),
                got: checkpoint.origin.clone(),
            });
        }
        sign_text(self, &checkpoint.to_body())
    }
}

impl fmt::Debug for LogSigner {
    /// Shows the public identity only, never the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LogSigner({})", self.verifier_key())
    }
}

/// Signs a note's text (private: the log key signs checkpoints only).
fn sign_text(signer: &LogSigner, text: &str) -> Result<String, CheckpointError> {
    let signing = |e: NoteError| CheckpointError::Signing {
        reason: e.to_string(),
    };
    let mut note = Note::new(text.as_bytes(), &[]).map_err(signing)?;
    note.add_sigs(&[&NoteSigner(signer)]).map_err(signing)?;
    // A Note's text is UTF-8 and its signature lines are ASCII and an em dash.
    Ok(String::from_utf8_lossy(&note.to_bytes()).into_owned())
}

/// `signed_note`'s view of the log key, kept private so that nothing else is signed with it.
struct NoteSigner<'a>(&'a LogSigner);

impl signed_note::Signer for NoteSigner<'_> {
    fn name(&self) -> &str {
        self.0.origin.as_str()
    }

    fn key_id(&self) -> u32 {
        self.0.key_id
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        Ok(ed25519_dalek::Signer::sign(&self.0.key, msg)
            .to_bytes()
            .to_vec())
    }
}

/// 0x01 || Ed25519 public key, as signed-note key ids and verifier keys encode it.
fn public_key(key: &SigningKey) -> Vec<u8> {
    [&[ALG_ED25519][..], key.verifying_key().as_bytes()].concat()
}

/// The fields of a signed-note private key, `PRIVATE+KEY+<name>+<key id>+<base64 of alg ||
/// 32-byte Ed25519 seed>`, read but not checked against each other (the caller derives the key
/// id from the name and the key and compares).
pub(crate) struct SkeyParts<'a> {
    pub name: &'a str,
    pub key_id: u32,
    pub seed: [u8; 32],
}

/// Reads a private key of algorithm byte `alg` (`wrong_alg` is the message for another one);
/// the error says what is malformed and never echoes the key.
pub(crate) fn parse_skey<'a>(
    skey: &'a str,
    alg: u8,
    wrong_alg: &'static str,
) -> Result<SkeyParts<'a>, &'static str> {
    let mut fields = skey.splitn(5, '+');
    let (Some("PRIVATE"), Some("KEY"), Some(name), Some(id), Some(key)) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err("it does not have the five '+'-separated fields");
    };
    let key_id = parse_key_id(id).ok_or("the key id is not 8 hex digits")?;
    let key = BASE64
        .decode(key)
        .map_err(|_| "the key is not padded standard base64")?;
    let seed = match key.split_first() {
        Some((&a, seed)) if a == alg => <[u8; 32]>::try_from(seed)
            .map_err(|_| "the key is the algorithm byte and a 32-byte seed")?,
        _ => return Err(wrong_alg),
    };
    Ok(SkeyParts { name, key_id, seed })
}

/// An 8-hex-digit signed-note key id.
pub(crate) fn parse_key_id(hex: &str) -> Option<u32> {
    if hex.len() != 8 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

/// A verifier of one log's checkpoints, pinned to its verifier key: the key name is the origin
/// the checkpoints must carry.
#[derive(Clone)]
pub struct LogVerifier {
    vkey: String,
    verifier: StandardVerifier,
}

impl LogVerifier {
    /// The verifier of the C2SP verifier key `vkey`, `<name>+<key id>+<base64 of 0x01 || 32-byte
    /// Ed25519 public key>`.
    ///
    /// # Errors
    /// [`CheckpointError::MalformedVerifierKey`].
    pub fn new(vkey: &str) -> Result<LogVerifier, CheckpointError> {
        let verifier =
            StandardVerifier::new(vkey).map_err(|e| CheckpointError::MalformedVerifierKey {
                vkey: vkey.to_string(),
                reason: match e {
                    VerifierError::Format => {
                        "want <name>+<8 hex digit key id>+<base64 of 0x01 || 32-byte public key>"
                    }
                    VerifierError::Alg => "the key is not Ed25519 (algorithm byte 0x01)",
                    VerifierError::Id => "the key id does not match the name and the key",
                },
            })?;
        Ok(LogVerifier {
            vkey: vkey.to_string(),
            verifier,
        })
    }

    /// The origin of the log, which is the key name.
    pub fn origin(&self) -> &str {
        self.verifier.name()
    }

    /// The signed-note key id.
    pub fn key_id(&self) -> u32 {
        self.verifier.key_id()
    }

    /// The verifier key this verifier was made from.
    pub fn verifier_key(&self) -> &str {
        &self.vkey
    }

    /// Verifies a signed note and returns its text. The note must carry a valid signature by
    /// this key; signature lines of other keys are ignored, but a signature line with this key's
    /// name and id that does not verify rejects the note (C2SP signed-note). One Ed25519
    /// verification; notes are limited to 1 MB and 100 signatures.
    ///
    /// # Errors
    /// [`CheckpointError::MalformedNote`], [`CheckpointError::NotSigned`] or
    /// [`CheckpointError::BadSignature`].
    pub fn verify_note(&self, note: &str) -> Result<String, CheckpointError> {
        let parsed = Note::from_bytes(note.as_bytes()).map_err(note_error)?;
        let (name, key_id) = (self.origin().to_string(), self.key_id());
        match parsed.verify(&OneKey(&self.verifier)) {
            Ok(_) => Ok(String::from_utf8_lossy(parsed.text()).into_owned()),
            Err(NoteError::UnverifiedNote) => Err(CheckpointError::NotSigned { name, key_id }),
            Err(NoteError::InvalidSignature { .. }) => {
                Err(CheckpointError::BadSignature { name, key_id })
            }
            Err(e) => Err(note_error(e)),
        }
    }

    /// Verifies a signed checkpoint: a valid signature by this key (see
    /// [`verify_note`](Self::verify_note)) on a strict checkpoint body whose origin is this key's
    /// name.
    ///
    /// # Errors
    /// Those of [`verify_note`](Self::verify_note), [`CheckpointError::MalformedBody`], or
    /// [`CheckpointError::OriginMismatch`].
    pub fn verify(&self, note: &str) -> Result<Checkpoint, CheckpointError> {
        let checkpoint = Checkpoint::parse_body(&self.verify_note(note)?)?;
        if checkpoint.origin != self.origin() {
            return Err(CheckpointError::OriginMismatch {
                want: self.origin().to_string(),
                got: checkpoint.origin,
            });
        }
        Ok(checkpoint)
    }
}

impl fmt::Debug for LogVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LogVerifier({})", self.vkey)
    }
}

fn note_error(e: NoteError) -> CheckpointError {
    let reason = match e {
        NoteError::MalformedNote => "want UTF-8 text without control characters but newlines, \
             ending in a newline, then a blank line, then 1 to 100 lines \
             \"— <name> <base64 of key id || signature>\\n\"; 1 MB at most"
            .to_string(),
        e => e.to_string(),
    };
    CheckpointError::MalformedNote { reason }
}

/// The [`Verifiers`] set of one key: every other (name, key id) is unknown, so its signatures
/// are ignored.
struct OneKey<'a>(&'a StandardVerifier);

impl Verifiers for OneKey<'_> {
    fn verifier(&self, name: &str, id: u32) -> Result<&dyn Verifier, VerificationError> {
        if name == self.0.name() && id == self.0.key_id() {
            Ok(self.0)
        } else {
            Err(VerificationError::UnknownKey {
                name: name.to_string(),
                id,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::checkpoint::tests::checkpoint;

    const SEED: [u8; 32] = [7; 32];

    fn signer(origin: &str) -> LogSigner {
        LogSigner::new(Origin::new(origin).unwrap(), SigningKey::from_bytes(&SEED))
    }

    #[test]
    fn signer_keys_round_trip() {
        let signer = signer("example.com/log");
        let skey = signer.to_skey();
        assert!(skey.starts_with(&format!(
            "PRIVATE+KEY+example.com/log+{:08x}+",
            signer.key_id()
        )));
        let again = LogSigner::from_skey(&skey).unwrap();
        assert_eq!(again.to_skey(), skey);
        assert_eq!(again.verifier_key(), signer.verifier_key());
        let verifier = LogVerifier::new(&signer.verifier_key()).unwrap();
        assert_eq!(
            (verifier.origin(), verifier.key_id()),
            ("example.com/log", signer.key_id())
        );

        let generated = LogSigner::generate(&Origin::new("example.com/log").unwrap());
        assert_ne!(generated.verifier_key(), signer.verifier_key());
        assert_eq!(
            LogSigner::from_skey(&generated.to_skey())
                .unwrap()
                .to_skey(),
            generated.to_skey()
        );
    }

    #[test]
    fn malformed_signer_keys_are_rejected_without_echoing_them() {
        let skey = signer("example.com/log").to_skey();
        let fields: Vec<&str> = skey.splitn(5, '+').collect();
        let with = |i: usize, v: &str| {
            let mut f = fields.clone();
            f[i] = v;
            f.join("+")
        };
        let other_id = format!("{:08x}", signer("example.com/log").key_id() ^ 1);
        let seed64 = BASE64.encode([&[ALG_ED25519][..], &SEED].concat());
        let bad = [
            skey.replacen("PRIVATE", "PUBLIC", 1),
            fields[..4].join("+"),
            with(3, "1234567"),
            with(3, "1234567g"),
            with(3, &other_id),
            with(4, &seed64[..43]),
            with(4, &BASE64.encode([&[0x02][..], &SEED].concat())),
            with(
                4,
                &BASE64.encode([&[ALG_ED25519][..], &SEED[..31]].concat()),
            ),
            with(4, ""),
        ];
        for bad in bad {
            let err = LogSigner::from_skey(&bad).unwrap_err();
            assert!(
                matches!(err, CheckpointError::MalformedSignerKey { .. }),
                "{bad}: {err}"
            );
            assert!(!err.to_string().contains(&fields[4][..8]), "{err}");
        }
        let err = LogSigner::from_skey(&with(2, "a b")).unwrap_err();
        assert!(matches!(err, CheckpointError::InvalidOrigin { .. }));
        assert!(!format!("{:?}", signer("example.com/log")).contains(&fields[4][..8]));
    }

    #[test]
    fn signed_checkpoints_verify() {
        let signer = signer("example.com/log");
        let verifier = LogVerifier::new(&signer.verifier_key()).unwrap();
        for size in [0, 1, 1000, u64::MAX] {
            let c = checkpoint("example.com/log", size);
            let note = signer.sign(&c).unwrap();
            assert!(note.starts_with(&format!("{}\n— example.com/log ", c.to_body())));
            assert_eq!(
                signer.sign(&c).unwrap(),
                note,
                "Ed25519 signing is deterministic"
            );
            assert_eq!(verifier.verify(&note), Ok(c));
        }
    }

    #[test]
    fn signing_checks_the_origin() {
        let err = signer("example.com/log")
            .sign(&checkpoint("example.com/other", 1))
            .unwrap_err();
        let want = "example.com/log".to_string();
        let got = "example.com/other".to_string();
        assert_eq!(err, CheckpointError::OriginMismatch { want, got });
    }

    #[test]
    fn verification_failures_say_what_failed() {
        let signer = signer("example.com/log");
        let verifier = LogVerifier::new(&signer.verifier_key()).unwrap();
        let note = signer.sign(&checkpoint("example.com/log", 5)).unwrap();
        let (name, key_id) = ("example.com/log".to_string(), signer.key_id());

        let tampered = note.replacen("\n5\n", "\n6\n", 1);
        let bad = CheckpointError::BadSignature {
            name: name.clone(),
            key_id,
        };
        assert_eq!(verifier.verify(&tampered), Err(bad));

        let stranger = LogSigner::generate(&Origin::new("example.com/log").unwrap());
        let by_stranger = stranger.sign(&checkpoint("example.com/log", 5)).unwrap();
        assert_eq!(
            verifier.verify(&by_stranger),
            Err(CheckpointError::NotSigned { name, key_id })
        );

        let not_a_checkpoint = sign_text(&signer, "hello\n").unwrap();
        assert!(matches!(
            verifier.verify(&not_a_checkpoint),
            Err(CheckpointError::MalformedBody { .. })
        ));
        assert_eq!(
            verifier.verify_note(&not_a_checkpoint),
            Ok("hello\n".to_string())
        );

        let other_origin =
            sign_text(&signer, &checkpoint("example.com/other", 5).to_body()).unwrap();
        assert!(matches!(
            verifier.verify(&other_origin),
            Err(CheckpointError::OriginMismatch { .. })
        ));

        for malformed in [
            "",
            "example.com/log\n5\n",
            &note[..note.len() - 1],
            &note.replace('—', "-"),
        ] {
            let err = verifier.verify(malformed).unwrap_err();
            assert!(
                matches!(err, CheckpointError::MalformedNote { .. }),
                "{malformed:?}: {err}"
            );
        }
    }

    #[test]
    fn other_signatures_are_ignored() {
        let signer = signer("example.com/log");
        let witness = LogSigner::generate(&Origin::new("witness.example").unwrap());
        let c = checkpoint("example.com/log", 9);
        let note = signer.sign(&c).unwrap();
        let cosigned = sign_text(&witness, &c.to_body()).unwrap();
        let witness_line = cosigned.lines().last().unwrap().to_string();
        let with_witness = format!("{note}{witness_line}\n");
        let verifier = LogVerifier::new(&signer.verifier_key()).unwrap();
        assert_eq!(verifier.verify(&with_witness), Ok(c));
    }

    #[test]
    fn malformed_verifier_keys_are_rejected() {
        let vkey = signer("example.com/log").verifier_key();
        let bad = [
            String::new(),
            vkey.replacen("example.com/log", "example.com/other", 1),
            vkey[..vkey.len() - 4].to_string(),
            vkey.replacen("+A", "+B", 1),
        ];
        for bad in bad {
            let err = LogVerifier::new(&bad).unwrap_err();
            assert!(
                matches!(err, CheckpointError::MalformedVerifierKey { .. }),
                "{bad}: {err}"
            );
        }
    }
}

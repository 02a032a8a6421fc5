//! The log's tree head: a C2SP tlog-checkpoint body (origin, tree size, root hash) and the
//! [`Origin`] rules. The body is the text a log signs; signing and verifying it as a C2SP signed
//! note is [`crate::tlog::note`]'s.
//!
//! This module holds the [`Origin`] rules, the [`Checkpoint`] body and its strict reading, and
//! the error type of checkpoints and their notes ([`CheckpointError`]). It does no I/O, no tree
//! math (that is [`crate::tlog::merkle`]'s), no signing and no witness cosignatures.
//!
//! The body is read with `tlog_tiles::checkpoint`, which is already as strict as C2SP
//! tlog-checkpoint asks for a SHA-256 log: at least three lines each ending in `"\n"`, a
//! non-empty origin, the size in canonical decimal (no sign, no leading zero), the root in padded
//! standard base64 of exactly 32 bytes, and extension lines, if any, non-empty. Extension lines
//! are accepted and dropped: glasslog writes none and gives them no meaning.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::tlog::merkle::Hash;

/// The longest origin accepted, in bytes.
pub const MAX_ORIGIN_LEN: usize = 255;

/// The longest checkpoint body read, in bytes (the limit `tlog_tiles` and `signed_note` apply).
const MAX_BODY_LEN: usize = 1_000_000;

/// What is wrong with an origin, a key, a checkpoint body or a signed note.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// An origin that breaks the rules of [`Origin::new`].
    #[error("invalid origin {origin:?}: {reason}")]
    InvalidOrigin {
        origin: String,
        reason: &'static str,
    },
    /// A host name that cannot start an origin (see [`Origin::from_hostname`]).
    #[error("host name {host:?} cannot make an origin: {reason}; set the origin explicitly")]
    InvalidHostname { host: String, reason: &'static str },
    /// A checkpoint body that is not a strict C2SP tlog-checkpoint (the first 200 characters).
    #[error(
        "malformed checkpoint body {body:?}: want the origin, the tree size in decimal without \
         sign or leading zero, and the base64 of the 32-byte root hash, each on a line ending in \
         \"\\n\", then optional non-empty extension lines"
    )]
    MalformedBody { body: String },
    /// A checkpoint for another log.
    #[error("the checkpoint's origin {got:?} is not this log's origin {want:?}")]
    OriginMismatch { want: String, got: String },
    /// A verifier key that is not `<name>+<key id>+<base64 of 0x01 || Ed25519 public key>`.
    #[error("malformed verifier key {vkey:?}: {reason}")]
    MalformedVerifierKey { vkey: String, reason: &'static str },
    /// A signer key that is not `PRIVATE+KEY+<name>+<key id>+<base64 of 0x01 || seed>`. The key
    /// itself is never echoed.
    #[error(
        "malformed signer key (want PRIVATE+KEY+<name>+<8 hex digit key id>+<base64 of 0x01 || \
         32-byte Ed25519 seed>): {reason}"
    )]
    MalformedSignerKey { reason: &'static str },
    /// Text that is not a signed note.
    #[error("malformed signed note: {reason}")]
    MalformedNote { reason: String },
    /// A well-formed note without a signature by the expected key.
    #[error("the note carries no signature by {name}+{key_id:08x}")]
    NotSigned { name: String, key_id: u32 },
    /// A signature by the expected key (name and key id) that does not verify.
    #[error(
        "the signature by {name}+{key_id:08x} does not verify: the note was altered after \
         signing, or signed by another key under the same name and key id"
    )]
    BadSignature { name: String, key_id: u32 },
    /// Signing failed.
    #[error("cannot sign: {reason}")]
    Signing { reason: String },
}

/// A log's origin: the first line of its checkpoints and the name of its key, in the
/// schemeless-URL form C2SP tlog-checkpoint asks for (`example.com/log`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Origin(String);

impl Origin {
    /// Checks an origin: non-empty, at most [`MAX_ORIGIN_LEN`] bytes, no scheme (`://`), no white
    /// space or control character, no `+`, no trailing `/`, and a valid signed-note key name.
    ///
    /// # Errors
    /// [`CheckpointError::InvalidOrigin`], with the rule broken.
    pub fn new(origin: &str) -> Result<Origin, CheckpointError> {
        check_origin(origin).map_err(|reason| CheckpointError::InvalidOrigin {
            origin: origin.to_string(),
            reason,
        })?;
        Ok(Origin(origin.to_string()))
    }

    /// The default origin of a server: `<host>/glasslog`, with the host name lowercased.
    ///
    /// # Errors
    /// [`CheckpointError::InvalidHostname`] unless the host is dot-separated labels of ASCII
    /// letters, digits and inner hyphens (RFC 1123); [`CheckpointError::InvalidOrigin`] if the
    /// result is too long.
    pub fn from_hostname(host: &str) -> Result<Origin, CheckpointError> {
        let host = host.to_ascii_lowercase();
        check_hostname(&host).map_err(|reason| CheckpointError::InvalidHostname {
            host: host.clone(),
            reason,
        })?;
        Origin::new(&format!("{host}/glasslog"))
    }

    /// The origin as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Origin {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn check_origin(origin: &str) -> Result<(), &'static str> {
    if origin.is_empty() {
        return Err("it is empty");
    }
    if origin.len() > MAX_ORIGIN_LEN {
        return Err("it is longer than 255 bytes");
    }
    if origin.contains("://") {
        return Err("it has a scheme; write the URL without it, as in example.com/log");
    }
    if origin.chars().any(char::is_whitespace) {
        return Err("it contains white space");
    }
    if origin.chars().any(char::is_control) {
        return Err("it contains a control character");
    }
    if origin.contains('+') {
        return Err("it contains '+', which separates the fields of signed-note keys");
    }
    if origin.ends_with('/') {
        return Err("it ends with '/'");
    }
    if !signed_note::is_key_name_valid(origin) {
        return Err("it is not a valid signed-note key name");
    }
    Ok(())
}

fn check_hostname(host: &str) -> Result<(), &'static str> {
    if host.is_empty() {
        return Err("it is empty");
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Err("it has an empty label (a leading, trailing or double dot)");
        }
        if label.len() > 63 {
            return Err("it has a label longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("only ASCII letters, digits, '-' and '.' may appear in it");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("it has a label that starts or ends with '-'");
        }
    }
    Ok(())
}

/// A tree head: the log's origin, its size in leaves and the root hash of its Merkle tree.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The log's origin (the key name of its signer).
    pub origin: String,
    /// The number of leaves.
    pub size: u64,
    /// The RFC 6962 root hash of the first `size` leaves.
    pub root: Hash,
}

impl Checkpoint {
    /// The C2SP tlog-checkpoint body: `"<origin>\n<size>\n<base64 root>\n"`, the text a log
    /// signs. [`parse_body`](Self::parse_body) reads it back whenever the origin is a valid
    /// origin line (non-empty, without newline).
    pub fn to_body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root.0)
        )
    }

    /// Reads a checkpoint body strictly (see the module documentation); extension lines are
    /// dropped. The origin is not checked against [`Origin`]'s rules, only required non-empty:
    /// other logs' checkpoints (`go.sum database tree`) read too.
    ///
    /// # Errors
    /// [`CheckpointError::MalformedBody`].
    pub fn parse_body(text: &str) -> Result<Checkpoint, CheckpointError> {
        let malformed = || CheckpointError::MalformedBody {
            body: text.chars().take(200).collect(),
        };
        if text.len() > MAX_BODY_LEN {
            return Err(malformed()); // tlog_tiles would read a truncated prefix
        }
        let parsed = tlog_tiles::checkpoint::Checkpoint::from_bytes(text.as_bytes())
            .map_err(|_| malformed())?;
        Ok(Checkpoint {
            origin: parsed.origin().to_string(),
            size: parsed.size(),
            root: *parsed.hash(),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tlog::merkle::{leaf_hash, EMPTY_HASH};

    /// A checkpoint of `origin` and `size` with a root made up from the size.
    pub(crate) fn checkpoint(origin: &str, size: u64) -> Checkpoint {
        Checkpoint {
            origin: origin.to_string(),
            size,
            root: leaf_hash(&size.to_be_bytes()),
        }
    }

    #[test]
    fn origins_follow_the_rules() {
        for good in [
            "example.com/log",
            "log",
            "sum.golang.org",
            "a.b/c/d",
            "例え.jp/log",
        ] {
            let origin = Origin::new(good).unwrap();
            assert_eq!(origin.as_str(), good);
            assert!(signed_note::is_key_name_valid(origin.as_str()));
        }
        let long = "a".repeat(MAX_ORIGIN_LEN + 1);
        let bad = [
            "",
            &long,
            "https://example.com/log",
            "example.com/my log",
            "example.com/log\n",
            "example.com/\u{2003}log",
            "example.com/\u{7}log",
            "example.com/log+1",
            "example.com/log/",
        ];
        for bad in bad {
            let err = Origin::new(bad).unwrap_err();
            assert!(
                matches!(err, CheckpointError::InvalidOrigin { .. }),
                "{bad:?}: {err}"
            );
        }
        assert!(Origin::new(&long[1..]).is_ok());
    }

    #[test]
    fn hostnames_make_origins() {
        let origin = Origin::from_hostname("Build-01.Example.COM").unwrap();
        assert_eq!(origin.as_str(), "build-01.example.com/glasslog");
        assert_eq!(
            Origin::from_hostname("localhost").unwrap().as_str(),
            "localhost/glasslog"
        );
        let long_label = "a".repeat(64);
        for bad in [
            "",
            "host_name",
            "-a",
            "a-",
            "a..b",
            ".a",
            "a.",
            "ü.de",
            "a b",
            "a/b",
            &long_label,
        ] {
            let err = Origin::from_hostname(bad).unwrap_err();
            assert!(
                matches!(err, CheckpointError::InvalidHostname { .. }),
                "{bad:?}: {err}"
            );
        }
        let too_long = ["a"; 124].join(".");
        assert!(matches!(
            Origin::from_hostname(&too_long),
            Err(CheckpointError::InvalidOrigin { .. })
        ));
    }

    #[test]
    fn bodies_round_trip() {
        for c in [checkpoint("example.com/log", 0), checkpoint("o", u64::MAX)] {
            assert_eq!(Checkpoint::parse_body(&c.to_body()), Ok(c));
        }
        let empty = Checkpoint {
            origin: "example.com/log".into(),
            size: 0,
            root: EMPTY_HASH,
        };
        let body = "example.com/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n";
        assert_eq!(empty.to_body(), body);
        let with_extension = format!("{body}extension\n");
        assert_eq!(Checkpoint::parse_body(&with_extension), Ok(empty));
    }

    #[test]
    fn bodies_are_read_strictly() {
        let body = checkpoint("example.com/log", 5).to_body();
        let (origin, rest) = body.split_once('\n').unwrap();
        let (_, root) = rest.split_once('\n').unwrap();
        let bad = [
            format!("{origin}\n05\n{root}"),
            format!("{origin}\n+5\n{root}"),
            format!("{origin}\n 5\n{root}"),
            format!("\n5\n{root}"),
            format!("{origin}\n5\n{}", root.replace("=\n", "\n")),
            body.trim_end().to_string(),
            format!("{body}\n"),
            format!("{body}ext\n\n"),
            format!("{body}ext"),
            format!("{body}{}\n", "x".repeat(MAX_BODY_LEN)),
        ];
        for text in bad {
            let err = Checkpoint::parse_body(&text).unwrap_err();
            let CheckpointError::MalformedBody { body } = &err else {
                panic!("{err}")
            };
            assert!(body.chars().count() <= 200);
        }
    }
}

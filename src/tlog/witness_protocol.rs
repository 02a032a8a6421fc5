//! The bodies of C2SP tlog-witness v1.0.0 `add-checkpoint`: the request a log sends, and the
//! answers a witness gives (cosignature lines with 200, its known size with 409).
//!
//! ```text
//! old <size>\n            decimal, no leading zero
//! <base64 hash>\n         0 to 63 lines: the RFC 6962 consistency proof from <size>
//! \n
//! <signed checkpoint note>
//! ```
//!
//! Formats only: which status a witness answers is [`crate::witness`]'s decision, and sending
//! is the log's ([`crate::server::witnessing`]). No I/O.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::tlog::merkle::Hash;

/// The most consistency proof lines a request may carry (tlog-witness).
pub const MAX_PROOF_LINES: usize = 63;

/// The largest request body read: a 1 MB note (signed-note's limit), the proof, the size line.
pub const MAX_REQUEST_BYTES: usize = 1_000_000 + MAX_PROOF_LINES * 45 + 32;

/// The content type of a 409 answer's body, the witness's known size.
pub const SIZE_CONTENT_TYPE: &str = "text/x.tlog.size";

/// Why a body does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed add-checkpoint body: {0}")]
pub struct ProtocolError(pub &'static str);

/// An `add-checkpoint` request.
#[derive(Clone, Debug, PartialEq)]
pub struct AddCheckpoint {
    /// The size of the checkpoint the witness last cosigned, as the log believes (0: none).
    pub old_size: u64,
    /// The consistency proof from `old_size` to the checkpoint's size (empty when 0).
    pub proof: Vec<Hash>,
    /// The signed checkpoint, signature lines included, ending in a newline.
    pub note: String,
}

impl AddCheckpoint {
    /// The request body.
    pub fn to_body(&self) -> Vec<u8> {
        let mut body = format!("old {}\n", self.old_size);
        for h in &self.proof {
            body += &BASE64.encode(h.0);
            body.push('\n');
        }
        body.push('\n');
        body += &self.note;
        body.into_bytes()
    }

    /// Reads a request body strictly. The note is only split off here; its signatures and body
    /// are the witness's to check.
    ///
    /// # Errors
    /// [`ProtocolError`] saying what is wrong.
    pub fn parse(body: &[u8]) -> Result<AddCheckpoint, ProtocolError> {
        if body.len() > MAX_REQUEST_BYTES {
            return Err(ProtocolError("larger than a checkpoint and a proof can be"));
        }
        let text = std::str::from_utf8(body).map_err(|_| ProtocolError("not UTF-8"))?;
        let (head, note) = text
            .split_once("\n\n")
            .ok_or(ProtocolError("no empty line before the checkpoint"))?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .ok_or(ProtocolError("the first line is not \"old <size>\""))?;
        let old_size = parse_decimal(old).ok_or(ProtocolError(
            "the old size is not a decimal number without leading zeroes",
        ))?;
        let mut proof = Vec::new();
        for line in lines {
            if proof.len() == MAX_PROOF_LINES {
                return Err(ProtocolError("more than 63 consistency proof lines"));
            }
            let hash = BASE64
                .decode(line)
                .ok()
                .and_then(|h| <[u8; 32]>::try_from(h).ok())
                .ok_or(ProtocolError(
                    "a proof line is not the base64 of a 32-byte hash",
                ))?;
            proof.push(Hash(hash));
        }
        if old_size == 0 && !proof.is_empty() {
            return Err(ProtocolError("a proof from size 0 must be empty"));
        }
        if note.is_empty() {
            return Err(ProtocolError("no checkpoint after the empty line"));
        }
        Ok(AddCheckpoint {
            old_size,
            proof,
            note: note.to_string(),
        })
    }
}

/// The body of a 409 answer: the size, in decimal, and a newline.
pub fn size_body(size: u64) -> String {
    format!("{size}\n")
}

/// Reads a 409 answer's body.
///
/// # Errors
/// [`ProtocolError`] if it is not one decimal line.
pub fn parse_size_body(body: &[u8]) -> Result<u64, ProtocolError> {
    std::str::from_utf8(body)
        .ok()
        .and_then(|s| s.strip_suffix('\n'))
        .and_then(parse_decimal)
        .ok_or(ProtocolError("a 409 body is a decimal size and a newline"))
}

/// Splits a 200 answer's body into its signature lines, each kept with its newline.
///
/// # Errors
/// [`ProtocolError`] unless it is one or more lines that start with "— " and end in a newline.
pub fn parse_cosignature_lines(body: &[u8]) -> Result<Vec<String>, ProtocolError> {
    let text = std::str::from_utf8(body).map_err(|_| ProtocolError("not UTF-8"))?;
    let Some(text) = text.strip_suffix('\n') else {
        return Err(ProtocolError("the answer does not end in a newline"));
    };
    let lines: Vec<String> = text.split('\n').map(|l| format!("{l}\n")).collect();
    if lines.iter().any(|l| !l.starts_with("— ")) {
        return Err(ProtocolError("an answer line is not a signature line"));
    }
    Ok(lines)
}

/// ASCII decimal without sign or leading zero ("0" itself allowed).
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTE: &str = "example.com/log\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— example.com/log AAAA\n";

    #[test]
    fn requests_round_trip() {
        let req = AddCheckpoint {
            old_size: 2,
            proof: vec![Hash([1; 32]), Hash([2; 32])],
            note: NOTE.to_string(),
        };
        let body = req.to_body();
        assert!(body.starts_with(b"old 2\nAQEB"));
        assert_eq!(AddCheckpoint::parse(&body).unwrap(), req);
        let first = AddCheckpoint {
            old_size: 0,
            proof: vec![],
            note: NOTE.to_string(),
        };
        assert_eq!(AddCheckpoint::parse(&first.to_body()).unwrap(), first);
    }

    #[test]
    fn malformed_requests_are_refused() {
        let h = BASE64.encode([7u8; 32]);
        for bad in [
            "".to_string(),
            format!("old 1\n{h}\n{NOTE}"),
            format!("old 01\n{h}\n\n{NOTE}"),
            format!("old -1\n\n{NOTE}"),
            format!("old  1\n\n{NOTE}"),
            format!("new 1\n\n{NOTE}"),
            format!("old 0\n{h}\n\n{NOTE}"),
            format!("old 1\n{}\n\n{NOTE}", BASE64.encode([7u8; 31])),
            format!("old 1\n{}\n\n{NOTE}", vec![h.as_str(); 64].join("\n")),
            "old 1\n\n".to_string(),
        ] {
            assert!(AddCheckpoint::parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let ok = format!("old 1\n{}\n\n{NOTE}", vec![h.as_str(); 63].join("\n"));
        assert_eq!(AddCheckpoint::parse(ok.as_bytes()).unwrap().proof.len(), 63);
    }

    #[test]
    fn answers() {
        assert_eq!(parse_size_body(size_body(42).as_bytes()), Ok(42));
        assert!(parse_size_body(b"42").is_err() && parse_size_body(b"042\n").is_err());
        let lines = parse_cosignature_lines("— w AAAA\n— v BBBB\n".as_bytes()).unwrap();
        assert_eq!(lines, ["— w AAAA\n", "— v BBBB\n"]);
        assert!(parse_cosignature_lines(b"").is_err());
        assert!(parse_cosignature_lines("— w AAAA".as_bytes()).is_err());
        assert!(parse_cosignature_lines(b"w AAAA\n").is_err());
    }
}

//! PEM framing (RFC 7468) of the one DER block a key file holds. Not a
//! general PEM library: one block, the expected label, strict base64.

use super::*;

/// `der` as a PEM block (RFC 7468 section 2): 64-column base64, LF endings.
pub(super) fn pem_encode(label: &str, der: &[u8]) -> String {
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
pub(super) fn pem_decode(text: &str, label: &'static str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
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

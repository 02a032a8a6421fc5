//! DSSE envelopes: strict parsing, the pre-authentication encoding, and
//! all-keys, all-signatures verification.
//!
//! The format is the JSON envelope of the DSSE specification
//! (<https://github.com/secure-systems-lab/dsse>, `envelope.md`):
//!
//! ```json
//! {"payload": "<base64>", "payloadType": "<type>",
//!  "signatures": [{"keyid": "<hint>", "sig": "<base64>"}]}
//! ```
//!
//! and every signature is over `PAE(payloadType, payload)` (`protocol.md`,
//! "Signature Definition"). Parsing goes through [`crate::admission::strict_json`], so an
//! envelope that another decoder would read differently (duplicate or
//! case-variant keys) is refused, and so is any field the specification does
//! not define.
//!
//! Verification here is stricter than the specification's `(t, n)` threshold
//! rule: the caller names the publisher's keys, and [`verify`] requires that
//! *every* signature verify under one of them and that *every* key verify one
//! of the signatures, so that what is logged is exactly "these keys signed
//! these bytes". `keyid` is an unauthenticated hint (`protocol.md`: it "MUST
//! NOT be used for security decisions") and plays no part.
//!
//! What this module is not: it does not interpret the payload or decide which
//! payload types are acceptable, and it canonicalises nothing. The payload is
//! exactly the bytes the base64 decodes to; callers hash and store those.

use std::collections::BTreeMap;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde_json::{json, Value};
use thiserror::Error;

use crate::admission::keys::{KeyError, KeyId, PrivateKey, PublicKey};
use crate::admission::strict_json::{self, JsonError, ROOT};

/// Most signatures one envelope may carry.
pub const MAX_SIGNATURES: usize = 8;

/// Most publisher keys one submission may name.
pub const MAX_KEYS: usize = 8;

/// Standard alphabet (RFC 4648 section 4), padding optional.
const BASE64_STANDARD_ANY_PAD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// URL-safe alphabet (RFC 4648 section 5), padding optional.
const BASE64_URL_SAFE_ANY_PAD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why an envelope or a submission was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DsseError {
    /// The envelope is not strict JSON of the envelope's shape.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// `payloadType` is the empty string.
    #[error("$.payloadType is empty; it must name the type of the payload")]
    EmptyPayloadType,
    /// A base64 field does not decode; `path` names it.
    #[error(
        "{path} is not base64 (standard or URL-safe alphabet, one alphabet per \
         field, padding optional): {detail}"
    )]
    Base64 { path: String, detail: String },
    /// `signatures` is empty.
    #[error("$.signatures is empty; an envelope needs at least one signature")]
    NoSignatures,
    /// `signatures` has more than [`MAX_SIGNATURES`] entries.
    #[error("$.signatures has {count} entries; at most {limit} are accepted")]
    TooManySignatures { count: usize, limit: usize },
    /// A signature's `sig` decodes to no bytes.
    #[error("$.signatures[{index}].sig is empty")]
    EmptySignature { index: usize },
    /// No publisher key was given.
    #[error("no publisher keys given; at least one is required")]
    NoKeys,
    /// More than [`MAX_KEYS`] publisher keys were given.
    #[error("{count} publisher keys given; at most {limit} are accepted")]
    TooManyKeys { count: usize, limit: usize },
    /// Publisher key `index` (0-based, in the order given) does not parse.
    #[error("publisher key {index}: {reason}")]
    Key { index: usize, reason: KeyError },
    /// Two publisher keys are the same key, possibly spelled differently.
    #[error("publisher keys {first} and {second} are the same key ({key_id})")]
    DuplicateKey {
        first: usize,
        second: usize,
        key_id: KeyId,
    },
    /// A signature verifies under none of the publisher keys.
    #[error("$.signatures[{index}] does not verify under any of the publisher keys")]
    UnverifiedSignature { index: usize },
    /// A publisher key verifies none of the signatures.
    #[error("publisher key {index} ({key_id}) verifies none of the envelope's signatures")]
    UnusedKey { index: usize, key_id: KeyId },
}

/// A DSSE envelope as sent: nothing in it is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `payloadType`: what the payload is; authenticated by the signatures.
    pub payload_type: String,
    /// The payload bytes, base64-decoded, exactly as sent.
    pub payload: Vec<u8>,
    /// The signatures, in the order sent.
    pub signatures: Vec<Signature>,
}

/// One entry of an envelope's `signatures`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// `keyid`: an unauthenticated hint, empty when absent.
    pub keyid: String,
    /// `sig`, base64-decoded.
    pub sig: Vec<u8>,
}

/// An envelope together with the publisher keys that signed it.
///
/// Invariant (from [`verify`]): every signature verifies under one of `keys`
/// over [`pae`] of the payload, every key verifies one of the signatures, and
/// `keys` are distinct and sorted by [`KeyId`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEnvelope {
    pub envelope: Envelope,
    pub keys: Vec<PublicKey>,
}

/// The DSSE v1 pre-authentication encoding (`protocol.md`, "PAE"):
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, where `LEN` is the
/// byte length in ASCII decimal without leading zeros.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let header = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    );
    [header.as_bytes(), payload].concat()
}

impl Envelope {
    /// Reads a JSON envelope: an object with exactly `payloadType` (a non-empty
    /// string), `payload` (base64) and `signatures` (1 to [`MAX_SIGNATURES`]
    /// objects with a non-empty base64 `sig` and an optional string `keyid`).
    /// Base64 may use either alphabet, padded or not (`protocol.md`: verifiers
    /// "MUST accept either"). Nothing is verified.
    pub fn parse(json: &[u8]) -> Result<Envelope, DsseError> {
        let root = strict_json::parse(json)?;
        let top = strict_json::object(&root, ROOT)?;
        strict_json::deny_unknown_fields(top, &["payloadType", "payload", "signatures"], ROOT)?;
        let payload_type = strict_json::require_str(top, "payloadType", ROOT)?;
        let payload = decode_base64(strict_json::require_str(top, "payload", ROOT)?, "$.payload")?;
        let entries = strict_json::require_array(top, "signatures", ROOT)?;
        check_signature_count(entries.len())?;
        let signatures = entries
            .iter()
            .enumerate()
            .map(|(index, entry)| parse_signature(index, entry))
            .collect::<Result<Vec<_>, _>>()?;
        let envelope = Envelope {
            payload_type: payload_type.to_owned(),
            payload,
            signatures,
        };
        check_shape(&envelope)?;
        Ok(envelope)
    }

    /// The envelope as compact JSON: standard padded base64, `keyid` always
    /// written, keys in a fixed order. [`Envelope::parse`] reads it back.
    pub fn to_json(&self) -> Vec<u8> {
        let signatures: Vec<Value> = self
            .signatures
            .iter()
            .map(|s| json!({"keyid": s.keyid, "sig": STANDARD.encode(&s.sig)}))
            .collect();
        let envelope = json!({
            "payload": STANDARD.encode(&self.payload),
            "payloadType": self.payload_type,
            "signatures": signatures,
        });
        envelope.to_string().into_bytes()
    }

    /// Signs `payload` with each of `keys`, in order, over [`pae`]; each
    /// `keyid` is the signer's [`KeyId`] in hex.
    pub fn sign(payload_type: &str, payload: &[u8], keys: &[&PrivateKey]) -> Envelope {
        let message = pae(payload_type, payload);
        let signatures = keys
            .iter()
            .map(|key| Signature {
                keyid: key.public_key().key_id().to_string(),
                sig: key.sign(&message),
            })
            .collect();
        Envelope {
            payload_type: payload_type.to_owned(),
            payload: payload.to_vec(),
            signatures,
        }
    }
}

/// Entry `index` of `signatures`: `{"sig": base64, "keyid"?: string}`.
fn parse_signature(index: usize, entry: &Value) -> Result<Signature, DsseError> {
    let path = strict_json::element_path("$.signatures", index);
    let fields = strict_json::object(entry, &path)?;
    strict_json::deny_unknown_fields(fields, &["keyid", "sig"], &path)?;
    let keyid = strict_json::optional_str(fields, "keyid", &path)?.unwrap_or_default();
    let sig = strict_json::require_str(fields, "sig", &path)?;
    Ok(Signature {
        keyid: keyid.to_owned(),
        sig: decode_base64(sig, &strict_json::member_path(&path, "sig"))?,
    })
}

/// Decodes the base64 field at `path`: the URL-safe alphabet if the text has a
/// `-` or `_`, else the standard one; padding optional but, if present, exact;
/// unused trailing bits must be zero, so each byte string has one spelling per
/// alphabet and padding choice.
fn decode_base64(text: &str, path: &str) -> Result<Vec<u8>, DsseError> {
    let engine = if text.contains(['-', '_']) {
        &BASE64_URL_SAFE_ANY_PAD
    } else {
        &BASE64_STANDARD_ANY_PAD
    };
    engine.decode(text).map_err(|e| DsseError::Base64 {
        path: path.to_owned(),
        detail: e.to_string(),
    })
}

fn check_signature_count(count: usize) -> Result<(), DsseError> {
    match count {
        0 => Err(DsseError::NoSignatures),
        count if count > MAX_SIGNATURES => Err(DsseError::TooManySignatures {
            count,
            limit: MAX_SIGNATURES,
        }),
        _ => Ok(()),
    }
}

fn check_key_count(count: usize) -> Result<(), DsseError> {
    match count {
        0 => Err(DsseError::NoKeys),
        count if count > MAX_KEYS => Err(DsseError::TooManyKeys {
            count,
            limit: MAX_KEYS,
        }),
        _ => Ok(()),
    }
}

/// What [`Envelope::parse`] guarantees beyond JSON types, checked again by
/// [`verify`] since an [`Envelope`] can also be built in code.
fn check_shape(envelope: &Envelope) -> Result<(), DsseError> {
    if envelope.payload_type.is_empty() {
        return Err(DsseError::EmptyPayloadType);
    }
    check_signature_count(envelope.signatures.len())?;
    match envelope.signatures.iter().position(|s| s.sig.is_empty()) {
        Some(index) => Err(DsseError::EmptySignature { index }),
        None => Ok(()),
    }
}

/// Refuses two keys with the same [`KeyId`], naming both positions.
fn check_distinct(keys: &[PublicKey]) -> Result<(), DsseError> {
    let mut seen = BTreeMap::new();
    for (second, key) in keys.iter().enumerate() {
        let key_id = key.key_id();
        if let Some(&first) = seen.get(&key_id) {
            return Err(DsseError::DuplicateKey {
                first,
                second,
                key_id,
            });
        }
        seen.insert(key_id, second);
    }
    Ok(())
}

/// Verifies `envelope` against the publisher's `keys` (1 to [`MAX_KEYS`],
/// distinct): every signature must verify over [`pae`] under at least one key,
/// and every key must verify at least one signature. `keyid` is ignored. At
/// most `MAX_SIGNATURES × MAX_KEYS` = 64 signature checks are made.
pub fn verify(envelope: Envelope, keys: &[PublicKey]) -> Result<VerifiedEnvelope, DsseError> {
    check_key_count(keys.len())?;
    check_distinct(keys)?;
    check_shape(&envelope)?;
    let message = pae(&envelope.payload_type, &envelope.payload);
    let mut key_used = vec![false; keys.len()];
    for (index, signature) in envelope.signatures.iter().enumerate() {
        let mut verified = false;
        for (used, key) in key_used.iter_mut().zip(keys) {
            if key.verify(&message, &signature.sig).is_ok() {
                *used = true;
                verified = true;
            }
        }
        if !verified {
            return Err(DsseError::UnverifiedSignature { index });
        }
    }
    let unused = key_used
        .iter()
        .zip(keys)
        .enumerate()
        .find(|(_, (used, _))| !**used);
    if let Some((index, (_, key))) = unused {
        return Err(DsseError::UnusedKey {
            index,
            key_id: key.key_id(),
        });
    }
    let mut keys = keys.to_vec();
    keys.sort_by_cached_key(PublicKey::key_id);
    Ok(VerifiedEnvelope { envelope, keys })
}

/// Verifies a submission as received: PEM publisher keys (counted first,
/// then parsed, errors naming the key's index) and envelope JSON. See
/// [`PublicKey::from_pem`], [`Envelope::parse`] and [`verify`].
pub fn verify_submission(
    envelope_json: &[u8],
    pem_keys: &[String],
) -> Result<VerifiedEnvelope, DsseError> {
    verify_submission_with(envelope_json, pem_keys, PublicKey::from_pem)
}

/// [`verify_submission`] with the caller's PEM parser, e.g. one that caches the keys of
/// publishers it has seen (parsing a key costs about as much as hashing a few KiB).
///
/// # Errors
/// As [`verify_submission`].
pub fn verify_submission_with(
    envelope_json: &[u8],
    pem_keys: &[String],
    parse_key: impl Fn(&str) -> Result<PublicKey, KeyError>,
) -> Result<VerifiedEnvelope, DsseError> {
    check_key_count(pem_keys.len())?;
    let keys = pem_keys
        .iter()
        .enumerate()
        .map(|(index, pem)| parse_key(pem).map_err(|reason| DsseError::Key { index, reason }))
        .collect::<Result<Vec<_>, _>>()?;
    let envelope = Envelope::parse(envelope_json)?;
    verify(envelope, &keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::keys::KeyType;

    /// Built by hand with Python's `cryptography` 48.0 (no DSSE library):
    /// `pae = b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)`, then an
    /// Ed25519 signature and an ECDSA P-256/SHA-256 (DER) signature over it.
    const PYTHON_ENVELOPE: &str = r#"{"payloadType": "application/vnd.glasslog.test+json", "payload": "eyJtb2RlbCI6ImV4YW1wbGUvdGlueSIsInZlcnNpb24iOiIxLjAifQo=", "signatures": [{"keyid": "python-ed25519", "sig": "5d399Q5bbvl7RRxmN1VIt/0jM7WWXYm0qsAkjpSdC8wsDj036Wt64eBJ/+qPIumtG0P7IrHkvGX4aoSv5E0wAg=="}, {"keyid": "python-p256", "sig": "MEYCIQCmkBfw+9YWgYobcIjG7Wlz5tgTWd5oOUYwxK6f6ha7CwIhALs4XmdDkgBFXn/n1Ze9+eru3u3BbQKt0v5TqCNz/LCL"}]}"#;
    const PYTHON_ED25519_PEM: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAh8YeMXRuaG+axg9JboX+pItLALdEjH0Q6RFAK/ZZ5BQ=
-----END PUBLIC KEY-----
";
    const PYTHON_P256_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEu32nzMu136/ipF3SRgAMvX0u2K2B
UOPOtW6COOfDsgVoP5JM3C63e7ByOidgTznIKziqNaxOHiHdux2PcyQ//Q==
-----END PUBLIC KEY-----
";

    /// The example of `protocol.md` ("Test Vectors"): its signature is raw
    /// `r || s`, and its key is given as coordinates, here as a PEM.
    const SPEC_ENVELOPE: &str = r#"{"payload": "aGVsbG8gd29ybGQ=",
 "payloadType": "http://example.com/HelloWorld",
 "signatures": [{"sig": "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA=="}]}"#;
    const SPEC_P256_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEZ805D3eqNZywjCI19lInBJOp7YMr
CrzAH3CVTAOQ0jgMeCvVTiaRJaRPRDOv8UMs6U4SvKc6pnrIDOoSYI3fdA==
-----END PUBLIC KEY-----
";

    const TYPE: &str = "application/vnd.glasslog.test+json";

    fn key(key_type: KeyType) -> PrivateKey {
        PrivateKey::generate(key_type)
    }

    fn pems(keys: &[&PrivateKey]) -> Vec<String> {
        keys.iter().map(|k| k.public_key().to_pem()).collect()
    }

    /// A valid envelope's JSON.
    fn signed_json() -> String {
        let signer = key(KeyType::Ed25519);
        String::from_utf8(Envelope::sign(TYPE, b"{}", &[&signer]).to_json()).unwrap()
    }

    /// A valid envelope's JSON with the first `from` replaced by `to`.
    fn edited(from: &str, to: &str) -> Vec<u8> {
        let json = signed_json();
        assert!(json.contains(from), "{json} lacks {from}");
        json.replacen(from, to, 1).into_bytes()
    }

    #[test]
    fn pae_matches_the_specification_example() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
        assert_eq!(pae("t", b""), b"DSSEv1 1 t 0 ");
        // LEN counts bytes, not characters.
        assert_eq!(pae("é", b"x"), "DSSEv1 2 é 1 x".as_bytes());
    }

    #[test]
    fn specification_example_verifies() {
        let mut envelope = Envelope::parse(SPEC_ENVELOPE.as_bytes()).unwrap();
        assert_eq!(envelope.payload, b"hello world");
        assert_eq!(envelope.signatures[0].keyid, "");
        let raw = &envelope.signatures[0].sig;
        let der = p256::ecdsa::Signature::from_slice(raw).unwrap().to_der();
        envelope.signatures[0].sig = der.as_bytes().to_vec();
        let key = PublicKey::from_pem(SPEC_P256_PEM).unwrap();
        assert!(verify(envelope, &[key]).is_ok());
    }

    #[test]
    fn python_built_envelope_verifies() {
        let keys = [PYTHON_P256_PEM.to_owned(), PYTHON_ED25519_PEM.to_owned()];
        let verified = verify_submission(PYTHON_ENVELOPE.as_bytes(), &keys).unwrap();
        assert_eq!(verified.envelope.payload_type, TYPE);
        assert_eq!(
            verified.envelope.payload,
            b"{\"model\":\"example/tiny\",\"version\":\"1.0\"}\n"
        );
        let mut ids: Vec<KeyId> = verified.keys.iter().map(PublicKey::key_id).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "keys sorted by id");
        ids.dedup();
        assert_eq!(ids.len(), 2);
    }

    #[test]
    fn accepts_single_key_envelopes_of_both_types() {
        for key_type in [KeyType::Ed25519, KeyType::P256] {
            let signer = key(key_type);
            let json = Envelope::sign(TYPE, b"payload", &[&signer]).to_json();
            let verified = verify_submission(&json, &pems(&[&signer])).unwrap();
            assert_eq!(verified.keys, vec![signer.public_key()]);
            assert_eq!(verified.envelope.payload, b"payload");
            assert_eq!(
                verified.envelope.signatures[0].keyid,
                signer.public_key().key_id().to_string()
            );
        }
    }

    #[test]
    fn accepts_two_key_envelope_in_any_key_order() {
        let (a, b) = (key(KeyType::Ed25519), key(KeyType::P256));
        let json = Envelope::sign(TYPE, b"payload", &[&a, &b]).to_json();
        let forward = verify_submission(&json, &pems(&[&a, &b])).unwrap();
        let backward = verify_submission(&json, &pems(&[&b, &a])).unwrap();
        assert_eq!(forward, backward);
        assert_eq!(forward.keys.len(), 2);
    }

    #[test]
    fn to_json_round_trips() {
        let signer = key(KeyType::Ed25519);
        let envelope = Envelope::sign(TYPE, &[0xfb, 0xff, 0x00], &[&signer]);
        assert_eq!(Envelope::parse(&envelope.to_json()).unwrap(), envelope);
    }

    #[test]
    fn accepts_both_base64_alphabets_with_or_without_padding() {
        // 0xfb 0xff 0xbf encodes as "+/+/" in the standard alphabet, "-_-_" URL-safe.
        for payload in ["+/+/", "-_-_", "+/+/aA==", "-_-_aA", "aA", "aA==", ""] {
            let json = format!(
                r#"{{"payloadType": "t", "payload": "{payload}", "signatures": [{{"sig": "AA"}}]}}"#
            );
            assert!(Envelope::parse(json.as_bytes()).is_ok(), "{payload}");
        }
        let unpadded_keyless =
            r#"{"payloadType": "t", "payload": "aGk", "signatures": [{"sig": "AAAA"}]}"#;
        let envelope = Envelope::parse(unpadded_keyless.as_bytes()).unwrap();
        assert_eq!(envelope.payload, b"hi");
        assert_eq!(envelope.signatures[0].keyid, "");
    }

    #[test]
    fn rejects_bad_base64_naming_the_field() {
        for bad in ["+/-_", "aGk=a", "aGk==", "aGl", "a Gk", "aGk\\n", "%%%%"] {
            let json = format!(
                r#"{{"payloadType": "t", "payload": "{bad}", "signatures": [{{"sig": "AA"}}]}}"#
            );
            let err = Envelope::parse(json.as_bytes()).unwrap_err();
            assert!(
                matches!(&err, DsseError::Base64 { path, .. } if path == "$.payload"),
                "{bad:?}: {err}"
            );
        }
        let json =
            r#"{"payloadType": "t", "payload": "", "signatures": [{"sig": "AA"}, {"sig": "!"}]}"#;
        assert!(matches!(
            Envelope::parse(json.as_bytes()),
            Err(DsseError::Base64 { path, .. }) if path == "$.signatures[1].sig"
        ));
    }

    #[test]
    fn rejects_bad_json() {
        assert!(matches!(
            Envelope::parse(b"{\"payloadType\": "),
            Err(DsseError::Json(JsonError::Syntax(_)))
        ));
        assert!(matches!(
            Envelope::parse(b"[]"),
            Err(DsseError::Json(JsonError::WrongType { .. }))
        ));
        assert!(matches!(
            Envelope::parse(format!("{} {{}}", signed_json()).as_bytes()),
            Err(DsseError::Json(JsonError::TrailingData { .. }))
        ));
    }

    #[test]
    fn rejects_duplicate_keys() {
        let json = edited(r#""payloadType":"#, r#""payloadType":"x","payloadType":"#);
        assert!(matches!(
            Envelope::parse(&json),
            Err(DsseError::Json(JsonError::DuplicateKey { path, .. })) if path == "$.payloadType"
        ));
        let json = edited(r#""payloadType":"#, r#""PayloadType":"x","payloadType":"#);
        assert!(matches!(
            Envelope::parse(&json),
            Err(DsseError::Json(JsonError::DuplicateKey { path, .. })) if path == "$.payloadType"
        ));
        let json = edited(r#""sig":"#, r#""SIG":"AA","sig":"#);
        assert!(matches!(
            Envelope::parse(&json),
            Err(DsseError::Json(JsonError::DuplicateKey { path, .. }))
                if path == "$.signatures[0].sig"
        ));
    }

    #[test]
    fn rejects_unknown_fields() {
        let cases = [
            (edited("{", r#"{"extra":1,"#), "$.extra"),
            (
                edited(r#""payloadType""#, r#""PayloadType""#),
                "$.PayloadType",
            ),
            (
                edited(r#"{"keyid""#, r#"{"cert":"x","keyid""#),
                "$.signatures[0].cert",
            ),
        ];
        for (json, expected) in cases {
            assert_eq!(
                Envelope::parse(&json),
                Err(DsseError::Json(JsonError::UnknownField {
                    path: expected.into()
                }))
            );
        }
    }

    #[test]
    fn rejects_missing_and_mistyped_fields() {
        let missing = [
            (
                r#"{"payload": "", "signatures": [{"sig": "AA"}]}"#,
                "$.payloadType",
            ),
            (
                r#"{"payloadType": "t", "signatures": [{"sig": "AA"}]}"#,
                "$.payload",
            ),
            (r#"{"payloadType": "t", "payload": ""}"#, "$.signatures"),
            (
                r#"{"payloadType": "t", "payload": "", "signatures": [{"keyid": "k"}]}"#,
                "$.signatures[0].sig",
            ),
        ];
        for (json, path) in missing {
            assert_eq!(
                Envelope::parse(json.as_bytes()),
                Err(DsseError::Json(JsonError::MissingField {
                    path: path.into()
                }))
            );
        }
        let json =
            r#"{"payloadType": "t", "payload": "", "signatures": [{"sig": "AA", "keyid": 7}]}"#;
        assert!(matches!(
            Envelope::parse(json.as_bytes()),
            Err(DsseError::Json(JsonError::WrongType { path, .. })) if path == "$.signatures[0].keyid"
        ));
        let json = r#"{"payloadType": "t", "payload": "", "signatures": ["AA"]}"#;
        assert!(matches!(
            Envelope::parse(json.as_bytes()),
            Err(DsseError::Json(JsonError::WrongType { path, .. })) if path == "$.signatures[0]"
        ));
    }

    #[test]
    fn rejects_empty_values() {
        let cases = [
            (
                r#"{"payloadType": "", "payload": "", "signatures": [{"sig": "AA"}]}"#,
                DsseError::EmptyPayloadType,
            ),
            (
                r#"{"payloadType": "t", "payload": "", "signatures": []}"#,
                DsseError::NoSignatures,
            ),
            (
                r#"{"payloadType": "t", "payload": "", "signatures": [{"sig": "AA"}, {"sig": ""}]}"#,
                DsseError::EmptySignature { index: 1 },
            ),
        ];
        for (json, expected) in cases {
            assert_eq!(Envelope::parse(json.as_bytes()), Err(expected));
        }
    }

    #[test]
    fn signature_count_limit() {
        let signer = key(KeyType::Ed25519);
        let eight = vec![&signer; MAX_SIGNATURES];
        let mut envelope = Envelope::sign(TYPE, b"p", &eight);
        assert!(Envelope::parse(&envelope.to_json()).is_ok());
        envelope.signatures.push(envelope.signatures[0].clone());
        let expected = DsseError::TooManySignatures {
            count: 9,
            limit: MAX_SIGNATURES,
        };
        assert_eq!(Envelope::parse(&envelope.to_json()), Err(expected.clone()));
        let keys = [signer.public_key()];
        assert_eq!(verify(envelope, &keys), Err(expected));
    }

    #[test]
    fn key_count_limits() {
        let signers: Vec<PrivateKey> = (0..=MAX_KEYS).map(|_| key(KeyType::Ed25519)).collect();
        let refs: Vec<&PrivateKey> = signers.iter().collect();
        let json = Envelope::sign(TYPE, b"p", &refs[..MAX_KEYS]).to_json();
        assert!(verify_submission(&json, &pems(&refs[..MAX_KEYS])).is_ok());
        let nine = pems(&refs);
        assert_eq!(
            verify_submission(&json, &nine),
            Err(DsseError::TooManyKeys {
                count: 9,
                limit: MAX_KEYS
            })
        );
        assert_eq!(verify_submission(&json, &[]), Err(DsseError::NoKeys));
        // The count is checked before any key is parsed.
        let garbage = vec!["garbage".to_owned(); MAX_KEYS + 1];
        assert!(matches!(
            verify_submission(&json, &garbage),
            Err(DsseError::TooManyKeys { .. })
        ));
    }

    #[test]
    fn rejects_unparseable_key_naming_its_index() {
        let signer = key(KeyType::P256);
        let json = Envelope::sign(TYPE, b"p", &[&signer]).to_json();
        let keys = [signer.public_key().to_pem(), "garbage".to_owned()];
        assert!(matches!(
            verify_submission(&json, &keys),
            Err(DsseError::Key { index: 1, .. })
        ));
    }

    #[test]
    fn rejects_the_same_key_twice_even_if_spelled_differently() {
        let signer = key(KeyType::P256);
        let json = Envelope::sign(TYPE, b"p", &[&signer]).to_json();
        let PublicKey::P256(point) = signer.public_key() else {
            unreachable!()
        };
        let compressed = point.to_encoded_point(true);
        let compressed_der = [
            &[
                0x30, 0x39, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
            ][..],
            &[
                0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x22, 0x00,
            ],
            compressed.as_bytes(),
        ]
        .concat();
        let other = key(KeyType::Ed25519);
        let keys = [
            signer.public_key(),
            other.public_key(),
            PublicKey::from_der(&compressed_der).unwrap(),
        ];
        let envelope = Envelope::parse(&json).unwrap();
        assert_eq!(
            verify(envelope, &keys),
            Err(DsseError::DuplicateKey {
                first: 0,
                second: 2,
                key_id: signer.public_key().key_id()
            })
        );
    }

    #[test]
    fn rejects_signature_no_key_verifies() {
        let (a, b) = (key(KeyType::Ed25519), key(KeyType::P256));
        let envelope = Envelope::sign(TYPE, b"p", &[&a, &b]);
        assert_eq!(
            verify(envelope, &[a.public_key()]),
            Err(DsseError::UnverifiedSignature { index: 1 })
        );
    }

    #[test]
    fn rejects_key_that_verifies_nothing() {
        let (a, b) = (key(KeyType::Ed25519), key(KeyType::P256));
        let envelope = Envelope::sign(TYPE, b"p", &[&a]);
        assert_eq!(
            verify(envelope, &[a.public_key(), b.public_key()]),
            Err(DsseError::UnusedKey {
                index: 1,
                key_id: b.public_key().key_id()
            })
        );
    }

    #[test]
    fn keyid_plays_no_part() {
        let signer = key(KeyType::Ed25519);
        let mut envelope = Envelope::sign(TYPE, b"p", &[&signer]);
        envelope.signatures[0].keyid = "someone else".to_owned();
        assert!(verify(envelope, &[signer.public_key()]).is_ok());
    }

    #[test]
    fn rejects_tampering_after_signing() {
        for key_type in [KeyType::Ed25519, KeyType::P256] {
            let signer = key(key_type);
            let keys = [signer.public_key()];
            let signed = Envelope::sign(TYPE, b"payload", &[&signer]);

            let mut payload = signed.clone();
            payload.payload[0] ^= 1;
            let mut payload_type = signed.clone();
            payload_type.payload_type.push('x');
            for tampered in [payload, payload_type] {
                assert_eq!(
                    verify(tampered, &keys),
                    Err(DsseError::UnverifiedSignature { index: 0 })
                );
            }
        }
    }

    #[test]
    fn rejects_signature_over_raw_payload() {
        for key_type in [KeyType::Ed25519, KeyType::P256] {
            let signer = key(key_type);
            let envelope = Envelope {
                payload_type: TYPE.to_owned(),
                payload: b"payload".to_vec(),
                signatures: vec![Signature {
                    keyid: String::new(),
                    sig: signer.sign(b"payload"),
                }],
            };
            assert_eq!(
                verify(envelope, &[signer.public_key()]),
                Err(DsseError::UnverifiedSignature { index: 0 })
            );
        }
    }

    #[test]
    fn verify_checks_envelopes_built_in_code() {
        let signer = key(KeyType::Ed25519);
        let mut envelope = Envelope::sign("", b"p", &[&signer]);
        let keys = [signer.public_key()];
        assert_eq!(
            verify(envelope.clone(), &keys),
            Err(DsseError::EmptyPayloadType)
        );
        envelope.payload_type = TYPE.to_owned();
        envelope.signatures.clear();
        assert_eq!(verify(envelope, &keys), Err(DsseError::NoSignatures));
    }
}

//! Strict JSON for untrusted input: accept only documents that every mainstream
//! decoder reads the same way.
//!
//! A client signs bytes and the log stores bytes, but verifiers, auditors and
//! monitors each re-read those bytes with their own decoder. RFC 8259 leaves
//! several things to the decoder (RFC 8259 section 4: "The names within an
//! object SHOULD be unique"; section 9: limits are implementation-defined), and
//! decoders disagree: of two equal keys most keep the last, some the first,
//! some refuse the document; and Go's `encoding/json` also matches keys to
//! struct fields *case-insensitively* (Unicode simple case folding, as
//! `bytes.EqualFold`). An envelope with `"payloadType"` and `"PayloadType"`
//! would mean two different things to two readers. [`parse`] therefore
//! rejects, with the JSON path of the offending member:
//!
//! - input that is not UTF-8 (Go would silently substitute U+FFFD);
//! - anything but exactly one JSON value, optionally surrounded by whitespace;
//! - nesting deeper than [`MAX_DEPTH`];
//! - an object with two keys that are equal, or equal after case folding.
//!
//! The rest of the module is small typed accessors ([`object`], [`require_str`],
//! [`deny_unknown_fields`], ...) so that callers reading a schema report *which*
//! field is wrong, using the same path syntax.
//!
//! What this module is not: a canonicaliser (nothing is re-serialised, callers
//! keep and hash the bytes they were given), a schema language, or a size
//! limit (bound the input before calling [`parse`]). Numbers keep
//! `serde_json`'s default reading (`u64`, `i64`, else `f64`).

use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use thiserror::Error;

/// A JSON object as `serde_json` represents it.
pub type Map = serde_json::Map<String, Value>;

/// The path of the document root, in the path syntax used by every error here.
pub const ROOT: &str = "$";

/// Deepest accepted nesting of arrays and objects: `[[1]]` has depth 2.
pub const MAX_DEPTH: usize = 64;

/// Keys longer than this many characters are shortened in error messages.
const MAX_KEY_IN_MESSAGE: usize = 64;

/// Why a document was refused. Paths use `$` for the root, `.name` or
/// `["odd name"]` for members and `[i]` for array elements.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum JsonError {
    /// The input is not UTF-8; `offset` is the byte offset of the first bad byte.
    #[error("input is not valid UTF-8: first invalid byte at offset {offset}")]
    NotUtf8 { offset: usize },
    /// The input is not JSON; the message is `serde_json`'s, with line and column.
    #[error("invalid JSON: {0}")]
    Syntax(String),
    /// Something other than whitespace follows the JSON value.
    #[error("unexpected data after the JSON value at line {line} column {column}")]
    TrailingData { line: usize, column: usize },
    /// The array or object at `path` is nested deeper than [`MAX_DEPTH`].
    #[error("JSON nested deeper than {MAX_DEPTH} levels at {path}")]
    TooDeep { path: String },
    /// The member at `path` repeats an earlier key of the same object, exactly
    /// or up to letter case. `key` and `previous` are shown JSON-quoted.
    #[error(
        "duplicate object key {key} at {path}: it repeats {previous} \
         (keys must differ even when letter case is ignored)"
    )]
    DuplicateKey {
        path: String,
        key: String,
        previous: String,
    },
    /// A required member is absent.
    #[error("missing required field {path}")]
    MissingField { path: String },
    /// The value at `path` has the wrong JSON type.
    #[error("{path} must be {expected}, found {found}")]
    WrongType {
        path: String,
        expected: &'static str,
        found: &'static str,
    },
    /// The object has a member its schema does not define.
    #[error("unknown field {path}")]
    UnknownField { path: String },
}

/// Parses untrusted bytes as one strict JSON value (see the module docs for
/// exactly what is refused).
pub fn parse(bytes: &[u8]) -> Result<Value, JsonError> {
    if let Err(e) = std::str::from_utf8(bytes) {
        return Err(JsonError::NotUtf8 {
            offset: e.valid_up_to(),
        });
    }
    let failure = Cell::new(None);
    let root = Node {
        failure: &failure,
        path: Path::Root,
        depth: 0,
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = root.deserialize(&mut deserializer).map_err(|e| {
        failure
            .take()
            .unwrap_or_else(|| JsonError::Syntax(e.to_string()))
    })?;
    deserializer.end().map_err(|e| JsonError::TrailingData {
        line: e.line(),
        column: e.column(),
    })?;
    Ok(value)
}

/// The key under which two object keys collide.
///
/// Lowercase, uppercase, lowercase again. Go's decoder equates keys whose runes
/// share a Unicode *simple* case-folding orbit (`unicode.SimpleFold`), which
/// puts `"K"`, `"k"` and KELVIN SIGN U+212A together, and `"s"`, `"S"` and LONG
/// S U+017F. The first lowercase maps every capital and title-case letter onto
/// its small letter (so U+1E9E CAPITAL SHARP S joins U+00DF, which an
/// upper-then-lower fold would miss), the uppercase then merges small letters
/// that share a capital (U+017F and "s", U+03C2 final sigma and U+03C3), and the
/// final lowercase makes the result readable. The result is at least as coarse
/// as Go's folding: refusing a pair Go would keep apart is harmless here.
pub fn fold_case(key: &str) -> String {
    // ASCII keys (nearly all) fold to their ASCII lowercase: one allocation, not three.
    if key.is_ascii() {
        return key.to_ascii_lowercase();
    }
    key.to_lowercase().to_uppercase().to_lowercase()
}

/// Where a value sits in the document, as a chain of borrowed parents so that
/// no path is built unless an error needs it.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Member(&'a Path<'a>, &'a str),
    Element(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => f.write_str(ROOT),
            Path::Member(parent, key) => write!(f, "{parent}{}", MemberSuffix(key)),
            Path::Element(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// `.name` for keys that read as identifiers, `["other key"]` for the rest.
struct MemberSuffix<'a>(&'a str);

impl MemberSuffix<'_> {
    fn is_identifier(&self) -> bool {
        let key = self.0.as_bytes();
        key.first()
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
            && key.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
            && key.len() <= MAX_KEY_IN_MESSAGE
    }
}

impl fmt::Display for MemberSuffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_identifier() {
            write!(f, ".{}", self.0)
        } else {
            write!(f, "[{}]", quote(self.0))
        }
    }
}

/// `key` as a JSON string literal, shortened if long, for error messages.
fn quote(key: &str) -> String {
    let mut shown: String = key.chars().take(MAX_KEY_IN_MESSAGE).collect();
    if shown.len() < key.len() {
        shown.push('…');
    }
    Value::String(shown).to_string()
}

/// The path of member `key` of the object at `path`.
pub fn member_path(path: &str, key: &str) -> String {
    // Readers of a schema build a path for every member they read, error or not: the common
    // case is one exact allocation, without the formatting machinery.
    let suffix = MemberSuffix(key);
    if !suffix.is_identifier() {
        return format!("{path}{suffix}");
    }
    let mut p = String::with_capacity(path.len() + 1 + key.len());
    p.push_str(path);
    p.push('.');
    p.push_str(key);
    p
}

/// The path of element `index` of the array at `path`.
pub fn element_path(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

/// A `serde` seed that builds a [`Value`] while enforcing the strict rules.
///
/// A violation is recorded in `failure` and then surfaces from `serde_json` as
/// an opaque custom error, which [`parse`] replaces with the recorded one.
struct Node<'a> {
    failure: &'a Cell<Option<JsonError>>,
    path: Path<'a>,
    /// How many arrays and objects enclose this value.
    depth: usize,
}

impl Node<'_> {
    fn fail<E: de::Error>(&self, error: JsonError) -> E {
        let message = error.to_string();
        self.failure.set(Some(error));
        E::custom(message)
    }

    /// The depth of this value's children, if this container may have any.
    fn enter<E: de::Error>(&self) -> Result<usize, E> {
        if self.depth >= MAX_DEPTH {
            let path = self.path.to_string();
            return Err(self.fail(JsonError::TooDeep { path }));
        }
        Ok(self.depth + 1)
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // serde_json rejects out-of-range literals, so `v` is always finite.
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("number at {} is not finite", self.path)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let depth = self.enter()?;
        let mut items = Vec::new();
        loop {
            let child = Node {
                failure: self.failure,
                path: Path::Element(&self.path, items.len()),
                depth,
            };
            match seq.next_element_seed(child)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let depth = self.enter()?;
        let mut members = Map::new();
        // The folded keys seen so far.
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(key) = access.next_key::<String>()? {
            let path = Path::Member(&self.path, &key);
            let folded = fold_case(&key);
            if seen.contains(&folded) {
                let first = members
                    .keys()
                    .find(|k| fold_case(k) == folded)
                    .map_or_else(|| key.clone(), String::clone);
                let error = JsonError::DuplicateKey {
                    path: path.to_string(),
                    key: quote(&key),
                    previous: quote(&first),
                };
                return Err(self.fail(error));
            }
            let child = Node {
                failure: self.failure,
                path,
                depth,
            };
            let value = access.next_value_seed(child)?;
            seen.insert(folded);
            members.insert(key, value);
        }
        Ok(Value::Object(members))
    }
}

/// The JSON type of `value`, as an error message names it ("a string").
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The error for `value` (at `path`) not being of the `expected` type.
pub fn wrong_type(value: &Value, path: &str, expected: &'static str) -> JsonError {
    JsonError::WrongType {
        path: path.to_owned(),
        expected,
        found: type_name(value),
    }
}

/// `value` (found at `path`) as an object.
pub fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map, JsonError> {
    value
        .as_object()
        .ok_or_else(|| wrong_type(value, path, "an object"))
}

/// `value` (found at `path`) as an array.
pub fn array<'a>(value: &'a Value, path: &str) -> Result<&'a [Value], JsonError> {
    match value {
        Value::Array(items) => Ok(items),
        _ => Err(wrong_type(value, path, "an array")),
    }
}

/// `value` (found at `path`) as a string.
pub fn string<'a>(value: &'a Value, path: &str) -> Result<&'a str, JsonError> {
    value
        .as_str()
        .ok_or_else(|| wrong_type(value, path, "a string"))
}

/// Member `key` of the object `map` found at `path`; absent is an error.
pub fn require<'a>(map: &'a Map, key: &str, path: &str) -> Result<&'a Value, JsonError> {
    map.get(key).ok_or_else(|| JsonError::MissingField {
        path: member_path(path, key),
    })
}

/// Member `key` of `map` (at `path`), which must be present and a string.
pub fn require_str<'a>(map: &'a Map, key: &str, path: &str) -> Result<&'a str, JsonError> {
    let value = require(map, key, path)?;
    value
        .as_str()
        .ok_or_else(|| wrong_type(value, &member_path(path, key), "a string"))
}

/// Member `key` of `map` (at `path`), which must be absent or a string
/// (`null` is not absent).
pub fn optional_str<'a>(map: &'a Map, key: &str, path: &str) -> Result<Option<&'a str>, JsonError> {
    map.get(key)
        .map(|value| {
            value
                .as_str()
                .ok_or_else(|| wrong_type(value, &member_path(path, key), "a string"))
        })
        .transpose()
}

/// Member `key` of `map` (at `path`), which must be present and an array.
pub fn require_array<'a>(map: &'a Map, key: &str, path: &str) -> Result<&'a [Value], JsonError> {
    match require(map, key, path)? {
        Value::Array(items) => Ok(items),
        value => Err(wrong_type(value, &member_path(path, key), "an array")),
    }
}

/// Member `key` of `map` (at `path`), which must be present and an object.
pub fn require_object<'a>(map: &'a Map, key: &str, path: &str) -> Result<&'a Map, JsonError> {
    let value = require(map, key, path)?;
    value
        .as_object()
        .ok_or_else(|| wrong_type(value, &member_path(path, key), "an object"))
}

/// Refuses any member of `map` (at `path`) whose key is not in `allowed`.
///
/// Keys compare exactly: since [`parse`] refuses case-variant duplicates, a
/// case variant of an allowed key (`"PayloadType"`) is reported here as unknown
/// rather than silently read, as Go would, as the allowed one.
pub fn deny_unknown_fields(map: &Map, allowed: &[&str], path: &str) -> Result<(), JsonError> {
    match map.keys().find(|key| !allowed.contains(&key.as_str())) {
        Some(key) => Err(JsonError::UnknownField {
            path: member_path(path, key),
        }),
        None => Ok(()),
    }
}

/// The 32 bytes of a SHA-256 digest written, as every digest in glasslog's
/// documents is (in-toto `DigestSet`, OMS manifest), as exactly 64 lowercase
/// hex digits. `Err` says what is wrong, in words for the caller's message.
pub fn sha256_hex(s: &str) -> Result<[u8; 32], String> {
    if s.len() != 64 {
        return Err(format!("it has {} characters", s.chars().count()));
    }
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("it has uppercase letters".into());
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(s, &mut bytes)
        .map_err(|_| "it has characters that are not hex digits".to_owned())?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn accepts_ordinary_documents() {
        let v = parse(br#" {"a": [1, -2, 3.5, true, null, "x"], "b": {"c": "d"}} "#).unwrap();
        assert_eq!(
            v,
            json!({"a": [1, -2, 3.5, true, null, "x"], "b": {"c": "d"}})
        );
        assert_eq!(parse(b"\"\\u00e9\"").unwrap(), json!("é"));
        assert_eq!(parse(b"18446744073709551615").unwrap(), json!(u64::MAX));
        assert_eq!(parse(b"[]\r\n\t ").unwrap(), json!([]));
    }

    #[test]
    fn rejects_invalid_utf8_with_offset() {
        assert_eq!(
            parse(b"{\"a\": \"\xff\"}"),
            Err(JsonError::NotUtf8 { offset: 7 })
        );
    }

    #[test]
    fn rejects_syntax_errors() {
        let cases: [&[u8]; 8] = [
            b"",
            b"{",
            b"{'a': 1}",
            b"[1,]",
            b"\xef\xbb\xbf{}", // a byte-order mark
            b"NaN",
            b"1e400",
            br#""\ud800""#, // a lone surrogate, which Go would turn into U+FFFD
        ];
        for bad in cases {
            assert!(
                matches!(parse(bad), Err(JsonError::Syntax(_))),
                "{:?} should be a syntax error",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn rejects_trailing_data() {
        assert_eq!(
            parse(b"{} {}"),
            Err(JsonError::TrailingData { line: 1, column: 4 })
        );
        assert!(matches!(parse(b"1 x"), Err(JsonError::TrailingData { .. })));
    }

    #[test]
    fn depth_limit_is_inclusive() {
        assert!(parse(nested(MAX_DEPTH).as_bytes()).is_ok());
        let too_deep = format!("{{\"a\": [{}]}}", nested(MAX_DEPTH - 1));
        let path = format!("$.a{}", "[0]".repeat(MAX_DEPTH - 1));
        assert_eq!(parse(too_deep.as_bytes()), Err(JsonError::TooDeep { path }));
    }

    #[test]
    fn far_too_deep_input_is_an_error_not_a_crash() {
        let err = parse(nested(100_000).as_bytes()).unwrap_err();
        assert!(matches!(err, JsonError::TooDeep { .. }), "{err}");
    }

    #[test]
    fn rejects_exact_duplicate_with_path() {
        let err = parse(br#"{"signatures": [{"keyid": "a", "keyid": "b"}]}"#).unwrap_err();
        assert_eq!(
            err,
            JsonError::DuplicateKey {
                path: "$.signatures[0].keyid".into(),
                key: "\"keyid\"".into(),
                previous: "\"keyid\"".into(),
            }
        );
    }

    #[test]
    fn duplicate_found_through_escapes() {
        let err = parse(br#"{"a": 1, "\u0061": 2}"#).unwrap_err();
        assert!(matches!(err, JsonError::DuplicateKey { .. }), "{err}");
    }

    #[test]
    fn rejects_keys_equal_under_case_folding() {
        // Pairs Go's encoding/json would read as the same struct field.
        let pairs = [
            ("payloadType", "PayloadType"),
            ("keyid", "KEYID"),
            ("k", "\u{212A}"), // KELVIN SIGN
            ("s", "\u{017F}"), // LATIN SMALL LETTER LONG S
            ("S", "\u{017F}"),
            ("\u{00DF}", "\u{1E9E}"), // sharp s, capital sharp s
            ("\u{03C3}", "\u{03C2}"), // sigma, final sigma
            ("\u{03B8}", "\u{03D1}"), // theta, theta symbol
            ("\u{00B5}", "\u{039C}"), // micro sign, capital mu
        ];
        for (first, second) in pairs {
            let doc = format!(r#"{{"x": {{{}: 1, {}: 2}}}}"#, json!(first), json!(second));
            let err = parse(doc.as_bytes()).unwrap_err();
            assert_eq!(
                err,
                JsonError::DuplicateKey {
                    path: member_path("$.x", second),
                    key: quote(second),
                    previous: quote(first),
                },
                "{first:?} / {second:?}"
            );
        }
    }

    #[test]
    fn fold_is_at_least_as_coarse_as_upper_then_lower() {
        let mut class: std::collections::HashMap<String, String> = Default::default();
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            let s = c.to_string();
            let folded = fold_case(&s);
            let coarse = s.to_uppercase().to_lowercase();
            let first = class.entry(coarse).or_insert_with(|| folded.clone());
            assert_eq!(*first, folded, "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn distinct_keys_are_kept() {
        let v = parse(br#"{"a": 1, "b": 2, "ab": 3, "a b": 4, "": 5}"#).unwrap();
        assert_eq!(object(&v, ROOT).unwrap().len(), 5);
        // The same key in different objects is not a duplicate.
        assert!(parse(br#"[{"a": 1}, {"a": 2}, {"A": {"a": 3}}]"#).is_ok());
    }

    #[test]
    fn paths_quote_unusual_keys() {
        assert_eq!(member_path("$", "keyid"), "$.keyid");
        assert_eq!(member_path("$", "a b"), "$[\"a b\"]");
        assert_eq!(member_path("$", "\n"), "$[\"\\n\"]");
        assert_eq!(member_path("$", ""), "$[\"\"]");
        assert_eq!(element_path("$.signatures", 3), "$.signatures[3]");
        let long = "k".repeat(100);
        assert_eq!(
            member_path("$", &long),
            format!("$[\"{}…\"]", "k".repeat(MAX_KEY_IN_MESSAGE))
        );
    }

    #[test]
    fn typed_accessors_accept_matching_types() {
        let v = json!({"s": "x", "a": [1], "o": {}});
        let map = object(&v, ROOT).unwrap();
        assert_eq!(require_str(map, "s", ROOT).unwrap(), "x");
        assert_eq!(optional_str(map, "s", ROOT).unwrap(), Some("x"));
        assert_eq!(optional_str(map, "missing", ROOT).unwrap(), None);
        assert_eq!(require_array(map, "a", ROOT).unwrap(), &[json!(1)]);
        assert!(require_object(map, "o", ROOT).unwrap().is_empty());
        assert!(deny_unknown_fields(map, &["s", "a", "o"], ROOT).is_ok());
    }

    #[test]
    fn typed_accessors_name_the_failing_field() {
        let v = json!({"n": 1, "z": null});
        let map = object(&v, "$.outer").unwrap();
        assert_eq!(
            require_str(map, "s", "$.outer"),
            Err(JsonError::MissingField {
                path: "$.outer.s".into()
            })
        );
        assert_eq!(
            require_str(map, "n", "$.outer"),
            Err(JsonError::WrongType {
                path: "$.outer.n".into(),
                expected: "a string",
                found: "a number",
            })
        );
        assert!(matches!(
            optional_str(map, "z", "$.outer"),
            Err(JsonError::WrongType { found: "null", .. })
        ));
        assert!(matches!(
            require_array(map, "n", "$.outer"),
            Err(JsonError::WrongType {
                expected: "an array",
                ..
            })
        ));
        assert!(matches!(
            object(&json!([]), ROOT),
            Err(JsonError::WrongType {
                found: "an array",
                ..
            })
        ));
        assert_eq!(
            deny_unknown_fields(map, &["n"], "$.outer"),
            Err(JsonError::UnknownField {
                path: "$.outer.z".into()
            })
        );
    }
}

//! Validated values of a declaration: names, digests, URIs and the
//! string enumerations. Each is built only through `FromStr`, so a value in
//! a [`super::Declaration`] is valid by construction. Not here: times
//! ([`super::time`]), licence expressions ([`super::license`]), and the rules
//! that relate fields ([`super::read`]).

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::admission::strict_json;

use super::{invalid, shown, DeclarationError, MAX_NAME_LEN, MODEL_RELEASE, TRAINING_DATA};

/// The name of a model or dataset: 1 to [`MAX_NAME_LEN`] characters, segments
/// of `A-Z a-z 0-9 . _ -` joined by single `/`, no segment empty, `.` or `..`
/// (`org/model`, `org/family/model`). Case-sensitive: `Org/M` and `org/m` are
/// different names.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(String);

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Name {
    type Err = DeclarationError;

    fn from_str(s: &str) -> Result<Name, DeclarationError> {
        check_name(s).map_err(|why| {
            invalid(
                "",
                format!(
                    "{} is not a valid name: {why} (a name is 1 to {MAX_NAME_LEN} characters: \
                     segments of A-Z a-z 0-9 . _ - joined by single '/')",
                    shown(s)
                ),
            )
        })?;
        Ok(Name(s.to_owned()))
    }
}

fn check_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("it is empty".into());
    }
    if let Some((i, c)) = s
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')))
    {
        return Err(format!(
            "character {} (U+{:04X}) at position {i} is not allowed",
            shown(&c.to_string()),
            c as u32
        ));
    }
    if s.len() > MAX_NAME_LEN {
        return Err(format!("it is {} characters long", s.len()));
    }
    for (i, segment) in s.split('/').enumerate() {
        match segment {
            "" => return Err(format!("segment {i} is empty")),
            "." | ".." => return Err(format!("segment {i} is {}", shown(segment))),
            _ => {}
        }
    }
    Ok(())
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({:?})", self.0)
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The first control character of `s`: its position in characters and the character. Control
/// characters are Unicode's general category Cc, U+0000–U+001F and U+007F–U+009F
/// ([`char::is_control`]).
///
/// Identifiers — a version, a supplier, a source's name, and every text a search index key is
/// made of — may hold none: a NUL once made one declaration's index keys overlap another's,
/// and a control character displays as something else, or as nothing, in a terminal or a
/// report. Prose (descriptions, processing, handling) may break lines and is not checked.
pub fn first_control(s: &str) -> Option<(usize, char)> {
    s.chars().enumerate().find(|(_, c)| c.is_control())
}

/// Why an identifier with the control character `c` at character `position` is refused, in
/// the words Submit, Search and the checkers all use: `contains U+0000 at character 3; …`.
pub fn control_reason(position: usize, c: char) -> String {
    format!(
        "contains U+{:04X} at character {position}; control characters (U+0000\u{2013}U+001F, \
         U+007F\u{2013}U+009F) are not allowed in identifiers",
        c as u32
    )
}

/// Refuses an identifier (at JSON `path`) holding a control character ([`first_control`]).
pub(super) fn check_identifier(value: &str, path: &str) -> Result<(), DeclarationError> {
    match first_control(value) {
        Some((position, c)) => Err(invalid(path, control_reason(position, c))),
        None => Ok(()),
    }
}

/// A SHA-256 digest. Reads and displays as exactly 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }
}

impl FromStr for Digest {
    type Err = DeclarationError;

    fn from_str(s: &str) -> Result<Digest, DeclarationError> {
        strict_json::sha256_hex(s).map(Digest).map_err(|why| {
            invalid(
                "",
                format!(
                    "{} is not a SHA-256 digest: {why}; write exactly 64 lowercase hex digits",
                    shown(s)
                ),
            )
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

/// The salted commitment a private dataset logs as its subject digest:
/// `SHA-256(salt ‖ root)`, where `salt` is 32 secret random bytes and `root`
/// is the root digest of the dataset's manifest. Revealing `salt` and the
/// manifest later lets anyone check the commitment.
pub fn commitment(salt: &[u8; 32], root: &Digest) -> Digest {
    Digest(
        Sha256::new()
            .chain_update(salt)
            .chain_update(root.0)
            .finalize()
            .into(),
    )
}

/// An absolute URI: a scheme (RFC 3986 section 3.1) then `:` and at least
/// one more character, with no whitespace or control characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Uri(String);

impl Uri {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Uri {
    type Err = DeclarationError;

    fn from_str(s: &str) -> Result<Uri, DeclarationError> {
        let scheme_ok = s.split_once(':').is_some_and(|(scheme, rest)| {
            let mut chars = scheme.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
                && !rest.is_empty()
        });
        let why = if !scheme_ok {
            "it does not start with a scheme such as https:"
        } else if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            "it contains whitespace or control characters (percent-encode them)"
        } else {
            return Ok(Uri(s.to_owned()));
        };
        Err(invalid(
            "",
            format!("{} is not an absolute URI: {why}", shown(s)),
        ))
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uri({:?})", self.0)
    }
}

/// An enumeration written in JSON as one of a fixed set of strings.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in the order the documentation lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The value as written in JSON.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = DeclarationError;

            fn from_str(s: &str) -> Result<$name, DeclarationError> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    let allowed: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                    invalid("", format!("{} is not one of {}", shown(s), allowed.join(", ")))
                })
            }
        }
    };
}

string_enum! {
    /// What a declaration, or a reference, is about.
    Kind {
        /// A model release ([`MODEL_RELEASE`]).
        Model = "model",
        /// A training dataset ([`TRAINING_DATA`]).
        Dataset = "dataset",
    }
}

impl Kind {
    /// The predicate type of declarations of this kind.
    pub fn predicate_type(self) -> &'static str {
        match self {
            Kind::Model => MODEL_RELEASE,
            Kind::Dataset => TRAINING_DATA,
        }
    }
}

string_enum! {
    /// How a model used a training dataset (`trainingData[].role`).
    Role {
        Pretraining = "pretraining",
        Finetuning = "finetuning",
        Evaluation = "evaluation",
    }
}

string_enum! {
    /// How a model derives from a base model (`baseModels[].relation`; the
    /// values of Hugging Face's `base_model_relation`, plus `distill`).
    Relation {
        Finetune = "finetune",
        Adapter = "adapter",
        Quantized = "quantized",
        Merge = "merge",
        Distill = "distill",
    }
}

string_enum! {
    /// How much of a model's training data `trainingData` lists.
    DataDisclosure {
        /// Every training dataset is listed (the default).
        Full = "full",
        /// Some training datasets are listed.
        Partial = "partial",
        /// The model was trained on data that is not listed.
        Withheld = "withheld",
        /// The publisher declares no training data (e.g. a quantisation
        /// whose data is that of its base model).
        None = "none",
    }
}

impl DataDisclosure {
    /// Whether a model that lists `listed` training datasets may declare
    /// this disclosure: `full` and `partial` list at least one, `withheld`
    /// and `none` list none.
    pub fn agrees_with(self, listed: usize) -> bool {
        matches!(self, DataDisclosure::Full | DataDisclosure::Partial) == (listed > 0)
    }
}

string_enum! {
    /// Where data in a dataset came from (`sources[].category`), after the
    /// source types of the EU AI Act's template for the public summary of
    /// training content.
    SourceCategory {
        PublicDataset = "publicDataset",
        LicensedThirdParty = "licensedThirdParty",
        WebCrawl = "webCrawl",
        UserData = "userData",
        Synthetic = "synthetic",
        Other = "other",
    }
}

string_enum! {
    /// Whether a dataset contains personal data.
    PersonalDataPresence {
        Yes = "yes",
        No = "no",
        Unknown = "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::declaration::parse_statement;
    use crate::admission::declaration::tests::*;
    use serde_json::json;

    // ---- Names.

    const BAD_NAMES: &[(&str, &str)] = &[
        ("", "it is empty"),
        ("a//b", "segment 1 is empty"),
        ("/a", "segment 0 is empty"),
        ("a/", "segment 1 is empty"),
        ("/", "segment 0 is empty"),
        ("./x", "segment 0 is \".\""),
        ("x/.", "segment 1 is \".\""),
        ("a/../b", "segment 1 is \"..\""),
        ("..", "segment 0 is \"..\""),
        ("a b", "\" \" (U+0020) at position 1"),
        ("org/mod\u{e8}le", "(U+00E8) at position 7"),
        ("\u{ff41}", "(U+FF41)"),
        ("a\\b", "(U+005C)"),
        ("a:b", "(U+003A)"),
        ("a@1.0", "(U+0040)"),
        ("a\u{0}", "(U+0000)"),
        ("tab\t", "(U+0009)"),
    ];

    #[test]
    fn bad_names_are_refused() {
        let long = "a".repeat(MAX_NAME_LEN + 1);
        let mut cases: Vec<(&str, &str)> = BAD_NAMES.to_vec();
        cases.push((&long, "201 characters long"));
        for (name, reason) in cases {
            let err = name.parse::<Name>().unwrap_err();
            assert_eq!(err.path(), None);
            assert!(err.to_string().contains(reason), "{name:?}: {err}");
            let v = set(base("model"), "/subject/0/name", json!(name));
            let v = set(v, "/predicate/name", json!(name));
            refused(&v, "$.subject[0].name", reason, name);
            let v = set(base("model"), "/predicate/trainingData/1/name", json!(name));
            refused(&v, "$.predicate.trainingData[1].name", reason, name);
            let v = set(base("model"), "/predicate/baseModels/0/name", json!(name));
            refused(&v, "$.predicate.baseModels[0].name", reason, name);
        }
    }

    #[test]
    fn name_error_message() {
        let v = set(base("dataset"), "/subject/0/name", json!("a//b"));
        let err = parse_statement(&to_bytes(&v)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "$.subject[0].name: \"a//b\" is not a valid name: segment 1 is empty (a name is 1 \
             to 200 characters: segments of A-Z a-z 0-9 . _ - joined by single '/')"
        );
    }

    #[test]
    fn good_names_are_accepted() {
        let long = "a".repeat(MAX_NAME_LEN);
        let longest_path = format!("{}/{}", "b".repeat(99), "c".repeat(100));
        let names = [
            "a",
            "Z",
            "0",
            "org/model",
            "org/family/model",
            "Org/Model-7B.v2_final",
            "...",
            ".hidden/x",
            "a-/-b",
            "x/y/z/w/v",
            &long,
            &longest_path,
        ];
        for name in names {
            let parsed: Name = name.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(parsed.as_str(), name);
            let v = set(base("dataset"), "/subject/0/name", json!(name));
            let v = set(v, "/predicate/name", json!(name));
            assert_eq!(accepted(&v).name().as_str(), name);
        }
        assert_ne!(
            "Org/M".parse::<Name>().unwrap(),
            "org/m".parse::<Name>().unwrap()
        );
    }

    // ---- Digests.

    fn bad_digests() -> Vec<(String, &'static str)> {
        let good = digest("x");
        vec![
            (good.to_uppercase(), "uppercase"),
            (format!("{}A", &good[..63]), "uppercase"),
            (good[..63].to_owned(), "it has 63 characters"),
            (format!("{good}0"), "it has 65 characters"),
            (String::new(), "it has 0 characters"),
            (format!("sha256:{}", &good[..57]), "not hex digits"),
            ("g".repeat(64), "not hex digits"),
            (format!(" {}", &good[..63]), "not hex digits"),
            ("\u{e9}".repeat(32), "not hex digits"),
        ]
    }

    #[test]
    fn bad_digests_are_refused() {
        let pointers = [
            ("model", "/subject/0/digest/sha256"),
            ("model", "/predicate/trainingData/2/digest/sha256"),
            ("model", "/predicate/baseModels/0/digest/sha256"),
            ("model", "/predicate/supersedes/digest/sha256"),
            ("model", "/predicate/modelCard/digest/sha256"),
            ("private", "/subject/0/digest/sha256"),
            ("dataset", "/predicate/supersedes/digest/sha256"),
        ];
        for (bad, reason) in bad_digests() {
            let err = bad.parse::<Digest>().unwrap_err();
            assert!(err.to_string().contains(reason), "{bad:?}: {err}");
            assert!(err.to_string().contains("64 lowercase hex digits"), "{err}");
            for (example, pointer) in pointers {
                let v = set(base(example), pointer, json!(bad));
                refused(&v, &path_of(pointer), reason, pointer);
            }
        }
    }

    #[test]
    fn digests_read_and_write_as_lowercase_hex() {
        let text = digest("x");
        let d: Digest = text.parse().unwrap();
        assert_eq!(d.to_string(), text);
        assert_eq!(d, Digest::of(b"x"));
        assert_eq!(format!("{d:?}"), format!("Digest({text})"));
    }

    #[test]
    fn commitment_is_sha256_of_salt_then_root() {
        let salt = [7u8; 32];
        let root = Digest::of(b"root");
        let expected = Digest::of(&[&salt[..], &root.0[..]].concat());
        assert_eq!(commitment(&salt, &root), expected);
        assert_ne!(commitment(&[8u8; 32], &root), expected);
    }

    // ---- Enumerations.

    #[test]
    fn bad_enumeration_values_are_refused() {
        let cases = [
            (
                "model",
                "/predicate/trainingData/1/role",
                "pretrain",
                "pretraining, finetuning, evaluation",
            ),
            (
                "model",
                "/predicate/trainingData/0/role",
                "Pretraining",
                "pretraining, finetuning, evaluation",
            ),
            (
                "model",
                "/predicate/trainingData/0/role",
                "",
                "pretraining, finetuning, evaluation",
            ),
            (
                "model",
                "/predicate/baseModels/0/relation",
                "fine-tune",
                "finetune, adapter, quantized, merge, distill",
            ),
            (
                "model",
                "/predicate/baseModels/0/relation",
                "lora",
                "finetune, adapter",
            ),
            (
                "model",
                "/predicate/dataDisclosure",
                "FULL",
                "full, partial, withheld, none",
            ),
            (
                "model",
                "/predicate/dataDisclosure",
                "open",
                "full, partial, withheld, none",
            ),
            (
                "dataset",
                "/predicate/sources/0/category",
                "web",
                "publicDataset, licensedThirdParty, webCrawl, userData, synthetic, other",
            ),
            (
                "dataset",
                "/predicate/sources/0/category",
                "WebCrawl",
                "publicDataset, licensedThirdParty, webCrawl",
            ),
            (
                "dataset",
                "/predicate/personalData/containsPersonalData",
                "true",
                "yes, no, unknown",
            ),
            (
                "dataset",
                "/predicate/personalData/containsPersonalData",
                "No",
                "yes, no, unknown",
            ),
        ];
        for (example, pointer, bad, allowed) in cases {
            let v = set(base(example), pointer, json!(bad));
            refused(
                &v,
                &path_of(pointer),
                &format!("{} is not one of {allowed}", json!(bad)),
                bad,
            );
        }
    }

    #[test]
    fn enumeration_error_message() {
        let v = set(
            base("model"),
            "/predicate/trainingData/1/role",
            json!("pretrain"),
        );
        let err = parse_statement(&to_bytes(&v)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "$.predicate.trainingData[1].role: \"pretrain\" is not one of pretraining, \
             finetuning, evaluation"
        );
    }

    #[test]
    fn every_enumeration_value_is_accepted() {
        for role in Role::ALL {
            let v = set(
                base("model"),
                "/predicate/trainingData/0/role",
                json!(role.as_str()),
            );
            accepted(&v);
        }
        for relation in Relation::ALL {
            let v = set(
                base("model"),
                "/predicate/baseModels/0/relation",
                json!(relation.as_str()),
            );
            accepted(&v);
        }
        for category in SourceCategory::ALL {
            let v = set(
                base("dataset"),
                "/predicate/sources/0/category",
                json!(category.as_str()),
            );
            accepted(&v);
        }
        for presence in PersonalDataPresence::ALL {
            let pointer = "/predicate/personalData/containsPersonalData";
            accepted(&set(base("dataset"), pointer, json!(presence.as_str())));
        }
        assert_eq!(Kind::Model.predicate_type(), MODEL_RELEASE);
        assert_eq!(Kind::Dataset.predicate_type(), TRAINING_DATA);
    }

    // ---- Identifiers: no control characters.

    /// Every string member that is an identifier, by example and JSON pointer.
    const IDENTIFIERS: [(&str, &str); 5] = [
        ("model", "/predicate/version"),
        ("model", "/predicate/supplier"),
        ("dataset", "/predicate/version"),
        ("dataset", "/predicate/supplier"),
        ("dataset", "/predicate/sources/0/name"),
    ];

    #[test]
    fn identifiers_with_control_characters_are_refused() {
        let cases = [
            ("2.0\u{0}", "contains U+0000 at character 3"),
            ("\u{0}", "contains U+0000 at character 0"),
            ("1\t2", "contains U+0009 at character 1"),
            ("v1\n", "contains U+000A at character 2"),
            ("\u{1b}[31mred", "contains U+001B at character 0"),
            ("del\u{7f}", "contains U+007F at character 3"),
            ("\u{e9}t\u{e9}\u{85}", "contains U+0085 at character 3"),
            ("x\u{9f}", "contains U+009F at character 1"),
        ];
        for (value, reason) in cases {
            assert_eq!(
                first_control(value).map(|(i, c)| control_reason(i, c)),
                Some(reason.to_owned() + "; control characters (U+0000\u{2013}U+001F, U+007F\u{2013}U+009F) are not allowed in identifiers"),
            );
            for (example, pointer) in IDENTIFIERS {
                let v = set(base(example), pointer, json!(value));
                refused(&v, &path_of(pointer), reason, value);
            }
        }
    }

    #[test]
    fn identifiers_may_hold_any_other_character_and_prose_may_break_lines() {
        for value in [
            "2.0",
            "1.2@rc",
            "v\u{a0}1",
            "\u{200b}",
            "caf\u{e9} \u{1f600}",
            "a b",
        ] {
            assert_eq!(first_control(value), None, "{value:?}");
            for (example, pointer) in IDENTIFIERS {
                accepted(&set(base(example), pointer, json!(value)));
            }
        }
        for (example, pointer) in [
            ("model", "/predicate/description"),
            ("dataset", "/predicate/processing"),
            ("dataset", "/predicate/personalData/handling"),
        ] {
            accepted(&set(
                base(example),
                pointer,
                json!("line one\nline two\ttabbed"),
            ));
        }
    }

    // ---- URIs.

    #[test]
    fn uris_need_a_scheme_and_no_spaces() {
        let pointers = [
            ("model", "/predicate/downloadLocation"),
            ("model", "/predicate/modelCard/uri"),
            ("dataset", "/predicate/sources/0/uri"),
            ("dataset", "/predicate/downloadLocation"),
        ];
        let bad = [
            (
                "huggingface.co/example-org/tiny-chat",
                "does not start with a scheme",
            ),
            ("", "does not start with a scheme"),
            (":x", "does not start with a scheme"),
            ("1http://x", "does not start with a scheme"),
            ("https:", "does not start with a scheme"),
            ("ht tp://x", "does not start with a scheme"),
            ("https://x/a b", "whitespace or control characters"),
            ("https://x/\n", "whitespace or control characters"),
        ];
        for (uri, reason) in bad {
            for (example, pointer) in pointers {
                let v = set(base(example), pointer, json!(uri));
                refused(&v, &path_of(pointer), reason, uri);
            }
        }
        for uri in [
            "https://x",
            "hf://org/model",
            "s3://bucket/key",
            "urn:uuid:1234",
            "git+https://h/r.git",
        ] {
            assert_eq!(uri.parse::<Uri>().unwrap().as_str(), uri);
        }
    }
}

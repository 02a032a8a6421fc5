//! Tests of whole statements: the examples, presence and JSON types of every
//! member, the statement layer, the rules that relate fields; and the
//! fixtures the other files' tests share.

use super::*;
use crate::admission::strict_json::{element_path, member_path, ROOT};
use serde_json::json;

pub(super) const MODEL: &[u8] =
    include_bytes!("../../../tests/data/declarations/model-release.json");
pub(super) const DATASET: &[u8] =
    include_bytes!("../../../tests/data/declarations/training-data.json");
pub(super) const PRIVATE: &[u8] =
    include_bytes!("../../../tests/data/declarations/training-data-private.json");

/// The example salt and manifest root behind the private example's
/// commitment (see `tests/data/declarations/make_examples.py`).
pub(super) const PRIVATE_SALT: &str =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
pub(super) const PRIVATE_ROOT: &str =
    "ad7b32600cdee57384b0c78aa16e87e414ca1b791730891179424aced3153ce1";

pub(super) const SLSA: &str = "https://slsa.dev/provenance/v1";

pub(super) fn base(which: &str) -> Value {
    let bytes = match which {
        "model" => MODEL,
        "dataset" => DATASET,
        "private" => PRIVATE,
        _ => panic!("no example {which}"),
    };
    serde_json::from_slice(bytes).unwrap()
}

pub(super) fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// `v` with the member at JSON pointer `pointer` set to `new`, or removed
/// when `new` is `None`. An array index equal to the length appends.
pub(super) fn edit(mut v: Value, pointer: &str, new: Option<Value>) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let container = v
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent}"));
    match (container, new) {
        (Value::Object(m), Some(x)) => {
            m.insert(key.to_owned(), x);
        }
        (Value::Object(m), None) => {
            assert!(m.remove(key).is_some(), "no {pointer}");
        }
        (Value::Array(a), Some(x)) => match key.parse::<usize>().unwrap() {
            i if i == a.len() => a.push(x),
            i => a[i] = x,
        },
        (Value::Array(a), None) => {
            a.remove(key.parse::<usize>().unwrap());
        }
        _ => panic!("{pointer}: the parent is not a container"),
    }
    v
}

pub(super) fn set(v: Value, pointer: &str, new: Value) -> Value {
    edit(v, pointer, Some(new))
}

pub(super) fn remove(v: Value, pointer: &str) -> Value {
    edit(v, pointer, None)
}

/// The error path of the member at JSON pointer `pointer`.
pub(super) fn path_of(pointer: &str) -> String {
    pointer
        .split('/')
        .skip(1)
        .fold(ROOT.to_owned(), |path, segment| match segment.parse() {
            Ok(i) => element_path(&path, i),
            Err(_) => member_path(&path, segment),
        })
}

#[track_caller]
pub(super) fn accepted(v: &Value) -> Declaration {
    parse_statement(&to_bytes(v)).unwrap_or_else(|e| panic!("refused: {e}"))
}

#[track_caller]
pub(super) fn refused(v: &Value, path: &str, reason: &str, what: &str) {
    match parse_statement(&to_bytes(v)) {
        Ok(_) => panic!("{what}: accepted"),
        Err(e) => {
            assert_eq!(e.path(), Some(path), "{what}: {e}");
            let message = e.to_string();
            assert!(
                message.contains(reason),
                "{what}: {message:?} lacks {reason:?}"
            );
        }
    }
}

pub(super) fn digest(label: &str) -> String {
    Digest::of(label.as_bytes()).to_string()
}

// ---- The examples.

#[test]
fn examples_are_accepted() {
    assert_eq!(accepted(&base("model")).kind(), Kind::Model);
    assert_eq!(accepted(&base("dataset")).kind(), Kind::Dataset);
    let private = accepted(&base("private"));
    assert_eq!(private.kind(), Kind::Dataset);
    assert!(private.manifest().is_none());
}

#[test]
fn examples_are_in_canonical_form_and_round_trip() {
    for bytes in [MODEL, DATASET, PRIVATE] {
        let declaration = parse_statement(bytes).unwrap();
        let written = declaration.to_statement_json();
        let file = std::str::from_utf8(bytes).unwrap().trim_end();
        assert_eq!(std::str::from_utf8(&written).unwrap(), file);
        assert_eq!(parse_statement(&written).unwrap(), declaration);
        assert_eq!(declaration.to_statement_json(), written, "stable");
    }
}

#[test]
fn private_example_logs_the_commitment() {
    let declaration = parse_statement(PRIVATE).unwrap();
    let mut salt = [0u8; 32];
    hex::decode_to_slice(PRIVATE_SALT, &mut salt).unwrap();
    let root: Digest = PRIVATE_ROOT.parse().unwrap();
    assert_eq!(*declaration.subject_digest(), commitment(&salt, &root));
    // The model example names the private dataset by that commitment.
    let model = parse_statement(MODEL).unwrap();
    assert_eq!(model.trained_on()[1], *declaration.subject_digest());
}

#[test]
fn accessors_of_the_model_example() {
    let d = parse_statement(MODEL).unwrap();
    assert_eq!(d.name().as_str(), "example-org/tiny-chat");
    assert_eq!(d.version(), "1.2.0");
    assert_eq!(d.release_time().unix_ms(), 1_741_944_600_000);
    assert_eq!(d.release_time().as_str(), "2025-03-14T09:30:00Z");
    assert_eq!(d.license().as_str(), "Apache-2.0");
    let manifest = d.manifest().unwrap();
    assert_eq!(Digest(manifest.root_digest()), *d.subject_digest());
    let files: Vec<Digest> = ["config.json", "model.safetensors", "tokenizer.json"]
        .iter()
        .map(|name| Digest::of(format!("file:{name}").as_bytes()))
        .collect();
    assert_eq!(d.file_digests(), files);
    assert_eq!(d.trained_on().len(), 3);
    assert_eq!(
        d.trained_on()[0],
        *parse_statement(DATASET).unwrap().subject_digest()
    );
    let Declaration::Model(m) = &d else {
        panic!("not a model")
    };
    assert_eq!(m.data_disclosure, DataDisclosure::Full);
    assert_eq!(m.training_data[2].role, Role::Evaluation);
    assert_eq!(m.base_models[0].relation, Relation::Finetune);
    assert!(m.extensions.is_empty());
}

#[test]
fn references_of_the_examples() {
    let model = parse_statement(MODEL).unwrap();
    let refs = model.references();
    let fields: Vec<&str> = refs.iter().map(|r| r.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "$.predicate.trainingData[0]",
            "$.predicate.trainingData[1]",
            "$.predicate.trainingData[2]",
            "$.predicate.baseModels[0]",
            "$.predicate.supersedes",
        ]
    );
    assert_eq!(
        refs[0],
        Reference {
            field: "$.predicate.trainingData[0]".into(),
            kind: Kind::Dataset,
            name: NameRule::Is("example-org/web-corpus".parse().unwrap()),
            digest: *parse_statement(DATASET).unwrap().subject_digest(),
            log_index: Some(41),
        }
    );
    assert_eq!(refs[1].log_index, None);
    assert_eq!(refs[3].kind, Kind::Model);
    assert_eq!(refs[3].log_index, Some(7));
    assert_eq!(
        refs[4],
        Reference {
            field: "$.predicate.supersedes".into(),
            kind: Kind::Model,
            name: NameRule::SameAsReferrer,
            digest: digest("tiny-chat 1.1.0").parse().unwrap(),
            log_index: Some(40),
        }
    );
    let dataset = parse_statement(DATASET).unwrap().references();
    assert_eq!(dataset.len(), 1);
    assert_eq!(
        (dataset[0].kind, dataset[0].log_index),
        (Kind::Dataset, Some(12))
    );
    assert!(parse_statement(PRIVATE).unwrap().references().is_empty());
    assert!(parse_statement(PRIVATE).unwrap().file_digests().is_empty());
    assert!(parse_statement(DATASET).unwrap().trained_on().is_empty());
}

// ---- Presence and JSON types.

/// (example, JSON pointer) of every required member.
const REQUIRED: &[(&str, &str)] = &[
    ("model", "/_type"),
    ("model", "/subject"),
    ("model", "/predicateType"),
    ("model", "/predicate"),
    ("model", "/subject/0/name"),
    ("model", "/subject/0/digest"),
    ("model", "/subject/0/digest/sha256"),
    ("model", "/predicate/name"),
    ("model", "/predicate/version"),
    ("model", "/predicate/releaseTime"),
    ("model", "/predicate/license"),
    ("model", "/predicate/manifest"),
    ("model", "/predicate/manifest/resources"),
    ("model", "/predicate/trainingData/2/name"),
    ("model", "/predicate/trainingData/2/digest"),
    ("model", "/predicate/trainingData/2/digest/sha256"),
    ("model", "/predicate/trainingData/2/role"),
    ("model", "/predicate/baseModels/0/name"),
    ("model", "/predicate/baseModels/0/digest"),
    ("model", "/predicate/baseModels/0/relation"),
    ("model", "/predicate/supersedes/logIndex"),
    ("model", "/predicate/supersedes/digest"),
    ("model", "/predicate/modelCard/uri"),
    ("model", "/predicate/modelCard/digest"),
    ("dataset", "/subject/0/name"),
    ("dataset", "/predicate/name"),
    ("dataset", "/predicate/version"),
    ("dataset", "/predicate/releaseTime"),
    ("dataset", "/predicate/license"),
    ("dataset", "/predicate/sources"),
    ("dataset", "/predicate/processing"),
    ("dataset", "/predicate/personalData"),
    ("dataset", "/predicate/sources/0/category"),
    ("dataset", "/predicate/sources/1/name"),
    ("dataset", "/predicate/sources/0/collectionPeriod/start"),
    ("dataset", "/predicate/sources/0/collectionPeriod/end"),
    ("dataset", "/predicate/personalData/containsPersonalData"),
    ("dataset", "/predicate/personalData/handling"),
    ("dataset", "/predicate/supersedes/logIndex"),
    ("dataset", "/predicate/supersedes/digest"),
    ("dataset", "/predicate/manifest/serialization"),
    ("private", "/predicate/sources"),
    ("private", "/predicate/personalData/handling"),
];

#[test]
fn every_required_member_is_required() {
    for (example, pointer) in REQUIRED {
        let v = remove(base(example), pointer);
        refused(&v, &path_of(pointer), "missing required field", pointer);
    }
}

/// (example, JSON pointer) of optional members: leaving any out is fine.
const OPTIONAL: &[(&str, &str)] = &[
    ("model", "/predicate/dataDisclosure"),
    ("model", "/predicate/baseModels"),
    ("model", "/predicate/supersedes"),
    ("model", "/predicate/supplier"),
    ("model", "/predicate/downloadLocation"),
    ("model", "/predicate/modelCard"),
    ("model", "/predicate/description"),
    ("model", "/predicate/trainingData/0/logIndex"),
    ("model", "/predicate/baseModels/0/logIndex"),
    ("model", "/predicate/manifest/serialization/ignore_paths"),
    ("dataset", "/predicate/manifest"),
    ("dataset", "/predicate/supersedes"),
    ("dataset", "/predicate/knownLimitations"),
    ("dataset", "/predicate/intendedUse"),
    ("dataset", "/predicate/supplier"),
    ("dataset", "/predicate/downloadLocation"),
    ("dataset", "/predicate/description"),
    ("dataset", "/predicate/sources/0/uri"),
    ("dataset", "/predicate/sources/0/license"),
    ("dataset", "/predicate/sources/0/collectionPeriod"),
];

#[test]
fn every_optional_member_is_optional() {
    for (example, pointer) in OPTIONAL {
        let declaration = accepted(&remove(base(example), pointer));
        // And the value written without it reads back the same.
        let written = declaration.to_statement_json();
        assert_eq!(parse_statement(&written).unwrap(), declaration, "{pointer}");
    }
}

/// (example, JSON pointer, value of the wrong type, expected type).
fn wrong_types() -> Vec<(&'static str, &'static str, Value, &'static str)> {
    vec![
        ("model", "/_type", json!(1), "a string"),
        ("model", "/predicateType", json!(null), "a string"),
        ("model", "/subject", json!({}), "an array"),
        ("model", "/subject/0", json!("org/model"), "an object"),
        ("model", "/subject/0/name", json!(["a"]), "a string"),
        ("model", "/subject/0/digest", json!("ab"), "an object"),
        ("model", "/subject/0/digest/sha256", json!(7), "a string"),
        ("model", "/subject/0/digest/sha512", json!(7), "a string"),
        ("model", "/predicate", json!([]), "an object"),
        ("model", "/predicate/name", json!(null), "a string"),
        ("model", "/predicate/version", json!(1.2), "a string"),
        (
            "model",
            "/predicate/releaseTime",
            json!(1741944600),
            "a string",
        ),
        ("model", "/predicate/license", json!(["MIT"]), "a string"),
        (
            "model",
            "/predicate/manifest",
            json!("sha256:ab"),
            "an object",
        ),
        (
            "model",
            "/predicate/dataDisclosure",
            json!(true),
            "a string",
        ),
        ("model", "/predicate/trainingData", json!({}), "an array"),
        (
            "model",
            "/predicate/trainingData/1",
            json!("x"),
            "an object",
        ),
        (
            "model",
            "/predicate/trainingData/1/role",
            json!(1),
            "a string",
        ),
        (
            "model",
            "/predicate/trainingData/1/logIndex",
            json!("41"),
            "a non-negative integer",
        ),
        (
            "model",
            "/predicate/trainingData/1/logIndex",
            json!(null),
            "a non-negative integer",
        ),
        (
            "model",
            "/predicate/baseModels",
            json!("org/base"),
            "an array",
        ),
        (
            "model",
            "/predicate/baseModels/0/relation",
            json!(null),
            "a string",
        ),
        ("model", "/predicate/supersedes", json!(40), "an object"),
        (
            "model",
            "/predicate/supersedes/logIndex",
            json!([40]),
            "a non-negative integer",
        ),
        ("model", "/predicate/supplier", json!(null), "a string"),
        (
            "model",
            "/predicate/downloadLocation",
            json!({}),
            "a string",
        ),
        (
            "model",
            "/predicate/modelCard",
            json!("https://x"),
            "an object",
        ),
        ("model", "/predicate/modelCard/uri", json!(1), "a string"),
        ("model", "/predicate/description", json!(false), "a string"),
        ("dataset", "/predicate/sources", json!({}), "an array"),
        ("dataset", "/predicate/sources/0", json!([]), "an object"),
        (
            "dataset",
            "/predicate/sources/0/license",
            json!(null),
            "a string",
        ),
        (
            "dataset",
            "/predicate/sources/0/collectionPeriod",
            json!("2024"),
            "an object",
        ),
        (
            "dataset",
            "/predicate/sources/0/collectionPeriod/start",
            json!(0),
            "a string",
        ),
        (
            "dataset",
            "/predicate/processing",
            json!(["dedup"]),
            "a string",
        ),
        (
            "dataset",
            "/predicate/personalData",
            json!("no"),
            "an object",
        ),
        (
            "dataset",
            "/predicate/personalData/containsPersonalData",
            json!(false),
            "a string",
        ),
        (
            "dataset",
            "/predicate/knownLimitations",
            json!(null),
            "a string",
        ),
        ("dataset", "/predicate/intendedUse", json!(1), "a string"),
    ]
}

#[test]
fn every_member_has_its_json_type() {
    for (example, pointer, value, expected) in wrong_types() {
        let v = set(base(example), pointer, value);
        refused(
            &v,
            &path_of(pointer),
            &format!("must be {expected}"),
            pointer,
        );
    }
}

#[test]
fn empty_strings_are_refused() {
    let cases = [
        ("model", "/predicate/version"),
        ("model", "/predicate/supplier"),
        ("model", "/predicate/description"),
        ("dataset", "/predicate/processing"),
        ("dataset", "/predicate/personalData/handling"),
        ("dataset", "/predicate/sources/0/name"),
        ("dataset", "/predicate/knownLimitations"),
        ("dataset", "/predicate/intendedUse"),
    ];
    for (example, pointer) in cases {
        let v = set(base(example), pointer, json!(""));
        refused(&v, &path_of(pointer), "is empty", pointer);
    }
}

// ---- The statement layer.

#[test]
fn statement_members_are_exactly_the_in_toto_ones() {
    for extra in ["predicateVersion", "signatures", "_TYPE2"] {
        let v = set(base("model"), &format!("/{extra}"), json!(1));
        refused(&v, &member_path(ROOT, extra), "unknown field", extra);
    }
    let v = set(
        base("model"),
        "/_type",
        json!("https://in-toto.io/Statement/v0.1"),
    );
    refused(
        &v,
        "$._type",
        "is not \"https://in-toto.io/Statement/v1\"",
        "v0.1",
    );
}

#[test]
fn exactly_one_subject() {
    let v = set(base("model"), "/subject", json!([]));
    refused(&v, "$.subject", "has 0 entries", "no subject");
    let subject = base("model")["subject"][0].clone();
    let v = set(base("model"), "/subject/1", subject);
    refused(&v, "$.subject", "has 2 entries", "two subjects");
}

#[test]
fn subject_entries() {
    // ResourceDescriptor members are allowed and ignored; others are not.
    let mut v = base("model");
    for (key, value) in [
        ("uri", json!("https://huggingface.co/example-org/tiny-chat")),
        ("mediaType", json!("application/octet-stream")),
        ("annotations", json!({"note": 1})),
    ] {
        v = set(v, &format!("/subject/0/{key}"), value);
    }
    accepted(&v);
    let v = set(base("model"), "/subject/0/version", json!("1.2.0"));
    refused(
        &v,
        "$.subject[0].version",
        "unknown field",
        "subject version",
    );
    // Other digest algorithms are allowed and ignored.
    let v = set(base("model"), "/subject/0/digest/sha512", json!("00ff"));
    accepted(&v);
    let v = set(
        base("model"),
        "/subject/0/digest/gitCommit",
        json!("not checked"),
    );
    accepted(&v);
    // But sha256 is required, and spelled in lower case.
    let sha = base("model")["subject"][0]["digest"]["sha256"].clone();
    let v = set(
        remove(base("model"), "/subject/0/digest/sha256"),
        "/subject/0/digest/SHA256",
        sha,
    );
    refused(
        &v,
        "$.subject[0].digest.SHA256",
        "only in letter case",
        "SHA256",
    );
}

#[test]
fn subject_name_must_equal_predicate_name() {
    for other in [
        "example-org/tiny-chat-2",
        "Example-org/tiny-chat",
        "example-org",
    ] {
        let v = set(base("model"), "/predicate/name", json!(other));
        refused(
            &v,
            "$.predicate.name",
            "differs from $.subject[0].name",
            other,
        );
        let v = set(base("dataset"), "/subject/0/name", json!(other));
        refused(&v, "$.predicate.name", "must be equal", other);
    }
}

#[test]
fn predicate_types() {
    let slsa = set(base("model"), "/predicateType", json!(SLSA));
    let slsa = set(slsa, "/predicate", json!({"anything": ["goes"]}));
    let err = parse_statement(&to_bytes(&slsa)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "$.predicateType \"{SLSA}\" is not accepted by this log; accepted: \
             {MODEL_RELEASE}, {TRAINING_DATA}"
        )
    );
    assert_eq!(err.path(), Some("$.predicateType"));
    let extras = vec![SLSA.to_owned()];
    let result = validate_envelope_payload(PAYLOAD_TYPE, &to_bytes(&slsa), &extras);
    assert_eq!(result, Ok(None));
    let other = set(
        slsa.clone(),
        "/predicateType",
        json!("https://example.com/other/v1"),
    );
    let err = validate_envelope_payload(PAYLOAD_TYPE, &to_bytes(&other), &extras).unwrap_err();
    assert!(
        err.to_string()
            .ends_with(&format!("{TRAINING_DATA}, {SLSA}")),
        "{err}"
    );
    // The statement layer is still checked for extra types.
    let bad = set(slsa, "/extra", json!(1));
    let err = validate_envelope_payload(PAYLOAD_TYPE, &to_bytes(&bad), &extras).unwrap_err();
    assert_eq!(err.path(), Some("$.extra"));
}

#[test]
fn envelope_payload_checks() {
    let model = validate_envelope_payload(PAYLOAD_TYPE, MODEL, &[]).unwrap();
    assert_eq!(model, Some(parse_statement(MODEL).unwrap()));
    let err = validate_envelope_payload("application/json", MODEL, &[]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "envelope payloadType \"application/json\" is not \"application/vnd.in-toto+json\": \
         a declaration is an in-toto statement in JSON"
    );
    assert_eq!(err.path(), None);
    // Declaration types are always checked, even when listed as extra types.
    let extras = vec![MODEL_RELEASE.to_owned()];
    let bad = remove(base("model"), "/predicate/license");
    let err = validate_envelope_payload(PAYLOAD_TYPE, &to_bytes(&bad), &extras).unwrap_err();
    assert_eq!(err.path(), Some("$.predicate.license"));
}

#[test]
fn strict_json_is_enforced() {
    let text = std::str::from_utf8(MODEL).unwrap();
    let cases = [
        (
            "\"version\": \"1.2.0\"",
            "\"version\": \"1.2.0\", \"version\": \"1.2.1\"",
            "$.predicate.version",
        ),
        (
            "\"version\": \"1.2.0\"",
            "\"version\": \"1.2.0\", \"Version\": \"1.2.1\"",
            "$.predicate.Version",
        ),
        ("\"_type\":", "\"_type\": \"x\", \"_type\":", "$._type"),
        (
            "\"role\": \"evaluation\"",
            "\"role\": \"evaluation\", \"role\": \"pretraining\"",
            "$.predicate.trainingData[2].role",
        ),
    ];
    for (from, to, path) in cases {
        assert_eq!(text.matches(from).count(), 1, "{from}");
        let err = parse_statement(text.replace(from, to).as_bytes()).unwrap_err();
        assert!(
            matches!(err, DeclarationError::Json(JsonError::DuplicateKey { .. })),
            "{err}"
        );
        assert_eq!(err.path(), Some(path));
    }
    for bad in [
        &b""[..],
        b"[]",
        b"\"x\"",
        b"{} {}",
        b"{\"_type\": \"\xff\"}",
    ] {
        assert!(matches!(
            parse_statement(bad),
            Err(DeclarationError::Json(_))
        ));
    }
}

#[test]
fn unknown_predicate_members_are_kept_or_ignored() {
    let v = set(
        base("model"),
        "/predicate/trainingCompute",
        json!({"flop": 1e21}),
    );
    let v = set(
        v,
        "/predicate/trainingData/0/notes",
        json!("kept in the payload"),
    );
    let v = set(v, "/predicate/manifest/serialization/extra", json!(1));
    let Declaration::Model(m) = accepted(&v) else {
        panic!("not a model")
    };
    assert_eq!(
        m.extensions.get("trainingCompute"),
        Some(&json!({"flop": 1e21}))
    );
    // Top-level extensions are written back; nested unknown members are not.
    let written = parse_statement(&m.to_statement_json()).unwrap();
    assert_eq!(written, Declaration::Model(m));
    let dataset = set(
        base("dataset"),
        "/predicate/croissant",
        json!({"@type": "Dataset"}),
    );
    let Declaration::Dataset(d) = accepted(&dataset) else {
        panic!("not a dataset")
    };
    assert_eq!(d.extensions.len(), 1);
}

#[test]
fn case_variants_of_defined_members_are_refused() {
    let cases = [
        ("model", "/predicate/description", "/predicate/Description"),
        (
            "model",
            "/predicate/dataDisclosure",
            "/predicate/datadisclosure",
        ),
        (
            "model",
            "/predicate/trainingData/0/logIndex",
            "/predicate/trainingData/0/LogIndex",
        ),
        (
            "model",
            "/predicate/baseModels/0/logIndex",
            "/predicate/baseModels/0/logindex",
        ),
        (
            "model",
            "/predicate/modelCard/uri",
            "/predicate/modelCard/URI",
        ),
        (
            "dataset",
            "/predicate/intendedUse",
            "/predicate/IntendedUse",
        ),
        (
            "dataset",
            "/predicate/sources/0/collectionPeriod",
            "/predicate/sources/0/CollectionPeriod",
        ),
        (
            "dataset",
            "/predicate/personalData/handling",
            "/predicate/personalData/Handling",
        ),
        (
            "dataset",
            "/predicate/sources/0/collectionPeriod/end",
            "/predicate/sources/0/collectionPeriod/End",
        ),
    ];
    for (example, pointer, variant) in cases {
        let value = base(example).pointer(pointer).unwrap().clone();
        let v = set(remove(base(example), pointer), variant, value);
        refused(&v, &path_of(variant), "only in letter case", variant);
    }
    // Kelvin sign: a Go decoder would read "\u{212A}" as "k".
    let v = set(
        base("private"),
        "/predicate/\u{212A}nownLimitations",
        json!("x"),
    );
    refused(
        &v,
        "$.predicate[\"\u{212A}nownLimitations\"]",
        "letter case",
        "kelvin",
    );
}

// ---- Training data and disclosure.

#[test]
fn training_data_may_be_empty_only_when_withheld_or_none() {
    // (dataDisclosure, trainingData: absent / empty / listed, accepted)
    let cases = [
        (None, "absent", false),
        (None, "empty", false),
        (None, "listed", true),
        (Some("full"), "absent", false),
        (Some("full"), "empty", false),
        (Some("full"), "listed", true),
        (Some("partial"), "absent", false),
        (Some("partial"), "empty", false),
        (Some("partial"), "listed", true),
        (Some("withheld"), "absent", true),
        (Some("withheld"), "empty", true),
        (Some("withheld"), "listed", false),
        (Some("none"), "absent", true),
        (Some("none"), "empty", true),
        (Some("none"), "listed", false),
    ];
    for (disclosure, training, ok) in cases {
        let mut v = remove(base("model"), "/predicate/dataDisclosure");
        if let Some(d) = disclosure {
            v = set(v, "/predicate/dataDisclosure", json!(d));
        }
        v = match training {
            "absent" => remove(v, "/predicate/trainingData"),
            "empty" => set(v, "/predicate/trainingData", json!([])),
            _ => v,
        };
        let what = format!("{disclosure:?} {training}");
        match (ok, training) {
            (true, _) => {
                let Declaration::Model(m) = accepted(&v) else {
                    panic!("not a model")
                };
                assert_eq!(m.data_disclosure.as_str(), disclosure.unwrap_or("full"));
            }
            (false, "listed") => refused(
                &v,
                "$.predicate.dataDisclosure",
                "use \"partial\" or \"full\"",
                &what,
            ),
            (false, _) => refused(&v, "$.predicate.trainingData", "is empty or absent", &what),
        }
    }
}

#[test]
fn sources_must_not_be_empty() {
    let v = set(base("private"), "/predicate/sources", json!([]));
    refused(
        &v,
        "$.predicate.sources",
        "at least one source",
        "empty sources",
    );
}

#[test]
fn log_indexes_are_non_negative_integers() {
    let pointer = "/predicate/trainingData/0/logIndex";
    for good in [json!(0), json!(u64::MAX)] {
        accepted(&set(base("model"), pointer, good));
    }
    for bad in [json!(-1), json!(1.5), json!(41.0), json!(1e3)] {
        let v = set(base("model"), pointer, bad.clone());
        refused(
            &v,
            &path_of(pointer),
            "is not a log index",
            &bad.to_string(),
        );
    }
    let text = std::str::from_utf8(MODEL).unwrap();
    let huge = text.replace("\"logIndex\": 41", "\"logIndex\": 18446744073709551616");
    let err = parse_statement(huge.as_bytes()).unwrap_err();
    assert_eq!(
        err.path(),
        Some("$.predicate.trainingData[0].logIndex"),
        "{err}"
    );
}

// ---- Manifests.

#[test]
fn manifest_root_must_equal_the_subject_digest() {
    let resource = "/predicate/manifest/resources/1/digest";
    for example in ["model", "dataset"] {
        let v = set(base(example), resource, json!(digest("other bytes")));
        refused(&v, "$.predicate.manifest", "root digest", example);
        let v = set(
            base(example),
            "/subject/0/digest/sha256",
            json!(digest("other")),
        );
        refused(&v, "$.predicate.manifest", "must be equal", example);
    }
    // A private dataset that logs its manifest must log the root, not the commitment.
    let manifest = base("dataset")["predicate"]["manifest"].clone();
    let v = set(base("private"), "/predicate/manifest", manifest);
    refused(
        &v,
        "$.predicate.manifest",
        "root digest",
        "private with manifest",
    );
    // Without a manifest, the subject digest is not checked against anything.
    let v = remove(base("dataset"), "/predicate/manifest");
    let v = set(v, "/subject/0/digest/sha256", json!(digest("anything")));
    accepted(&v);
}

/// The model example with its manifest detached: `detachedManifest` naming a file of SHA-256
/// `digest("manifest file")` with the example manifest's serialization.
fn detached_model() -> Value {
    let manifest = base("model")["predicate"]["manifest"].clone();
    let record = json!({
        "digest": {"sha256": digest("manifest file")},
        "serialization": manifest["serialization"].clone(),
    });
    set(
        remove(base("model"), "/predicate/manifest"),
        "/predicate/detachedManifest",
        record,
    )
}

#[test]
fn a_model_release_may_name_a_detached_manifest_instead() {
    let d = accepted(&detached_model());
    assert!(d.manifest().is_none());
    assert!(
        d.file_digests().is_empty(),
        "a detached manifest is not searchable"
    );
    let record = d.detached_manifest().unwrap();
    assert_eq!(record.digest, Digest::of(b"manifest file"));
    assert_eq!(
        record.serialization,
        parse_statement(MODEL)
            .unwrap()
            .manifest()
            .unwrap()
            .serialization()
    );
    let written = d.to_statement_json();
    assert_eq!(parse_statement(&written).unwrap(), d);
    let v: Value = serde_json::from_slice(&written).unwrap();
    assert!(v["predicate"].get("manifest").is_none());
    // The log has no manifest to check the subject digest against.
    accepted(&set(
        detached_model(),
        "/subject/0/digest/sha256",
        json!(digest("x")),
    ));
    // The embedded manifest is still the model example's, and accessors agree.
    assert!(parse_statement(MODEL)
        .unwrap()
        .detached_manifest()
        .is_none());
}

#[test]
fn a_detached_manifest_is_checked_as_strictly_as_a_manifest() {
    let path = "$.predicate.detachedManifest";
    let manifest = base("model")["predicate"]["manifest"].clone();
    let both = set(detached_model(), "/predicate/manifest", manifest);
    refused(&both, path, "not both", "both");
    let neither = remove(detached_model(), "/predicate/detachedManifest");
    refused(
        &neither,
        "$.predicate.manifest",
        "detachedManifest",
        "neither",
    );
    for member in ["digest", "serialization"] {
        let v = remove(
            detached_model(),
            &format!("/predicate/detachedManifest/{member}"),
        );
        refused(
            &v,
            &format!("{path}.{member}"),
            "missing required field",
            member,
        );
    }
    refused(
        &set(
            detached_model(),
            "/predicate/detachedManifest",
            json!("file.json"),
        ),
        path,
        "must be an object",
        "type",
    );
    refused(
        &set(
            detached_model(),
            "/predicate/detachedManifest/digest/sha256",
            json!("AB"),
        ),
        &format!("{path}.digest.sha256"),
        "64 lowercase",
        "digest",
    );
    refused(
        &set(
            detached_model(),
            "/predicate/detachedManifest/serialization/method",
            json!("shards"),
        ),
        &format!("{path}.serialization.method"),
        "not supported",
        "method",
    );
    refused(
        &set(
            detached_model(),
            "/predicate/detachedManifest/serialization/ignore_paths/0",
            json!("../up"),
        ),
        &format!("{path}.serialization.ignore_paths[0]"),
        "'..'",
        "ignore path",
    );
    let record = detached_model()["predicate"]["detachedManifest"].clone();
    let v = set(
        remove(detached_model(), "/predicate/detachedManifest"),
        "/predicate/DetachedManifest",
        record.clone(),
    );
    refused(
        &v,
        "$.predicate.DetachedManifest",
        "only in letter case",
        "case",
    );
    let v = set(
        remove(detached_model(), "/predicate/detachedManifest/digest"),
        "/predicate/detachedManifest/Digest",
        record["digest"].clone(),
    );
    refused(&v, &format!("{path}.Digest"), "only in letter case", "case");
    // A dataset cannot have one: it would read as private data.
    let v = set(base("dataset"), "/predicate/detachedManifest", record);
    refused(&v, path, "model releases only", "dataset");
}

#[test]
fn manifest_rules_are_the_manifest_module_s() {
    let v = set(
        base("model"),
        "/predicate/manifest/resources/0/name",
        json!("zzz.json"),
    );
    refused(
        &v,
        "$.predicate.manifest.resources[1].name",
        "out of order",
        "order",
    );
    let v = set(
        base("model"),
        "/predicate/manifest/serialization/method",
        json!("shards"),
    );
    refused(
        &v,
        "$.predicate.manifest.serialization.method",
        "not supported",
        "method",
    );
    let v = set(
        base("model"),
        "/predicate/manifest/resources/2/digest",
        json!("AB"),
    );
    refused(
        &v,
        "$.predicate.manifest.resources[2].digest",
        "64 lowercase",
        "digest",
    );
    let v = set(base("model"), "/predicate/manifest/resources", json!([]));
    refused(
        &v,
        "$.predicate.manifest.resources",
        "at least one file",
        "empty",
    );
}

// ---- Robustness.

#[test]
fn no_input_makes_it_panic() {
    for example in [MODEL, DATASET, PRIVATE] {
        for end in (0..example.len()).step_by(7) {
            let _ = parse_statement(&example[..end]);
        }
        for i in (0..example.len()).step_by(3) {
            for byte in [b'"', b'0', b'}', b'\xff', b'A'] {
                let mut mutated = example.to_vec();
                mutated[i] = byte;
                let _ = validate_envelope_payload(PAYLOAD_TYPE, &mutated, &[]);
            }
        }
    }
    for s in [
        "\u{10FFFF}",
        "é",
        "2024-05-01T12:00:00.é",
        "(",
        ")",
        "WITH",
        "DocumentRef-:",
    ] {
        let _ = s.parse::<Timestamp>();
        let _ = s.parse::<LicenseExpression>();
        let _ = s.parse::<Name>();
        let _ = s.parse::<Digest>();
        let _ = s.parse::<Uri>();
    }
}

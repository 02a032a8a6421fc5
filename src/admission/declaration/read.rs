//! Reading a statement: strict JSON in, a validated [`Declaration`] or a
//! located [`DeclarationError`] out. Each `read_*` function reads one object
//! of the predicate; the typed member readers at the end locate every error.
//! Not here: the values' own rules ([`super::values`], [`super::time`],
//! [`super::license`]) or writing ([`super::write`]).

use std::str::FromStr;

use serde_json::Value;

use super::*;
use crate::admission::manifest::{Manifest, ManifestError, Serialization};
use crate::admission::strict_json::{self, element_path, member_path, Map, ROOT};

/// The members of an in-toto Statement v1; no others are accepted.
const STATEMENT_FIELDS: [&str; 4] = ["_type", "subject", "predicateType", "predicate"];

/// The members of an in-toto ResourceDescriptor, which a subject entry is.
/// Only `name` and `digest` are read.
const SUBJECT_FIELDS: [&str; 7] = [
    "name",
    "digest",
    "uri",
    "content",
    "downloadLocation",
    "mediaType",
    "annotations",
];

/// Path of the predicate.
const PREDICATE: &str = "$.predicate";

/// Path of the subject's name, for messages.
const SUBJECT_NAME: &str = "$.subject[0].name";

/// Path of the subject's digest, for messages.
const SUBJECT_DIGEST: &str = "$.subject[0].digest.sha256";

/// The members of the predicate's objects; case variants of these are refused.
const TRAINING_REF_FIELDS: [&str; 4] = ["name", "digest", "role", "logIndex"];
const BASE_MODEL_FIELDS: [&str; 4] = ["name", "digest", "relation", "logIndex"];
const SUPERSEDES_FIELDS: [&str; 2] = ["logIndex", "digest"];
const MODEL_CARD_FIELDS: [&str; 2] = ["uri", "digest"];
const SOURCE_FIELDS: [&str; 5] = ["category", "name", "uri", "license", "collectionPeriod"];
const PERIOD_FIELDS: [&str; 2] = ["start", "end"];
const PERSONAL_DATA_FIELDS: [&str; 2] = ["containsPersonalData", "handling"];
const DETACHED_FIELDS: [&str; 2] = ["digest", "serialization"];

/// Paths of a model release's two ways to list its files, for messages.
const MANIFEST: &str = "$.predicate.manifest";
const DETACHED: &str = "$.predicate.detachedManifest";

/// Reads a statement that must be a declaration: strict JSON, an in-toto
/// Statement v1 whose `predicateType` is [`MODEL_RELEASE`] or
/// [`TRAINING_DATA`], satisfying every rule of its predicate.
pub fn parse_statement(payload: &[u8]) -> Result<Declaration, DeclarationError> {
    let root = strict_json::parse(payload)?;
    let (top, predicate_type) = read_header(&root)?;
    let kind = declaration_kind(predicate_type).ok_or_else(|| unsupported(predicate_type, &[]))?;
    read_declaration(top, kind)
}

/// Checks the payload of a DSSE envelope submitted to the log.
///
/// The `payload_type` must be [`PAYLOAD_TYPE`] and the payload an in-toto
/// Statement v1 (strict JSON, only the four Statement members, `_type`
/// [`STATEMENT_TYPE`], a string `predicateType`). Then:
/// a declaration predicate type is read and checked as by [`parse_statement`];
/// a predicate type in `extra_types` (other statements the operator accepts)
/// is accepted as is, `Ok(None)`; any other predicate type is refused, the
/// error naming the accepted ones. The declaration types take precedence
/// over `extra_types`.
pub fn validate_envelope_payload(
    payload_type: &str,
    payload: &[u8],
    extra_types: &[String],
) -> Result<Option<Declaration>, DeclarationError> {
    if payload_type != PAYLOAD_TYPE {
        return Err(DeclarationError::PayloadType {
            found: shown(payload_type),
        });
    }
    let root = strict_json::parse(payload)?;
    let (top, predicate_type) = read_header(&root)?;
    match declaration_kind(predicate_type) {
        Some(kind) => read_declaration(top, kind).map(Some),
        None if extra_types.iter().any(|t| t == predicate_type) => Ok(None),
        None => Err(unsupported(predicate_type, extra_types)),
    }
}

/// The statement layer: the Statement's members, its `_type`, and its
/// `predicateType`, which is returned with the top-level object.
fn read_header(root: &Value) -> Result<(&Map, &str), DeclarationError> {
    let top = strict_json::object(root, ROOT)?;
    strict_json::deny_unknown_fields(top, &STATEMENT_FIELDS, ROOT)?;
    let statement_type = strict_json::require_str(top, "_type", ROOT)?;
    if statement_type != STATEMENT_TYPE {
        return Err(invalid(
            "$._type",
            format!(
                "{} is not \"{STATEMENT_TYPE}\" (an in-toto Statement v1)",
                shown(statement_type)
            ),
        ));
    }
    let predicate_type = strict_json::require_str(top, "predicateType", ROOT)?;
    Ok((top, predicate_type))
}

fn declaration_kind(predicate_type: &str) -> Option<Kind> {
    Kind::ALL
        .iter()
        .copied()
        .find(|kind| kind.predicate_type() == predicate_type)
}

fn unsupported(predicate_type: &str, extra_types: &[String]) -> DeclarationError {
    let mut allowed: Vec<String> = Kind::ALL
        .iter()
        .map(|kind| kind.predicate_type().to_owned())
        .collect();
    for extra in extra_types {
        if !allowed.contains(extra) {
            allowed.push(extra.clone());
        }
    }
    DeclarationError::PredicateType {
        found: shown(predicate_type),
        allowed,
    }
}

fn read_declaration(top: &Map, kind: Kind) -> Result<Declaration, DeclarationError> {
    let subject = read_subject(top, kind)?;
    let predicate = strict_json::require_object(top, "predicate", ROOT)?;
    super::limits::check_lists(kind, predicate)?;
    Ok(match kind {
        Kind::Model => Declaration::Model(read_model(subject, predicate)?),
        Kind::Dataset => Declaration::Dataset(read_dataset(subject, predicate)?),
    })
}

/// The one subject of a declaration.
struct Subject {
    name: Name,
    digest: Digest,
}

fn read_subject(top: &Map, kind: Kind) -> Result<Subject, DeclarationError> {
    let entries = strict_json::require_array(top, "subject", ROOT)?;
    if entries.len() != 1 {
        return Err(invalid(
            "$.subject",
            format!(
                "has {} entries; a declaration has exactly one subject: the {kind}'s name and \
                 root digest",
                entries.len()
            ),
        ));
    }
    let path = "$.subject[0]";
    let entry = strict_json::object(&entries[0], path)?;
    strict_json::deny_unknown_fields(entry, &SUBJECT_FIELDS, path)?;
    Ok(Subject {
        name: parsed(entry, "name", path)?,
        digest: digest_set(entry, path)?,
    })
}

fn read_model(subject: Subject, p: &Map) -> Result<ModelRelease, DeclarationError> {
    check_case_variants(p, &MODEL_FIELDS, PREDICATE)?;
    let name = predicate_name(p, subject.name)?;
    let version = identifier(p, "version", PREDICATE)?;
    let release_time = parsed(p, "releaseTime", PREDICATE)?;
    let license = parsed(p, "license", PREDICATE)?;
    let manifest = read_model_manifest(p, &subject.digest)?;
    let data_disclosure =
        optional_parsed(p, "dataDisclosure", PREDICATE)?.unwrap_or(DataDisclosure::Full);
    let training_data = list(p, "trainingData", PREDICATE, read_training_ref)?;
    check_disclosure(data_disclosure, training_data.len())?;
    Ok(ModelRelease {
        name,
        digest: subject.digest,
        version,
        release_time,
        license,
        manifest,
        training_data,
        data_disclosure,
        base_models: list(p, "baseModels", PREDICATE, read_base_model)?,
        supersedes: optional_object(p, "supersedes", PREDICATE, read_supersedes)?,
        supplier: optional_identifier(p, "supplier", PREDICATE)?,
        download_location: optional_parsed(p, "downloadLocation", PREDICATE)?,
        model_card: optional_object(p, "modelCard", PREDICATE, read_model_card)?,
        description: optional_text(p, "description", PREDICATE)?,
        extensions: unknown_members(p, &MODEL_FIELDS),
    })
}

fn read_dataset(subject: Subject, p: &Map) -> Result<TrainingData, DeclarationError> {
    check_case_variants(p, &DATASET_FIELDS, PREDICATE)?;
    let name = predicate_name(p, subject.name)?;
    let version = identifier(p, "version", PREDICATE)?;
    let release_time = parsed(p, "releaseTime", PREDICATE)?;
    let license = parsed(p, "license", PREDICATE)?;
    strict_json::require(p, "sources", PREDICATE)?;
    let sources = list(p, "sources", PREDICATE, read_source)?;
    if sources.is_empty() {
        return Err(invalid(
            "$.predicate.sources",
            "is empty; list at least one source of the data",
        ));
    }
    let processing = text(p, "processing", PREDICATE)?;
    let personal_data = required_object(p, "personalData", PREDICATE, read_personal_data)?;
    if p.contains_key("detachedManifest") {
        // Not an unknown member to ignore: read so, the dataset would pass for private data.
        return Err(invalid(
            DETACHED,
            "is defined for model releases only; a training-data declaration embeds its \
             manifest, or logs a commitment to it without one (private data)",
        ));
    }
    let manifest = p
        .get("manifest")
        .map(|value| read_manifest(value, &subject.digest))
        .transpose()?;
    Ok(TrainingData {
        name,
        digest: subject.digest,
        version,
        release_time,
        license,
        sources,
        processing,
        personal_data,
        manifest,
        supersedes: optional_object(p, "supersedes", PREDICATE, read_supersedes)?,
        known_limitations: optional_text(p, "knownLimitations", PREDICATE)?,
        intended_use: optional_text(p, "intendedUse", PREDICATE)?,
        supplier: optional_identifier(p, "supplier", PREDICATE)?,
        download_location: optional_parsed(p, "downloadLocation", PREDICATE)?,
        description: optional_text(p, "description", PREDICATE)?,
        extensions: unknown_members(p, &DATASET_FIELDS),
    })
}

/// `predicate.name`, which must equal the subject's name.
fn predicate_name(p: &Map, subject: Name) -> Result<Name, DeclarationError> {
    let name: Name = parsed(p, "name", PREDICATE)?;
    if name != subject {
        return Err(invalid(
            "$.predicate.name",
            format!(
                "{} differs from {SUBJECT_NAME} {}; the two must be equal",
                shown(name.as_str()),
                shown(subject.as_str())
            ),
        ));
    }
    Ok(name)
}

/// A model release's files: its `manifest` or its `detachedManifest`, exactly one.
fn read_model_manifest(p: &Map, subject: &Digest) -> Result<ModelManifest, DeclarationError> {
    match (p.get("manifest"), p.contains_key("detachedManifest")) {
        (Some(value), false) => read_manifest(value, subject).map(ModelManifest::Embedded),
        (None, true) => required_object(p, "detachedManifest", PREDICATE, read_detached)
            .map(ModelManifest::Detached),
        (Some(_), true) => Err(invalid(
            DETACHED,
            "is given together with manifest; a model release embeds its manifest or names a \
             detached one, not both",
        )),
        (None, false) => Err(invalid(
            MANIFEST,
            "missing required field: a model release lists its files in manifest or, when \
             that would make the entry too large for the log, names a detached manifest file \
             in detachedManifest",
        )),
    }
}

/// `detachedManifest`: the SHA-256 of the manifest file and the manifest's `serialization`.
/// The subject digest cannot be checked against anything here.
fn read_detached(entry: &Map, path: &str) -> Result<DetachedManifest, DeclarationError> {
    check_case_variants(entry, &DETACHED_FIELDS, path)?;
    let ser_path = member_path(path, "serialization");
    let ser = strict_json::require(entry, "serialization", path)?;
    Ok(DetachedManifest {
        digest: digest_set(entry, path)?,
        serialization: Serialization::from_json_value(ser, &ser_path).map_err(manifest_error)?,
    })
}

fn read_manifest(value: &Value, subject: &Digest) -> Result<Manifest, DeclarationError> {
    let path = MANIFEST;
    let manifest = Manifest::from_json_value(value, path).map_err(manifest_error)?;
    if manifest.is_empty() {
        return Err(invalid(
            &member_path(path, "resources"),
            "is empty; a manifest must list at least one file",
        ));
    }
    let root = Digest(manifest.root_digest());
    if root != *subject {
        return Err(invalid(
            path,
            format!(
                "the manifest's root digest is {root} but {SUBJECT_DIGEST} is {subject}; they \
                 must be equal (the subject is the root digest of the files the manifest lists)"
            ),
        ));
    }
    Ok(manifest)
}

/// A manifest error as a declaration error; reading JSON yields only the
/// first two kinds.
fn manifest_error(error: ManifestError) -> DeclarationError {
    match error {
        ManifestError::Json(e) => DeclarationError::Json(e),
        ManifestError::Invalid { path, reason } => DeclarationError::Invalid { path, reason },
        other => invalid(MANIFEST, other.to_string()),
    }
}

fn check_disclosure(disclosure: DataDisclosure, listed: usize) -> Result<(), DeclarationError> {
    if disclosure.agrees_with(listed) {
        return Ok(());
    }
    match disclosure {
        DataDisclosure::Full | DataDisclosure::Partial => Err(invalid(
            "$.predicate.trainingData",
            format!(
                "is empty or absent but dataDisclosure is \"{disclosure}\"{}; list the \
                 training-data declarations, or set dataDisclosure to \"withheld\" or \"none\"",
                if disclosure == DataDisclosure::Full {
                    " (the default)"
                } else {
                    ""
                }
            ),
        )),
        DataDisclosure::Withheld | DataDisclosure::None => Err(invalid(
            "$.predicate.dataDisclosure",
            format!(
                "is \"{disclosure}\" but trainingData lists {listed} dataset(s); use \"partial\" \
                 or \"full\" when any are listed"
            ),
        )),
    }
}

fn read_training_ref(entry: &Map, path: &str) -> Result<TrainingDataRef, DeclarationError> {
    check_case_variants(entry, &TRAINING_REF_FIELDS, path)?;
    Ok(TrainingDataRef {
        name: parsed(entry, "name", path)?,
        digest: digest_set(entry, path)?,
        role: parsed(entry, "role", path)?,
        log_index: optional_log_index(entry, path)?,
    })
}

fn read_base_model(entry: &Map, path: &str) -> Result<BaseModel, DeclarationError> {
    check_case_variants(entry, &BASE_MODEL_FIELDS, path)?;
    Ok(BaseModel {
        name: parsed(entry, "name", path)?,
        digest: digest_set(entry, path)?,
        relation: parsed(entry, "relation", path)?,
        log_index: optional_log_index(entry, path)?,
    })
}

fn read_supersedes(entry: &Map, path: &str) -> Result<Supersedes, DeclarationError> {
    check_case_variants(entry, &SUPERSEDES_FIELDS, path)?;
    let value = strict_json::require(entry, "logIndex", path)?;
    Ok(Supersedes {
        log_index: log_index(value, &member_path(path, "logIndex"))?,
        digest: digest_set(entry, path)?,
    })
}

fn read_model_card(entry: &Map, path: &str) -> Result<ModelCard, DeclarationError> {
    check_case_variants(entry, &MODEL_CARD_FIELDS, path)?;
    Ok(ModelCard {
        uri: parsed(entry, "uri", path)?,
        digest: digest_set(entry, path)?,
    })
}

fn read_source(entry: &Map, path: &str) -> Result<Source, DeclarationError> {
    check_case_variants(entry, &SOURCE_FIELDS, path)?;
    Ok(Source {
        category: parsed(entry, "category", path)?,
        name: identifier(entry, "name", path)?,
        uri: optional_parsed(entry, "uri", path)?,
        license: optional_parsed(entry, "license", path)?,
        collection_period: optional_object(entry, "collectionPeriod", path, read_period)?,
    })
}

fn read_period(entry: &Map, path: &str) -> Result<CollectionPeriod, DeclarationError> {
    check_case_variants(entry, &PERIOD_FIELDS, path)?;
    let start: Timestamp = parsed(entry, "start", path)?;
    let end: Timestamp = parsed(entry, "end", path)?;
    if start.unix() > end.unix() {
        return Err(invalid(
            &member_path(path, "end"),
            format!("{end} is before start {start}; the period must end at or after its start"),
        ));
    }
    Ok(CollectionPeriod { start, end })
}

fn read_personal_data(entry: &Map, path: &str) -> Result<PersonalData, DeclarationError> {
    check_case_variants(entry, &PERSONAL_DATA_FIELDS, path)?;
    Ok(PersonalData {
        contains: parsed(entry, "containsPersonalData", path)?,
        handling: text(entry, "handling", path)?,
    })
}

// ---------------------------------------------------------------------------
// Typed member access, every error located.

/// Refuses a member of `map` that is not in `known` but equals one of `known`
/// up to letter case. Other unknown members are allowed.
fn check_case_variants(map: &Map, known: &[&str], path: &str) -> Result<(), DeclarationError> {
    for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
        let folded = strict_json::fold_case(key);
        if let Some(field) = known.iter().find(|k| strict_json::fold_case(k) == folded) {
            return Err(invalid(
                &member_path(path, key),
                format!(
                    "differs from the field \"{field}\" only in letter case; field names are \
                     case-sensitive"
                ),
            ));
        }
    }
    Ok(())
}

/// The members of `map` not in `known`.
pub(super) fn unknown_members(map: &Map, known: &[&str]) -> Map {
    map.iter()
        .filter(|(k, _)| !known.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `value` (at `path`) if it is not empty; `advice` says what to do if it is.
fn non_empty(value: &str, path: &str, advice: &str) -> Result<String, DeclarationError> {
    if value.is_empty() {
        return Err(invalid(path, format!("is empty; {advice}")));
    }
    Ok(value.to_owned())
}

/// Required non-empty string member `key` of `map` (at `path`).
fn text(map: &Map, key: &str, path: &str) -> Result<String, DeclarationError> {
    let value = strict_json::require_str(map, key, path)?;
    non_empty(
        value,
        &member_path(path, key),
        "this field is required and needs a value",
    )
}

/// Optional non-empty string member.
fn optional_text(map: &Map, key: &str, path: &str) -> Result<Option<String>, DeclarationError> {
    strict_json::optional_str(map, key, path)?
        .map(|value| {
            non_empty(
                value,
                &member_path(path, key),
                "give a value or leave it out",
            )
        })
        .transpose()
}

/// Required non-empty string member that is an identifier: no control characters
/// ([`check_identifier`]).
fn identifier(map: &Map, key: &str, path: &str) -> Result<String, DeclarationError> {
    let value = text(map, key, path)?;
    check_identifier(&value, &member_path(path, key))?;
    Ok(value)
}

/// Optional non-empty string member that is an identifier.
fn optional_identifier(
    map: &Map,
    key: &str,
    path: &str,
) -> Result<Option<String>, DeclarationError> {
    let value = optional_text(map, key, path)?;
    if let Some(v) = &value {
        check_identifier(v, &member_path(path, key))?;
    }
    Ok(value)
}

/// Required string member read with `T::from_str`.
fn parsed<T>(map: &Map, key: &str, path: &str) -> Result<T, DeclarationError>
where
    T: FromStr<Err = DeclarationError>,
{
    let value = strict_json::require_str(map, key, path)?;
    value
        .parse()
        .map_err(|e: DeclarationError| e.at(&member_path(path, key)))
}

/// Optional string member read with `T::from_str`.
fn optional_parsed<T>(map: &Map, key: &str, path: &str) -> Result<Option<T>, DeclarationError>
where
    T: FromStr<Err = DeclarationError>,
{
    if !map.contains_key(key) {
        return Ok(None);
    }
    parsed(map, key, path).map(Some)
}

/// A log index: a JSON integer from 0 to 2^64 - 1.
fn log_index(value: &Value, path: &str) -> Result<u64, DeclarationError> {
    match value {
        Value::Number(n) => n.as_u64().ok_or_else(|| {
            invalid(
                path,
                format!("{n} is not a log index; write a non-negative integer without a fraction or exponent"),
            )
        }),
        _ => Err(strict_json::wrong_type(value, path, "a non-negative integer").into()),
    }
}

fn optional_log_index(map: &Map, path: &str) -> Result<Option<u64>, DeclarationError> {
    map.get("logIndex")
        .map(|value| log_index(value, &member_path(path, "logIndex")))
        .transpose()
}

/// Member `digest` of `map` (at `path`): an in-toto DigestSet that must hold
/// `sha256`; other algorithms must be strings and are ignored.
fn digest_set(map: &Map, path: &str) -> Result<Digest, DeclarationError> {
    let set_path = member_path(path, "digest");
    let set = strict_json::require_object(map, "digest", path)?;
    check_case_variants(set, &[SHA256], &set_path)?;
    for (algorithm, value) in set.iter().filter(|(k, _)| *k != SHA256) {
        strict_json::string(value, &member_path(&set_path, algorithm))?;
    }
    parsed(set, SHA256, &set_path)
}

/// The array member `key` of `map` (absent reads as empty), each element an
/// object read by `read` with its path.
fn list<T>(
    map: &Map,
    key: &str,
    path: &str,
    read: impl Fn(&Map, &str) -> Result<T, DeclarationError>,
) -> Result<Vec<T>, DeclarationError> {
    let Some(value) = map.get(key) else {
        return Ok(Vec::new());
    };
    let list_path = member_path(path, key);
    let items = strict_json::array(value, &list_path)?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let item_path = element_path(&list_path, i);
            read(strict_json::object(item, &item_path)?, &item_path)
        })
        .collect()
}

fn required_object<T>(
    map: &Map,
    key: &str,
    path: &str,
    read: impl Fn(&Map, &str) -> Result<T, DeclarationError>,
) -> Result<T, DeclarationError> {
    let object = strict_json::require_object(map, key, path)?;
    read(object, &member_path(path, key))
}

fn optional_object<T>(
    map: &Map,
    key: &str,
    path: &str,
    read: impl Fn(&Map, &str) -> Result<T, DeclarationError>,
) -> Result<Option<T>, DeclarationError> {
    if !map.contains_key(key) {
        return Ok(None);
    }
    required_object(map, key, path, read).map(Some)
}

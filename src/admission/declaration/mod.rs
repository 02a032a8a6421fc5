//! Declarations: the in-toto statements a publisher logs about a model release
//! or a training dataset, and the rules a statement must satisfy to be logged.
//!
//! A declaration is an in-toto Statement v1
//! (<https://github.com/in-toto/attestation>, `spec/v1/statement.md`) carried
//! in a DSSE envelope whose `payloadType` is [`PAYLOAD_TYPE`]:
//!
//! ```json
//! {"_type": "https://in-toto.io/Statement/v1",
//!  "subject": [{"name": "org/model", "digest": {"sha256": "<64 hex>"}}],
//!  "predicateType": "https://glasslog.dev/model-release/v1",
//!  "predicate": {"name": "org/model", "version": "1.0", ...}}
//! ```
//!
//! There are two predicate types, [`MODEL_RELEASE`] ([`ModelRelease`]) and
//! [`TRAINING_DATA`] ([`TrainingData`]); `docs/declarations.md` is the field by
//! field reference that publishers in other languages implement against, and
//! this module is its executable form. In short:
//!
//! - The statement has exactly the four in-toto members, and exactly one
//!   subject: the model's or dataset's [`Name`] and root [`Digest`] (for a
//!   private dataset, a salted commitment to it, see [`commitment`]). The
//!   subject's `digest` must hold `sha256`; other algorithms may be present
//!   (in-toto `DigestSet`) and are ignored.
//! - Digests are 64 lowercase hex digits; times are RFC 3339 in UTC written
//!   with `Z` ([`Timestamp`], as in-toto's `field_types.md` asks); licenses are
//!   SPDX license expressions ([`LicenseExpression`], SPDX 2.3 Annex D / SPDX 3
//!   "License expressions"), checked for syntax only.
//! - A manifest ([`Manifest`], the OpenSSF Model Signing predicate body) is
//!   required for a model and optional for a dataset; when present, it lists
//!   at least one file and its root digest must equal the subject digest. A
//!   model release may instead name a *detached* manifest, kept in a file
//!   beside the declaration ([`DetachedManifest`], for a manifest that would
//!   make the logged entry too long, [`crate::entry::MAX_LEAF_BYTES`]): exactly
//!   one of the two ([`ModelManifest`]). The subject digest is then the root
//!   digest of the file's manifest, which the log cannot check.
//! - Members of the predicate (at any depth) that this version does not define
//!   are accepted and ignored, except a member whose name equals a defined one
//!   up to letter case, which is refused: a case-insensitive decoder (Go's
//!   `encoding/json`) would read it as the defined field. (Inside the manifest,
//!   [`crate::admission::manifest`]'s rules apply.) Unknown members at the top of the
//!   predicate are kept in `extensions`; the statement and its subject admit
//!   no members beyond those in-toto defines.
//! - `null` is never the same as absent: an optional member is either absent
//!   or of its type; and no string member may be empty.
//!
//! Input goes through [`crate::admission::strict_json`], so duplicate and case-variant
//! keys are refused before any of the rules above are read. Every error names
//! the JSON path of the offending value ([`DeclarationError::path`]).
//!
//! What this module is not: it does not verify signatures ([`crate::admission::dsse`]),
//! check that referenced entries exist in the log (it lists them, see
//! [`Declaration::references`], for the server to check), check license
//! identifiers against the SPDX license list, or compute manifests from files
//! ([`crate::admission::manifest`]).
//!
//! Layout: this file holds the declaration types and their errors;
//! `limits.rs` the caps on the lengths of its lists;
//! `values.rs` the validated newtypes ([`Name`], [`Digest`], [`Uri`], the
//! string enumerations); `time.rs` [`Timestamp`], the one RFC 3339 parser and
//! writer; `license.rs` [`LicenseExpression`]; `read.rs` reading a statement
//! ([`parse_statement`], [`validate_envelope_payload`]); `write.rs` writing
//! one ([`ModelRelease::to_statement_json`], [`statement_json`]).

mod license;
pub mod limits;
mod read;
#[cfg(test)]
mod tests;
mod time;
mod values;
mod write;

pub use license::LicenseExpression;
pub use read::{parse_statement, validate_envelope_payload};
pub use time::Timestamp;
pub use values::*;
pub use write::statement_json;

use serde_json::Value;
use thiserror::Error;

use crate::admission::manifest::{Manifest, Serialization};
use crate::admission::strict_json::{element_path, JsonError, Map};

/// The DSSE `payloadType` of a declaration: an in-toto statement in JSON.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// The in-toto Statement v1 `_type`.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";

/// `predicateType` of a model release ([`ModelRelease`]).
pub const MODEL_RELEASE: &str = "https://glasslog.dev/model-release/v1";

/// `predicateType` of a training-data declaration ([`TrainingData`]).
pub const TRAINING_DATA: &str = "https://glasslog.dev/training-data/v1";

/// Longest accepted [`Name`], in characters (all ASCII).
pub const MAX_NAME_LEN: usize = 200;

/// Deepest accepted nesting of parentheses in a license expression.
pub const MAX_LICENSE_DEPTH: usize = 16;

/// Values longer than this many characters are shortened in error messages.
const MAX_SHOWN: usize = 64;

/// The digest algorithm every digest set must hold.
const SHA256: &str = "sha256";

/// The predicate members a model release defines (read and written).
const MODEL_FIELDS: [&str; 14] = [
    "name",
    "version",
    "releaseTime",
    "license",
    "manifest",
    "detachedManifest",
    "trainingData",
    "dataDisclosure",
    "baseModels",
    "supersedes",
    "supplier",
    "downloadLocation",
    "modelCard",
    "description",
];

/// The predicate members a training-data declaration defines (read and written).
const DATASET_FIELDS: [&str; 14] = [
    "name",
    "version",
    "releaseTime",
    "license",
    "sources",
    "processing",
    "personalData",
    "manifest",
    "supersedes",
    "knownLimitations",
    "intendedUse",
    "supplier",
    "downloadLocation",
    "description",
];

/// Why a statement was refused.
///
/// Every variant but [`DeclarationError::PayloadType`] and some
/// [`DeclarationError::Json`] syntax errors names the JSON path of the
/// offending value, in [`crate::admission::strict_json`]'s path syntax.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeclarationError {
    /// The payload is not strict JSON, or a member is missing, of the wrong
    /// JSON type, or not allowed where it is.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// The envelope's `payloadType` is not [`PAYLOAD_TYPE`].
    #[error(
        "envelope payloadType {found} is not \"{PAYLOAD_TYPE}\": a declaration is an in-toto \
         statement in JSON"
    )]
    PayloadType { found: String },
    /// `$.predicateType` is not one this log accepts; `allowed` lists those
    /// it does.
    #[error("$.predicateType {found} is not accepted by this log; accepted: {}", .allowed.join(", "))]
    PredicateType { found: String, allowed: Vec<String> },
    /// The value at `path` breaks a rule; `reason` says which, in words a
    /// publisher can act on. `path` is empty when a value was checked outside
    /// any document (e.g. `"a//b".parse::<Name>()`).
    #[error("{}", located(.path, .reason))]
    Invalid { path: String, reason: String },
    /// The list at `path` has more entries than admission reads ([`limits`]).
    #[error(
        "{path} has {count} entries; at most {limit} are accepted (more cannot fit in a log \
         entry)"
    )]
    TooMany {
        path: String,
        count: usize,
        limit: usize,
    },
}

fn located(path: &str, reason: &str) -> String {
    if path.is_empty() {
        reason.to_owned()
    } else {
        format!("{path}: {reason}")
    }
}

impl DeclarationError {
    /// The JSON path of the offending value, when there is one.
    pub fn path(&self) -> Option<&str> {
        match self {
            DeclarationError::Json(e) => json_error_path(e),
            DeclarationError::PayloadType { .. } => None,
            DeclarationError::PredicateType { .. } => Some("$.predicateType"),
            DeclarationError::Invalid { path, .. } => (!path.is_empty()).then_some(path.as_str()),
            DeclarationError::TooMany { path, .. } => Some(path),
        }
    }

    /// The same error, located at `path` if it is a value error.
    fn at(self, path: &str) -> DeclarationError {
        match self {
            DeclarationError::Invalid { reason, .. } => invalid(path, reason),
            other => other,
        }
    }
}

fn json_error_path(error: &JsonError) -> Option<&str> {
    match error {
        JsonError::TooDeep { path }
        | JsonError::DuplicateKey { path, .. }
        | JsonError::MissingField { path }
        | JsonError::WrongType { path, .. }
        | JsonError::UnknownField { path } => Some(path),
        JsonError::NotUtf8 { .. } | JsonError::Syntax(_) | JsonError::TrailingData { .. } => None,
    }
}

fn invalid(path: &str, reason: impl Into<String>) -> DeclarationError {
    DeclarationError::Invalid {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// `value` as a JSON string literal, shortened if long, for error messages.
fn shown(value: &str) -> String {
    let mut text: String = value.chars().take(MAX_SHOWN).collect();
    if text.len() < value.len() {
        text.push('…');
    }
    Value::String(text).to_string()
}

/// A `trainingData` entry: a training-data declaration the model was trained
/// or evaluated on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainingDataRef {
    /// The dataset's name, as in its declaration.
    pub name: Name,
    /// The dataset declaration's subject digest.
    pub digest: Digest,
    pub role: Role,
    /// The log index of the dataset's declaration, if the publisher knows it.
    pub log_index: Option<u64>,
}

/// A `baseModels` entry: a model release this model derives from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseModel {
    pub name: Name,
    /// The base model release's subject digest.
    pub digest: Digest,
    pub relation: Relation,
    pub log_index: Option<u64>,
}

/// `supersedes`: the earlier declaration, of the same kind and name, that
/// this one replaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Supersedes {
    pub log_index: u64,
    /// The superseded declaration's subject digest.
    pub digest: Digest,
}

/// `modelCard`: where the model card is and its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelCard {
    pub uri: Uri,
    pub digest: Digest,
}

/// `collectionPeriod`: when a source's data was collected; `start <= end`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectionPeriod {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// A `sources` entry of a dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub category: SourceCategory,
    /// Free text naming the source (not a [`Name`]: sources need not be logged).
    pub name: String,
    pub uri: Option<Uri>,
    pub license: Option<LicenseExpression>,
    pub collection_period: Option<CollectionPeriod>,
}

/// `personalData`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonalData {
    /// `containsPersonalData`.
    pub contains: PersonalDataPresence,
    /// How personal data was handled (e.g. filtered, pseudonymised), or why
    /// there is none.
    pub handling: String,
}

/// `detachedManifest`: a model release's manifest kept out of the statement, in a file published
/// beside the declaration, for a manifest too large for a log entry
/// ([`crate::entry::MAX_LEAF_BYTES`]).
///
/// The subject digest is the file's manifest's root digest, as with an embedded manifest, but the
/// log has no manifest to check it against. The root digest covers the files' digests in order,
/// not their names nor how the directory was hashed: `digest`, over the file's bytes, binds
/// those too, so a verifier trusts a manifest file only if both match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetachedManifest {
    /// SHA-256 of the manifest file's bytes, exactly as published.
    pub digest: Digest,
    /// How the directory was hashed: the manifest's `serialization`, so that a verifier without
    /// the file can still hash a directory as the publisher did and compare its root digest.
    pub serialization: Serialization,
}

impl DetachedManifest {
    /// The declaration's record of `manifest`, published as the file `file` (its bytes).
    pub fn of(manifest: &Manifest, file: &[u8]) -> DetachedManifest {
        DetachedManifest {
            digest: Digest::of(file),
            serialization: manifest.serialization(),
        }
    }
}

/// Where a model release lists its files: exactly one of `manifest` and `detachedManifest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelManifest {
    /// `manifest`, in the statement: searchable by file digest, its root checked at admission.
    Embedded(Manifest),
    /// `detachedManifest`: in a file beside the declaration.
    Detached(DetachedManifest),
}

/// A model release ([`MODEL_RELEASE`]).
///
/// Built by [`parse_statement`], or by a publisher and written with
/// [`ModelRelease::to_statement_json`]. The field types enforce the value
/// rules; the rules that relate fields (the manifest's root digest equals
/// `digest` when embedded, `training_data` is non-empty unless disclosure is
/// withheld or none) are checked by [`ModelRelease::validate`].
#[derive(Clone, Debug, PartialEq)]
pub struct ModelRelease {
    /// Subject name and `predicate.name`.
    pub name: Name,
    /// Subject digest: the manifest's root digest (embedded or detached).
    pub digest: Digest,
    pub version: String,
    pub release_time: Timestamp,
    pub license: LicenseExpression,
    pub manifest: ModelManifest,
    pub training_data: Vec<TrainingDataRef>,
    pub data_disclosure: DataDisclosure,
    /// Absent and empty are the same.
    pub base_models: Vec<BaseModel>,
    pub supersedes: Option<Supersedes>,
    pub supplier: Option<String>,
    pub download_location: Option<Uri>,
    pub model_card: Option<ModelCard>,
    pub description: Option<String>,
    /// Predicate members this version does not define, kept as sent.
    pub extensions: Map,
}

/// A training-data declaration ([`TRAINING_DATA`]).
///
/// As for [`ModelRelease`], field types enforce the value rules and
/// [`TrainingData::validate`] the rules that relate fields.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingData {
    /// Subject name and `predicate.name`.
    pub name: Name,
    /// Subject digest: the manifest's root digest, or for private data a
    /// [`commitment`] to it.
    pub digest: Digest,
    pub version: String,
    pub release_time: Timestamp,
    pub license: LicenseExpression,
    /// At least one.
    pub sources: Vec<Source>,
    pub processing: String,
    pub personal_data: PersonalData,
    /// Absent for private data (the subject digest is then a commitment).
    pub manifest: Option<Manifest>,
    pub supersedes: Option<Supersedes>,
    pub known_limitations: Option<String>,
    pub intended_use: Option<String>,
    pub supplier: Option<String>,
    pub download_location: Option<Uri>,
    pub description: Option<String>,
    /// Predicate members this version does not define, kept as sent.
    pub extensions: Map,
}

/// A validated declaration.
#[derive(Clone, Debug, PartialEq)]
pub enum Declaration {
    Model(ModelRelease),
    Dataset(TrainingData),
}

/// Something a declaration points at in the log, for the server to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// JSON path of the referring object, e.g. `$.predicate.trainingData[2]`.
    pub field: String,
    /// What the referenced entry must be.
    pub kind: Kind,
    /// The name the referenced entry must have.
    pub name: NameRule,
    /// The referenced declaration's subject digest.
    pub digest: Digest,
    pub log_index: Option<u64>,
}

/// Which name a referenced entry must have: one rule, so that a reference
/// cannot both give a name and ask for the referrer's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// Any name: the reference constrains only kind and digest.
    Any,
    /// The referring declaration's own name (`supersedes`: a declaration
    /// replaces one of the same kind and name).
    SameAsReferrer,
    /// This name (`trainingData[].name`, `baseModels[].name`).
    Is(Name),
}

impl NameRule {
    /// The name the referenced entry must have when the referring
    /// declaration is named `referrer`; `None` for [`NameRule::Any`].
    pub fn required<'a>(&'a self, referrer: &'a Name) -> Option<&'a Name> {
        match self {
            NameRule::Any => None,
            NameRule::SameAsReferrer => Some(referrer),
            NameRule::Is(name) => Some(name),
        }
    }
}

impl Declaration {
    pub fn kind(&self) -> Kind {
        match self {
            Declaration::Model(_) => Kind::Model,
            Declaration::Dataset(_) => Kind::Dataset,
        }
    }

    pub fn name(&self) -> &Name {
        match self {
            Declaration::Model(m) => &m.name,
            Declaration::Dataset(d) => &d.name,
        }
    }

    pub fn version(&self) -> &str {
        match self {
            Declaration::Model(m) => &m.version,
            Declaration::Dataset(d) => &d.version,
        }
    }

    pub fn subject_digest(&self) -> &Digest {
        match self {
            Declaration::Model(m) => &m.digest,
            Declaration::Dataset(d) => &d.digest,
        }
    }

    pub fn release_time(&self) -> &Timestamp {
        match self {
            Declaration::Model(m) => &m.release_time,
            Declaration::Dataset(d) => &d.release_time,
        }
    }

    pub fn license(&self) -> &LicenseExpression {
        match self {
            Declaration::Model(m) => &m.license,
            Declaration::Dataset(d) => &d.license,
        }
    }

    /// The manifest in the statement, if any: not a detached one
    /// ([`Declaration::detached_manifest`]).
    pub fn manifest(&self) -> Option<&Manifest> {
        match self {
            Declaration::Model(ModelRelease {
                manifest: ModelManifest::Embedded(m),
                ..
            }) => Some(m),
            Declaration::Model(_) => None,
            Declaration::Dataset(d) => d.manifest.as_ref(),
        }
    }

    /// The record of a model release's detached manifest, if it has one.
    pub fn detached_manifest(&self) -> Option<&DetachedManifest> {
        match self {
            Declaration::Model(ModelRelease {
                manifest: ModelManifest::Detached(d),
                ..
            }) => Some(d),
            _ => None,
        }
    }

    pub fn supersedes(&self) -> Option<&Supersedes> {
        match self {
            Declaration::Model(m) => m.supersedes.as_ref(),
            Declaration::Dataset(d) => d.supersedes.as_ref(),
        }
    }

    /// Every entry this declaration points at: `trainingData` and
    /// `baseModels` entries, then `supersedes`.
    pub fn references(&self) -> Vec<Reference> {
        let mut references = Vec::new();
        if let Declaration::Model(m) = self {
            references.extend(m.training_data.iter().enumerate().map(|(i, t)| Reference {
                field: element_path("$.predicate.trainingData", i),
                kind: Kind::Dataset,
                name: NameRule::Is(t.name.clone()),
                digest: t.digest,
                log_index: t.log_index,
            }));
            references.extend(m.base_models.iter().enumerate().map(|(i, b)| Reference {
                field: element_path("$.predicate.baseModels", i),
                kind: Kind::Model,
                name: NameRule::Is(b.name.clone()),
                digest: b.digest,
                log_index: b.log_index,
            }));
        }
        references.extend(self.supersedes().map(|s| Reference {
            field: "$.predicate.supersedes".into(),
            kind: self.kind(),
            name: NameRule::SameAsReferrer,
            digest: s.digest,
            log_index: Some(s.log_index),
        }));
        references
    }

    /// The digest of every file the manifest in the statement lists (none without one, and
    /// none for a detached manifest: the log never sees its file).
    pub fn file_digests(&self) -> Vec<Digest> {
        let resources = self.manifest().map_or(&[][..], |m| &m.resources[..]);
        resources.iter().map(|r| Digest(r.digest)).collect()
    }

    /// The subject digests of the datasets in `trainingData` (none for a dataset).
    pub fn trained_on(&self) -> Vec<Digest> {
        match self {
            Declaration::Model(m) => m.training_data.iter().map(|t| t.digest).collect(),
            Declaration::Dataset(_) => Vec::new(),
        }
    }

    /// The statement as canonical JSON; see [`ModelRelease::to_statement_json`].
    pub fn to_statement_json(&self) -> Vec<u8> {
        match self {
            Declaration::Model(m) => m.to_statement_json(),
            Declaration::Dataset(d) => d.to_statement_json(),
        }
    }
}

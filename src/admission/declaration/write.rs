//! Writing a statement: a [`ModelRelease`] or [`TrainingData`] as the
//! canonical JSON of its in-toto statement, the one writer of declarations
//! (`glasslog declare` uses it too). Not here: reading ([`super::read`]).

use serde_json::{json, Value};

use super::read::unknown_members;
use super::*;
use crate::admission::strict_json::Map;

impl ModelRelease {
    /// The in-toto statement of this release, as canonical JSON: object keys
    /// sorted, two-space indentation, optional members absent when `None` or
    /// empty (`trainingData` and `dataDisclosure` always written), and
    /// `extensions` merged into the predicate (a defined field wins over an
    /// extension of the same name). [`parse_statement`] reads it back to an
    /// equal value if [`ModelRelease::validate`] passes.
    pub fn to_statement_json(&self) -> Vec<u8> {
        let mut p = Predicate::new(&self.extensions, &MODEL_FIELDS);
        p.set("name", self.name.as_str());
        p.set("version", self.version.as_str());
        p.set("releaseTime", self.release_time.as_str());
        p.set("license", self.license.as_str());
        match &self.manifest {
            ModelManifest::Embedded(m) => p.set("manifest", m.to_json_value()),
            ModelManifest::Detached(d) => p.set("detachedManifest", d.to_json_value()),
        }
        p.set("dataDisclosure", self.data_disclosure.as_str());
        let training: Vec<Value> = self
            .training_data
            .iter()
            .map(TrainingDataRef::to_json_value)
            .collect();
        p.set("trainingData", training);
        if !self.base_models.is_empty() {
            let base: Vec<Value> = self
                .base_models
                .iter()
                .map(BaseModel::to_json_value)
                .collect();
            p.set("baseModels", base);
        }
        p.optional(
            "supersedes",
            self.supersedes.as_ref().map(Supersedes::to_json_value),
        );
        p.optional("supplier", self.supplier.as_deref());
        p.optional(
            "downloadLocation",
            self.download_location.as_ref().map(Uri::as_str),
        );
        p.optional("modelCard", self.model_card.as_ref().map(model_card_json));
        p.optional("description", self.description.as_deref());
        statement_json(&self.name, &self.digest, Kind::Model, p.0)
    }

    /// Checks every rule [`parse_statement`] checks, including those that
    /// relate fields, by reading back [`ModelRelease::to_statement_json`].
    pub fn validate(&self) -> Result<(), DeclarationError> {
        parse_statement(&self.to_statement_json()).map(drop)
    }
}

impl TrainingData {
    /// The in-toto statement of this declaration, as canonical JSON (see
    /// [`ModelRelease::to_statement_json`]).
    pub fn to_statement_json(&self) -> Vec<u8> {
        let mut p = Predicate::new(&self.extensions, &DATASET_FIELDS);
        p.set("name", self.name.as_str());
        p.set("version", self.version.as_str());
        p.set("releaseTime", self.release_time.as_str());
        p.set("license", self.license.as_str());
        let sources: Vec<Value> = self.sources.iter().map(source_json).collect();
        p.set("sources", sources);
        p.set("processing", self.processing.as_str());
        p.set(
            "personalData",
            json!({
                "containsPersonalData": self.personal_data.contains.as_str(),
                "handling": self.personal_data.handling,
            }),
        );
        p.optional(
            "manifest",
            self.manifest.as_ref().map(Manifest::to_json_value),
        );
        p.optional(
            "supersedes",
            self.supersedes.as_ref().map(Supersedes::to_json_value),
        );
        p.optional("knownLimitations", self.known_limitations.as_deref());
        p.optional("intendedUse", self.intended_use.as_deref());
        p.optional("supplier", self.supplier.as_deref());
        p.optional(
            "downloadLocation",
            self.download_location.as_ref().map(Uri::as_str),
        );
        p.optional("description", self.description.as_deref());
        statement_json(&self.name, &self.digest, Kind::Dataset, p.0)
    }

    /// Checks every rule [`parse_statement`] checks (see [`ModelRelease::validate`]).
    pub fn validate(&self) -> Result<(), DeclarationError> {
        parse_statement(&self.to_statement_json()).map(drop)
    }
}

/// A predicate object under construction.
struct Predicate(Map);

impl Predicate {
    /// Starts from the extensions that do not collide with a defined field.
    fn new(extensions: &Map, known: &[&str]) -> Predicate {
        Predicate(unknown_members(extensions, known))
    }

    fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.0.insert(key.to_owned(), value.into());
    }

    fn optional(&mut self, key: &str, value: Option<impl Into<Value>>) {
        if let Some(value) = value {
            self.set(key, value);
        }
    }
}

/// The in-toto statement about `name` and `digest` with `predicate`, as
/// canonical JSON (sorted keys, two-space indentation). The predicate is
/// written as given, unchecked: [`parse_statement`] reads the result.
pub fn statement_json(name: &Name, digest: &Digest, kind: Kind, predicate: Map) -> Vec<u8> {
    let statement = json!({
        "_type": STATEMENT_TYPE,
        "predicate": predicate,
        "predicateType": kind.predicate_type(),
        "subject": [{"digest": digest_json(digest), "name": name.as_str()}],
    });
    // `{:#}` is serde_json's infallible pretty printer.
    format!("{statement:#}").into_bytes()
}

fn digest_json(digest: &Digest) -> Value {
    json!({ SHA256: digest.to_string() })
}

impl TrainingDataRef {
    /// The `trainingData` entry as JSON.
    pub fn to_json_value(&self) -> Value {
        reference_json(
            &self.name,
            &self.digest,
            ("role", self.role.as_str()),
            self.log_index,
        )
    }
}

impl BaseModel {
    /// The `baseModels` entry as JSON.
    pub fn to_json_value(&self) -> Value {
        let relation = ("relation", self.relation.as_str());
        reference_json(&self.name, &self.digest, relation, self.log_index)
    }
}

impl DetachedManifest {
    /// The `detachedManifest` member as JSON.
    pub fn to_json_value(&self) -> Value {
        json!({
            "digest": digest_json(&self.digest),
            "serialization": self.serialization.to_json_value(),
        })
    }
}

impl Supersedes {
    /// The `supersedes` member as JSON.
    pub fn to_json_value(&self) -> Value {
        json!({"logIndex": self.log_index, "digest": digest_json(&self.digest)})
    }
}

/// A reference to a declaration by name and digest, with one more member
/// (`role`, `relation`) and the log index when known.
fn reference_json(
    name: &Name,
    digest: &Digest,
    (key, value): (&str, &str),
    log_index: Option<u64>,
) -> Value {
    let mut v = json!({"name": name.as_str(), "digest": digest_json(digest), key: value});
    if let (Some(i), Some(map)) = (log_index, v.as_object_mut()) {
        map.insert("logIndex".into(), i.into());
    }
    v
}

fn model_card_json(c: &ModelCard) -> Value {
    json!({"uri": c.uri.as_str(), "digest": digest_json(&c.digest)})
}

fn source_json(s: &Source) -> Value {
    let mut map = Map::new();
    map.insert("category".into(), s.category.as_str().into());
    map.insert("name".into(), s.name.as_str().into());
    if let Some(uri) = &s.uri {
        map.insert("uri".into(), uri.as_str().into());
    }
    if let Some(license) = &s.license {
        map.insert("license".into(), license.as_str().into());
    }
    if let Some(period) = &s.collection_period {
        let period = json!({"start": period.start.as_str(), "end": period.end.as_str()});
        map.insert("collectionPeriod".into(), period);
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::declaration::tests::*;
    use serde_json::json;

    // ---- Builders.

    #[test]
    fn builders_validate_the_rules_that_relate_fields() {
        let Declaration::Model(model) = parse_statement(MODEL).unwrap() else {
            panic!("not a model")
        };
        assert_eq!(model.validate(), Ok(()));
        let mut m = model.clone();
        m.training_data.clear();
        assert_eq!(
            m.validate().unwrap_err().path(),
            Some("$.predicate.trainingData")
        );
        m.data_disclosure = DataDisclosure::Withheld;
        assert_eq!(m.validate(), Ok(()));
        let mut m = model.clone();
        m.digest = Digest::of(b"not the root");
        assert_eq!(
            m.validate().unwrap_err().path(),
            Some("$.predicate.manifest")
        );
        let mut m = model.clone();
        m.supplier = Some(String::new());
        assert_eq!(
            m.validate().unwrap_err().path(),
            Some("$.predicate.supplier")
        );

        let Declaration::Dataset(dataset) = parse_statement(DATASET).unwrap() else {
            panic!("not a dataset")
        };
        let mut d = dataset.clone();
        d.sources.clear();
        assert_eq!(
            d.validate().unwrap_err().path(),
            Some("$.predicate.sources")
        );
        let mut d = dataset;
        let period = d.sources[0].collection_period.as_mut().unwrap();
        std::mem::swap(&mut period.start, &mut period.end);
        let err = d.validate().unwrap_err();
        assert_eq!(
            err.path(),
            Some("$.predicate.sources[0].collectionPeriod.end")
        );
    }

    #[test]
    fn defined_fields_win_over_extensions() {
        let Declaration::Model(mut m) = parse_statement(MODEL).unwrap() else {
            panic!("not a model")
        };
        m.extensions.insert("version".into(), json!("9.9"));
        m.extensions.insert("x-glasslog-note".into(), json!([1, 2]));
        let written = parse_statement(&m.to_statement_json()).unwrap();
        assert_eq!(written.version(), "1.2.0");
        let Declaration::Model(w) = written else {
            panic!("not a model")
        };
        assert_eq!(w.extensions.len(), 1);
        assert_eq!(w.extensions["x-glasslog-note"], json!([1, 2]));
    }

    #[test]
    fn builders_write_minimal_declarations() {
        let Declaration::Model(mut m) = parse_statement(MODEL).unwrap() else {
            panic!("not a model")
        };
        m.training_data.clear();
        m.data_disclosure = DataDisclosure::None;
        m.base_models.clear();
        (m.supersedes, m.supplier, m.download_location) = (None, None, None);
        (m.model_card, m.description) = (None, None);
        let written = m.to_statement_json();
        let v: Value = serde_json::from_slice(&written).unwrap();
        let mut keys: Vec<&str> = v["predicate"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "dataDisclosure",
                "license",
                "manifest",
                "name",
                "releaseTime",
                "trainingData",
                "version"
            ]
        );
        assert_eq!(parse_statement(&written).unwrap(), Declaration::Model(m));
    }
}

//! Examining one served entry on its own: its leaf hash, and whether the log's admission would
//! have accepted it ([`crate::admission::admit_logged`]: the checks `Submit` makes, re-run on the
//! logged envelope and keys, references aside), and the few facts about it that the per-name
//! rules need.
//!
//! Pure computation on the leaf bytes, so a run of entries is examined in parallel
//! ([`examine_all`]). What needs other entries (references by log index, names, history) is
//! [`super::rules`]' job. Nothing here panics on what a server sends.

use sha2::{Digest as _, Sha256};

use crate::admission::declaration::{
    Declaration, Digest, Kind, Reference, Supersedes, Timestamp, TrainingData,
};
use crate::admission::keys::{KeyCache, KeyId};
use crate::admission::{self, AdmissionError};
use crate::entry::decode_leaf;
use crate::tlog::merkle::{self, Hash};

/// Runs shorter than this are examined on the calling thread.
const PARALLEL_MIN: usize = 64;

/// What to check of each entry: the log's admission policy (its `--extra-predicate-type`s), and
/// whether to verify every DSSE signature (the expensive part; without it the envelope, the keys
/// and the declaration are still checked).
pub type ExamineOptions = admission::Policy;

/// One served entry, examined.
#[derive(Clone, Debug)]
pub struct Examined {
    /// SHA-256(0x00 ‖ leaf data).
    pub leaf_hash: Hash,
    /// What the rules need, or why admission would have refused the entry.
    pub facts: Result<EntryFacts, String>,
}

/// What the per-name rules need of an admissible entry.
#[derive(Clone, Debug, PartialEq)]
pub struct EntryFacts {
    pub integrated_ms: i64,
    /// The signers' key ids, in increasing order.
    pub key_ids: Vec<KeyId>,
    /// `None` for a statement of an extra predicate type.
    pub declaration: Option<DeclarationFacts>,
}

/// The parts of a declaration the per-name rules read.
#[derive(Clone, Debug, PartialEq)]
pub struct DeclarationFacts {
    pub kind: Kind,
    pub name: String,
    pub version: String,
    pub digest: Digest,
    pub release_time: Timestamp,
    pub has_manifest: bool,
    pub supersedes: Option<Supersedes>,
    pub references: Vec<Reference>,
    /// For a training-data declaration, its descriptive fields.
    pub dataset: Option<DatasetFields>,
}

/// The descriptive fields of a training-data declaration, each as a 16-byte hash of its
/// contents: enough to tell which changed, on disk in 80 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatasetFields(pub [[u8; 16]; 5]);

impl DatasetFields {
    /// The fields' names, in order, as the declaration writes them.
    pub const NAMES: [&'static str; 5] = [
        "license",
        "sources",
        "collectionPeriod",
        "personalData",
        "processing",
    ];

    /// The fields of `d`: the license; the sources (category, name, URI, license); their
    /// collection periods; personal data (presence and handling); processing.
    pub fn of(d: &TrainingData) -> DatasetFields {
        let opt = |s: Option<&str>| s.map_or_else(|| "\u{0}absent".to_string(), str::to_string);
        let sources: Vec<String> = d
            .sources
            .iter()
            .flat_map(|s| {
                [
                    s.category.as_str().to_string(),
                    s.name.clone(),
                    opt(s.uri.as_ref().map(|u| u.as_str())),
                    opt(s.license.as_ref().map(|l| l.as_str())),
                ]
            })
            .collect();
        let periods: Vec<String> = d
            .sources
            .iter()
            .map(|s| {
                opt(s
                    .collection_period
                    .as_ref()
                    .map(|p| format!("{}/{}", p.start.as_str(), p.end.as_str()))
                    .as_deref())
            })
            .collect();
        let personal = [
            d.personal_data.contains.as_str().to_string(),
            d.personal_data.handling.clone(),
        ];
        DatasetFields([
            field_hash(&[d.license.as_str().to_string()]),
            field_hash(&sources),
            field_hash(&periods),
            field_hash(&personal),
            field_hash(std::slice::from_ref(&d.processing)),
        ])
    }

    /// The names of the fields that differ between `self` and `other`.
    pub fn changed(&self, other: &DatasetFields) -> Vec<&'static str> {
        Self::NAMES
            .iter()
            .zip(self.0.iter().zip(other.0.iter()))
            .filter(|(_, (a, b))| a != b)
            .map(|(n, _)| *n)
            .collect()
    }
}

/// SHA-256 over length-prefixed parts, truncated to 16 bytes.
fn field_hash(parts: &[String]) -> [u8; 16] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    let full: [u8; 32] = h.finalize().into();
    let mut out = [0; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// Examines one entry's leaf data.
pub fn examine(leaf: &[u8], opts: &ExamineOptions, keys: &KeyCache) -> Examined {
    Examined {
        leaf_hash: merkle::leaf_hash(leaf),
        facts: facts(leaf, opts, keys),
    }
}

/// What examines entries: the options and the publisher keys read so far. Shared (behind an
/// `Arc`) by the engine and the stream reader, which examines entries ahead of the engine.
pub struct Examiner {
    opts: ExamineOptions,
    keys: KeyCache,
}

impl Examiner {
    pub fn new(opts: ExamineOptions) -> Examiner {
        Examiner {
            opts,
            keys: KeyCache::default(),
        }
    }

    /// Examines entries in parallel, on as many threads as there are cores; results in order.
    pub fn examine_all(&self, leaves: &[Vec<u8>]) -> Vec<Examined> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let serial = |part: &[Vec<u8>]| {
            part.iter()
                .map(|l| examine(l, &self.opts, &self.keys))
                .collect::<Vec<_>>()
        };
        if leaves.len() < PARALLEL_MIN || threads == 1 {
            return serial(leaves);
        }
        let per_thread = leaves.len().div_ceil(threads);
        std::thread::scope(|s| {
            let parts: Vec<_> = leaves
                .chunks(per_thread)
                .map(|part| s.spawn(move || serial(part)))
                .collect();
            // A worker only panics if examine does, which it must not; fall back to this thread.
            parts
                .into_iter()
                .zip(leaves.chunks(per_thread))
                .flat_map(|(p, part)| p.join().unwrap_or_else(|_| serial(part)))
                .collect()
        })
    }
}

/// Admission re-run on the leaf, references aside; the error is in the server's words.
fn facts(leaf: &[u8], opts: &ExamineOptions, cache: &KeyCache) -> Result<EntryFacts, String> {
    let entry = decode_leaf(leaf).map_err(|e| AdmissionError::from(e).to_string())?;
    let admitted = admission::admit_logged(&entry, cache, opts).map_err(|e| e.to_string())?;
    Ok(EntryFacts {
        integrated_ms: entry.integrated_time_ms,
        key_ids: admitted.key_ids,
        declaration: admitted.declaration.as_ref().map(declaration_facts),
    })
}

fn declaration_facts(d: &Declaration) -> DeclarationFacts {
    DeclarationFacts {
        kind: d.kind(),
        name: d.name().as_str().to_string(),
        version: d.version().to_string(),
        digest: *d.subject_digest(),
        release_time: d.release_time().clone(),
        has_manifest: d.manifest().is_some(),
        supersedes: d.supersedes().cloned(),
        references: d.references(),
        dataset: match d {
            Declaration::Dataset(t) => Some(DatasetFields::of(t)),
            Declaration::Model(_) => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::declaration;
    use crate::admission::dsse::Envelope;
    use crate::admission::keys::{KeyType, PrivateKey};
    use crate::entry::LogEntry;
    use prost::Message;

    const TEST_TYPE: &str = "https://example.org/test/v1";

    fn opts(check_signatures: bool) -> ExamineOptions {
        ExamineOptions {
            check_signatures,
            extra_predicate_types: vec![TEST_TYPE.into()],
        }
    }

    fn statement() -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "t", "digest": {"sha256": hex::encode([1u8; 32])}}],
            "predicateType": TEST_TYPE, "predicate": {}}))
        .unwrap()
    }

    fn leaf(envelope: Vec<u8>, keys: Vec<String>) -> Vec<u8> {
        LogEntry {
            envelope,
            public_keys: keys,
            integrated_time_ms: 5,
        }
        .encode_to_vec()
    }

    #[test]
    fn admissible_entries_pass_and_others_say_why() {
        let key = PrivateKey::generate(KeyType::Ed25519);
        let other = PrivateKey::generate(KeyType::Ed25519);
        let pem = key.public_key().to_pem();
        let good = leaf(
            Envelope::sign(declaration::PAYLOAD_TYPE, &statement(), &[&key]).to_json(),
            vec![pem.clone()],
        );
        let facts = examine(&good, &opts(true), &KeyCache::default())
            .facts
            .unwrap();
        assert_eq!(facts.integrated_ms, 5);
        assert_eq!(facts.key_ids, vec![key.public_key().key_id()]);
        assert_eq!(facts.declaration, None);
        assert_eq!(
            examine(&good, &opts(true), &KeyCache::default()).leaf_hash,
            merkle::leaf_hash(&good)
        );

        // Signed by another key than the one logged: only signature checks see it.
        let forged = leaf(
            Envelope::sign(declaration::PAYLOAD_TYPE, &statement(), &[&other]).to_json(),
            vec![pem.clone()],
        );
        assert!(examine(&forged, &opts(true), &KeyCache::default())
            .facts
            .unwrap_err()
            .contains("does not verify"));
        assert!(examine(&forged, &opts(false), &KeyCache::default())
            .facts
            .is_ok());

        // A predicate type the log does not accept, garbage, a key not in normal form.
        let strict = ExamineOptions {
            extra_predicate_types: vec![],
            ..opts(true)
        };
        assert!(examine(&good, &strict, &KeyCache::default())
            .facts
            .unwrap_err()
            .contains("declaration rejected"));
        assert!(
            examine(&[0xff, 0xff, 0xff], &opts(true), &KeyCache::default())
                .facts
                .is_err()
        );
        let loose = leaf(
            Envelope::sign(declaration::PAYLOAD_TYPE, &statement(), &[&key]).to_json(),
            vec![format!("\n{pem}")],
        );
        assert!(examine(&loose, &opts(true), &KeyCache::default())
            .facts
            .unwrap_err()
            .contains("normalised"));
    }

    #[test]
    fn parallel_examination_keeps_order() {
        let key = PrivateKey::generate(KeyType::P256);
        let pem = key.public_key().to_pem();
        let leaves: Vec<Vec<u8>> = (0..150)
            .map(|i| {
                if i % 7 == 0 {
                    vec![i as u8, 0xff]
                } else {
                    leaf(
                        Envelope::sign(declaration::PAYLOAD_TYPE, &statement(), &[&key]).to_json(),
                        vec![pem.clone()],
                    )
                }
            })
            .collect();
        let all = Examiner::new(opts(true)).examine_all(&leaves);
        assert_eq!(all.len(), leaves.len());
        for (i, (e, l)) in all.iter().zip(&leaves).enumerate() {
            assert_eq!(e.leaf_hash, merkle::leaf_hash(l));
            assert_eq!(e.facts.is_err(), i % 7 == 0, "entry {i}");
        }
    }

    #[test]
    fn dataset_fields_name_what_changed() {
        let base = DatasetFields([[0; 16]; 5]);
        let mut other = base;
        other.0[1] = [1; 16];
        other.0[3] = [1; 16];
        assert_eq!(base.changed(&other), vec!["sources", "personalData"]);
        assert!(base.changed(&base).is_empty());
    }
}

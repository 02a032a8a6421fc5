//! The checks of one entry that need nothing but the entry: its leaf decodes, its publisher keys
//! are what the log writes, its envelope parses (and, optionally, every signature verifies), and
//! its statement passes the admission rules. The checks that relate entries to each other
//! (references, duplicates, time order) are in [`super::ledger`].
//!
//! Pure computation, run on worker threads; no I/O. Nothing here panics on a hostile leaf.

use std::time::Duration;

use crate::admission::declaration::{
    self, Declaration, DeclarationError, Digest, Kind, Name, Reference,
};
use crate::admission::dsse::{self, Envelope};
use crate::admission::keys::{KeyCache, KeyId, PublicKey};
use crate::entry::{decode_leaf, dedup_key, logged_keys};
use crate::tlog::merkle::{self, Hash};

use crate::check::{Finding, FindingKind};

/// What an entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Class {
    /// A valid model-release or training-data declaration.
    Declaration,
    /// A statement of an extra predicate type the auditor was told the log accepts.
    Other(String),
    /// An entry that fails a check of this module.
    Invalid,
}

/// What the checks across entries need of a declaration (the rest is dropped on the worker).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declared {
    pub kind: Kind,
    pub name: Name,
    pub digest: Digest,
    /// Its references that give a log index.
    pub references: Vec<Reference>,
}

impl Declared {
    /// The parts of `d` the checks across entries need.
    pub fn of(d: &Declaration) -> Declared {
        Declared {
            kind: d.kind(),
            name: d.name().clone(),
            digest: *d.subject_digest(),
            references: d
                .references()
                .into_iter()
                .filter(|r| r.log_index.is_some())
                .collect(),
        }
    }
}

/// What one entry says, for the checks across entries and the summary.
#[derive(Debug)]
pub struct Facts {
    pub index: u64,
    /// `SHA-256(0x00 ‖ leaf data)`.
    pub leaf_hash: Hash,
    /// The log's clock when the entry was sequenced (none if the leaf does not decode).
    pub time_ms: Option<i64>,
    pub class: Class,
    /// The declaration, if the statement passed admission as one (even if a check of the
    /// envelope failed).
    pub declared: Option<Declared>,
    /// The signers' key ids, in logged order (empty if a key does not parse).
    pub key_ids: Vec<KeyId>,
    /// The deduplication key the log would have computed at admission.
    pub dedup: Option<[u8; 32]>,
    pub findings: Vec<Finding>,
}

/// Checks entries; one per worker thread.
pub struct Checker {
    signature_checks: bool,
    extra_types: Vec<String>,
    keys: KeyCache,
    /// CPU time this thread spent verifying signatures, and how many envelopes it verified.
    pub signature_time: Duration,
    pub signatures: u64,
}

impl Checker {
    /// A checker that verifies signatures if `signature_checks`, and accepts statements of
    /// `extra_types` besides declarations.
    pub fn new(signature_checks: bool, extra_types: Vec<String>) -> Checker {
        Checker {
            signature_checks,
            extra_types,
            keys: KeyCache::default(),
            signature_time: Duration::ZERO,
            signatures: 0,
        }
    }

    /// Checks the entry at `index` whose leaf data is `leaf`.
    pub fn check(&mut self, index: u64, leaf: &[u8]) -> Facts {
        let mut facts = Facts {
            index,
            leaf_hash: merkle::leaf_hash(leaf),
            time_ms: None,
            class: Class::Invalid,
            declared: None,
            key_ids: Vec::new(),
            dedup: None,
            findings: Vec::new(),
        };
        let entry = match decode_leaf(leaf) {
            Ok(e) => e,
            Err(e) => {
                facts.findings.push(
                    Finding::of(
                        FindingKind::InvalidEntry,
                        format!("the leaf is not an encoded LogEntry: {e}"),
                    )
                    .at(index),
                );
                return facts;
            }
        };
        facts.time_ms = Some(entry.integrated_time_ms);
        let keys = self.keys(index, &entry.public_keys, &mut facts.findings);
        facts.key_ids = keys.iter().map(PublicKey::key_id).collect();
        let envelope = match Envelope::parse(&entry.envelope) {
            Ok(e) => e,
            Err(e) => {
                facts.findings.push(
                    Finding::of(
                        FindingKind::InvalidEntry,
                        format!("the logged DSSE envelope does not parse: {e}"),
                    )
                    .at(index),
                );
                return facts;
            }
        };
        if self.signature_checks && !keys.is_empty() {
            self.verify_signatures(index, &envelope, &keys, &mut facts.findings);
        }
        if facts.findings.is_empty() {
            let mut sorted = facts.key_ids.clone();
            sorted.sort();
            facts.dedup = Some(dedup_key(
                &envelope.payload_type,
                &envelope.payload,
                &sorted,
            ));
        }
        self.classify(index, &envelope, &mut facts);
        facts
    }

    /// The logged keys, parsed; a finding if they are not as the log writes them
    /// ([`logged_keys`]).
    fn keys(&self, index: u64, pems: &[String], findings: &mut Vec<Finding>) -> Vec<PublicKey> {
        match logged_keys(pems, &self.keys) {
            Ok(keys) => keys.iter().map(|k| k.key).collect(),
            Err(e) => {
                findings.push(Finding::of(FindingKind::InvalidEntry, e.to_string()).at(index));
                Vec::new()
            }
        }
    }

    fn verify_signatures(
        &mut self,
        index: u64,
        envelope: &Envelope,
        keys: &[PublicKey],
        findings: &mut Vec<Finding>,
    ) {
        let start = super::thread_cpu_time();
        let result = dsse::verify(envelope.clone(), keys);
        self.signature_time += super::thread_cpu_time().saturating_sub(start);
        self.signatures += 1;
        if let Err(e) = result {
            findings.push(
                Finding::of(
                    FindingKind::InvalidEntry,
                    format!(
                        "the logged envelope does not verify under the logged publisher keys: {e}"
                    ),
                )
                .at(index),
            );
        }
    }

    /// Re-runs admission on the statement: a declaration, an accepted extra statement, or a
    /// finding.
    fn classify(&self, index: u64, envelope: &Envelope, facts: &mut Facts) {
        let checked = declaration::validate_envelope_payload(
            &envelope.payload_type,
            &envelope.payload,
            &self.extra_types,
        );
        let finding = match checked {
            Ok(Some(d)) => {
                for f in &mut facts.findings {
                    f.names = vec![d.name().to_string()];
                }
                if facts.findings.is_empty() {
                    facts.class = Class::Declaration;
                }
                facts.declared = Some(Declared::of(&d));
                return;
            }
            Ok(None) => {
                if facts.findings.is_empty() {
                    facts.class = Class::Other(predicate_type(&envelope.payload));
                }
                return;
            }
            Err(DeclarationError::PredicateType { found, .. }) => Finding::of(
                FindingKind::InvalidEntry,
                format!(
                    "the statement's predicateType is {found}, neither a glasslog declaration type nor one the \
                     auditor was told this log accepts; if the log's operator accepts it, pass \
                     --extra-predicate-type with it"
                ),
            ),
            Err(e) => Finding::of(FindingKind::InvalidEntry, format!("the logged statement does not pass the admission rules: {e}")),
        };
        facts.findings.push(finding.at(index));
    }
}

/// The `predicateType` of a statement that passed admission as an extra type.
fn predicate_type(payload: &[u8]) -> String {
    crate::entry::statement_predicate_type(payload).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::keys::{KeyType, PrivateKey};
    use crate::entry::LogEntry;
    use prost::Message;

    const MODEL: &[u8] = include_bytes!("../../tests/data/declarations/model-release.json");

    fn leaf(envelope: Vec<u8>, keys: Vec<String>) -> Vec<u8> {
        LogEntry {
            envelope,
            public_keys: keys,
            integrated_time_ms: 5,
        }
        .encode_to_vec()
    }

    fn signed(payload: &[u8], key: &PrivateKey) -> Vec<u8> {
        Envelope::sign(declaration::PAYLOAD_TYPE, payload, &[key]).to_json()
    }

    #[test]
    fn a_good_declaration_passes() {
        let key = PrivateKey::generate(KeyType::Ed25519);
        let mut c = Checker::new(true, vec![]);
        let f = c.check(
            7,
            &leaf(signed(MODEL, &key), vec![key.public_key().to_pem()]),
        );
        assert!(f.findings.is_empty(), "{:?}", f.findings);
        assert_eq!(f.class, Class::Declaration);
        assert_eq!(f.time_ms, Some(5));
        assert_eq!(f.key_ids, vec![key.public_key().key_id()]);
        assert!(f.dedup.is_some());
        assert_eq!(c.signatures, 1);
    }

    #[test]
    fn each_failure_is_named() {
        let key = PrivateKey::generate(KeyType::Ed25519);
        let other = PrivateKey::generate(KeyType::P256);
        let pem = key.public_key().to_pem();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![0xff, 0xff], "leaf"),
            (leaf(signed(MODEL, &key), vec![]), "publisher-keys"),
            (
                leaf(signed(MODEL, &key), vec!["junk".into()]),
                "publisher-keys",
            ),
            (
                leaf(signed(MODEL, &key), vec![pem.replace('\n', "\r\n")]),
                "publisher-keys",
            ),
            (leaf(b"{}".to_vec(), vec![pem.clone()]), "envelope"),
            (leaf(signed(MODEL, &other), vec![pem.clone()]), "signature"),
            (
                leaf(signed(b"{\"a\":1}", &key), vec![pem.clone()]),
                "declaration",
            ),
        ];
        for (l, case) in cases {
            let f = Checker::new(true, vec![]).check(3, &l);
            assert_eq!(
                f.findings.first().map(|f| f.kind),
                Some(FindingKind::InvalidEntry),
                "{case}: {:?}",
                f.findings
            );
            assert_eq!(f.findings[0].indexes, [3]);
            assert_ne!(f.class, Class::Declaration);
        }
        // Without signature checks the wrong signer is not noticed; the declaration is read.
        let f = Checker::new(false, vec![]).check(3, &leaf(signed(MODEL, &other), vec![pem]));
        assert!(f.findings.is_empty());
    }

    #[test]
    fn extra_statement_types_need_to_be_named() {
        let key = PrivateKey::generate(KeyType::Ed25519);
        let st = br#"{"_type": "https://in-toto.io/Statement/v1", "subject": [], "predicateType": "https://x/v1", "predicate": {}}"#;
        let l = leaf(signed(st, &key), vec![key.public_key().to_pem()]);
        let f = Checker::new(true, vec![]).check(1, &l);
        assert_eq!(f.findings[0].kind, FindingKind::InvalidEntry);
        assert!(f.findings[0].message.contains("--extra-predicate-type"));
        let f = Checker::new(true, vec!["https://x/v1".into()]).check(1, &l);
        assert!(f.findings.is_empty());
        assert_eq!(f.class, Class::Other("https://x/v1".into()));
    }
}

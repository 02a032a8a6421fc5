//! The checks of one entry that need nothing but the entry: admission re-run on the logged leaf
//! ([`crate::admission::admit_logged`]: its keys as the log writes them, its envelope, optionally
//! its signatures, its statement), in the server's words. The checks that relate entries to each
//! other (references, duplicates, time order) are in [`super::ledger`].
//!
//! Pure computation, run on worker threads; no I/O. Nothing here panics on a hostile leaf.

use std::time::Duration;

use crate::admission::declaration::{Declaration, DeclarationError, Digest, Kind, Name, Reference};
use crate::admission::keys::{KeyCache, KeyId};
use crate::admission::{self, AdmissionError, Policy};
use crate::entry::decode_leaf;
use crate::tlog::merkle::{self, Hash};

use crate::check::{Finding, FindingKind};

/// What an entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Class {
    /// A valid model-release or training-data declaration (its references aside).
    Declaration,
    /// A statement of an extra predicate type the auditor was told the log accepts.
    Other(String),
    /// An entry that admission refuses.
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
    /// The declaration of an admissible entry.
    pub declared: Option<Declared>,
    /// The signers' key ids, sorted (empty if the entry is not admissible).
    pub key_ids: Vec<KeyId>,
    /// The deduplication key the log computed at admission (none if not admissible).
    pub dedup: Option<[u8; 32]>,
    pub findings: Vec<Finding>,
}

/// Checks entries; one per worker thread.
pub struct Checker {
    policy: Policy,
    keys: KeyCache,
    /// CPU time this thread spent re-running admission with signature checks (almost all of it
    /// verifying signatures), and how many envelopes it verified.
    pub signature_time: Duration,
    pub signatures: u64,
}

impl Checker {
    /// A checker that verifies signatures if `signature_checks`, and accepts statements of
    /// `extra_types` besides declarations.
    pub fn new(signature_checks: bool, extra_types: Vec<String>) -> Checker {
        Checker {
            policy: Policy {
                extra_predicate_types: extra_types,
                check_signatures: signature_checks,
            },
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
                facts
                    .findings
                    .push(refused(index, &AdmissionError::from(e)));
                return facts;
            }
        };
        facts.time_ms = Some(entry.integrated_time_ms);
        let start = super::thread_cpu_time();
        let admitted = admission::admit_logged(&entry, &self.keys, &self.policy);
        if self.policy.check_signatures {
            self.signature_time += super::thread_cpu_time().saturating_sub(start);
            self.signatures += 1;
        }
        match admitted {
            Ok(a) => {
                facts.dedup = Some(a.dedup_key());
                facts.class = match &a.declaration {
                    Some(d) => {
                        facts.declared = Some(Declared::of(d));
                        Class::Declaration
                    }
                    None => Class::Other(
                        admission::admit::statement_predicate_type(&a.envelope.payload)
                            .unwrap_or_default(),
                    ),
                };
                facts.key_ids = a.key_ids;
            }
            Err(e) => facts.findings.push(refused(index, &e)),
        }
        facts
    }
}

/// The finding for an entry admission refuses, named by the rule it breaks. An unknown predicate
/// type says what to do if the log's operator accepts it.
fn refused(index: u64, e: &AdmissionError) -> Finding {
    let message = match e {
        AdmissionError::Declaration(DeclarationError::PredicateType { .. }) => {
            format!("{e}; if the log's operator accepts it, pass --extra-predicate-type with it")
        }
        _ => e.to_string(),
    };
    Finding::of(FindingKind::InvalidEntry, message).at(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::declaration;
    use crate::admission::dsse::Envelope;
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

//! Admission: the one function that says whether an entry is admissible, for the server at
//! Submit and for every checker (`audit`, `monitor`, `verify`) re-running it on logged leaves.
//!
//! The rules, in the order they are checked:
//! 1. the publisher keys and the DSSE envelope ([`dsse`]): keys parse, are 1 to
//!    [`dsse::MAX_KEYS`] and distinct, the envelope is strict JSON of the DSSE shape, every
//!    signature verifies under a key and every key verifies a signature. A logged leaf must
//!    moreover hold its keys as the log writes them ([`logged_keys`]);
//! 2. the statement ([`declaration::validate_envelope_payload`]): a model-release or
//!    training-data declaration passing every rule of its predicate, or a statement of a
//!    predicate type the operator accepts;
//! 3. the references of a declaration to earlier entries ([`references`]); at Submit only after
//!    the entry is known to fit in a log entry ([`crate::entry::MAX_LEAF_BYTES`]), since reading
//!    the entries it names is the costly part.
//!
//! Submit runs all three at once ([`admit`]). A checker runs 1–2 per entry, in parallel
//! ([`admit_logged`]), and 3 in log order against what it recorded of earlier entries, with the
//! entry's own index as the size of the log before it ([`references::check`]).
//!
//! Messages are the server's: a checker reports an entry in the words Submit would have
//! refused it with. No I/O.

use crate::admission::declaration::{self, Declaration, DeclarationError};
use crate::admission::dsse::{self, DsseError, Envelope};
use crate::admission::keys::{KeyCache, KeyId, PublicKey};
use crate::admission::references::{self, BrokenReference, Lookup};
use crate::entry::{dedup_key, logged_keys, LeafTooLarge, LogEntry, LoggedKeysError, PendingEntry};

/// What the operator configures about admission.
#[derive(Clone, Debug)]
pub struct Policy {
    /// In-toto predicate types accepted without declaration checks, besides the two glasslog
    /// declaration types (empty by default).
    pub extra_predicate_types: Vec<String>,
    /// Whether [`admit_logged`] verifies the signatures (the expensive part); a checker may
    /// skip them (`--no-signature-checks`). Submit always verifies them.
    pub check_signatures: bool,
}

impl Default for Policy {
    /// glasslog's two declaration types only, signatures checked: what a client assumes of a
    /// log whose operator configured nothing else.
    fn default() -> Self {
        Policy {
            extra_predicate_types: Vec::new(),
            check_signatures: true,
        }
    }
}

/// An admissible entry (the references of its declaration aside, for [`admit_logged`]).
#[derive(Clone, Debug)]
pub struct Admitted {
    /// The envelope as parsed.
    pub envelope: Envelope,
    /// The publisher keys, sorted by key id without repeats.
    pub keys: Vec<PublicKey>,
    /// Their key ids, in the same order.
    pub key_ids: Vec<KeyId>,
    /// The declaration, or `None` for a statement of an operator-accepted extra type.
    pub declaration: Option<Declaration>,
}

impl Admitted {
    fn new(
        envelope: Envelope,
        keys: Vec<PublicKey>,
        policy: &Policy,
    ) -> Result<Self, DeclarationError> {
        let declaration = declaration::validate_envelope_payload(
            &envelope.payload_type,
            &envelope.payload,
            &policy.extra_predicate_types,
        )?;
        Ok(Admitted {
            key_ids: keys.iter().map(PublicKey::key_id).collect(),
            envelope,
            keys,
            declaration,
        })
    }

    /// Whether [`check_references`] reads logged entries for this entry: its declaration names
    /// an earlier entry by log index. Without one, the references are checked from the
    /// declaration alone.
    pub fn reads_logged_entries(&self) -> bool {
        self.declaration
            .as_ref()
            .is_some_and(|d| d.references().iter().any(|r| r.log_index.is_some()))
    }

    /// The key that makes a resubmission of this entry idempotent ([`dedup_key`]).
    pub fn dedup_key(&self) -> [u8; 32] {
        dedup_key(
            &self.envelope.payload_type,
            &self.envelope.payload,
            &self.key_ids,
        )
    }

    /// The length of the leaf the log would write for this entry, `envelope_len` bytes of
    /// envelope JSON logged at `integrated_time_ms` ([`crate::entry::leaf_len`], with the keys as
    /// [`Admitted::into_pending`] writes them). A client compares it with
    /// [`crate::entry::MAX_LEAF_BYTES`] before it submits.
    pub fn leaf_len(&self, envelope_len: usize, integrated_time_ms: i64) -> usize {
        let pems: Vec<String> = self.keys.iter().map(PublicKey::to_pem).collect();
        crate::entry::leaf_len(envelope_len, &pems, integrated_time_ms)
    }

    /// What the sequencer logs: `envelope_json` (the bytes admitted), the keys, the dedup key,
    /// and the search index prefixes the caller computed for it.
    pub fn into_pending(
        self,
        envelope_json: Vec<u8>,
        search_prefixes: Vec<Vec<u8>>,
    ) -> PendingEntry {
        PendingEntry {
            dedup_key: self.dedup_key(),
            public_keys: self.keys.iter().map(PublicKey::to_pem).collect(),
            envelope: envelope_json,
            search_prefixes,
        }
    }
}

/// Why admission refuses an entry: one variant per group of rules.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// A logged leaf is not an encoded `LogEntry`.
    #[error("the leaf is not an encoded LogEntry: {0}")]
    Leaf(#[from] prost::DecodeError),
    /// A logged entry's keys are not as the log writes them.
    #[error(transparent)]
    LoggedKeys(#[from] LoggedKeysError),
    /// The keys, the envelope or a signature.
    #[error(transparent)]
    Envelope(#[from] DsseError),
    /// The statement.
    #[error("declaration rejected: {0}")]
    Declaration(#[from] DeclarationError),
    /// A reference to an earlier entry.
    #[error("declaration rejected: {0}")]
    Reference(#[from] BrokenReference),
    /// The entry would be longer than a log entry can be (Submit only).
    #[error(transparent)]
    LeafTooLarge(#[from] LeafTooLarge),
}

impl AdmissionError {
    /// The rule broken, in one word: `leaf`, `publisher-keys`, `envelope`, `signature`,
    /// `predicate-type`, `declaration`, `reference` or `leaf-size`.
    pub fn rule(&self) -> &'static str {
        match self {
            AdmissionError::Leaf(_) => "leaf",
            AdmissionError::LoggedKeys(_) => "publisher-keys",
            AdmissionError::Envelope(e) => match e {
                DsseError::NoKeys
                | DsseError::TooManyKeys { .. }
                | DsseError::Key { .. }
                | DsseError::DuplicateKey { .. } => "publisher-keys",
                DsseError::UnverifiedSignature { .. } | DsseError::UnusedKey { .. } => "signature",
                _ => "envelope",
            },
            AdmissionError::Declaration(DeclarationError::PredicateType { .. }) => "predicate-type",
            AdmissionError::Declaration(_) => "declaration",
            AdmissionError::Reference(_) => "reference",
            AdmissionError::LeafTooLarge(_) => "leaf-size",
        }
    }
}

/// Submit's admission of `envelope_json` signed by `public_keys` (PEM, as sent), with the
/// references of a declaration checked against a log of `size` entries read through `lookup`.
/// Keys are read through `keys`; signatures are always verified.
///
/// An entry whose leaf, logged at `logged_at_ms` (the log's clock now: the time changes the
/// leaf's length only through the length of its varint), would be longer than
/// [`crate::entry::MAX_LEAF_BYTES`] is refused before its references are read: it could never
/// be logged, and reading the entries it names is the costly part of admission.
///
/// This is [`admit_unreferenced`] then [`check_references`]; a caller that runs the two in
/// different places (the server reads logged entries off its async workers) calls them itself.
///
/// # Errors
/// The lookup's failure (no verdict). The verdict is the inner result.
pub fn admit<L: Lookup>(
    envelope_json: &[u8],
    public_keys: &[String],
    keys: &KeyCache,
    policy: &Policy,
    size: u64,
    logged_at_ms: i64,
    lookup: &L,
) -> Result<Result<Admitted, AdmissionError>, L::Error> {
    let admitted = match admit_unreferenced(envelope_json, public_keys, keys, policy, logged_at_ms)
    {
        Ok(a) => a,
        Err(e) => return Ok(Err(e)),
    };
    Ok(check_references(&admitted, size, lookup)?.map(|()| admitted))
}

/// [`admit`] up to the references: [`admit_envelope`] and the length of the leaf the entry would
/// be if logged at `logged_at_ms`. Reads nothing but its arguments (and `keys`' cache).
///
/// # Errors
/// The first rule the submission breaks.
pub fn admit_unreferenced(
    envelope_json: &[u8],
    public_keys: &[String],
    keys: &KeyCache,
    policy: &Policy,
    logged_at_ms: i64,
) -> Result<Admitted, AdmissionError> {
    let admitted = admit_envelope(envelope_json, public_keys, keys, policy)?;
    let leaf_len = admitted.leaf_len(envelope_json.len(), logged_at_ms);
    crate::entry::check_leaf_len(leaf_len)?;
    Ok(admitted)
}

/// The rest of [`admit`]: the references of `admitted`'s declaration, against a log of `size`
/// entries read through `lookup`. [`Admitted::reads_logged_entries`] tells beforehand whether
/// `lookup` will be called.
///
/// # Errors
/// The lookup's failure (no verdict). The verdict is the inner result.
pub fn check_references<L: Lookup>(
    admitted: &Admitted,
    size: u64,
    lookup: &L,
) -> Result<Result<(), AdmissionError>, L::Error> {
    let Some(d) = &admitted.declaration else {
        return Ok(Ok(()));
    };
    Ok(references::check(d.name().as_str(), &d.references(), size, lookup)?.map_err(Into::into))
}

/// Submit's admission with the references aside (checking them needs the log): the keys, the
/// envelope, every signature and the statement. [`admit`] is this plus the references; clients
/// run it before they send, so that errors name their local files.
///
/// # Errors
/// The first rule the submission breaks.
pub fn admit_envelope(
    envelope_json: &[u8],
    public_keys: &[String],
    keys: &KeyCache,
    policy: &Policy,
) -> Result<Admitted, AdmissionError> {
    let verified = dsse::verify_submission_with(envelope_json, public_keys, |pem| keys.key(pem))?;
    Ok(Admitted::new(verified.envelope, verified.keys, policy)?)
}

/// Admission re-run on a logged entry, references aside: its keys as the log writes them
/// ([`logged_keys`], read through `keys`), its envelope, its signatures (if
/// `policy.check_signatures`), its statement.
///
/// # Errors
/// The first rule the entry breaks.
pub fn admit_logged(
    entry: &LogEntry,
    keys: &KeyCache,
    policy: &Policy,
) -> Result<Admitted, AdmissionError> {
    let keys: Vec<PublicKey> = logged_keys(&entry.public_keys, keys)?
        .iter()
        .map(|k| k.key)
        .collect();
    let envelope = Envelope::parse(&entry.envelope)?;
    let (envelope, keys) = if policy.check_signatures {
        let v = dsse::verify(envelope, &keys)?;
        (v.envelope, v.keys)
    } else {
        (envelope, keys)
    };
    Ok(Admitted::new(envelope, keys, policy)?)
}

/// The declaration logged in `leaf_data` (an entry the log admitted), or `None` for an entry of
/// an operator-allowed extra predicate type. Reads the statement only: nothing is verified.
///
/// # Errors
/// A description of what does not parse (entries in the log passed admission, so this means
/// the admission rules changed or the store is damaged).
pub fn logged_declaration(leaf_data: &[u8]) -> Result<Option<Declaration>, String> {
    let entry = crate::entry::decode_leaf(leaf_data).map_err(|e| format!("leaf: {e}"))?;
    let env = Envelope::parse(&entry.envelope).map_err(|e| format!("envelope: {e}"))?;
    envelope_declaration(&env)
}

/// [`logged_declaration`] of an envelope already parsed (for a reader that needs the envelope
/// too, and would otherwise parse it twice).
///
/// # Errors
/// As [`logged_declaration`], for the statement.
pub fn envelope_declaration(env: &Envelope) -> Result<Option<Declaration>, String> {
    if env.payload_type != declaration::PAYLOAD_TYPE {
        return Ok(None);
    }
    match declaration::parse_statement(&env.payload) {
        Ok(d) => Ok(Some(d)),
        Err(_) if !is_declaration_type(&env.payload) => Ok(None),
        Err(e) => Err(format!("statement: {e}")),
    }
}

/// Whether a statement names one of the two glasslog declaration predicate types.
fn is_declaration_type(payload: &[u8]) -> bool {
    statement_predicate_type(payload)
        .is_some_and(|t| t == declaration::MODEL_RELEASE || t == declaration::TRAINING_DATA)
}

/// The `predicateType` of an in-toto statement, read leniently (for messages and dispatch, not
/// for admission); `None` if the payload has none.
pub fn statement_predicate_type(payload: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()?
        .get("predicateType")?
        .as_str()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::keys::{KeyType, PrivateKey};
    use crate::admission::references::Target;

    const MODEL: &[u8] = include_bytes!("../../tests/data/declarations/model-release.json");

    struct Empty;
    impl Lookup for Empty {
        type Error = std::convert::Infallible;
        fn target(&self, _: u64) -> Result<Target, Self::Error> {
            Ok(Target::NotDeclaration)
        }
    }

    /// A lookup that fails on every call, to show that none is made.
    struct Unreadable;
    impl Lookup for Unreadable {
        type Error = &'static str;
        fn target(&self, _: u64) -> Result<Target, &'static str> {
            Err("a lookup was made")
        }
    }

    fn policy(check_signatures: bool) -> Policy {
        Policy {
            extra_predicate_types: vec![],
            check_signatures,
        }
    }

    fn logged(envelope: Vec<u8>, keys: Vec<String>) -> LogEntry {
        LogEntry {
            envelope,
            public_keys: keys,
            integrated_time_ms: 5,
        }
    }

    #[test]
    fn submit_and_checkers_agree_on_the_rule_broken() {
        let key = PrivateKey::generate(KeyType::Ed25519);
        let other = PrivateKey::generate(KeyType::P256);
        let pem = key.public_key().to_pem();
        let signed = |payload: &[u8], k: &PrivateKey| {
            Envelope::sign(declaration::PAYLOAD_TYPE, payload, &[k]).to_json()
        };
        let cache = KeyCache::default();
        let cases: [(Vec<u8>, &str); 4] = [
            (signed(MODEL, &other), "signature"),
            (b"{}".to_vec(), "envelope"),
            (signed(b"{\"a\":1}", &key), "declaration"),
            // The model's references name indexes 7, 40 and 41: not in an empty log.
            (signed(MODEL, &key), "reference"),
        ];
        for (envelope, rule) in cases {
            let submitted = admit(
                &envelope,
                std::slice::from_ref(&pem),
                &cache,
                &policy(true),
                0,
                5,
                &Empty,
            )
            .unwrap()
            .unwrap_err();
            assert_eq!(submitted.rule(), rule, "{submitted}");
            let entry = logged(envelope, vec![pem.clone()]);
            match admit_logged(&entry, &cache, &policy(true)) {
                Err(e) => assert_eq!(e, submitted),
                Ok(a) => {
                    assert_eq!(rule, "reference");
                    let d = a.declaration.unwrap();
                    let b = references::check(d.name().as_str(), &d.references(), 0, &Empty)
                        .unwrap()
                        .unwrap_err();
                    assert_eq!(AdmissionError::from(b), submitted);
                }
            }
        }
        // Keys not in the form the log writes them: only a logged entry can have that.
        let loose = logged(signed(MODEL, &key), vec![format!("\n{pem}")]);
        let e = admit_logged(&loose, &cache, &policy(true)).unwrap_err();
        assert_eq!(e.rule(), "publisher-keys");
        // Without signature checks a forgery is not noticed.
        let forged = logged(signed(MODEL, &other), vec![pem.clone()]);
        assert!(admit_logged(&forged, &cache, &policy(false)).is_ok());
    }

    #[test]
    fn an_entry_too_long_to_log_is_refused_before_its_references_are_read() {
        let key = PrivateKey::generate(KeyType::Ed25519);
        let pem = key.public_key().to_pem();
        let json = Envelope::sign(declaration::PAYLOAD_TYPE, MODEL, &[&key]).to_json();
        let cache = KeyCache::default();
        let now = 1_700_000_000_000;
        // The model's references name indexes 7, 40 and 41: read in a log of 50 entries.
        let read = admit(
            &json,
            std::slice::from_ref(&pem),
            &cache,
            &policy(true),
            50,
            now,
            &Unreadable,
        );
        assert_eq!(read.unwrap_err(), "a lookup was made");
        let padded = [&json[..], &vec![b' '; crate::entry::MAX_LEAF_BYTES][..]].concat();
        let e = admit(&padded, &[pem], &cache, &policy(true), 50, now, &Unreadable)
            .unwrap()
            .unwrap_err();
        assert_eq!(e.rule(), "leaf-size");
        assert!(e.to_string().contains("at most 65535 bytes"), "{e}");
    }

    /// The server admits on its async workers only what [`Admitted::reads_logged_entries`]
    /// says reads nothing: it must be true exactly when a reference names a log index, and a
    /// lookup that fails on every call must then not be called.
    #[test]
    fn reads_logged_entries_exactly_when_a_reference_names_a_log_index() {
        let key = PrivateKey::generate(KeyType::Ed25519);
        let pem = key.public_key().to_pem();
        let cache = KeyCache::default();
        let admitted = |statement: &[u8]| {
            let json = Envelope::sign(declaration::PAYLOAD_TYPE, statement, &[&key]).to_json();
            admit_unreferenced(&json, std::slice::from_ref(&pem), &cache, &policy(true), 5).unwrap()
        };
        // The model's references name indexes 7, 40 and 41.
        let model = admitted(MODEL);
        assert!(model.reads_logged_entries());
        assert_eq!(
            check_references(&model, 50, &Unreadable).unwrap_err(),
            "a lookup was made"
        );
        // The same model without `supersedes` (which needs a log index) and with every other
        // `logIndex` removed: its references are judged without reads.
        let mut unindexed: serde_json::Value = serde_json::from_slice(MODEL).unwrap();
        unindexed["predicate"]
            .as_object_mut()
            .unwrap()
            .remove("supersedes");
        strip_log_indexes(&mut unindexed);
        let unindexed = admitted(&serde_json::to_vec(&unindexed).unwrap());
        assert!(!unindexed
            .declaration
            .as_ref()
            .unwrap()
            .references()
            .is_empty());
        assert!(!unindexed.reads_logged_entries());
        assert_eq!(check_references(&unindexed, 50, &Unreadable), Ok(Ok(())));
    }

    fn strip_log_indexes(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("logIndex");
                m.values_mut().for_each(strip_log_indexes);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip_log_indexes),
            _ => {}
        }
    }

    #[test]
    fn the_pending_entry_is_what_the_log_writes() {
        let key = PrivateKey::generate(KeyType::Ed25519);
        let pem = key.public_key().to_pem();
        let st = br#"{"_type": "https://in-toto.io/Statement/v1", "subject": [], "predicateType": "https://x/v1", "predicate": {}}"#;
        let json = Envelope::sign(declaration::PAYLOAD_TYPE, st, &[&key]).to_json();
        let policy = Policy {
            extra_predicate_types: vec!["https://x/v1".into()],
            check_signatures: true,
        };
        let a = admit(
            &json,
            std::slice::from_ref(&pem),
            &KeyCache::default(),
            &policy,
            0,
            5,
            &Empty,
        )
        .unwrap()
        .unwrap();
        assert!(a.declaration.is_none());
        let dedup = a.dedup_key();
        let leaf_len = a.leaf_len(json.len(), 1_700_000_000_000);
        let p = a.into_pending(json.clone(), vec![b"k".to_vec()]);
        assert_eq!(leaf_len, p.encode_leaf(1_700_000_000_000).len());
        assert_eq!(p.public_keys, vec![pem]);
        assert_eq!(p.dedup_key, dedup);
        assert_eq!(p.envelope, json);
        assert_eq!(
            statement_predicate_type(st).as_deref(),
            Some("https://x/v1")
        );
    }
}

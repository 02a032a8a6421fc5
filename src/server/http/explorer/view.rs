//! What the explorer's pages and JSON show, read from the log's storage and search index (the
//! ones the gRPC API reads: [`Store::search_page`], [`Prover`]); no copy of the data is kept.
//!
//! Every function here is blocking (RocksDB reads): the handlers call them on tokio's blocking
//! pool. Every entry is read under the public head ([`crate::server::head::Head`]): an index at
//! or beyond its size is "not in the log yet", as on the tiles face.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::Serialize;

use crate::admission::admit::{envelope_declaration, statement_predicate_type};
use crate::admission::declaration::{Declaration, Timestamp};
use crate::admission::dsse::Envelope;
use crate::admission::keys::PublicKey;
use crate::admission::logged_declaration;
use crate::admission::manifest::Resource;
use crate::entry::decode_leaf;
use crate::server::config::MAX_REPLY_BYTES;
use crate::server::prover::{Inclusion, ProofError, Prover};
use crate::server::search::{self, Query};
use crate::server::sequencer::Published;
use crate::server::storage::{StorageError, Store};
use crate::tlog::merkle;

use super::query::BoxQuery;

/// Entries on the home page's "newest" list.
pub const NEWEST: u64 = 10;
/// Search results per page.
pub const PAGE_SIZE: usize = 50;
/// Manifest files per page of an entry page.
pub const FILES_PER_PAGE: usize = 100;
/// Most entries of one name read to find what supersedes an entry, and most models listed as
/// trained on a dataset.
pub const RELATED_CAP: usize = 200;

/// Errors of the explorer's reads.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("no checkpoint is public yet")]
    NoHead,
    #[error("entry {index} is not in the log: its public checkpoint has {size} entries")]
    NotInLog { index: u64, size: u64 },
    #[error("no declaration named {0} is in the log")]
    UnknownName(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Proof(#[from] ProofError),
}

/// The log's checkpoint as shown.
#[derive(Clone, Debug, Serialize)]
pub struct CheckpointView {
    pub origin: String,
    pub size: u64,
    /// The root hash, hex.
    pub root_hash: String,
    /// The signed note, exactly as served at `/checkpoint`.
    pub note: String,
    /// Its signature lines: the log's and, for a witnessed head, its witnesses'.
    pub signatures: Vec<SignatureView>,
    /// The log's clock when it sequenced the newest entry under this checkpoint (the batch the
    /// checkpoint was signed for); `None` for the empty log.
    pub signed_at: Option<String>,
}

/// One signature line of a note (C2SP signed-note: `— name base64(key hash ‖ signature)`).
#[derive(Clone, Debug, Serialize)]
pub struct SignatureView {
    pub name: String,
    /// The key hash, 8 hex digits.
    pub key_hash: String,
    /// Whether this is the log's own signature (its key's name and hash), else a cosigner's.
    pub by_log: bool,
}

/// An entry as listed (search results, the newest entries, related entries).
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub index: u64,
    /// `model`, `dataset`, or `other` (an operator-allowed statement type, or unreadable).
    pub kind: &'static str,
    pub name: Option<String>,
    pub version: Option<String>,
    pub release_time: Option<String>,
    /// The log's clock when it sequenced the entry.
    pub logged_at: Option<String>,
    /// Key ids (hex SHA-256 of the SubjectPublicKeyInfo) of the keys that signed it.
    pub publisher_keys: Vec<String>,
    pub predicate_type: Option<String>,
}

/// An inclusion proof as shown and handed to the in-browser check.
#[derive(Clone, Debug, Serialize)]
pub struct ProofView {
    pub index: u64,
    pub tree_size: u64,
    /// Hex.
    pub leaf_hash: String,
    /// Leaf-to-root audit path, hex.
    pub hashes: Vec<String>,
}

/// One entry, whole.
#[derive(Debug, Serialize)]
pub struct EntryView {
    pub summary: Summary,
    /// The leaf data (an encoded `LogEntry`), base64.
    pub leaf_data: String,
    /// SHA-256(0x00 ‖ leaf data), hex (RFC 6962 §2.1).
    pub leaf_hash: String,
    pub payload_type: Option<String>,
    /// The DSSE envelope JSON exactly as logged (UTF-8 text).
    pub envelope: Option<String>,
    /// The statement (DSSE payload) exactly as logged.
    pub statement: Option<String>,
    pub public_keys: Vec<KeyView>,
    pub proof: ProofView,
    pub checkpoint: CheckpointView,
    /// The entries that declare they supersede this one.
    pub superseded_by: Vec<Summary>,
    /// For a dataset: model releases that list it in `trainingData` (at most [`RELATED_CAP`]).
    pub trained_models: Vec<Summary>,
    /// Whether more models than those listed were trained on it.
    pub trained_models_more: bool,
    /// Log indexes of the training datasets and base models, in the declaration's order (as
    /// declared, or found by their subject digest).
    pub training_data_indexes: Vec<Option<u64>>,
    pub base_model_indexes: Vec<Option<u64>>,
    /// What could not be read, for an entry the current admission rules no longer parse.
    pub problem: Option<String>,
    #[serde(skip)]
    pub declaration: Option<Declaration>,
}

/// A signer's key.
#[derive(Clone, Debug, Serialize)]
pub struct KeyView {
    pub key_id: String,
    pub pem: String,
}

/// The home page.
#[derive(Debug, Serialize)]
pub struct HomeView {
    pub origin: String,
    pub verifier_key: String,
    pub checkpoint: CheckpointView,
    /// Newest first.
    pub newest: Vec<Summary>,
}

/// One page of search results.
#[derive(Debug, Serialize)]
pub struct SearchView {
    pub query: String,
    pub results: Vec<Summary>,
    /// The `page` parameter of the next page, if there is one.
    pub next_page: Option<String>,
    /// The size of the checkpoint searched under.
    pub tree_size: u64,
}

/// The time `ms` milliseconds after the epoch, RFC 3339 to the second.
pub fn time_ms(ms: i64) -> Option<String> {
    Timestamp::from_unix_seconds(ms.div_euclid(1000)).map(|t| t.as_str().to_string())
}

/// The checkpoint of `head`, with its signature lines named, the log's told apart by
/// `verifier_key` (`name+hash+key`).
pub fn checkpoint_view(store: &Store, head: &Published, verifier_key: &str) -> CheckpointView {
    let mut parts = verifier_key.split('+');
    let (log_name, log_hash) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let signatures = note_signatures(&head.note)
        .into_iter()
        .map(|(name, key_hash)| SignatureView {
            by_log: name == log_name && key_hash == log_hash,
            name,
            key_hash,
        })
        .collect();
    let size = head.checkpoint.size;
    let signed_at = size
        .checked_sub(1)
        .and_then(|last| store.entry(last).ok().flatten())
        .and_then(|leaf| decode_leaf(&leaf).ok())
        .and_then(|e| time_ms(e.integrated_time_ms));
    CheckpointView {
        origin: head.checkpoint.origin.clone(),
        size,
        root_hash: hex::encode(head.checkpoint.root.0),
        note: head.note.clone(),
        signatures,
        signed_at,
    }
}

/// `(name, key hash hex)` of each signature line of a signed note.
pub fn note_signatures(note: &str) -> Vec<(String, String)> {
    let Some((_, sigs)) = note.split_once("\n\n") else {
        return Vec::new();
    };
    sigs.lines()
        .filter_map(|line| {
            let (name, b64) = line.strip_prefix("\u{2014} ")?.split_once(' ')?;
            let bytes = BASE64.decode(b64).ok()?;
            (bytes.len() >= 4).then(|| (name.to_string(), hex::encode(&bytes[..4])))
        })
        .collect()
}

/// Reads the summary of a logged entry; never fails (an unreadable entry is `other`). The leaf
/// and its envelope are parsed once.
pub fn summary(index: u64, leaf: &[u8]) -> Summary {
    let entry = decode_leaf(leaf).ok();
    let envelope = entry
        .as_ref()
        .and_then(|e| Envelope::parse(&e.envelope).ok());
    let declaration = envelope
        .as_ref()
        .and_then(|env| envelope_declaration(env).ok().flatten());
    summary_of(
        index,
        entry.as_ref(),
        envelope.as_ref(),
        declaration.as_ref(),
    )
}

fn summary_of(
    index: u64,
    entry: Option<&crate::entry::LogEntry>,
    envelope: Option<&Envelope>,
    declaration: Option<&Declaration>,
) -> Summary {
    let publisher_keys = entry
        .map(|e| {
            e.public_keys
                .iter()
                .filter_map(|pem| PublicKey::from_pem(pem).ok())
                .map(|k| k.key_id().to_string())
                .collect()
        })
        .unwrap_or_default();
    // A declaration's type is known from its kind; another statement's is read leniently.
    let predicate_type = match declaration {
        Some(d) => Some(d.kind().predicate_type().to_string()),
        None => envelope.and_then(|env| statement_predicate_type(&env.payload)),
    };
    Summary {
        index,
        kind: match declaration {
            Some(Declaration::Model(_)) => "model",
            Some(Declaration::Dataset(_)) => "dataset",
            None => "other",
        },
        name: declaration.map(|d| d.name().as_str().to_string()),
        version: declaration.map(|d| d.version().to_string()),
        release_time: declaration.map(|d| d.release_time().as_str().to_string()),
        logged_at: entry.and_then(|e| time_ms(e.integrated_time_ms)),
        publisher_keys,
        predicate_type,
    }
}

/// The home page: the head's checkpoint and its newest entries.
///
/// # Errors
/// [`ViewError::NoHead`] before the first public checkpoint; storage errors.
pub fn home(
    store: &Store,
    head: Option<&Published>,
    origin: &str,
    verifier_key: &str,
) -> Result<HomeView, ViewError> {
    let head = head.ok_or(ViewError::NoHead)?;
    let size = head.checkpoint.size;
    let mut newest: Vec<Summary> = store
        .entries(size.saturating_sub(NEWEST), size, MAX_REPLY_BYTES)?
        .iter()
        .map(|(i, leaf)| summary(*i, leaf))
        .collect();
    newest.reverse();
    Ok(HomeView {
        origin: origin.to_string(),
        verifier_key: verifier_key.to_string(),
        checkpoint: checkpoint_view(store, head, verifier_key),
        newest,
    })
}

/// One page of a search box's results, from log index `from` on.
///
/// # Errors
/// Storage errors.
pub fn search(
    store: &Store,
    head: &Published,
    text: &str,
    query: &BoxQuery,
    from: u64,
) -> Result<SearchView, ViewError> {
    let size = head.checkpoint.size;
    let (terms, leaf_hash) = match query {
        BoxQuery::Index(i) => {
            let results = match store.entry(*i) {
                Ok(Some(leaf)) if *i < size => vec![summary(*i, &leaf)],
                Ok(_) => Vec::new(),
                Err(e) => return Err(e.into()),
            };
            return Ok(SearchView {
                query: text.to_string(),
                results,
                next_page: None,
                tree_size: size,
            });
        }
        BoxQuery::Terms { terms, leaf_hash } => (terms, leaf_hash),
    };
    let prefixes: Vec<Vec<u8>> = terms.iter().map(Query::prefix).collect();
    let page = store.search_page(&prefixes, from, size, PAGE_SIZE, MAX_REPLY_BYTES)?;
    let mut results: Vec<Summary> = page
        .entries
        .iter()
        .map(|(i, leaf)| summary(*i, leaf))
        .collect();
    // A leaf hash names one entry; it joins the page its index falls in.
    if let Some(h) = leaf_hash {
        if let Some(i) = store.index_of_leaf(&merkle::Hash(*h))? {
            let in_page = i >= from && i < size && page.next.is_none_or(|n| i < n);
            if in_page && !results.iter().any(|s| s.index == i) {
                let leaf = store.logged_entry(i)?;
                results.push(summary(i, &leaf));
                results.sort_by_key(|s| s.index);
            }
        }
    }
    Ok(SearchView {
        query: text.to_string(),
        results,
        next_page: page.next.map(search::page_token),
        tree_size: size,
    })
}

/// The first logged entry whose subject digest is `digest`, below `size`.
fn by_subject(store: &Store, digest: [u8; 32], size: u64) -> Result<Option<u64>, StorageError> {
    Ok(store
        .search(&Query::SubjectDigest(digest).prefix(), 0, size, 1)?
        .first()
        .copied())
}

/// Entry `index`, with its proof under `head` and what the log says about it elsewhere.
///
/// # Errors
/// [`ViewError::NotInLog`] beyond the head; storage and proof errors.
pub fn entry(
    store: &std::sync::Arc<Store>,
    head: &Published,
    verifier_key: &str,
    index: u64,
) -> Result<EntryView, ViewError> {
    let size = head.checkpoint.size;
    if index >= size {
        return Err(ViewError::NotInLog { index, size });
    }
    let leaf = store.logged_entry(index)?;
    let proof = Prover::new(store.clone()).inclusion_by_index(index, size)?;
    #[cfg(feature = "fault-injection")]
    let proof = crate::server::faults::explorer_proof(proof);
    let decoded = decode_leaf(&leaf);
    let mut problem = None;
    let (declaration, envelope) = match &decoded {
        Ok(e) => {
            let envelope = Envelope::parse(&e.envelope)
                .map_err(|err| problem = Some(format!("envelope: {err}")))
                .ok();
            let declaration = envelope.as_ref().and_then(|env| {
                envelope_declaration(env)
                    .map_err(|err| problem = Some(err))
                    .ok()
                    .flatten()
            });
            (declaration, envelope)
        }
        Err(err) => {
            problem = Some(format!("leaf: {err}"));
            (None, None)
        }
    };
    let entry = decoded.as_ref().ok();
    let summary = summary_of(index, entry, envelope.as_ref(), declaration.as_ref());
    let public_keys = entry
        .map(|e| {
            e.public_keys
                .iter()
                .map(|pem| KeyView {
                    key_id: PublicKey::from_pem(pem)
                        .map(|k| k.key_id().to_string())
                        .unwrap_or_default(),
                    pem: pem.clone(),
                })
                .collect()
        })
        .unwrap_or_default();
    let mut view = EntryView {
        summary,
        leaf_data: BASE64.encode(&leaf),
        leaf_hash: hex::encode(merkle::leaf_hash(&leaf).0),
        payload_type: envelope.as_ref().map(|e| e.payload_type.clone()),
        envelope: entry.map(|e| String::from_utf8_lossy(&e.envelope).into_owned()),
        statement: envelope
            .as_ref()
            .map(|e| String::from_utf8_lossy(&e.payload).into_owned()),
        public_keys,
        proof: proof_view(&proof),
        checkpoint: checkpoint_view(store, head, verifier_key),
        superseded_by: Vec::new(),
        trained_models: Vec::new(),
        trained_models_more: false,
        training_data_indexes: Vec::new(),
        base_model_indexes: Vec::new(),
        problem,
        declaration: None,
    };
    if let Some(d) = &declaration {
        view.superseded_by = superseded_by(store, d, index, size)?;
        match d {
            Declaration::Model(m) => {
                for t in &m.training_data {
                    view.training_data_indexes.push(match t.log_index {
                        Some(i) => Some(i),
                        None => by_subject(store, t.digest.0, size)?,
                    });
                }
                for b in &m.base_models {
                    view.base_model_indexes.push(match b.log_index {
                        Some(i) => Some(i),
                        None => by_subject(store, b.digest.0, size)?,
                    });
                }
            }
            Declaration::Dataset(ds) => {
                let (models, more) = trained_on(store, ds.digest.0, size, RELATED_CAP)?;
                view.trained_models = models;
                view.trained_models_more = more;
            }
        }
    }
    view.declaration = declaration;
    Ok(view)
}

fn proof_view(p: &Inclusion) -> ProofView {
    ProofView {
        index: p.index,
        tree_size: p.tree_size,
        leaf_hash: hex::encode(p.leaf_hash.0),
        hashes: p.hashes.iter().map(|h| hex::encode(h.0)).collect(),
    }
}

/// Declarations of `d`'s name and kind whose `supersedes` names entry `index` (a declaration
/// can only supersede one of its own kind and name: admission checks it), among the first
/// [`RELATED_CAP`] of that name.
fn superseded_by(
    store: &Store,
    d: &Declaration,
    index: u64,
    size: u64,
) -> Result<Vec<Summary>, ViewError> {
    let prefix = Query::Name(d.name().as_str().to_string()).prefix();
    let mut out = Vec::new();
    for i in store.search(&prefix, index + 1, size, RELATED_CAP)? {
        let leaf = store.logged_entry(i)?;
        if let Ok(Some(later)) = logged_declaration(&leaf) {
            if later.supersedes().is_some_and(|s| s.log_index == index) {
                out.push(summary(i, &leaf));
            }
        }
    }
    Ok(out)
}

/// Model releases listing the dataset of subject `digest` in `trainingData`: at most `cap`,
/// and whether there are more.
pub fn trained_on(
    store: &Store,
    digest: [u8; 32],
    size: u64,
    cap: usize,
) -> Result<(Vec<Summary>, bool), ViewError> {
    let found = store.search(&Query::TrainedOn(digest).prefix(), 0, size, cap + 1)?;
    let more = found.len() > cap;
    let mut out = Vec::new();
    for &i in found.iter().take(cap) {
        out.push(summary(i, &store.logged_entry(i)?));
    }
    Ok((out, more))
}

impl EntryView {
    /// Page `page` (from 0) of the manifest's files, and the number of pages.
    pub fn files(&self, page: usize) -> (&[Resource], usize) {
        let resources = self
            .declaration
            .as_ref()
            .and_then(Declaration::manifest)
            .map_or(&[][..], |m| &m.resources[..]);
        let pages = resources.len().div_ceil(FILES_PER_PAGE).max(1);
        let start = (page * FILES_PER_PAGE).min(resources.len());
        let end = (start + FILES_PER_PAGE).min(resources.len());
        (&resources[start..end], pages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_lines_are_named_and_the_logs_told_apart() {
        let b64 = |bytes: &[u8]| BASE64.encode(bytes);
        let note = format!(
            "example.com/log\n3\nAAAA\n\n\u{2014} example.com/log {}\n\u{2014} witness.example {}\n",
            b64(&[0xab, 0xcd, 0xef, 0x01, 9, 9]),
            b64(&[1, 2, 3, 4, 5, 6, 7, 8]),
        );
        assert_eq!(
            note_signatures(&note),
            [
                ("example.com/log".to_string(), "abcdef01".to_string()),
                ("witness.example".to_string(), "01020304".to_string()),
            ]
        );
        assert!(note_signatures("no blank line\n").is_empty());
        assert!(note_signatures("a\n\n\u{2014} short AAA=\nnot a signature\n").is_empty());
    }

    #[test]
    fn times_are_rfc3339_seconds() {
        assert_eq!(
            time_ms(1_780_000_000_123).as_deref(),
            Some("2026-05-28T20:26:40Z")
        );
        assert_eq!(time_ms(i64::MAX), None);
    }
}

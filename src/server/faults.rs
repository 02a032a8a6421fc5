//! Test-only fault injection: a server that lies, for the monitor's hostile-server tests.
//!
//! Compiled only with the `fault-injection` feature (never in a normal build). The fault is read
//! once from the environment, at the first request that consults it:
//!
//! - `GLASSLOG_FAULT=checkpoint-signature[:SIZE]`: checkpoints of at least SIZE leaves (default 0)
//!   are served (Tail, GetCheckpoint) with a corrupted signature;
//! - `GLASSLOG_FAULT=root:INDEX`: entry INDEX is served altered (Tail, GetEntries), under honest
//!   checkpoints;
//! - `GLASSLOG_FAULT=entry:INDEX`: entry INDEX is served altered, but only to Tail streams that
//!   do not start at index 0: a catch-up from the start sees the logged entry, a returning
//!   client another;
//! - `GLASSLOG_FAULT=inconsistent:INDEX`: a split view: entry INDEX is served altered and every
//!   checkpoint covering it is re-signed over the altered tree (needs the log's key file in
//!   `GLASSLOG_FAULT_KEY_FILE`); consistency proofs stay honest;
//! - `GLASSLOG_FAULT=admission`: Submit logs any parseable envelope and keys, skipping signature
//!   verification and declaration checks;
//! - `GLASSLOG_FAULT=admission-on-request`: Submit admits as usual, except a request carrying the
//!   gRPC metadata `glasslog-fault: unchecked`, which is logged as with `admission`. A test asks
//!   the server's verdict on an entry, then logs it anyway.
//! - `GLASSLOG_FAULT=explorer-proof`: the web explorer (`/entry/…`, `/api/entry/…`) serves every
//!   inclusion proof with one bit of its first hash flipped (the leaf hash when the path is
//!   empty); gRPC and tiles stay honest. The page's in-browser check must then fail.
//!
//! An altered entry is the logged one with its integrated time one millisecond later, so it
//! still decodes and passes every check: only the hashes tell.

use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use prost::Message;

use super::{ApiError, LogService};
use crate::admission::dsse::Envelope;
use crate::admission::keys::PublicKey;
use crate::entry::{decode_leaf, dedup_key, PendingEntry};
use crate::proto::{self, tail_event::Event};
use crate::server::prover::Inclusion;
use crate::server::storage::Store;
use crate::tlog::checkpoint::Checkpoint;
use crate::tlog::compact::CompactRange;
use crate::tlog::merkle;
use crate::tlog::note::LogSigner;

/// The fault this server runs with.
#[allow(clippy::large_enum_variant)] // one value per process, read once
pub enum Fault {
    None,
    CheckpointSignature { from_size: u64 },
    Root { index: u64 },
    Entry { index: u64 },
    Inconsistent { index: u64, signer: LogSigner },
    Admission,
    AdmissionOnRequest,
    ExplorerProof,
}

/// The metadata key and value that ask an `admission-on-request` server to skip admission.
pub const UNCHECKED_METADATA: (&str, &str) = ("glasslog-fault", "unchecked");

/// The fault of this process, read from the environment once.
pub fn active() -> &'static Fault {
    static FAULT: OnceLock<Fault> = OnceLock::new();
    FAULT.get_or_init(|| {
        let spec = std::env::var("GLASSLOG_FAULT").unwrap_or_default();
        let fault = parse(&spec).unwrap_or_else(|e| panic!("GLASSLOG_FAULT={spec:?}: {e}"));
        if !matches!(fault, Fault::None) {
            tracing::warn!(fault = %spec, "FAULT INJECTION: this server lies on purpose");
        }
        fault
    })
}

fn parse(spec: &str) -> Result<Fault, String> {
    let (name, arg) = spec
        .split_once(':')
        .map_or((spec, None), |(n, a)| (n, Some(a)));
    let number = |default: Option<u64>| -> Result<u64, String> {
        match arg {
            Some(a) => a.parse().map_err(|e| format!("{a:?}: {e}")),
            None => default.ok_or_else(|| format!("{name} needs :INDEX")),
        }
    };
    Ok(match name {
        "" => Fault::None,
        "checkpoint-signature" => Fault::CheckpointSignature {
            from_size: number(Some(0))?,
        },
        "root" => Fault::Root {
            index: number(None)?,
        },
        "entry" => Fault::Entry {
            index: number(None)?,
        },
        "inconsistent" => Fault::Inconsistent {
            index: number(None)?,
            signer: signer()?,
        },
        "admission" => Fault::Admission,
        "admission-on-request" => Fault::AdmissionOnRequest,
        "explorer-proof" => Fault::ExplorerProof,
        other => return Err(format!("unknown fault {other:?}")),
    })
}

fn signer() -> Result<LogSigner, String> {
    let path = std::env::var("GLASSLOG_FAULT_KEY_FILE")
        .map_err(|_| "set GLASSLOG_FAULT_KEY_FILE to the log key file".to_string())?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    LogSigner::from_skey(text.trim_end()).map_err(|e| e.to_string())
}

/// A Tail event as this server serves it, on a stream that started at `first`.
pub fn tail_event(event: Event, first: u64, store: &Store) -> Event {
    match event {
        Event::Entry(mut e) => {
            e.leaf_data = served_leaf(e.index, e.leaf_data, Some(first));
            Event::Entry(e)
        }
        Event::Checkpoint(c) => Event::Checkpoint(served_checkpoint(c, store)),
        Event::Witnessed(c) => Event::Witnessed(c),
    }
}

/// Leaf data as served, by GetEntries (`stream_start` `None`) or a Tail stream.
pub fn served_leaf(index: u64, leaf: Vec<u8>, stream_start: Option<u64>) -> Vec<u8> {
    match active() {
        Fault::Root { index: i } | Fault::Inconsistent { index: i, .. } if *i == index => {
            altered(leaf)
        }
        Fault::Entry { index: i } if *i == index && stream_start.is_some_and(|s| s > 0) => {
            altered(leaf)
        }
        _ => leaf,
    }
}

/// A checkpoint as served.
pub fn served_checkpoint(c: proto::SignedCheckpoint, store: &Store) -> proto::SignedCheckpoint {
    match active() {
        Fault::CheckpointSignature { from_size } if c.size >= *from_size => {
            proto::SignedCheckpoint {
                note: corrupt_signature(&c.note),
                ..c
            }
        }
        Fault::Inconsistent { index, signer } if c.size > *index => {
            forked(c.size, *index, signer, store).unwrap_or(c)
        }
        _ => c,
    }
}

/// An inclusion proof as the web explorer serves it.
pub fn explorer_proof(mut proof: Inclusion) -> Inclusion {
    if matches!(active(), Fault::ExplorerProof) {
        match proof.hashes.first_mut() {
            Some(h) => h.0[0] ^= 1,
            None => proof.leaf_hash.0[0] ^= 1,
        }
    }
    proof
}

fn altered(leaf: Vec<u8>) -> Vec<u8> {
    match decode_leaf(&leaf) {
        Ok(mut e) => {
            e.integrated_time_ms += 1;
            e.encode_to_vec()
        }
        Err(_) => [leaf, vec![0]].concat(),
    }
}

/// The note with the last byte of its (last) signature flipped.
fn corrupt_signature(note: &str) -> String {
    let body_end = note.trim_end_matches('\n').rfind('\n').map_or(0, |i| i + 1);
    let (head, line) = note.split_at(body_end);
    let Some((prefix, sig)) = line.trim_end().rsplit_once(' ') else {
        return note.to_string();
    };
    let Ok(mut bytes) = BASE64.decode(sig) else {
        return note.to_string();
    };
    if let Some(b) = bytes.last_mut() {
        *b ^= 1;
    }
    format!("{head}{prefix} {}\n", BASE64.encode(bytes))
}

/// The checkpoint of the first `size` leaves with leaf `index` altered, signed with the log key.
fn forked(
    size: u64,
    index: u64,
    signer: &LogSigner,
    store: &Store,
) -> Option<proto::SignedCheckpoint> {
    let mut range = CompactRange::new();
    for (i, leaf) in store.entries(0, size, usize::MAX).ok()? {
        let leaf = if i == index { altered(leaf) } else { leaf };
        range.append(merkle::leaf_hash(&leaf));
    }
    let checkpoint = Checkpoint {
        origin: signer.origin().into(),
        size,
        root: range.root(),
    };
    Some(proto::SignedCheckpoint {
        note: signer.sign(&checkpoint).ok()?,
        size,
        root_hash: checkpoint.root.0.to_vec(),
    })
}

/// With the `admission` fault (or `admission-on-request` and the request asking for it), logs
/// the submission unchecked and answers as Submit does; otherwise `None`.
pub async fn submit_unchecked(
    service: &LogService,
    req: &tonic::Request<proto::SubmitRequest>,
) -> Option<Result<proto::SubmitResponse, ApiError>> {
    let asked = || {
        req.metadata()
            .get(UNCHECKED_METADATA.0)
            .is_some_and(|v| v == UNCHECKED_METADATA.1)
    };
    match active() {
        Fault::Admission => {}
        Fault::AdmissionOnRequest if asked() => {}
        _ => return None,
    }
    Some(log_unchecked(service, req.get_ref()).await)
}

async fn log_unchecked(
    service: &LogService,
    req: &proto::SubmitRequest,
) -> Result<proto::SubmitResponse, ApiError> {
    let bad = |e: String| ApiError::InvalidArgument(e);
    let envelope = Envelope::parse(&req.envelope).map_err(|e| bad(e.to_string()))?;
    let mut keys = req
        .public_keys
        .iter()
        .map(|p| PublicKey::from_pem(p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    keys.sort_by_key(|k| k.key_id());
    let key_ids: Vec<_> = keys.iter().map(|k| k.key_id()).collect();
    let pending = PendingEntry {
        envelope: req.envelope.clone(),
        public_keys: keys.iter().map(PublicKey::to_pem).collect(),
        dedup_key: dedup_key(&envelope.payload_type, &envelope.payload, &key_ids),
        search_prefixes: crate::server::search::index_prefixes(None, &key_ids),
    };
    service
        .log_and_prove(pending, service.sequencer.announce())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::checkpoint::Origin;
    use crate::tlog::note::LogVerifier;

    #[test]
    fn a_corrupted_signature_does_not_verify_and_the_body_is_kept() {
        let signer = LogSigner::generate(&Origin::new("example.com/log").unwrap());
        let c = Checkpoint {
            origin: "example.com/log".into(),
            size: 3,
            root: merkle::EMPTY_HASH,
        };
        let note = signer.sign(&c).unwrap();
        let bad = corrupt_signature(&note);
        assert_ne!(bad, note);
        assert_eq!(bad.len(), note.len());
        let verifier = LogVerifier::new(&signer.verifier_key()).unwrap();
        assert!(verifier.verify(&note).is_ok());
        assert!(verifier.verify(&bad).is_err());
    }

    #[test]
    fn specs_parse() {
        assert!(matches!(parse("").unwrap(), Fault::None));
        assert!(matches!(parse("root:4").unwrap(), Fault::Root { index: 4 }));
        assert!(matches!(
            parse("checkpoint-signature").unwrap(),
            Fault::CheckpointSignature { from_size: 0 }
        ));
        assert!(matches!(
            parse("admission-on-request").unwrap(),
            Fault::AdmissionOnRequest
        ));
        assert!(matches!(
            parse("explorer-proof").unwrap(),
            Fault::ExplorerProof
        ));
        assert!(parse("root").is_err());
        assert!(parse("nonsense").is_err());
    }
}

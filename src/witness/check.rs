//! What a witness decides about an `add-checkpoint` request, in the order C2SP tlog-witness
//! v1.0.0 lists the checks: the note is signed by a log it trusts ([`verify_signed`], before the
//! origin's lock), then it extends what the witness recorded of that log ([`check_growth`],
//! under the lock). No I/O; the status code of each [`Refusal`] is chosen in
//! [`crate::witness::http`].

use std::collections::HashMap;

use crate::tlog::checkpoint::{Checkpoint, CheckpointError};
use crate::tlog::merkle::{Hash, MerkleError, EMPTY_HASH};
use crate::tlog::note::LogVerifier;
use crate::tlog::proof;
use crate::tlog::witness_protocol::{AddCheckpoint, ProtocolError};

/// Why a witness does not cosign.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// The body, the note or the checkpoint in it does not parse (400).
    #[error("{0}")]
    Malformed(String),
    /// No trusted key for the checkpoint's origin (404).
    #[error("this witness does not witness the log {0:?}")]
    UnknownOrigin(String),
    /// No signature by a trusted key of the origin verifies (403).
    #[error("no signature by a trusted key of {origin:?} verifies: {reason}")]
    NotSigned { origin: String, reason: String },
    /// The old size is above the checkpoint's size (400).
    #[error("old size {old} is above the checkpoint's size {size}")]
    OldSizeAboveSize { old: u64, size: u64 },
    /// The old size is not the size of the latest checkpoint cosigned for the origin (409,
    /// carrying that size).
    #[error("old size {old} is not the size {known} of the latest checkpoint cosigned")]
    OldSizeMismatch { old: u64, known: u64 },
    /// The checkpoint has the size of the latest one cosigned and another root: the log
    /// equivocates (409 under v1.0.0).
    #[error("a checkpoint of size {size} with another root hash was cosigned: the log forked")]
    SameSizeOtherRoot { size: u64 },
    /// The consistency proof does not verify (422).
    #[error("the consistency proof from size {old} does not verify: {reason}")]
    BadProof { old: u64, reason: MerkleError },
}

impl From<ProtocolError> for Refusal {
    fn from(e: ProtocolError) -> Self {
        Refusal::Malformed(e.to_string())
    }
}

/// The logs a witness trusts: every origin's keys (one origin may have several).
#[derive(Clone, Debug, Default)]
pub struct TrustedLogs {
    by_origin: HashMap<String, Vec<LogVerifier>>,
}

impl TrustedLogs {
    /// Trusts `log`'s checkpoints, for the origin that is its key name.
    pub fn add(&mut self, log: LogVerifier) {
        self.by_origin
            .entry(log.origin().to_string())
            .or_default()
            .push(log);
    }

    /// The origins trusted.
    pub fn origins(&self) -> impl Iterator<Item = &str> {
        self.by_origin.keys().map(String::as_str)
    }

    /// The number of keys trusted.
    pub fn len(&self) -> usize {
        self.by_origin.values().map(Vec::len).sum()
    }

    /// Whether no log is trusted.
    pub fn is_empty(&self) -> bool {
        self.by_origin.is_empty()
    }
}

/// What a witness records of a log: the latest checkpoint it cosigned.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub size: u64,
    pub root: Hash,
    /// The signed note as received (evidence, should the log later fork).
    pub note: String,
}

/// A checkpoint whose log signature verified under a trusted key.
#[derive(Clone, Debug)]
pub struct Signed {
    pub checkpoint: Checkpoint,
    /// The note's text, which a cosignature covers (extension lines included).
    pub text: String,
}

/// Checks the request's note: the origin is trusted (else 404), a trusted key signed it (else
/// 403), the body is a checkpoint (else 400), and the old size is at most its size (else 400).
///
/// # Errors
/// The [`Refusal`].
pub fn verify_signed(logs: &TrustedLogs, req: &AddCheckpoint) -> Result<Signed, Refusal> {
    let origin = req.note.split('\n').next().unwrap_or_default();
    let Some(keys) = logs.by_origin.get(origin) else {
        return Err(Refusal::UnknownOrigin(origin.chars().take(300).collect()));
    };
    let mut reason = String::new();
    let mut text = None;
    for key in keys {
        match key.verify_note(&req.note) {
            Ok(t) => {
                text = Some(t);
                break;
            }
            Err(e @ CheckpointError::MalformedNote { .. }) => {
                return Err(Refusal::Malformed(e.to_string()))
            }
            Err(e) => reason = e.to_string(),
        }
    }
    let Some(text) = text else {
        return Err(Refusal::NotSigned {
            origin: origin.to_string(),
            reason,
        });
    };
    let checkpoint =
        Checkpoint::parse_body(&text).map_err(|e| Refusal::Malformed(e.to_string()))?;
    if req.old_size > checkpoint.size {
        return Err(Refusal::OldSizeAboveSize {
            old: req.old_size,
            size: checkpoint.size,
        });
    }
    Ok(Signed { checkpoint, text })
}

/// Checks that the checkpoint extends `recorded` (the latest cosigned for its origin, if any):
/// the old size is the recorded size (else 409 with it), an equal size has the recorded root
/// (else 409), and the proof leads from the recorded root to the new one (else 422). With no
/// record the old size must be 0, and a checkpoint of size 0 must have the empty tree's root.
///
/// # Errors
/// The [`Refusal`].
pub fn check_growth(
    recorded: Option<&Record>,
    req: &AddCheckpoint,
    signed: &Signed,
) -> Result<(), Refusal> {
    let cp = &signed.checkpoint;
    let known = recorded.map_or(0, |r| r.size);
    if req.old_size != known {
        return Err(Refusal::OldSizeMismatch {
            old: req.old_size,
            known,
        });
    }
    let bad = |reason| Refusal::BadProof {
        old: req.old_size,
        reason,
    };
    match recorded {
        Some(r) if r.size == cp.size && r.root != cp.root => {
            Err(Refusal::SameSizeOtherRoot { size: cp.size })
        }
        Some(r) if r.size > 0 => {
            proof::verify_consistency(r.size, cp.size, &r.root, &cp.root, &req.proof).map_err(bad)
        }
        _ if cp.size == 0 && cp.root != EMPTY_HASH => Err(bad(MerkleError::RootMismatch {
            expected: EMPTY_HASH,
            calculated: cp.root,
        })),
        _ => Ok(()),
    }
}

//! Proof bundles: everything needed to check, offline and years later, that a declaration is in
//! a log.
//!
//! `glasslog submit` writes one next to each declaration it submits. A bundle is a small JSON
//! object (the format, for verifiers in other languages, is `docs/bundle.md`):
//!
//! ```json
//! {"index": 7, "leaf_data": "<base64>", "tree_size": 8, "proof": ["<base64>", ...],
//!  "checkpoint": "<signed note>", "log_verifier_key": "<C2SP verifier key>"}
//! ```
//!
//! [`ProofBundle::verify`] checks it all: the checkpoint's signature under `log_verifier_key`,
//! its size against `tree_size`, the inclusion proof of `SHA-256(0x00 || leaf_data)` at `index`
//! against the checkpoint's root, and then what the leaf says: the logged [`LogEntry`], the DSSE
//! envelope in it with every signature verified under the logged public keys, and the
//! declaration in the envelope, read with the rules the server applies.
//!
//! What this module is not: it does no I/O, and it does not decide whether to trust
//! `log_verifier_key` — a bundle verifies against the key it names, so callers must compare that
//! key with the one they pinned for the log. It does not check consistency with later
//! checkpoints (that needs the log, or a witness), nor that referenced declarations exist.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

use crate::admission::declaration::Declaration;
use crate::admission::dsse::Envelope;
use crate::admission::keys::{KeyCache, PublicKey};
use crate::admission::strict_json::{self, element_path, member_path, JsonError, ROOT};
use crate::admission::{self, AdmissionError, Policy};
use crate::entry::{decode_leaf, LogEntry};
use crate::tlog::checkpoint::{Checkpoint, CheckpointError};
use crate::tlog::merkle::{self, Hash, MerkleError};
use crate::tlog::note::LogVerifier;
use crate::tlog::policy::{PolicyError, WitnessPolicy};
use crate::tlog::proof;

/// The members of a bundle, and the only ones accepted (`cosignatures` is optional).
const FIELDS: [&str; 7] = [
    "index",
    "leaf_data",
    "tree_size",
    "proof",
    "checkpoint",
    "log_verifier_key",
    "cosignatures",
];

/// The most cosignature lines a bundle may carry (a note has at most 100 signatures).
const MAX_COSIGNATURES: usize = 99;

/// The most hashes an inclusion proof can have (a tree of at most 2^64 leaves).
const MAX_PROOF_HASHES: usize = 64;

/// Why a bundle was refused.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The bundle is not strict JSON of the bundle's shape.
    #[error("malformed proof bundle: {0}")]
    Json(#[from] JsonError),
    /// A member has the right JSON type but a bad value.
    #[error("malformed proof bundle: {path}: {reason}")]
    Field { path: String, reason: String },
    /// `log_verifier_key` is not a C2SP verifier key.
    #[error("proof bundle's log_verifier_key: {0}")]
    VerifierKey(CheckpointError),
    /// `checkpoint` is not a checkpoint signed by `log_verifier_key`.
    #[error("proof bundle's checkpoint does not verify: {0}")]
    Checkpoint(CheckpointError),
    /// `tree_size` differs from the size in the signed checkpoint.
    #[error(
        "proof bundle says tree_size {bundle}, but its signed checkpoint is of size {checkpoint}"
    )]
    TreeSize { bundle: u64, checkpoint: u64 },
    /// The inclusion proof does not lead from the leaf to the checkpoint's root.
    #[error(
        "proof bundle's inclusion proof does not verify ({0}): the leaf is not at index {1} of the \
         checkpointed tree, or the bundle was altered"
    )]
    Inclusion(MerkleError, u64),
    /// `leaf_data` is not an encoded `LogEntry`.
    #[error("proof bundle's leaf_data is not a glasslog LogEntry: {0}")]
    Leaf(String),
    /// The logged entry would not pass the log's admission (its keys, envelope, signatures or
    /// statement).
    #[error("the logged entry is not admissible: {0}")]
    Admission(AdmissionError),
    /// The checkpoint's cosignatures do not meet the witness policy.
    #[error("proof bundle's checkpoint is not witnessed as the policy requires: {0}")]
    Witnesses(PolicyError),
    /// The witness policy lists logs, and not this bundle's.
    #[error("the witness policy does not list the bundle's log {0}")]
    NotInPolicy(String),
    /// The logged statement is of an operator-allowed extra type, not a glasslog declaration.
    #[error("the logged statement is not a glasslog declaration (predicate type {0})")]
    NotADeclaration(String),
}

/// A proof that one leaf is in a log, with the log's signed checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct ProofBundle {
    /// The entry's index in the log.
    pub index: u64,
    /// The logged leaf (an encoded [`LogEntry`]) exactly as hashed.
    pub leaf_data: Vec<u8>,
    /// The size of the tree the proof is against; equal to the checkpoint's size.
    pub tree_size: u64,
    /// The inclusion proof, leaf to root (RFC 9162 §2.1.3.1).
    pub proof: Vec<Hash>,
    /// The log's signed checkpoint (a C2SP signed note) of size `tree_size`.
    pub checkpoint: String,
    /// The C2SP verifier key of the log, `<origin>+<key id>+<base64 key>`.
    pub log_verifier_key: String,
    /// Witness cosignatures of `checkpoint` (C2SP tlog-cosignature signature lines, each ending
    /// in a newline), for a bundle made under a witness policy; empty otherwise (and then not
    /// written, so such bundles are as before).
    pub cosignatures: Vec<String>,
}

/// What a bundle that verified proves.
#[derive(Clone, Debug)]
pub struct VerifiedBundle {
    /// The entry's index in the log.
    pub index: u64,
    /// The verified checkpoint that includes the entry.
    pub checkpoint: Checkpoint,
    /// The logged entry (envelope bytes, normalised public keys, integration time).
    pub entry: LogEntry,
    /// The logged envelope.
    pub envelope: Envelope,
    /// The public keys that signed it, sorted by key id.
    pub keys: Vec<PublicKey>,
    /// The declaration the envelope carries.
    pub declaration: Declaration,
}

impl ProofBundle {
    /// The bundle as JSON: one member per line, in the order of `docs/bundle.md`, base64
    /// standard with padding. [`ProofBundle::from_json`] reads it back.
    pub fn to_json(&self) -> Vec<u8> {
        let string = |s: &str| Value::String(s.to_owned()).to_string();
        let proof: Vec<String> = self
            .proof
            .iter()
            .map(|h| format!("\n    {}", string(&STANDARD.encode(h.0))))
            .collect();
        let proof = match proof.is_empty() {
            true => "[]".to_owned(),
            false => format!("[{}\n  ]", proof.join(",")),
        };
        let cosignatures = match self.cosignatures.is_empty() {
            true => String::new(),
            false => {
                let lines: Vec<String> = self
                    .cosignatures
                    .iter()
                    .map(|l| format!("\n    {}", string(l)))
                    .collect();
                format!(",\n  \"cosignatures\": [{}\n  ]", lines.join(","))
            }
        };
        format!(
            "{{\n  \"index\": {},\n  \"leaf_data\": {},\n  \"tree_size\": {},\n  \"proof\": {},\n  \
             \"checkpoint\": {},\n  \"log_verifier_key\": {}{cosignatures}\n}}\n",
            self.index,
            string(&STANDARD.encode(&self.leaf_data)),
            self.tree_size,
            proof,
            string(&self.checkpoint),
            string(&self.log_verifier_key),
        )
        .into_bytes()
    }

    /// Reads a bundle strictly: exactly the six members, no duplicate or case-variant keys,
    /// integers that fit a `u64`, standard padded base64, proof hashes of exactly 32 bytes.
    /// Nothing is verified; see [`ProofBundle::verify`].
    ///
    /// # Errors
    /// [`BundleError::Json`] or [`BundleError::Field`], naming the member.
    pub fn from_json(bytes: &[u8]) -> Result<ProofBundle, BundleError> {
        let root = strict_json::parse(bytes)?;
        let top = strict_json::object(&root, ROOT)?;
        strict_json::deny_unknown_fields(top, &FIELDS, ROOT)?;
        let proof = strict_json::require_array(top, "proof", ROOT)?;
        let proof_path = member_path(ROOT, "proof");
        if proof.len() > MAX_PROOF_HASHES {
            return Err(field(
                &proof_path,
                format!("has {} hashes; at most {MAX_PROOF_HASHES}", proof.len()),
            ));
        }
        let proof = proof
            .iter()
            .enumerate()
            .map(|(i, v)| read_hash(v, &element_path(&proof_path, i)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ProofBundle {
            index: read_u64(top, "index")?,
            leaf_data: read_base64(
                strict_json::require_str(top, "leaf_data", ROOT)?,
                "$.leaf_data",
            )?,
            tree_size: read_u64(top, "tree_size")?,
            proof,
            checkpoint: strict_json::require_str(top, "checkpoint", ROOT)?.to_owned(),
            log_verifier_key: strict_json::require_str(top, "log_verifier_key", ROOT)?.to_owned(),
            cosignatures: read_cosignatures(top)?,
        })
    }

    /// Verifies the bundle offline (see the module documentation for the steps), against the
    /// log key it names.
    ///
    /// # Errors
    /// The first check that fails.
    pub fn verify(&self) -> Result<VerifiedBundle, BundleError> {
        let checkpoint = self.verify_inclusion()?;
        let entry = decode_leaf(&self.leaf_data).map_err(|e| BundleError::Leaf(e.to_string()))?;
        // The server's own admission, references aside: they need the log.
        let admitted = admission::admit_logged(&entry, &KeyCache::default(), &Policy::default())
            .map_err(BundleError::Admission)?;
        let Some(declaration) = admitted.declaration else {
            let found = admission::admit::statement_predicate_type(&admitted.envelope.payload);
            return Err(BundleError::NotADeclaration(found.unwrap_or_default()));
        };
        Ok(VerifiedBundle {
            index: self.index,
            checkpoint,
            entry,
            envelope: admitted.envelope,
            keys: admitted.keys,
            declaration,
        })
    }

    /// [`verify`](Self::verify), and the witnesses: the checkpoint with the bundle's
    /// cosignatures must meet `policy`'s quorum (and the policy, if it lists logs, must list the
    /// bundle's log).
    ///
    /// # Errors
    /// The first check that fails; [`BundleError::Witnesses`] names who cosigned and who did not.
    pub fn verify_witnessed(&self, policy: &WitnessPolicy) -> Result<VerifiedBundle, BundleError> {
        let verified = self.verify()?;
        let log = LogVerifier::new(&self.log_verifier_key).map_err(BundleError::VerifierKey)?;
        if !policy.covers_log(&log) {
            return Err(BundleError::NotInPolicy(self.log_verifier_key.clone()));
        }
        policy
            .check(&self.cosigned_note())
            .map_err(BundleError::Witnesses)?;
        Ok(verified)
    }

    /// The checkpoint note with the cosignature lines appended.
    pub fn cosigned_note(&self) -> String {
        format!("{}{}", self.checkpoint, self.cosignatures.concat())
    }

    /// The log layer: the signed checkpoint and the inclusion of the leaf in it.
    fn verify_inclusion(&self) -> Result<Checkpoint, BundleError> {
        let verifier =
            LogVerifier::new(&self.log_verifier_key).map_err(BundleError::VerifierKey)?;
        let checkpoint = verifier
            .verify(&self.checkpoint)
            .map_err(BundleError::Checkpoint)?;
        if checkpoint.size != self.tree_size {
            return Err(BundleError::TreeSize {
                bundle: self.tree_size,
                checkpoint: checkpoint.size,
            });
        }
        let leaf = merkle::leaf_hash(&self.leaf_data);
        proof::verify_inclusion(
            self.index,
            checkpoint.size,
            &leaf,
            &self.proof,
            &checkpoint.root,
        )
        .map_err(|e| BundleError::Inclusion(e, self.index))?;
        Ok(checkpoint)
    }
}

fn field(path: &str, reason: impl Into<String>) -> BundleError {
    BundleError::Field {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// The optional `cosignatures` member: signature lines, each one `— <name> <base64>\n`.
fn read_cosignatures(top: &strict_json::Map) -> Result<Vec<String>, BundleError> {
    let path = member_path(ROOT, "cosignatures");
    let Some(value) = top.get("cosignatures") else {
        return Ok(Vec::new());
    };
    let lines = strict_json::array(value, &path)?;
    if lines.len() > MAX_COSIGNATURES {
        return Err(field(
            &path,
            format!("has {} lines; at most {MAX_COSIGNATURES}", lines.len()),
        ));
    }
    lines
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let at = element_path(&path, i);
            let line = strict_json::string(v, &at)?;
            let well_formed = line.ends_with('\n')
                && line.matches('\n').count() == 1
                && crate::tlog::cosignature::parse_line(line).is_ok();
            if !well_formed {
                return Err(field(
                    &at,
                    "is not a signature line \"— <name> <base64>\\n\"",
                ));
            }
            Ok(line.to_owned())
        })
        .collect()
}

fn read_u64(top: &strict_json::Map, key: &str) -> Result<u64, BundleError> {
    let path = member_path(ROOT, key);
    match strict_json::require(top, key, ROOT)? {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| field(&path, format!("{n} is not an integer from 0 to 2^64-1"))),
        _ => Err(field(&path, "must be a non-negative integer")),
    }
}

fn read_base64(text: &str, path: &str) -> Result<Vec<u8>, BundleError> {
    STANDARD
        .decode(text)
        .map_err(|e| field(path, format!("is not standard base64 with padding: {e}")))
}

fn read_hash(value: &Value, path: &str) -> Result<Hash, BundleError> {
    let bytes = read_base64(strict_json::string(value, path)?, path)?;
    merkle::hash_from_slice(&bytes).map_err(|_| {
        field(
            path,
            format!("decodes to {} bytes; a hash is 32", bytes.len()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> ProofBundle {
        ProofBundle {
            index: 3,
            leaf_data: b"leaf".to_vec(),
            tree_size: 4,
            proof: vec![Hash([1; 32]), Hash([2; 32])],
            checkpoint: "origin\n4\nAAAA\n\n\u{2014} origin sig\n".into(),
            log_verifier_key: "origin+01234567+AQ==".into(),
            cosignatures: vec![],
        }
    }

    #[test]
    fn json_round_trips() {
        let b = sample();
        assert_eq!(ProofBundle::from_json(&b.to_json()).unwrap(), b);
        let empty = ProofBundle {
            proof: vec![],
            ..sample()
        };
        assert_eq!(ProofBundle::from_json(&empty.to_json()).unwrap(), empty);
        let cosigned = ProofBundle {
            cosignatures: vec!["\u{2014} w.example AAAAAAAAAA==\n".into(); 2],
            ..sample()
        };
        assert_eq!(
            ProofBundle::from_json(&cosigned.to_json()).unwrap(),
            cosigned
        );
        assert!(!String::from_utf8(b.to_json())
            .unwrap()
            .contains("cosignatures"));
        let mut bad = serde_json::from_slice::<serde_json::Value>(&cosigned.to_json()).unwrap();
        bad["cosignatures"][1] = json!("not a line\n");
        let err = ProofBundle::from_json(bad.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("cosignatures[1]"), "{err}");
        let text = String::from_utf8(b.to_json()).unwrap();
        let order: Vec<usize> = FIELDS[..6]
            .iter()
            .map(|f| text.find(&format!("\"{f}\"")).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    }

    #[test]
    fn from_json_is_strict() {
        let mut v: Value = serde_json::from_slice(&sample().to_json()).unwrap();
        v["extra"] = json!(1);
        let err = ProofBundle::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("unknown field $.extra"), "{err}");

        let mut v: Value = serde_json::from_slice(&sample().to_json()).unwrap();
        v["index"] = json!(-1);
        assert!(ProofBundle::from_json(v.to_string().as_bytes()).is_err());
        v["index"] = json!(1.5);
        assert!(ProofBundle::from_json(v.to_string().as_bytes()).is_err());

        let mut v: Value = serde_json::from_slice(&sample().to_json()).unwrap();
        v["proof"] = json!([STANDARD.encode([0u8; 31])]);
        let err = ProofBundle::from_json(v.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("$.proof[0]"), "{err}");

        let dup = br#"{"index": 1, "Index": 2}"#;
        assert!(ProofBundle::from_json(dup).is_err());
    }

    #[test]
    fn verify_refuses_a_bad_log_key() {
        let err = sample().verify().unwrap_err();
        assert!(matches!(err, BundleError::VerifierKey(_)), "{err}");
    }
}

//! `glasslog witness`: a C2SP tlog-witness v1.0.0 witness for any C2SP log, glasslog or not.
//!
//! It trusts a list of log keys (the origin is the key name), keeps its own Ed25519
//! cosignature/v1 key (`DATA_DIR/witness.key`, created 0600 on first start), and answers
//! `POST /add-checkpoint`: it cosigns a checkpoint only if a trusted key signed it and it is
//! consistent with the latest checkpoint it cosigned of that log.
//!
//! The data path of a request: `witness/http.rs` (body, status codes) → `tlog/witness_protocol.rs`
//! (parse) → `witness/check.rs` (signature, then, under the origin's lock, growth) →
//! `witness/store.rs` (record fsynced) → `tlog/cosignature.rs` (the cosignature line).
//!
//! Invariant: for each origin, check-and-record is one critical section (a per-origin lock) and
//! the record is durable before the answer, so a witness never cosigns two checkpoints of one
//! log that are not consistent, across concurrent requests and crashes.

pub mod check;
pub mod http;
pub mod key;
pub mod store;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::tlog::cosignature::Cosigner;
use crate::tlog::witness_protocol::AddCheckpoint;
use check::{Record, Refusal, TrustedLogs};
use store::{WitnessStore, WitnessStoreError};

/// Errors of the witness: its setup, or its store (a request then gets 500, and nothing is
/// cosigned).
#[derive(Debug, thiserror::Error)]
pub enum WitnessError {
    #[error(transparent)]
    Key(#[from] crate::keyfile::KeyFileError),
    #[error(transparent)]
    Store(#[from] WitnessStoreError),
    #[error("the witness trusts no log: give --log VKEY (repeatable) or logs in the config file")]
    NoLogs,
    #[error(
        "{key} is missing, but the witness's records {db} exist: restore the key file from your \
         backup. A new key would be another witness, in no policy; none was created"
    )]
    MissingKey {
        key: std::path::PathBuf,
        db: std::path::PathBuf,
    },
}

/// How a witness is set up.
#[derive(Clone, Debug)]
pub struct WitnessConfig {
    /// Its key and its store.
    pub data_dir: PathBuf,
    /// Its key name on first start (later starts must give the same or none).
    pub name: Option<String>,
    /// The logs it witnesses.
    pub logs: TrustedLogs,
}

/// An open witness.
pub struct Witness {
    cosigner: Cosigner,
    logs: TrustedLogs,
    store: Arc<WitnessStore>,
    /// One lock per trusted origin: check and record are one critical section per log. A
    /// tokio mutex, because the record's fsync happens while it is held.
    locks: HashMap<String, tokio::sync::Mutex<()>>,
}

/// What a witness answers to a request it refuses, or could not serve.
#[derive(Debug, thiserror::Error)]
pub enum AddCheckpointError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Store(#[from] WitnessStoreError),
}

impl Witness {
    /// Opens (or creates) the witness's key and store.
    ///
    /// # Errors
    /// [`WitnessError`].
    pub fn open(config: WitnessConfig) -> Result<Witness, WitnessError> {
        if config.logs.is_empty() {
            return Err(WitnessError::NoLogs);
        }
        let (key_path, db) = (
            config.data_dir.join(key::KEY_FILE),
            config.data_dir.join(store::DB_DIR),
        );
        if db.exists() && !key_path.exists() {
            return Err(WitnessError::MissingKey { key: key_path, db });
        }
        let cosigner = key::open_or_create(&config.data_dir, config.name.as_deref())?;
        let store = Arc::new(WitnessStore::open(&config.data_dir)?);
        let locks = config
            .logs
            .origins()
            .map(|o| (o.to_string(), tokio::sync::Mutex::new(())))
            .collect();
        Ok(Witness {
            cosigner,
            logs: config.logs,
            store,
            locks,
        })
    }

    /// The witness's cosignature/v1 verifier key (type 0x04).
    pub fn verifier_key(&self) -> String {
        self.cosigner.public().to_vkey()
    }

    /// The logs it witnesses.
    pub fn logs(&self) -> &TrustedLogs {
        &self.logs
    }

    /// Handles one `add-checkpoint` body and returns the cosignature line(s), each ending in a
    /// newline. The record is durable before this returns `Ok`.
    ///
    /// # Errors
    /// [`AddCheckpointError`].
    pub async fn add_checkpoint(&self, body: &[u8]) -> Result<String, AddCheckpointError> {
        let req = AddCheckpoint::parse(body).map_err(Refusal::from)?;
        let signed = check::verify_signed(&self.logs, &req)?;
        let origin = &signed.checkpoint.origin;
        let _serialised = self.locks[origin.as_str()].lock().await;
        let store = Arc::clone(&self.store);
        let key = origin.clone();
        let recorded = tokio::task::spawn_blocking(move || store.get(&key))
            .await
            .expect("the store read does not panic")?;
        if let Err(refusal) = check::check_growth(recorded.as_ref(), &req, &signed) {
            if matches!(
                refusal,
                Refusal::SameSizeOtherRoot { .. } | Refusal::BadProof { .. }
            ) {
                // Possible evidence of a fork: keep the signed note in the log.
                tracing::warn!(%origin, %refusal, note = ?req.note, "refused an inconsistent checkpoint");
            }
            return Err(refusal.into());
        }
        let record = Record {
            size: signed.checkpoint.size,
            root: signed.checkpoint.root,
            note: req.note.clone(),
        };
        let store = Arc::clone(&self.store);
        let key = origin.clone();
        tokio::task::spawn_blocking(move || store.put(&key, &record))
            .await
            .expect("the store write does not panic")?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(self.cosigner.cosign(&signed.text, now))
    }
}

//! A verifying client of the log. It trusts nothing the server says that it can check: every
//! checkpoint's signature against a pinned verifier key, every size and root against the note,
//! every leaf hash against the leaf data, every proof against the verified root.
//!
//! Used by the CLI, the load generator and the end-to-end tests. The same checks over a log's
//! tiles instead of its server are [`tiles`]; [`source`] is either.

pub mod bundle;
pub mod source;
pub mod tiles;
pub mod trust_state;

use std::collections::VecDeque;
use std::sync::Mutex;

use tonic::transport::{Channel, Endpoint};

use crate::proto::{self, transparency_log_client::TransparencyLogClient};
use crate::tlog::checkpoint::{Checkpoint, CheckpointError};
use crate::tlog::merkle::{self, Hash, MerkleError};
use crate::tlog::note::LogVerifier;
use crate::tlog::policy::{Cosignatures, PolicyError, WitnessPolicy};
use crate::tlog::proof;

/// Errors of a verifying client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: String,
        source: tonic::transport::Error,
    },
    /// Boxed: a `tonic::Status` is some 180 bytes, and every `Result` of the client, the
    /// monitor and the audit would otherwise carry that size.
    #[error("server answered {}: {}", .0.code(), .0.message())]
    Rpc(Box<tonic::Status>),
    #[error("checkpoint does not verify: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("proof does not verify: {0}")]
    Proof(#[from] MerkleError),
    /// A witnessed checkpoint that does not meet the client's witness policy.
    #[error("witnessed checkpoint refused: {0}")]
    Policy(#[from] PolicyError),
    /// The server's answer contradicts itself or the request.
    #[error("server answer is inconsistent: {0}")]
    Mismatch(String),
    /// The log's tiles could not be read, or contradict its checkpoint. Boxed for the size, as
    /// `Rpc`.
    #[error("{0}")]
    Tiles(Box<tiles::TilesError>),
}

impl From<tonic::Status> for ClientError {
    fn from(status: tonic::Status) -> ClientError {
        ClientError::Rpc(Box::new(status))
    }
}

impl From<tiles::TilesError> for ClientError {
    fn from(e: tiles::TilesError) -> ClientError {
        ClientError::Tiles(Box::new(e))
    }
}

/// A submission whose reply verified.
#[derive(Clone, Debug)]
pub struct Submitted {
    pub index: u64,
    pub duplicate: bool,
    /// The logged leaf, as hashed.
    pub leaf_data: Vec<u8>,
    /// The verified checkpoint that covers the entry, and its signed note.
    pub checkpoint: Checkpoint,
    pub note: String,
    /// The inclusion proof against `checkpoint`.
    pub proof: Vec<Hash>,
}

/// Notes verified recently; replies of one batch share their note, so most replies cost a string
/// comparison instead of a signature check.
const NOTE_CACHE: usize = 16;

/// A client bound to one log, identified by its pinned verifier key.
pub struct LogClient {
    rpc: TransparencyLogClient<Channel>,
    verifier: LogVerifier,
    verified_notes: Mutex<VecDeque<(String, Checkpoint)>>,
}

impl Clone for LogClient {
    /// Another client on the same channel, with a copy of the verified notes.
    fn clone(&self) -> LogClient {
        let notes = self
            .verified_notes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        LogClient {
            rpc: self.rpc.clone(),
            verifier: self.verifier.clone(),
            verified_notes: Mutex::new(notes),
        }
    }
}

/// A gRPC endpoint for `url`: `http://` in plaintext, `https://` over TLS with the system's
/// root certificates (a private CA's certificate can be given in the file that `SSL_CERT_FILE`
/// names, as for other TLS clients).
///
/// # Errors
/// The URL is not valid.
pub fn endpoint(url: &str) -> Result<Endpoint, tonic::transport::Error> {
    endpoint_with_identity(url, None)
}

/// [`endpoint`], presenting `identity` (a client certificate and its key) in the TLS handshake
/// of an `https://` URL: how a publisher authenticates to a log that accepts submissions only
/// from its publishers' CA (`serve --tls-client-ca`). Ignored for `http://`; callers refuse
/// that combination with their own message.
///
/// # Errors
/// The URL is not valid.
pub fn endpoint_with_identity(
    url: &str,
    identity: Option<tonic::transport::Identity>,
) -> Result<Endpoint, tonic::transport::Error> {
    let endpoint = Endpoint::from_shared(url.to_string())?;
    if url.starts_with("https://") {
        let mut tls = tonic::transport::ClientTlsConfig::new().with_native_roots();
        if let Some(identity) = identity {
            tls = tls.identity(identity);
        }
        return endpoint.tls_config(tls);
    }
    Ok(endpoint)
}

impl LogClient {
    /// Connects to `url` (e.g. `http://127.0.0.1:50051`) for the log whose key is `verifier`.
    ///
    /// # Errors
    /// [`ClientError::Connect`] if the address is invalid or nothing answers.
    pub async fn connect(url: &str, verifier: LogVerifier) -> Result<LogClient, ClientError> {
        let connect_err = |source| ClientError::Connect {
            url: url.to_string(),
            source,
        };
        let channel = endpoint(url)
            .map_err(connect_err)?
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(connect_err)?;
        Ok(LogClient::with_channel(channel, verifier))
    }

    /// A client over an existing channel.
    pub fn with_channel(channel: Channel, verifier: LogVerifier) -> LogClient {
        let rpc = TransparencyLogClient::new(channel).max_decoding_message_size(64 << 20);
        LogClient {
            rpc,
            verifier,
            verified_notes: Mutex::new(VecDeque::new()),
        }
    }

    /// The raw rpc client, for calls whose answers the caller checks itself.
    pub fn rpc(&self) -> TransparencyLogClient<Channel> {
        self.rpc.clone()
    }

    /// The pinned verifier.
    pub fn verifier(&self) -> &LogVerifier {
        &self.verifier
    }

    /// Verifies a served checkpoint: the note's signature, and that the convenience `size` and
    /// `root_hash` fields equal the note's.
    ///
    /// # Errors
    /// A bad signature or body, or fields that disagree with the note.
    pub fn verify_checkpoint(
        &self,
        sc: &proto::SignedCheckpoint,
    ) -> Result<Checkpoint, ClientError> {
        let checkpoint = self.verify_note(&sc.note)?;
        check_checkpoint_fields(sc, &checkpoint)?;
        Ok(checkpoint)
    }

    fn verify_note(&self, note: &str) -> Result<Checkpoint, ClientError> {
        let mut cache = self
            .verified_notes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some((_, c)) = cache.iter().find(|(n, _)| n == note) {
            return Ok(c.clone());
        }
        drop(cache);
        let checkpoint = self.verifier.verify(note)?;
        cache = self
            .verified_notes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if cache.len() == NOTE_CACHE {
            cache.pop_front();
        }
        cache.push_back((note.to_string(), checkpoint.clone()));
        Ok(checkpoint)
    }

    /// The latest checkpoint, verified.
    ///
    /// # Errors
    /// Rpc failures or a checkpoint that does not verify.
    pub async fn checkpoint(&self) -> Result<(Checkpoint, String), ClientError> {
        let sc = self
            .rpc()
            .get_checkpoint(proto::GetCheckpointRequest { witnessed: false })
            .await?
            .into_inner();
        Ok((self.verify_checkpoint(&sc)?, sc.note))
    }

    /// The latest witnessed checkpoint (`GetCheckpoint` with `witnessed`), trusted only if the
    /// log's signature verifies and its cosignatures meet `policy`'s quorum.
    ///
    /// # Errors
    /// Rpc failures (FAILED_PRECONDITION: the log has no witness policy; NOT_FOUND: nothing
    /// witnessed yet), a checkpoint that does not verify, or one below the quorum (the error
    /// names who signed and who did not).
    pub async fn witnessed_checkpoint(
        &self,
        policy: &WitnessPolicy,
    ) -> Result<(Checkpoint, String, Cosignatures), ClientError> {
        let sc = self
            .rpc()
            .get_checkpoint(proto::GetCheckpointRequest { witnessed: true })
            .await?
            .into_inner();
        let checkpoint = self.verify_checkpoint(&sc)?;
        let cosignatures = policy.check(&sc.note)?;
        Ok((checkpoint, sc.note, cosignatures))
    }

    /// Submits a DSSE envelope and verifies the reply: checkpoint, leaf hash and inclusion proof.
    ///
    /// # Errors
    /// Rpc failures (the server refused the envelope) or a reply that does not verify.
    pub async fn submit(
        &self,
        envelope: Vec<u8>,
        public_keys: Vec<String>,
    ) -> Result<Submitted, ClientError> {
        let reply = self
            .rpc()
            .submit(proto::SubmitRequest {
                envelope,
                public_keys,
            })
            .await?
            .into_inner();
        self.verify_submit_response(reply)
    }

    /// Verifies a SubmitResponse, offline.
    ///
    /// # Errors
    /// Missing parts, or any part that does not verify.
    pub fn verify_submit_response(
        &self,
        reply: proto::SubmitResponse,
    ) -> Result<Submitted, ClientError> {
        let sc = reply
            .checkpoint
            .ok_or_else(|| ClientError::Mismatch("reply has no checkpoint".into()))?;
        let proof = reply
            .proof
            .ok_or_else(|| ClientError::Mismatch("reply has no proof".into()))?;
        let checkpoint = self.verify_checkpoint(&sc)?;
        if proof.index != reply.index || proof.tree_size != checkpoint.size {
            return Err(ClientError::Mismatch(format!(
                "proof is for index {} in size {}, reply says index {} under a checkpoint of size {}",
                proof.index, proof.tree_size, reply.index, checkpoint.size
            )));
        }
        let leaf_hash = merkle::leaf_hash(&reply.leaf_data);
        if proof.leaf_hash != leaf_hash.0 {
            return Err(ClientError::Mismatch(
                "proof's leaf hash is not the hash of the leaf data".into(),
            ));
        }
        let hashes = decode_hashes(&proof.hashes)?;
        proof::verify_inclusion(
            reply.index,
            checkpoint.size,
            &leaf_hash,
            &hashes,
            &checkpoint.root,
        )?;
        Ok(Submitted {
            index: reply.index,
            duplicate: reply.duplicate,
            leaf_data: reply.leaf_data,
            checkpoint,
            note: sc.note,
            proof: hashes,
        })
    }

    /// Fetches and verifies a consistency proof between two verified checkpoints.
    ///
    /// # Errors
    /// Rpc failures or a proof that does not verify.
    pub async fn verify_consistency(
        &self,
        old: &Checkpoint,
        new: &Checkpoint,
    ) -> Result<(), ClientError> {
        if old.size == 0 {
            // Every tree extends the empty tree; there is nothing to prove.
            return Ok(());
        }
        let req = proto::GetConsistencyProofRequest {
            from_size: old.size,
            to_size: new.size,
        };
        let proof = self.rpc().get_consistency_proof(req).await?.into_inner();
        verify_consistency_reply(&proof, old.size, new.size, &old.root, &new.root)
    }

    /// Fetches and verifies the inclusion of `leaf_data` at `index` in a verified checkpoint,
    /// and returns the proof.
    ///
    /// # Errors
    /// Rpc failures or a proof that does not verify.
    pub async fn verify_inclusion(
        &self,
        index: u64,
        leaf_data: &[u8],
        checkpoint: &Checkpoint,
    ) -> Result<Vec<Hash>, ClientError> {
        let req = proto::GetInclusionProofRequest {
            leaf: Some(proto::get_inclusion_proof_request::Leaf::Index(index)),
            tree_size: checkpoint.size,
        };
        let proof = self.rpc().get_inclusion_proof(req).await?.into_inner();
        let hashes = decode_hashes(&proof.hashes)?;
        let leaf_hash = merkle::leaf_hash(leaf_data);
        proof::verify_inclusion(
            index,
            checkpoint.size,
            &leaf_hash,
            &hashes,
            &checkpoint.root,
        )?;
        Ok(hashes)
    }
}

/// Checks that a served checkpoint's convenience `size` and `root_hash` fields are those of its
/// verified note.
///
/// # Errors
/// [`ClientError::Mismatch`] naming both.
pub fn check_checkpoint_fields(
    sc: &proto::SignedCheckpoint,
    checkpoint: &Checkpoint,
) -> Result<(), ClientError> {
    if checkpoint.size != sc.size || checkpoint.root.0.as_slice() != sc.root_hash.as_slice() {
        return Err(ClientError::Mismatch(format!(
            "checkpoint fields (size {}, root {}) differ from its signed note (size {}, root {})",
            sc.size,
            hex::encode(&sc.root_hash),
            checkpoint.size,
            checkpoint.root
        )));
    }
    Ok(())
}

/// Checks, offline, a `GetConsistencyProof` reply asked for `from..to`: it is for those sizes and
/// proves the tree of root `from_root` a prefix of the tree of root `to_root` (RFC 9162
/// §2.1.4.2).
///
/// # Errors
/// [`ClientError::Mismatch`] for a reply about other sizes; [`ClientError::Proof`] for a
/// malformed hash or a proof that does not verify.
pub fn verify_consistency_reply(
    proof: &proto::ConsistencyProof,
    from: u64,
    to: u64,
    from_root: &Hash,
    to_root: &Hash,
) -> Result<(), ClientError> {
    if proof.from_size != from || proof.to_size != to {
        return Err(ClientError::Mismatch(format!(
            "asked for a proof from {from} to {to}, got one from {} to {}",
            proof.from_size, proof.to_size
        )));
    }
    let hashes = decode_hashes(&proof.hashes)?;
    Ok(proof::verify_consistency(
        from, to, from_root, to_root, &hashes,
    )?)
}

/// Decodes proof hashes, each exactly 32 bytes.
///
/// # Errors
/// [`MerkleError::MalformedHash`] for any other length.
pub fn decode_hashes(raw: &[Vec<u8>]) -> Result<Vec<Hash>, MerkleError> {
    raw.iter().map(|h| merkle::hash_from_slice(h)).collect()
}

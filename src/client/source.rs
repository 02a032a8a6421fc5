//! Where a checking command reads a log from: its server over gRPC (`--server URL`,
//! [`LogClient`]) or its tiles (`--tiles URL`, [`TileClient`]: the server's HTTP listener, its
//! published bucket or directory, a CDN, a mirror). `audit`, `verify` and `monitor` make the same
//! checks on either and report them in the same findings ([`crate::check`]).
//!
//! What the two have in common is here: the checkpoint (verified under the pinned key, or
//! against a witness policy), inclusion and consistency proofs (verified by
//! [`crate::tlog::proof`] whoever computed them), and, through [`ProvesConsistency`], what the
//! split-view state needs ([`crate::client::trust_state`]). How entries are read differs, and
//! stays with each command: GetEntries, Tail and Search over gRPC; entry bundles over tiles
//! (`audit/tiles.rs`, `monitor/follow/poll.rs`, `verify/scan.rs`).

use std::future::Future;

use super::tiles::{TileClient, TilesError};
use super::{ClientError, LogClient};
use crate::tlog::checkpoint::Checkpoint;
use crate::tlog::merkle::{self, Hash};
use crate::tlog::note::LogVerifier;
use crate::tlog::policy::{Cosignatures, WitnessPolicy};
use crate::tlog::proof;

/// A log's source of checked answers.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)] // one per command; boxing would only add a pointer chase
pub enum Source {
    /// The log's server, over gRPC.
    Server(LogClient),
    /// The log's tiles.
    Tiles(TileClient),
}

/// What the split-view check needs of a log: the pinned key, and a consistency proof between two
/// verified checkpoints, checked.
pub trait ProvesConsistency {
    /// The pinned verifier.
    fn verifier(&self) -> &LogVerifier;

    /// Proves, and checks, that `old` is a prefix of `new` (both verified).
    ///
    /// # Errors
    /// [`ClientError::Proof`] or [`ClientError::Mismatch`] for a proof that does not verify (the
    /// two trees do not fit together); other errors when no proof could be had.
    fn verify_consistency(
        &self,
        old: &Checkpoint,
        new: &Checkpoint,
    ) -> impl Future<Output = Result<(), ClientError>> + Send;
}

impl ProvesConsistency for LogClient {
    fn verifier(&self) -> &LogVerifier {
        LogClient::verifier(self)
    }

    fn verify_consistency(
        &self,
        old: &Checkpoint,
        new: &Checkpoint,
    ) -> impl Future<Output = Result<(), ClientError>> + Send {
        LogClient::verify_consistency(self, old, new)
    }
}

impl ProvesConsistency for TileClient {
    fn verifier(&self) -> &LogVerifier {
        TileClient::verifier(self)
    }

    /// The proof computed from `new`'s tiles, authenticated against `new`'s root, then checked
    /// against both roots: tiles that authenticate and a proof that fails are the log's two
    /// trees that do not fit together ([`ClientError::Proof`]), not a damaged mirror.
    async fn verify_consistency(
        &self,
        old: &Checkpoint,
        new: &Checkpoint,
    ) -> Result<(), ClientError> {
        if old.size == 0 {
            // Every tree extends the empty tree; there is nothing to prove.
            return Ok(());
        }
        let hashes = self
            .prove_consistency(old.size, new)
            .await
            .map_err(|e| match e {
                TilesError::Missing { .. } => TilesError::CannotProve {
                    url: self.url().into(),
                    from: old.size,
                    to: new.size,
                    source: Box::new(e),
                },
                e => e,
            })?;
        Ok(proof::verify_consistency(
            old.size, new.size, &old.root, &new.root, &hashes,
        )?)
    }
}

impl ProvesConsistency for Source {
    fn verifier(&self) -> &LogVerifier {
        match self {
            Source::Server(c) => c.verifier(),
            Source::Tiles(t) => t.verifier(),
        }
    }

    async fn verify_consistency(
        &self,
        old: &Checkpoint,
        new: &Checkpoint,
    ) -> Result<(), ClientError> {
        match self {
            Source::Server(c) => c.verify_consistency(old, new).await,
            Source::Tiles(t) => ProvesConsistency::verify_consistency(t, old, new).await,
        }
    }
}

impl Source {
    /// The latest checkpoint, verified under the pinned key, and its note.
    ///
    /// # Errors
    /// The source could not be read, or the checkpoint does not verify.
    pub async fn checkpoint(&self) -> Result<(Checkpoint, String), ClientError> {
        match self {
            Source::Server(c) => c.checkpoint().await,
            Source::Tiles(t) => Ok(t.checkpoint().await?),
        }
    }

    /// The latest witnessed checkpoint, trusted only if its log signature verifies and its
    /// cosignatures meet `policy`: `GetCheckpoint { witnessed }` over gRPC; over tiles, the
    /// tiles' checkpoint (a log with a witness policy publishes its witnessed checkpoint).
    ///
    /// # Errors
    /// The source could not be read; a checkpoint that does not verify or is below the quorum.
    pub async fn witnessed_checkpoint(
        &self,
        policy: &WitnessPolicy,
    ) -> Result<(Checkpoint, String, Cosignatures), ClientError> {
        match self {
            Source::Server(c) => c.witnessed_checkpoint(policy).await,
            Source::Tiles(t) => Ok(t.witnessed_checkpoint(policy).await?),
        }
    }

    /// Proves, and checks, the inclusion of `leaf_data` at `index` in `checkpoint` (verified):
    /// `GetInclusionProof` over gRPC, computed from authenticated tiles over tiles. Returns the
    /// proof.
    ///
    /// # Errors
    /// No proof could be had, or it does not verify.
    pub async fn verify_inclusion(
        &self,
        index: u64,
        leaf_data: &[u8],
        checkpoint: &Checkpoint,
    ) -> Result<Vec<Hash>, ClientError> {
        let hashes = match self {
            Source::Server(c) => return c.verify_inclusion(index, leaf_data, checkpoint).await,
            Source::Tiles(t) => t.prove_inclusion(checkpoint, index).await?,
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bucket::S3Options;
    use crate::client::tiles::testing::TiledLog;
    use crate::tlog::cosignature::Cosigner;
    use crate::tlog::tiles::CHECKPOINT_PATH;

    #[tokio::test]
    async fn tiles_are_held_to_a_witness_policy_and_prove_what_they_serve() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = TiledLog::new();
        log.append_n(300, "a");
        log.publish(dir.path());
        let witness = Cosigner::new(
            "w1.example",
            ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
        )
        .unwrap();
        let policy = format!("witness A {}\nquorum A\n", witness.public().to_vkey());
        let policy = WitnessPolicy::parse(policy.as_bytes()).unwrap();
        let verifier = LogVerifier::new(&log.signer.verifier_key()).unwrap();
        let url = format!("file://{}", dir.path().display());
        let source =
            Source::Tiles(TileClient::open(&url, &S3Options::default(), verifier).unwrap());

        // The log's signature alone does not meet the quorum; its witness's cosignature does.
        let refused = source.witnessed_checkpoint(&policy).await;
        assert!(
            matches!(&refused, Err(ClientError::Tiles(e)) if matches!(**e, TilesError::Policy { .. })),
            "{:?}",
            refused.map(|r| r.0)
        );
        let path = dir.path().join(CHECKPOINT_PATH);
        let note = std::fs::read_to_string(&path).unwrap();
        let body = note.split_once("\n\n").unwrap().0.to_string() + "\n";
        std::fs::write(&path, note + &witness.cosign(&body, 1_000)).unwrap();
        let (checkpoint, _, _) = source.witnessed_checkpoint(&policy).await.unwrap();
        assert_eq!(checkpoint, log.checkpoint());

        // Proofs from the tiles, checked like a server's.
        source
            .verify_inclusion(7, &log.leaves[7], &checkpoint)
            .await
            .unwrap();
        assert!(matches!(
            source
                .verify_inclusion(7, b"another leaf", &checkpoint)
                .await,
            Err(ClientError::Proof(_))
        ));
        let old = Checkpoint {
            size: 100,
            root: merkle::root_hash(100, &log.tree).unwrap(),
            ..checkpoint.clone()
        };
        ProvesConsistency::verify_consistency(&source, &old, &checkpoint)
            .await
            .unwrap();
        let other = Checkpoint {
            root: merkle::leaf_hash(b"another tree"),
            ..old
        };
        assert!(matches!(
            ProvesConsistency::verify_consistency(&source, &other, &checkpoint).await,
            Err(ClientError::Proof(_))
        ));

        // A newer tree, accepted elsewhere, that these tiles do not have: no proof either way.
        log.append_n(10, "a");
        let newer = log.checkpoint();
        let behind = ProvesConsistency::verify_consistency(&source, &checkpoint, &newer).await;
        assert!(
            matches!(
                &behind,
                Err(ClientError::Tiles(e)) if matches!(
                    **e,
                    TilesError::CannotProve { from: 300, to: 310, .. }
                )
            ),
            "{behind:?}"
        );
    }
}

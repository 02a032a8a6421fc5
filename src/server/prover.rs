//! Proofs served from storage: inclusion (RFC 9162 §2.1.3) and consistency (§2.1.4).
//!
//! The prover answers for any tree size up to a `limit` that the caller takes from the latest
//! published checkpoint, so it never reads past what is durable and signed; it never waits for
//! the sequencer. An inclusion proof reads at most ⌈log₂ n⌉ + 1 stored hashes, a consistency
//! proof about twice that: those of the tree's upper levels from the store's memory once read
//! ([`Store::hashes`]), the others in one RocksDB multi-get.
//!
//! A storage failure reaches the caller as [`ProofError::Storage`] with its type intact, not as
//! the string that the tree math's [`HashReader`] interface carries.

use std::cell::RefCell;
use std::sync::Arc;

use crate::server::storage::{StorageError, Store};
use crate::tlog::merkle::{self, Hash, HashReader, HashReaderError, MerkleError};

/// Errors of proof requests; each names the values that made the request invalid.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error("index {index} is not in a tree of size {tree_size}")]
    IndexOutOfRange { index: u64, tree_size: u64 },
    #[error("tree size {requested} is larger than the latest checkpoint's size {latest}")]
    TreeSizeTooLarge { requested: u64, latest: u64 },
    #[error("from_size {from_size} is larger than to_size {to_size}")]
    SizeOrder { from_size: u64, to_size: u64 },
    #[error(
        "from_size must be at least 1: a consistency proof from the empty tree proves nothing"
    )]
    EmptyFromSize,
    #[error("leaf hash must be 32 bytes, got {0}")]
    MalformedLeafHash(usize),
    #[error("no entry with leaf hash {0} is in the log")]
    UnknownLeafHash(Hash),
    #[error("the entry with leaf hash {leaf_hash} is at index {index}, not in a tree of size {tree_size}")]
    LeafNotInTree {
        leaf_hash: Hash,
        index: u64,
        tree_size: u64,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("proof computation failed: {0}")]
    Merkle(#[from] MerkleError),
}

/// An inclusion proof as served.
#[derive(Clone, Debug, PartialEq)]
pub struct Inclusion {
    pub index: u64,
    pub tree_size: u64,
    pub leaf_hash: Hash,
    /// Leaf-to-root audit path.
    pub hashes: Vec<Hash>,
}

/// Computes proofs from the store.
#[derive(Clone)]
pub struct Prover {
    store: Arc<Store>,
}

impl Prover {
    pub fn new(store: Arc<Store>) -> Prover {
        Prover { store }
    }

    /// Resolves a requested tree size (0 = `latest`) against the latest published size.
    ///
    /// # Errors
    /// [`ProofError::TreeSizeTooLarge`] beyond `latest`.
    pub fn resolve_size(requested: u64, latest: u64) -> Result<u64, ProofError> {
        match requested {
            0 => Ok(latest),
            n if n > latest => Err(ProofError::TreeSizeTooLarge {
                requested: n,
                latest,
            }),
            n => Ok(n),
        }
    }

    /// The inclusion proof of entry `index` in the tree of `tree_size` leaves.
    ///
    /// # Errors
    /// `index >= tree_size`, or a storage failure.
    pub fn inclusion_by_index(&self, index: u64, tree_size: u64) -> Result<Inclusion, ProofError> {
        if index >= tree_size {
            return Err(ProofError::IndexOutOfRange { index, tree_size });
        }
        // The leaf hash is the stored hash at level 0.
        let leaf_hash = self.store.hashes(&[merkle::stored_hash_index(0, index)])?[0];
        let hashes = self.with_reader(|r| merkle::prove_inclusion(index, tree_size, r))?;
        Ok(Inclusion {
            index,
            tree_size,
            leaf_hash,
            hashes,
        })
    }

    /// The inclusion proof of the entry whose leaf hash is `leaf_hash`.
    ///
    /// # Errors
    /// A malformed or unknown hash, an entry beyond `tree_size`, or a storage failure.
    pub fn inclusion_by_hash(
        &self,
        leaf_hash: &[u8],
        tree_size: u64,
    ) -> Result<Inclusion, ProofError> {
        let leaf_hash = merkle::hash_from_slice(leaf_hash)
            .map_err(|_| ProofError::MalformedLeafHash(leaf_hash.len()))?;
        let index = self
            .store
            .index_of_leaf(&leaf_hash)?
            .ok_or(ProofError::UnknownLeafHash(leaf_hash))?;
        if index >= tree_size {
            // The entry may exist in a later tree only; say so rather than "not found".
            return Err(ProofError::LeafNotInTree {
                leaf_hash,
                index,
                tree_size,
            });
        }
        self.inclusion_by_index(index, tree_size)
    }

    /// The consistency proof from `from_size` to `to_size` (both already resolved).
    ///
    /// # Errors
    /// `from_size == 0`, `from_size > to_size`, or a storage failure.
    pub fn consistency(&self, from_size: u64, to_size: u64) -> Result<Vec<Hash>, ProofError> {
        if from_size == 0 {
            return Err(ProofError::EmptyFromSize);
        }
        if from_size > to_size {
            return Err(ProofError::SizeOrder { from_size, to_size });
        }
        self.with_reader(|r| merkle::prove_consistency(from_size, to_size, r))
    }

    /// Runs a proof computation over the store, keeping the first storage error it hits.
    fn with_reader<T>(
        &self,
        prove: impl FnOnce(&StoreReader<'_>) -> Result<T, MerkleError>,
    ) -> Result<T, ProofError> {
        let reader = StoreReader {
            store: &self.store,
            failure: RefCell::new(None),
        };
        prove(&reader).map_err(|e| match reader.failure.take() {
            Some(storage) => ProofError::Storage(storage),
            None => ProofError::Merkle(e),
        })
    }
}

/// The store as a [`HashReader`] that remembers the [`StorageError`] behind a failed read.
struct StoreReader<'a> {
    store: &'a Store,
    failure: RefCell<Option<StorageError>>,
}

impl HashReader for StoreReader<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, HashReaderError> {
        self.store.hashes(indexes).map_err(|e| {
            let message = e.to_string();
            self.failure.borrow_mut().get_or_insert(e);
            HashReaderError::InvalidInput(message)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storage_failure_keeps_its_type() {
        let dir = tempfile::tempdir().unwrap();
        let prover = Prover::new(Arc::new(Store::open(dir.path()).unwrap()));
        // No hashes are stored: the read of the audit path fails in storage.
        assert!(matches!(
            prover.consistency(1, 4),
            Err(ProofError::Storage(StorageError::Corrupt(_)))
        ));
        assert!(matches!(
            prover.inclusion_by_index(1, 4),
            Err(ProofError::Storage(StorageError::Corrupt(_)))
        ));
    }
}

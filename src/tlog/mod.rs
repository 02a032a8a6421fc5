//! The transparency-log formats: RFC 6962 / RFC 9162 Merkle trees ([`merkle`]: hashing, stored
//! hashes, proving), proof verification ([`proof`]), compact ranges ([`compact`]), C2SP
//! tlog-checkpoint bodies ([`checkpoint`]) and the C2SP signed notes that carry them ([`note`]),
//! witness cosignatures ([`cosignature`]), witness policies ([`policy`]) and the bodies of the
//! witness protocol ([`witness_protocol`]).
//!
//! Pure computation: no I/O, no tokio, no storage. Hashes are reached through
//! [`merkle::HashReader`], whose implementations (RocksDB, an in-memory tree, a sequencer's
//! overlay) live with their owners.

pub mod checkpoint;
pub mod compact;
pub mod cosignature;
pub mod merkle;
pub mod note;
pub mod policy;
pub mod proof;
pub mod tiles;
pub mod witness_protocol;

#[cfg(test)]
mod tests;

//! The transparency-log formats: RFC 6962 / RFC 9162 Merkle trees ([`merkle`]: hashing, stored
//! hashes, proving), proof verification ([`proof`]), compact ranges ([`compact`]), C2SP
//! tlog-checkpoint bodies ([`checkpoint`]) and the C2SP signed notes that carry them ([`note`]).
//!
//! Pure computation: no I/O, no tokio, no storage. Hashes are reached through
//! [`merkle::HashReader`], whose implementations (RocksDB, an in-memory tree, a sequencer's
//! overlay) live with their owners.

pub mod checkpoint;
pub mod compact;
pub mod merkle;
pub mod note;
pub mod proof;

#[cfg(test)]
mod tests;

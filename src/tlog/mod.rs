//! The transparency-log formats: RFC 6962 / RFC 9162 Merkle trees and proofs, C2SP
//! tlog-checkpoint bodies and their C2SP signed notes.
//!
//! Pure computation: no I/O, no tokio, no storage. Hashes are reached through
//! [`merkle::HashReader`], whose implementations (RocksDB, an in-memory tree, a sequencer's
//! overlay) live with their owners.

pub mod checkpoint;
pub mod merkle;

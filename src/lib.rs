//! glasslog: a transparency log for AI model releases and training-data declarations.
//!
//! # Layout
//!
//! The folders are the layers; each says in its module doc what it is and what it is not.
//!
//! - [`tlog`]: RFC 6962 / RFC 9162 Merkle hashing and proofs, C2SP tlog-checkpoint bodies and
//!   their C2SP signed notes. Pure computation: no I/O, no tokio.
//! - [`admission`]: what the log admits: strict JSON, publisher keys, DSSE envelopes,
//!   declarations and manifests, and the rules between a declaration and the entries it
//!   references. The server, `audit`, `monitor` and `verify` all judge entries with it.
//! - [`entry`]: the logged leaf (`LogEntry`), the deduplication key, the keys as the log writes them.
//! - [`server`]: configuration, the log key, the sequencer, storage, the prover, search, the
//!   gRPC service and Tail stream, and the one mapping of errors to gRPC status codes.
//! - [`client`]: a verifying client of a log's server or of its tiles (C2SP tlog-tiles), proof
//!   bundles, and the split-view trust state.
//! - [`check`]: what `audit`, `verify` and `monitor` share: the findings and their one writer.
//! - [`audit`], [`monitor`], [`verify`]: checking a log from the outside.
//! - [`cli`]: argument parsing and dispatch of the `glasslog` command line.
//! - [`files`]: atomic file writes and `FILE.suffix` paths.
//! - [`restore`] and [`backup`]: a log's database rebuilt from its tiles, or copied from a
//!   backup and verified.
//!
//! The data path of an append reads from the file names:
//! `server/service.rs` → `admission/` (`dsse.rs`, `keys/`, `declaration/`, `manifest/`,
//! references) → `server/sequencer.rs` (group commit) → `server/storage/` (one atomic RocksDB
//! batch) → `tlog/note.rs` (signed checkpoint) → reply with `server/prover.rs`'s proof.
//! A proof: `server/service.rs` → `server/prover.rs` → `server/storage/` → `tlog/merkle.rs`.
//! A monitored entry: `monitor/follow.rs` (I/O) → `monitor/examine.rs` (admission re-run) →
//! `monitor/engine.rs` (decisions) → `monitor/rules.rs` → `check/` (findings printed).

// The error enums of the client side (monitor, audit, tiles) are 128–136 bytes: their variants
// carry the URL, path, size and hashes their messages name. They are built on failure only, and
// the hot paths' profiles (docs/performance.md) show no cost from a `Result`'s size.
// `ClientError` boxes its two largest, `tonic::Status` and `TilesError`, which most errors carry.
#![allow(clippy::result_large_err)]

pub mod admission;
pub mod audit;
pub mod backup;
pub mod bucket;
pub mod check;
pub mod cli;
pub mod client;
pub mod entry;
pub mod files;
pub mod keyfile;
pub mod monitor;
pub mod restore;
pub mod server;
pub mod tlog;
pub mod verify;
pub mod witness;

/// Types generated from `proto/glasslog/v1/log.proto`.
pub mod proto {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("glasslog.v1");

    /// The encoded `FileDescriptorSet` of the proto files, served by gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/glasslog_descriptor.bin"));
}

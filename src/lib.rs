//! glasslog: a transparency log for AI model releases and training-data declarations.
//!
//! # Layout
//!
//! The data path of an append reads from the file names:
//! `server` (gRPC request) → `dsse` + `keys` (validation) → `entry` (the leaf) → `sequencer`
//! (group commit) → `storage` (one atomic RocksDB batch) → `checkpoint` (signed tree head) → reply.
//! The data path of a proof: `server` → `prover` → `storage` → `merkle` → reply.
//!
//! - [`merkle`]: RFC 6962 hashing, proofs and their verification. Pure math, no I/O.
//! - [`checkpoint`]: C2SP tlog-checkpoint bodies in C2SP signed notes; the log's signer and verifier.
//! - [`strict_json`]: JSON parsing that refuses what other decoders would read differently.
//! - [`keys`]: publisher public and private keys (Ed25519, ECDSA P-256), key ids.
//! - [`dsse`]: DSSE envelopes: parsing, PAE, signature verification.
//! - [`entry`]: the logged leaf (`LogEntry`) and the deduplication key.
//! - [`declaration`]: model-release and training-data declarations (in-toto statements) and their validation.
//! - [`manifest`]: the OpenSSF Model Signing manifest of a directory and its root digest.
//! - [`storage`]: the RocksDB store, its key schema and its durability contract.
//! - [`sequencer`]: the single task that owns the tree and group-commits appends.
//! - [`search`]: the search index's keys and queries (written atomically with the entries).
//! - [`prover`]: inclusion and consistency proofs read from a committed checkpoint.
//! - [`server`]: the tonic service, the Tail stream and the one mapping of errors to gRPC status.
//! - [`logkey`]: the log's signing key file and origin, created on first start.
//! - [`config`]: server configuration (file and flags).
//! - [`client`]: a verifying client, used by the CLI, the benchmark and the tests.
//! - [`bundle`]: proof bundles, which prove offline that a declaration is in a log.
//! - [`monitor`]: follows a log with Tail, verifies it, and reports what the log or publishers did wrong.
//! - [`trust_state`]: split-view protection: the last checkpoint a client accepted for a log.
//! - [`check`]: the findings `audit`, `verify` and `monitor` report, and the one place they are written.
//! - [`audit`]: checking a log from the outside: a whole-log audit, and verifying a declaration.
//! - [`cli`]: the `glasslog` command line.

pub mod admission;
pub mod audit;
pub mod check;
pub mod cli;
pub mod client;
pub mod entry;
pub mod files;
pub mod monitor;
pub mod server;
pub mod tlog;
pub mod verify;

/// Types generated from `proto/glasslog/v1/log.proto`.
pub mod proto {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("glasslog.v1");
}

//! What the log admits: strict JSON, publisher keys, DSSE envelopes, declarations and their
//! manifests, and the rules that relate a declaration to the entries it references.
//!
//! The server runs these checks at Submit; `audit`, `monitor` and `verify` run the same code on
//! logged entries, so that a checker judges an entry by the rules that admitted it.
//! No I/O: the entries a declaration references are reached through a lookup the caller passes.

pub mod admit;
pub mod declaration;
pub mod dsse;
pub mod keys;
pub mod manifest;
pub mod references;
pub mod strict_json;

pub use admit::{
    admit, admit_envelope, admit_logged, admit_unreferenced, check_references, logged_declaration,
    AdmissionError, Admitted, Policy,
};

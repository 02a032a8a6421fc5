//! `dsse::Envelope::parse` on arbitrary bytes, and the PAE of what it accepts.
//!
//! Oracle: an accepted envelope written back with `to_json` parses to the same envelope (the
//! client writes envelopes with `to_json`, the server reads them with `parse`).
#![no_main]

use glasslog::admission::dsse::{self, Envelope};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = Envelope::parse(data) else {
        return;
    };
    let again = Envelope::parse(&envelope.to_json()).expect("to_json of a parsed envelope parses");
    assert_eq!(envelope, again);
    let pae = dsse::pae(&envelope.payload_type, &envelope.payload);
    assert!(pae.len() > envelope.payload.len() + envelope.payload_type.len());
});

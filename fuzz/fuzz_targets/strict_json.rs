//! `strict_json::parse` on arbitrary bytes.
//!
//! Oracle: strict JSON is a subset of JSON. Whatever `parse` accepts, `serde_json` reads to the
//! same value (with no duplicate keys, which way a decoder resolves them cannot matter), and
//! nothing `serde_json` refuses is accepted.
#![no_main]

use glasslog::admission::strict_json;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let strict = strict_json::parse(data);
    let lenient = serde_json::from_slice::<serde_json::Value>(data);
    if let Ok(value) = strict {
        let lenient = lenient.expect("strict JSON accepted what serde_json refuses");
        assert_eq!(value, lenient, "strict and lenient readings differ");
    }
});

//! Publisher key parsing (`PublicKey::from_pem`, `from_der`) and signature verification under
//! whatever parses, on arbitrary bytes.
//!
//! Oracle: a key that parses survives `to_der`/`to_pem` and back with the same key id and type;
//! verifying arbitrary bytes as a signature never panics.
#![no_main]

use glasslog::admission::keys::PublicKey;
use libfuzzer_sys::fuzz_target;

fn round_trip(key: &PublicKey) {
    let der = PublicKey::from_der(&key.to_der()).expect("to_der of a parsed key parses");
    let pem = PublicKey::from_pem(&key.to_pem()).expect("to_pem of a parsed key parses");
    for k in [der, pem] {
        assert_eq!(k.key_id(), key.key_id());
        assert_eq!(k.key_type(), key.key_type());
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte splits the input into a key and a signature over the rest.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(rest.len());
    let (key_bytes, sig) = rest.split_at(rest.len() - split);
    let mut keys = Vec::new();
    if let Ok(k) = PublicKey::from_der(key_bytes) {
        keys.push(k);
    }
    if let Ok(text) = std::str::from_utf8(key_bytes) {
        if let Ok(k) = PublicKey::from_pem(text) {
            keys.push(k);
        }
    }
    for key in &keys {
        round_trip(key);
        let _ = key.verify(key_bytes, sig);
    }
});

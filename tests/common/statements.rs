//! Building blocks of test declarations: in-toto statements, one-file manifests, release times.

use std::time::{SystemTime, UNIX_EPOCH};

use glasslog::admission::declaration::Timestamp;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub fn sha(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// RFC 3339 UTC of `days` days before now (negative: after).
pub fn days_ago(days: f64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    Timestamp::from_unix_seconds(now - (days * 86_400.0) as i64)
        .unwrap()
        .as_str()
        .to_string()
}

/// An OMS manifest of one file, `data.bin`, holding `content`, and its root digest.
pub fn manifest(content: &str) -> (Value, [u8; 32]) {
    let file = sha(content.as_bytes());
    let m = json!({
        "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": false},
        "resources": [{"name": "data.bin", "algorithm": "sha256", "digest": hex::encode(file)}],
    });
    (m, sha(&file))
}

/// An in-toto v1 statement about one subject.
pub fn in_toto(predicate_type: &str, name: &str, root: &[u8; 32], predicate: Value) -> Value {
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": name, "digest": {"sha256": hex::encode(root)}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    })
}

/// `base` with the members of `extra` set over it.
pub fn merged(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

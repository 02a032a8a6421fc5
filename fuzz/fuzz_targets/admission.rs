//! Submit's admission end to end on an arbitrary statement: the fuzz input is the payload,
//! signed here with a fixed Ed25519 key so that it reaches the declaration and reference rules
//! (a fuzzer cannot forge signatures, so an unsigned input would stop at the first rule).
//!
//! Oracles:
//! - an admitted submission, logged as the sequencer logs it, passes the checkers' admission
//!   (`admit_logged`, what `audit`, `monitor` and `verify` re-run) with the same keys and
//!   declaration, and `logged_declaration` reads the same declaration back: the server never
//!   logs what its own checkers would flag;
//! - an admitted declaration's canonical statement parses back to the same declaration.
#![no_main]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::OnceLock;

use glasslog::admission::declaration::{self, Digest, Kind};
use glasslog::admission::dsse::Envelope;
use glasslog::admission::keys::{KeyCache, PrivateKey};
use glasslog::admission::references::{Lookup, Target};
use glasslog::admission::{admit, admit_logged, logged_declaration, Policy};
use glasslog::entry::decode_leaf;
use libfuzzer_sys::fuzz_target;

/// A fixed publisher key (fuzzing must be deterministic).
const PUBLISHER: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIF6b37OqQ2e+Yq6ANJaz72WxGhFxIRu8Tz0uxo2p6qqi
-----END PRIVATE KEY-----
";

/// The time the fuzzed entries are logged at.
const LOGGED_AT_MS: i64 = 1_780_000_000_000;

/// The log the references are checked against: the entries the seed declarations in
/// `tests/data/declarations` name, at the indexes they give, in a log of 64 entries; every
/// other index holds something that is not a declaration.
struct SeedLog(HashMap<u64, Target>);

const LOG_SIZE: u64 = 64;

fn seed_log() -> &'static SeedLog {
    static LOG: OnceLock<SeedLog> = OnceLock::new();
    LOG.get_or_init(|| {
        let target = |kind, name: &str, hex: &str| Target::Declaration {
            kind,
            name: name.to_string(),
            digest: hex.parse::<Digest>().expect("a seed digest"),
        };
        SeedLog(HashMap::from([
            (7, target(Kind::Model, "example-org/tiny-base", "386ddb6f740481cb187e6f2a0e310d7362355c9924b848a656e1705241f78bdf")),
            (40, target(Kind::Model, "example-org/tiny-chat", "228d9ea0fe1d211f4a81956fef5e2ecfff1db1df964efffd3bd43eee96328482")),
            (41, target(Kind::Dataset, "example-org/web-corpus", "8d92e0d766bc5a05af4e821716b5a8c9f466991540f50e0d437e1af93c41739f")),
            (43, target(Kind::Dataset, "example-org/eval-suite", "89bfb498f9727997eaf7764fd8716411e9c6cafce243ace4b85f02e2a3e1cd06")),
        ]))
    })
}

impl Lookup for SeedLog {
    type Error = Infallible;

    fn target(&self, index: u64) -> Result<Target, Infallible> {
        assert!(index < LOG_SIZE, "lookup asked for index {index} beyond the bound");
        Ok(self.0.get(&index).cloned().unwrap_or(Target::NotDeclaration))
    }
}

fn publisher() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::from_pkcs8_pem(PUBLISHER).expect("the fixed key parses"))
}

fuzz_target!(|payload: &[u8]| {
    let key = publisher();
    let envelope = Envelope::sign(declaration::PAYLOAD_TYPE, payload, &[key]).to_json();
    let public_keys = vec![key.public_key().to_pem()];
    let cache = KeyCache::default();
    let policy = Policy::default();
    let Ok(Ok(admitted)) = admit(
        &envelope,
        &public_keys,
        &cache,
        &policy,
        LOG_SIZE,
        LOGGED_AT_MS,
        seed_log(),
    ) else {
        return;
    };
    let declaration = admitted.declaration.clone();
    let key_ids = admitted.key_ids.clone();
    if let Some(d) = &declaration {
        let again = declaration::parse_statement(&d.to_statement_json())
            .expect("the canonical statement of an admitted declaration parses");
        assert_eq!(&again, d, "the canonical statement reads back differently");
    }

    let leaf = admitted.into_pending(envelope, Vec::new()).encode_leaf(LOGGED_AT_MS);
    assert!(leaf.len() <= glasslog::entry::MAX_LEAF_BYTES, "admitted a leaf over the cap");
    let logged = decode_leaf(&leaf).expect("the leaf decodes");
    let checked = admit_logged(&logged, &cache, &policy)
        .expect("the checkers refuse what Submit admitted");
    assert_eq!(checked.key_ids, key_ids);
    assert_eq!(checked.declaration, declaration);
    assert_eq!(logged_declaration(&leaf).expect("the leaf reads"), declaration);
});

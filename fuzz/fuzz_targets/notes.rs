//! The C2SP text formats glasslog reads from others: signed notes and checkpoints (what a
//! client is served, what a witness is sent), tlog-witness request and answer bodies,
//! cosignature lines and witness policy files, on arbitrary bytes.
//!
//! Oracles: a checkpoint body that parses is read back the same from its own `to_body`; an
//! add-checkpoint request that parses is read back the same from its own `to_body`; the note
//! verifiers never panic, whatever the signature lines.
#![no_main]

use std::sync::OnceLock;

use glasslog::tlog::checkpoint::Checkpoint;
use glasslog::tlog::cosignature;
use glasslog::tlog::note::LogVerifier;
use glasslog::tlog::policy::WitnessPolicy;
use glasslog::tlog::witness_protocol::{self, AddCheckpoint};
use glasslog::witness::check::{verify_signed, TrustedLogs};
use libfuzzer_sys::fuzz_target;

/// The key that signed the checkpoints of `tests/data/checkpoints.json` (the seeds).
const SEED_LOG_VKEY: &str =
    "example.com/oracle-test-log+beb05b93+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4";

fn verifier() -> &'static (LogVerifier, TrustedLogs) {
    static V: OnceLock<(LogVerifier, TrustedLogs)> = OnceLock::new();
    V.get_or_init(|| {
        let log = LogVerifier::new(SEED_LOG_VKEY).expect("the seed log's key parses");
        let mut trusted = TrustedLogs::default();
        trusted.add(log.clone());
        (log, trusted)
    })
}

fuzz_target!(|data: &[u8]| {
    let (log, trusted) = verifier();
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = log.verify(text);
        if let Ok(cp) = Checkpoint::parse_body(text) {
            assert_eq!(Checkpoint::parse_body(&cp.to_body()).as_ref(), Ok(&cp));
        }
        for line in text.lines() {
            let _ = cosignature::parse_line(line);
        }
    }
    if let Ok(req) = AddCheckpoint::parse(data) {
        assert_eq!(AddCheckpoint::parse(&req.to_body()).as_ref(), Ok(&req));
        let _ = verify_signed(trusted, &req);
    }
    let _ = witness_protocol::parse_size_body(data);
    let _ = witness_protocol::parse_cosignature_lines(data);
    if let (Ok(policy), Ok(text)) = (WitnessPolicy::parse(data), std::str::from_utf8(data)) {
        let _ = policy.check(text);
    }
});

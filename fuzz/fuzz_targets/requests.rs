//! Protobuf decoding of every request the gRPC service takes (and of the answers a client
//! decodes from a log it does not trust), followed by the checks the service makes on a
//! request before it reaches storage: the first input byte chooses the message.
//!
//! Oracles: a message that decodes re-encodes to bytes that decode to the same message; the
//! request checks never panic; a Submit's keys and envelope go through admission (which must
//! refuse them without a valid signature, since the fuzzer cannot sign).
#![no_main]

use glasslog::admission::keys::KeyCache;
use glasslog::admission::{admit_envelope, Policy};
use glasslog::proto;
use glasslog::server::{request, search};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> Option<M> {
    let m = M::decode(bytes).ok()?;
    let again = M::decode(m.encode_to_vec().as_slice()).expect("an encoded message decodes");
    assert_eq!(again, m);
    Some(m)
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 12 {
        0 => {
            round_trip::<proto::GetLogInfoRequest>(bytes);
        }
        1 => {
            if let Some(req) = round_trip::<proto::SubmitRequest>(bytes) {
                let keys = KeyCache::default();
                let verdict = admit_envelope(&req.envelope, &req.public_keys, &keys, &Policy::default());
                assert!(verdict.is_err(), "admitted an envelope nobody signed");
            }
        }
        2 => {
            round_trip::<proto::GetCheckpointRequest>(bytes);
        }
        3 => {
            if let Some(req) = round_trip::<proto::GetEntriesRequest>(bytes) {
                if let Ok(range) = request::entries_range(req.start, req.end, 1 << 40) {
                    assert!(range.start < range.end && range.end <= 1 << 40);
                }
            }
        }
        4 => {
            round_trip::<proto::GetInclusionProofRequest>(bytes);
        }
        5 => {
            round_trip::<proto::GetConsistencyProofRequest>(bytes);
        }
        6 => {
            round_trip::<proto::TailRequest>(bytes);
        }
        7 => {
            if let Some(req) = round_trip::<proto::SearchRequest>(bytes) {
                let _ = search::Query::from_proto(req.query);
                if let Ok(next) = search::parse_page_token(&req.page_token) {
                    let again = search::parse_page_token(&search::page_token(next));
                    assert_eq!(again.ok(), Some(next), "a page token does not read back");
                }
                let _ = search::page_size(req.page_size);
            }
        }
        // What a client reads from a log.
        8 => {
            round_trip::<proto::TailEvent>(bytes);
        }
        9 => {
            round_trip::<proto::GetEntriesResponse>(bytes);
        }
        10 => {
            round_trip::<proto::SubmitResponse>(bytes);
        }
        _ => {
            if let Some(entry) = round_trip::<proto::LogEntry>(bytes) {
                let keys = KeyCache::default();
                let _ = glasslog::admission::admit_logged(&entry, &keys, &Policy::default());
                let _ = glasslog::admission::logged_declaration(bytes);
            }
        }
    }
});

//! The search index's key codec (`storage::schema`): `decode_search_key` on arbitrary bytes,
//! and the search query of every SearchRequest.
//!
//! Oracles: a key that decodes is exactly the key its term and index encode to (the codec is
//! a bijection onto what it accepts, so two terms never share a key); a query that a
//! SearchRequest yields has a prefix that decodes back to a term of the same kind.
#![no_main]

use glasslog::proto::SearchRequest;
use glasslog::server::search::Query;
use glasslog::server::storage::schema::{decode_search_key, search_key, search_key_index, search_prefix};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Some((term, index)) = decode_search_key(data) {
        let prefix = search_prefix(&term);
        assert_eq!(search_key(&prefix, index), data, "a decoded key re-encodes differently");
        assert_eq!(search_key_index(&prefix, data), Some(index));
    }
    if let Ok(req) = SearchRequest::decode(data) {
        if let Ok(query) = Query::from_proto(req.query) {
            let prefix = query.prefix();
            let key = search_key(&prefix, u64::MAX);
            let (term, index) = decode_search_key(&key).expect("a query's key decodes");
            assert_eq!(index, u64::MAX);
            assert_eq!(search_prefix(&term), prefix);
        }
    }
});

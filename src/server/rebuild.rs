//! What the sequencer writes beside a leaf, recomputed from the leaf alone: its deduplication
//! key and its search prefixes. `reindex` rebuilds the search index with it and `restore`
//! rebuilds whole databases; both must derive exactly what admission derived, so they share this.
//!
//! It does not judge the entry: a restored log holds what was logged, including entries that
//! the operator's configuration of the time admitted (extra predicate types, say).

use std::collections::HashMap;

use crate::admission::dsse::Envelope;
use crate::admission::keys::{KeyId, PublicKey};
use crate::admission::logged_declaration;
use crate::entry::{decode_leaf, dedup_key};
use crate::server::search::index_prefixes;

/// The keys a leaf is stored under besides its index and leaf hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafKeys {
    /// The `dedup` key ([`crate::entry::dedup_key`]).
    pub dedup_key: [u8; 32],
    /// The `search` prefixes ([`index_prefixes`]).
    pub search_prefixes: Vec<Vec<u8>>,
}

/// Key ids of logged PEM keys, remembered: a log has far fewer publishers than entries, and
/// parsing a key (an Ed25519 point decompression) costs more than the rest of a leaf.
#[derive(Default)]
pub struct KeyIds(HashMap<String, KeyId>);

impl KeyIds {
    /// Most keys remembered; past it the map starts over (bounded memory for any log).
    const MAX: usize = 100_000;

    fn of(&mut self, pem: &str) -> Result<KeyId, String> {
        if let Some(id) = self.0.get(pem) {
            return Ok(*id);
        }
        let id = PublicKey::from_pem(pem)
            .map_err(|e| format!("public key: {e}"))?
            .key_id();
        if self.0.len() >= Self::MAX {
            self.0.clear();
        }
        self.0.insert(pem.to_string(), id);
        Ok(id)
    }
}

/// Recomputes a logged leaf's [`LeafKeys`].
///
/// # Errors
/// A leaf that does not decode: not a `LogEntry`, an unreadable key, an envelope or a
/// declaration statement that does not parse.
pub fn leaf_keys(leaf: &[u8], keys: &mut KeyIds) -> Result<LeafKeys, String> {
    let entry = decode_leaf(leaf).map_err(|e| format!("leaf: {e}"))?;
    let key_ids = entry
        .public_keys
        .iter()
        .map(|pem| keys.of(pem))
        .collect::<Result<Vec<KeyId>, _>>()?;
    if key_ids.windows(2).any(|w| w[0] >= w[1]) {
        return Err("the logged public keys are not sorted by key id".into());
    }
    let envelope = Envelope::parse(&entry.envelope).map_err(|e| format!("envelope: {e}"))?;
    let declaration = logged_declaration(leaf)?;
    Ok(LeafKeys {
        dedup_key: dedup_key(&envelope.payload_type, &envelope.payload, &key_ids),
        search_prefixes: index_prefixes(declaration.as_ref(), &key_ids),
    })
}

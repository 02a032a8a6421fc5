//! The state file: the last checkpoint the monitor verified, the compact range of the tree at
//! that checkpoint, and the leaf hashes of the last few verified entries.
//!
//! It is everything the log-level checks need to resume: entries are appended to the compact
//! range from `nextIndex` on, and the root recomputed must be the next checkpoint's. Per-name
//! state lives in the [`super::store`] database beside the file; this file stays a few KiB
//! whatever the log's size.
//!
//! Invariants of a loaded or saved state (checked on load, so a damaged or hand-edited file is
//! refused rather than trusted): the checkpoint verifies under the pinned log key; the compact
//! range has the checkpoint's size and root (or is empty without a checkpoint); `nextIndex` is
//! that size; at most [`RECENT_LEAVES`] recent leaf hashes, ending at `nextIndex`.
//!
//! Saving is atomic: a temporary file beside the state file is written and fsynced, renamed over
//! it, and the directory fsynced, so a crash leaves the old state or the new one.

use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::MonitorError;
use crate::files;
use crate::tlog::checkpoint::Checkpoint;
use crate::tlog::compact::CompactRange;
use crate::tlog::merkle::{self, Hash};
use crate::tlog::note::LogVerifier;

/// How many of the last verified leaf hashes are kept, to compare with what the server serves
/// again when the monitor reconnects (the Tail stream is resumed this many entries early).
pub const RECENT_LEAVES: usize = 16;

const FORMAT: &str = "glasslog-monitor-state/1";

/// A checkpoint whose signature verified, and its signed note.
#[derive(Clone, Debug, PartialEq)]
pub struct VerifiedCheckpoint {
    pub checkpoint: Checkpoint,
    pub note: String,
}

/// What the monitor knows about the log; see the module documentation for the invariants.
#[derive(Clone, Debug, PartialEq)]
pub struct LogState {
    /// The last verified checkpoint; `None` before the first.
    pub checkpoint: Option<VerifiedCheckpoint>,
    /// The right edge of the tree at `checkpoint`.
    pub range: CompactRange,
    /// Leaf hashes of the last verified entries, the last one at index `range.size() - 1`.
    pub recent: Vec<Hash>,
    /// The integrated time of the last verified entry (0 before any).
    pub last_integrated_ms: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StateFile {
    format: String,
    log_key: String,
    checkpoint: Option<String>,
    next_index: u64,
    compact_range: Vec<String>,
    recent_leaf_hashes: Vec<String>,
    last_integrated_time_ms: i64,
}

impl LogState {
    /// The state of a monitor that has verified nothing yet.
    pub fn empty() -> LogState {
        LogState {
            checkpoint: None,
            range: CompactRange::new(),
            recent: Vec::new(),
            last_integrated_ms: 0,
        }
    }

    /// The next index to verify: the size of the verified tree.
    pub fn size(&self) -> u64 {
        self.range.size()
    }

    /// The verified note, or `""` before the first checkpoint (the anchor of log findings).
    pub fn note(&self) -> &str {
        self.checkpoint.as_ref().map_or("", |c| c.note.as_str())
    }

    /// The verified leaf hash at `index`, if it is one of the recent ones kept.
    pub fn recent_leaf(&self, index: u64) -> Option<Hash> {
        let first = self.size() - self.recent.len() as u64;
        let offset = index.checked_sub(first)?;
        self.recent.get(usize::try_from(offset).ok()?).copied()
    }

    /// Appends verified leaf hashes to the recent window, keeping the last [`RECENT_LEAVES`].
    pub fn remember(&mut self, leaf_hashes: &[Hash]) {
        self.recent.extend_from_slice(leaf_hashes);
        let excess = self.recent.len().saturating_sub(RECENT_LEAVES);
        self.recent.drain(..excess);
    }

    /// Loads the state saved at `path` for the log of `verifier`; `Ok(None)` if there is no file.
    ///
    /// # Errors
    /// [`MonitorError::State`] if the file cannot be read, is malformed, is for another log, or
    /// breaks an invariant.
    pub fn load(path: &Path, verifier: &LogVerifier) -> Result<Option<LogState>, MonitorError> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(state_error(path, e.to_string())),
        };
        let file: StateFile =
            serde_json::from_str(&text).map_err(|e| state_error(path, e.to_string()))?;
        Self::from_file(file, verifier)
            .map(Some)
            .map_err(|reason| state_error(path, reason))
    }

    fn from_file(file: StateFile, verifier: &LogVerifier) -> Result<LogState, String> {
        if file.format != FORMAT {
            return Err(format!("format {:?} is not {FORMAT:?}", file.format));
        }
        if file.log_key != verifier.verifier_key() {
            return Err(format!(
                "it is the state of the log with key {}, not of --log-key",
                file.log_key
            ));
        }
        let hashes = file
            .compact_range
            .iter()
            .map(|h| parse_hash(h))
            .collect::<Result<Vec<_>, _>>()?;
        let range = CompactRange::from_parts(file.next_index, hashes).map_err(|e| e.to_string())?;
        let checkpoint = match file.checkpoint {
            None => None,
            Some(note) => {
                let checkpoint = verifier
                    .verify(&note)
                    .map_err(|e| format!("checkpoint: {e}"))?;
                Some(VerifiedCheckpoint { checkpoint, note })
            }
        };
        let (size, root) = checkpoint.as_ref().map_or((0, merkle::EMPTY_HASH), |c| {
            (c.checkpoint.size, c.checkpoint.root)
        });
        if range.size() != size || range.root() != root {
            return Err("the compact range is not the tree of the checkpoint".into());
        }
        let recent = file
            .recent_leaf_hashes
            .iter()
            .map(|h| parse_hash(h))
            .collect::<Result<Vec<_>, _>>()?;
        if recent.len() > RECENT_LEAVES || recent.len() as u64 > size {
            return Err(format!(
                "{} recent leaf hashes for a tree of size {size}",
                recent.len()
            ));
        }
        Ok(LogState {
            checkpoint,
            range,
            recent,
            last_integrated_ms: file.last_integrated_time_ms,
        })
    }

    /// Saves the state to `path` atomically (see the module documentation).
    ///
    /// # Errors
    /// [`MonitorError::State`] for any I/O failure; the previous file is then still in place.
    pub fn save(&self, path: &Path, verifier: &LogVerifier) -> Result<(), MonitorError> {
        let file = StateFile {
            format: FORMAT.into(),
            log_key: verifier.verifier_key().into(),
            checkpoint: self.checkpoint.as_ref().map(|c| c.note.clone()),
            next_index: self.size(),
            compact_range: self
                .range
                .hashes()
                .iter()
                .map(|h| hex::encode(h.0))
                .collect(),
            recent_leaf_hashes: self.recent.iter().map(|h| hex::encode(h.0)).collect(),
            last_integrated_time_ms: self.last_integrated_ms,
        };
        let mut json =
            serde_json::to_vec_pretty(&file).map_err(|e| state_error(path, e.to_string()))?;
        json.push(b'\n');
        files::write_atomically(path, &json, 0o666)
            .map_err(|e| state_error(path, e.source.to_string()))
    }
}

fn state_error(path: &Path, reason: String) -> MonitorError {
    MonitorError::State {
        path: path.to_path_buf(),
        reason,
    }
}

fn parse_hash(text: &str) -> Result<Hash, String> {
    let bytes = hex::decode(text).map_err(|e| format!("hash {text:?}: {e}"))?;
    merkle::hash_from_slice(&bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::checkpoint::Origin;
    use crate::tlog::note::LogSigner;

    fn signed(signer: &LogSigner, range: &CompactRange) -> VerifiedCheckpoint {
        let checkpoint = Checkpoint {
            origin: signer.origin().into(),
            size: range.size(),
            root: range.root(),
        };
        VerifiedCheckpoint {
            note: signer.sign(&checkpoint).unwrap(),
            checkpoint,
        }
    }

    #[test]
    fn saves_and_loads_and_refuses_damage() {
        let signer = LogSigner::generate(&Origin::new("example.com/log").unwrap());
        let verifier = LogVerifier::new(&signer.verifier_key()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(LogState::load(&path, &verifier).unwrap(), None);

        let mut state = LogState::empty();
        let leaves: Vec<Hash> = (0..21u8).map(|i| merkle::leaf_hash(&[i])).collect();
        for h in &leaves {
            state.range.append(*h);
        }
        state.remember(&leaves);
        state.checkpoint = Some(signed(&signer, &state.range));
        state.last_integrated_ms = 7;
        state.save(&path, &verifier).unwrap();
        let loaded = LogState::load(&path, &verifier).unwrap().unwrap();
        assert_eq!(loaded, state);
        assert_eq!(loaded.recent.len(), RECENT_LEAVES);
        assert_eq!(loaded.recent_leaf(20), Some(leaves[20]));
        assert_eq!(loaded.recent_leaf(5), Some(leaves[5]));
        assert_eq!(loaded.recent_leaf(4), None);
        assert_eq!(loaded.recent_leaf(21), None);

        // Another log's key, a changed compact range: refused.
        let other = LogVerifier::new(
            &LogSigner::generate(&Origin::new("example.com/log").unwrap()).verifier_key(),
        )
        .unwrap();
        assert!(LogState::load(&path, &other).is_err());
        let text = fs::read_to_string(&path).unwrap();
        let first = hex::encode(state.range.hashes()[0].0);
        fs::write(&path, text.replace(&first, &hex::encode([0u8; 32]))).unwrap();
        assert!(matches!(
            LogState::load(&path, &verifier),
            Err(MonitorError::State { .. })
        ));
    }
}

//! Split-view protection for clients: the last checkpoint a client verified for a log, kept in a
//! small file, and the rule that a newer checkpoint is accepted only with a consistency proof from
//! it.
//!
//! A log that shows one tree to some clients and another tree to others (a *split view*) has to
//! sign two checkpoints that no consistency proof can join. A client that remembers the last
//! checkpoint it accepted and asks for a proof from it before accepting the next one catches such
//! a log the first time it is shown the other tree; the two signed notes are then the evidence
//! that anybody can check with the log's key alone. `glasslog verify`, `submit`, `monitor` and
//! `audit` share this state, one file per log key:
//! `$XDG_CONFIG_HOME/glasslog/checkpoints/<origin>.<key id>.json` (or `~/.config/...`), or a file
//! the user names.
//!
//! The file is JSON, `{"log_verifier_key": "<vkey>", "checkpoint": "<signed note>"}`. It is
//! re-verified under the client's pinned key on every use, so a damaged or swapped file is
//! refused rather than trusted.
//!
//! Invariants:
//! - the stored checkpoint never shrinks: a smaller checkpoint is accepted (after a proof that it
//!   is a prefix of the stored one) but not stored;
//! - the file is replaced atomically (a new file, fsynced, renamed over the old one, directory
//!   fsynced), so a crash leaves the old or the new state, never half of one;
//! - updates by concurrent processes are serialised by an exclusive `flock` on `<file>.lock`,
//!   and each update re-reads the file under the lock, so two processes never lose a checkpoint
//!   or store one that was not checked against the latest stored state.
//!
//! What this is not: a witness. It protects the one client that keeps it; a log can still show a
//! client a consistent but different view from the start (trust on first use). Comparing notes
//! with others (gossip, witnesses, monitors that see the whole log) is what closes that gap.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::admission::strict_json::{self, ROOT};
use crate::client::source::ProvesConsistency;
use crate::client::ClientError;
use crate::files;
use crate::tlog::checkpoint::{Checkpoint, CheckpointError};
use crate::tlog::note::LogVerifier;

/// Largest state file read; a checkpoint note is well under 1 KiB.
const MAX_STATE_BYTES: u64 = 1 << 20;

/// Two checkpoints of one log, both signed by its key, that no consistency proof joins: the log
/// has shown two different trees. The notes are the evidence; publish them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitView {
    /// The checkpoint accepted earlier (the full signed note).
    pub old_note: String,
    /// The checkpoint just received (the full signed note).
    pub new_note: String,
    /// Why they do not fit together, in words.
    pub reason: String,
}

/// Errors of the split-view state.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// The log showed a checkpoint inconsistent with the one accepted before.
    #[error(
        "inconsistent-checkpoint: {}; both checkpoints are signed by the log key: publish them \
         as evidence",
        .0.reason
    )]
    SplitView(Box<SplitView>),
    /// Reading or writing the state file failed.
    #[error("split-view state {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The state file is not one this code wrote, or its checkpoint does not verify.
    #[error(
        "split-view state {}: {reason}; move the file away to start afresh (losing split-view \
         protection up to now)",
        path.display()
    )]
    Corrupt { path: PathBuf, reason: String },
    /// The state file belongs to another log key.
    #[error(
        "split-view state {} is for log key {stored}, not {given}; give a --state file of its own \
         to each log",
        path.display()
    )]
    OtherLog {
        path: PathBuf,
        stored: String,
        given: String,
    },
    /// Neither `XDG_CONFIG_HOME` nor `HOME` is set.
    #[error("cannot find a config directory for the split-view state (set HOME or XDG_CONFIG_HOME, or give --state FILE)")]
    NoConfigDir,
    /// The checkpoint handed to [`TrustState::check_and_update`] does not verify, or is not
    /// what its note says.
    #[error("the new checkpoint does not verify: {0}")]
    Checkpoint(String),
    /// The consistency proof could not be fetched (network, server unavailable); nothing is
    /// known either way.
    #[error("cannot check the checkpoint against the one accepted before: {0}")]
    Client(ClientError),
}

impl TrustError {
    /// The split view, if that is what this error is.
    pub fn split_view(&self) -> Option<&SplitView> {
        match self {
            TrustError::SplitView(s) => Some(s),
            _ => None,
        }
    }
}

/// The stored checkpoint of one log.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stored {
    log_verifier_key: String,
    note: String,
}

/// The last checkpoint a client accepted for one log, and the file it lives in.
#[derive(Debug)]
pub struct TrustState {
    path: PathBuf,
    stored: Option<Stored>,
}

/// What a check did with the state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// No checkpoint was stored: the new one is trusted on first use and stored.
    FirstUse,
    /// The stored checkpoint is the same tree (same size and root).
    Same,
    /// A consistency proof from the stored checkpoint (of `from_size`) verified; the new one is
    /// stored.
    Extended { from_size: u64 },
    /// The new checkpoint is older than the stored one (of `stored_size`) and a consistency
    /// proof shows it to be a prefix; the stored one is kept.
    Older { stored_size: u64 },
}

impl TrustState {
    /// The default state file of the log whose key is `verifier`:
    /// `$XDG_CONFIG_HOME/glasslog/checkpoints/<origin>.<key id>.json`, with `~/.config` when
    /// `XDG_CONFIG_HOME` is unset or empty. Characters of the origin other than ASCII letters,
    /// digits, `.`, `_` and `-` become `_`.
    ///
    /// # Errors
    /// [`TrustError::NoConfigDir`].
    pub fn default_path(verifier: &LogVerifier) -> Result<PathBuf, TrustError> {
        let non_empty = |v: Option<std::ffi::OsString>| v.filter(|s| !s.is_empty());
        let config = match non_empty(std::env::var_os("XDG_CONFIG_HOME")) {
            Some(dir) => PathBuf::from(dir),
            None => {
                PathBuf::from(non_empty(std::env::var_os("HOME")).ok_or(TrustError::NoConfigDir)?)
                    .join(".config")
            }
        };
        Ok(config
            .join("glasslog")
            .join("checkpoints")
            .join(file_name(verifier)))
    }

    /// The state at `explicit` if given, else at [`default_path`](Self::default_path).
    ///
    /// # Errors
    /// Those of [`default_path`](Self::default_path) and [`load`](Self::load).
    pub fn open(verifier: &LogVerifier, explicit: Option<&Path>) -> Result<TrustState, TrustError> {
        match explicit {
            Some(p) => TrustState::load(p),
            None => TrustState::load(TrustState::default_path(verifier)?),
        }
    }

    /// Reads the state file at `path`; a missing file is an empty state (first use). Nothing is
    /// verified yet: that needs the log's key, see [`check_and_update`](Self::check_and_update).
    ///
    /// # Errors
    /// [`TrustError::Io`] or [`TrustError::Corrupt`].
    pub fn load(path: impl Into<PathBuf>) -> Result<TrustState, TrustError> {
        let path = path.into();
        let stored = read_state(&path)?;
        Ok(TrustState { path, stored })
    }

    /// The state file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored checkpoint's signed note, if any (as last read or written).
    pub fn stored_note(&self) -> Option<&str> {
        self.stored.as_ref().map(|s| s.note.as_str())
    }

    /// Accepts `checkpoint` (whose signed note is `note`, served by `log`: a server or its tiles)
    /// only if it is consistent with the stored one, and stores it if it is newer:
    ///
    /// - nothing stored: trusted on first use, stored;
    /// - same size: the roots must be equal;
    /// - larger: a consistency proof from the stored size must verify against both roots;
    /// - smaller: a consistency proof from the new size to the stored one must verify; the stored
    ///   one is kept.
    ///
    /// The file is locked for the whole check and re-read under the lock. The note is verified
    /// under `log`'s pinned key, and so is the stored note.
    ///
    /// # Errors
    /// [`TrustError::SplitView`] when the two checkpoints do not fit together: a proof that does
    /// not verify, equal sizes with different roots, or a log that refuses (with a definite gRPC
    /// error such as OUT_OF_RANGE) to prove consistency between two trees it signed.
    /// [`TrustError::Client`] when the proof could not be had for a transient reason (the
    /// server is unreachable or unavailable; tiles unreachable, missing, or damaged, which is the
    /// location's fault, not evidence against the log): nothing is known, nothing is stored. Otherwise
    /// I/O, a damaged state file, a state file of another log, or a note that does not verify.
    pub async fn check_and_update(
        &mut self,
        log: &impl ProvesConsistency,
        checkpoint: &Checkpoint,
        note: &str,
    ) -> Result<Accepted, TrustError> {
        let verifier = log.verifier();
        check_note(verifier, checkpoint, note)?;
        let _lock = lock(&self.path)?;
        self.stored = read_state(&self.path)?;
        let Some(old_note) = self.stored.as_ref().map(|s| s.note.clone()) else {
            self.store(verifier, note)?;
            return Ok(Accepted::FirstUse);
        };
        let old = self.verified_stored(verifier)?;
        let split = |reason: String| split_view(&old_note, note, reason);
        if old.size == checkpoint.size {
            if old.root != checkpoint.root {
                return Err(split(format!(
                    "the log signed two different trees of size {}: root {} before, root {} now",
                    old.size, old.root, checkpoint.root
                )));
            }
            return Ok(Accepted::Same);
        }
        let (from, to) = match old.size < checkpoint.size {
            true => (&old, checkpoint),
            false => (checkpoint, &old),
        };
        log.verify_consistency(from, to)
            .await
            .map_err(|e| classify(e, from.size, to.size, &split))?;
        if old.size > checkpoint.size {
            return Ok(Accepted::Older {
                stored_size: old.size,
            });
        }
        self.store(verifier, note)?;
        Ok(Accepted::Extended {
            from_size: old.size,
        })
    }

    /// What can be checked without the log: a stored checkpoint of the same size must have the
    /// same root. Checkpoints of other sizes need a consistency proof, which only the log (or a
    /// witness) can give; for them this returns `Ok(false)`. Nothing is written.
    ///
    /// # Errors
    /// [`TrustError::SplitView`] for two trees of one size; a stored note that does not verify
    /// under `verifier`, or a state file of another log.
    pub fn check_offline(
        &self,
        verifier: &LogVerifier,
        checkpoint: &Checkpoint,
        note: &str,
    ) -> Result<bool, TrustError> {
        check_note(verifier, checkpoint, note)?;
        let Some(stored) = &self.stored else {
            return Ok(false);
        };
        let old = self.verified_stored(verifier)?;
        if old.size != checkpoint.size {
            return Ok(false);
        }
        if old.root != checkpoint.root {
            return Err(split_view(
                &stored.note,
                note,
                format!(
                    "the log signed two different trees of size {}: root {} before, root {} now",
                    old.size, old.root, checkpoint.root
                ),
            ));
        }
        Ok(true)
    }

    /// The stored checkpoint, verified under `verifier`.
    fn verified_stored(&self, verifier: &LogVerifier) -> Result<Checkpoint, TrustError> {
        let stored = self
            .stored
            .as_ref()
            .ok_or_else(|| self.corrupt("no stored checkpoint".into()))?;
        if stored.log_verifier_key != verifier.verifier_key() {
            return Err(TrustError::OtherLog {
                path: self.path.clone(),
                stored: stored.log_verifier_key.clone(),
                given: verifier.verifier_key().to_string(),
            });
        }
        verifier.verify(&stored.note).map_err(|e| {
            self.corrupt(format!(
                "the stored checkpoint does not verify under the log key: {e}"
            ))
        })
    }

    fn corrupt(&self, reason: String) -> TrustError {
        TrustError::Corrupt {
            path: self.path.clone(),
            reason,
        }
    }

    fn store(&mut self, verifier: &LogVerifier, note: &str) -> Result<(), TrustError> {
        let stored = Stored {
            log_verifier_key: verifier.verifier_key().to_string(),
            note: note.to_string(),
        };
        let text = json!({"log_verifier_key": stored.log_verifier_key, "checkpoint": stored.note});
        write_atomically(&self.path, format!("{text:#}\n").as_bytes())?;
        self.stored = Some(stored);
        Ok(())
    }
}

fn split_view(old_note: &str, new_note: &str, reason: String) -> TrustError {
    TrustError::SplitView(Box::new(SplitView {
        old_note: old_note.to_string(),
        new_note: new_note.to_string(),
        reason,
    }))
}

/// Sorts a failed consistency check into evidence of a split view or a transient failure.
fn classify(
    e: ClientError,
    from: u64,
    to: u64,
    split: &dyn Fn(String) -> TrustError,
) -> TrustError {
    use tonic::Code;
    match e {
        ClientError::Proof(p) => split(format!("the consistency proof from size {from} to size {to} does not verify: {p}")),
        ClientError::Mismatch(m) => split(format!("the log's consistency proof from size {from} to size {to} is not one: {m}")),
        ClientError::Rpc(s)
            if matches!(s.code(), Code::InvalidArgument | Code::OutOfRange | Code::FailedPrecondition | Code::NotFound) =>
        {
            split(format!(
                "the log refuses to prove that its tree of size {from} is a prefix of its tree of size {to} ({}: {})",
                s.code(),
                s.message()
            ))
        }
        other => TrustError::Client(other),
    }
}

/// `note` must verify under `verifier` and say what `checkpoint` says.
fn check_note(
    verifier: &LogVerifier,
    checkpoint: &Checkpoint,
    note: &str,
) -> Result<(), TrustError> {
    let verified = verifier
        .verify(note)
        .map_err(|e: CheckpointError| TrustError::Checkpoint(e.to_string()))?;
    if &verified != checkpoint {
        return Err(TrustError::Checkpoint(format!(
            "the note is of size {} and root {}, the checkpoint given with it of size {} and root {}",
            verified.size, verified.root, checkpoint.size, checkpoint.root
        )));
    }
    Ok(())
}

/// `<origin>.<key id>.json`, the origin made safe for a file name.
fn file_name(verifier: &LogVerifier) -> String {
    let origin: String = verifier
        .origin()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{origin}.{:08x}.json", verifier.key_id())
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TrustError + '_ {
    move |source| TrustError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The stored state, `None` if the file does not exist.
fn read_state(path: &Path) -> Result<Option<Stored>, TrustError> {
    use std::io::Read;
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path)(e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_STATE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error(path))?;
    let corrupt = |reason: String| TrustError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() as u64 > MAX_STATE_BYTES {
        return Err(corrupt(format!("larger than {MAX_STATE_BYTES} bytes")));
    }
    parse_state(&bytes).map(Some).map_err(corrupt)
}

fn parse_state(bytes: &[u8]) -> Result<Stored, String> {
    let root = strict_json::parse(bytes).map_err(|e| e.to_string())?;
    let top = strict_json::object(&root, ROOT).map_err(|e| e.to_string())?;
    strict_json::deny_unknown_fields(top, &["log_verifier_key", "checkpoint"], ROOT)
        .map_err(|e| e.to_string())?;
    let field = |k| {
        strict_json::require_str(top, k, ROOT)
            .map(str::to_string)
            .map_err(|e| e.to_string())
    };
    Ok(Stored {
        log_verifier_key: field("log_verifier_key")?,
        note: field("checkpoint")?,
    })
}

/// An exclusive lock on `<path>.lock`, held until the file is dropped. Blocks while another
/// process holds it (updates take one consistency proof, so not long).
fn lock(path: &Path) -> Result<File, TrustError> {
    let dir = files::parent_dir(path);
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let lock_path = files::with_suffix(path, ".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_error(&lock_path))?;
    loop {
        // SAFETY: flock(2) on a descriptor this function owns; it touches no memory.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc == 0 {
            return Ok(file);
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != ErrorKind::Interrupted {
            return Err(io_error(&lock_path)(err));
        }
    }
}

/// Replaces `path` with `data` ([`files::write_atomically`]: a new file beside it, fsynced,
/// renamed over it, the directory fsynced).
fn write_atomically(path: &Path, data: &[u8]) -> Result<(), TrustError> {
    files::write_atomically(path, data, 0o666)
        .map_err(|files::FileError { path, source }| TrustError::Io { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlog::checkpoint::Origin;
    use crate::tlog::merkle::Hash;
    use crate::tlog::note::LogSigner;

    fn signer() -> LogSigner {
        LogSigner::generate(&Origin::new("example.org/log").unwrap())
    }

    fn note(s: &LogSigner, size: u64, root: u8) -> (Checkpoint, String) {
        let c = Checkpoint {
            origin: s.origin().to_string(),
            size,
            root: Hash([root; 32]),
        };
        let n = s.sign(&c).unwrap();
        (c, n)
    }

    #[test]
    fn state_round_trips_and_is_strict() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/state.json");
        let s = signer();
        let v = LogVerifier::new(&s.verifier_key()).unwrap();
        let mut state = TrustState::load(&path).unwrap();
        assert!(state.stored_note().is_none());
        let (_, n) = note(&s, 5, 1);
        state.store(&v, &n).unwrap();
        let again = TrustState::load(&path).unwrap();
        assert_eq!(again.stored_note(), Some(n.as_str()));
        assert_eq!(again.verified_stored(&v).unwrap().size, 5);

        std::fs::write(
            &path,
            br#"{"log_verifier_key": "k", "checkpoint": "c", "x": 1}"#,
        )
        .unwrap();
        assert!(matches!(
            TrustState::load(&path),
            Err(TrustError::Corrupt { .. })
        ));
        std::fs::write(&path, b"not json").unwrap();
        assert!(matches!(
            TrustState::load(&path),
            Err(TrustError::Corrupt { .. })
        ));
    }

    #[test]
    fn a_state_of_another_log_or_a_forged_note_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let (a, b) = (signer(), signer());
        let va = LogVerifier::new(&a.verifier_key()).unwrap();
        let vb = LogVerifier::new(&b.verifier_key()).unwrap();
        let mut state = TrustState::load(&path).unwrap();
        state.store(&va, &note(&a, 3, 1).1).unwrap();
        assert!(matches!(
            state.verified_stored(&vb),
            Err(TrustError::OtherLog { .. })
        ));
        // A note signed by b stored under a's key does not verify.
        state.stored = Some(Stored {
            log_verifier_key: a.verifier_key(),
            note: note(&b, 3, 1).1,
        });
        assert!(matches!(
            state.verified_stored(&va),
            Err(TrustError::Corrupt { .. })
        ));
    }

    #[test]
    fn offline_check_catches_two_trees_of_one_size() {
        let dir = tempfile::tempdir().unwrap();
        let s = signer();
        let v = LogVerifier::new(&s.verifier_key()).unwrap();
        let mut state = TrustState::load(dir.path().join("s.json")).unwrap();
        let (c1, n1) = note(&s, 4, 1);
        assert!(!state.check_offline(&v, &c1, &n1).unwrap());
        state.store(&v, &n1).unwrap();
        assert!(state.check_offline(&v, &c1, &n1).unwrap());
        let (c2, n2) = note(&s, 4, 2);
        let err = state.check_offline(&v, &c2, &n2).unwrap_err();
        let split = err.split_view().expect("a split view");
        assert_eq!(
            (split.old_note.as_str(), split.new_note.as_str()),
            (n1.as_str(), n2.as_str())
        );
        let (c3, n3) = note(&s, 9, 2);
        assert!(!state.check_offline(&v, &c3, &n3).unwrap());
        // A note that is not the checkpoint given with it is refused.
        assert!(matches!(
            state.check_offline(&v, &c1, &n3),
            Err(TrustError::Checkpoint(_))
        ));
    }

    #[test]
    fn file_names_are_per_key_and_safe() {
        let s = signer();
        let v = LogVerifier::new(&s.verifier_key()).unwrap();
        let name = file_name(&v);
        assert_eq!(name, format!("example.org_log.{:08x}.json", s.key_id()));
    }
}

//! A finding: one thing found wrong, in the one vocabulary of `audit`, `verify` and `monitor`.
//!
//! A finding says what was found ([`FindingKind`]), how bad it is ([`Severity`]), the log indexes
//! and declared names it is about, and a message a person can act on; `verify`'s findings about a
//! file name it, and a split view carries both signed checkpoint notes verbatim as evidence.
//!
//! As a JSON line (docs/monitor.md, "Output"; docs/auditing.md) it is
//! `{"kind", "severity", "indexes", "names", "message", "file"?, "evidence"?}`: `file` and
//! `evidence` are left out when empty, so the monitor's lines, which never have them, are the
//! contract's five fields exactly.
//!
//! This module decides nothing about what is a finding (the audit, `verify` and the monitor's
//! rules do) and does no I/O ([`super::Printer`] writes findings). The monitor's once-only
//! reporting is in `crate::monitor` (a finding's identity, `--watch`).

use serde::ser::{SerializeMap as _, Serializer};
use serde::Serialize;

use crate::client::trust_state::SplitView;

/// What was found. The names (`kind` in the JSON line) are a contract: the monitor's are listed
/// in docs/monitor.md, the ones only `audit` and `verify` report in docs/auditing.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// A checkpoint whose signed note does not verify under the pinned log key.
    BadCheckpointSignature,
    /// Two signed checkpoints that no append-only log can both have signed.
    InconsistentCheckpoint,
    /// A checkpoint that meets the witness policy (log signature and a quorum of witness
    /// cosignatures) and is inconsistent with another checkpoint held: the log, and the
    /// witnesses that cosigned, showed two histories.
    WitnessEquivocation,
    /// A checkpoint (or an entry beyond the latest witnessed checkpoint) that does not meet the
    /// witness policy the checker was given.
    NotWitnessed,
    /// Entries that do not hash to the signed checkpoint that covers them.
    RootMismatch,
    /// An entry served differently from how it was served (and verified) before.
    EntryChanged,
    /// An entry that the log's own admission rules refuse (its leaf, keys, envelope,
    /// signatures, statement or references to log indexes), or logged at a time before the
    /// entry preceding it.
    InvalidEntry,
    /// Two declarations of one `name@version` with different subject digests.
    Equivocation,
    /// A new release that does not supersede the current head of its name.
    BrokenHistory,
    /// A new release signed by none of the keys that signed the current head.
    KeyChange,
    /// A dataset declared again with changed descriptive fields.
    DataSubstitution,
    /// A model naming, by digest, training data or a base model the log does not have.
    DanglingReference,
    /// A release time well before the entry was logged.
    Backdating,
    /// Audit: the same submission (statement and keys) logged twice.
    DuplicateEntry,
    /// Audit and verify: the server answered a request with something that is not an answer to
    /// it (entries other than those asked for, search results out of order or of another name);
    /// from tiles, bundles or hash tiles that are missing, malformed, or contradict the
    /// checkpoint.
    BadReply,
    /// Verify: an entry the log served is not proven to be in the checkpoint it came with.
    UnprovenInclusion,
    /// Verify: the log has no verified declaration of the name (and version) asked for.
    NotFound,
    /// Verify: a proof bundle that does not verify.
    BadBundle,
    /// Verify: a proof bundle for another log than the one whose key was given.
    WrongLogKey,
    /// Verify: the declaration logs no manifest, so no directory can be compared with it.
    NoManifest,
    /// Verify: a file in the directory but not in the logged manifest.
    FileAdded,
    /// Verify: a file in the logged manifest but not in the directory.
    FileRemoved,
    /// Verify: a file whose content differs from the logged manifest's digest.
    FileChanged,
    /// Verify: the directory matches the manifest but not the declared subject digest, or
    /// (compared by root digest alone, the manifest being detached) its root digest is not the
    /// subject digest.
    SubjectMismatch,
    /// Verify: the manifest file given (`--manifest`) is not the declaration's: its root digest
    /// is not the subject digest, its SHA-256 is not the one `detachedManifest` records, or it
    /// differs from the manifest in the statement.
    ManifestMismatch,
}

impl FindingKind {
    /// The kind as written in the JSON line.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::BadCheckpointSignature => "bad-checkpoint-signature",
            FindingKind::InconsistentCheckpoint => "inconsistent-checkpoint",
            FindingKind::WitnessEquivocation => "witness-equivocation",
            FindingKind::NotWitnessed => "not-witnessed",
            FindingKind::RootMismatch => "root-mismatch",
            FindingKind::EntryChanged => "entry-changed",
            FindingKind::InvalidEntry => "invalid-entry",
            FindingKind::Equivocation => "equivocation",
            FindingKind::BrokenHistory => "broken-history",
            FindingKind::KeyChange => "key-change",
            FindingKind::DataSubstitution => "data-substitution",
            FindingKind::DanglingReference => "dangling-reference",
            FindingKind::Backdating => "backdating",
            FindingKind::DuplicateEntry => "duplicate-entry",
            FindingKind::BadReply => "bad-reply",
            FindingKind::UnprovenInclusion => "unproven-inclusion",
            FindingKind::NotFound => "not-found",
            FindingKind::BadBundle => "bad-bundle",
            FindingKind::WrongLogKey => "wrong-log-key",
            FindingKind::NoManifest => "no-manifest",
            FindingKind::FileAdded => "file-added",
            FindingKind::FileRemoved => "file-removed",
            FindingKind::FileChanged => "file-changed",
            FindingKind::SubjectMismatch => "subject-mismatch",
            FindingKind::ManifestMismatch => "manifest-mismatch",
        }
    }

    /// The severity of a finding of this kind made by [`Finding::of`]. Rules that grade their
    /// findings (the monitor's dangling references) say the severity with [`Finding::new`].
    pub fn default_severity(self) -> Severity {
        match self {
            FindingKind::BrokenHistory
            | FindingKind::Backdating
            | FindingKind::DanglingReference
            | FindingKind::DuplicateEntry
            | FindingKind::NoManifest => Severity::Warning,
            _ => Severity::Critical,
        }
    }
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Evidence that the log or a publisher misbehaved.
    Critical,
    /// Something a user should look at; it may have an innocent explanation.
    Warning,
    /// Worth knowing, not wrong.
    Info,
}

/// Named texts kept verbatim, in order (e.g. `old_checkpoint`, `new_checkpoint`); a JSON object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evidence(pub Vec<(&'static str, String)>);

impl Evidence {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Evidence {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (name, text) in &self.0 {
            map.serialize_entry(name, text)?;
        }
        map.end()
    }
}

/// One finding, as reported.
///
/// Invariant: `indexes` are log indexes in increasing order without repeats; `names` are
/// sorted and without repeats (the constructors and builders keep them so).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    pub indexes: Vec<u64>,
    pub names: Vec<String>,
    pub message: String,
    /// The file concerned (a manifest path, relative to the model directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Texts to keep verbatim.
    #[serde(skip_serializing_if = "Evidence::is_empty")]
    pub evidence: Evidence,
    /// What makes two findings the same one; `None` means every printed field.
    #[serde(skip)]
    identity: Option<String>,
}

impl Finding {
    /// A finding of `severity` about the entries `indexes` and the names `names`.
    pub fn new(
        kind: FindingKind,
        severity: Severity,
        indexes: impl IntoIterator<Item = u64>,
        names: impl IntoIterator<Item = String>,
        message: String,
    ) -> Finding {
        let mut indexes: Vec<u64> = indexes.into_iter().collect();
        indexes.sort_unstable();
        indexes.dedup();
        let mut names: Vec<String> = names.into_iter().collect();
        names.sort();
        names.dedup();
        Finding {
            kind,
            severity,
            indexes,
            names,
            message,
            file: None,
            evidence: Evidence::default(),
            identity: None,
        }
    }

    /// A finding of `kind`, of its [default severity](FindingKind::default_severity), with
    /// `message` and no location yet (see [`Finding::at`], [`Finding::named`], [`Finding::file`]).
    pub fn of(kind: FindingKind, message: impl Into<String>) -> Finding {
        Finding::new(kind, kind.default_severity(), [], [], message.into())
    }

    /// The same finding, also about log index `index`.
    pub fn at(mut self, index: u64) -> Finding {
        if let Err(at) = self.indexes.binary_search(&index) {
            self.indexes.insert(at, index);
        }
        self
    }

    /// The same finding, also about the declared name `name`.
    pub fn named(mut self, name: impl Into<String>) -> Finding {
        let name = name.into();
        if let Err(at) = self.names.binary_search(&name) {
            self.names.insert(at, name);
        }
        self
    }

    /// The same finding, about file `file`.
    pub fn file(mut self, file: impl Into<String>) -> Finding {
        self.file = Some(file.into());
        self
    }

    /// The same finding, identified by `identity` rather than by its printed fields (see
    /// [`Finding::identity`]).
    pub fn identified_by(mut self, identity: String) -> Finding {
        self.identity = Some(identity);
        self
    }

    /// What makes two findings the same one, for reporting each once: the identity given to
    /// [`Finding::identified_by`], else `None`, meaning the whole JSON line.
    pub fn identity(&self) -> Option<&str> {
        self.identity.as_deref()
    }

    /// The `inconsistent-checkpoint` finding of a split view, with both notes as evidence.
    pub fn split_view(split: &SplitView) -> Finding {
        let mut f = Finding::of(
            FindingKind::InconsistentCheckpoint,
            format!(
                "{}. Both checkpoints below are signed by the log's key: publish them, they prove \
                 that the log showed two different trees",
                split.reason
            ),
        );
        f.evidence = Evidence(vec![
            ("old_checkpoint", split.old_note.clone()),
            ("new_checkpoint", split.new_note.clone()),
        ]);
        f
    }

    /// The finding as one line of JSON, without the newline.
    pub fn to_json_line(&self) -> String {
        // Serialising plain strings, numbers and enums cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Text for people: `FAIL|WARN|NOTE <kind> (index I, N, file F): message` (the
    /// parenthesis lists what there is), then each piece of evidence indented, verbatim.
    pub fn to_text(&self) -> String {
        let mut where_ = Vec::new();
        match self.indexes.as_slice() {
            [] => {}
            [i] => where_.push(format!("index {i}")),
            many => where_.push(format!(
                "indexes {}",
                many.iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
        where_.extend(self.names.iter().cloned());
        if let Some(f) = &self.file {
            where_.push(format!("file {f}"));
        }
        let location = match where_.is_empty() {
            true => String::new(),
            false => format!(" ({})", where_.join(", ")),
        };
        let label = match self.severity {
            Severity::Critical => "FAIL",
            Severity::Warning => "WARN",
            Severity::Info => "NOTE",
        };
        let mut text = format!("{label} {}{location}: {}", self.kind, self.message);
        for (name, v) in &self.evidence.0 {
            text.push_str(&format!("\n  {name}:"));
            for line in v.lines() {
                text.push_str(&format!("\n    {line}"));
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_exactly_the_contract_fields() {
        let f = Finding::new(
            FindingKind::Equivocation,
            Severity::Critical,
            [5, 1, 5],
            ["b".to_string(), "a".to_string()],
            "m".into(),
        );
        assert_eq!(
            f.to_json_line(),
            r#"{"kind":"equivocation","severity":"critical","indexes":[1,5],"names":["a","b"],"message":"m"}"#
        );
    }

    #[test]
    fn kinds_serialise_as_their_names() {
        for kind in [
            FindingKind::BadCheckpointSignature,
            FindingKind::DataSubstitution,
            FindingKind::DuplicateEntry,
            FindingKind::SubjectMismatch,
        ] {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, serde_json::Value::String(kind.as_str().into()));
        }
    }

    #[test]
    fn builders_keep_indexes_and_names_sorted() {
        let f = Finding::of(FindingKind::InvalidEntry, "x")
            .at(7)
            .at(2)
            .at(7)
            .named("org/b")
            .named("org/a");
        assert_eq!(f.indexes, [2, 7]);
        assert_eq!(f.names, ["org/a", "org/b"]);
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(
            Finding::of(FindingKind::DuplicateEntry, "x").severity,
            Severity::Warning
        );
    }

    #[test]
    fn text_and_json_say_what_where_and_why() {
        let f = Finding::of(FindingKind::FileChanged, "differs")
            .at(3)
            .named("org/m")
            .file("w.bin");
        assert_eq!(
            f.to_text(),
            "FAIL file-changed (index 3, org/m, file w.bin): differs"
        );
        assert_eq!(
            f.to_json_line(),
            r#"{"kind":"file-changed","severity":"critical","indexes":[3],"names":["org/m"],"message":"differs","file":"w.bin"}"#
        );
        let g = Finding::of(FindingKind::DuplicateEntry, "again")
            .at(2)
            .at(1);
        assert_eq!(g.to_text(), "WARN duplicate-entry (indexes 1, 2): again");
    }

    #[test]
    fn split_views_carry_both_notes_verbatim() {
        let s = SplitView {
            old_note: "a\n1\nX\n\n— a sig\n".into(),
            new_note: "a\n1\nY\n\n— a sig2\n".into(),
            reason: "two trees".into(),
        };
        let f = Finding::split_view(&s);
        assert_eq!(f.kind, FindingKind::InconsistentCheckpoint);
        let v: serde_json::Value = serde_json::from_str(&f.to_json_line()).unwrap();
        assert_eq!(v["evidence"]["old_checkpoint"], s.old_note.as_str());
        assert_eq!(v["evidence"]["new_checkpoint"], s.new_note.as_str());
        assert!(f
            .to_json_line()
            .find("old_checkpoint")
            .is_some_and(|old| Some(old) < f.to_json_line().find("new_checkpoint")));
        assert!(f.to_text().contains("\n    — a sig2"));
    }
}

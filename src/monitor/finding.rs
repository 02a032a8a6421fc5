//! Findings: what the monitor reports, and how a finding is told apart from another.
//!
//! A finding is printed as one JSON line, `{"kind", "severity", "indexes", "names", "message"}`.
//! Its *identity* decides whether it was already reported: by default every printed field, so a
//! finding about the same entries with the same message is reported once; findings about the
//! log's checkpoints are identified by the verified checkpoint they contradict instead, so that a
//! server that keeps lying after every reconnection raises one alarm, not one per attempt.
//!
//! This module does no I/O and decides nothing about what is a finding.

use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// What was found. The names (`kind` in the JSON line) are a contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// A checkpoint whose signed note does not verify under the pinned log key.
    BadCheckpointSignature,
    /// Two signed checkpoints that no append-only log can both have signed.
    InconsistentCheckpoint,
    /// Entries that do not hash to the signed checkpoint that covers them.
    RootMismatch,
    /// An entry served differently from how it was served (and verified) before.
    EntryChanged,
    /// An entry that the log's own admission rules refuse.
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
}

impl FindingKind {
    /// The kind as written in the JSON line.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::BadCheckpointSignature => "bad-checkpoint-signature",
            FindingKind::InconsistentCheckpoint => "inconsistent-checkpoint",
            FindingKind::RootMismatch => "root-mismatch",
            FindingKind::EntryChanged => "entry-changed",
            FindingKind::InvalidEntry => "invalid-entry",
            FindingKind::Equivocation => "equivocation",
            FindingKind::BrokenHistory => "broken-history",
            FindingKind::KeyChange => "key-change",
            FindingKind::DataSubstitution => "data-substitution",
            FindingKind::DanglingReference => "dangling-reference",
            FindingKind::Backdating => "backdating",
        }
    }

    /// Findings about the log itself (checkpoints, roots, served and admitted entries): they are
    /// reported whatever `--watch` restricts the alarms to.
    pub fn is_log_level(self) -> bool {
        matches!(
            self,
            FindingKind::BadCheckpointSignature
                | FindingKind::InconsistentCheckpoint
                | FindingKind::RootMismatch
                | FindingKind::EntryChanged
                | FindingKind::InvalidEntry
        )
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

/// One finding, as reported.
///
/// Invariant: `indexes` are log indexes in increasing order without repeats; `names` are
/// sorted and without repeats (both are normalised by the constructors).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub severity: Severity,
    pub indexes: Vec<u64>,
    pub names: Vec<String>,
    pub message: String,
    /// What makes two findings the same one; `None` means every printed field.
    #[serde(skip)]
    identity: Option<String>,
}

impl Finding {
    /// A finding about the entries `indexes` and the names `names`.
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
            identity: None,
        }
    }

    /// A finding about the log's checkpoints, identified by its kind and `anchor` (the verified
    /// checkpoint note it contradicts) rather than by its message.
    pub fn about_log(kind: FindingKind, anchor: &str, message: String) -> Finding {
        let mut f = Finding::new(kind, Severity::Critical, [], [], message);
        f.identity = Some(format!("{kind}\n{anchor}"));
        f
    }

    /// The finding's identity: equal for two findings that are the same one.
    pub fn id(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"glasslog monitor finding v1\n");
        match &self.identity {
            Some(identity) => h.update(identity.as_bytes()),
            None => h.update(self.to_json_line().as_bytes()),
        }
        h.finalize().into()
    }

    /// The finding as one line of JSON, without the newline.
    pub fn to_json_line(&self) -> String {
        // Serialising plain strings, numbers and enums cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Whether the finding is to be reported under a `--watch` list (empty: everything).
    pub fn is_watched(&self, watch: &std::collections::BTreeSet<String>) -> bool {
        watch.is_empty() || self.kind.is_log_level() || self.names.iter().any(|n| watch.contains(n))
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
        let v: serde_json::Value = serde_json::from_str(&f.to_json_line()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"kind": "equivocation", "severity": "critical", "indexes": [1, 5],
                "names": ["a", "b"], "message": "m"})
        );
    }

    #[test]
    fn kinds_serialise_as_their_names() {
        for kind in [
            FindingKind::BadCheckpointSignature,
            FindingKind::DataSubstitution,
        ] {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, serde_json::Value::String(kind.as_str().into()));
        }
    }

    #[test]
    fn identity_of_log_findings_is_the_anchor() {
        let a = Finding::about_log(FindingKind::RootMismatch, "note", "first".into());
        let b = Finding::about_log(FindingKind::RootMismatch, "note", "second".into());
        let c = Finding::about_log(FindingKind::InconsistentCheckpoint, "note", "first".into());
        assert_eq!(a.id(), b.id());
        assert_ne!(a.id(), c.id());
        let d = Finding::new(
            FindingKind::Backdating,
            Severity::Warning,
            [1],
            [],
            "x".into(),
        );
        let e = Finding::new(
            FindingKind::Backdating,
            Severity::Warning,
            [1],
            [],
            "y".into(),
        );
        assert_ne!(d.id(), e.id());
    }

    #[test]
    fn watch_restricts_name_findings_only() {
        let watch: std::collections::BTreeSet<String> = ["org/a".to_string()].into();
        let named = |n: &str| {
            Finding::new(
                FindingKind::KeyChange,
                Severity::Critical,
                [1],
                [n.to_string()],
                String::new(),
            )
        };
        assert!(named("org/a").is_watched(&watch));
        assert!(!named("org/b").is_watched(&watch));
        assert!(named("org/b").is_watched(&Default::default()));
        assert!(
            Finding::about_log(FindingKind::RootMismatch, "", String::new()).is_watched(&watch)
        );
    }
}

//! How the monitor tells a finding from another, to report each once; the finding itself (kinds,
//! severities, the JSON line) is [`crate::check::finding`], shared with `audit` and `verify`.
//!
//! A finding's *identity* decides whether it was already reported: by default every printed
//! field, so a finding about the same entries with the same message is reported once; findings
//! about the log's checkpoints are identified by the verified checkpoint they contradict instead,
//! so that a server that keeps lying after every reconnection raises one alarm, not one per
//! attempt.
//!
//! This module does no I/O and decides nothing about what is a finding.

use std::collections::BTreeSet;

use sha2::{Digest as _, Sha256};

pub use crate::check::{Finding, FindingKind, Severity};

impl FindingKind {
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

impl Finding {
    /// A finding about the log's checkpoints, identified by its kind and `anchor` (the verified
    /// checkpoint note it contradicts) rather than by its message.
    pub fn about_log(kind: FindingKind, anchor: &str, message: String) -> Finding {
        Finding::new(kind, Severity::Critical, [], [], message)
            .identified_by(format!("{kind}\n{anchor}"))
    }

    /// The finding's identity: equal for two findings that are the same one.
    pub fn id(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"glasslog monitor finding v1\n");
        match self.identity() {
            Some(identity) => h.update(identity.as_bytes()),
            None => h.update(self.to_json_line().as_bytes()),
        }
        h.finalize().into()
    }

    /// Whether the finding is to be reported under a `--watch` list (empty: everything).
    pub fn is_watched(&self, watch: &BTreeSet<String>) -> bool {
        watch.is_empty() || self.kind.is_log_level() || self.names.iter().any(|n| watch.contains(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let watch: BTreeSet<String> = ["org/a".to_string()].into();
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

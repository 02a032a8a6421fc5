//! Comparing a logged manifest with a local one ([`diff`]), by name and
//! digest. Not here: hashing the local directory ([`super::hash_directory`]).

use std::collections::{HashMap, HashSet};

use super::{compare_names, Manifest};

/// The files that differ between a logged manifest and a local one, each list in manifest
/// order. A renamed file is one removed and one added name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestDiff {
    /// In the local manifest only.
    pub added: Vec<String>,
    /// In the logged manifest only.
    pub removed: Vec<String>,
    /// In both, with different digests.
    pub changed: Vec<String>,
}

impl ManifestDiff {
    /// True when both manifests name the same files with the same digests.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// What changed from `logged` to `local`, by name and digest (serialization settings are not
/// compared). Needs no particular order of either manifest's resources.
pub fn diff(logged: &Manifest, local: &Manifest) -> ManifestDiff {
    let logged_by_name: HashMap<&str, &[u8; 32]> = logged
        .resources
        .iter()
        .map(|r| (r.name.as_str(), &r.digest))
        .collect();
    let local_names: HashSet<&str> = local.resources.iter().map(|r| r.name.as_str()).collect();
    let mut out = ManifestDiff::default();
    for r in &local.resources {
        match logged_by_name.get(r.name.as_str()) {
            None => out.added.push(r.name.clone()),
            Some(digest) if **digest != r.digest => out.changed.push(r.name.clone()),
            Some(_) => {}
        }
    }
    for r in &logged.resources {
        if !local_names.contains(r.name.as_str()) {
            out.removed.push(r.name.clone());
        }
    }
    for list in [&mut out.added, &mut out.removed, &mut out.changed] {
        list.sort_by(|a, b| compare_names(a, b));
        list.dedup();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::manifest::tests::manifest;

    #[test]
    fn diff_names_each_kind() {
        let logged = manifest(&["a", "b", "c"]);
        let mut local = manifest(&["a", "c", "d"]);
        local.resources[1].digest[0] ^= 1;
        let d = diff(&logged, &local);
        assert_eq!(d.added, ["d"]);
        assert_eq!(d.removed, ["b"]);
        assert_eq!(d.changed, ["c"]);
        assert!(!d.is_empty());
        assert!(diff(&logged, &logged).is_empty());
    }
}

//! The reference rules the server applies at admission (`check_references` in
//! `src/server/service.rs`), restated over a lookup so that an auditor can re-run them on a log
//! it streams.
//!
//! A reference that gives a log index must name an entry that was in the log when the referring
//! declaration was admitted, that is a declaration of the kind the reference calls for, of the
//! name it gives (for `supersedes`, of the referring declaration's own name), with the subject
//! digest it gives. References by digest only are not checked (the log records them as they
//! are). The server admits a declaration against its latest checkpoint, whose size is at most the
//! index the entry then gets, so in a log every referenced index is below the referring one.
//!
//! This module does no I/O.

use crate::admission::declaration::{Digest, Kind, Name, Reference};

/// What the log holds at a referenced index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A declaration that passed the admission checks.
    Declaration {
        kind: Kind,
        name: Name,
        digest: Digest,
    },
    /// An entry that is not a model or dataset declaration (another statement type), or one
    /// that does not pass the admission checks.
    NotDeclaration,
}

/// One reference that breaks a rule: the JSON path of the referring object and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broken {
    pub field: String,
    pub reason: String,
}

/// Checks `references` ([`crate::admission::declaration::Declaration::references`]) of the declaration of `name` at `index`
/// against the entries before it (`lookup` is asked only for indexes below `index`).
pub fn check(
    name: &Name,
    references: &[Reference],
    index: u64,
    mut lookup: impl FnMut(u64) -> Target,
) -> Vec<Broken> {
    let mut broken = Vec::new();
    for r in references {
        let Some(target_index) = r.log_index else {
            continue;
        };
        let reason = if target_index >= index {
            Some(format!(
                "log index {target_index} was not in the log when this entry (index {index}) was \
                 admitted: a reference must point at an earlier entry"
            ))
        } else {
            judge(name, r, target_index, lookup(target_index))
        };
        if let Some(reason) = reason {
            broken.push(Broken {
                field: r.field.clone(),
                reason,
            });
        }
    }
    broken
}

/// The first rule `target` breaks for reference `r` of the declaration of `own`, as the server
/// words it.
fn judge(own: &Name, r: &Reference, at: u64, target: Target) -> Option<String> {
    let Target::Declaration { kind, name, digest } = target else {
        return Some(format!("entry {at} is not a model or dataset declaration"));
    };
    if kind != r.kind {
        return Some(format!(
            "entry {at} is a {kind} declaration, not a {}",
            r.kind
        ));
    }
    if let Some(want) = r.name.required(own) {
        if &name != want {
            return Some(format!("entry {at} declares \"{name}\", not \"{want}\""));
        }
    }
    if digest != r.digest {
        return Some(format!(
            "entry {at} has subject digest {digest}, the reference says {}",
            r.digest
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::declaration::{
        parse_statement, Declaration, Supersedes, TrainingDataRef,
    };

    const MODEL: &[u8] = include_bytes!("../../tests/data/declarations/model-release.json");

    fn model() -> crate::admission::declaration::ModelRelease {
        match parse_statement(MODEL).unwrap() {
            Declaration::Model(m) => m,
            _ => panic!("not a model"),
        }
    }

    fn check(d: &Declaration, index: u64, lookup: impl FnMut(u64) -> Target) -> Vec<Broken> {
        super::check(d.name(), &d.references(), index, lookup)
    }

    fn target(kind: Kind, name: &str, digest: Digest) -> Target {
        Target::Declaration {
            kind,
            name: name.parse().unwrap(),
            digest,
        }
    }

    #[test]
    fn the_server_s_rules() {
        let mut m = model();
        let data = Digest::of(b"data");
        m.training_data = vec![TrainingDataRef {
            name: "org/data".parse().unwrap(),
            digest: data,
            role: crate::admission::declaration::Role::Pretraining,
            log_index: Some(3),
        }];
        m.base_models.clear();
        m.supersedes = Some(Supersedes {
            log_index: 4,
            digest: Digest::of(b"old"),
        });
        let own = m.name.to_string();
        let d = Declaration::Model(m);
        let ok = |i: u64| match i {
            3 => target(Kind::Dataset, "org/data", data),
            _ => target(Kind::Model, &own, Digest::of(b"old")),
        };
        assert_eq!(check(&d, 10, ok), vec![]);
        // An index at or after the referring entry.
        let b = check(&d, 4, ok);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].field, "$.predicate.supersedes");
        assert!(b[0].reason.contains("not in the log when"), "{b:?}");
        // Wrong kind, wrong name, wrong digest, not a declaration.
        let cases: [(Target, &str); 4] = [
            (
                target(Kind::Model, "org/data", data),
                "is a model declaration, not a dataset",
            ),
            (
                target(Kind::Dataset, "org/other", data),
                "declares \"org/other\", not \"org/data\"",
            ),
            (
                target(Kind::Dataset, "org/data", Digest::of(b"x")),
                "has subject digest",
            ),
            (
                Target::NotDeclaration,
                "is not a model or dataset declaration",
            ),
        ];
        for (t, needle) in cases {
            let b = check(&d, 10, |i| if i == 3 { t.clone() } else { ok(i) });
            assert_eq!(b.len(), 1, "{needle}");
            assert_eq!(b[0].field, "$.predicate.trainingData[0]");
            assert!(b[0].reason.contains(needle), "{}", b[0].reason);
        }
        // supersedes must name the referring declaration's own name.
        let b = check(&d, 10, |i| {
            if i == 4 {
                target(Kind::Model, "org/else", Digest::of(b"old"))
            } else {
                ok(i)
            }
        });
        assert!(b[0].reason.contains("org/else"), "{b:?}");
    }
}

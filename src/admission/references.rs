//! The reference rules: how a declaration relates to the entries it names by log index.
//!
//! A reference that gives a log index must name an entry that was in the log before the
//! referring one, that is a declaration of the kind the reference calls for, whose name
//! satisfies the reference's name rule (for `supersedes`, the referring declaration's own name),
//! and whose subject digest is the one the reference gives. References by digest only are not
//! checked: the log records them as they are.
//!
//! "Before" is a bound the caller passes: the server admits against its latest checkpoint, whose
//! size is at most the index the entry then gets; a checker re-running admission on the entry at
//! index `i` passes `i`, the size of the log before it. So in a log every referenced index is
//! below the referring one.
//!
//! No I/O: what the log holds at an index comes through a [`Lookup`] the caller passes (the
//! server reads its store; `audit` and `monitor` read what they recorded of the entries they
//! already judged). This module is not the per-entry admission ([`super::admit`]).

use std::collections::hash_map::{Entry, HashMap};

use crate::admission::declaration::{Digest, Kind, NameRule, Reference};

/// What the log holds at a referenced index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// An admitted model-release or training-data declaration.
    Declaration {
        kind: Kind,
        name: String,
        digest: Digest,
    },
    /// Any other entry: a statement of another predicate type, or (for a checker) an entry
    /// that admission refuses.
    NotDeclaration,
}

/// What the log holds at an index, as the caller knows it.
pub trait Lookup {
    /// Why the caller could not tell (a store failure): not a verdict on the entry.
    type Error;

    /// The entry at `index`. Called only for indexes below the bound given to [`check`], so
    /// the entry exists.
    ///
    /// # Errors
    /// The caller's own failure to read what it holds.
    fn target(&self, index: u64) -> Result<Target, Self::Error>;
}

/// The rule a reference breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The index is not below the bound: the entry was not in the log before this one.
    #[error("log index {index} is not in the log (its size is {size})")]
    NotInLog { index: u64, size: u64 },
    #[error("entry {index} is not a model or dataset declaration")]
    NotDeclaration { index: u64 },
    #[error("entry {index} is a {found} declaration, not a {wanted}")]
    Kind {
        index: u64,
        found: Kind,
        wanted: Kind,
    },
    #[error("entry {index} declares {found:?}, not {wanted:?}")]
    Name {
        index: u64,
        found: String,
        wanted: String,
    },
    #[error("entry {index} has subject digest {found}, the reference says {wanted}")]
    Digest {
        index: u64,
        found: Digest,
        wanted: Digest,
    },
}

/// A reference that breaks a rule: the JSON path of the referring object and the rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct BrokenReference {
    /// E.g. `$.predicate.trainingData[2]`.
    pub field: String,
    pub reason: ReferenceError,
}

/// Checks the `references` of the declaration named `own_name` against a log of `size` entries;
/// the first reference that breaks a rule, in the order of
/// [`crate::admission::declaration::Declaration::references`].
///
/// Cost: `lookup` is asked only for indexes below `size`, and at most once per distinct index
/// however many references name it (a declaration naming one large entry a thousand times
/// reads and parses it once).
///
/// # Errors
/// The lookup's failure (no verdict). The verdict itself is the inner result.
pub fn check<L: Lookup>(
    own_name: &str,
    references: &[Reference],
    size: u64,
    lookup: &L,
) -> Result<Result<(), BrokenReference>, L::Error> {
    let mut seen: HashMap<u64, Target> = HashMap::new();
    for r in references {
        let Some(index) = r.log_index else { continue };
        let broken = if index >= size {
            Some(ReferenceError::NotInLog { index, size })
        } else {
            let target = match seen.entry(index) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(slot) => slot.insert(lookup.target(index)?),
            };
            judge(own_name, r, index, target.clone())
        };
        if let Some(reason) = broken {
            return Ok(Err(BrokenReference {
                field: r.field.clone(),
                reason,
            }));
        }
    }
    Ok(Ok(()))
}

/// The first rule `target`, at `index`, breaks for reference `r` of the declaration `own_name`.
fn judge(own_name: &str, r: &Reference, index: u64, target: Target) -> Option<ReferenceError> {
    let Target::Declaration { kind, name, digest } = target else {
        return Some(ReferenceError::NotDeclaration { index });
    };
    if kind != r.kind {
        return Some(ReferenceError::Kind {
            index,
            found: kind,
            wanted: r.kind,
        });
    }
    if let Err(wanted) = name_rule_holds(r, own_name, &name) {
        return Some(ReferenceError::Name {
            index,
            found: name,
            wanted,
        });
    }
    (digest != r.digest).then_some(ReferenceError::Digest {
        index,
        found: digest,
        wanted: r.digest,
    })
}

/// Whether `found`, the referenced declaration's name, is the one reference `r` requires of the
/// declaration `own_name`; if not, the name it requires.
fn name_rule_holds(r: &Reference, own_name: &str, found: &str) -> Result<(), String> {
    let wanted = match &r.name {
        NameRule::Any => return Ok(()),
        NameRule::SameAsReferrer => own_name,
        NameRule::Is(name) => name.as_str(),
    };
    if found == wanted {
        Ok(())
    } else {
        Err(wanted.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    struct Log(HashMap<u64, Target>);

    impl Lookup for Log {
        type Error = std::convert::Infallible;
        fn target(&self, index: u64) -> Result<Target, Self::Error> {
            Ok(self
                .0
                .get(&index)
                .cloned()
                .unwrap_or(Target::NotDeclaration))
        }
    }

    fn target(kind: Kind, name: &str, digest: Digest) -> Target {
        Target::Declaration {
            kind,
            name: name.into(),
            digest,
        }
    }

    fn reference(field: &str, kind: Kind, name: Option<&str>, at: u64, same: bool) -> Reference {
        let name = match (name, same) {
            (Some(n), _) => NameRule::Is(n.parse().unwrap()),
            (None, true) => NameRule::SameAsReferrer,
            (None, false) => NameRule::Any,
        };
        Reference {
            field: field.into(),
            kind,
            name,
            digest: Digest::of(field.as_bytes()),
            log_index: Some(at),
        }
    }

    #[test]
    fn each_rule_is_named() {
        let data = reference("$.t", Kind::Dataset, Some("org/data"), 3, false);
        let sup = reference("$.s", Kind::Model, None, 4, true);
        let good = || {
            Log(HashMap::from([
                (3, target(Kind::Dataset, "org/data", data.digest)),
                (4, target(Kind::Model, "org/m", sup.digest)),
            ]))
        };
        let refs = [data.clone(), sup.clone()];
        let run = |log: &Log, size| check("org/m", &refs, size, log).unwrap();
        assert_eq!(run(&good(), 10), Ok(()));
        // By digest only: not checked.
        let by_digest = Reference {
            log_index: None,
            ..data.clone()
        };
        assert_eq!(check("org/m", &[by_digest], 0, &good()).unwrap(), Ok(()));

        let broken = |log: Log, size: u64| run(&log, size).unwrap_err();
        let b = broken(good(), 4);
        assert_eq!(b.field, "$.s");
        assert_eq!(b.reason, ReferenceError::NotInLog { index: 4, size: 4 });
        assert_eq!(
            b.to_string(),
            "$.s: log index 4 is not in the log (its size is 4)"
        );
        let with = |at: u64, t: Target| {
            let mut log = good();
            log.0.insert(at, t);
            log
        };
        let cases = [
            (
                with(3, Target::NotDeclaration),
                "$.t: entry 3 is not a model or dataset declaration",
            ),
            (
                with(3, target(Kind::Model, "org/data", data.digest)),
                "$.t: entry 3 is a model declaration, not a dataset",
            ),
            (
                with(3, target(Kind::Dataset, "org/other", data.digest)),
                "$.t: entry 3 declares \"org/other\", not \"org/data\"",
            ),
            (
                with(4, target(Kind::Model, "org/else", sup.digest)),
                "$.s: entry 4 declares \"org/else\", not \"org/m\"",
            ),
            (
                with(3, target(Kind::Dataset, "org/data", Digest::of(b"x"))),
                "$.t: entry 3 has subject digest",
            ),
        ];
        for (log, needle) in cases {
            let b = broken(log, 10).to_string();
            assert!(b.starts_with(needle), "{b}");
        }
    }

    #[test]
    fn each_index_is_looked_up_once_however_often_it_is_named() {
        struct Counting(Cell<usize>, Target);
        impl Lookup for Counting {
            type Error = std::convert::Infallible;
            fn target(&self, _: u64) -> Result<Target, Self::Error> {
                self.0.set(self.0.get() + 1);
                Ok(self.1.clone())
            }
        }
        let r = reference("$.t", Kind::Dataset, Some("org/data"), 3, false);
        let log = Counting(Cell::new(0), target(Kind::Dataset, "org/data", r.digest));
        let mut refs = vec![r.clone(); 5000];
        refs.push(reference("$.u", Kind::Dataset, None, 4, false));
        let b = check("org/m", &refs, 10, &log).unwrap().unwrap_err();
        // Every copy was judged (the last reference's digest differs), from two reads.
        assert_eq!(b.field, "$.u");
        assert_eq!(log.0.get(), 2);
    }

    #[test]
    fn lookup_failures_are_not_verdicts() {
        struct Failing;
        impl Lookup for Failing {
            type Error = &'static str;
            fn target(&self, _: u64) -> Result<Target, &'static str> {
                Err("disk on fire")
            }
        }
        let r = reference("$.t", Kind::Dataset, None, 0, false);
        assert_eq!(check("org/m", &[r], 5, &Failing), Err("disk on fire"));
    }
}

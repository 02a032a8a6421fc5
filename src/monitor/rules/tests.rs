use super::*;
use crate::admission::declaration::{Name, NameRule, Reference, Supersedes, Timestamp};
use crate::monitor::store::Store;

const WEEK_MS: i64 = 7 * 86_400_000;
const NOW_MS: i64 = 1_780_000_000_000;

fn opts() -> RuleOptions {
    RuleOptions {
        backdate_window_ms: WEEK_MS,
    }
}

fn digest(b: u8) -> Digest {
    Digest([b; 32])
}

fn key(b: u8) -> KeyId {
    KeyId([b; 32])
}

/// A declaration released at `NOW_MS - 1 day`, logged at `NOW_MS`, signed by key 1.
fn decl(kind: Kind, name: &str, version: &str, d: u8) -> EntryFacts {
    EntryFacts {
        integrated_ms: NOW_MS,
        key_ids: vec![key(1)],
        declaration: Some(DeclarationFacts {
            kind,
            name: name.into(),
            version: version.into(),
            digest: digest(d),
            release_time: "2026-05-27T00:00:00Z".parse::<Timestamp>().unwrap(),
            has_manifest: true,
            supersedes: None,
            references: Vec::new(),
            dataset: (kind == Kind::Dataset).then_some(DatasetFields([[0; 16]; 5])),
        }),
    }
}

fn with<F: FnOnce(&mut DeclarationFacts)>(mut e: EntryFacts, f: F) -> EntryFacts {
    f(e.declaration.as_mut().unwrap());
    e
}

fn supersedes(index: u64, d: u8) -> impl FnOnce(&mut DeclarationFacts) {
    move |x| {
        x.supersedes = Some(Supersedes {
            log_index: index,
            digest: digest(d),
        })
    }
}

fn reference(kind: Kind, name: &str, d: u8, log_index: Option<u64>) -> Reference {
    Reference {
        field: if kind == Kind::Dataset {
            "$.predicate.trainingData[0]".into()
        } else {
            "$.predicate.baseModels[0]".into()
        },
        kind,
        name: NameRule::Is(name.parse::<Name>().unwrap()),
        digest: digest(d),
        log_index,
    }
}

/// Applies entries in order from index 0 and returns the kinds found per entry.
fn kinds(entries: &[EntryFacts]) -> Vec<Vec<FindingKind>> {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), "log").unwrap();
    let mut tx = store.tx();
    let mut out = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        // Supersedes references are checked like admission checks them: add them here.
        let mut e = e.clone();
        if let Some(d) = e.declaration.as_mut() {
            if let Some(s) = &d.supersedes {
                d.references.push(Reference {
                    field: "$.predicate.supersedes".into(),
                    kind: d.kind,
                    name: NameRule::SameAsReferrer,
                    digest: s.digest,
                    log_index: Some(s.log_index),
                });
            }
        }
        out.push(
            apply(&mut tx, i as u64, &e, opts())
                .unwrap()
                .into_iter()
                .map(|f| f.kind)
                .collect(),
        );
    }
    out
}

#[test]
fn an_honest_history_has_no_findings() {
    let m = |v: &str, d| decl(Kind::Model, "org/m", v, d);
    let data = decl(Kind::Dataset, "org/data", "1", 9);
    let trained = with(m("1", 1), |x| {
        x.references
            .push(reference(Kind::Dataset, "org/data", 9, None))
    });
    let entries = [
        data.clone(),
        trained,
        with(m("2", 2), supersedes(1, 1)),
        // A re-declaration (same name, version and digest) by another key is not a release.
        EntryFacts {
            key_ids: vec![key(7)],
            ..m("2", 2)
        },
        data,
        with(m("3", 3), supersedes(2, 2)),
        // Consent to a new key: the release is signed by the old key and the new one.
        EntryFacts {
            key_ids: vec![key(1), key(2)],
            ..with(m("4", 4), supersedes(5, 3))
        },
        EntryFacts {
            key_ids: vec![key(2)],
            ..with(m("5", 5), supersedes(6, 4))
        },
        // The same name as a dataset has its own history.
        decl(Kind::Dataset, "org/m", "1", 6),
        with(decl(Kind::Dataset, "org/data", "2", 10), supersedes(0, 9)),
    ];
    assert!(
        kinds(&entries).iter().all(Vec::is_empty),
        "{:?}",
        kinds(&entries)
    );
}

#[test]
fn equivocation_is_one_version_with_two_digests() {
    let found = kinds(&[
        decl(Kind::Model, "org/m", "1", 1),
        decl(Kind::Model, "org/m", "1", 2),
    ]);
    assert!(found[1].contains(&FindingKind::Equivocation), "{found:?}");
}

#[test]
fn revealing_a_private_dataset_is_not_equivocation() {
    let private = with(decl(Kind::Dataset, "org/d", "1", 1), |x| {
        x.has_manifest = false
    });
    let revealed = with(decl(Kind::Dataset, "org/d", "1", 2), supersedes(0, 1));
    assert_eq!(kinds(&[private.clone(), revealed]), vec![vec![], vec![]]);
    // Without supersedes, it is one.
    let found = kinds(&[private, decl(Kind::Dataset, "org/d", "1", 2)]);
    assert!(found[1].contains(&FindingKind::Equivocation), "{found:?}");
}

#[test]
fn history_must_supersede_the_head() {
    let m = |v: &str, d| decl(Kind::Model, "org/m", v, d);
    let found = kinds(&[m("1", 1), m("2", 2)]);
    assert_eq!(found[1], vec![FindingKind::BrokenHistory]);
    // Superseding an older release forks the history.
    let found = kinds(&[
        m("1", 1),
        with(m("2", 2), supersedes(0, 1)),
        with(m("3", 3), supersedes(0, 1)),
    ]);
    assert_eq!(found[2], vec![FindingKind::BrokenHistory]);
}

#[test]
fn a_new_key_needs_the_old_ones_consent() {
    let m = |v: &str, d| decl(Kind::Model, "org/m", v, d);
    let found = kinds(&[
        m("1", 1),
        EntryFacts {
            key_ids: vec![key(2)],
            ..with(m("2", 2), supersedes(0, 1))
        },
    ]);
    assert_eq!(found[1], vec![FindingKind::KeyChange]);
}

#[test]
fn changed_dataset_fields_are_data_substitution_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), "log").unwrap();
    let mut tx = store.tx();
    let original = decl(Kind::Dataset, "org/d", "1", 1);
    assert!(apply(&mut tx, 0, &original, opts()).unwrap().is_empty());
    // Same name@version and digest, another license and personal-data handling.
    let swapped = with(original.clone(), |x| {
        let f = x.dataset.as_mut().unwrap();
        f.0[0] = [1; 16];
        f.0[3] = [1; 16];
    });
    let found = apply(&mut tx, 1, &swapped, opts()).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, FindingKind::DataSubstitution);
    assert_eq!(found[0].indexes, vec![0, 1]);
    assert!(
        found[0].message.contains("license, personalData changed"),
        "{}",
        found[0].message
    );
    // The same digest under another name@version, with other sources.
    let renamed = with(original.clone(), |x| {
        x.name = "org/other".into();
        x.dataset.as_mut().unwrap().0[1] = [2; 16];
    });
    let found = apply(&mut tx, 2, &renamed, opts()).unwrap();
    assert_eq!(
        found.iter().map(|f| f.kind).collect::<Vec<_>>(),
        vec![FindingKind::DataSubstitution]
    );
    assert!(
        found[0].message.contains("sources changed"),
        "{}",
        found[0].message
    );
    // A new version with a new digest and new fields is not one.
    let next = with(original, |x| {
        x.version = "2".into();
        x.digest = digest(2);
        x.dataset.as_mut().unwrap().0[0] = [3; 16];
        x.supersedes = Some(Supersedes {
            log_index: 0,
            digest: digest(1),
        });
    });
    assert!(apply(&mut tx, 3, &next, opts()).unwrap().is_empty());
}

#[test]
fn references_by_digest_must_be_logged_before() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), "log").unwrap();
    let mut tx = store.tx();
    let model = with(decl(Kind::Model, "org/m", "1", 1), |x| {
        x.references = vec![
            reference(Kind::Dataset, "org/data", 9, None),
            reference(Kind::Model, "other/base", 8, None),
        ];
    });
    let found = apply(&mut tx, 0, &model, opts()).unwrap();
    let got: Vec<_> = found.iter().map(|f| (f.kind, f.severity)).collect();
    assert_eq!(
        got,
        vec![
            (FindingKind::DanglingReference, Severity::Warning),
            (FindingKind::DanglingReference, Severity::Info)
        ]
    );
    assert_eq!(
        found[0].names,
        vec!["org/data".to_string(), "org/m".to_string()]
    );
    // Logged later: the model's entry stays what it was; a new model naming it is fine.
    assert!(
        apply(&mut tx, 1, &decl(Kind::Dataset, "org/data", "1", 9), opts())
            .unwrap()
            .is_empty()
    );
    let again = with(decl(Kind::Model, "org/n", "1", 2), |x| {
        x.references = vec![reference(Kind::Dataset, "org/data", 9, None)]
    });
    assert!(apply(&mut tx, 2, &again, opts()).unwrap().is_empty());
}

#[test]
fn references_by_index_are_rechecked_as_admission_does() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db"), "log").unwrap();
    let mut tx = store.tx();
    assert!(
        apply(&mut tx, 0, &decl(Kind::Dataset, "org/data", "1", 9), opts())
            .unwrap()
            .is_empty()
    );
    let cases = [
        (reference(Kind::Dataset, "org/data", 9, Some(0)), None),
        (
            reference(Kind::Dataset, "org/data", 8, Some(0)),
            Some("subject digest"),
        ),
        (
            reference(Kind::Dataset, "org/else", 9, Some(0)),
            Some("declares"),
        ),
        (
            reference(Kind::Model, "org/data", 9, Some(0)),
            Some("not a model"),
        ),
        (
            reference(Kind::Dataset, "org/data", 9, Some(5)),
            Some("not in the log"),
        ),
    ];
    for (i, (r, refused)) in cases.into_iter().enumerate() {
        let index = 1 + i as u64;
        let model = with(
            decl(Kind::Model, &format!("org/m{i}"), "1", 20 + i as u8),
            |x| x.references = vec![r],
        );
        let found = apply(&mut tx, index, &model, opts()).unwrap();
        match refused {
            None => assert!(found.is_empty(), "{found:?}"),
            Some(why) => {
                assert_eq!(found.len(), 1);
                assert_eq!(found[0].kind, FindingKind::InvalidEntry);
                assert!(found[0].message.contains(why), "{}", found[0].message);
            }
        }
    }
    // An index that holds no declaration.
    let model = with(decl(Kind::Model, "org/x", "1", 40), |x| {
        x.references = vec![reference(Kind::Dataset, "org/data", 9, Some(3))]
    });
    assert_eq!(
        apply(&mut tx, 10, &model, opts()).unwrap()[0].kind,
        FindingKind::InvalidEntry
    );
}

#[test]
fn backdating_is_judged_against_the_first_logging() {
    let m = decl(Kind::Model, "org/m", "1", 1);
    let old = with(m.clone(), |x| {
        x.release_time = "2026-01-01T00:00:00Z".parse().unwrap()
    });
    assert_eq!(
        kinds(std::slice::from_ref(&old)),
        vec![vec![FindingKind::Backdating]]
    );
    // Re-declared a month later with the original release time: not backdating.
    let later = EntryFacts {
        integrated_ms: NOW_MS + 30 * 86_400_000,
        key_ids: vec![key(5)],
        ..m.clone()
    };
    assert_eq!(kinds(&[m, later]), vec![vec![], vec![]]);
}

#[test]
fn records_round_trip_and_damage_is_detected() {
    let v = VersionRecord {
        index: 3,
        digest: digest(1),
        integrated_ms: -5,
        has_manifest: true,
        fields: Some(DatasetFields([[7; 16]; 5])),
    };
    assert_eq!(VersionRecord::decode(&v.encode()), Some(v.clone()));
    let h = HeadRecord {
        index: 9,
        digest: digest(2),
        version: "1.0".into(),
        keys: vec![key(1), key(2)],
    };
    assert_eq!(HeadRecord::decode(&h.encode()), Some(h));
    let d = DigestRecord {
        index: 1,
        name: "a/b".into(),
        version: "v".into(),
        fields: None,
    };
    assert_eq!(DigestRecord::decode(&d.encode()), Some(d));
    let i = IndexRecord {
        kind: Kind::Dataset,
        digest: digest(4),
        name: "a/b".into(),
    };
    assert_eq!(IndexRecord::decode(&i.encode()), Some(i));
    let mut bad = v.encode();
    bad.pop();
    assert_eq!(VersionRecord::decode(&bad), None);
    assert_eq!(HeadRecord::decode(&[1, 2, 3]), None);
}

#[test]
fn times_format_as_rfc3339() {
    assert_eq!(format_ms(0), "1970-01-01T00:00:00Z");
    assert_eq!(format_ms(1_780_000_000_000), "2026-05-28T20:26:40Z");
    assert_eq!(format_ms(951_782_400_000), "2000-02-29T00:00:00Z");
}

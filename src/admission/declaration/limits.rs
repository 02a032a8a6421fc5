//! The caps on the lists a declaration carries, and the one check that applies them.
//!
//! Each cap is at least the number of the list's smallest valid elements that fit in a
//! loggable statement ([`MAX_STATEMENT_BYTES`]): a log entry is at most
//! [`crate::entry::MAX_LEAF_BYTES`] (C2SP tlog-tiles), and its envelope carries the statement in
//! base64. So no cap refuses a declaration the log could hold, and no logged entry fails
//! admission re-run by a checker because of one. What the caps bound is the work admission does
//! before the leaf length is known (it is first known at the sequencer, after admission): a
//! Submit may carry an envelope up to the operator's `max_envelope_bytes` (1 MiB by default), and
//! its lists are refused by their length here, before any element is read.
//!
//! What this is not: the per-element rules ([`super::read`]), the envelope's own caps
//! (signatures and keys, [`crate::admission::dsse`]), or a size limit on the statement (the
//! server's envelope limit and the leaf limit).

use serde_json::Value;

use super::{DeclarationError, Kind};
use crate::admission::strict_json::Map;

/// Longest statement a loggable leaf can carry: the leaf holds the envelope, which holds the
/// statement in base64 (4 characters per 3 bytes). An upper bound: the envelope's other members,
/// the keys and the framing take some of the leaf too.
pub const MAX_STATEMENT_BYTES: usize = crate::entry::MAX_LEAF_BYTES / 4 * 3;

/// Most `trainingData` entries of a model release. The smallest entry,
/// `{"name":"a","digest":{"sha256":"<64 hex>"},"role":"evaluation"}` and its comma, is 120 bytes:
/// at most 410 fit.
pub const MAX_TRAINING_DATA: usize = 1024;

/// Most `baseModels` entries of a model release (the smallest is 119 bytes with its
/// comma: at most 413 fit).
pub const MAX_BASE_MODELS: usize = 1024;

/// Most `sources` of a training-data declaration (`{"category":"other","name":"a"}` and its
/// comma, 32 bytes: at most
/// 1,536 fit).
pub const MAX_SOURCES: usize = 2048;

/// Most `resources` (files) of a manifest embedded in a declaration
/// (`{"name":"a","algorithm":"sha256","digest":"<64 hex>"}` and its comma, 110 bytes: at most 447 fit). A model
/// with more files keeps its manifest in a file of its own (`detachedManifest`), which has no cap.
pub const MAX_RESOURCES: usize = 1024;

/// Most `ignore_paths` of a manifest's or a detached manifest's `serialization` (`"a"` and its
/// comma, 4 bytes: at most 12,287 fit).
pub const MAX_IGNORE_PATHS: usize = 16384;

/// A list of a declaration and its cap: the JSON path from the predicate, as member names.
struct Cap {
    path: &'static [&'static str],
    limit: usize,
}

const MODEL_CAPS: [Cap; 5] = [
    Cap {
        path: &["trainingData"],
        limit: MAX_TRAINING_DATA,
    },
    Cap {
        path: &["baseModels"],
        limit: MAX_BASE_MODELS,
    },
    Cap {
        path: &["manifest", "resources"],
        limit: MAX_RESOURCES,
    },
    Cap {
        path: &["manifest", "serialization", "ignore_paths"],
        limit: MAX_IGNORE_PATHS,
    },
    Cap {
        path: &["detachedManifest", "serialization", "ignore_paths"],
        limit: MAX_IGNORE_PATHS,
    },
];

const DATASET_CAPS: [Cap; 3] = [
    Cap {
        path: &["sources"],
        limit: MAX_SOURCES,
    },
    Cap {
        path: &["manifest", "resources"],
        limit: MAX_RESOURCES,
    },
    Cap {
        path: &["manifest", "serialization", "ignore_paths"],
        limit: MAX_IGNORE_PATHS,
    },
];

/// Refuses a predicate of `kind` one of whose lists is longer than its cap, naming the list
/// and the cap. Reads only array lengths: a member that is absent or not an array is left to
/// the rules that read it.
///
/// # Errors
/// [`DeclarationError::TooMany`] for the first list over its cap.
pub(super) fn check_lists(kind: Kind, predicate: &Map) -> Result<(), DeclarationError> {
    let caps: &[Cap] = match kind {
        Kind::Model => &MODEL_CAPS,
        Kind::Dataset => &DATASET_CAPS,
    };
    for cap in caps {
        let (first, rest) = cap.path.split_first().expect("a cap names a member");
        let found = rest
            .iter()
            .try_fold(predicate.get(*first), |v, key| Some(v?.get(*key)))
            .flatten();
        if let Some(Value::Array(items)) = found {
            if items.len() > cap.limit {
                return Err(DeclarationError::TooMany {
                    path: format!("$.predicate.{}", cap.path.join(".")),
                    count: items.len(),
                    limit: cap.limit,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DIGEST: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    /// The smallest valid element of each capped list, and its cap.
    fn smallest() -> Vec<(Value, usize)> {
        vec![
            (
                json!({"name": "a", "digest": {"sha256": DIGEST}, "role": "evaluation"}),
                MAX_TRAINING_DATA,
            ),
            (
                json!({"name": "a", "digest": {"sha256": DIGEST}, "relation": "merge"}),
                MAX_BASE_MODELS,
            ),
            (json!({"category": "other", "name": "a"}), MAX_SOURCES),
            (
                json!({"name": "a", "algorithm": "sha256", "digest": DIGEST}),
                MAX_RESOURCES,
            ),
            (json!("a"), MAX_IGNORE_PATHS),
        ]
    }

    #[test]
    fn no_cap_refuses_a_list_that_fits_in_a_leaf() {
        for (element, limit) in smallest() {
            // Compact JSON and a comma: the least an element adds to a statement.
            let bytes = element.to_string().len() + 1;
            assert!(
                limit * bytes >= MAX_STATEMENT_BYTES,
                "{element}: {limit} × {bytes} bytes < {MAX_STATEMENT_BYTES}"
            );
        }
    }

    #[test]
    fn a_list_over_its_cap_is_named_with_the_cap() {
        let over = |n: usize| Value::Array(vec![json!(0); n]);
        let model = |v: Value| -> Map { serde_json::from_value(v).unwrap() };
        let at = model(json!({
            "trainingData": over(MAX_TRAINING_DATA),
            "manifest": {"resources": over(MAX_RESOURCES),
                         "serialization": {"ignore_paths": over(MAX_IGNORE_PATHS)}},
        }));
        assert_eq!(check_lists(Kind::Model, &at), Ok(()));
        let cases = [
            (
                Kind::Model,
                json!({"trainingData": over(MAX_TRAINING_DATA + 1)}),
                "$.predicate.trainingData has 1025 entries; at most 1024",
            ),
            (
                Kind::Model,
                json!({"baseModels": over(MAX_BASE_MODELS + 1)}),
                "$.predicate.baseModels has 1025",
            ),
            (
                Kind::Model,
                json!({"detachedManifest": {"serialization": {"ignore_paths": over(MAX_IGNORE_PATHS + 1)}}}),
                "$.predicate.detachedManifest.serialization.ignore_paths has 16385",
            ),
            (
                Kind::Dataset,
                json!({"sources": over(MAX_SOURCES + 1)}),
                "$.predicate.sources has 2049",
            ),
            (
                Kind::Dataset,
                json!({"manifest": {"resources": over(MAX_RESOURCES + 1)}}),
                "$.predicate.manifest.resources has 1025",
            ),
        ];
        for (kind, predicate, want) in cases {
            let e = check_lists(kind, &model(predicate)).unwrap_err();
            assert!(e.to_string().starts_with(want), "{e}");
        }
        // Not arrays, or absent: for the rules that read them.
        let odd = model(json!({"trainingData": "x", "manifest": 3}));
        assert_eq!(check_lists(Kind::Model, &odd), Ok(()));
    }
}

//! Which records of a file to keep: the high-confidence filter and the split by context.
//!
//! Both are pure functions of each record's content, so a record's fate never depends on
//! which other records the file holds or in what order.

use serde_json::Value;

use super::jsonl::kind;
use super::{DataError, Record, Split, SplitSide};
use crate::fingerprint;
use std::path::Path;

/// The TL;DR confidence values (on its 1-9 scale) that count as high confidence: the
/// labeler was sure, whichever side it chose.
const HIGH_CONFIDENCE: [f64; 4] = [1.0, 2.0, 8.0, 9.0];

/// The records whose `meta.confidence` is 1, 2, 8 or 9. A record with no numeric
/// confidence is an error: silently dropping it would make the filter mean "the records
/// that happen to carry a confidence".
pub(super) fn high_confidence(path: &Path, records: Vec<Record>) -> Result<Vec<Record>, DataError> {
    let mut kept = Vec::with_capacity(records.len());
    for record in records {
        let confidence = match record.example.meta.get("confidence") {
            Some(Value::Number(number)) => number.as_f64(),
            Some(other) => {
                return Err(record.error(
                    path,
                    format!(
                        "`meta.confidence` must be a number, found {} \
                         (high_confidence keeps confidence 1, 2, 8 or 9)",
                        kind(other)
                    ),
                ));
            }
            None => {
                return Err(record.error(
                    path,
                    "no `meta.confidence` (high_confidence needs a 1-9 confidence on every \
                     record; turn it off for data without one)",
                ));
            }
        };
        if confidence.is_some_and(|value| HIGH_CONFIDENCE.contains(&value)) {
            kept.push(record);
        }
    }
    Ok(kept)
}

impl Split {
    /// The side `context` falls on: holdout iff the first 8 bytes of
    /// SHA-256(`"rlaif-split:" + context`), as a fraction of 2^64, are below `holdout`.
    ///
    /// Hashing the context (not the id or the position) keeps every pair about one post or
    /// conversation on one side, and keeps the sides stable when records are added.
    pub fn side(&self, context: &str) -> SplitSide {
        let hash = fingerprint::hash_u64(format!("rlaif-split:{context}"));
        // 2^64 exactly; the u64 rounds to the nearest f64, which cannot move a value
        // across any threshold a user writes with fewer than 15 digits.
        let fraction = hash as f64 / 18_446_744_073_709_551_616.0;
        if fraction < self.holdout {
            SplitSide::Holdout
        } else {
            SplitSide::Rest
        }
    }

    /// The items whose context falls on the kept side, in their order.
    pub(super) fn select<T>(&self, items: Vec<T>, context: impl Fn(&T) -> &str) -> Vec<T> {
        items
            .into_iter()
            .filter(|item| self.side(context(item)) == self.keep)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Example, Label};
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn record(line: usize, meta: &Value) -> Record {
        Record {
            line,
            example: Example {
                id: format!("r{line}"),
                context: String::new(),
                response_a: "a".into(),
                response_b: "b".into(),
                label: Label::A,
                dataset: None,
                meta: meta.as_object().cloned().unwrap_or_default(),
                rationale: None,
            },
        }
    }

    #[test]
    fn high_confidence_keeps_the_extremes() {
        let records = (1..=9)
            .map(|c| record(c, &serde_json::json!({ "confidence": c })))
            .chain([record(10, &serde_json::json!({ "confidence": 9.0 }))])
            .collect();
        let kept = high_confidence(Path::new("f"), records).unwrap();
        let lines: Vec<usize> = kept.iter().map(|r| r.line).collect();
        assert_eq!(lines, [1, 2, 8, 9, 10]);
    }

    #[test]
    fn high_confidence_rejects_records_without_a_number() {
        let records = vec![
            record(1, &serde_json::json!({ "confidence": 9 })),
            record(4, &serde_json::json!({})),
        ];
        let err = high_confidence(Path::new("f.jsonl"), records).unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.jsonl:4: no `meta.confidence` (high_confidence needs a 1-9 confidence on \
             every record; turn it off for data without one)"
        );
        let records = vec![record(2, &serde_json::json!({ "confidence": "9" }))];
        let err = high_confidence(Path::new("f.jsonl"), records).unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.jsonl:2: `meta.confidence` must be a number, found a string \
             (high_confidence keeps confidence 1, 2, 8 or 9)"
        );
    }

    #[test]
    fn the_side_follows_the_documented_hash() {
        let context = "some post";
        let hash = fingerprint::hash_u64("rlaif-split:some post");
        let fraction = hash as f64 / 2f64.powi(64);
        let below = Split {
            holdout: fraction + 1e-9,
            keep: SplitSide::Holdout,
        };
        let above = Split {
            holdout: fraction - 1e-9,
            keep: SplitSide::Holdout,
        };
        assert_eq!(below.side(context), SplitSide::Holdout);
        assert_eq!(above.side(context), SplitSide::Rest);
    }

    #[test]
    fn the_holdout_share_is_about_the_fraction() {
        let split = Split {
            holdout: 0.3,
            keep: SplitSide::Holdout,
        };
        let contexts: Vec<String> = (0..10_000).map(|i| format!("context {i}")).collect();
        let held = split.select(contexts, String::as_str).len();
        assert!((2800..3200).contains(&held), "{held}");
    }

    proptest! {
        #[test]
        fn split_sides_are_disjoint_and_cover_everything(
            contexts in proptest::collection::vec("[a-c]{0,3}", 0..60),
            holdout in 0.0f64..1.0,
        ) {
            let items: Vec<(usize, String)> = contexts.into_iter().enumerate().collect();
            let side = |keep| Split { holdout, keep }.select(items.clone(), |item| item.1.as_str());
            let held = side(SplitSide::Holdout);
            let rest = side(SplitSide::Rest);
            let held_ids: BTreeSet<usize> = held.iter().map(|item| item.0).collect();
            let rest_ids: BTreeSet<usize> = rest.iter().map(|item| item.0).collect();
            prop_assert!(held_ids.is_disjoint(&rest_ids));
            prop_assert_eq!(held_ids.len() + rest_ids.len(), items.len());
            let held_contexts: BTreeSet<&str> = held.iter().map(|item| item.1.as_str()).collect();
            prop_assert!(rest.iter().all(|item| !held_contexts.contains(item.1.as_str())));
        }
    }
}

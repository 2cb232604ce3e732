//! Reference rows: what a labeler must beat, on the same examples the cells judged.
//!
//! - *random*: a coin flip per example. Its expected alignment is 50%; the interval is
//!   where 95% of coin-flipping labelers would land on this many examples.
//! - *always longer* / *always shorter*: the length heuristics, which human labels often
//!   favour (60-71% of human choices are the longer response in most shared sets).
//! - *human agreement*: where a pair carries several human votes (PandaLM's three
//!   annotators in `meta.annotator_votes`; TL;DR pairs judged by several workers, found
//!   as repeated (context, response pair) records), the share of pairs of votes that
//!   agree, over the pairs with several votes. It is the ceiling a labeler can be
//!   expected to reach against one human label.
//!
//! Intervals are percentile bootstraps over the rows' own units (examples, or voted
//! pairs), seeded like the cells'.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::data::sample::SplitMix64;
use crate::data::{Example, Label};
use crate::procedure::{agreement, longer};

use super::MetricsOptions;
use super::bootstrap::percentile_interval;

/// One reference row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceRow {
    /// `random`, `always longer`, `always shorter` or `human agreement`.
    pub name: String,
    /// Units the alignment is over: examples, or pairs with several human votes.
    pub n: usize,
    pub alignment: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// How the row was computed, in a sentence.
    pub note: String,
}

/// The reference rows for `examples` (the evaluated examples of a run).
pub fn reference_rows(examples: &[&Example], options: &MetricsOptions) -> Vec<ReferenceRow> {
    let n = examples.len();
    let mut rows = Vec::new();
    if n == 0 {
        return rows;
    }
    let half_width = 1.96 * 0.5 / (n as f64).sqrt();
    rows.push(ReferenceRow {
        name: "random".to_owned(),
        n,
        alignment: Some(0.5),
        ci_low: Some((0.5 - half_width).max(0.0)),
        ci_high: Some((0.5 + half_width).min(1.0)),
        note: "a coin flip per example; the interval holds 95% of such labelers".to_owned(),
    });
    let heuristic = |pick: fn(Label) -> Label| -> Vec<f64> {
        examples
            .iter()
            .map(|example| {
                let choice = longer(example).map_or(Label::Tie, pick);
                agreement(choice, example.label)
            })
            .collect()
    };
    let flip = |label: Label| match label {
        Label::A => Label::B,
        Label::B => Label::A,
        Label::Tie => Label::Tie,
    };
    for (name, scores, note) in [
        (
            "always longer",
            heuristic(|label| label),
            "picks the longer response (by characters); equal lengths count as a tie",
        ),
        (
            "always shorter",
            heuristic(flip),
            "picks the shorter response (by characters); equal lengths count as a tie",
        ),
    ] {
        rows.push(row(name, &scores, note, options));
    }
    if let Some(human) = human_agreement(examples, options) {
        rows.push(human);
    }
    rows
}

fn row(name: &str, scores: &[f64], note: &str, options: &MetricsOptions) -> ReferenceRow {
    let (ci_low, ci_high) = bootstrap(scores, options).unzip();
    ReferenceRow {
        name: name.to_owned(),
        n: scores.len(),
        alignment: mean(scores),
        ci_low,
        ci_high,
        note: note.to_owned(),
    }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Percentile interval of the mean of `values` under resampling.
fn bootstrap(values: &[f64], options: &MetricsOptions) -> Option<(f64, f64)> {
    if values.is_empty() || options.bootstrap_resamples == 0 {
        return None;
    }
    let mut rng = SplitMix64::new(crate::fingerprint::hash_u64(format!(
        "{}:reference",
        options.seed
    )));
    let n = values.len() as u64;
    let mut means: Vec<f64> = (0..options.bootstrap_resamples)
        .map(|_| {
            let total: f64 = (0..n).map(|_| values[rng.below(n) as usize]).sum();
            total / n as f64
        })
        .collect();
    percentile_interval(&mut means, options.confidence)
}

/// Share of agreeing pairs of votes, per unit with several votes.
fn human_agreement(examples: &[&Example], options: &MetricsOptions) -> Option<ReferenceRow> {
    // PandaLM style: several annotators' votes on one record.
    let annotated: Vec<f64> = examples
        .iter()
        .filter_map(|example| {
            let votes: Vec<i64> = example
                .meta
                .get("annotator_votes")?
                .as_array()?
                .iter()
                .filter_map(serde_json::Value::as_i64)
                .collect();
            pairwise_agreement(&votes)
        })
        .collect();
    if !annotated.is_empty() {
        return Some(row(
            "human agreement",
            &annotated,
            "agreement between the annotators of each pair (every pair of votes), the \
             ceiling for agreeing with one label",
            options,
        ));
    }
    // TL;DR style: the same pair judged again in another record, maybe in the other order.
    let mut groups: BTreeMap<(&str, &str, &str), Vec<&str>> = BTreeMap::new();
    for example in examples {
        let (first, second) = if example.response_a <= example.response_b {
            (&example.response_a, &example.response_b)
        } else {
            (&example.response_b, &example.response_a)
        };
        let preferred = match example.label {
            Label::A => example.response_a.as_str(),
            Label::B => example.response_b.as_str(),
            Label::Tie => "",
        };
        groups
            .entry((example.context.as_str(), first.as_str(), second.as_str()))
            .or_default()
            .push(preferred);
    }
    let repeated: Vec<f64> = groups
        .values()
        .filter_map(|votes| pairwise_agreement(votes))
        .collect();
    (!repeated.is_empty()).then(|| {
        row(
            "human agreement",
            &repeated,
            "agreement between workers who judged the same pair again (every pair of \
             votes, over the pairs judged more than once), the ceiling for agreeing with \
             one label",
            options,
        )
    })
}

/// The share of agreeing pairs among `votes`; `None` with fewer than two votes.
fn pairwise_agreement<T: PartialEq>(votes: &[T]) -> Option<f64> {
    let pairs = votes.len() * votes.len().saturating_sub(1) / 2;
    if pairs == 0 {
        return None;
    }
    let agreeing = (0..votes.len())
        .flat_map(|i| (i + 1..votes.len()).map(move |j| (i, j)))
        .filter(|&(i, j)| votes[i] == votes[j])
        .count();
    Some(agreeing as f64 / pairs as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(id: &str, a: &str, b: &str, label: Label) -> Example {
        Example {
            id: id.to_owned(),
            context: "ctx".to_owned(),
            response_a: a.to_owned(),
            response_b: b.to_owned(),
            label,
            dataset: None,
            meta: serde_json::Map::new(),
            rationale: None,
        }
    }

    fn options() -> MetricsOptions {
        MetricsOptions {
            bootstrap_resamples: 200,
            seed: 1,
            confidence: 0.95,
        }
    }

    #[test]
    fn length_heuristics_score_against_the_human_label() {
        let examples = [
            example("1", "long answer", "short", Label::A),
            example("2", "long answer", "short", Label::B),
            example("3", "tiny", "much longer", Label::B),
            example("4", "same", "same", Label::A),
        ];
        let rows = reference_rows(&examples.iter().collect::<Vec<_>>(), &options());
        let by_name = |name: &str| rows.iter().find(|row| row.name == name).unwrap();
        // Longer: right, wrong, right, tie (half).
        assert_eq!(by_name("always longer").alignment, Some(2.5 / 4.0));
        assert_eq!(by_name("always shorter").alignment, Some(1.5 / 4.0));
        let random = by_name("random");
        assert_eq!(random.alignment, Some(0.5));
        assert!(random.ci_low.unwrap() < 0.5 && random.ci_high.unwrap() > 0.5);
    }

    #[test]
    fn annotator_votes_give_human_agreement() {
        let mut unanimous = example("1", "x", "y", Label::A);
        unanimous
            .meta
            .insert("annotator_votes".into(), serde_json::json!([1, 1, 1]));
        let mut split = example("2", "x", "y", Label::A);
        split
            .meta
            .insert("annotator_votes".into(), serde_json::json!([1, 1, 2]));
        let rows = reference_rows(&[&unanimous, &split], &options());
        let human = rows
            .iter()
            .find(|row| row.name == "human agreement")
            .unwrap();
        // 3 of 3 pairs agree, then 1 of 3.
        assert!((human.alignment.unwrap() - (1.0 + 1.0 / 3.0) / 2.0).abs() < 1e-12);
        assert_eq!(human.n, 2);
    }

    #[test]
    fn repeated_pairs_in_either_order_give_human_agreement() {
        let examples = [
            example("1", "good", "bad", Label::A),
            example("2", "bad", "good", Label::B),
            example("3", "good", "bad", Label::B),
            example("4", "other", "pair", Label::A),
        ];
        let rows = reference_rows(&examples.iter().collect::<Vec<_>>(), &options());
        let human = rows
            .iter()
            .find(|row| row.name == "human agreement")
            .unwrap();
        // One pair judged three times: good, good, bad: 1 of 3 pairs of votes agree.
        assert_eq!(human.n, 1);
        assert!((human.alignment.unwrap() - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn no_repeated_votes_no_human_row() {
        let rows = reference_rows(&[&example("1", "a", "bb", Label::A)], &options());
        assert!(rows.iter().all(|row| row.name != "human agreement"));
    }
}

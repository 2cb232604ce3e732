//! What a cell cost: backend calls, tokens, calls shared within the grid, money and
//! failures.
//!
//! Unlike the quality metrics, cost counts every judgment, failed ones included: a
//! failed example was still paid for. Calls and tokens are those the configuration
//! needs, whether the backend answered them in this run or the cache did, so the
//! figures do not change when a run is resumed or scheduled differently; what a run
//! actually sent is in its manifest. Limits: money is prompt and completion tokens
//! times the labeler's price per million, in whatever currency the price is written in,
//! for every call the configuration needs (cached ones included: it is what labeling
//! with the cell costs, not what this run spent).

use std::collections::{BTreeMap, HashSet};

use crate::backend::config::Price;
use crate::metrics::Judged;

/// Totals over a cell's judgments.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Cost {
    /// Calls the judgments need, paid now or answered by the cache.
    pub calls: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Money, when the labeler has a price.
    pub money: Option<f64>,
    pub failures: usize,
    pub failures_by_kind: BTreeMap<String, usize>,
}

/// Adds up what `judgments` cost at `price`.
pub(crate) fn cost<J: Judged>(judgments: &[&J], price: Option<Price>) -> Cost {
    let mut cost = Cost::default();
    for judgment in judgments {
        cost.calls += u64::from(judgment.calls());
        let usage = judgment.usage();
        cost.prompt_tokens += usage.prompt_tokens;
        cost.completion_tokens += usage.completion_tokens;
        if let Some(kind) = judgment.failure_kind() {
            cost.failures += 1;
            *cost.failures_by_kind.entry(kind.to_owned()).or_default() += 1;
        }
    }
    cost.money = price.map(|price| {
        cost.prompt_tokens as f64 * price.prompt_per_million / 1e6
            + cost.completion_tokens as f64 * price.completion_per_million / 1e6
    });
    cost
}

/// Per cell, the calls identical to a call made earlier in the grid: cells in the order
/// given, each cell's judgments in their order, each judgment's calls in order. The
/// grid makes such a call once and shares the answer.
pub(crate) fn shared_calls<J: Judged>(cells: &[Vec<&J>]) -> Vec<u64> {
    let mut seen: HashSet<u64> = HashSet::new();
    cells
        .iter()
        .map(|judgments| {
            judgments
                .iter()
                .flat_map(|judgment| judgment.call_keys())
                .filter(|&key| !seen.insert(key))
                .count() as u64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Label;
    use crate::metrics::fixture::{failed, judged};
    use crate::procedure::Judgment;

    #[test]
    fn totals_include_failed_examples_and_price_the_tokens() {
        let judgments = [
            judged("e1", 0.9, Label::A),
            judged("e2", 0.1, Label::A),
            failed("e3", "timeout"),
            failed("e4", "timeout"),
            failed("e5", "no_choice_token"),
        ];
        let refs: Vec<&Judgment> = judgments.iter().collect();
        let price = Price {
            prompt_per_million: 2.0,
            completion_per_million: 10.0,
        };
        let cost = cost(&refs, Some(price));
        assert_eq!(cost.calls, 2 + 2 + 1 + 1 + 1);
        assert_eq!(cost.prompt_tokens, 500);
        assert_eq!(cost.completion_tokens, 10);
        assert_eq!(cost.failures, 3);
        assert_eq!(
            cost.failures_by_kind,
            BTreeMap::from([("no_choice_token".to_owned(), 1), ("timeout".to_owned(), 2)])
        );
        let money = cost.money.unwrap();
        assert!((money - (500.0 * 2.0 + 10.0 * 10.0) / 1e6).abs() < 1e-15);
    }

    #[test]
    fn calls_repeated_in_the_grid_are_shared() {
        let mut first = judged("e1", 0.9, Label::A);
        first.call_keys = vec!["k1".into(), "k2".into()];
        let mut repeat = judged("e2", 0.9, Label::A);
        repeat.call_keys = vec!["k2".into(), "k3".into()];
        let mut other_cell = judged("e1", 0.9, Label::A);
        other_cell.call_keys = vec!["k1".into(), "k4".into(), "k4".into()];
        let shared = shared_calls(&[vec![&first, &repeat], vec![&other_cell]]);
        assert_eq!(shared, [1, 2]);
    }

    #[test]
    fn no_price_no_money() {
        let judgments = [judged("e1", 0.9, Label::A)];
        let refs: Vec<&Judgment> = judgments.iter().collect();
        assert_eq!(cost(&refs, None).money, None);
    }
}

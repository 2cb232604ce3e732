//! Metrics per cell (DESIGN §2): alignment with a paired bootstrap interval, the paired
//! test against the best cell, position and length bias, calibration, cost, and how
//! often a chain-of-thought labeler wrote a rationale.
//!
//! [`summarize`] is a pure function of the cells' judgments and [`MetricsOptions`]: the
//! same judgments and seed give the same numbers, bit for bit. Judgments are read in
//! example-id order whatever order they arrive in, so even float sums do not depend on
//! the order a run completed in.
//!
//! The bootstrap is paired. The resamples are drawn once, over the union of the example
//! ids that any cell judged (sorted by id), from a generator seeded by
//! [`MetricsOptions::seed`], and the same draws are applied to every cell. In a
//! resample, a cell's mean uses only the drawn examples it judged; a cell's difference
//! from the best cell uses only the drawn examples both judged. Cells that judged the
//! same examples therefore see the same resamples, which is what lets the paired test
//! compare them.
//!
//! Limits: quality metrics (alignment, bias, calibration, rationales) use successful
//! judgments only;
//! a failed example counts in cost and failures alone, so a cell that fails on hard
//! examples can look better than it is — read `failures` beside `alignment`. Reference
//! rows (random, always-longer, human agreement) and the cost Pareto front are not
//! computed here.

mod bias;
mod bootstrap;
mod calibration;
mod cost;
#[cfg(test)]
pub(crate) mod fixture;
mod judged;
mod rationale;
mod reference;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::backend::config::Price;
use crate::fingerprint;
use crate::grid::Cell;
use crate::procedure::Judgment;
use crate::prompt::Polarity;

pub use bootstrap::percentile_interval;
pub use calibration::{ECE_BINS, LOG_LOSS_CLIP};
pub use judged::{Judged, Scored, call_key_number};
pub use rationale::RationaleCount;
pub use reference::{ReferenceRow, reference_rows};

/// The test that marks cells as tied with the best, named for reports.
pub const PAIRED_TEST: &str = "paired bootstrap: the percentile interval of the difference \
                               in alignment from the best cell, over the same resamples of \
                               the examples both judged, contains 0";

/// One cell and what it made of its examples: the input of [`summarize`].
#[derive(Debug, Clone, PartialEq)]
pub struct CellInput {
    pub name: String,
    pub id: String,
    /// The cell's settings as they appear in `summary.json`.
    pub settings: serde_json::Value,
    /// How the labeler's distribution was read: `logprobs`, `parsed` or `simulated`.
    pub mode: String,
    /// The labeler's price, for the money column.
    pub price: Option<Price>,
    /// The cell's judgments, one per example. Should an example appear more than once,
    /// the last judgment of it counts (the latest, in journal order).
    pub judgments: Vec<Judgment>,
    /// Whether the labeler was asked for the worse response: its answer "1" then
    /// prefers slot 2, which the position metrics must know.
    pub polarity: Polarity,
}

impl CellInput {
    /// The input for `cell`.
    pub fn new(
        cell: &Cell,
        mode: impl Into<String>,
        price: Option<Price>,
        judgments: Vec<Judgment>,
    ) -> CellInput {
        CellInput {
            name: cell.name.clone(),
            id: cell.id.clone(),
            // Settings hold strings, numbers and string-keyed maps, which always convert.
            settings: serde_json::to_value(&cell.settings).unwrap_or(serde_json::Value::Null),
            mode: mode.into(),
            price,
            judgments,
            polarity: Polarity::Normal,
        }
    }

    /// The same input for a task of `polarity`.
    pub fn with_polarity(mut self, polarity: Polarity) -> CellInput {
        self.polarity = polarity;
        self
    }
}

/// How [`summarize`] computes intervals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricsOptions {
    /// Bootstrap resamples; 0 computes no intervals (and marks no cell but the best as
    /// tied).
    pub bootstrap_resamples: usize,
    /// Seeds the resamples; the run records it so a report can be recomputed.
    pub seed: u64,
    /// Coverage of the intervals, in (0, 1).
    pub confidence: f64,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        MetricsOptions {
            bootstrap_resamples: 2000,
            seed: 0,
            confidence: 0.95,
        }
    }
}

/// Everything measured about one cell: a row of `summary.json` and `cells.csv`.
///
/// Shares are in [0, 1]; `None` (JSON `null`) means there was nothing to measure: no
/// successful judgment, no example with both orders, and so on. The fields up to
/// `failures` are the DESIGN §9 contract; the rest are additions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellMetrics {
    pub name: String,
    pub id: String,
    pub settings: serde_json::Value,
    /// Successful judgments: the examples the quality metrics are computed over.
    pub n: usize,
    /// Mean agreement with the human label (1, ½ for a tie on either side, 0).
    pub alignment: Option<f64>,
    /// Percentile bootstrap interval of `alignment`.
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// Whether the paired test ([`PAIRED_TEST`]) cannot tell this cell from the best
    /// one; the best cell is tied with itself. False when nothing could be tested (no
    /// successful judgment, no example in common with the best, no resamples).
    pub tied_with_best: bool,
    /// Share of examples (judged in both orders) whose preferred slot is the same in
    /// both orders: the paper's "% same position preferred".
    pub position_bias: Option<f64>,
    /// Share of all order judgments preferring slot "1", before debiasing.
    pub prefer_first: Option<f64>,
    /// Share of examples where the AI chose the longer response.
    pub prefer_longer: Option<f64>,
    /// Expected calibration error over [`ECE_BINS`] equal-width confidence bins.
    pub ece: Option<f64>,
    /// Backend calls the cell's judgments need, answered by the backend or the cache,
    /// failed examples included: the same however often the run was resumed.
    pub calls: u64,
    /// Tokens of those calls.
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Of `calls`, those identical to a call made earlier in the grid (an earlier cell,
    /// or an earlier example or sample of this one): the grid pays for them once.
    /// Counted from the judgments' call keys in grid order, so the figure is the same
    /// however the run was scheduled, interrupted or resumed.
    pub cache_hits: u64,
    /// Failed examples, all kinds together; see `failures_by_kind`.
    pub failures: usize,
    /// 1-based position after [`rank`].
    pub rank: usize,
    /// How the labeler's distribution was read: `logprobs`, `parsed` or `simulated`.
    pub mode: String,
    /// Interval of (best − this cell) from the paired test; `[0, 0]` for the best.
    pub diff_low: Option<f64>,
    pub diff_high: Option<f64>,
    /// Examples that `position_bias` is computed over.
    pub position_bias_examples: usize,
    /// Among examples with a position bias, the share favouring slot "1".
    pub position_bias_direction: Option<f64>,
    /// Examples that `prefer_longer` and `human_prefer_longer` are computed over.
    pub prefer_longer_examples: usize,
    /// Share of the same examples where people chose the longer response.
    pub human_prefer_longer: Option<f64>,
    /// Mean of `max(p_a, 1 − p_a)`.
    pub mean_confidence: Option<f64>,
    /// Negative mean natural log of the probability given to the human's side,
    /// clipped at [`LOG_LOSS_CLIP`].
    pub log_loss: Option<f64>,
    /// Money, where the labeler has a price: the tokens of `calls` times the price per
    /// million (cached calls included: what labeling with this cell costs).
    pub cost: Option<f64>,
    pub failures_by_kind: BTreeMap<String, usize>,
    /// Whether no other cell has at least this alignment at no more cost, one of them
    /// strictly better: the Pareto front of alignment against cost. Cost is money when
    /// every measured cell has a price, else tokens (prompt plus completion).
    #[serde(default)]
    pub pareto: bool,
    /// Spearman rank correlation between the AI's confidence, |p_a − ½|, and the human
    /// label's strength, |confidence − 5| on TL;DR's 1–9 scale, where the data has one.
    pub confidence_correlation: Option<f64>,
    /// Chain-of-thought cells: the share of samples whose rationale has any text; the
    /// others were scored right after the rationale cue. `None` without CoT, without a
    /// successful judgment, or in a summary written before this field existed.
    #[serde(default)]
    pub rationale_written: Option<f64>,
    /// Mean characters of the written rationales.
    #[serde(default)]
    pub rationale_chars: Option<f64>,
    /// Chain-of-thought cells: of the samples of successful judgments whose journal says
    /// why their rationale ended, the share that ran out of tokens
    /// (`max_rationale_tokens`) and so were scored after a cut-off text. `None` without
    /// CoT, without a successful judgment, or where no sample says: a backend that does
    /// not report it, or a journal written before this field existed.
    #[serde(default)]
    pub rationale_capped: Option<f64>,
}

/// Computes every cell's metrics and returns them ranked (see [`rank`]).
///
/// Intervals come from a paired percentile bootstrap (see the module documentation):
/// `options.bootstrap_resamples` resamples seeded by `options.seed`, at
/// `options.confidence` coverage. A point estimate that sampling noise leaves outside
/// its own interval (possible only with very few resamples) widens the interval to
/// include it.
pub fn summarize(cells: &[CellInput], options: &MetricsOptions) -> Vec<CellMetrics> {
    let judgments: Vec<Vec<&Judgment>> = cells
        .iter()
        .map(|cell| cell.judgments.iter().collect())
        .collect();
    summarize_judged(cells, &judgments, options)
}

/// [`summarize`] with each cell's judgments held by the caller (`judgments[i]` for
/// `cells[i]`, whose own `judgments` are then ignored), so that a large run's
/// judgments are not moved or copied to be summarized.
pub fn summarize_judged<J: Judged>(
    cells: &[CellInput],
    judgments: &[Vec<&J>],
    options: &MetricsOptions,
) -> Vec<CellMetrics> {
    assert_eq!(
        cells.len(),
        judgments.len(),
        "one list of judgments per cell"
    );
    let latest: Vec<Vec<&J>> = judgments
        .iter()
        .map(|judged| latest_per_example(judged))
        .collect();
    let successful: Vec<Vec<&J>> = latest
        .iter()
        .map(|judgments| {
            judgments
                .iter()
                .copied()
                .filter(|judgment| score_of(*judgment).is_some())
                .collect()
        })
        .collect();

    let mut metrics: Vec<CellMetrics> = cells
        .iter()
        .zip(latest.iter().zip(&successful))
        .map(|(cell, (all, successful))| point_metrics(cell, all, successful))
        .collect();
    for (cell, shared) in metrics.iter_mut().zip(cost::shared_calls(&latest)) {
        cell.cache_hits = shared;
    }

    // Dense scores over the sorted union of judged examples, for the resamples.
    let examples: BTreeSet<&str> = successful
        .iter()
        .flatten()
        .map(|judgment| judgment.example())
        .collect();
    let index: BTreeMap<&str, usize> = examples
        .iter()
        .enumerate()
        .map(|(position, id)| (*id, position))
        .collect();
    let scores: Vec<Vec<Option<f64>>> = successful
        .iter()
        .map(|judgments| {
            let mut dense = vec![None; index.len()];
            for judgment in judgments {
                if let Some(&position) = index.get(judgment.example()) {
                    dense[position] = score_of(*judgment);
                }
            }
            dense
        })
        .collect();

    let best = (0..metrics.len())
        .min_by(|&x, &y| ranking(&metrics[x], &metrics[y]))
        .filter(|&position| metrics[position].alignment.is_some());
    // A seed of its own: the experiment seed also orders the data, and the resamples
    // should not be the same stream that chose the examples.
    let seed = fingerprint::hash_u64(format!("{}:bootstrap", options.seed));
    let mut resampled = bootstrap::resample(&scores, best, options.bootstrap_resamples, seed);

    for (position, cell) in metrics.iter_mut().enumerate() {
        let Some(alignment) = cell.alignment else {
            continue;
        };
        let means = &mut resampled.means[position];
        if let Some((low, high)) = percentile_interval(means, options.confidence) {
            cell.ci_low = Some(low.min(alignment));
            cell.ci_high = Some(high.max(alignment));
        }
        let differences = &mut resampled.differences[position];
        if let Some((low, high)) = percentile_interval(differences, options.confidence) {
            cell.diff_low = Some(low);
            cell.diff_high = Some(high);
            cell.tied_with_best = low <= 0.0 && 0.0 <= high;
        }
        if Some(position) == best {
            // Tied with itself whatever the resamples say, even with none.
            cell.tied_with_best = true;
        }
    }

    mark_pareto_front(&mut metrics);
    rank(&mut metrics);
    metrics
}

/// Whether the Pareto front weighs cost in money: every measured cell has a price.
/// Otherwise it weighs tokens.
pub fn pareto_in_money<'a>(metrics: impl IntoIterator<Item = &'a CellMetrics>) -> bool {
    metrics
        .into_iter()
        .filter(|cell| cell.alignment.is_some())
        .all(|cell| cell.cost.is_some())
}

/// The cost the Pareto front weighs `cell` by: money when `in_money`, else tokens.
pub fn pareto_cost(cell: &CellMetrics, in_money: bool) -> f64 {
    match cell.cost {
        Some(money) if in_money => money,
        _ => (cell.prompt_tokens + cell.completion_tokens) as f64,
    }
}

/// Marks the cells that no other cell beats on both alignment and cost (money where
/// every measured cell has a price, else tokens).
pub(crate) fn mark_pareto_front(metrics: &mut [CellMetrics]) {
    let in_money = pareto_in_money(metrics.iter());
    let points: Vec<Option<(f64, f64)>> = metrics
        .iter()
        .map(|cell| {
            let cost = pareto_cost(cell, in_money);
            cell.alignment.map(|alignment| (alignment, cost))
        })
        .collect();
    for (index, cell) in metrics.iter_mut().enumerate() {
        let Some((alignment, tokens)) = points[index] else {
            continue;
        };
        cell.pareto = !points
            .iter()
            .flatten()
            .any(|&(other_alignment, other_tokens)| {
                other_alignment >= alignment
                    && other_tokens <= tokens
                    && (other_alignment > alignment || other_tokens < tokens)
            });
    }
}

/// Sorts `metrics` best first and numbers them from 1.
///
/// Order: alignment descending (by `total_cmp`), cells without alignment last, ties
/// broken by id and then name, so the order never depends on the input order.
pub fn rank(metrics: &mut [CellMetrics]) {
    metrics.sort_by(ranking);
    for (position, cell) in metrics.iter_mut().enumerate() {
        cell.rank = position + 1;
    }
}

fn ranking(x: &CellMetrics, y: &CellMetrics) -> Ordering {
    let by_alignment = match (x.alignment, y.alignment) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    by_alignment
        .then_with(|| x.id.cmp(&y.id))
        .then_with(|| x.name.cmp(&y.name))
}

/// The last judgment of each example, in example-id order.
fn latest_per_example<'a, J: Judged>(judgments: &[&'a J]) -> Vec<&'a J> {
    let mut latest = BTreeMap::new();
    for &judgment in judgments {
        latest.insert(judgment.example(), judgment);
    }
    latest.into_values().collect()
}

/// The score of a successful judgment; `None` for a failed one.
fn score_of(judgment: &impl Judged) -> Option<f64> {
    match (judgment.failure_kind(), judgment.p_a(), judgment.score()) {
        (None, Some(_), Some(score)) => Some(score),
        _ => None,
    }
}

/// Everything but the intervals, the test and the rank.
fn point_metrics<J: Judged>(cell: &CellInput, all: &[&J], successful: &[&J]) -> CellMetrics {
    let n = successful.len();
    let alignment =
        (n > 0).then(|| successful.iter().filter_map(|j| score_of(*j)).sum::<f64>() / n as f64);
    let position = bias::position_bias(successful, cell.polarity);
    let length = bias::length_bias(successful);
    let calibration = calibration::calibration(successful);
    let cost = cost::cost(all, cell.price);
    let rationales = rationale::rationales(successful);
    CellMetrics {
        name: cell.name.clone(),
        id: cell.id.clone(),
        settings: cell.settings.clone(),
        n,
        alignment,
        ci_low: None,
        ci_high: None,
        tied_with_best: false,
        position_bias: position.share,
        prefer_first: bias::prefer_first(successful, cell.polarity),
        prefer_longer: length.ai,
        ece: calibration.ece,
        calls: cost.calls,
        prompt_tokens: cost.prompt_tokens,
        completion_tokens: cost.completion_tokens,
        cache_hits: 0,
        failures: cost.failures,
        rank: 0,
        mode: cell.mode.clone(),
        diff_low: None,
        diff_high: None,
        position_bias_examples: position.examples,
        position_bias_direction: position.direction,
        prefer_longer_examples: length.examples,
        human_prefer_longer: length.human,
        mean_confidence: calibration.mean_confidence,
        log_loss: calibration.log_loss,
        cost: cost.money,
        failures_by_kind: cost.failures_by_kind,
        pareto: false,
        confidence_correlation: calibration::confidence_correlation(successful),
        rationale_written: rationales.written,
        rationale_chars: rationales.mean_chars,
        rationale_capped: rationales.capped,
    }
}

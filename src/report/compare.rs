//! `rlaif compare RUN_A RUN_B`: the cells two runs share, side by side, with the
//! difference in alignment and its bootstrap interval.
//!
//! Cells are matched by id, which is a hash of their settings, so "the same cell" means
//! the same prompt and labeler settings, whatever the runs' data or dates. The
//! difference B − A gets a percentile bootstrap interval from the two runs' judgments:
//!
//! - *paired* when the runs judged examples with the same ids (and the same human labels,
//!   so that an id names the same pair in both): the shared examples are drawn together
//!   and the difference is the mean of B's score minus A's on them. Example-to-example
//!   variation cancels, as in the paired test within a run.
//! - *independent* otherwise: each run's examples are resampled on their own and the
//!   difference is of the two means. Wider, but honest when the data differ.
//!
//! Each cell's resamples come from its own stream, seeded from the seed and the cell id,
//! so a cell's interval does not depend on which other cells the runs share. Pure:
//! summaries and judgments in, a [`Comparison`] out, rendered by
//! [`Comparison::markdown`], [`Comparison::csv`] and [`Comparison::json`].
//!
//! Limits: alignment only; percentile intervals without bias correction; failed
//! judgments are left out on both sides, as in a run's own metrics.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use super::pivot::{Format, Measure, csv_number, escape, measure_text, push_csv_row};
use super::table::{NOTHING, level};
use super::{Summary, round6};
use crate::data::Label;
use crate::data::sample::SplitMix64;
use crate::fingerprint;
use crate::metrics::CellMetrics;
use crate::metrics::percentile_interval;
use crate::procedure::Judgment;

/// How the intervals are computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompareOptions {
    pub resamples: usize,
    pub seed: u64,
    /// Coverage of the intervals, in (0, 1).
    pub confidence: f64,
}

impl CompareOptions {
    /// The options run `a` recorded for its own intervals, so that a comparison uses
    /// the same number of resamples and coverage as the runs' reports.
    pub fn of(a: &Summary) -> CompareOptions {
        CompareOptions {
            // A run without intervals still deserves one here.
            resamples: if a.method.bootstrap_resamples == 0 {
                2000
            } else {
                a.method.bootstrap_resamples
            },
            seed: a.method.seed,
            confidence: a.method.confidence,
        }
    }
}

/// One side of a comparison: a run's summary and its judgments.
#[derive(Debug, Clone, Copy)]
pub struct Side<'r> {
    pub summary: &'r Summary,
    pub judgments: &'r [Judgment],
}

/// How a cell's difference was resampled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resampling {
    /// Over the examples both runs judged, drawn together.
    Paired { examples: usize },
    /// Each run's examples drawn on their own; `why` when ids were shared but could not
    /// be paired.
    Independent { why: Option<String> },
    /// A side has no successful judgment: nothing to resample.
    Nothing,
}

impl Resampling {
    fn name(&self) -> &'static str {
        match self {
            Resampling::Paired { .. } => "paired",
            Resampling::Independent { .. } => "independent",
            Resampling::Nothing => "none",
        }
    }
}

/// A cell both runs have.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedCell {
    pub name: String,
    pub id: String,
    /// Alignment with its interval, as each run's summary has it.
    pub a: Measure,
    pub b: Measure,
    /// Successful judgments per side.
    pub n_a: usize,
    pub n_b: usize,
    /// B − A, and its interval.
    pub difference: Measure,
    pub resampling: Resampling,
}

impl SharedCell {
    /// Whether the interval of B − A leaves out 0: a difference beyond resampling noise.
    pub fn excludes_zero(&self) -> bool {
        self.difference
            .interval
            .is_some_and(|(low, high)| low > 0.0 || high < 0.0)
    }
}

/// A cell one run has and the other does not.
#[derive(Debug, Clone, PartialEq)]
pub struct LoneCell {
    pub name: String,
    pub id: String,
    pub alignment: Measure,
}

/// Two runs, cell by cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// `(experiment, run id)` of A and B.
    pub a: (String, String),
    pub b: (String, String),
    pub options: CompareOptions,
    /// In A's rank order.
    pub shared: Vec<SharedCell>,
    pub only_a: Vec<LoneCell>,
    pub only_b: Vec<LoneCell>,
}

/// A cell's successful scores by example id, with what identifies the pair.
type Scores = BTreeMap<String, (f64, Label, Option<Label>)>;

/// The latest successful judgment of each example of `cell`.
fn scores(judgments: &[Judgment], cell: &str) -> Scores {
    let mut latest: BTreeMap<&str, &Judgment> = BTreeMap::new();
    for judgment in judgments.iter().filter(|j| j.cell == cell) {
        // The journal is appended to; a later line of an example replaces the earlier.
        latest.insert(judgment.example.as_str(), judgment);
    }
    latest
        .into_iter()
        .filter_map(
            |(example, judgment)| match (&judgment.failure, judgment.p_a, judgment.score) {
                (None, Some(_), Some(score)) => {
                    Some((example.to_owned(), (score, judgment.human, judgment.longer)))
                }
                _ => None,
            },
        )
        .collect()
}

fn alignment(cell: &CellMetrics) -> Measure {
    let interval = cell.ci_low.zip(cell.ci_high);
    Measure {
        cell: Some(cell.name.clone()),
        value: cell.alignment,
        interval,
    }
}

/// Compares every cell two runs share.
pub fn compare(a: Side<'_>, b: Side<'_>, options: &CompareOptions) -> Comparison {
    let mut shared = Vec::new();
    let mut only_a = Vec::new();
    for cell_a in &a.summary.cells {
        let Some(cell_b) = b.summary.cells.iter().find(|cell| cell.id == cell_a.id) else {
            only_a.push(LoneCell {
                name: cell_a.name.clone(),
                id: cell_a.id.clone(),
                alignment: alignment(cell_a),
            });
            continue;
        };
        let scores_a = scores(a.judgments, &cell_a.id);
        let scores_b = scores(b.judgments, &cell_b.id);
        let seed = fingerprint::hash_u64(format!("{}:compare:{}", options.seed, cell_a.id));
        let (difference, resampling) = difference(&scores_a, &scores_b, options, seed);
        shared.push(SharedCell {
            name: cell_a.name.clone(),
            id: cell_a.id.clone(),
            a: alignment(cell_a),
            b: alignment(cell_b),
            n_a: scores_a.len(),
            n_b: scores_b.len(),
            difference,
            resampling,
        });
    }
    let only_b = b
        .summary
        .cells
        .iter()
        .filter(|cell| !a.summary.cells.iter().any(|other| other.id == cell.id))
        .map(|cell| LoneCell {
            name: cell.name.clone(),
            id: cell.id.clone(),
            alignment: alignment(cell),
        })
        .collect();
    Comparison {
        a: (a.summary.experiment.clone(), a.summary.run_id.clone()),
        b: (b.summary.experiment.clone(), b.summary.run_id.clone()),
        options: *options,
        shared,
        only_a,
        only_b,
    }
}

/// B − A for one cell, paired where the runs share examples.
fn difference(
    a: &Scores,
    b: &Scores,
    options: &CompareOptions,
    seed: u64,
) -> (Measure, Resampling) {
    let nothing = Measure {
        cell: None,
        value: None,
        interval: None,
    };
    if a.is_empty() || b.is_empty() {
        return (nothing, Resampling::Nothing);
    }
    let common: Vec<(&String, f64, f64)> = a
        .iter()
        .filter_map(|(id, (score_a, ..))| b.get(id).map(|(score_b, ..)| (id, *score_a, *score_b)))
        .collect();
    // An id names the same pair in both runs only if both recorded the same human
    // label and the same longer response; otherwise the data differ and ids collide.
    let conflicting = common
        .iter()
        .filter(|(id, ..)| {
            let (_, human_a, longer_a) = a[*id];
            let (_, human_b, longer_b) = b[*id];
            human_a != human_b || longer_a != longer_b
        })
        .count();
    let mut rng = SplitMix64::new(seed);
    if !common.is_empty() && conflicting == 0 {
        let differences: Vec<f64> = common.iter().map(|(_, x, y)| y - x).collect();
        let mean = mean(&differences);
        let mut resampled: Vec<f64> = (0..options.resamples)
            .map(|_| resampled_mean(&differences, &mut rng))
            .collect();
        let interval = percentile_interval(&mut resampled, options.confidence);
        let measure = Measure {
            cell: None,
            value: Some(mean),
            interval,
        };
        return (
            measure,
            Resampling::Paired {
                examples: common.len(),
            },
        );
    }
    let why = (conflicting > 0).then(|| {
        format!(
            "{conflicting} of the {} example ids both runs judged have different human labels \
             or lengths, so the data differ",
            common.len()
        )
    });
    let scores_a: Vec<f64> = a.values().map(|(score, ..)| *score).collect();
    let scores_b: Vec<f64> = b.values().map(|(score, ..)| *score).collect();
    let mut resampled: Vec<f64> = (0..options.resamples)
        .map(|_| resampled_mean(&scores_b, &mut rng) - resampled_mean(&scores_a, &mut rng))
        .collect();
    let measure = Measure {
        cell: None,
        value: Some(mean(&scores_b) - mean(&scores_a)),
        interval: percentile_interval(&mut resampled, options.confidence),
    };
    (measure, Resampling::Independent { why })
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The mean of one resample with replacement of `values` (non-empty).
fn resampled_mean(values: &[f64], rng: &mut SplitMix64) -> f64 {
    let n = values.len();
    let mut sum = 0.0;
    for _ in 0..n {
        // The draw is below `n`, a usize, so it converts back losslessly.
        sum += values[rng.below(n as u64) as usize];
    }
    sum / n as f64
}

/// "run `id` of `experiment`".
fn run_name((experiment, run_id): &(String, String)) -> String {
    format!("run `{run_id}` of `{experiment}`")
}

/// The mark after a difference whose interval excludes 0.
const DIFFERS: &str = "*";

impl Comparison {
    fn resampling_text(cell: &SharedCell) -> String {
        match &cell.resampling {
            Resampling::Paired { examples } if *examples < cell.n_a.max(cell.n_b) => format!(
                "paired, the {examples} examples both judged (of {} and {})",
                cell.n_a, cell.n_b
            ),
            Resampling::Paired { examples } => format!("paired, {examples} examples"),
            Resampling::Independent { .. } => {
                format!("independent, {} + {} examples", cell.n_a, cell.n_b)
            }
            Resampling::Nothing => NOTHING.to_owned(),
        }
    }

    /// The first few names, and how many more: a short list (CSV and JSON have all).
    fn lone_list(cells: &[LoneCell]) -> String {
        const LISTED: usize = 6;
        let mut names: Vec<String> = cells
            .iter()
            .take(LISTED)
            .map(|cell| format!("`{}`", cell.name))
            .collect();
        if cells.len() > LISTED {
            names.push(format!("and {} more", cells.len() - LISTED));
        }
        names.join(", ")
    }

    /// GitHub-flavoured Markdown: what is compared and how, the shared cells, and the
    /// cells only one run has.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let level = level(self.options.confidence);
        let _ = writeln!(
            out,
            "Comparison of {} (A) with {} (B): {} {} in common.\n",
            run_name(&self.a),
            run_name(&self.b),
            self.shared.len(),
            if self.shared.len() == 1 {
                "cell"
            } else {
                "cells"
            },
        );
        if !self.shared.is_empty() {
            let _ = writeln!(
                out,
                "B − A is the difference in alignment, with a {level} percentile bootstrap \
                 interval ({} resamples, seed {}): *paired* draws the examples both runs judged \
                 together (same example ids and human labels); *independent* draws each run's \
                 examples on their own.\n",
                self.options.resamples, self.options.seed
            );
            let _ = writeln!(
                out,
                "| cell | alignment A [{level} CI] | alignment B [{level} CI] | B − A [{level} CI] | resampling |"
            );
            out.push_str("| --- | ---: | ---: | ---: | --- |\n");
            for cell in &self.shared {
                let mut difference = measure_text(Some(&cell.difference), Format::Points);
                if cell.excludes_zero() {
                    difference.push(' ');
                    difference.push_str(DIFFERS);
                }
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    escape(&format!("`{}`", cell.name)),
                    measure_text(Some(&cell.a), Format::Percent),
                    measure_text(Some(&cell.b), Format::Percent),
                    difference,
                    Self::resampling_text(cell),
                );
            }
            out.push('\n');
            let differ: Vec<&SharedCell> = self
                .shared
                .iter()
                .filter(|cell| cell.excludes_zero())
                .collect();
            let higher = differ
                .iter()
                .filter(|cell| cell.difference.value.is_some_and(|d| d > 0.0))
                .count();
            if differ.is_empty() {
                let _ = writeln!(
                    out,
                    "No difference's interval excludes 0: on these examples the runs cannot be \
                     told apart on any shared cell."
                );
            } else {
                let _ = writeln!(
                    out,
                    "`{DIFFERS}` marks an interval that excludes 0: {} of {} shared cells differ \
                     beyond resampling noise ({higher} higher in B, {} lower).",
                    differ.len(),
                    self.shared.len(),
                    differ.len() - higher,
                );
            }
            for cell in &self.shared {
                if let Resampling::Independent { why: Some(why) } = &cell.resampling {
                    let _ = writeln!(out, "`{}` is resampled independently: {why}.", cell.name);
                }
            }
            let partly: Vec<String> = self
                .shared
                .iter()
                .filter(|cell| {
                    matches!(cell.resampling, Resampling::Paired { examples }
                        if examples < cell.n_a.max(cell.n_b))
                })
                .map(|cell| format!("`{}`", cell.name))
                .collect();
            if !partly.is_empty() {
                let _ = writeln!(
                    out,
                    "The runs judged partly different examples in {}: there B − A is over the \
                     examples both judged, while each alignment is over all its run judged, so \
                     B − A need not be B's alignment less A's.",
                    partly.join(", ")
                );
            }
        }
        let mut lone = Vec::new();
        for (side, cells) in [("A", &self.only_a), ("B", &self.only_b)] {
            if !cells.is_empty() {
                lone.push(format!(
                    "Only in {side} ({}): {}.",
                    cells.len(),
                    Self::lone_list(cells)
                ));
            }
        }
        if self.shared.is_empty() {
            lone.push(
                "The runs share no cell: a cell's id is a hash of its settings (preamble, \
                 shots, CoT, self-consistency, labeler name, vars), so runs compare only where \
                 those are the same."
                    .to_owned(),
            );
        }
        if !lone.is_empty() {
            if !self.shared.is_empty() {
                out.push('\n');
            }
            for line in lone {
                let _ = writeln!(out, "{line}");
            }
        }
        out
    }

    /// CSV: one row per cell of either run; `in` says `both`, `a` or `b`. Shares and
    /// differences rounded to 6 decimals; empty where there is nothing.
    pub fn csv(&self) -> String {
        let mut out = String::new();
        let header = [
            "cell",
            "id",
            "in",
            "alignment_a",
            "ci_low_a",
            "ci_high_a",
            "n_a",
            "alignment_b",
            "ci_low_b",
            "ci_high_b",
            "n_b",
            "difference",
            "diff_low",
            "diff_high",
            "excludes_zero",
            "resampling",
            "paired_examples",
        ];
        push_csv_row(&mut out, &header.map(str::to_owned));
        let measure = |m: &Measure| {
            [
                csv_number(m.value),
                csv_number(m.interval.map(|i| i.0)),
                csv_number(m.interval.map(|i| i.1)),
            ]
        };
        for cell in &self.shared {
            let mut row = vec![cell.name.clone(), cell.id.clone(), "both".to_owned()];
            row.extend(measure(&cell.a));
            row.push(cell.n_a.to_string());
            row.extend(measure(&cell.b));
            row.push(cell.n_b.to_string());
            row.extend(measure(&cell.difference));
            row.push(cell.excludes_zero().to_string());
            row.push(cell.resampling.name().to_owned());
            row.push(match cell.resampling {
                Resampling::Paired { examples } => examples.to_string(),
                _ => String::new(),
            });
            push_csv_row(&mut out, &row);
        }
        for (side, cells) in [("a", &self.only_a), ("b", &self.only_b)] {
            for cell in cells {
                let mut row = vec![cell.name.clone(), cell.id.clone(), side.to_owned()];
                let empty = || [String::new(), String::new(), String::new()];
                let (a, b) = if side == "a" {
                    (measure(&cell.alignment), empty())
                } else {
                    (empty(), measure(&cell.alignment))
                };
                row.extend(a);
                row.push(String::new());
                row.extend(b);
                row.resize(header.len(), String::new());
                push_csv_row(&mut out, &row);
            }
        }
        out
    }

    /// JSON: `{"a", "b", "method", "cells", "only_a", "only_b"}`; numbers rounded to 6
    /// decimals.
    pub fn json(&self) -> String {
        let run = |(experiment, run_id): &(String, String)| json!({ "experiment": experiment, "run_id": run_id });
        let measure = |m: &Measure| {
            json!({
                "value": m.value.map(round6),
                "ci_low": m.interval.map(|i| round6(i.0)),
                "ci_high": m.interval.map(|i| round6(i.1)),
            })
        };
        let cells: Vec<Value> = self
            .shared
            .iter()
            .map(|cell| {
                let why = match &cell.resampling {
                    Resampling::Independent { why } => why.clone(),
                    _ => None,
                };
                json!({
                    "name": cell.name,
                    "id": cell.id,
                    "a": { "alignment": measure(&cell.a), "n": cell.n_a },
                    "b": { "alignment": measure(&cell.b), "n": cell.n_b },
                    "difference": measure(&cell.difference),
                    "excludes_zero": cell.excludes_zero(),
                    "resampling": cell.resampling.name(),
                    "paired_examples": match cell.resampling {
                        Resampling::Paired { examples } => Some(examples),
                        _ => None,
                    },
                    "why_independent": why,
                })
            })
            .collect();
        let lone = |cells: &[LoneCell]| -> Vec<Value> {
            cells
                .iter()
                .map(|cell| {
                    json!({ "name": cell.name, "id": cell.id, "alignment": measure(&cell.alignment) })
                })
                .collect()
        };
        let value = json!({
            "a": run(&self.a),
            "b": run(&self.b),
            "method": {
                "resamples": self.options.resamples,
                "seed": self.options.seed,
                "confidence": self.options.confidence,
            },
            "cells": cells,
            "only_a": lone(&self.only_a),
            "only_b": lone(&self.only_b),
        });
        let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
        text.push('\n');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(values: &[(&str, f64)]) -> Scores {
        values
            .iter()
            .map(|(id, score)| ((*id).to_owned(), (*score, Label::A, None)))
            .collect()
    }

    const OPTIONS: CompareOptions = CompareOptions {
        resamples: 500,
        seed: 3,
        confidence: 0.95,
    };

    #[test]
    fn shared_examples_are_paired() {
        let ids: Vec<String> = (0..40).map(|i| format!("e{i}")).collect();
        let a: Vec<(&str, f64)> = ids.iter().map(|id| (id.as_str(), 0.0)).collect();
        let b: Vec<(&str, f64)> = ids.iter().map(|id| (id.as_str(), 1.0)).collect();
        let (measure, resampling) = difference(&scores(&a), &scores(&b), &OPTIONS, 1);
        assert_eq!(resampling, Resampling::Paired { examples: 40 });
        assert_eq!(measure.value, Some(1.0));
        assert_eq!(
            measure.interval,
            Some((1.0, 1.0)),
            "no variance in the differences"
        );
    }

    #[test]
    fn disjoint_examples_are_independent_and_colliding_ids_are_not_paired() {
        let a = scores(&[("a1", 1.0), ("a2", 0.0), ("a3", 1.0)]);
        let b = scores(&[("b1", 1.0), ("b2", 1.0)]);
        let (measure, resampling) = difference(&a, &b, &OPTIONS, 1);
        assert_eq!(resampling, Resampling::Independent { why: None });
        assert!((measure.value.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        let (low, high) = measure.interval.unwrap();
        assert!(low <= 0.0 && high > 0.5, "{low} {high}");

        let mut other = scores(&[("a1", 1.0), ("a2", 1.0)]);
        other.get_mut("a1").unwrap().1 = Label::B;
        let (_, resampling) = difference(&a, &other, &OPTIONS, 1);
        assert!(matches!(
            resampling,
            Resampling::Independent { why: Some(_) }
        ));
    }

    #[test]
    fn a_partly_shared_cell_says_its_difference_is_over_the_shared_examples() {
        let a = scores(&[("x", 1.0), ("y", 0.0), ("z", 1.0), ("v", 1.0)]);
        let b = scores(&[("x", 1.0), ("y", 1.0), ("w", 0.0)]);
        let (difference, resampling) = difference(&a, &b, &OPTIONS, 7);
        assert_eq!(resampling, Resampling::Paired { examples: 2 });
        let whole = |value: f64| Measure {
            cell: None,
            value: Some(value),
            interval: None,
        };
        let comparison = Comparison {
            a: ("e".to_owned(), "ra".to_owned()),
            b: ("e".to_owned(), "rb".to_owned()),
            options: OPTIONS,
            shared: vec![SharedCell {
                name: "base/0-shot/sim".to_owned(),
                id: "c1".to_owned(),
                a: whole(0.75),
                b: whole(2.0 / 3.0),
                n_a: a.len(),
                n_b: b.len(),
                difference,
                resampling,
            }],
            only_a: Vec::new(),
            only_b: Vec::new(),
        };
        let markdown = comparison.markdown();
        assert!(
            markdown.contains("paired, the 2 examples both judged (of 4 and 3)"),
            "{markdown}"
        );
        assert!(markdown.contains(
            "The runs judged partly different examples in `base/0-shot/sim`: there B − A is \
             over the examples both judged"
        ));
    }

    #[test]
    fn the_same_seed_gives_the_same_interval() {
        let a = scores(&[("x", 1.0), ("y", 0.0), ("z", 1.0), ("w", 0.0)]);
        let b = scores(&[("x", 1.0), ("y", 1.0), ("z", 0.0), ("w", 1.0)]);
        assert_eq!(
            difference(&a, &b, &OPTIONS, 7),
            difference(&a, &b, &OPTIONS, 7)
        );
        assert_eq!(
            difference(&a, &scores(&[]), &OPTIONS, 7).1,
            Resampling::Nothing
        );
    }
}

//! Reports: a run's ranked cell metrics, exported one format per module.
//!
//! A [`Summary`] holds what `summary.json` holds (DESIGN §9): the experiment, the run id,
//! how the intervals were computed, and the cells ranked best first. Each exporter is a
//! pure function from a summary to a string — [`summary_json`], [`cells_csv`],
//! [`report_md`] and, for the terminal at the end of a run, [`ranked_table_text`] — so the
//! same summary always gives byte-identical files; writing them is the caller's job.
//! Floats are rounded to 6 decimals in JSON and CSV so that the last bits of a sum do not
//! reach the bytes.
//!
//! A summary also carries the run's reference rows (random, length heuristics, human
//! agreement: [`crate::metrics::reference_rows`]) and what is known of its labelers.

pub mod compare;
mod csv;
mod html;
mod json;
mod markdown;
pub mod paper;
pub mod pivot;
pub mod run_folder;
pub(crate) mod table;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::metrics::{CellMetrics, MetricsOptions, PAIRED_TEST, ReferenceRow};

pub use csv::cells_csv;
pub use html::report_html;
pub use json::summary_json;
pub use markdown::report_md;
pub use table::ranked_table_text;

/// `one` or `many`, as `count` asks.
pub(crate) fn plural<'a>(count: usize, one: &'a str, many: &'a str) -> &'a str {
    if count == 1 { one } else { many }
}

/// A run's metrics: the content of `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub experiment: String,
    pub run_id: String,
    /// How the intervals and the paired test were computed.
    pub method: Method,
    /// Ranked best first (see [`crate::metrics::rank`]).
    pub cells: Vec<CellMetrics>,
    /// What a labeler must beat on the same examples.
    #[serde(default)]
    pub references: Vec<ReferenceRow>,
    /// The labelers the cells use, in declared order.
    #[serde(default)]
    pub labelers: Vec<LabelerInfo>,
}

/// A labeler as reports and plots need it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelerInfo {
    pub name: String,
    pub backend: String,
    pub model: Option<String>,
    /// `logprobs`, `parsed` or `simulated`.
    pub mode: String,
    /// Parameter count, where known (the embedded ladder, or a size in the model's name).
    pub parameters: Option<f64>,
}

impl LabelerInfo {
    /// The parameter count when it is a usable size: tables and plots order labelers by
    /// it, and put those without one after the others.
    pub fn known_parameters(&self) -> Option<f64> {
        self.parameters.filter(|p| p.is_finite() && *p > 0.0)
    }
}

/// How the intervals and the paired test were computed, so a reader can redo them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Method {
    pub bootstrap_resamples: usize,
    pub seed: u64,
    pub confidence: f64,
    /// The test behind `tied_with_best`.
    pub paired_test: String,
}

impl Summary {
    /// A summary of `cells` as [`crate::metrics::summarize`] computed them with
    /// `options`; the cells are re-ranked so the order holds whatever the caller did.
    pub fn new(
        experiment: impl Into<String>,
        run_id: impl Into<String>,
        options: &MetricsOptions,
        mut cells: Vec<CellMetrics>,
    ) -> Summary {
        crate::metrics::rank(&mut cells);
        Summary {
            experiment: experiment.into(),
            run_id: run_id.into(),
            method: Method {
                bootstrap_resamples: options.bootstrap_resamples,
                seed: options.seed,
                confidence: options.confidence,
                paired_test: PAIRED_TEST.to_owned(),
            },
            cells,
            references: Vec::new(),
            labelers: Vec::new(),
        }
    }

    pub fn with_references(mut self, references: Vec<ReferenceRow>) -> Summary {
        self.references = references;
        self
    }

    pub fn with_labelers(mut self, labelers: Vec<LabelerInfo>) -> Summary {
        self.labelers = labelers;
        self
    }

    /// The best cell: ranked first and with an alignment.
    pub fn best(&self) -> Option<&CellMetrics> {
        self.cells.first().filter(|cell| cell.alignment.is_some())
    }
}

/// What a report says about the run beyond the metrics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportContext {
    /// Examples in the run.
    pub examples: usize,
    /// The experiment's labelers, in the order the report lists them.
    pub labelers: Vec<LabelerLine>,
    /// Wall time of the run, when known.
    pub run_seconds: Option<f64>,
}

/// One labeler as a report names it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LabelerLine {
    /// The labeler's name in the experiment file.
    pub name: String,
    /// `logprobs`, `parsed` or `simulated`.
    pub mode: String,
    /// The model, where there is one.
    pub model: Option<String>,
}

/// The mode string of the simulated backend.
pub const SIMULATED: &str = "simulated";

/// `x` rounded to 6 decimals, with −0 written as 0.
pub(crate) fn round6(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let rounded = (x * 1e6).round() / 1e6;
    // Adding 0.0 turns −0.0 into 0.0, so a tiny negative never prints as "-0.0".
    rounded + 0.0
}

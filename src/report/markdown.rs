//! `report.md`: the run for a human reader.
//!
//! A title, a paragraph on the run (examples, labelers and how each is read, simulated
//! labelers named as simulations), the ranked table, the footnote naming the paired
//! test, warnings a reader must not miss, and a legend of the columns. Limits: GitHub
//! flavoured Markdown tables; no ablation pivots or reference rows yet.

use std::fmt::Write as _;

use super::table::{self, Kind};
use super::{LabelerLine, ReportContext, SIMULATED, Summary, plural};
use crate::metrics::ECE_BINS;

/// The run as a Markdown report.
pub fn report_md(summary: &Summary, context: &ReportContext) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; the results are ignored for that reason.
    let _ = writeln!(out, "# rlaif report: {}\n", summary.experiment);
    let _ = writeln!(out, "{}\n", run_paragraph(summary, context));
    let _ = writeln!(out, "{}\n", method_paragraph(summary));
    out.push_str(&table(summary));
    out.push_str(&references(summary));

    let notes = table::notes(summary, &|name| code(name));
    if let Some(tied) = &notes.tied {
        let _ = writeln!(out, "\n{tied}");
    }
    if !notes.warnings.is_empty() {
        out.push('\n');
        for warning in &notes.warnings {
            let _ = writeln!(out, "- **{warning}**");
        }
    }
    let _ = writeln!(out, "\n{}", legend(summary));
    out
}

/// The reference rows, beside which the cells are read.
fn references(summary: &Summary) -> String {
    if summary.references.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\nReference rows on the same examples:\n\n| reference | n | alignment [95% CI] | how |\n| --- | ---: | --- | --- |\n",
    );
    for reference in &summary.references {
        let alignment = match (reference.alignment, reference.ci_low, reference.ci_high) {
            (Some(value), Some(low), Some(high)) => format!(
                "{:.1}% [{:.1}, {:.1}]",
                100.0 * value,
                100.0 * low,
                100.0 * high
            ),
            (Some(value), _, _) => format!("{:.1}%", 100.0 * value),
            _ => "–".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {alignment} | {} |",
            escape(&reference.name),
            reference.n,
            escape(&reference.note)
        );
    }
    out
}

/// Experiment, run, examples, cells, run time and labelers.
fn run_paragraph(summary: &Summary, context: &ReportContext) -> String {
    let cells = summary.cells.len();
    let mut text = format!(
        "Run {} of experiment {}: {} {}, {} {}",
        code(&summary.run_id),
        code(&summary.experiment),
        context.examples,
        plural(context.examples, "example", "examples"),
        cells,
        plural(cells, "cell", "cells"),
    );
    if let Some(seconds) = context.run_seconds {
        let _ = write!(text, ", run time {}", duration(seconds));
    }
    text.push('.');
    if !context.labelers.is_empty() {
        let labelers: Vec<String> = context.labelers.iter().map(labeler).collect();
        let _ = write!(
            text,
            " {}: {}.",
            plural(labelers.len(), "Labeler", "Labelers"),
            labelers.join("; ")
        );
    }
    let listed_simulated = context.labelers.iter().any(|l| l.mode == SIMULATED);
    if !listed_simulated && summary.cells.iter().any(|cell| cell.mode == SIMULATED) {
        text.push_str(
            " Cells in simulated mode come from a simulated labeler: a simulation, not a model.",
        );
    }
    text
}

/// `` `llama` (Llama-3.1-8B-Instruct, logprobs) ``, or the simulation said plainly.
fn labeler(labeler: &LabelerLine) -> String {
    let what = if labeler.mode == SIMULATED {
        "simulated labeler: a simulation, not a model".to_owned()
    } else {
        match &labeler.model {
            Some(model) => format!("{model}, {}", labeler.mode),
            None => labeler.mode.clone(),
        }
    };
    format!("{} ({what})", code(&labeler.name))
}

fn method_paragraph(summary: &Summary) -> String {
    let method = &summary.method;
    format!(
        "Alignment is agreement with the human label (a tie on either side counts half) over \
         the examples a cell judged without failure, with a {} percentile bootstrap interval \
         ({} resamples, seed {}; the same resamples for every cell).",
        table::level(method.confidence),
        method.bootstrap_resamples,
        method.seed
    )
}

/// The ranked table as a GitHub-flavoured Markdown table.
fn table(summary: &Summary) -> String {
    let columns = table::columns(summary);
    let mut out = String::new();
    let row = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    out.push_str(&row(columns.iter().map(|c| escape(&c.header)).collect()));
    out.push_str(&row(columns
        .iter()
        .map(|column| match column.kind {
            Kind::Number => "---:".to_owned(),
            Kind::Text | Kind::Name => "---".to_owned(),
        })
        .collect()));
    for position in 0..summary.cells.len() {
        out.push_str(&row(columns
            .iter()
            .map(|column| {
                let value = &column.values[position];
                match column.kind {
                    Kind::Name => escape(&code(value)),
                    Kind::Text | Kind::Number => escape(value),
                }
            })
            .collect()));
    }
    out
}

fn legend(summary: &Summary) -> String {
    let mut legend = format!(
        "Columns. *Position bias*: share of the examples judged in both orders whose \
         preferred slot is the same in both (the paper's \"% same position preferred\"; 0% \
         follows the responses, 100% only the slots). *Prefer first*: share of single-order \
         judgments preferring slot 1, before debiasing. *Prefer longer*: share of AI choices \
         of the longer response, with people's rate on the same examples in parentheses. \
         *ECE*: expected calibration error over {ECE_BINS} equal-width confidence bins. \
         *Calls* and *tokens*: what each cell's judgments need, cached or not; *cache hits*: \
         calls identical to one made earlier in the grid, which is made once and shared."
    );
    if table::has_rationales(summary) {
        let _ = write!(legend, " *Rationale written*: {}.", table::RATIONALE_LEGEND);
    }
    if table::counts_capped_rationales(summary) {
        let _ = write!(legend, " *Rationale capped*: {}.", table::CAPPED_LEGEND);
    }
    legend
}

/// Inline code; a name holding a backtick is wrapped in a longer fence.
fn code(text: &str) -> String {
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

/// A table cell's text with its pipes escaped, which GFM requires even inside code.
pub(crate) fn escape(text: &str) -> String {
    text.replace('|', "\\|")
}

/// `1h 02m 03s`, `2m 05s` or `4.2s`.
fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 60.0 {
        return format!("{:.1}s", seconds.max(0.0));
    }
    // Whole seconds are all a reader needs past a minute.
    let total = seconds.round() as u64;
    let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60);
    if hours > 0 {
        format!("{hours}h {minutes:02}m {seconds:02}s")
    } else {
        format!("{minutes}m {seconds:02}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(4.24), "4.2s");
        assert_eq!(duration(125.0), "2m 05s");
        assert_eq!(duration(3723.4), "1h 02m 03s");
    }

    #[test]
    fn names_are_escaped_for_tables() {
        assert_eq!(escape(&code("tone=a|b")), "`tone=a\\|b`");
        assert_eq!(code("a`b"), "`` a`b ``");
    }
}

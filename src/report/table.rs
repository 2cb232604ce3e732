//! The ranked table and the notes under it, shared by the Markdown report and the
//! terminal; [`ranked_table_text`] is the terminal's rendering.
//!
//! The table is built once as formatted strings, so every format shows the same numbers.
//! The notes say out loud what a reader could miss in the numbers: which cells are tied
//! with the best and by what test, a best cell no better than chance, labelers that
//! mostly pick a position, chain-of-thought cells that mostly wrote no rationale, and
//! failures. Limits: percentages to one decimal, so
//! differences below 0.05 points do not show.

use super::{Summary, round6};
use crate::metrics::CellMetrics;

/// The mark after the alignment of a cell statistically tied with the best.
pub(crate) const TIED: &str = "†";

/// What is missing where a metric could not be measured.
pub(crate) const NOTHING: &str = "–";

/// What the rationale column means, for the legends.
pub(crate) const RATIONALE_LEGEND: &str = "in chain-of-thought cells, the share of samples \
     whose rationale has any text; the others were scored right after the rationale cue";

/// What the capped-rationale column means, for the legends.
pub(crate) const CAPPED_LEGEND: &str = "in chain-of-thought cells, the share of samples \
     whose rationale ran out of tokens (max_rationale_tokens) before it ended, so that \
     the answer was read after a cut-off text";

/// Whether some cell's journal says how many of its rationales ran out of tokens, which
/// adds the capped-rationale column (summaries written before it was counted have none).
pub(crate) fn counts_capped_rationales(summary: &Summary) -> bool {
    summary
        .cells
        .iter()
        .any(|cell| cell.rationale_capped.is_some())
}

/// Whether some cell used chain of thought, which adds the rationale column (a summary
/// written before rationales were counted shows it empty rather than hiding it).
pub(crate) fn has_rationales(summary: &Summary) -> bool {
    summary.cells.iter().any(|cell| {
        cell.rationale_written.is_some()
            || cell.settings.get("cot") == Some(&serde_json::Value::Bool(true))
    })
}

/// How a column's values are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    /// A name a reader may copy (Markdown shows it as code).
    Name,
    Number,
}

/// One column of the ranked table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Column {
    /// The header in the Markdown report.
    pub header: String,
    /// The header on the terminal, where width is scarce.
    pub short: String,
    pub kind: Kind,
    /// One value per cell, in rank order.
    pub values: Vec<String>,
}

/// The ranked table's columns; `rationale written` appears only when some cell used
/// chain of thought, `rationale capped` only when some cell's journal counts it, `cost`
/// only when some cell has a price.
pub(crate) fn columns(summary: &Summary) -> Vec<Column> {
    let cells = &summary.cells;
    let column = |header: &str, short: &str, kind, value: &dyn Fn(&CellMetrics) -> String| Column {
        header: header.to_owned(),
        short: short.to_owned(),
        kind,
        values: cells.iter().map(value).collect(),
    };
    let alignment_header = format!("alignment [{} CI]", level(summary.method.confidence));
    let mut columns = vec![
        column("rank", "#", Kind::Number, &|cell| cell.rank.to_string()),
        column("cell", "cell", Kind::Name, &|cell| cell.name.clone()),
        column("mode", "mode", Kind::Text, &|cell| cell.mode.clone()),
        column(&alignment_header, &alignment_header, Kind::Text, &alignment),
        column("position bias", "pos. bias", Kind::Number, &|cell| {
            percent(cell.position_bias)
        }),
        column("prefer first", "first", Kind::Number, &|cell| {
            percent(cell.prefer_first)
        }),
        column(
            "prefer longer (human)",
            "longer (human)",
            Kind::Number,
            &|cell| match cell.prefer_longer {
                Some(_) => format!(
                    "{} ({})",
                    percent(cell.prefer_longer),
                    percent(cell.human_prefer_longer)
                ),
                None => NOTHING.to_owned(),
            },
        ),
        column("ECE", "ECE", Kind::Number, &|cell| {
            cell.ece
                .map_or_else(|| NOTHING.to_owned(), |ece| format!("{ece:.3}"))
        }),
    ];
    if has_rationales(summary) {
        columns.push(column(
            "rationale written",
            "rationale",
            Kind::Number,
            &|cell| percent(cell.rationale_written),
        ));
    }
    if counts_capped_rationales(summary) {
        columns.push(column(
            "rationale capped",
            "capped",
            Kind::Number,
            &|cell| percent(cell.rationale_capped),
        ));
    }
    columns.extend([
        column("calls", "calls", Kind::Number, &|cell| {
            thousands(cell.calls)
        }),
        column("tokens", "tokens", Kind::Number, &|cell| {
            thousands(cell.prompt_tokens + cell.completion_tokens)
        }),
        column("cache hits", "cached", Kind::Number, &|cell| {
            thousands(cell.cache_hits)
        }),
        column("failures", "failed", Kind::Number, &|cell| {
            thousands(cell.failures as u64)
        }),
    ]);
    if cells.iter().any(|cell| cell.cost.is_some()) {
        columns.push(column("cost", "cost", Kind::Number, &|cell| {
            cell.cost
                .map_or_else(|| NOTHING.to_owned(), |cost| format!("{cost:.4}"))
        }));
    }
    columns
}

/// `71.3% [66.1, 76.0]`, marked when tied with the best (the best itself is not marked).
fn alignment(cell: &CellMetrics) -> String {
    let Some(alignment) = cell.alignment else {
        return NOTHING.to_owned();
    };
    let mut text = format!("{:.1}%", alignment * 100.0);
    if let (Some(low), Some(high)) = (cell.ci_low, cell.ci_high) {
        text.push_str(&format!(" [{:.1}, {:.1}]", low * 100.0, high * 100.0));
    }
    if cell.tied_with_best && cell.rank > 1 {
        text.push(' ');
        text.push_str(TIED);
    }
    text
}

/// A share as a percentage to one decimal.
pub(crate) fn percent(share: Option<f64>) -> String {
    share.map_or_else(
        || NOTHING.to_owned(),
        |share| format!("{:.1}%", share * 100.0),
    )
}

/// An integer with thousands separated by commas.
pub(crate) fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (position, digit) in digits.chars().enumerate() {
        if position > 0 && (digits.len() - position).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The confidence level as a percentage: `95%`, `97.5%`.
pub(crate) fn level(confidence: f64) -> String {
    let percent = round6(confidence * 100.0);
    if percent.fract() == 0.0 {
        format!("{percent:.0}%")
    } else {
        format!("{percent}%")
    }
}

/// What the notes under the table say.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Notes {
    /// The footnote for the [`TIED`] mark (or that no other cell is tied).
    pub tied: Option<String>,
    /// Warnings, one sentence each: chance, position bias, unwritten rationales,
    /// capped rationales, failures.
    pub warnings: Vec<String>,
}

/// The cells whose `share` passes `past`, each named with the share as shown. `past`
/// takes the share in thousandths, so that a warning judges the share as printed to one
/// decimal: one shown as 50.0% is never called below or above half.
fn shares_where(
    summary: &Summary,
    name: &dyn Fn(&str) -> String,
    share: fn(&CellMetrics) -> Option<f64>,
    past: fn(f64) -> bool,
) -> Vec<String> {
    summary
        .cells
        .iter()
        .filter_map(|cell| {
            let value = share(cell)?;
            past(value * 1000.0).then(|| format!("{} ({})", name(&cell.name), percent(Some(value))))
        })
        .collect()
}

/// The notes under the table; `name` formats a cell name.
pub(crate) fn notes(summary: &Summary, name: &dyn Fn(&str) -> String) -> Notes {
    let mut notes = Notes::default();
    let method = &summary.method;
    let level = level(method.confidence);
    let measured: Vec<&CellMetrics> = summary
        .cells
        .iter()
        .filter(|cell| cell.alignment.is_some())
        .collect();
    let how = format!(
        "{} ({level}, {} resamples, seed {})",
        method.paired_test, method.bootstrap_resamples, method.seed
    );
    if measured.len() > 1 {
        let tied = measured
            .iter()
            .skip(1)
            .filter(|cell| cell.tied_with_best)
            .count();
        notes.tied = Some(if tied > 0 {
            format!("{TIED} tied with the best cell — {how}.")
        } else {
            format!("No other cell is tied with the best — {how}.")
        });
    }

    if let Some(best) = summary.best() {
        let (low, high) = match (best.ci_low, best.ci_high, best.alignment) {
            (Some(low), Some(high), _) => (low, high),
            (_, _, Some(alignment)) => (alignment, alignment),
            _ => (0.0, 0.0),
        };
        let interval = format!("[{:.1}, {:.1}]", low * 100.0, high * 100.0);
        if low <= 0.5 && 0.5 <= high {
            notes.warnings.push(format!(
                "The best cell's {level} interval {interval} includes 50%: on these examples \
                 it is no better than chance."
            ));
        } else if high < 0.5 {
            notes.warnings.push(format!(
                "The best cell's {level} interval {interval} lies below 50%: it disagrees with \
                 people more often than chance would (check the task's polarity)."
            ));
        }
        // A length heuristic at or above the best cell's upper bound means no cell beats
        // picking by length on these examples.
        let heuristic = summary
            .references
            .iter()
            .filter(|row| row.name.starts_with("always"))
            .filter_map(|row| Some((row, row.alignment?)))
            .max_by(|x, y| x.1.total_cmp(&y.1));
        if let Some((row, alignment)) = heuristic
            && alignment >= high
        {
            notes.warnings.push(format!(
                "The reference row \"{}\" ({:.1}%) reaches the best cell's upper bound \
                     {:.1}%: no cell is better than picking by length here.",
                row.name,
                alignment * 100.0,
                high * 100.0
            ));
        }
    }

    let biased: Vec<String> = summary
        .cells
        .iter()
        .filter(|cell| cell.position_bias.is_some_and(|bias| bias > 0.5))
        .map(|cell| name(&cell.name))
        .collect();
    if !biased.is_empty() {
        let subject = if biased.len() == summary.cells.len() {
            format!("every cell ({})", listed(&biased))
        } else {
            format!(
                "{} of {} cells ({})",
                biased.len(),
                summary.cells.len(),
                listed(&biased)
            )
        };
        notes.warnings.push(format!(
            "Position bias is above 50% in {subject}: there the labeler mostly picks a \
             position, not a response."
        ));
    }

    let unwritten = shares_where(
        summary,
        name,
        |cell| cell.rationale_written,
        |permille| permille < 499.5,
    );
    if !unwritten.is_empty() {
        let (subject, verb) = if unwritten.len() == 1 {
            ("cell", "measures")
        } else {
            ("cells", "measure")
        };
        notes.warnings.push(format!(
            "The labeler wrote a rationale for fewer than half the samples of the \
             chain-of-thought {subject} {}: the rest were scored right after the rationale \
             cue, so the {subject} {verb} the prompt more than reasoning.",
            listed(&unwritten)
        ));
    }

    let capped = shares_where(
        summary,
        name,
        |cell| cell.rationale_capped,
        |permille| permille >= 500.5,
    );
    if !capped.is_empty() {
        let subject = if capped.len() == 1 { "cell" } else { "cells" };
        notes.warnings.push(format!(
            "The labeler's rationale ran out of tokens in more than half the samples of \
             the chain-of-thought {subject} {}: those answers were read after a cut-off \
             text. Read a few (rationale_capped in judgments.jsonl): a larger \
             max_rationale_tokens helps a long rationale, not a loop; a rationale_stop \
             ends one that runs into the next example.",
            listed(&capped)
        ));
    }

    let failures: usize = summary.cells.iter().map(|cell| cell.failures).sum();
    if failures > 0 {
        let mut by_kind = std::collections::BTreeMap::new();
        for cell in &summary.cells {
            for (kind, count) in &cell.failures_by_kind {
                *by_kind.entry(kind.as_str()).or_insert(0usize) += count;
            }
        }
        let kinds: Vec<String> = by_kind
            .iter()
            .map(|(kind, count)| format!("{kind} {count}"))
            .collect();
        let examples = if failures == 1 { "example" } else { "examples" };
        notes.warnings.push(format!(
            "{failures} {examples} failed ({}): failed examples count in cost and failures \
             only, not in alignment.",
            kinds.join(", ")
        ));
    }
    notes
}

/// At most five names, then how many more, so that a large grid's notes stay short.
fn listed(names: &[String]) -> String {
    const LISTED: usize = 5;
    let mut text = names[..names.len().min(LISTED)].join(", ");
    if names.len() > LISTED {
        text.push_str(&format!(", and {} more", names.len() - LISTED));
    }
    text
}

/// The ranked table as aligned plain text for the terminal, with its notes.
pub fn ranked_table_text(summary: &Summary) -> String {
    let columns = columns(summary);
    let widths: Vec<usize> = columns
        .iter()
        .map(|column| {
            column
                .values
                .iter()
                .map(|value| value.chars().count())
                .chain([column.short.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&columns)
            .zip(&widths)
            .map(|((text, column), &width)| {
                let pad = " ".repeat(width.saturating_sub(text.chars().count()));
                match column.kind {
                    Kind::Number => format!("{pad}{text}"),
                    Kind::Text | Kind::Name => format!("{text}{pad}"),
                }
            })
            .collect();
        let mut line = padded.join("  ").trim_end().to_owned();
        line.push('\n');
        line
    };
    let mut out = line(columns.iter().map(|column| column.short.as_str()).collect());
    for row in 0..summary.cells.len() {
        out.push_str(&line(
            columns
                .iter()
                .map(|column| column.values[row].as_str())
                .collect(),
        ));
    }
    let notes = notes(summary, &|name| name.to_owned());
    let lines: Vec<&String> = notes.tied.iter().chain(&notes.warnings).collect();
    if !lines.is_empty() {
        out.push('\n');
        for line in lines {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn levels_print_without_noise() {
        assert_eq!(level(0.95), "95%");
        assert_eq!(level(0.975), "97.5%");
        assert_eq!(level(0.9), "90%");
    }
}

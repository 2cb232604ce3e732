//! `report.html`: the run as one self-contained page, with a sortable ranked table and
//! four plots.
//!
//! Everything is inline: the CSS, a small hand-written script (sorting, and a self-check
//! that a test reads back from headless Chromium) and SVG plots drawn here in Rust. The
//! page names no external URL, and its Content-Security-Policy (`default-src 'none'`)
//! forbids loading anything, so it opens the same offline, from an e-mail attachment or
//! an artifact store. Every string that comes from the experiment (names of the
//! experiment, cells, labelers and models) is HTML-escaped; no data reaches the script
//! except through escaped attributes, so a name holding `<script>` stays text.
//!
//! The page: a title, a paragraph on the run (examples, labelers and how each is read,
//! simulated labelers named as simulations), how the intervals were computed, the ranked
//! table (the columns of `report.md`, a Pareto mark, each alignment with its interval
//! drawn on a shared 0–100% axis with chance at 50%, reference rows greyed below), the
//! notes of the Markdown report, then the plots `plot-size`, `plot-temperature`,
//! `plot-position-bias` and `plot-pareto`. A plot the grid cannot fill is still drawn,
//! with a "no data: …" message, so the layout and the self-check do not depend on the
//! grid.
//!
//! Output is deterministic: the same summary gives the same bytes (no clock, fixed float
//! formatting, ordered collections). Limits: plots are static SVG, without zoom; a plot
//! shows at most [`MAX_SERIES`] series and falls back to the best cells beyond that.

use std::fmt::Write as _;

use super::table::{self, Kind, NOTHING};
use super::{ReportContext, SIMULATED, Summary, plural};
use crate::grid::{SelfConsistency, Settings};
use crate::metrics::{self, CellMetrics, ECE_BINS};

/// The most series a plot draws one by one; beyond it a plot shows the best cells.
const MAX_SERIES: usize = 6;

/// Series colours: the Okabe–Ito palette, distinguishable with colour blindness (its
/// yellow left out, which is unreadable on white).
const COLORS: [&str; 7] = [
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000",
];

/// Cells that are not a plot's series, drawn for context.
const GREY: &str = "#b4b4b4";

/// The run as a self-contained HTML page.
pub fn report_html(summary: &Summary, context: &ReportContext) -> String {
    let labelers = labelers(summary, context);
    let cells: Vec<CellView<'_>> = summary.cells.iter().map(CellView::new).collect();
    let title = format!("rlaif report: {}", summary.experiment);

    // Writing to a String cannot fail; the results are ignored for that reason.
    let mut out = String::with_capacity(96 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    // Before any script: nothing may load from anywhere, only the inline code runs.
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n",
    );
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(out, "<title>{}</title>", escape(&title));
    let _ = writeln!(out, "<style>{CSS}</style>");
    // First script on the page, so that it records the errors of everything after it.
    let _ = writeln!(out, "<script>{ERRORS_JS}</script>");
    out.push_str("</head>\n<body>\n<main>\n");
    let _ = writeln!(out, "<h1>{}</h1>", escape(&title));
    let _ = writeln!(
        out,
        "<p class=\"run\">{}</p>",
        run_paragraph(summary, context, &labelers)
    );
    let _ = writeln!(out, "<p class=\"method\">{}</p>", method_paragraph(summary));

    out.push_str("<h2>Ranked cells</h2>\n");
    out.push_str(&ranked_table(summary));
    out.push_str(&notes(summary));
    let _ = writeln!(out, "<p class=\"legend-text\">{}</p>", legend(summary));

    out.push_str("<h2>Plots</h2>\n<div class=\"plots\">\n");
    let order = SizeOrder::new(&labelers, &cells);
    let by_size = SizeSeries::new(&cells, &order);
    let level = table::level(summary.method.confidence);
    out.push_str(&size_plot(&by_size, &order, &level));
    out.push_str(&temperature_plot(&cells, &level));
    out.push_str(&position_bias_plot(&by_size, &order));
    out.push_str(&pareto_plot(&cells, &labelers, &level));
    out.push_str("</div>\n");

    out.push_str(
        "<section id=\"page-errors-section\" hidden>\n<h2>Errors on this page</h2>\n\
         <ul id=\"page-errors\"></ul>\n</section>\n",
    );
    out.push_str("</main>\n");
    let _ = writeln!(out, "<script>{PAGE_JS}</script>");
    out.push_str("</body>\n</html>\n");
    out
}

// ---------------------------------------------------------------------------------------
// Text

/// `text` safe inside HTML text and double- or single-quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn code(text: &str) -> String {
    format!("<code>{}</code>", escape(text))
}

/// A labeler as the page shows it.
#[derive(Debug, Clone, PartialEq)]
struct Labeler {
    name: String,
    mode: String,
    model: Option<String>,
    parameters: Option<f64>,
}

/// The labelers in declared order: the summary's own list, else the context's, plus any
/// a cell names that neither lists (an older `summary.json`).
fn labelers(summary: &Summary, context: &ReportContext) -> Vec<Labeler> {
    let mut labelers: Vec<Labeler> = if summary.labelers.is_empty() {
        context
            .labelers
            .iter()
            .map(|labeler| Labeler {
                name: labeler.name.clone(),
                mode: labeler.mode.clone(),
                model: labeler.model.clone(),
                parameters: None,
            })
            .collect()
    } else {
        summary
            .labelers
            .iter()
            .map(|labeler| Labeler {
                name: labeler.name.clone(),
                mode: labeler.mode.clone(),
                model: labeler.model.clone(),
                parameters: labeler.known_parameters(),
            })
            .collect()
    };
    for cell in &summary.cells {
        let name = labeler_of(cell);
        if !labelers.iter().any(|labeler| labeler.name == name) {
            labelers.push(Labeler {
                name,
                mode: cell.mode.clone(),
                model: None,
                parameters: None,
            });
        }
    }
    labelers
}

/// A cell's labeler, from its settings.
fn labeler_of(cell: &CellMetrics) -> String {
    cell.settings
        .get("labeler")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// `135M`, `1.5B`, `8B`.
fn parameters(count: f64) -> String {
    let (value, unit) = if count >= 1e9 {
        (count / 1e9, "B")
    } else if count >= 1e6 {
        (count / 1e6, "M")
    } else if count >= 1e3 {
        (count / 1e3, "K")
    } else {
        (count, "")
    };
    format!("{}{unit}", trim_zeros(&format!("{value:.1}")))
}

/// `12`, `12.5`, `1.2k`, `3.4M`: a token count short enough for an axis.
fn compact(count: f64) -> String {
    let (value, unit) = if count >= 1e6 {
        (count / 1e6, "M")
    } else if count >= 1e3 {
        (count / 1e3, "k")
    } else {
        (count, "")
    };
    format!("{}{unit}", trim_zeros(&format!("{value:.1}")))
}

fn trim_zeros(number: &str) -> String {
    if number.contains('.') {
        number
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    } else {
        number.to_owned()
    }
}

/// A float with at most 6 decimals and no trailing zeros (`0.3`, `1`).
fn short(value: f64) -> String {
    trim_zeros(&format!("{:.6}", super::round6(value)))
}

/// A pixel coordinate: one decimal is finer than any screen needs, and fixed.
fn px(value: f64) -> String {
    let rounded = (value * 10.0).round() / 10.0 + 0.0;
    trim_zeros(&format!("{rounded:.1}"))
}

fn pct(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// `71.3% [66.1, 76.0]`, or the value alone without an interval.
fn with_interval(value: f64, low: Option<f64>, high: Option<f64>) -> String {
    match (low, high) {
        (Some(low), Some(high)) => format!(
            "{:.1}% [{:.1}, {:.1}]",
            value * 100.0,
            low * 100.0,
            high * 100.0
        ),
        _ => pct(value),
    }
}

fn run_paragraph(summary: &Summary, context: &ReportContext, labelers: &[Labeler]) -> String {
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
    if !labelers.is_empty() {
        let described: Vec<String> = labelers
            .iter()
            .map(|labeler| {
                let mut what = Vec::new();
                if labeler.mode == SIMULATED {
                    what.push("simulated labeler: a simulation, not a model".to_owned());
                } else {
                    if let Some(model) = &labeler.model {
                        what.push(escape(model));
                    }
                    if let Some(count) = labeler.parameters {
                        what.push(format!("{} parameters", parameters(count)));
                    }
                    what.push(escape(&labeler.mode));
                }
                format!("{} ({})", code(&labeler.name), what.join(", "))
            })
            .collect();
        let _ = write!(
            text,
            " {}: {}.",
            plural(described.len(), "Labeler", "Labelers"),
            described.join("; ")
        );
    }
    text
}

/// `4.2s`, `2m 05s`, `1h 02m 03s`.
fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 60.0 {
        return format!("{:.1}s", seconds.max(0.0));
    }
    let total = seconds.round() as u64;
    let (hours, minutes, seconds) = (total / 3600, total / 60 % 60, total % 60);
    if hours > 0 {
        format!("{hours}h {minutes:02}m {seconds:02}s")
    } else {
        format!("{minutes}m {seconds:02}s")
    }
}

fn method_paragraph(summary: &Summary) -> String {
    let method = &summary.method;
    format!(
        "Alignment is agreement with the human label (a tie on either side counts half) over \
         the examples a cell judged without failure, with a {} percentile bootstrap interval \
         ({} resamples, seed {}; the same resamples for every cell).",
        escape(&table::level(method.confidence)),
        method.bootstrap_resamples,
        method.seed
    )
}

fn legend(summary: &Summary) -> String {
    let mut rationale = if table::has_rationales(summary) {
        format!(
            " <em>Rationale written</em>: {}.",
            escape(table::RATIONALE_LEGEND)
        )
    } else {
        String::new()
    };
    if table::counts_capped_rationales(summary) {
        let _ = write!(
            rationale,
            " <em>Rationale capped</em>: {}.",
            escape(table::CAPPED_LEGEND)
        );
    }
    format!(
        "Columns. <em>Alignment</em>: the bar draws the interval on a 0–100% axis whose \
         dashed line is chance (50%). <em>Position bias</em>: share of the examples judged \
         in both orders whose preferred slot is the same in both (0% follows the responses, \
         100% only the slots). <em>Prefer first</em>: share of single-order judgments \
         preferring slot 1, before debiasing. <em>Prefer longer</em>: share of AI choices of \
         the longer response, people's rate on the same examples in parentheses. \
         <em>ECE</em>: expected calibration error over {ECE_BINS} equal-width confidence \
         bins. <em>Calls</em> and <em>tokens</em>: what each cell's judgments need, cached or \
         not; <em>cache hits</em>: calls identical to one made earlier in the grid.{rationale} \
         <em>Pareto</em> ◆: no other cell has at least its alignment at no more cost (money where every labeler has a price, else tokens). \
         Click a column's header to sort by it."
    )
}

// ---------------------------------------------------------------------------------------
// The ranked table

/// Width and padding of the interval bars in the table.
const BAR_WIDTH: f64 = 100.0;
const BAR_PAD: f64 = 5.0;

/// The sort key of a formatted value: its leading number (`71.3% [..]` → 71.3,
/// `1,234` → 1234), or `None` for a value that does not start with one.
fn sort_key(value: &str) -> Option<f64> {
    let number: String = value
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '-'))
        .filter(|&c| c != ',')
        .collect();
    number.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// The table of cells, sortable by clicking a header, with the reference rows below.
fn ranked_table(summary: &Summary) -> String {
    let columns = table::columns(summary);
    let alignment = columns
        .iter()
        .position(|column| column.header.starts_with("alignment"));
    let rows = summary.cells.len();
    // A column sorts by number when every measured value is one; a name never does.
    let numeric: Vec<bool> = columns
        .iter()
        .map(|column| {
            column.kind != Kind::Name
                && column
                    .values
                    .iter()
                    .all(|value| value == NOTHING || sort_key(value).is_some())
        })
        .collect();

    let mut out = String::from("<div class=\"table-wrap\">\n<table id=\"ranked\">\n<thead>\n<tr>");
    for (index, column) in columns.iter().enumerate() {
        let sort = if index == 0 { "ascending" } else { "none" };
        let kind = if numeric[index] { "num" } else { "text" };
        let mut header = escape(&column.header);
        if Some(index) == alignment {
            header.push_str("<br>");
            header.push_str(&bar_axis());
        }
        let _ = write!(
            out,
            "<th data-type=\"{kind}\" aria-sort=\"{sort}\">\
             <button type=\"button\">{header}</button></th>"
        );
    }
    out.push_str(
        "<th data-type=\"num\" aria-sort=\"none\"><button type=\"button\">Pareto</button></th>",
    );
    let _ = write!(
        out,
        "</tr>\n</thead>\n<tbody id=\"cells\" data-rows=\"{rows}\">\n"
    );
    let in_money = metrics::pareto_in_money(&summary.cells);
    for (position, cell) in summary.cells.iter().enumerate() {
        let _ = write!(out, "<tr data-rank=\"{}\">", cell.rank);
        for (index, column) in columns.iter().enumerate() {
            let value = &column.values[position];
            let key = if numeric[index] {
                sort_key(value).map(short).unwrap_or_default()
            } else if value == NOTHING {
                String::new()
            } else {
                value.clone()
            };
            let class = match column.kind {
                Kind::Number => " class=\"num\"",
                Kind::Name => " class=\"name\"",
                Kind::Text => "",
            };
            let shown = match column.kind {
                Kind::Name => code(value),
                Kind::Text | Kind::Number => escape(value),
            };
            let shown = if Some(index) == alignment {
                match cell.alignment {
                    Some(share) => format!(
                        "{}<span class=\"value\">{shown}</span>",
                        bar(share, cell.ci_low, cell.ci_high)
                    ),
                    None => shown,
                }
            } else {
                shown
            };
            let _ = write!(
                out,
                "<td{class} data-sort=\"{}\">{shown}</td>",
                escape(&key)
            );
        }
        if cell.pareto {
            let _ = write!(
                out,
                "<td class=\"pareto\" data-sort=\"1\" title=\"on the Pareto front of alignment \
                 against {}\">◆</td>",
                if in_money { "cost" } else { "tokens" }
            );
        } else {
            out.push_str("<td class=\"pareto\" data-sort=\"0\"></td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n");

    if !summary.references.is_empty() {
        let width = columns.len() + 1;
        // The reference rows line their bars up with the cells' when the table has an
        // alignment column: a name before it, the note after it.
        let before = alignment.unwrap_or(1).max(1);
        let after = width.saturating_sub(before + 1).max(1);
        let _ = write!(
            out,
            "<tbody class=\"references\">\n<tr class=\"reference-head\"><th colspan=\"{width}\" \
             scope=\"colgroup\">Reference rows on the same examples</th></tr>\n"
        );
        for reference in &summary.references {
            let shown = match reference.alignment {
                Some(share) => format!(
                    "{}<span class=\"value\">{}</span>",
                    bar(share, reference.ci_low, reference.ci_high),
                    escape(&with_interval(share, reference.ci_low, reference.ci_high))
                ),
                None => NOTHING.to_owned(),
            };
            let _ = writeln!(
                out,
                "<tr class=\"reference\"><td colspan=\"{before}\">{} \
                 <span class=\"n\">(n = {})</span></td>\
                 <td>{shown}</td><td colspan=\"{after}\">{}</td></tr>",
                escape(&reference.name),
                reference.n,
                escape(&reference.note)
            );
        }
        out.push_str("</tbody>\n");
    }
    out.push_str("</table>\n</div>\n");
    out
}

fn bar_x(share: f64) -> f64 {
    BAR_PAD + share.clamp(0.0, 1.0) * (BAR_WIDTH - 2.0 * BAR_PAD)
}

/// An interval as a bar on the shared 0–100% axis, with chance marked.
fn bar(share: f64, low: Option<f64>, high: Option<f64>) -> String {
    let mut out = format!(
        "<svg class=\"bar\" width=\"{w}\" height=\"14\" viewBox=\"0 0 {w} 14\" \
         aria-hidden=\"true\">\
         <line class=\"track\" x1=\"{a}\" x2=\"{b}\" y1=\"7\" y2=\"7\"/>\
         <line class=\"chance\" x1=\"{c}\" x2=\"{c}\" y1=\"1\" y2=\"13\"/>",
        w = px(BAR_WIDTH),
        a = px(bar_x(0.0)),
        b = px(bar_x(1.0)),
        c = px(bar_x(0.5)),
    );
    if let (Some(low), Some(high)) = (low, high) {
        let _ = write!(
            out,
            "<line class=\"ci\" x1=\"{l}\" x2=\"{h}\" y1=\"7\" y2=\"7\"/>\
             <line class=\"ci\" x1=\"{l}\" x2=\"{l}\" y1=\"3.5\" y2=\"10.5\"/>\
             <line class=\"ci\" x1=\"{h}\" x2=\"{h}\" y1=\"3.5\" y2=\"10.5\"/>",
            l = px(bar_x(low)),
            h = px(bar_x(high)),
        );
    }
    let _ = write!(
        out,
        "<circle class=\"point\" cx=\"{}\" cy=\"7\" r=\"3\"/></svg>",
        px(bar_x(share))
    );
    out
}

/// The bars' axis, for the alignment header.
fn bar_axis() -> String {
    let mut out = format!(
        "<svg class=\"bar-axis\" width=\"{w}\" height=\"12\" viewBox=\"0 0 {w} 12\" \
         aria-hidden=\"true\">",
        w = px(BAR_WIDTH)
    );
    for (share, anchor) in [(0.0, "start"), (0.5, "middle"), (1.0, "end")] {
        let x = if anchor == "start" {
            0.0
        } else if anchor == "end" {
            BAR_WIDTH
        } else {
            bar_x(share)
        };
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"10\" text-anchor=\"{anchor}\">{:.0}%</text>",
            px(x),
            share * 100.0
        );
    }
    out.push_str("</svg>");
    out
}

/// The Markdown report's notes, as HTML.
fn notes(summary: &Summary) -> String {
    // Names are wrapped in private-use marks, the whole sentence is escaped, then the
    // marks become <code>: so a name is escaped exactly once, like the text around it.
    const OPEN: char = '\u{e000}';
    const CLOSE: char = '\u{e001}';
    let notes = table::notes(summary, &|name: &str| {
        let clean: String = name.chars().filter(|&c| c != OPEN && c != CLOSE).collect();
        format!("{OPEN}{clean}{CLOSE}")
    });
    let html = |sentence: &str| {
        escape(sentence)
            .replace(OPEN, "<code>")
            .replace(CLOSE, "</code>")
    };
    let mut out = String::new();
    if let Some(tied) = &notes.tied {
        let _ = writeln!(out, "<p class=\"tied\">{}</p>", html(tied));
    }
    if !notes.warnings.is_empty() {
        out.push_str("<ul class=\"warnings\">\n");
        for warning in &notes.warnings {
            let _ = writeln!(out, "<li>{}</li>", html(warning));
        }
        out.push_str("</ul>\n");
    }
    out
}

// ---------------------------------------------------------------------------------------
// What the plots read from a cell

/// A cell with its settings read back, for grouping.
#[derive(Debug)]
struct CellView<'a> {
    cell: &'a CellMetrics,
    settings: Option<Settings>,
    labeler: String,
    /// The cell's name without its labeler: the prompt configuration.
    config: String,
}

impl<'a> CellView<'a> {
    fn new(cell: &'a CellMetrics) -> CellView<'a> {
        let settings: Option<Settings> = serde_json::from_value(cell.settings.clone()).ok();
        let labeler = labeler_of(cell);
        let config = cell
            .name
            .strip_suffix(&format!("/{labeler}"))
            .unwrap_or(&cell.name)
            .to_owned();
        CellView {
            cell,
            settings,
            labeler,
            config,
        }
    }

    fn tokens(&self) -> u64 {
        self.cell.prompt_tokens + self.cell.completion_tokens
    }

    /// Hover text: the cell, its alignment and interval.
    fn describe(&self) -> String {
        match self.cell.alignment {
            Some(share) => format!(
                "{}: alignment {}",
                self.cell.name,
                with_interval(share, self.cell.ci_low, self.cell.ci_high)
            ),
            None => format!("{}: no alignment", self.cell.name),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Plot geometry and drawing

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 340.0;
const LEFT: f64 = 58.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 62.0;
/// Space between the frame and the data, so that a point at an axis' end is whole.
const INSET: f64 = 8.0;

/// A linear or base-10 logarithmic map from data to pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Scale {
    min: f64,
    max: f64,
    log: bool,
    from: f64,
    to: f64,
}

impl Scale {
    fn at(&self, value: f64) -> f64 {
        let map = |v: f64| {
            if self.log {
                v.max(f64::MIN_POSITIVE).log10()
            } else {
                v
            }
        };
        let (value, min, max) = (map(value), map(self.min), map(self.max));
        let t = if max > min {
            (value - min) / (max - min)
        } else {
            0.5
        };
        self.from + t * (self.to - self.from)
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Tick {
    at: f64,
    label: String,
    /// A second line under an x tick (a labeler's size).
    sub: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct Axis {
    label: String,
    scale: Scale,
    ticks: Vec<Tick>,
}

/// One drawn point, with its interval when it has one.
#[derive(Debug, Clone, PartialEq)]
struct Mark {
    x: f64,
    y: f64,
    low: Option<f64>,
    high: Option<f64>,
    /// Hover text.
    title: String,
    filled: bool,
    /// Horizontal offset in pixels, so series at the same x do not hide each other.
    dx: f64,
    /// Whether its series' line goes through it: not for a labeler of unknown size on
    /// an axis ordered by size, where a line would draw a trend that is not there.
    joined: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct Series {
    name: String,
    color: &'static str,
    /// Whether its points are joined, in x order.
    line: bool,
    marks: Vec<Mark>,
}

/// A horizontal reference line.
#[derive(Debug, Clone, PartialEq)]
struct Guide {
    y: f64,
    label: String,
}

#[derive(Debug, Clone, PartialEq)]
struct Chart {
    id: &'static str,
    title: String,
    x: Axis,
    y: Axis,
    guides: Vec<Guide>,
    /// Grey context points, drawn under the series.
    background: Vec<Mark>,
    series: Vec<Series>,
    /// A line drawn across the series (the Pareto front) and its legend name.
    front: Option<(String, Vec<(f64, f64)>)>,
}

fn x_scale(min: f64, max: f64, log: bool) -> Scale {
    Scale {
        min,
        max,
        log,
        from: LEFT + INSET,
        to: WIDTH - RIGHT - INSET,
    }
}

fn y_scale(min: f64, max: f64) -> Scale {
    Scale {
        min,
        max,
        log: false,
        from: HEIGHT - BOTTOM - INSET,
        to: TOP + INSET,
    }
}

/// A share axis from a multiple of 10% below the data (and chance) to one above it.
fn share_axis(label: &str, values: &[f64]) -> Axis {
    let low = values.iter().copied().fold(0.5, f64::min);
    let high = values.iter().copied().fold(0.5, f64::max);
    // The tolerance keeps an end that is already a multiple of 10% (0.4 computed as
    // 0.39999999999999997) from growing the axis by a step.
    let min = ((low * 10.0 + 1e-9).floor() / 10.0).clamp(0.0, 1.0);
    let max = ((high * 10.0 - 1e-9).ceil() / 10.0).clamp(0.0, 1.0);
    let (min, max) = if max - min < 0.2 {
        ((min - 0.1).max(0.0), (max + 0.1).min(1.0))
    } else {
        (min, max)
    };
    let step = if max - min > 0.6 { 0.2 } else { 0.1 };
    // Ticks on multiples of the step, so a wide axis reads 20%, 40%, … not 10%, 30%, ….
    let ticks = nice_multiples(min, max, step)
        .into_iter()
        .map(|at| Tick {
            at,
            label: format!("{:.0}%", at * 100.0),
            sub: None,
        })
        .collect();
    Axis {
        label: label.to_owned(),
        scale: y_scale(min, max),
        ticks,
    }
}

/// The multiples of `step` in `min..=max`, rounded so that they print exactly.
fn nice_multiples(min: f64, max: f64, step: f64) -> Vec<f64> {
    let first = (min / step - 1e-9).ceil() as i64;
    let last = (max / step + 1e-9).floor() as i64;
    (first..=last)
        .map(|k| super::round6(k as f64 * step))
        .collect()
}

/// About five round steps (1, 2 or 5 times a power of ten) across `min..max`.
fn nice_ticks(min: f64, max: f64, format: &dyn Fn(f64) -> String) -> Vec<Tick> {
    let span = (max - min).max(f64::MIN_POSITIVE);
    let raw = span / 5.0;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|step| *step >= raw)
        .unwrap_or(10.0 * power);
    nice_multiples(min, max, step)
        .into_iter()
        .map(|at| Tick {
            at,
            label: format(at),
            sub: None,
        })
        .collect()
}

/// Ticks at 1, 2 and 5 times the powers of ten in `min..max`, or the powers alone when
/// that would be crowded.
fn log_ticks(min: f64, max: f64, format: &dyn Fn(f64) -> String) -> Vec<Tick> {
    let first = min.log10().floor() as i32;
    let last = max.log10().ceil() as i32;
    let multiples: &[f64] = if last - first > 3 {
        &[1.0]
    } else {
        &[1.0, 2.0, 5.0]
    };
    let mut ticks = Vec::new();
    for power in first..=last {
        for m in multiples {
            let at = m * 10f64.powi(power);
            if at >= min * (1.0 - 1e-9) && at <= max * (1.0 + 1e-9) {
                ticks.push(Tick {
                    at,
                    label: format(at),
                    sub: None,
                });
            }
        }
    }
    ticks
}

/// An SVG of `chart`, inside its figure with a heading, caption and legend.
fn figure(chart: &Chart, heading: &str, caption: &str) -> String {
    let mut svg = open_svg(chart.id, &chart.title);
    draw_axes(&mut svg, &chart.x, &chart.y);

    let (x, y) = (chart.x.scale, chart.y.scale);
    for guide in &chart.guides {
        let at = px(y.at(guide.y));
        let _ = write!(
            svg,
            "<line class=\"guide\" x1=\"{}\" x2=\"{}\" y1=\"{at}\" y2=\"{at}\"/>\
             <text class=\"guide-label\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            px(LEFT),
            px(WIDTH - RIGHT),
            px(WIDTH - RIGHT - 4.0),
            px(y.at(guide.y) - 4.0),
            escape(&guide.label)
        );
    }

    svg.push_str("<g class=\"data\">");
    for mark in &chart.background {
        draw_mark(&mut svg, mark, GREY, x, y);
    }
    for series in &chart.series {
        if series.line && series.marks.iter().filter(|m| m.joined).count() > 1 {
            let mut points: Vec<&Mark> = series.marks.iter().filter(|m| m.joined).collect();
            points.sort_by(|a, b| a.x.total_cmp(&b.x));
            let path: Vec<String> = points
                .iter()
                .map(|m| format!("{},{}", px(x.at(m.x) + m.dx), px(y.at(m.y))))
                .collect();
            let _ = write!(
                svg,
                "<polyline data-mark=\"line\" class=\"series\" stroke=\"{}\" points=\"{}\"/>",
                series.color,
                path.join(" ")
            );
        }
    }
    if let Some((name, points)) = chart.front.as_ref().filter(|(_, points)| points.len() > 1) {
        let path: Vec<String> = points
            .iter()
            .map(|&(tokens, share)| format!("{},{}", px(x.at(tokens)), px(y.at(share))))
            .collect();
        let _ = write!(
            svg,
            "<polyline data-mark=\"line\" class=\"front\" points=\"{}\">\
             <title>{}</title></polyline>",
            path.join(" "),
            escape(name)
        );
    }
    if let Some((name, points)) = &chart.front {
        // A ring around each point of the front, so a front of one point shows too.
        for &(tokens, share) in points {
            let _ = write!(
                svg,
                "<circle data-mark=\"front\" class=\"front-point\" cx=\"{}\" cy=\"{}\" \
                 r=\"7.5\"><title>{}</title></circle>",
                px(x.at(tokens)),
                px(y.at(share)),
                escape(name)
            );
        }
    }
    for series in &chart.series {
        for mark in &series.marks {
            draw_mark(&mut svg, mark, series.color, x, y);
        }
    }
    svg.push_str("</g></svg>");

    let mut legend = String::new();
    for series in &chart.series {
        let _ = write!(
            legend,
            "<li><span class=\"swatch\" style=\"background:{}\"></span>{}</li>",
            series.color,
            escape(&series.name)
        );
    }
    if let Some((name, _)) = &chart.front {
        let _ = write!(
            legend,
            "<li><span class=\"swatch front\"></span>{}</li>",
            escape(name)
        );
    }
    if !chart.background.is_empty() {
        let _ = write!(
            legend,
            "<li><span class=\"swatch\" style=\"background:{GREY}\"></span>other cells</li>"
        );
    }
    wrap_figure(chart.id, heading, &svg, &legend, caption)
}

fn open_svg(id: &str, title: &str) -> String {
    format!(
        "<svg id=\"{id}\" class=\"plot\" viewBox=\"0 0 {} {}\" role=\"img\" \
         aria-labelledby=\"{id}-title\"><title id=\"{id}-title\">{}</title>",
        px(WIDTH),
        px(HEIGHT),
        escape(title)
    )
}

fn wrap_figure(id: &str, heading: &str, svg: &str, legend: &str, caption: &str) -> String {
    let legend = if legend.is_empty() {
        String::new()
    } else {
        format!("<ul class=\"legend\">{legend}</ul>")
    };
    format!(
        "<figure class=\"plot-figure\" data-plot=\"{id}\"><h3>{}</h3>{svg}{legend}\
         <figcaption>{}</figcaption></figure>\n",
        escape(heading),
        escape(caption)
    )
}

fn draw_axes(svg: &mut String, x: &Axis, y: &Axis) {
    let (left, right) = (LEFT, WIDTH - RIGHT);
    let (top, bottom) = (TOP, HEIGHT - BOTTOM);
    svg.push_str("<g class=\"axes\">");
    for tick in &y.ticks {
        let at = px(y.scale.at(tick.at));
        let _ = write!(
            svg,
            "<line class=\"grid\" x1=\"{}\" x2=\"{}\" y1=\"{at}\" y2=\"{at}\"/>\
             <text x=\"{}\" y=\"{at}\" dy=\"0.32em\" text-anchor=\"end\">{}</text>",
            px(left),
            px(right),
            px(left - 6.0),
            escape(&tick.label)
        );
    }
    for tick in &x.ticks {
        let at = px(x.scale.at(tick.at));
        let _ = write!(
            svg,
            "<line class=\"tick\" x1=\"{at}\" x2=\"{at}\" y1=\"{}\" y2=\"{}\"/>\
             <text x=\"{at}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            px(bottom),
            px(bottom + 4.0),
            px(bottom + 16.0),
            escape(&tick.label)
        );
        if let Some(sub) = &tick.sub {
            let _ = write!(
                svg,
                "<text class=\"sub\" x=\"{at}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                px(bottom + 29.0),
                escape(sub)
            );
        }
    }
    let _ = write!(
        svg,
        "<rect class=\"frame\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>\
         <text class=\"axis-label\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\
         <text class=\"axis-label\" transform=\"translate(14 {}) rotate(-90)\" \
         text-anchor=\"middle\">{}</text>",
        px(left),
        px(top),
        px(right - left),
        px(bottom - top),
        px((left + right) / 2.0),
        px(HEIGHT - 8.0),
        escape(&x.label),
        px((top + bottom) / 2.0),
        escape(&y.label)
    );
    svg.push_str("</g>");
}

fn draw_mark(svg: &mut String, mark: &Mark, color: &str, x: Scale, y: Scale) {
    let cx = px(x.at(mark.x) + mark.dx);
    let _ = write!(
        svg,
        "<g data-mark=\"point\"><title>{}</title>",
        escape(&mark.title)
    );
    if let (Some(low), Some(high)) = (mark.low, mark.high) {
        let (l, h) = (px(y.at(low)), px(y.at(high)));
        let cap = |at: &str| {
            format!(
                "<line x1=\"{}\" x2=\"{}\" y1=\"{at}\" y2=\"{at}\"/>",
                px(x.at(mark.x) + mark.dx - 3.0),
                px(x.at(mark.x) + mark.dx + 3.0)
            )
        };
        let _ = write!(
            svg,
            "<g class=\"ci\" stroke=\"{color}\">\
             <line x1=\"{cx}\" x2=\"{cx}\" y1=\"{l}\" y2=\"{h}\"/>{}{}</g>",
            cap(&l),
            cap(&h)
        );
    }
    let fill = if mark.filled { color } else { "#ffffff" };
    let _ = write!(
        svg,
        "<circle cx=\"{cx}\" cy=\"{}\" r=\"4\" fill=\"{fill}\" stroke=\"{color}\"/></g>",
        px(y.at(mark.y))
    );
}

/// A plot the grid cannot fill: the frame and why it is empty, `detail` on a second
/// line so that the first stays short enough for the frame.
fn no_data(id: &'static str, title: &str, heading: &str, message: &str, detail: &str) -> String {
    let mut svg = open_svg(id, title);
    let (x, y) = ((LEFT + WIDTH - RIGHT) / 2.0, (TOP + HEIGHT - BOTTOM) / 2.0);
    let _ = write!(
        svg,
        "<rect class=\"frame\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>\
         <text class=\"nodata\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        px(LEFT),
        px(TOP),
        px(WIDTH - RIGHT - LEFT),
        px(HEIGHT - BOTTOM - TOP),
        px(x),
        px(y),
        escape(message)
    );
    if !detail.is_empty() {
        let _ = write!(
            svg,
            "<text class=\"nodata-detail\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            px(x),
            px(y + 18.0),
            escape(detail)
        );
    }
    svg.push_str("</svg>");
    let caption = if detail.is_empty() {
        message.to_owned()
    } else {
        format!("{message} {detail}")
    };
    wrap_figure(id, heading, &svg, "", &caption)
}

/// `(s − (k−1)/2) × step` pixels: series side by side around their x.
fn dodge(series: usize, count: usize) -> f64 {
    let step = (36.0 / count.max(1) as f64).min(7.0);
    (series as f64 - (count.saturating_sub(1)) as f64 / 2.0) * step
}

// ---------------------------------------------------------------------------------------
// The plots

/// The measured labelers in plot order: by parameter count where known (smallest
/// first), then those of unknown size in declared order.
#[derive(Debug)]
struct SizeOrder {
    labelers: Vec<Labeler>,
    /// Whether any size is known, so that the axis is ordered by size at all.
    by_size: bool,
}

impl SizeOrder {
    fn new(labelers: &[Labeler], cells: &[CellView<'_>]) -> SizeOrder {
        let measured = labelers.iter().filter(|labeler| {
            cells
                .iter()
                .any(|c| c.labeler == labeler.name && c.cell.alignment.is_some())
        });
        let mut ordered: Vec<Labeler> = measured
            .clone()
            .filter(|l| l.parameters.is_some())
            .cloned()
            .collect();
        // A stable sort keeps declared order among equal sizes.
        ordered.sort_by(|a, b| {
            a.parameters
                .unwrap_or(0.0)
                .total_cmp(&b.parameters.unwrap_or(0.0))
        });
        let by_size = !ordered.is_empty();
        ordered.extend(measured.filter(|l| l.parameters.is_none()).cloned());
        SizeOrder {
            labelers: ordered,
            by_size,
        }
    }

    fn position(&self, labeler: &str) -> Option<usize> {
        self.labelers.iter().position(|l| l.name == labeler)
    }

    /// Whether a line may go through the labeler at plot position `at` (see
    /// [`Mark::joined`]).
    fn joinable(&self, at: usize) -> bool {
        !self.by_size
            || self
                .labelers
                .get(at)
                .is_some_and(|l| l.parameters.is_some())
    }

    /// Says so when some labelers stand off the lines.
    fn unjoined_note(&self) -> &'static str {
        if (0..self.labelers.len()).all(|at| self.joinable(at)) {
            ""
        } else {
            " Labelers of unknown size are points off the lines."
        }
    }
}

/// The series the size and position-bias plots share.
#[derive(Debug)]
struct SizeSeries<'a> {
    /// Per series: its name and its cell at each labeler (by plot position).
    series: Vec<(String, Vec<(usize, &'a CellView<'a>)>)>,
    /// Measured cells that are in no series.
    others: Vec<(usize, &'a CellView<'a>)>,
    /// How the series were chosen, for the caption.
    how: String,
}

impl<'a> SizeSeries<'a> {
    /// The series as lines of marks, dodged apart and joined only between labelers of
    /// known size, and the other cells as background points; `mark` draws one cell at a
    /// plot position with a horizontal offset, or nothing when it has no value.
    fn marks(
        &self,
        order: &SizeOrder,
        mark: impl Fn(usize, &CellView<'_>, f64) -> Option<Mark>,
    ) -> (Vec<Series>, Vec<Mark>) {
        let count = self.series.len();
        let series = self
            .series
            .iter()
            .enumerate()
            .map(|(index, (name, points))| Series {
                name: name.clone(),
                color: COLORS[index % COLORS.len()],
                line: true,
                marks: points
                    .iter()
                    .filter_map(|(at, cell)| {
                        let drawn = mark(*at, cell, dodge(index, count))?;
                        Some(Mark {
                            joined: order.joinable(*at),
                            ..drawn
                        })
                    })
                    .collect(),
            })
            .collect();
        let background = self
            .others
            .iter()
            .filter_map(|(at, cell)| mark(*at, cell, 0.0))
            .collect();
        (series, background)
    }

    /// One series per prompt configuration when there are at most [`MAX_SERIES`], else
    /// the best cell of each labeler.
    fn new(cells: &'a [CellView<'a>], order: &SizeOrder) -> SizeSeries<'a> {
        let measured: Vec<(usize, &CellView<'_>)> = cells
            .iter()
            .filter(|cell| cell.cell.alignment.is_some())
            .filter_map(|cell| order.position(&cell.labeler).map(|at| (at, cell)))
            .collect();
        // Configurations in rank order of their best cell: cells come ranked.
        let mut configs: Vec<&str> = Vec::new();
        for (_, cell) in &measured {
            if !configs.contains(&cell.config.as_str()) {
                configs.push(&cell.config);
            }
        }
        if configs.len() <= MAX_SERIES {
            let series = configs
                .iter()
                .map(|config| {
                    let points: Vec<(usize, &CellView<'_>)> = measured
                        .iter()
                        .filter(|(_, cell)| cell.config == *config)
                        .copied()
                        .collect();
                    ((*config).to_owned(), points)
                })
                .collect();
            SizeSeries {
                series,
                others: Vec::new(),
                how: "One series per prompt configuration (a cell's name without its \
                      labeler), joined across labelers."
                    .to_owned(),
            }
        } else {
            let mut best: Vec<(usize, &CellView<'_>)> = Vec::new();
            let mut others = Vec::new();
            for &(at, cell) in &measured {
                if best.iter().any(|(b, _)| *b == at) {
                    others.push((at, cell));
                } else {
                    best.push((at, cell));
                }
            }
            SizeSeries {
                series: vec![("best cell of each labeler".to_owned(), best)],
                others,
                how: format!(
                    "The best cell of each labeler, joined across labelers; the grid has {} \
                     prompt configurations, too many to draw one line each, so the other \
                     cells are grey points.",
                    configs.len()
                ),
            }
        }
    }
}

/// The labelers as x ticks, their sizes underneath.
fn labeler_axis(order: &SizeOrder) -> Axis {
    let labelers = &order.labelers;
    let count = labelers.len();
    let label = if order.by_size {
        if labelers.iter().all(|l| l.parameters.is_some()) {
            "labeler, by parameter count"
        } else {
            "labeler, by parameter count (unknown sizes last, in declared order)"
        }
    } else {
        "labeler, in declared order (parameter counts unknown)"
    };
    Axis {
        label: label.to_owned(),
        scale: x_scale(-0.5, count as f64 - 0.5, false),
        ticks: labelers
            .iter()
            .enumerate()
            .map(|(at, labeler)| Tick {
                at: at as f64,
                label: labeler.name.clone(),
                sub: Some(match labeler.parameters {
                    Some(count) => parameters(count),
                    None if labeler.mode == SIMULATED => "simulated".to_owned(),
                    None => "size unknown".to_owned(),
                }),
            })
            .collect(),
    }
}

fn size_plot(by_size: &SizeSeries<'_>, order: &SizeOrder, level: &str) -> String {
    const ID: &str = "plot-size";
    let title = "Alignment by labeler size";
    if order.labelers.len() < 2 {
        return no_data(
            ID,
            title,
            title,
            "no data: the grid does not vary the labeler",
            "",
        );
    }
    let (series, background) = by_size.marks(order, |at, cell, dx| {
        Some(alignment_mark(at as f64, cell, dx))
    });
    let chart = Chart {
        id: ID,
        title: title.to_owned(),
        x: labeler_axis(order),
        y: share_axis(
            "alignment with people",
            &interval_values(&series, &background),
        ),
        guides: vec![chance()],
        background,
        series,
        front: None,
    };
    figure(
        &chart,
        title,
        &format!(
            "{}{} Bars are {level} bootstrap intervals. The paper's trend: alignment grows \
             with size (PaLM 2 L 78.0%, S 73.8%, XS 62.7% on TL;DR).",
            by_size.how,
            order.unjoined_note()
        ),
    )
}

fn chance() -> Guide {
    Guide {
        y: 0.5,
        label: "chance (50%)".to_owned(),
    }
}

/// A cell's alignment at `x` with its interval.
fn alignment_mark(x: f64, cell: &CellView<'_>, dx: f64) -> Mark {
    Mark {
        x,
        y: cell.cell.alignment.unwrap_or(0.0),
        low: cell.cell.ci_low,
        high: cell.cell.ci_high,
        title: cell.describe(),
        filled: true,
        dx,
        joined: true,
    }
}

/// Every value a share axis must hold: points and interval ends.
fn interval_values(series: &[Series], background: &[Mark]) -> Vec<f64> {
    series
        .iter()
        .flat_map(|s| &s.marks)
        .chain(background)
        .flat_map(|m| [Some(m.y), m.low, m.high])
        .flatten()
        .collect()
}

fn position_bias_plot(by_size: &SizeSeries<'_>, order: &SizeOrder) -> String {
    const ID: &str = "plot-position-bias";
    let title = "Position bias by labeler size";
    if order.labelers.len() < 2 {
        return no_data(
            ID,
            title,
            title,
            "no data: the grid does not vary the labeler",
            "",
        );
    }
    let mark = |at: usize, cell: &CellView<'_>, dx: f64| {
        cell.cell.position_bias.map(|bias| Mark {
            x: at as f64,
            y: bias,
            low: None,
            high: None,
            title: format!("{}: position bias {}", cell.cell.name, pct(bias)),
            filled: true,
            dx,
            joined: order.joinable(at),
        })
    };
    let (series, background) = by_size.marks(order, mark);
    if series.iter().all(|s| s.marks.is_empty()) && background.is_empty() {
        return no_data(
            ID,
            title,
            title,
            "no data: the grid does not vary the order",
            "(no example was judged in both orders)",
        );
    }
    let chart = Chart {
        id: ID,
        title: title.to_owned(),
        x: labeler_axis(order),
        y: Axis {
            label: "same position preferred in both orders".to_owned(),
            scale: y_scale(0.0, 1.0),
            ticks: (0..=5)
                .map(|step| Tick {
                    at: step as f64 / 5.0,
                    label: format!("{}%", step * 20),
                    sub: None,
                })
                .collect(),
        },
        guides: vec![Guide {
            y: 0.5,
            label: "above: mostly picks a position".to_owned(),
        }],
        background,
        series,
        front: None,
    };
    figure(
        &chart,
        title,
        &format!(
            "{}{} The paper's trend: position bias shrinks with size (PaLM 2 L 18%, S 21%, \
             XS 56%).",
            by_size.how,
            order.unjoined_note()
        ),
    )
}

fn temperature_plot(cells: &[CellView<'_>], level: &str) -> String {
    const ID: &str = "plot-temperature";
    let title = "Alignment by sampling temperature (chain-of-thought self-consistency)";
    let heading = "Alignment by temperature";
    // Chain-of-thought cells grouped by everything but self-consistency.
    let mut groups: Vec<(String, Vec<(&CellView<'_>, SelfConsistency)>)> = Vec::new();
    for cell in cells.iter().filter(|c| c.cell.alignment.is_some()) {
        let Some(settings) = cell.settings.as_ref().filter(|s| s.cot) else {
            continue;
        };
        let sc = settings.self_consistency;
        let key = Settings {
            self_consistency: SelfConsistency::GREEDY,
            ..settings.clone()
        }
        .name();
        match groups.iter_mut().find(|(name, _)| *name == key) {
            Some((_, members)) => members.push((cell, sc)),
            None => groups.push((key, vec![(cell, sc)])),
        }
    }
    let temperatures = |members: &[(&CellView<'_>, SelfConsistency)]| {
        let mut distinct: Vec<f64> = members.iter().map(|(_, sc)| sc.temperature).collect();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        distinct
    };
    // The configuration that varies temperature most; among equals the one holding the
    // best cell, which comes first since cells are ranked.
    let mut chosen: Option<usize> = None;
    for (index, (_, members)) in groups.iter().enumerate() {
        let better = match chosen {
            None => true,
            Some(best) => temperatures(members).len() > temperatures(&groups[best].1).len(),
        };
        if better {
            chosen = Some(index);
        }
    }
    let Some(chosen) = chosen.filter(|&c| temperatures(&groups[c].1).len() >= 2) else {
        return no_data(
            ID,
            title,
            heading,
            "no data: the grid does not vary the temperature",
            "of chain-of-thought cells (self-consistency sampling)",
        );
    };
    let (config, members) = &groups[chosen];
    let mut all: Vec<f64> = groups
        .iter()
        .flat_map(|(_, members)| members.iter().map(|(_, sc)| sc.temperature))
        .collect();
    all.sort_by(f64::total_cmp);
    all.dedup();
    let (Some(&low), Some(&high)) = (all.first(), all.last()) else {
        // Unreachable: the chosen group has two temperatures.
        return String::new();
    };
    let pad = ((high - low) * 0.1).max(0.05);

    let mut counts: Vec<u32> = members.iter().map(|(_, sc)| sc.samples).collect();
    counts.sort_unstable();
    counts.dedup();
    let series: Vec<Series> = counts
        .iter()
        .enumerate()
        .map(|(index, &samples)| Series {
            name: format!(
                "{samples} {}",
                if samples == 1 { "sample" } else { "samples" }
            ),
            color: COLORS[index % COLORS.len()],
            line: true,
            marks: members
                .iter()
                .filter(|(_, sc)| sc.samples == samples)
                .map(|(cell, sc)| alignment_mark(sc.temperature, cell, dodge(index, counts.len())))
                .collect(),
        })
        .collect();
    let background: Vec<Mark> = groups
        .iter()
        .enumerate()
        .filter(|(index, _)| *index != chosen)
        .flat_map(|(_, (_, members))| members)
        .map(|(cell, sc)| alignment_mark(sc.temperature, cell, 0.0))
        .collect();
    let x_ticks = if all.len() <= 8 {
        all.iter()
            .map(|&t| Tick {
                at: t,
                label: short(t),
                sub: None,
            })
            .collect()
    } else {
        nice_ticks(low, high, &short)
    };
    let chart = Chart {
        id: ID,
        title: title.to_owned(),
        x: Axis {
            label: "sampling temperature of the rationales".to_owned(),
            scale: x_scale(low - pad, high + pad, false),
            ticks: x_ticks,
        },
        y: share_axis(
            "alignment with people",
            &interval_values(&series, &background),
        ),
        guides: vec![chance()],
        background,
        series,
        front: None,
    };
    let others = if groups.len() > 1 {
        " Other chain-of-thought cells are grey points."
    } else {
        ""
    };
    figure(
        &chart,
        heading,
        &format!(
            "Cells of {config} (the chain-of-thought configuration that varies temperature \
             most), one series per sample count; temperature 0 is one greedy rationale. Bars \
             are {level} bootstrap intervals.{others} The paper's trend: higher temperature \
             lowers alignment."
        ),
    )
}

fn pareto_plot(cells: &[CellView<'_>], labelers: &[Labeler], level: &str) -> String {
    const ID: &str = "plot-pareto";
    // The cost the front was marked on, so that the plot shows what decided it.
    let in_money = metrics::pareto_in_money(cells.iter().map(|c| c.cell));
    let cost = |c: &CellView<'_>| metrics::pareto_cost(c.cell, in_money);
    let (title, unit) = if in_money {
        (
            "Alignment against cost (money), with the Pareto front",
            "cost",
        )
    } else {
        (
            "Alignment against cost (tokens), with the Pareto front",
            "tokens",
        )
    };
    let heading = "Alignment against cost";
    let measured: Vec<&CellView<'_>> = cells
        .iter()
        .filter(|c| c.cell.alignment.is_some() && cost(c) > 0.0)
        .collect();
    if measured.is_empty() {
        return no_data(
            ID,
            title,
            heading,
            &format!("no data: no cell has both an alignment and a {unit} figure"),
            "",
        );
    }
    let costs: Vec<f64> = measured.iter().map(|c| cost(c)).collect();
    let (low, high) = costs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &t| {
            (l.min(t), h.max(t))
        });
    let log = high / low > 10.0;
    let (x_scale_, ticks) = if log {
        let (min, max) = (low / 1.4, high * 1.4);
        (x_scale(min, max, true), log_ticks(min, max, &compact))
    } else {
        let pad = ((high - low) * 0.08).max(high * 0.05).max(1.0);
        let (min, max) = ((low - pad).max(0.0), high + pad);
        (x_scale(min, max, false), nice_ticks(min, max, &compact))
    };

    // One series per labeler, in declared order, so colours match across runs.
    let mut series: Vec<Series> = Vec::new();
    for labeler in labelers {
        let marks: Vec<Mark> = measured
            .iter()
            .filter(|c| c.labeler == labeler.name)
            .map(|cell| {
                let mut title = format!(
                    "{}, {} tokens",
                    cell.describe(),
                    table::thousands(cell.tokens())
                );
                if let Some(cost) = cell.cell.cost {
                    let _ = write!(title, ", cost {cost:.4}");
                }
                if cell.cell.pareto {
                    title.push_str(", on the Pareto front");
                }
                Mark {
                    x: cost(cell),
                    y: cell.cell.alignment.unwrap_or(0.0),
                    low: cell.cell.ci_low,
                    high: cell.cell.ci_high,
                    title,
                    filled: cell.cell.pareto,
                    dx: 0.0,
                    joined: false,
                }
            })
            .collect();
        if !marks.is_empty() {
            series.push(Series {
                name: labeler.name.clone(),
                color: COLORS[series.len() % COLORS.len()],
                line: false,
                marks,
            });
        }
    }
    let mut front: Vec<(f64, f64)> = measured
        .iter()
        .filter(|c| c.cell.pareto)
        .map(|c| (cost(c), c.cell.alignment.unwrap_or(0.0)))
        .collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let chart = Chart {
        id: ID,
        title: title.to_owned(),
        x: Axis {
            label: if in_money {
                format!(
                    "cost per cell, at the prices given{}",
                    if log { ", log scale" } else { "" }
                )
            } else {
                format!(
                    "tokens per cell (prompt + completion{})",
                    if log { ", log scale" } else { "" }
                )
            },
            scale: x_scale_,
            ticks,
        },
        y: share_axis("alignment with people", &interval_values(&series, &[])),
        guides: vec![chance()],
        background: Vec::new(),
        series,
        front: Some(("Pareto front".to_owned(), front)),
    };
    figure(
        &chart,
        heading,
        &format!(
            "Every cell, coloured by labeler, with its {level} bootstrap interval; filled \
             points are on the Pareto front (no other cell has at least their alignment for \
             at most their {unit}), ringed and joined by the dashed line. Hover a point for \
             its cell."
        ),
    )
}

// ---------------------------------------------------------------------------------------
// Style and scripts

const CSS: &str = r#"
:root { color-scheme: light; }
body { margin: 0; background: #fff; color: #1f2328;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", "Liberation Sans",
  sans-serif; }
main { max-width: 1320px; margin: 0 auto; padding: 18px 20px 48px; }
h1 { font-size: 22px; margin: 0 0 8px; }
h2 { font-size: 18px; margin: 28px 0 10px; border-bottom: 1px solid #d8dee4; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 0 0 4px; }
code { font: 12px/1.3 ui-monospace, "DejaVu Sans Mono", "Liberation Mono", monospace;
  background: #f3f4f6; padding: 0 3px; border-radius: 3px; }
p { margin: 6px 0; max-width: 110ch; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; font-size: 12px; }
th, td { padding: 3px 5px; border-bottom: 1px solid #e5e7eb; text-align: left;
  vertical-align: middle; }
td { white-space: nowrap; }
td.num, td.pareto { text-align: right; font-variant-numeric: tabular-nums; }
td.pareto { color: #0b6b3a; text-align: center; }
thead th { position: sticky; top: 0; background: #f6f8fa; vertical-align: bottom; }
thead th button { all: unset; cursor: pointer; display: block; font-weight: 600; }
thead th button:focus-visible { outline: 2px solid #0072b2; }
thead th[aria-sort="ascending"] button::after { content: " \25B2"; color: #0072b2; }
thead th[aria-sort="descending"] button::after { content: " \25BC"; color: #0072b2; }
tbody#cells tr:nth-child(even) { background: #fafbfc; }
tbody#cells tr:hover { background: #eef5fb; }
.value { display: inline-block; min-width: 13.5ch; font-variant-numeric: tabular-nums; }
svg.bar, svg.bar-axis { vertical-align: middle; margin-right: 6px; }
svg.bar .track { stroke: #d0d7de; stroke-width: 1; }
svg.bar .chance { stroke: #8c959f; stroke-width: 1; stroke-dasharray: 2 2; }
svg.bar .ci { stroke: #0072b2; stroke-width: 1.6; }
svg.bar .point { fill: #0072b2; }
svg.bar-axis text { font-size: 9px; fill: #57606a; font-weight: 400; }
tbody.references tr { color: #8c959f; background: #f6f6f6; font-style: italic; }
tbody.references tr.reference-head th { color: #57606a; font-weight: 600; font-style: normal;
  background: #eef0f2; border-top: 2px solid #d0d7de; }
tbody.references td { white-space: normal; }
tbody.references svg.bar .ci, tbody.references svg.bar .point { stroke: #8c959f; fill: #8c959f; }
.tied { color: #57606a; }
ul.warnings { padding-left: 20px; }
ul.warnings li { color: #9a3412; font-weight: 600; margin: 3px 0; }
.legend-text { color: #57606a; font-size: 12.5px; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 22px; }
figure.plot-figure { margin: 0; border: 1px solid #e5e7eb; border-radius: 6px; padding: 10px 12px; }
figure figcaption { color: #57606a; font-size: 12px; margin-top: 4px; }
svg.plot { width: 100%; height: auto; display: block; font-size: 11px; }
svg.plot text { fill: #3d444d; }
svg.plot .frame { fill: none; stroke: #8c959f; stroke-width: 1; }
svg.plot .grid { stroke: #eaeef2; stroke-width: 1; }
svg.plot .tick { stroke: #8c959f; }
svg.plot .sub { fill: #6e7781; font-size: 10px; }
svg.plot .axis-label { font-size: 12px; fill: #1f2328; }
svg.plot .guide { stroke: #8c959f; stroke-dasharray: 4 3; }
svg.plot .guide-label { fill: #6e7781; font-size: 10px; }
svg.plot .series { fill: none; stroke-width: 1.6; opacity: 0.75; }
svg.plot .front { fill: none; stroke: #1f2328; stroke-width: 2; stroke-dasharray: 6 3; }
svg.plot .front-point { fill: none; stroke: #1f2328; stroke-width: 1.2; }
svg.plot .ci line { stroke-width: 1.4; }
svg.plot circle { stroke-width: 1.6; }
svg.plot .nodata { font-size: 13px; fill: #6e7781; }
svg.plot .nodata-detail { font-size: 11px; fill: #6e7781; }
ul.legend { list-style: none; padding: 0; margin: 4px 0 0; display: flex; flex-wrap: wrap;
  gap: 4px 14px; font-size: 12px; }
ul.legend .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 50%;
  margin-right: 5px; vertical-align: -1px; }
ul.legend .swatch.front { border-radius: 0; height: 0; width: 16px;
  border-top: 2px dashed #1f2328; vertical-align: 3px; }
#page-errors-section { color: #b91c1c; }
"#;

/// Records every error on the page (script errors, failed loads, blocked requests,
/// `console.error`) in `window.rlaifErrors` and, once the list exists, in the DOM.
const ERRORS_JS: &str = r#"
"use strict";
window.rlaifErrors = [];
(function () {
  var shown = 0;
  /* Writes the errors not yet shown into the page's list, once the list exists. */
  function flush() {
    var list = document.getElementById("page-errors");
    if (!list) { return; }
    for (; shown < window.rlaifErrors.length; shown++) {
      var item = document.createElement("li");
      item.className = "page-error";
      item.textContent = window.rlaifErrors[shown];
      list.appendChild(item);
      list.parentNode.hidden = false;
    }
  }
  function record(message) {
    window.rlaifErrors.push(String(message));
    flush();
  }
  window.rlaifShowErrors = flush;
  window.addEventListener("error", function (event) {
    var target = event.target;
    if (target && target !== window && (target.src || target.href)) {
      record("failed to load " + (target.src || target.href));
    } else {
      record((event.message || "error") + (event.lineno ? " (line " + event.lineno + ")" : ""));
    }
  }, true);
  window.addEventListener("unhandledrejection", function (event) {
    record("unhandled rejection: " + event.reason);
  });
  document.addEventListener("securitypolicyviolation", function (event) {
    record("blocked by the page's policy: " + event.blockedURI);
  });
  var original = console.error;
  console.error = function () {
    record(Array.prototype.join.call(arguments, " "));
    return original.apply(console, arguments);
  };
})();
"#;

/// Sorting by a header click, and the self-check that writes its result into
/// `body[data-check]` ("ok" or the problems found).
const PAGE_JS: &str = r#"
"use strict";
(function () {
  var PLOTS = ["plot-size", "plot-temperature", "plot-position-bias", "plot-pareto"];
  var table = document.getElementById("ranked");
  var body = document.getElementById("cells");
  var headers = table.tHead.rows[0].cells;

  function value(row, column) {
    return row.cells[column].getAttribute("data-sort");
  }
  function compare(column, x, y) {
    if (headers[column].getAttribute("data-type") === "num") {
      return parseFloat(x) - parseFloat(y);
    }
    return x < y ? -1 : x > y ? 1 : 0;
  }
  /* Sorts the cells by a column; missing values last whatever the direction, ties in
     rank order. */
  function sortBy(column, direction) {
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a, column), y = value(b, column);
      var order = 0;
      if (x === "" || y === "") {
        order = (x === "") - (y === "");
      } else {
        order = compare(column, x, y);
        if (direction === "descending") { order = -order; }
      }
      return order || Number(a.getAttribute("data-rank")) - Number(b.getAttribute("data-rank"));
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(headers, function (header) {
      header.setAttribute("aria-sort", "none");
    });
    headers[column].setAttribute("aria-sort", direction);
  }
  window.rlaifSort = sortBy;
  Array.prototype.forEach.call(headers, function (header, column) {
    header.querySelector("button").addEventListener("click", function () {
      var now = header.getAttribute("aria-sort");
      var next = now === "ascending" ? "descending"
        : now === "descending" ? "ascending"
        : header.getAttribute("data-type") === "num" ? "descending" : "ascending";
      sortBy(column, next);
    });
  });

  /* Whether the rows are in the header's order: monotone, missing values last. */
  function inOrder(column) {
    var direction = headers[column].getAttribute("aria-sort");
    var previous = null, missing = false;
    for (var i = 0; i < body.rows.length; i++) {
      var v = value(body.rows[i], column);
      if (v === "") { missing = true; continue; }
      if (missing) { return false; }
      if (previous !== null) {
        var order = compare(column, previous, v);
        if (direction === "ascending" ? order > 0 : order < 0) { return false; }
      }
      previous = v;
    }
    return true;
  }

  function shows(element) {
    var box = element.getBoundingClientRect();
    return box.width > 0 || box.height > 0;
  }

  function check() {
    var problems = [];
    var marks = [];
    PLOTS.forEach(function (id) {
      var svg = document.getElementById(id);
      if (!svg) { problems.push(id + " is missing"); return; }
      if (!svg.querySelector("title")) { problems.push(id + " has no title"); }
      /* Count what the browser laid out, not what the markup holds: a hidden or
         collapsed mark has an empty box. */
      var drawn = Array.prototype.filter.call(svg.querySelectorAll("[data-mark]"), shows).length;
      var empty = svg.querySelector(".nodata");
      if (empty && !shows(empty)) { problems.push(id + " hides its no-data message"); }
      marks.push(id + "=" + (empty ? "nodata" : drawn));
      if (!drawn && !empty) { problems.push(id + " draws nothing"); }
      var box = svg.getBoundingClientRect();
      if (!(box.width > 100 && box.height > 50)) { problems.push(id + " is not laid out"); }
      var drawing = svg.getBBox();
      if (!(drawing.width > 0 && drawing.height > 0)) { problems.push(id + " renders empty"); }
    });
    var expected = Number(body.getAttribute("data-rows"));
    if (body.rows.length !== expected) {
      problems.push("the table has " + body.rows.length + " rows, not " + expected);
    }
    if (table.getBoundingClientRect().height <= 0) { problems.push("the table is not laid out"); }
    /* Click every header twice, as a reader would, and check the order each time. */
    Array.prototype.forEach.call(headers, function (header, column) {
      for (var click = 0; click < 2; click++) {
        header.querySelector("button").click();
        if (header.getAttribute("aria-sort") === "none") {
          problems.push("column " + column + " did not sort");
        } else if (!inOrder(column)) {
          problems.push("column " + column + " is out of order when " +
            header.getAttribute("aria-sort"));
        }
      }
    });
    sortBy(0, "ascending");
    for (var i = 1; i < body.rows.length; i++) {
      if (Number(body.rows[i - 1].getAttribute("data-rank")) >
          Number(body.rows[i].getAttribute("data-rank"))) {
        problems.push("rank order not restored");
        break;
      }
    }
    if (document.scripts.length !== 2) {
      problems.push("the page has " + document.scripts.length + " scripts, not 2");
    }
    window.rlaifShowErrors();
    window.rlaifErrors.forEach(function (error) { problems.push("error: " + error); });
    document.body.setAttribute("data-marks", marks.join(" "));
    document.body.setAttribute("data-check", problems.length ? problems.join("; ") : "ok");
  }
  window.addEventListener("load", function () {
    try { check(); } catch (error) {
      document.body.setAttribute("data-check", "the check failed: " + error);
    }
  });
})();
"#;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::grid::Scalar;
    use crate::metrics::{MetricsOptions, ReferenceRow};
    use crate::report::{LabelerInfo, LabelerLine};

    const PLOTS: [&str; 4] = [
        "plot-size",
        "plot-temperature",
        "plot-position-bias",
        "plot-pareto",
    ];

    fn settings(
        preamble: &str,
        cot: bool,
        samples: u32,
        temperature: f64,
        labeler: &str,
    ) -> Settings {
        Settings {
            preamble: preamble.to_owned(),
            few_shot: 0,
            exemplar_seed: None,
            cot,
            self_consistency: SelfConsistency {
                samples,
                temperature,
            },
            labeler: labeler.to_owned(),
            vars: BTreeMap::new(),
        }
    }

    /// A cell with the metrics the page reads; the rest are plausible constants.
    fn cell(
        settings: &Settings,
        alignment: f64,
        half_width: f64,
        bias: f64,
        tokens: u64,
    ) -> CellMetrics {
        CellMetrics {
            name: settings.name(),
            id: settings.id(),
            settings: serde_json::to_value(settings).unwrap(),
            n: 40,
            alignment: Some(alignment),
            ci_low: Some((alignment - half_width).max(0.0)),
            ci_high: Some((alignment + half_width).min(1.0)),
            tied_with_best: false,
            position_bias: Some(bias),
            prefer_first: Some(0.5 + bias / 4.0),
            prefer_longer: Some(0.6),
            ece: Some(0.08),
            calls: 80,
            prompt_tokens: tokens - tokens / 10,
            completion_tokens: tokens / 10,
            cache_hits: 4,
            failures: 0,
            rank: 0,
            mode: "logprobs".to_owned(),
            diff_low: None,
            diff_high: None,
            position_bias_examples: 40,
            position_bias_direction: Some(0.9),
            prefer_longer_examples: 40,
            human_prefer_longer: Some(0.55),
            mean_confidence: Some(0.7),
            log_loss: Some(0.6),
            cost: None,
            failures_by_kind: BTreeMap::new(),
            pareto: false,
            confidence_correlation: None,
            // CoT cells wrote a rationale for nearly every sample here.
            rationale_written: settings.cot.then_some(0.96),
            rationale_chars: settings.cot.then_some(640.0),
            rationale_capped: None,
        }
    }

    /// A run of three labelers, declared largest first: a self-consistency sweep on two
    /// of them, a direct cell on each, and a simulated one.
    fn fixture() -> Summary {
        let mut cells = Vec::new();
        for (labeler, skill, bias) in [("big", 0.76, 0.18), ("small", 0.62, 0.56)] {
            cells.push(cell(
                &settings("base", false, 1, 0.0, labeler),
                skill - 0.02,
                0.07,
                bias,
                2_000,
            ));
            cells.push(cell(
                &settings("detailed", true, 1, 0.0, labeler),
                skill,
                0.07,
                bias - 0.05,
                20_000,
            ));
            cells.push(cell(
                &settings("detailed", true, 4, 0.3, labeler),
                skill - 0.03,
                0.07,
                bias - 0.04,
                80_000,
            ));
            cells.push(cell(
                &settings("detailed", true, 4, 0.7, labeler),
                skill - 0.06,
                0.08,
                bias - 0.03,
                80_000,
            ));
        }
        let mut simulated = cell(
            &settings("base", false, 1, 0.0, "sim"),
            0.5,
            0.1,
            0.8,
            1_500,
        );
        simulated.mode = SIMULATED.to_owned();
        cells.push(simulated);
        mark_pareto(&mut cells);
        let options = MetricsOptions {
            bootstrap_resamples: 1000,
            seed: 7,
            confidence: 0.95,
        };
        let mut summary = Summary::new("size-sweep", "20240501-120000", &options, cells);
        summary.cells[0].tied_with_best = true;
        summary.cells[1].tied_with_best = true;
        summary.references = vec![
            ReferenceRow {
                name: "random".to_owned(),
                n: 40,
                alignment: Some(0.5),
                ci_low: Some(0.345),
                ci_high: Some(0.655),
                note: "a coin flip per example".to_owned(),
            },
            ReferenceRow {
                name: "always longer".to_owned(),
                n: 40,
                alignment: Some(0.575),
                ci_low: Some(0.425),
                ci_high: Some(0.725),
                note: "picks the longer response".to_owned(),
            },
            ReferenceRow {
                name: "human agreement".to_owned(),
                n: 0,
                alignment: None,
                ci_low: None,
                ci_high: None,
                note: "no pair has several votes".to_owned(),
            },
        ];
        summary.labelers = vec![
            info("big", Some("qwen2.5-coder-1.5b"), "logprobs", Some(1.5e9)),
            info("small", Some("smollm2-135m"), "logprobs", Some(135e6)),
            info("sim", None, SIMULATED, None),
        ];
        summary
    }

    fn info(name: &str, model: Option<&str>, mode: &str, parameters: Option<f64>) -> LabelerInfo {
        LabelerInfo {
            name: name.to_owned(),
            backend: if mode == SIMULATED {
                "simulated"
            } else {
                "embedded"
            }
            .to_owned(),
            model: model.map(str::to_owned),
            mode: mode.to_owned(),
            parameters,
        }
    }

    /// The front by its definition, as the metrics mark it.
    fn mark_pareto(cells: &mut [CellMetrics]) {
        let points: Vec<(f64, u64)> = cells
            .iter()
            .map(|c| (c.alignment.unwrap(), c.prompt_tokens + c.completion_tokens))
            .collect();
        for (cell, &(a, t)) in cells.iter_mut().zip(&points) {
            cell.pareto = !points
                .iter()
                .any(|&(b, u)| b >= a && u <= t && (b > a || u < t));
        }
    }

    fn context() -> ReportContext {
        ReportContext {
            examples: 40,
            labelers: Vec::new(),
            run_seconds: None,
        }
    }

    /// The text of the figure holding plot `id`.
    fn plot<'a>(html: &'a str, id: &str) -> &'a str {
        let start = html
            .find(&format!(
                "<figure class=\"plot-figure\" data-plot=\"{id}\">"
            ))
            .unwrap_or_else(|| panic!("no figure for {id}"));
        let end = start + html[start..].find("</figure>").unwrap();
        &html[start..end]
    }

    #[test]
    fn report_html_snapshot() {
        insta::assert_snapshot!(report_html(&fixture(), &context()));
    }

    #[test]
    fn the_page_is_deterministic_and_self_contained() {
        let html = report_html(&fixture(), &context());
        assert_eq!(html, report_html(&fixture(), &context()));
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains(" src=") && !html.contains(" href="));
        assert!(html.contains("default-src 'none'"));
        for id in PLOTS {
            assert!(html.contains(&format!("<svg id=\"{id}\"")), "{id}");
            assert!(!plot(&html, id).contains("no data"), "{id} has data");
        }
    }

    #[test]
    fn the_table_has_every_cell_sort_keys_and_the_references() {
        let summary = fixture();
        let html = report_html(&summary, &context());
        assert_eq!(html.matches("<tr data-rank=").count(), summary.cells.len());
        assert_eq!(html.matches("<tr class=\"reference\">").count(), 3);
        // The best cell: rank 1, alignment 76.0%, on the front.
        assert!(html.contains("<tr data-rank=\"1\"><td class=\"num\" data-sort=\"1\">1</td>"));
        assert!(html.contains("data-sort=\"76\""));
        assert!(html.contains("data-sort=\"1\" title=\"on the Pareto front"));
        assert!(html.contains("a simulation, not a model"));
        assert!(html.contains("<code>small</code> (smollm2-135m, 135M parameters, logprobs)"));
    }

    #[test]
    fn chance_and_position_bias_are_called_out() {
        let mut summary = fixture();
        let html = report_html(&summary, &context());
        assert!(html.contains("Position bias is above 50%"));
        assert!(!html.contains("no better than chance"));
        summary.cells[0].ci_low = Some(0.45);
        let html = report_html(&summary, &context());
        assert!(html.contains("no better than chance"));
    }

    #[test]
    fn labelers_are_ordered_by_size_unknown_last() {
        let html = report_html(&fixture(), &context());
        let size = plot(&html, "plot-size");
        let at = |name: &str| size.find(&format!(">{name}</text>")).unwrap();
        assert!(at("small") < at("big") && at("big") < at("sim"));
        assert!(size.contains(">135M</text>") && size.contains(">1.5B</text>"));
        assert!(size.contains("unknown sizes last"));
        let bias = plot(&html, "plot-position-bias");
        assert!(bias.find(">small</text>").unwrap() < bias.find(">big</text>").unwrap());
    }

    #[test]
    fn tokens_spanning_more_than_ten_times_use_a_log_axis() {
        let html = report_html(&fixture(), &context());
        assert!(plot(&html, "plot-pareto").contains("log scale"));
        let mut summary = fixture();
        summary
            .cells
            .retain(|cell| cell.prompt_tokens + cell.completion_tokens >= 20_000);
        let html = report_html(&summary, &context());
        assert!(!plot(&html, "plot-pareto").contains("log scale"));
    }

    #[test]
    fn with_every_labeler_priced_the_front_is_plotted_against_money() {
        // Two cells of equal alignment: the cheap model spends more tokens for less
        // money, so by money it alone is on the front.
        let mut expensive = cell(
            &settings("base", false, 1, 0.0, "big"),
            0.7,
            0.05,
            0.2,
            1_000,
        );
        let mut cheap = cell(
            &settings("base", false, 1, 0.0, "small"),
            0.7,
            0.05,
            0.2,
            5_000,
        );
        expensive.cost = Some(0.50);
        cheap.cost = Some(0.05);
        let mut cells = vec![expensive, cheap];
        metrics::mark_pareto_front(&mut cells);
        assert!(
            !cells[0].pareto && cells[1].pareto,
            "by money the cheap one dominates"
        );
        let options = MetricsOptions {
            bootstrap_resamples: 1000,
            seed: 7,
            confidence: 0.95,
        };
        let summary = Summary::new("priced", "r", &options, cells);
        let html = report_html(&summary, &context());
        let figure = plot(&html, "plot-pareto");
        assert!(
            figure.contains("Alignment against cost (money)"),
            "{figure}"
        );
        assert!(figure.contains("cost per cell, at the prices given"));
        assert!(figure.contains("at most their cost"));
        assert!(html.contains("on the Pareto front of alignment against cost"));
        assert!(!figure.contains("tokens per cell"));
        // The front as the figure draws it is the one the summary marks.
        assert_eq!(figure.matches("data-mark=\"front\"").count(), 1);
    }

    #[test]
    fn plots_without_data_say_what_the_grid_does_not_vary() {
        let mut summary = fixture();
        summary.cells.retain(|cell| {
            cell.name == "base/0-shot/big" || cell.name == "detailed/0-shot/cot/big"
        });
        let html = report_html(&summary, &context());
        for id in ["plot-size", "plot-temperature", "plot-position-bias"] {
            let figure = plot(&html, id);
            assert!(figure.contains("class=\"nodata\""), "{id}");
            assert!(figure.contains("no data: the grid does not vary"), "{id}");
            assert!(figure.contains("<title"), "{id} keeps its title");
        }
        assert!(!plot(&html, "plot-pareto").contains("no data"));

        summary.cells.clear();
        let html = report_html(&summary, &context());
        assert!(plot(&html, "plot-pareto").contains("no data"));
        assert!(html.contains("<tbody id=\"cells\" data-rows=\"0\">"));
    }

    #[test]
    fn many_prompt_configurations_fall_back_to_the_best_cell_per_labeler() {
        let mut summary = fixture();
        let mut extra = Vec::new();
        for labeler in ["big", "small"] {
            for (tone, shift) in [("a", 0.01), ("b", 0.02), ("c", 0.03), ("d", 0.04)] {
                let mut settings = settings("base", false, 1, 0.0, labeler);
                settings
                    .vars
                    .insert("tone".to_owned(), Scalar::Str(tone.to_owned()));
                extra.push(cell(&settings, 0.55 + shift, 0.05, 0.3, 2_000));
            }
        }
        summary.cells.extend(extra);
        metrics::rank(&mut summary.cells);
        let html = report_html(&summary, &context());
        let size = plot(&html, "plot-size");
        assert!(size.contains("best cell of each labeler"));
        assert!(size.contains("other cells"));
    }

    #[test]
    fn markup_in_names_is_escaped_everywhere() {
        const EVIL: &str = "<script>alert('x')</script><b onmouseover=\"y\">";
        let mut summary = fixture();
        summary.experiment = format!("exp{EVIL}");
        summary.run_id = format!("run{EVIL}");
        let labeler = format!("small{EVIL}");
        for cell in &mut summary.cells {
            if cell.settings["labeler"] == "small" {
                cell.settings["labeler"] = serde_json::Value::from(labeler.clone());
                cell.name = format!("{}{EVIL}", cell.name);
            }
        }
        summary.labelers[1].name = labeler.clone();
        summary.labelers[1].model = Some(format!("model{EVIL}"));
        summary.references[0].name = format!("random{EVIL}");
        summary.references[0].note = format!("note{EVIL}");
        let context = ReportContext {
            labelers: vec![LabelerLine {
                name: labeler,
                mode: "logprobs".to_owned(),
                model: None,
            }],
            ..context()
        };
        let html = report_html(&summary, &context);
        assert_eq!(
            html.matches("<script").count(),
            2,
            "only the page's scripts"
        );
        assert!(!html.contains("<b "));
        assert!(!html.contains("alert('x')"));
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    }

    #[test]
    fn numbers_are_formatted_stably() {
        assert_eq!(sort_key("71.3% [66.1, 76.0] †"), Some(71.3));
        assert_eq!(sort_key("1,234"), Some(1234.0));
        assert_eq!(sort_key("12.0% (33.0%)"), Some(12.0));
        assert_eq!(sort_key("–"), None);
        assert_eq!(parameters(135e6), "135M");
        assert_eq!(parameters(1.5e9), "1.5B");
        assert_eq!(parameters(8e9), "8B");
        assert_eq!(compact(47_648.0), "47.6k");
        assert_eq!(compact(2e6), "2M");
        assert_eq!(px(-0.04), "0");
        assert_eq!(px(12.25), "12.3");
        assert_eq!(short(0.30000000000000004), "0.3");
    }
}

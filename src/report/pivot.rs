//! Ablation tables: a run's cells pivoted on any of their settings, and the paper's
//! layouts beside its reference values (`rlaif report --rows/--cols`, `--table`).
//!
//! A pivot puts some axes (preamble, few_shot, cot, samples, temperature, labeler, user
//! vars) on the rows and others on the columns, and shows one metric per slot. Every axis
//! that varies among the shown cells must be a row, a column or fixed by a filter: a
//! table that silently averaged or picked among cells would print numbers that belong to
//! no configuration. After that check each slot holds at most one cell, because a cell is
//! its settings.
//!
//! A preset ([`Preset`]) is a pivot with the paper's rows and the paper's values in a
//! column beside ours (see [`super::paper`]). Axes a preset does not lay out (the labeler,
//! say) become one column of ours per value, so nothing is hidden.
//!
//! Everything here is pure: a [`Summary`] in, [`Tables`] out, rendered by
//! [`Tables::markdown`], [`Tables::csv`] and [`Tables::json`]. Limits: one metric per
//! table; the interval shown is the alignment's (the other metrics have none); numbers
//! are rounded to 6 decimals in CSV and JSON and to one decimal of a percent in Markdown.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use super::paper::{self, Task};
use super::table::{NOTHING, level, thousands};
use super::{LabelerInfo, Summary, round6};
use crate::metrics::CellMetrics;
use crate::spec::validate::suggest;

/// The built-in axes, by the names `--rows`, `--cols` and `--where` take.
pub const AXES: [&str; 7] = [
    "preamble",
    "few_shot",
    "exemplar_seed",
    "cot",
    "samples",
    "temperature",
    "labeler",
];

/// Why a table cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PivotError {
    #[error("unknown axis `{axis}` ({hint})")]
    UnknownAxis { axis: String, hint: String },
    #[error("axis `{axis}` is given twice (put each axis once, in --rows or in --cols)")]
    Repeated { axis: String },
    #[error("`--where {text}` is not AXIS=VALUE (write, for example, --where labeler=small)")]
    FilterSyntax { text: String },
    #[error("no cell has {axis}={value} ({hint})")]
    UnknownLevel {
        axis: String,
        value: String,
        hint: String,
    },
    #[error("no cell has {filters} (drop or change a --where)")]
    NothingSelected { filters: String },
    #[error(
        "the cells differ in {axes}, which {verb} neither a row nor a column (add {them} to --rows or --cols, or fix {them} with --where, e.g. {example})"
    )]
    Unplaced {
        axes: String,
        verb: &'static str,
        them: &'static str,
        example: String,
    },
    #[error("a pivot needs --rows or --cols (or both)")]
    NoLayout,
}

/// A setting that cells can differ in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Axis {
    Preamble,
    FewShot,
    ExemplarSeed,
    Cot,
    Samples,
    Temperature,
    Labeler,
    /// A user axis (`vars:` in the experiment file), by name.
    Var(String),
}

impl Axis {
    /// The axis named `name`: a built-in one, or a user var (`tone` or `vars.tone`)
    /// among `vars`.
    pub fn parse(name: &str, vars: &BTreeSet<String>) -> Result<Axis, PivotError> {
        let axis = match name {
            "preamble" => Some(Axis::Preamble),
            "few_shot" => Some(Axis::FewShot),
            "exemplar_seed" => Some(Axis::ExemplarSeed),
            "cot" => Some(Axis::Cot),
            "samples" => Some(Axis::Samples),
            "temperature" => Some(Axis::Temperature),
            "labeler" => Some(Axis::Labeler),
            _ => {
                let var = name.strip_prefix("vars.").unwrap_or(name);
                vars.contains(var).then(|| Axis::Var(var.to_owned()))
            }
        };
        axis.ok_or_else(|| {
            let known: Vec<&str> = AXES
                .iter()
                .copied()
                .chain(vars.iter().map(String::as_str))
                .collect();
            let listing = format!("the axes are: {}", known.join(", "));
            let hint = match suggest(name, known.iter().copied()) {
                Some(near) => format!("did you mean `{near}`? {listing}"),
                None => listing,
            };
            PivotError::UnknownAxis {
                axis: name.to_owned(),
                hint,
            }
        })
    }

    /// The axis's name, as the command line takes it.
    pub fn name(&self) -> &str {
        match self {
            Axis::Preamble => "preamble",
            Axis::FewShot => "few_shot",
            Axis::ExemplarSeed => "exemplar_seed",
            Axis::Cot => "cot",
            Axis::Samples => "samples",
            Axis::Temperature => "temperature",
            Axis::Labeler => "labeler",
            Axis::Var(name) => name,
        }
    }

    /// The cell's value on this axis; `null` when the settings do not hold it.
    pub fn level(&self, cell: &CellMetrics) -> Level {
        let settings = &cell.settings;
        let value = match self {
            Axis::Preamble => settings.get("preamble"),
            Axis::FewShot => settings.get("few_shot"),
            Axis::ExemplarSeed => settings.get("exemplar_seed"),
            Axis::Cot => settings.get("cot"),
            Axis::Samples => settings.pointer("/self_consistency/samples"),
            Axis::Temperature => settings.pointer("/self_consistency/temperature"),
            Axis::Labeler => settings.get("labeler"),
            Axis::Var(name) => settings.get("vars").and_then(|vars| vars.get(name)),
        };
        Level(value.cloned().unwrap_or(Value::Null))
    }
}

/// Every axis of a summary's cells: the built-in ones, then the user vars by name.
pub fn axes(summary: &Summary) -> Vec<Axis> {
    let mut axes = vec![
        Axis::Preamble,
        Axis::FewShot,
        Axis::ExemplarSeed,
        Axis::Cot,
        Axis::Samples,
        Axis::Temperature,
        Axis::Labeler,
    ];
    axes.extend(vars(summary).into_iter().map(Axis::Var));
    axes
}

/// The user vars any cell has.
fn vars(summary: &Summary) -> BTreeSet<String> {
    summary
        .cells
        .iter()
        .filter_map(|cell| cell.settings.get("vars").and_then(Value::as_object))
        .flat_map(|vars| vars.keys().cloned())
        .collect()
}

/// A value of an axis: a setting as `summary.json` holds it.
///
/// Ordered so that tables read naturally: numbers numerically, `false` before `true`,
/// text alphabetically; a missing value first.
#[derive(Debug, Clone)]
pub struct Level(pub Value);

impl Level {
    /// The value as a table and `--where` show it: `base`, `0.3`, `true`, `–` if missing.
    pub fn text(&self) -> String {
        match &self.0 {
            Value::Null => NOTHING.to_owned(),
            Value::String(text) => text.clone(),
            Value::Number(number) => match number.as_f64() {
                Some(x) if number.is_f64() => round6(x).to_string(),
                _ => number.to_string(),
            },
            other => other.to_string(),
        }
    }

    /// Whether `text` (from `--where`) names this value; numbers compare as numbers, so
    /// `0`, `0.0` and `0.00` are one temperature.
    pub fn matches(&self, text: &str) -> bool {
        if self.text() == text {
            return true;
        }
        match (&self.0, text.parse::<f64>()) {
            (Value::Number(number), Ok(wanted)) => number.as_f64() == Some(wanted),
            _ => false,
        }
    }

    fn rank(&self) -> u8 {
        match self.0 {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            Value::Array(_) => 4,
            Value::Object(_) => 5,
        }
    }
}

// Equality follows the order, so that `0` and `0.0` are one temperature in a table as
// they are in a `--where`.
impl PartialEq for Level {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Level {}

impl PartialOrd for Level {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Level {
    fn cmp(&self, other: &Self) -> Ordering {
        let by_value = match (&self.0, &other.0) {
            (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
            (Value::Number(x), Value::Number(y)) => {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.total_cmp(&y)
            }
            (Value::String(x), Value::String(y)) => x.cmp(y),
            _ => Ordering::Equal,
        };
        self.rank()
            .cmp(&other.rank())
            .then(by_value)
            .then_with(|| self.text().cmp(&other.text()))
    }
}

/// A metric a table can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Alignment,
    PositionBias,
    PreferFirst,
    PreferLonger,
    HumanPreferLonger,
    MeanConfidence,
    Ece,
    LogLoss,
    Calls,
    PromptTokens,
    CompletionTokens,
    Tokens,
    CacheHits,
    Cost,
    Failures,
    N,
    RationaleWritten,
    RationaleChars,
    RationaleCapped,
}

/// How a metric's values are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A share as a percentage to one decimal.
    Percent,
    /// Three decimals (calibration errors, log-loss).
    Decimal,
    /// An integer with thousands separated.
    Count,
    /// Money, four decimals.
    Money,
    /// A difference of shares in signed percentage points.
    Points,
}

impl Metric {
    /// The metric's name, as `--metric` and `summary.json` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Alignment => "alignment",
            Metric::PositionBias => "position_bias",
            Metric::PreferFirst => "prefer_first",
            Metric::PreferLonger => "prefer_longer",
            Metric::HumanPreferLonger => "human_prefer_longer",
            Metric::MeanConfidence => "mean_confidence",
            Metric::Ece => "ece",
            Metric::LogLoss => "log_loss",
            Metric::Calls => "calls",
            Metric::PromptTokens => "prompt_tokens",
            Metric::CompletionTokens => "completion_tokens",
            Metric::Tokens => "tokens",
            Metric::CacheHits => "cache_hits",
            Metric::Cost => "cost",
            Metric::Failures => "failures",
            Metric::N => "n",
            Metric::RationaleWritten => "rationale_written",
            Metric::RationaleChars => "rationale_chars",
            Metric::RationaleCapped => "rationale_capped",
        }
    }

    /// How the metric's values are printed.
    pub fn format(self) -> Format {
        match self {
            Metric::Alignment
            | Metric::PositionBias
            | Metric::PreferFirst
            | Metric::PreferLonger
            | Metric::HumanPreferLonger
            | Metric::MeanConfidence
            | Metric::RationaleWritten
            | Metric::RationaleCapped => Format::Percent,
            Metric::Ece | Metric::LogLoss => Format::Decimal,
            Metric::Calls
            | Metric::PromptTokens
            | Metric::CompletionTokens
            | Metric::Tokens
            | Metric::CacheHits
            | Metric::Failures
            | Metric::N
            | Metric::RationaleChars => Format::Count,
            Metric::Cost => Format::Money,
        }
    }

    /// The metric's heading: `alignment [95% CI]`, `position bias`.
    pub fn heading(self, confidence: f64) -> String {
        match self {
            Metric::Alignment => format!("alignment [{} CI]", level(confidence)),
            other => other.name().replace('_', " "),
        }
    }

    /// The cell's value; `None` where it could not be measured.
    pub fn value(self, cell: &CellMetrics) -> Option<f64> {
        let count = |n: u64| Some(n as f64);
        match self {
            Metric::Alignment => cell.alignment,
            Metric::PositionBias => cell.position_bias,
            Metric::PreferFirst => cell.prefer_first,
            Metric::PreferLonger => cell.prefer_longer,
            Metric::HumanPreferLonger => cell.human_prefer_longer,
            Metric::MeanConfidence => cell.mean_confidence,
            Metric::Ece => cell.ece,
            Metric::LogLoss => cell.log_loss,
            Metric::Calls => count(cell.calls),
            Metric::PromptTokens => count(cell.prompt_tokens),
            Metric::CompletionTokens => count(cell.completion_tokens),
            Metric::Tokens => count(cell.prompt_tokens + cell.completion_tokens),
            Metric::CacheHits => count(cell.cache_hits),
            Metric::Cost => cell.cost,
            Metric::Failures => count(cell.failures as u64),
            Metric::N => count(cell.n as u64),
            Metric::RationaleWritten => cell.rationale_written,
            Metric::RationaleChars => cell.rationale_chars,
            Metric::RationaleCapped => cell.rationale_capped,
        }
    }

    /// The cell's measurement of this metric, with the alignment's interval.
    pub fn measure(self, cell: &CellMetrics) -> Measure {
        let interval = match (self, cell.ci_low, cell.ci_high) {
            (Metric::Alignment, Some(low), Some(high)) => Some((low, high)),
            _ => None,
        };
        Measure {
            cell: Some(cell.name.clone()),
            value: self.value(cell),
            interval,
        }
    }
}

/// `--where AXIS=VALUE`: keep the cells whose AXIS is VALUE. Several filters on one
/// axis keep any of their values; filters on different axes must all hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub axis: String,
    pub value: String,
}

impl Filter {
    /// Reads `AXIS=VALUE`.
    pub fn parse(text: &str) -> Result<Filter, PivotError> {
        match text.split_once('=') {
            Some((axis, value)) if !axis.trim().is_empty() && !value.trim().is_empty() => {
                Ok(Filter {
                    axis: axis.trim().to_owned(),
                    value: value.trim().to_owned(),
                })
            }
            _ => Err(PivotError::FilterSyntax {
                text: text.to_owned(),
            }),
        }
    }
}

/// What a pivot shows: the axes on its rows and columns, the filters, the metric.
#[derive(Debug, Clone, PartialEq)]
pub struct PivotSpec {
    pub rows: Vec<String>,
    pub cols: Vec<String>,
    pub filters: Vec<Filter>,
    pub metric: Metric,
}

/// One measurement in a table: the cell it comes from, its value and interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    /// The cell's name, so that every number can be traced; `None` for a derived value.
    pub cell: Option<String>,
    pub value: Option<f64>,
    pub interval: Option<(f64, f64)>,
}

/// One slot of a table.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A row's label: an axis value or a row name.
    Label(Value),
    /// Ours; `None` where no cell fits the slot.
    Ours(Option<Measure>),
    /// The paper's; `None` where the paper has no value.
    Paper(Option<paper::Value>),
}

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Label,
    Ours(Format),
    Paper,
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub header: String,
    pub kind: ColumnKind,
}

/// One table: a title, columns, rows of entries (one per column) and notes under it.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub title: String,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Entry>>,
    pub notes: Vec<String>,
}

/// The tables one `rlaif report` prints, with the notes under all of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Tables {
    pub experiment: String,
    pub run_id: String,
    pub tables: Vec<Table>,
    pub notes: Vec<String>,
}

/// The cells left after the filters, and what the filters fixed.
struct Selection<'s> {
    cells: Vec<&'s CellMetrics>,
    /// Axes the user filtered on, in their order, each once.
    filtered: Vec<Axis>,
}

/// Keeps the cells that pass every filter.
fn select<'s>(summary: &'s Summary, filters: &[Filter]) -> Result<Selection<'s>, PivotError> {
    let vars = vars(summary);
    let mut by_axis: Vec<(Axis, Vec<&str>)> = Vec::new();
    for filter in filters {
        let axis = Axis::parse(&filter.axis, &vars)?;
        let levels: BTreeSet<Level> = summary.cells.iter().map(|c| axis.level(c)).collect();
        if !levels.iter().any(|level| level.matches(&filter.value)) {
            let texts: Vec<String> = levels.iter().map(Level::text).collect();
            let listing = format!("{} is one of: {}", axis.name(), texts.join(", "));
            let hint = match suggest(&filter.value, texts.iter().map(String::as_str)) {
                Some(near) => format!("did you mean `{near}`? {listing}"),
                None => listing,
            };
            return Err(PivotError::UnknownLevel {
                axis: axis.name().to_owned(),
                value: filter.value.clone(),
                hint,
            });
        }
        match by_axis.iter_mut().find(|(known, _)| *known == axis) {
            Some((_, values)) => values.push(&filter.value),
            None => by_axis.push((axis, vec![&filter.value])),
        }
    }
    let cells: Vec<&CellMetrics> = summary
        .cells
        .iter()
        .filter(|cell| {
            by_axis.iter().all(|(axis, values)| {
                let level = axis.level(cell);
                not_applicable(axis, &level) || values.iter().any(|value| level.matches(value))
            })
        })
        .collect();
    if cells.is_empty() && !summary.cells.is_empty() {
        let filters: Vec<String> = filters
            .iter()
            .map(|filter| format!("{}={}", filter.axis, filter.value))
            .collect();
        return Err(PivotError::NothingSelected {
            filters: filters.join(" and "),
        });
    }
    Ok(Selection {
        cells,
        filtered: by_axis.into_iter().map(|(axis, _)| axis).collect(),
    })
}

/// The distinct values of `axes` among `cells`, sorted.
fn keys(cells: &[&CellMetrics], axes: &[Axis]) -> Vec<Vec<Level>> {
    let keys: BTreeSet<Vec<Level>> = cells
        .iter()
        .map(|cell| axes.iter().map(|axis| axis.level(cell)).collect())
        .collect();
    keys.into_iter().collect()
}

/// Whether `axis` does not apply to a cell at `level`: a 0-shot cell has no exemplar
/// seed. Such a cell matches any `--where` on the axis and does not make it vary, so that
/// the 0-shot baseline stays beside the 1-shot cells of one seed.
fn not_applicable(axis: &Axis, level: &Level) -> bool {
    *axis == Axis::ExemplarSeed && level.0.is_null()
}

/// The axes whose value differs among `cells`.
fn varying(all: &[Axis], cells: &[&CellMetrics]) -> Vec<Axis> {
    all.iter()
        .filter(|axis| {
            let levels: BTreeSet<Level> = cells
                .iter()
                .map(|cell| axis.level(cell))
                .filter(|level| !not_applicable(axis, level))
                .collect();
            levels.len() > 1
        })
        .cloned()
        .collect()
}

/// `axis=value` pairs, joined: `cot=true, labeler=small`.
fn describe(axes: &[Axis], key: &[Level]) -> String {
    let pairs: Vec<String> = axes
        .iter()
        .zip(key)
        .map(|(axis, level)| format!("{}={}", axis.name(), level.text()))
        .collect();
    pairs.join(", ")
}

/// A column of ours named the way cell names read (`detailed/0-shot/cot/small`), from
/// the axes that vary between the columns only.
fn short_name(axes: &[Axis], key: &[Level]) -> String {
    let parts: Vec<String> = axes
        .iter()
        .zip(key)
        .map(|(axis, level)| match axis {
            Axis::FewShot => format!("{}-shot", level.text()),
            Axis::ExemplarSeed => format!("exemplar_seed={}", level.text()),
            Axis::Cot if level.0.as_bool() == Some(true) => "cot".to_owned(),
            Axis::Cot => "no cot".to_owned(),
            Axis::Samples => format!("{} samples", level.text()),
            Axis::Temperature => format!("T={}", level.text()),
            Axis::Var(name) => format!("{name}={}", level.text()),
            Axis::Preamble | Axis::Labeler => level.text(),
        })
        .collect();
    parts.join("/")
}

/// "run `id` of `experiment`".
fn run_line(summary: &Summary) -> String {
    format!("run `{}` of `{}`", summary.run_id, summary.experiment)
}

/// The axes with one value among `cells` that the table does not show, as a note.
fn constant_note(all: &[Axis], shown: &[Axis], cells: &[&CellMetrics]) -> Option<String> {
    let first = cells.first()?;
    let constant: Vec<String> = all
        .iter()
        .filter(|axis| !shown.contains(axis))
        // An axis no cell sets (the exemplar seed of most grids) is not worth a word.
        .filter(|axis| !axis.level(first).0.is_null())
        .filter(|axis| {
            cells
                .iter()
                .all(|cell| axis.level(cell) == axis.level(first))
        })
        .map(|axis| format!("{}={}", axis.name(), axis.level(first).text()))
        .collect();
    (!constant.is_empty()).then(|| format!("Every cell shown has {}.", constant.join(", ")))
}

/// Pivots a run's cells: `spec.rows` down, `spec.cols` across, `spec.metric` in each
/// slot, after `spec.filters`.
pub fn pivot(summary: &Summary, spec: &PivotSpec) -> Result<Tables, PivotError> {
    if spec.rows.is_empty() && spec.cols.is_empty() {
        return Err(PivotError::NoLayout);
    }
    let vars = vars(summary);
    let parse = |names: &[String]| -> Result<Vec<Axis>, PivotError> {
        names.iter().map(|name| Axis::parse(name, &vars)).collect()
    };
    let (rows, cols) = (parse(&spec.rows)?, parse(&spec.cols)?);
    let mut seen = BTreeSet::new();
    for axis in rows.iter().chain(&cols) {
        if !seen.insert(axis.clone()) {
            return Err(PivotError::Repeated {
                axis: axis.name().to_owned(),
            });
        }
    }
    let selection = select(summary, &spec.filters)?;
    let all = axes(summary);
    let unplaced: Vec<Axis> = varying(&all, &selection.cells)
        .into_iter()
        .filter(|axis| !seen.contains(axis))
        .collect();
    if !unplaced.is_empty() {
        return Err(unplaced_error(&unplaced, &selection.cells));
    }

    let row_keys = keys(&selection.cells, &rows);
    let col_keys = keys(&selection.cells, &cols);
    let format = spec.metric.format();
    let heading = spec.metric.heading(summary.method.confidence);
    let mut columns: Vec<Column> = rows
        .iter()
        .map(|axis| Column {
            header: axis.name().to_owned(),
            kind: ColumnKind::Label,
        })
        .collect();
    for key in &col_keys {
        let header = if cols.is_empty() {
            heading.clone()
        } else {
            describe(&cols, key)
        };
        columns.push(Column {
            header,
            kind: ColumnKind::Ours(format),
        });
    }

    let mut table_rows = Vec::with_capacity(row_keys.len());
    for row_key in &row_keys {
        let mut entries: Vec<Entry> = row_key.iter().map(|l| Entry::Label(l.0.clone())).collect();
        for col_key in &col_keys {
            // After the check above, the row and column values name at most one cell;
            // the ranked order makes the choice deterministic all the same.
            let cell = selection.cells.iter().find(|cell| {
                rows.iter().zip(row_key).all(|(a, l)| a.level(cell) == *l)
                    && cols.iter().zip(col_key).all(|(a, l)| a.level(cell) == *l)
            });
            entries.push(Entry::Ours(cell.map(|cell| spec.metric.measure(cell))));
        }
        table_rows.push(entries);
    }

    let mut title = heading;
    let names = |axes: &[Axis]| axes.iter().map(Axis::name).collect::<Vec<_>>().join(", ");
    if !rows.is_empty() {
        let _ = write!(title, "; rows: {}", names(&rows));
    }
    if !cols.is_empty() {
        let _ = write!(title, "; columns: {}", names(&cols));
    }
    let _ = write!(title, " ({})", run_line(summary));
    let mut notes = Vec::new();
    if !spec.filters.is_empty() {
        notes.push(filtered_note(&spec.filters));
    }
    // Filtered axes are named above already.
    let shown: Vec<Axis> = rows
        .iter()
        .chain(&cols)
        .chain(&selection.filtered)
        .cloned()
        .collect();
    notes.extend(constant_note(&all, &shown, &selection.cells));
    Ok(Tables {
        experiment: summary.experiment.clone(),
        run_id: summary.run_id.clone(),
        tables: vec![Table {
            title,
            columns,
            rows: table_rows,
            notes,
        }],
        notes: Vec::new(),
    })
}

/// "Filtered: labeler=small, cot=true."
fn filtered_note(filters: &[Filter]) -> String {
    let filters: Vec<String> = filters
        .iter()
        .map(|filter| format!("{}={}", filter.axis, filter.value))
        .collect();
    format!("Filtered: {}.", filters.join(", "))
}

fn unplaced_error(unplaced: &[Axis], cells: &[&CellMetrics]) -> PivotError {
    let names: Vec<String> = unplaced
        .iter()
        .map(|axis| format!("`{}`", axis.name()))
        .collect();
    let example: Vec<String> = unplaced
        .iter()
        .map(|axis| {
            let first = keys(cells, std::slice::from_ref(axis))
                .into_iter()
                .filter_map(|key| key.into_iter().next())
                .find(|level| !not_applicable(axis, level))
                .map_or_else(String::new, |level| level.text());
            format!("--where {}={first}", axis.name())
        })
        .collect();
    let plural = unplaced.len() > 1;
    PivotError::Unplaced {
        axes: join_and(&names),
        verb: if plural { "are" } else { "is" },
        them: if plural { "them" } else { "it" },
        example: example.join(" "),
    }
}

/// `a`, `a and b`, `a, b and c`.
fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// A layout of the paper's (`rlaif report --table`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// Alignment by preamble, shots and chain of thought, in the paper's row order.
    Prompting,
    /// Alignment by self-consistency samples and temperature, chain of thought.
    SelfConsistency,
    /// Alignment per labeler.
    Size,
    /// Position bias per labeler.
    PositionBias,
}

/// One row of a preset: a label, which cells belong to it, and the paper's values.
struct PresetRow {
    label: String,
    matches: Box<dyn Fn(&CellMetrics) -> bool>,
    paper: Vec<Option<paper::Value>>,
}

/// A preset's fixed settings: applied by default when the run has such cells and the
/// user filtered nothing on the axis.
struct Defaults {
    settings: Vec<(Axis, Value)>,
    /// Why these settings: "the paper's setting for this table".
    why: &'static str,
}

/// The paper's table `preset` with our cells of `summary` beside its values. `task` is
/// the run's task (`summarization`, ...), which picks the paper's column for
/// [`Preset::Prompting`].
pub fn preset(
    summary: &Summary,
    preset: Preset,
    filters: &[Filter],
    task: Option<&str>,
) -> Result<Tables, PivotError> {
    let selection = select(summary, filters)?;
    let mut cells = selection.cells;
    let mut notes = Vec::new();
    if !filters.is_empty() {
        notes.push(filtered_note(filters));
    }
    let (row_axes, defaults): (Vec<Axis>, Option<Defaults>) = match preset {
        Preset::Prompting => (vec![Axis::Preamble, Axis::FewShot, Axis::Cot], None),
        Preset::SelfConsistency => (
            vec![Axis::Samples, Axis::Temperature],
            Some(Defaults {
                settings: vec![
                    (Axis::Preamble, json!(paper::ABLATION_PROMPT.0)),
                    (Axis::FewShot, json!(paper::ABLATION_PROMPT.1)),
                ],
                why: "the paper's self-consistency setting (Detailed + CoT 0-shot)",
            }),
        ),
        Preset::Size => (
            vec![Axis::Labeler],
            Some(Defaults {
                settings: vec![
                    (Axis::Preamble, json!(paper::ABLATION_PROMPT.0)),
                    (Axis::FewShot, json!(paper::ABLATION_PROMPT.1)),
                    (Axis::Cot, json!(paper::ABLATION_PROMPT.2)),
                    (Axis::Samples, json!(1)),
                ],
                why: "the paper's size setting (Detailed + CoT 0-shot, one greedy sample)",
            }),
        ),
        Preset::PositionBias => (vec![Axis::Labeler], None),
    };

    // The layout's own restrictions: the prompting table is greedy, self-consistency
    // is about chain-of-thought samples.
    let inherent: Vec<(Axis, Value)> = match preset {
        Preset::Prompting => vec![(Axis::Samples, json!(1))],
        Preset::SelfConsistency => vec![(Axis::Cot, json!(true))],
        Preset::Size | Preset::PositionBias => Vec::new(),
    };
    let before = cells.len();
    cells.retain(|cell| {
        inherent
            .iter()
            .all(|(axis, value)| axis.level(cell) == Level(value.clone()))
    });
    let mut outside = before - cells.len();

    if let Some(defaults) = &defaults {
        let mut applied = Vec::new();
        let mut missing = Vec::new();
        for (axis, value) in &defaults.settings {
            let level = Level(value.clone());
            if selection.filtered.contains(axis) {
                continue;
            }
            let kept: Vec<&CellMetrics> = cells
                .iter()
                .copied()
                .filter(|cell| axis.level(cell) == level)
                .collect();
            if kept.is_empty() && !cells.is_empty() {
                missing.push(format!("{}={}", axis.name(), level.text()));
                continue;
            }
            if kept.len() == cells.len() {
                continue;
            }
            outside += cells.len() - kept.len();
            cells = kept;
            applied.push(format!("{}={}", axis.name(), level.text()));
        }
        if !applied.is_empty() {
            notes.push(format!(
                "Showing {}: {} (choose others with --where).",
                defaults.why,
                applied.join(", ")
            ));
        }
        if !missing.is_empty() {
            notes.push(format!(
                "No cell has {}, part of {}: the values shown are not in that setting.",
                join_and(&missing),
                defaults.why
            ));
        }
    }

    let all = axes(summary);
    let other: Vec<Axis> = varying(&all, &cells)
        .into_iter()
        .filter(|axis| !row_axes.contains(axis))
        .collect();
    let other_keys = keys(&cells, &other);

    let task = task.and_then(Task::from_name);
    let (title, label_header, rows, paper_headers) = match preset {
        Preset::Prompting => prompting_rows(&cells, task),
        Preset::SelfConsistency => self_consistency_rows(&cells),
        Preset::Size => labeler_rows(
            &cells,
            &summary.labelers,
            "Labeler size (the paper's: PaLM 2 L, S, XS)",
        ),
        Preset::PositionBias => labeler_rows(
            &cells,
            &summary.labelers,
            "Position bias by labeler (the paper's: PaLM 2 L, S, XS)",
        ),
    };
    let metric = match preset {
        Preset::PositionBias => Metric::PositionBias,
        _ => Metric::Alignment,
    };

    let mut columns = vec![Column {
        header: label_header.to_owned(),
        kind: ColumnKind::Label,
    }];
    for key in &other_keys {
        let header = if other.is_empty() {
            "ours".to_owned()
        } else {
            format!("ours: {}", short_name(&other, key))
        };
        columns.push(Column {
            header,
            kind: ColumnKind::Ours(metric.format()),
        });
    }
    for header in &paper_headers {
        columns.push(Column {
            header: header.clone(),
            kind: ColumnKind::Paper,
        });
    }
    let mut table_rows = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut entries = vec![Entry::Label(Value::String(row.label.clone()))];
        for key in &other_keys {
            let cell = cells.iter().find(|cell| {
                (row.matches)(cell) && other.iter().zip(key).all(|(a, l)| a.level(cell) == *l)
            });
            entries.push(Entry::Ours(cell.map(|cell| metric.measure(cell))));
        }
        entries.extend(row.paper.iter().map(|value| Entry::Paper(*value)));
        table_rows.push(entries);
    }

    let heading = metric.heading(summary.method.confidence);
    let mut tables = vec![Table {
        title: format!("{title}: {heading} ({})", run_line(summary)),
        columns,
        rows: table_rows,
        notes: Vec::new(),
    }];
    match preset {
        Preset::Size => tables.push(reference_table(
            "The paper's labeler sizes: alignment (summarization, Detailed + CoT 0-shot)",
            "alignment",
            &paper::SIZE,
        )),
        Preset::PositionBias => tables.push(reference_table(
            "The paper's labeler sizes: position bias (% of examples where the same position \
             is preferred in both orders)",
            "position bias",
            &paper::POSITION_BIAS,
        )),
        Preset::Prompting | Preset::SelfConsistency => {}
    }

    if outside > 0 {
        let cells_word = if outside == 1 { "cell" } else { "cells" };
        notes.push(format!(
            "{outside} {cells_word} of the run fall outside this layout."
        ));
    }
    if cells.is_empty() {
        notes.push("No cell of the run fits this layout: ours is empty.".to_owned());
    }
    match preset {
        Preset::Prompting if task.is_none() => notes.push(
            "The run's task is not one of the paper's (summarization, helpfulness, \
             harmlessness), so all three of its columns are shown."
                .to_owned(),
        ),
        Preset::SelfConsistency => {
            notes.push(format!(
                "Ours averages each cell's samples' distributions, as the paper does; {}.",
                paper::SELF_CONSISTENCY_NOTE
            ));
        }
        Preset::Size => notes.push(
            "Our labelers are not PaLM 2 sizes: compare the spread between labelers, not \
             rows."
                .to_owned(),
        ),
        _ => {}
    }
    if metric == Metric::Alignment {
        notes.extend(references_note(summary));
        if task == Some(Task::Summarization) {
            let (low, high) = paper::HUMAN_AGREEMENT_TLDR;
            notes.push(format!(
                "The paper's human inter-annotator agreement on TL;DR: {}–{}.",
                low.text().trim_end_matches('%'),
                high.text()
            ));
        }
    }
    notes.push(paper::CAUTION.to_owned());
    Ok(Tables {
        experiment: summary.experiment.clone(),
        run_id: summary.run_id.clone(),
        tables,
        notes,
    })
}

/// The run's reference rows (random, length heuristics, human agreement) in a line:
/// what any labeler must beat on the same examples.
fn references_note(summary: &Summary) -> Option<String> {
    let rows: Vec<String> = summary
        .references
        .iter()
        .filter_map(|row| {
            let measure = Measure {
                cell: None,
                value: row.alignment,
                interval: row.ci_low.zip(row.ci_high),
            };
            row.alignment.map(|_| {
                format!(
                    "{} {}",
                    row.name,
                    measure_text(Some(&measure), Format::Percent)
                )
            })
        })
        .collect();
    (!rows.is_empty()).then(|| format!("On the same examples: {}.", rows.join("; ")))
}

type Layout = (&'static str, &'static str, Vec<PresetRow>, Vec<String>);

/// The prompting rows: the paper's, then any combination of ours the paper lacks, in
/// the paper's order (preamble, then CoT, then shots).
fn prompting_rows(cells: &[&CellMetrics], task: Option<Task>) -> Layout {
    let tasks: Vec<Task> = match task {
        Some(task) => vec![task],
        None => Task::ALL.to_vec(),
    };
    type Prompt = (Level, bool, u32);
    let mut prompts: Vec<(Prompt, Option<&paper::PromptRow>)> = paper::PROMPTING
        .iter()
        .map(|row| {
            let key = (Level(json!(row.preamble)), row.cot, row.few_shot);
            (key, Some(row))
        })
        .collect();
    for cell in cells {
        let preamble = Axis::Preamble.level(cell);
        let cot = Axis::Cot.level(cell).0.as_bool().unwrap_or(false);
        let shots = Axis::FewShot.level(cell).0.as_u64().unwrap_or(0);
        let key = (preamble, cot, u32::try_from(shots).unwrap_or(u32::MAX));
        if !prompts.iter().any(|(known, _)| *known == key) {
            prompts.push((key, None));
        }
    }
    // The paper's own order is (preamble, CoT, shots), so sorting keeps it and slots
    // ours in where they belong.
    prompts.sort_by(|(x, _), (y, _)| x.cmp(y));
    let rows = prompts
        .into_iter()
        .map(|((preamble, cot, shots), row)| {
            let label = match row {
                Some(row) => row.label.to_owned(),
                None => {
                    let name = preamble.text();
                    let mut chars = name.chars();
                    let capital: String = chars
                        .next()
                        .map(|first| first.to_uppercase().chain(chars).collect())
                        .unwrap_or_default();
                    let cot = if cot { " + CoT" } else { "" };
                    format!("{capital}{cot} {shots}-shot")
                }
            };
            let paper = tasks
                .iter()
                .map(|task| row.and_then(|row| row.alignment(*task)))
                .collect();
            PresetRow {
                label,
                matches: Box::new(move |cell: &CellMetrics| {
                    Axis::Preamble.level(cell) == preamble
                        && Axis::Cot.level(cell).0.as_bool() == Some(cot)
                        && Axis::FewShot.level(cell).0.as_u64() == Some(u64::from(shots))
                }),
                paper,
            }
        })
        .collect();
    let headers = tasks
        .iter()
        .map(|task| format!("paper: {}", task.name()))
        .collect();
    (
        "Prompting (the paper's PaLM 2 L table)",
        "prompt",
        rows,
        headers,
    )
}

/// The self-consistency rows: the paper's settings and ours, by temperature then
/// samples.
fn self_consistency_rows(cells: &[&CellMetrics]) -> Layout {
    let mut settings: Vec<(u32, f64, Option<paper::Value>)> = paper::SELF_CONSISTENCY
        .iter()
        .map(|row| (row.samples, row.temperature, Some(row.alignment)))
        .collect();
    for cell in cells {
        let samples = Axis::Samples.level(cell).0.as_u64().unwrap_or(1);
        let samples = u32::try_from(samples).unwrap_or(u32::MAX);
        let temperature = Axis::Temperature.level(cell).0.as_f64().unwrap_or(0.0);
        if !settings
            .iter()
            .any(|&(s, t, _)| s == samples && same_temperature(t, temperature))
        {
            settings.push((samples, temperature, None));
        }
    }
    settings.sort_by(|x, y| x.1.total_cmp(&y.1).then(x.0.cmp(&y.0)));
    let rows = settings
        .into_iter()
        .map(|(samples, temperature, value)| PresetRow {
            label: format!(
                "{samples} {}, T={}",
                if samples == 1 { "sample" } else { "samples" },
                round6(temperature)
            ),
            matches: Box::new(move |cell: &CellMetrics| {
                Axis::Samples.level(cell).0.as_u64() == Some(u64::from(samples))
                    && Axis::Temperature
                        .level(cell)
                        .0
                        .as_f64()
                        .is_some_and(|t| same_temperature(t, temperature))
            }),
            paper: vec![value],
        })
        .collect();
    (
        "Self-consistency (the paper's, Detailed + CoT 0-shot, PaLM 2 L)",
        "self-consistency",
        rows,
        vec!["paper: summarization".to_owned()],
    )
}

fn same_temperature(x: f64, y: f64) -> bool {
    round6(x) == round6(y)
}

/// One row per labeler, largest first as the paper lists its sizes (labelers of unknown
/// size last, in declared order); the paper's values go to a table of their own.
fn labeler_rows(cells: &[&CellMetrics], declared: &[LabelerInfo], title: &'static str) -> Layout {
    let mut labelers: Vec<Level> = keys(cells, &[Axis::Labeler])
        .into_iter()
        .flatten()
        .collect();
    let place = |labeler: &Level| {
        let position = declared
            .iter()
            .position(|info| labeler.0.as_str() == Some(info.name.as_str()));
        let parameters = position.and_then(|index| declared[index].known_parameters());
        (
            parameters.is_none(),
            std::cmp::Reverse(parameters.map(f64::to_bits)),
            position.unwrap_or(usize::MAX),
        )
    };
    labelers.sort_by_key(place);
    let rows = labelers
        .into_iter()
        .map(|labeler| PresetRow {
            label: labeler.text(),
            matches: Box::new(move |cell: &CellMetrics| Axis::Labeler.level(cell) == labeler),
            paper: Vec::new(),
        })
        .collect();
    (title, "labeler", rows, Vec::new())
}

/// The paper's values per PaLM 2 size, as a table of its own: our labelers are not
/// those sizes, so the rows cannot be set side by side.
fn reference_table(title: &str, header: &str, rows: &[paper::SizeRow]) -> Table {
    Table {
        title: title.to_owned(),
        columns: vec![
            Column {
                header: "labeler (paper)".to_owned(),
                kind: ColumnKind::Label,
            },
            Column {
                header: header.to_owned(),
                kind: ColumnKind::Paper,
            },
        ],
        rows: rows
            .iter()
            .map(|row| {
                vec![
                    Entry::Label(Value::String(row.labeler.to_owned())),
                    Entry::Paper(Some(row.value)),
                ]
            })
            .collect(),
        notes: Vec::new(),
    }
}

/// A measurement as a table shows it: `87.5% [62.5, 100.0]`, `0.123`, `1,024`, `–`.
pub(crate) fn measure_text(measure: Option<&Measure>, format: Format) -> String {
    let Some(value) = measure.and_then(|measure| measure.value) else {
        return NOTHING.to_owned();
    };
    let mut text = number_text(value, format);
    if let Some((low, high)) = measure.and_then(|measure| measure.interval) {
        let (low, high) = match format {
            Format::Percent => (
                format!("{:.1}", low * 100.0),
                format!("{:.1}", high * 100.0),
            ),
            Format::Points => (signed(low * 100.0), signed(high * 100.0)),
            _ => (number_text(low, format), number_text(high, format)),
        };
        let _ = write!(text, " [{low}, {high}]");
    }
    text
}

fn number_text(value: f64, format: Format) -> String {
    match format {
        Format::Percent => format!("{:.1}%", value * 100.0),
        Format::Decimal => format!("{value:.3}"),
        // Counts are whole numbers that went through f64 only to share one type.
        Format::Count => thousands(value.round().max(0.0) as u64),
        Format::Money => format!("{value:.4}"),
        Format::Points => format!("{} pts", signed(value * 100.0)),
    }
}

/// `+1.5`, `−0.3` with a plain minus, `0.0`.
fn signed(points: f64) -> String {
    let rounded = (points * 10.0).round() / 10.0 + 0.0;
    if rounded > 0.0 {
        format!("+{rounded:.1}")
    } else {
        format!("{rounded:.1}")
    }
}

impl Entry {
    fn text(&self, kind: ColumnKind) -> String {
        match (self, kind) {
            (Entry::Label(value), _) => Level(value.clone()).text(),
            (Entry::Ours(measure), ColumnKind::Ours(format)) => {
                measure_text(measure.as_ref(), format)
            }
            (Entry::Ours(measure), _) => measure_text(measure.as_ref(), Format::Percent),
            (Entry::Paper(value), _) => {
                value.map_or_else(|| NOTHING.to_owned(), paper::Value::text)
            }
        }
    }
}

impl Tables {
    /// GitHub-flavoured Markdown: each table under its title with its notes, then the
    /// notes on all of them.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        for (position, table) in self.tables.iter().enumerate() {
            if position > 0 {
                out.push('\n');
            }
            let _ = writeln!(out, "{}\n", table.title);
            let row = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
            out.push_str(&row(table
                .columns
                .iter()
                .map(|column| escape(&column.header))
                .collect()));
            out.push_str(&row(table
                .columns
                .iter()
                .map(|column| match column.kind {
                    ColumnKind::Label => "---".to_owned(),
                    ColumnKind::Ours(_) | ColumnKind::Paper => "---:".to_owned(),
                })
                .collect()));
            for entries in &table.rows {
                out.push_str(&row(entries
                    .iter()
                    .zip(&table.columns)
                    .map(|(entry, column)| escape(&entry.text(column.kind)))
                    .collect()));
            }
            if !table.notes.is_empty() {
                out.push('\n');
                for note in &table.notes {
                    let _ = writeln!(out, "{note}");
                }
            }
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for note in &self.notes {
                let _ = writeln!(out, "{note}");
            }
        }
        out
    }

    /// CSV, one section per table (a header row, then its rows), sections separated
    /// by an empty line. Numbers are shares rounded to 6 decimals; an interval adds
    /// `<column> ci_low` and `<column> ci_high` columns; an empty slot is an empty field.
    pub fn csv(&self) -> String {
        let mut out = String::new();
        for (position, table) in self.tables.iter().enumerate() {
            if position > 0 {
                out.push('\n');
            }
            let intervals: Vec<bool> = (0..table.columns.len())
                .map(|index| {
                    table.rows.iter().any(
                        |row| matches!(&row[index], Entry::Ours(Some(m)) if m.interval.is_some()),
                    )
                })
                .collect();
            let mut header = Vec::new();
            for (column, interval) in table.columns.iter().zip(&intervals) {
                header.push(column.header.clone());
                if *interval {
                    header.push(format!("{} ci_low", column.header));
                    header.push(format!("{} ci_high", column.header));
                }
            }
            push_csv_row(&mut out, &header);
            for entries in &table.rows {
                let mut fields = Vec::new();
                for (entry, interval) in entries.iter().zip(&intervals) {
                    match entry {
                        Entry::Label(value) => fields.push(match value {
                            Value::Null => String::new(),
                            _ => Level(value.clone()).text(),
                        }),
                        Entry::Ours(measure) => {
                            let value = measure.as_ref().and_then(|m| m.value);
                            fields.push(csv_number(value));
                            if *interval {
                                let bounds = measure.as_ref().and_then(|m| m.interval);
                                fields.push(csv_number(bounds.map(|b| b.0)));
                                fields.push(csv_number(bounds.map(|b| b.1)));
                            }
                        }
                        Entry::Paper(value) => fields.push(csv_number(value.map(|v| v.share))),
                    }
                }
                push_csv_row(&mut out, &fields);
            }
        }
        out
    }

    /// JSON: `{"experiment", "run_id", "tables": [{"title", "columns", "rows",
    /// "notes"}], "notes"}`. A row is an object keyed by column header; ours is
    /// `{"cell", "value", "ci_low", "ci_high"}` or `null`, the paper's a share or `null`.
    pub fn json(&self) -> String {
        let tables: Vec<Value> = self
            .tables
            .iter()
            .map(|table| {
                let rows: Vec<Value> = table
                    .rows
                    .iter()
                    .map(|entries| {
                        let mut row = Map::new();
                        for (entry, column) in entries.iter().zip(&table.columns) {
                            row.insert(column.header.clone(), entry_json(entry));
                        }
                        Value::Object(row)
                    })
                    .collect();
                json!({
                    "title": table.title,
                    "columns": table.columns.iter().map(|c| &c.header).collect::<Vec<_>>(),
                    "rows": rows,
                    "notes": table.notes,
                })
            })
            .collect();
        let value = json!({
            "experiment": self.experiment,
            "run_id": self.run_id,
            "tables": tables,
            "notes": self.notes,
        });
        // A JSON value always prints.
        let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
        text.push('\n');
        text
    }
}

fn entry_json(entry: &Entry) -> Value {
    match entry {
        Entry::Label(value) => value.clone(),
        Entry::Ours(None) => Value::Null,
        Entry::Ours(Some(measure)) => json!({
            "cell": measure.cell,
            "value": measure.value.map(round6),
            "ci_low": measure.interval.map(|i| round6(i.0)),
            "ci_high": measure.interval.map(|i| round6(i.1)),
        }),
        Entry::Paper(value) => json!(value.map(|value| round6(value.share))),
    }
}

/// A number for CSV: rounded to 6 decimals, empty when missing.
pub(crate) fn csv_number(value: Option<f64>) -> String {
    value.map(|x| round6(x).to_string()).unwrap_or_default()
}

pub(crate) use super::csv::push_row as push_csv_row;
pub(crate) use super::markdown::escape;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Method;

    fn cell(name: &str, settings: Value, alignment: f64) -> CellMetrics {
        let mut metrics: CellMetrics = serde_json::from_value(json!({
            "name": name, "id": name, "settings": null, "n": 10,
            "alignment": alignment, "ci_low": alignment - 0.1, "ci_high": alignment + 0.1,
            "tied_with_best": false, "position_bias": 0.2, "prefer_first": 0.5,
            "prefer_longer": null, "ece": 0.1, "calls": 1200, "prompt_tokens": 10,
            "completion_tokens": 0, "cache_hits": 0, "failures": 0, "rank": 0,
            "mode": "simulated", "diff_low": null, "diff_high": null,
            "position_bias_examples": 10, "position_bias_direction": null,
            "prefer_longer_examples": 0, "human_prefer_longer": null,
            "mean_confidence": null, "log_loss": null, "cost": null,
            "failures_by_kind": {}, "pareto": false
        }))
        .expect("a complete cell");
        metrics.rank = 1;
        metrics.settings = settings;
        metrics
    }

    fn settings(preamble: &str, few_shot: u32, cot: bool, labeler: &str) -> Value {
        json!({
            "preamble": preamble, "few_shot": few_shot, "cot": cot,
            "self_consistency": {"samples": 1, "temperature": 0.0}, "labeler": labeler
        })
    }

    fn summary() -> Summary {
        let mut cells = Vec::new();
        for (i, (preamble, shots, cot)) in [
            ("base", 0, false),
            ("base", 0, true),
            ("detailed", 1, false),
            ("detailed", 0, true),
        ]
        .into_iter()
        .enumerate()
        {
            for labeler in ["big", "small"] {
                let name = format!("{preamble}/{shots}/{cot}/{labeler}");
                let alignment = 0.6 + 0.05 * i as f64 + if labeler == "big" { 0.1 } else { 0.0 };
                cells.push(cell(
                    &name,
                    settings(preamble, shots, cot, labeler),
                    alignment,
                ));
            }
        }
        Summary {
            experiment: "demo".to_owned(),
            run_id: "r1".to_owned(),
            method: Method {
                bootstrap_resamples: 100,
                seed: 0,
                confidence: 0.95,
                paired_test: String::new(),
            },
            cells,
            references: Vec::new(),
            labelers: Vec::new(),
        }
    }

    fn spec(rows: &[&str], cols: &[&str], filters: &[&str]) -> PivotSpec {
        PivotSpec {
            rows: rows.iter().map(|s| (*s).to_owned()).collect(),
            cols: cols.iter().map(|s| (*s).to_owned()).collect(),
            filters: filters.iter().map(|f| Filter::parse(f).unwrap()).collect(),
            metric: Metric::Alignment,
        }
    }

    #[test]
    fn levels_sort_naturally_and_match_numbers_as_numbers() {
        let mut levels = [
            Level(json!(10)),
            Level(json!(2)),
            Level(json!(true)),
            Level(json!(false)),
            Level(Value::Null),
        ];
        levels.sort();
        let texts: Vec<String> = levels.iter().map(Level::text).collect();
        assert_eq!(texts, ["–", "false", "true", "2", "10"]);
        assert!(Level(json!(0.0)).matches("0"));
        assert!(Level(json!(0.3)).matches("0.30"));
        assert!(!Level(json!("base")).matches("Base"));
    }

    #[test]
    fn a_pivot_places_each_cell_once() {
        let tables = pivot(
            &summary(),
            &spec(&["preamble", "few_shot"], &["cot", "labeler"], &[]),
        )
        .unwrap();
        let table = &tables.tables[0];
        assert_eq!(table.rows.len(), 3, "base/0, detailed/0, detailed/1");
        assert_eq!(table.columns.len(), 2 + 4);
        let placed = table
            .rows
            .iter()
            .flatten()
            .filter(|entry| matches!(entry, Entry::Ours(Some(_))))
            .count();
        assert_eq!(placed, 8);
        assert!(
            table.rows[0][2]
                .text(table.columns[2].kind)
                .starts_with("70.0% [60.0, 80.0]")
        );
    }

    #[test]
    fn every_varying_axis_must_be_placed_or_fixed() {
        let error = pivot(&summary(), &spec(&["preamble"], &["cot"], &[])).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("`few_shot` and `labeler`"), "{message}");
        assert!(
            message.contains("--where few_shot=0 --where labeler=big"),
            "{message}"
        );
        let fixed = spec(&["preamble"], &["cot"], &["labeler=small", "few_shot=0"]);
        assert!(pivot(&summary(), &fixed).is_ok());
    }

    #[test]
    fn a_zero_shot_cell_has_no_exemplar_seed_and_stays_beside_one_seed() {
        // The exemplar-resampling layout: a 0-shot baseline, 1-shot cells of three seeds.
        let mut run = summary();
        run.cells.clear();
        run.cells
            .push(cell("base/0-shot", settings("base", 0, false, "big"), 0.6));
        for seed in [1, 2, 3] {
            let mut one_shot = settings("base", 1, false, "big");
            one_shot["exemplar_seed"] = json!(seed);
            run.cells.push(cell(
                &format!("base/1-shot/seed{seed}"),
                one_shot,
                0.6 + 0.01 * f64::from(seed),
            ));
        }
        let error = pivot(&run, &spec(&["few_shot"], &[], &[])).unwrap_err();
        assert!(
            error.to_string().contains("--where exemplar_seed=1"),
            "a seed is suggested, not the 0-shot cells' none: {error}"
        );
        let tables = pivot(&run, &spec(&["few_shot"], &[], &["exemplar_seed=2"])).unwrap();
        let table = &tables.tables[0];
        assert_eq!(
            table.rows.len(),
            2,
            "the 0-shot baseline and seed 2's 1-shot cell"
        );
        assert!(
            table.rows[1][1]
                .text(table.columns[1].kind)
                .starts_with("62.0%")
        );
    }

    #[test]
    fn filters_name_unknown_axes_and_values() {
        let error = pivot(&summary(), &spec(&["preambel"], &[], &[])).unwrap_err();
        assert!(
            error.to_string().contains("did you mean `preamble`?"),
            "{error}"
        );
        let error = pivot(&summary(), &spec(&["preamble"], &[], &["labeler=smal"])).unwrap_err();
        assert!(
            error.to_string().contains("did you mean `small`?"),
            "{error}"
        );
        assert!(Filter::parse("labeler").is_err());
        let error = pivot(&summary(), &spec(&["cot"], &["cot"], &[])).unwrap_err();
        assert!(matches!(error, PivotError::Repeated { .. }));
    }

    #[test]
    fn presets_keep_the_papers_rows_and_values() {
        let tables = preset(&summary(), Preset::Prompting, &[], Some("helpfulness")).unwrap();
        let table = &tables.tables[0];
        let labels: Vec<String> = table
            .rows
            .iter()
            .map(|row| row[0].text(ColumnKind::Label))
            .collect();
        assert_eq!(labels.len(), 11, "every row is the paper's: {labels:?}");
        assert_eq!(labels[3], "Base + CoT 0-shot");
        let headers: Vec<&str> = table.columns.iter().map(|c| c.header.as_str()).collect();
        assert_eq!(
            headers,
            ["prompt", "ours: big", "ours: small", "paper: helpfulness"]
        );
        // Base + CoT 0-shot: helpfulness 69.1 in the paper.
        assert_eq!(table.rows[3][3].text(ColumnKind::Paper), "69.1%");
        assert_eq!(table.rows[1][1].text(table.columns[1].kind), "–");

        let sizes = preset(&summary(), Preset::Size, &[], None).unwrap();
        assert_eq!(sizes.tables.len(), 2, "ours and the paper's sizes");
        assert!(
            sizes
                .notes
                .iter()
                .any(|note| note.contains("Detailed + CoT 0-shot"))
        );
    }

    #[test]
    fn labelers_are_listed_largest_first_and_a_missing_paper_setting_is_said() {
        let mut run = summary();
        // Direct prompts only: no cell has the paper's CoT setting for sizes.
        run.cells
            .retain(|cell| cell.settings["cot"] == json!(false));
        let info = |name: &str, parameters: Option<f64>| LabelerInfo {
            name: name.to_owned(),
            backend: "embedded".to_owned(),
            model: None,
            mode: "logprobs".to_owned(),
            parameters,
        };
        run.labelers.push(info("small", Some(1.35e8)));
        run.labelers.push(info("big", Some(1.5e9)));
        run.labelers.push(info("unsized", None));
        let mut unsized_cell = run.cells[0].clone();
        unsized_cell.name = "detailed/1/false/unsized".to_owned();
        unsized_cell.settings = settings("detailed", 1, false, "unsized");
        run.cells.push(unsized_cell);
        for preset_kind in [Preset::Size, Preset::PositionBias] {
            let tables = preset(&run, preset_kind, &[], None).unwrap();
            let labels: Vec<String> = tables.tables[0]
                .rows
                .iter()
                .map(|row| row[0].text(ColumnKind::Label))
                .collect();
            assert_eq!(labels, ["big", "small", "unsized"]);
        }
        let sizes = preset(&run, Preset::Size, &[], None).unwrap();
        assert!(
            sizes.notes.iter().any(|note| note
                .starts_with("No cell has few_shot=0 and cot=true, part of the paper's size")),
            "{:?}",
            sizes.notes
        );
    }
}

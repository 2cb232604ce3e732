//! `cells.csv`: one row per cell, ranked, for spreadsheets and pivoting.
//!
//! The cell's settings are flattened into columns (`preamble`, `few_shot`,
//! `self_consistency.samples`, `vars.tone`, ...) in the order they first appear, so an
//! ablation table is one pivot away. Limits: RFC 4180 quoting, `\n` line ends; floats
//! rounded to 6 decimals; a metric that could not be measured is an empty field;
//! failures by kind are one field, `kind=count` pairs joined by `;`.

use serde_json::Value;

use super::{Summary, round6};
use crate::metrics::CellMetrics;

/// The metric columns, after `rank`, `name`, `id` and the settings columns.
const METRICS: [&str; 28] = [
    "mode",
    "n",
    "alignment",
    "ci_low",
    "ci_high",
    "tied_with_best",
    "diff_low",
    "diff_high",
    "position_bias",
    "position_bias_direction",
    "position_bias_examples",
    "prefer_first",
    "prefer_longer",
    "human_prefer_longer",
    "prefer_longer_examples",
    "mean_confidence",
    "ece",
    "log_loss",
    "calls",
    "prompt_tokens",
    "completion_tokens",
    "cache_hits",
    "cost",
    "failures",
    "failures_by_kind",
    "rationale_written",
    "rationale_chars",
    "rationale_capped",
];

/// The cells as CSV: a header row, then one row per cell in rank order.
pub fn cells_csv(summary: &Summary) -> String {
    let mut settings_columns: Vec<String> = Vec::new();
    let flattened: Vec<Vec<(String, String)>> = summary
        .cells
        .iter()
        .map(|cell| {
            let mut pairs = Vec::new();
            flatten("", &cell.settings, &mut pairs);
            for (key, _) in &pairs {
                if !settings_columns.contains(key) {
                    settings_columns.push(key.clone());
                }
            }
            pairs
        })
        .collect();

    let mut header: Vec<String> = vec!["rank".into(), "name".into(), "id".into()];
    header.extend(settings_columns.iter().cloned());
    header.extend(METRICS.iter().map(|column| (*column).to_owned()));
    let mut out = String::new();
    push_row(&mut out, &header);
    for (cell, settings) in summary.cells.iter().zip(&flattened) {
        let mut row = vec![cell.rank.to_string(), cell.name.clone(), cell.id.clone()];
        row.extend(settings_columns.iter().map(|column| {
            settings
                .iter()
                .find(|(key, _)| key == column)
                .map(|(_, value)| value.clone())
                .unwrap_or_default()
        }));
        row.extend(metric_values(cell));
        push_row(&mut out, &row);
    }
    out
}

/// The values of [`METRICS`] for `cell`, in the same order.
fn metric_values(cell: &CellMetrics) -> [String; METRICS.len()] {
    let by_kind: Vec<String> = cell
        .failures_by_kind
        .iter()
        .map(|(kind, count)| format!("{kind}={count}"))
        .collect();
    [
        cell.mode.clone(),
        cell.n.to_string(),
        float(cell.alignment),
        float(cell.ci_low),
        float(cell.ci_high),
        cell.tied_with_best.to_string(),
        float(cell.diff_low),
        float(cell.diff_high),
        float(cell.position_bias),
        float(cell.position_bias_direction),
        cell.position_bias_examples.to_string(),
        float(cell.prefer_first),
        float(cell.prefer_longer),
        float(cell.human_prefer_longer),
        cell.prefer_longer_examples.to_string(),
        float(cell.mean_confidence),
        float(cell.ece),
        float(cell.log_loss),
        cell.calls.to_string(),
        cell.prompt_tokens.to_string(),
        cell.completion_tokens.to_string(),
        cell.cache_hits.to_string(),
        float(cell.cost),
        cell.failures.to_string(),
        by_kind.join(";"),
        float(cell.rationale_written),
        float(cell.rationale_chars),
        float(cell.rationale_capped),
    ]
}

/// A float rounded to 6 decimals, or an empty field.
fn float(value: Option<f64>) -> String {
    value.map(|x| round6(x).to_string()).unwrap_or_default()
}

/// Settings as `(dotted.key, value)` pairs, in the order the settings hold them.
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, inner, out);
            }
        }
        Value::Null => out.push((prefix.to_owned(), String::new())),
        Value::String(text) => out.push((prefix.to_owned(), text.clone())),
        Value::Number(number) => {
            let text = match number.as_f64() {
                Some(x) if number.is_f64() => round6(x).to_string(),
                _ => number.to_string(),
            };
            out.push((prefix.to_owned(), text));
        }
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

/// Appends one CSV row, quoting fields as RFC 4180 asks.
pub(crate) fn push_row(out: &mut String, fields: &[String]) {
    let quoted: Vec<String> = fields.iter().map(|field| quote(field)).collect();
    out.push_str(&quoted.join(","));
    out.push('\n');
}

/// A field quoted when it holds a comma, a quote or a line break (RFC 4180).
fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn settings_flatten_to_dotted_columns() {
        let mut pairs = Vec::new();
        let settings = serde_json::json!({
            "preamble": "base",
            "self_consistency": { "samples": 4, "temperature": 0.3 },
            "cot": true,
            "vars": { "tone": "strict" },
        });
        flatten("", &settings, &mut pairs);
        let keys: Vec<&str> = pairs.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "preamble",
                "self_consistency.samples",
                "self_consistency.temperature",
                "cot",
                "vars.tone"
            ]
        );
        assert_eq!(pairs[2].1, "0.3");
        assert_eq!(pairs[3].1, "true");
    }
}

//! The native pairs format (DESIGN §9): JSONL, one pair a line, the format of every
//! `normalized.jsonl` under `shared/data/`.
//!
//! `{"id", "context", "response_a", "response_b", "label": "a"|"b"|"tie"}` are required;
//! `dataset`, `meta` (an object) and `rationale` are optional. Any other key is an error,
//! since a misspelt `rationale` would otherwise vanish without a word. Records are read
//! field by field from a JSON value rather than through derived serde, so each message
//! can say which field is wrong and what would fix it.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::jsonl::{Line, kind};
use super::{DataError, Example, Label, Parsed, Record};

const FIELDS: [&str; 8] = [
    "id",
    "context",
    "response_a",
    "response_b",
    "label",
    "dataset",
    "meta",
    "rationale",
];

/// Every non-blank line of a pairs file as an [`Example`]; the first bad line is an error.
pub(super) fn parse(path: &Path, lines: &[Line<'_>]) -> Result<Parsed, DataError> {
    let records = lines
        .iter()
        .map(|line| {
            let example =
                example(line.parse(path)?).map_err(|message| line.error(path, message))?;
            Ok(Record {
                line: line.number,
                example,
            })
        })
        .collect::<Result<Vec<_>, DataError>>()?;
    Ok(Parsed {
        read: lines.len(),
        records,
        dropped: BTreeMap::new(),
    })
}

/// One record, or the message saying what is wrong with it.
fn example(value: Value) -> Result<Example, String> {
    let Value::Object(mut map) = value else {
        return Err(format!("expected a json object, found {}", kind(&value)));
    };
    check_fields(&map)?;
    let id = required(&mut map, "id")?;
    if id.trim().is_empty() {
        return Err("`id` is empty".to_string());
    }
    let context = required(&mut map, "context")?;
    let response_a = required(&mut map, "response_a")?;
    let response_b = required(&mut map, "response_b")?;
    let label = match required(&mut map, "label")?.as_str() {
        "a" => Label::A,
        "b" => Label::B,
        "tie" => Label::Tie,
        other => {
            return Err(format!(
                "unknown label `{other}` (expected one of a, b, tie)"
            ));
        }
    };
    let dataset = optional(&mut map, "dataset")?;
    let rationale = optional(&mut map, "rationale")?;
    let meta = match map.remove("meta") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(meta)) => meta,
        Some(other) => return Err(format!("`meta` must be an object, found {}", kind(&other))),
    };
    Ok(Example {
        id,
        context,
        response_a,
        response_b,
        label,
        dataset,
        meta,
        rationale,
    })
}

/// Rejects keys outside the format, all of them in one message.
fn check_fields(map: &Map<String, Value>) -> Result<(), String> {
    let unknown: Vec<&str> = map
        .keys()
        .map(String::as_str)
        .filter(|key| !FIELDS.contains(key))
        .collect();
    let Some(first) = unknown.first() else {
        return Ok(());
    };
    let names = unknown
        .iter()
        .map(|key| format!("`{key}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let plural = if unknown.len() == 1 { "" } else { "s" };
    // Only a lone unknown key gets a guess: with several, a guess is more noise than help.
    let guess = FIELDS
        .iter()
        .filter(|_| unknown.len() == 1)
        .map(|field| (strsim::jaro_winkler(first, field), field))
        .filter(|(score, _)| *score > 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, field)| format!("did you mean `{field}`? "))
        .unwrap_or_default();
    Err(format!(
        "unknown field{plural} {names} ({guess}put extra fields under `meta`)"
    ))
}

fn required(map: &mut Map<String, Value>, field: &str) -> Result<String, String> {
    match map.remove(field) {
        None => Err(format!("missing field `{field}`")),
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(format!(
            "`{field}` must be a string, found {}",
            kind(&other)
        )),
    }
}

fn optional(map: &mut Map<String, Value>, field: &str) -> Result<Option<String>, String> {
    match map.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(format!(
            "`{field}` must be a string, found {}",
            kind(&other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(value: Value) -> Result<Example, String> {
        example(value)
    }

    fn valid() -> Value {
        json!({"id": "x1", "context": "c", "response_a": "one", "response_b": "two", "label": "b"})
    }

    #[test]
    fn a_minimal_record_reads_with_defaults() {
        let example = record(valid()).unwrap();
        assert_eq!(example.id, "x1");
        assert_eq!(example.label, Label::B);
        assert_eq!(example.dataset, None);
        assert!(example.meta.is_empty());
        assert_eq!(example.rationale, None);
    }

    #[test]
    fn optional_fields_are_kept() {
        let mut value = valid();
        value["dataset"] = json!("d");
        value["meta"] = json!({"confidence": 9});
        value["rationale"] = json!("because");
        value["label"] = json!("tie");
        let example = record(value).unwrap();
        assert_eq!(example.dataset.as_deref(), Some("d"));
        assert_eq!(example.meta["confidence"], json!(9));
        assert_eq!(example.rationale.as_deref(), Some("because"));
        assert_eq!(example.label, Label::Tie);
    }

    #[test]
    fn an_empty_context_is_allowed() {
        let mut value = valid();
        value["context"] = json!("");
        assert_eq!(record(value).unwrap().context, "");
    }

    #[test]
    fn unknown_fields_are_named_with_a_hint() {
        let mut value = valid();
        value["source"] = json!("x");
        assert_eq!(
            record(value).unwrap_err(),
            "unknown field `source` (put extra fields under `meta`)"
        );
        let mut value = valid();
        value["rationle"] = json!("x");
        assert_eq!(
            record(value).unwrap_err(),
            "unknown field `rationle` (did you mean `rationale`? put extra fields under `meta`)"
        );
        let mut value = valid();
        value["x"] = json!(1);
        value["y"] = json!(2);
        assert_eq!(
            record(value).unwrap_err(),
            "unknown fields `x`, `y` (put extra fields under `meta`)"
        );
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            ("label", Value::Null, "missing field `label`"),
            (
                "label",
                json!("c"),
                "unknown label `c` (expected one of a, b, tie)",
            ),
            (
                "label",
                json!(1),
                "`label` must be a string, found a number",
            ),
            (
                "context",
                json!(["c"]),
                "`context` must be a string, found an array",
            ),
            ("id", json!(""), "`id` is empty"),
            (
                "meta",
                json!("m"),
                "`meta` must be an object, found a string",
            ),
            (
                "rationale",
                json!(true),
                "`rationale` must be a string, found a boolean",
            ),
        ];
        for (field, bad, message) in cases {
            let mut value = valid();
            if bad.is_null() {
                value.as_object_mut().unwrap().remove(field);
            } else {
                value[field] = bad;
            }
            assert_eq!(record(value).unwrap_err(), message, "field {field}");
        }
        assert_eq!(
            record(json!([1])).unwrap_err(),
            "expected a json object, found an array"
        );
    }
}

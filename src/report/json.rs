//! `summary.json`: the DESIGN §9 contract, for scripts.
//!
//! Limits: floats are rounded to 6 decimals (settings included) so the bytes are stable;
//! a metric that could not be measured is `null`.

use serde_json::Value;

use super::{Summary, round6};

/// The summary as pretty-printed JSON with a trailing newline, floats rounded to 6
/// decimals.
pub fn summary_json(summary: &Summary) -> String {
    // A summary has string keys, numbers and strings only, so it always converts.
    let mut value = serde_json::to_value(summary).expect("a summary converts to JSON");
    round_floats(&mut value);
    let mut text = serde_json::to_string_pretty(&value).expect("a JSON value prints");
    text.push('\n');
    text
}

/// Rounds every float in `value` to 6 decimals; integers stay integers.
pub(crate) fn round_floats(value: &mut Value) {
    match value {
        Value::Number(number) if number.is_f64() => {
            if let Some(x) = number.as_f64() {
                *value = Value::from(round6(x));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(round_floats),
        Value::Object(map) => map.values_mut().for_each(round_floats),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_rounded_and_integers_kept() {
        let mut value = serde_json::json!({
            "a": 0.123_456_789,
            "b": [2.0 / 3.0, -1e-9],
            "n": 300,
            "s": "0.123456789",
        });
        round_floats(&mut value);
        assert_eq!(
            value.to_string(),
            r#"{"a":0.123457,"b":[0.666667,0.0],"n":300,"s":"0.123456789"}"#
        );
    }
}

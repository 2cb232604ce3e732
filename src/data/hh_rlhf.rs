//! Anthropic HH-RLHF (Bai et al. 2022): `{"chosen", "rejected"}` dialogue transcripts,
//! JSONL, gzipped as published (the caller undoes the gzip).
//!
//! Each transcript is split at its last `"\n\nAssistant:"`: the shared prefix is the
//! context, the two final replies are the candidates. Records whose prefixes differ (the
//! two dialogues diverged earlier, so there is no single context) or whose replies are the
//! same are dropped and counted. The mapping reproduces `shared/data/hh-rlhf-*/
//! normalized.jsonl` exactly, including which side the chosen reply lands on.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Map;

use super::jsonl::Line;
use super::{DataError, Example, Label, Parsed, Record};
use crate::fingerprint;

/// The marker of an assistant turn; the last one starts the reply being compared.
const ASSISTANT_TURN: &str = "\n\nAssistant:";

/// Why a record was dropped, as counted in [`super::Dataset::dropped`].
pub(super) const PREFIXES_DIFFER: &str = "prefixes differ";
pub(super) const SAME_REPLY: &str = "chosen reply equals rejected reply";

#[derive(Deserialize)]
struct Transcripts {
    chosen: String,
    rejected: String,
}

/// Every usable line of an HH-RLHF file as an [`Example`] with id
/// `{id_prefix}-{line:05}` (0-based line) and dataset `id_prefix`.
///
/// The chosen reply is `response_a` iff the SHA-256 of the id is even: the placement is
/// fixed by content, so it neither depends on a seed nor always favours one slot.
pub(super) fn parse(path: &Path, lines: &[Line<'_>], id_prefix: &str) -> Result<Parsed, DataError> {
    let mut records = Vec::with_capacity(lines.len());
    let mut dropped: BTreeMap<String, usize> = BTreeMap::new();
    for line in lines {
        let transcripts: Transcripts = line.parse(path)?;
        let (chosen_prefix, chosen) = last_turn(&transcripts.chosen, "chosen")
            .map_err(|message| line.error(path, message))?;
        let (rejected_prefix, rejected) = last_turn(&transcripts.rejected, "rejected")
            .map_err(|message| line.error(path, message))?;
        let reason = if chosen_prefix != rejected_prefix {
            Some(PREFIXES_DIFFER)
        } else if chosen == rejected {
            Some(SAME_REPLY)
        } else {
            None
        };
        if let Some(reason) = reason {
            *dropped.entry(reason.to_string()).or_insert(0) += 1;
            continue;
        }

        let index = line.index();
        let id = format!("{id_prefix}-{index:05}");
        let (response_a, response_b, label) = if fingerprint::sha256_is_even(&id) {
            (chosen, rejected, Label::A)
        } else {
            (rejected, chosen, Label::B)
        };
        let mut meta = Map::new();
        meta.insert("source_line".into(), index.into());
        records.push(Record {
            line: line.number,
            example: Example {
                id,
                context: chosen_prefix.trim().to_string(),
                response_a: response_a.to_string(),
                response_b: response_b.to_string(),
                label,
                dataset: Some(id_prefix.to_string()),
                meta,
                rationale: None,
            },
        });
    }
    Ok(Parsed {
        read: lines.len(),
        records,
        dropped,
    })
}

/// The transcript before its last assistant turn (unstripped: prefixes are compared as
/// written) and the reply of that turn (stripped).
fn last_turn<'a>(transcript: &'a str, field: &str) -> Result<(&'a str, &'a str), String> {
    transcript
        .rsplit_once(ASSISTANT_TURN)
        .map(|(prefix, reply)| (prefix, reply.trim()))
        .ok_or_else(|| {
            format!("`{field}` has no \"\\n\\nAssistant:\" turn (hh-rlhf dialogues end with an assistant reply)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_text(text: &str) -> Result<Parsed, DataError> {
        let lines = super::super::jsonl::lines(Path::new("hh.jsonl"), text.as_bytes())?;
        parse(Path::new("hh.jsonl"), &lines, "t")
    }

    fn line(chosen: &str, rejected: &str) -> String {
        json!({"chosen": chosen, "rejected": rejected}).to_string()
    }

    #[test]
    fn the_last_assistant_turn_is_the_reply() {
        let text = line(
            "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: more\n\nAssistant:  good \n",
            "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: more\n\nAssistant: bad",
        );
        let parsed = parse_text(&text).unwrap();
        let example = &parsed.records[0].example;
        assert_eq!(example.id, "t-00000");
        assert_eq!(
            example.context,
            "Human: hi\n\nAssistant: hello\n\nHuman: more"
        );
        assert_eq!(example.dataset.as_deref(), Some("t"));
        assert_eq!(example.meta["source_line"], json!(0));
        // The chosen reply sits where the id's hash parity puts it.
        let (chosen_side, other) = if fingerprint::sha256_is_even("t-00000") {
            (&example.response_a, &example.response_b)
        } else {
            (&example.response_b, &example.response_a)
        };
        assert_eq!((chosen_side.as_str(), other.as_str()), ("good", "bad"));
    }

    #[test]
    fn unusable_records_are_dropped_and_counted() {
        let text = [
            line(
                "\n\nHuman: a\n\nAssistant: x",
                "\n\nHuman: b\n\nAssistant: y",
            ),
            line(
                "\n\nHuman: a\n\nAssistant: x ",
                "\n\nHuman: a\n\nAssistant: x",
            ),
            line(
                "\n\nHuman: a\n\nAssistant: x",
                "\n\nHuman: a\n\nAssistant: y",
            ),
        ]
        .join("\n");
        let parsed = parse_text(&text).unwrap();
        assert_eq!(parsed.read, 3);
        assert_eq!(parsed.records.len(), 1);
        assert_eq!(parsed.records[0].example.id, "t-00002");
        assert_eq!(parsed.dropped[PREFIXES_DIFFER], 1);
        assert_eq!(parsed.dropped[SAME_REPLY], 1);
    }

    #[test]
    fn a_transcript_without_an_assistant_turn_is_an_error() {
        let text = format!("\n{}", line("\n\nHuman: a", "\n\nHuman: a\n\nAssistant: y"));
        let err = parse_text(&text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "hh.jsonl:2: `chosen` has no \"\\n\\nAssistant:\" turn \
             (hh-rlhf dialogues end with an assistant reply)"
        );
    }

    #[test]
    fn a_missing_field_is_an_error() {
        let err = parse_text(r#"{"chosen": "x"}"#).unwrap_err();
        assert_eq!(err.to_string(), "hh.jsonl:1: missing field `rejected`");
    }
}

//! OpenAI's summarize-from-feedback comparisons (Stiennon et al. 2020): the Reddit TL;DR
//! batches and the CNN/DailyMail transfer set, JSONL as OpenAI published them.
//!
//! The mapping is the one `shared/data/openai-*-comparisons/SOURCE.md` documents for
//! `normalized.jsonl`, so loading a source file gives the same pairs as loading its
//! normalized copy. A record is TL;DR when its `info` has a `post`, CNN/DM when it has an
//! `article`. Keys this loader does not use (`summaries[].note`, new upstream fields) are
//! ignored: they cannot change a pair.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::jsonl::Line;
use super::{DataError, Example, Label, Parsed, Record};

#[derive(Deserialize)]
struct Comparison {
    info: Info,
    split: Option<String>,
    summaries: Vec<Summary>,
    choice: u64,
    worker: Option<String>,
    batch: String,
    extra: Option<Extra>,
}

#[derive(Deserialize)]
struct Info {
    id: String,
    title: String,
    post: Option<String>,
    subreddit: Option<String>,
    article: Option<String>,
    site: Option<String>,
}

#[derive(Deserialize)]
struct Summary {
    text: String,
    policy: String,
}

#[derive(Deserialize)]
struct Extra {
    confidence: Option<Value>,
}

/// Every non-blank line of a comparisons file as an [`Example`].
///
/// Ids are `tldr-{batch}-{k:04}` (TL;DR) or `{batch}-{k:04}` (CNN/DM, whose batch names
/// already say so), `k` counting this file's records of that batch from 0: in an original
/// batch file that is the source line, as in `normalized.jsonl`. `meta.source_line` is
/// the same `k`.
///
/// `per_batch` counts the records of each batch in the lines parsed before these, so
/// that a file read in pieces numbers its records as one read whole.
pub(super) fn parse(
    path: &Path,
    lines: &[Line<'_>],
    per_batch: &mut BTreeMap<String, usize>,
) -> Result<Parsed, DataError> {
    let mut records = Vec::with_capacity(lines.len());
    for line in lines {
        let comparison: Comparison = line.parse(path)?;
        let counter = per_batch.entry(comparison.batch.clone()).or_insert(0);
        let k = *counter;
        *counter += 1;
        let example = example(comparison, k).map_err(|message| line.error(path, message))?;
        records.push(Record {
            line: line.number,
            example,
        });
    }
    Ok(Parsed {
        read: lines.len(),
        records,
        dropped: BTreeMap::new(),
    })
}

fn example(comparison: Comparison, k: usize) -> Result<Example, String> {
    let Comparison {
        info,
        split,
        summaries,
        choice,
        worker,
        batch,
        extra,
    } = comparison;
    let [first, second]: [Summary; 2] = summaries
        .try_into()
        .map_err(|all: Vec<Summary>| format!("expected 2 summaries, found {}", all.len()))?;
    let label = match choice {
        0 => Label::A,
        1 => Label::B,
        other => return Err(format!("`choice` must be 0 or 1, found {other}")),
    };

    let mut meta = Map::new();
    let (id, dataset, context) = match (info.post, info.article) {
        (Some(post), _) => {
            let subreddit = info
                .subreddit
                .ok_or("`info` has a `post` but no `subreddit`")?;
            let context = format!(
                "SUBREDDIT: r/{subreddit}\n\nTITLE: {}\n\nPOST: {post}",
                info.title
            );
            meta.insert("post_id".into(), info.id.into());
            meta.insert("subreddit".into(), subreddit.into());
            (
                format!("tldr-{batch}-{k:04}"),
                "openai-tldr-comparisons",
                context,
            )
        }
        (None, Some(article)) => {
            let context = format!("TITLE: {}\n\nARTICLE: {article}", info.title);
            meta.insert("article_id".into(), info.id.into());
            if let Some(site) = info.site {
                meta.insert("site".into(), site.into());
            }
            (
                format!("{batch}-{k:04}"),
                "openai-cnndm-comparisons",
                context,
            )
        }
        (None, None) => {
            return Err(
                "`info` has neither `post` (TL;DR) nor `article` (CNN/DM) (is this a comparisons file?)"
                    .to_string(),
            );
        }
    };
    // Key order follows normalized.jsonl, so re-serialized meta reads the same.
    meta.insert("title".into(), info.title.into());
    if let Some(split) = split {
        meta.insert("split".into(), split.into());
    }
    meta.insert("batch".into(), batch.into());
    meta.insert("source_line".into(), k.into());
    meta.insert("policy_a".into(), first.policy.into());
    meta.insert("policy_b".into(), second.policy.into());
    if let Some(worker) = worker {
        meta.insert("worker".into(), worker.into());
    }
    if let Some(confidence) = extra.and_then(|extra| extra.confidence) {
        meta.insert("confidence".into(), confidence);
    }
    meta.insert("choice".into(), choice.into());

    Ok(Example {
        id,
        context,
        response_a: first.text.trim().to_string(),
        response_b: second.text.trim().to_string(),
        label,
        dataset: Some(dataset.to_string()),
        meta,
        rationale: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tldr_record() -> Value {
        json!({
            "info": {"id": "t3_x", "post": "P", "title": "T", "subreddit": "s"},
            "split": "valid1",
            "summaries": [
                {"text": " one \n", "policy": "ref", "note": null},
                {"text": "two", "policy": "sup", "note": "n"}
            ],
            "choice": 1, "worker": "w", "batch": "batch9", "extra": {"confidence": 8}
        })
    }

    fn parse_one(value: &Value) -> Result<Example, String> {
        example(
            serde_json::from_value(value.clone()).map_err(|e| e.to_string())?,
            7,
        )
    }

    #[test]
    fn a_tldr_record_maps_as_normalized_jsonl_does() {
        let example = parse_one(&tldr_record()).unwrap();
        assert_eq!(example.id, "tldr-batch9-0007");
        assert_eq!(example.context, "SUBREDDIT: r/s\n\nTITLE: T\n\nPOST: P");
        assert_eq!(example.response_a, "one");
        assert_eq!(example.response_b, "two");
        assert_eq!(example.label, Label::B);
        assert_eq!(example.dataset.as_deref(), Some("openai-tldr-comparisons"));
        let keys: Vec<&str> = example.meta.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "post_id",
                "subreddit",
                "title",
                "split",
                "batch",
                "source_line",
                "policy_a",
                "policy_b",
                "worker",
                "confidence",
                "choice"
            ]
        );
        assert_eq!(example.meta["confidence"], json!(8));
        assert_eq!(example.meta["source_line"], json!(7));
    }

    #[test]
    fn a_cnndm_record_maps_with_its_article() {
        let mut value = tldr_record();
        value["info"] = json!({"id": "abc", "site": "cnn", "title": "T", "article": "A"});
        value["batch"] = json!("cnndm0");
        value["choice"] = json!(0);
        let example = parse_one(&value).unwrap();
        assert_eq!(example.id, "cnndm0-0007");
        assert_eq!(example.context, "TITLE: T\n\nARTICLE: A");
        assert_eq!(example.label, Label::A);
        assert_eq!(example.dataset.as_deref(), Some("openai-cnndm-comparisons"));
        assert_eq!(example.meta["article_id"], json!("abc"));
        assert_eq!(example.meta["site"], json!("cnn"));
    }

    #[test]
    fn malformed_comparisons_are_described() {
        let mut value = tldr_record();
        value["choice"] = json!(2);
        assert_eq!(
            parse_one(&value).unwrap_err(),
            "`choice` must be 0 or 1, found 2"
        );
        let mut value = tldr_record();
        value["summaries"] = json!([{"text": "x", "policy": "p"}]);
        assert_eq!(
            parse_one(&value).unwrap_err(),
            "expected 2 summaries, found 1"
        );
        let mut value = tldr_record();
        value["info"] = json!({"id": "x", "title": "T"});
        assert!(
            parse_one(&value)
                .unwrap_err()
                .starts_with("`info` has neither `post`")
        );
        let mut value = tldr_record();
        value["info"] = json!({"id": "x", "title": "T", "post": "P"});
        assert_eq!(
            parse_one(&value).unwrap_err(),
            "`info` has a `post` but no `subreddit`"
        );
    }

    #[test]
    fn batches_are_counted_separately() {
        let mut b = tldr_record();
        b["batch"] = json!("batch2");
        let text = [tldr_record(), b, tldr_record()]
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        let lines = super::super::jsonl::lines(Path::new("f"), text.as_bytes()).unwrap();
        let parsed = parse(Path::new("f"), &lines, &mut BTreeMap::new()).unwrap();
        let ids: Vec<&str> = parsed
            .records
            .iter()
            .map(|r| r.example.id.as_str())
            .collect();
        assert_eq!(
            ids,
            ["tldr-batch9-0000", "tldr-batch2-0000", "tldr-batch9-0001"]
        );
    }
}

//! Loader tests: the real files under `shared/data/` in every format, and each error a
//! malformed file can raise.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::*;

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");

fn shared(relative: &str) -> PathBuf {
    Path::new(SHARED).join(relative)
}

fn source(format: DataFormat, path: impl Into<PathBuf>) -> DataSource {
    DataSource {
        format,
        path: path.into(),
        limit: None,
        seed: 0,
        shuffle: false,
        high_confidence: false,
        split: None,
        id_prefix: None,
    }
}

fn load_ok(source: &DataSource) -> Dataset {
    load(source).unwrap_or_else(|err| panic!("{err}"))
}

fn normalized(folder: &str) -> Dataset {
    load_ok(&source(
        DataFormat::Pairs,
        shared(&format!("{folder}/normalized.jsonl")),
    ))
}

/// A temporary file holding `bytes`, kept alive by the returned handle.
fn file_with(bytes: &[u8], suffix: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
    file.write_all(bytes).unwrap();
    file.flush().unwrap();
    file
}

/// The error `load` gives for a pairs file holding `text`, with the temp path replaced by
/// `f.jsonl` so messages can be compared whole.
fn pairs_error(text: &str) -> String {
    error_for(DataFormat::Pairs, text.as_bytes(), |_| {})
}

fn error_for(format: DataFormat, bytes: &[u8], adjust: impl FnOnce(&mut DataSource)) -> String {
    let file = file_with(bytes, ".jsonl");
    let mut src = source(format, file.path());
    adjust(&mut src);
    let err = load(&src).expect_err("the file should be rejected");
    err.to_string()
        .replace(&file.path().display().to_string(), "f.jsonl")
}

fn pair(id: &str, context: &str, label: &str) -> String {
    serde_json::json!({
        "id": id, "context": context, "response_a": "one", "response_b": "two", "label": label
    })
    .to_string()
}

fn ids(dataset: &Dataset) -> Vec<&str> {
    dataset.examples.iter().map(|e| e.id.as_str()).collect()
}

// --- the shared data -------------------------------------------------------------------

#[test]
fn every_normalized_file_loads_with_its_documented_count() {
    let expected = [
        ("openai-tldr-comparisons", 1303),
        ("openai-cnndm-comparisons", 437),
        ("hh-rlhf-helpful-base-test", 2343),
        ("hh-rlhf-harmless-base-test", 2307),
        ("pandalm-testset-v1", 999),
        ("autoj-pairwise-test", 1392),
        ("lfqa-expert-pairwise", 260),
    ];
    for (folder, count) in expected {
        let dataset = normalized(folder);
        assert_eq!(dataset.examples.len(), count, "{folder}");
        assert_eq!(dataset.records, count, "{folder}");
        assert!(dataset.dropped.is_empty(), "{folder}");
        assert_eq!(dataset.file_sha256.len(), 64);
        assert!(
            dataset
                .examples
                .iter()
                .all(|e| e.dataset.as_deref() == Some(folder) || folder.starts_with("hh-rlhf"))
        );
    }
}

#[test]
fn real_data_flags_empty_and_identical_responses() {
    let flags = |folder| normalized(folder).flagged;
    assert_eq!(flags("autoj-pairwise-test")[FLAG_EMPTY_RESPONSE], 1);
    assert_eq!(flags("autoj-pairwise-test")[FLAG_IDENTICAL_RESPONSES], 9);
    assert_eq!(flags("pandalm-testset-v1")[FLAG_EMPTY_RESPONSE], 54);
    assert_eq!(flags("openai-cnndm-comparisons")[FLAG_EMPTY_RESPONSE], 12);
    assert!(flags("openai-tldr-comparisons").is_empty());
    assert!(flags("lfqa-expert-pairwise").is_empty());
}

#[test]
fn file_sha256_is_over_the_bytes_on_disk() {
    let dataset = load_ok(&source(
        DataFormat::HhRlhf,
        shared("hh-rlhf-harmless-base-test/test.jsonl.gz"),
    ));
    // The digest SOURCE.md records for the gzipped file.
    assert_eq!(
        dataset.file_sha256,
        "ebfaaed21162a4de120ae85366075b34425e2a6303fac59b99555002f7016f03"
    );
}

#[test]
fn tldr_source_matches_its_normalized_copy() {
    let loaded = load_ok(&source(
        DataFormat::Tldr,
        shared("openai-tldr-comparisons/comparisons.jsonl"),
    ));
    let expected = normalized("openai-tldr-comparisons");
    assert_eq!(loaded.records, 1303);
    assert_eq!(loaded.examples.len(), expected.examples.len());
    for (got, want) in loaded.examples.iter().zip(&expected.examples) {
        assert_eq!(got.context, want.context, "{}", want.id);
        assert_eq!(got.response_a, want.response_a, "{}", want.id);
        assert_eq!(got.response_b, want.response_b, "{}", want.id);
        assert_eq!(got.label, want.label, "{}", want.id);
        assert_eq!(got.dataset, want.dataset, "{}", want.id);
        assert_eq!(
            got.meta["confidence"], want.meta["confidence"],
            "{}",
            want.id
        );
        let mut got_meta = got.meta.clone();
        let mut want_meta = want.meta.clone();
        got_meta.remove("source_line");
        want_meta.remove("source_line");
        assert_eq!(got_meta, want_meta, "{}", want.id);
        // The id counts this file's records of the batch, not the source line.
        let batch = want.meta["batch"].as_str().unwrap();
        assert!(got.id.starts_with(&format!("tldr-{batch}-")), "{}", got.id);
    }
    assert_eq!(loaded.examples[0].id, "tldr-batch13-0000");
    assert_eq!(expected.examples[0].id, "tldr-batch13-0002");
}

#[test]
fn cnndm_source_matches_its_normalized_copy_exactly() {
    let loaded = load_ok(&source(
        DataFormat::Tldr,
        shared("openai-cnndm-comparisons/cnndm0.jsonl"),
    ));
    let expected = normalized("openai-cnndm-comparisons");
    assert_eq!(loaded.examples.len(), 437);
    // cnndm0.jsonl is a whole batch file, so even ids and source lines agree.
    assert_eq!(loaded.examples, expected.examples);
}

#[test]
fn hh_rlhf_sources_match_their_normalized_copies_exactly() {
    let cases = [
        (
            "hh-rlhf-helpful-base-test",
            "hh-helpful-base-test",
            2354,
            2343,
            9,
            2,
        ),
        (
            "hh-rlhf-harmless-base-test",
            "hh-harmless-base-test",
            2312,
            2307,
            5,
            0,
        ),
    ];
    for (folder, prefix, records, kept, prefixes_differ, same_reply) in cases {
        let mut src = source(
            DataFormat::HhRlhf,
            shared(&format!("{folder}/test.jsonl.gz")),
        );
        src.id_prefix = Some(prefix.to_string());
        let loaded = load_ok(&src);
        let expected = normalized(folder);
        assert_eq!(loaded.records, records, "{folder}");
        assert_eq!(loaded.examples.len(), kept, "{folder}");
        assert_eq!(ids(&loaded), ids(&expected), "{folder}");
        for (got, want) in loaded.examples.iter().zip(&expected.examples) {
            assert_eq!(got, want, "{folder} {}", want.id);
        }
        let dropped_prefix = loaded.dropped.get(hh_rlhf::PREFIXES_DIFFER).copied();
        let dropped_same = loaded.dropped.get(hh_rlhf::SAME_REPLY).copied();
        assert_eq!(dropped_prefix.unwrap_or(0), prefixes_differ, "{folder}");
        assert_eq!(dropped_same.unwrap_or(0), same_reply, "{folder}");
        assert_eq!(loaded.flagged[FLAG_EMPTY_RESPONSE], 4, "{folder}");
    }
}

#[test]
fn hh_rlhf_ids_default_to_the_hh_prefix() {
    let dataset = load_ok(&source(
        DataFormat::HhRlhf,
        shared("hh-rlhf-harmless-base-test/test.jsonl.gz"),
    ));
    assert_eq!(dataset.examples[0].id, "hh-00000");
    assert_eq!(dataset.examples[0].dataset.as_deref(), Some("hh"));
}

#[test]
fn high_confidence_keeps_647_tldr_pairs() {
    for (format, file) in [
        (
            DataFormat::Tldr,
            "openai-tldr-comparisons/comparisons.jsonl",
        ),
        (
            DataFormat::Pairs,
            "openai-tldr-comparisons/normalized.jsonl",
        ),
    ] {
        let mut src = source(format, shared(file));
        src.high_confidence = true;
        let dataset = load_ok(&src);
        assert_eq!(dataset.examples.len(), 647, "{file}");
        assert_eq!(dataset.records, 1303, "{file}");
        assert!(
            dataset
                .examples
                .iter()
                .all(|e| { matches!(e.meta["confidence"].as_u64(), Some(1 | 2 | 8 | 9)) })
        );
    }
}

#[test]
fn split_sides_partition_tldr_by_context() {
    let path = shared("openai-tldr-comparisons/normalized.jsonl");
    let side = |keep| {
        let mut src = source(DataFormat::Pairs, &path);
        src.split = Some(Split { holdout: 0.3, keep });
        load_ok(&src)
    };
    let holdout = side(SplitSide::Holdout);
    let rest = side(SplitSide::Rest);
    assert_eq!(holdout.examples.len() + rest.examples.len(), 1303);
    // About 30% of the 719 posts, and so roughly of the pairs.
    assert!(
        (250..550).contains(&holdout.examples.len()),
        "{}",
        holdout.examples.len()
    );
    let holdout_ids: BTreeSet<&str> = ids(&holdout).into_iter().collect();
    let rest_ids: BTreeSet<&str> = ids(&rest).into_iter().collect();
    assert!(holdout_ids.is_disjoint(&rest_ids));
    let holdout_contexts: BTreeSet<&str> = holdout
        .examples
        .iter()
        .map(|e| e.context.as_str())
        .collect();
    assert!(
        rest.examples
            .iter()
            .all(|e| !holdout_contexts.contains(e.context.as_str()))
    );
}

#[test]
fn shuffle_is_deterministic_and_depends_on_the_seed() {
    let path = shared("lfqa-expert-pairwise/normalized.jsonl");
    let shuffled = |seed| {
        let mut src = source(DataFormat::Pairs, &path);
        src.shuffle = true;
        src.seed = seed;
        ids(&load_ok(&src))
            .into_iter()
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let in_order: Vec<String> = ids(&normalized("lfqa-expert-pairwise"))
        .into_iter()
        .map(String::from)
        .collect();
    let first = shuffled(7);
    assert_eq!(first, shuffled(7));
    assert_ne!(first, shuffled(8));
    assert_ne!(first, in_order);
    let mut sorted = first;
    sorted.sort();
    let mut expected = in_order;
    expected.sort();
    assert_eq!(sorted, expected);
}

#[test]
fn limit_keeps_the_first_examples_after_the_shuffle() {
    let path = shared("lfqa-expert-pairwise/normalized.jsonl");
    let mut src = source(DataFormat::Pairs, &path);
    src.limit = Some(5);
    let limited = load_ok(&src);
    assert_eq!(ids(&limited), ids(&normalized("lfqa-expert-pairwise"))[..5]);
    assert_eq!(limited.records, 260);

    src.shuffle = true;
    src.seed = 3;
    let limited = load_ok(&src);
    src.limit = None;
    let all = load_ok(&src);
    assert_eq!(ids(&limited), ids(&all)[..5]);

    src.limit = Some(10_000);
    assert_eq!(load_ok(&src).examples.len(), 260);
}

// --- errors -------------------------------------------------------------------------------

#[test]
fn a_missing_file_is_a_read_error() {
    let err = load(&source(DataFormat::Pairs, "/nonexistent/pairs.jsonl")).unwrap_err();
    assert!(matches!(err, DataError::Read { .. }));
    // The cause is chained, and printed once by main.
    assert_eq!(err.to_string(), "cannot read /nonexistent/pairs.jsonl");
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn bad_json_names_line_and_column() {
    let text = format!("{}\n\n{{\"id\": \"x\",, }}\n", pair("a", "c", "a"));
    assert_eq!(
        pairs_error(&text),
        "f.jsonl:3: invalid json at column 12: key must be a string"
    );
}

#[test]
fn unknown_fields_point_to_meta() {
    let text = format!(
        "{}\n{}\n",
        pair("a", "c", "a"),
        r#"{"id": "b", "context": "c", "response_a": "x", "response_b": "y", "label": "a", "confidence": 9}"#
    );
    assert_eq!(
        pairs_error(&text),
        "f.jsonl:2: unknown field `confidence` (put extra fields under `meta`)"
    );
}

#[test]
fn record_errors_name_the_line_and_the_field() {
    let cases = [
        (
            r#"{"id": "b", "context": "c", "response_a": "x", "label": "a"}"#,
            "missing field `response_b`",
        ),
        (
            r#"{"id": "b", "context": 3, "response_a": "x", "response_b": "y", "label": "a"}"#,
            "`context` must be a string, found a number",
        ),
        (
            r#"{"id": "b", "context": "c", "response_a": "x", "response_b": "y", "label": "A"}"#,
            "unknown label `A` (expected one of a, b, tie)",
        ),
        (
            r#"{"id": "", "context": "c", "response_a": "x", "response_b": "y", "label": "a"}"#,
            "`id` is empty",
        ),
        (
            r#"["not", "an", "object"]"#,
            "expected a json object, found an array",
        ),
    ];
    for (bad, message) in cases {
        let text = format!("{}\n{}\n{bad}\n", pair("a", "c", "a"), pair("b", "c", "b"));
        assert_eq!(pairs_error(&text), format!("f.jsonl:3: {message}"));
    }
}

#[test]
fn non_utf8_bytes_name_the_line() {
    let mut bytes = format!("{}\n", pair("a", "c", "a")).into_bytes();
    bytes.extend_from_slice(b"{\"id\": \"b\xe9\"}\n");
    assert_eq!(
        error_for(DataFormat::Pairs, &bytes, |_| {}),
        "f.jsonl:2: line is not valid utf-8 (bad byte at column 10; save the file as utf-8)"
    );
}

#[test]
fn duplicate_ids_name_both_lines() {
    let text = [
        pair("a", "c", "a"),
        pair("b", "c", "a"),
        String::new(),
        pair("a", "d", "b"),
    ]
    .join("\n");
    assert_eq!(
        pairs_error(&text),
        "f.jsonl:4: duplicate id `a` (first on line 1; ids must be unique within a file)"
    );
}

#[test]
fn empty_and_identical_responses_are_kept_and_flagged() {
    let text = [
        r#"{"id": "a", "context": "", "response_a": "x", "response_b": "", "label": "a"}"#,
        r#"{"id": "b", "context": "c", "response_a": "x", "response_b": "x", "label": "tie"}"#,
        &pair("c", "c", "b"),
    ]
    .join("\n");
    let file = file_with(text.as_bytes(), ".jsonl");
    let dataset = load_ok(&source(DataFormat::Pairs, file.path()));
    assert_eq!(dataset.examples.len(), 3);
    assert_eq!(dataset.flagged[FLAG_EMPTY_RESPONSE], 1);
    assert_eq!(dataset.flagged[FLAG_IDENTICAL_RESPONSES], 1);
}

#[test]
fn an_empty_file_has_no_examples() {
    assert_eq!(
        error_for(DataFormat::Pairs, b"\n \n", |_| {}),
        "f.jsonl: no examples (the file is empty before any filter: it has no records)"
    );
}

#[test]
fn a_file_whose_records_are_all_dropped_has_no_examples() {
    let text = serde_json::json!({
        "chosen": "\n\nHuman: a\n\nAssistant: x", "rejected": "\n\nHuman: b\n\nAssistant: y"
    })
    .to_string();
    assert_eq!(
        error_for(DataFormat::HhRlhf, text.as_bytes(), |_| {}),
        "f.jsonl: no examples (the file is empty before any filter: every record was \
         dropped; prefixes differ: 1)"
    );
}

#[test]
fn filters_that_keep_nothing_say_so() {
    let text = format!("{}\n", pair("a", "c", "a"));
    let text = text.replace("}", r#", "meta": {"confidence": 5}}"#);
    assert_eq!(
        error_for(DataFormat::Pairs, text.as_bytes(), |src| src
            .high_confidence =
            true),
        "f.jsonl: no examples left after filters (the file has 1 before them; \
         high_confidence kept 0)"
    );
    assert_eq!(
        error_for(DataFormat::Pairs, text.as_bytes(), |src| src.limit =
            Some(0)),
        "f.jsonl: no examples left after filters (the file has 1 before them; limit kept 0)"
    );
    // A split with a zero holdout share keeps every context on the rest side.
    assert_eq!(
        error_for(DataFormat::Pairs, text.as_bytes(), |src| {
            src.split = Some(Split {
                holdout: 0.0,
                keep: SplitSide::Holdout,
            });
        }),
        "f.jsonl: no examples left after filters (the file has 1 before them; \
         the holdout side of the split kept 0)"
    );
}

#[test]
fn high_confidence_without_a_confidence_names_the_line() {
    let text = format!("{}\n\n{}\n", pair("a", "c", "a"), pair("b", "c", "b")).replacen(
        "}",
        r#", "meta": {"confidence": 9}}"#,
        1,
    );
    assert_eq!(
        error_for(DataFormat::Pairs, text.as_bytes(), |src| src
            .high_confidence =
            true),
        "f.jsonl:3: no `meta.confidence` (high_confidence needs a 1-9 confidence on every \
         record; turn it off for data without one)"
    );
}

#[test]
fn tldr_errors_name_the_line() {
    let good = std::fs::read_to_string(shared("openai-cnndm-comparisons/cnndm0.jsonl")).unwrap();
    let first = good.lines().next().unwrap();
    let bad = first.replace("\"choice\": 0", "\"choice\": 3");
    assert_ne!(bad, first, "the fixture should contain a choice of 0");
    assert_eq!(
        error_for(
            DataFormat::Tldr,
            format!("{first}\n{bad}\n").as_bytes(),
            |_| {}
        ),
        "f.jsonl:2: `choice` must be 0 or 1, found 3"
    );
    assert_eq!(
        error_for(DataFormat::Tldr, b"{\"info\": {}}\n", |_| {}),
        "f.jsonl:1: missing field `id`"
    );
}

#[test]
fn gzipped_pairs_files_load_too() {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(pair("a", "c", "a").as_bytes()).unwrap();
    let gz = encoder.finish().unwrap();
    let file = file_with(&gz, ".jsonl.gz");
    let dataset = load_ok(&source(DataFormat::Pairs, file.path()));
    assert_eq!(ids(&dataset), ["a"]);
    assert_eq!(dataset.file_sha256, fingerprint::sha256_hex(&gz));
}

#[test]
fn bytes_in_memory_load_as_the_file_would() {
    let gz = std::fs::read(shared("hh-rlhf-harmless-base-test/test.jsonl.gz")).unwrap();
    let mut src = source(DataFormat::HhRlhf, "never/opened.jsonl.gz");
    src.limit = Some(5);
    let in_memory = load_bytes(&src, &gz).unwrap_or_else(|err| panic!("{err}"));
    src.path = shared("hh-rlhf-harmless-base-test/test.jsonl.gz");
    let on_disk = load_ok(&src);
    assert_eq!(in_memory.examples, on_disk.examples);
    assert_eq!(in_memory.file_sha256, on_disk.file_sha256);
    assert_eq!(in_memory.records, on_disk.records);
}

//! Snapshots of every exporter on one small fixed run, and the `summary.json` contract.

use std::collections::BTreeMap;

use super::*;
use crate::backend::config::Price;
use crate::data::Label;
use crate::grid::{Cell, Scalar, SelfConsistency, Settings};
use crate::metrics::fixture::{failed, judged, with_longer, with_orders};
use crate::metrics::{CellInput, summarize};
use crate::procedure::{Judgment, agreement, choice, combine};
use crate::prompt::{Order, Polarity};

fn settings(preamble: &str, few_shot: u32, labeler: &str) -> Settings {
    Settings {
        preamble: preamble.to_owned(),
        few_shot,
        exemplar_seed: None,
        cot: false,
        self_consistency: SelfConsistency::GREEDY,
        labeler: labeler.to_owned(),
        vars: BTreeMap::from([("tone".to_owned(), Scalar::Str("plain".to_owned()))]),
    }
}

/// A judgment of example `i` with raw order distributions `ab` and `ba`; the rest is
/// derived the way the procedure derives it.
fn judgment(i: usize, ab: f64, ba: f64) -> Judgment {
    let human = if i.is_multiple_of(3) {
        Label::B
    } else {
        Label::A
    };
    let longer = if i.is_multiple_of(2) {
        Label::A
    } else {
        Label::B
    };
    let mut judgment = with_longer(
        with_orders(
            judged(&format!("ex{i:02}"), 0.5, human),
            &[(Order::Ab, ab), (Order::Ba, ba)],
        ),
        longer,
    );
    let p_a = combine(&judgment.orders, Polarity::Normal);
    judgment.p_a = Some(p_a);
    judgment.ai = Some(choice(p_a));
    judgment.score = Some(agreement(choice(p_a), human));
    judgment
}

/// Right on example `i` unless `wrong(i)`, with confidence `p`.
fn labeler(wrong: impl Fn(usize) -> bool, p: f64) -> Vec<Judgment> {
    (0..24)
        .map(|i| {
            let human_a = i % 3 != 0;
            let p_a = if human_a != wrong(i) { p } else { 1.0 - p };
            judgment(i, p_a, 1.0 - p_a)
        })
        .collect()
}

/// A fixed run: two logprob cells on a priced labeler, a position-biased simulated one,
/// and a cell whose every example failed.
pub(super) fn fixture() -> Summary {
    let price = Price {
        prompt_per_million: 0.2,
        completion_per_million: 0.6,
    };
    let detailed = Cell::new(settings("detailed", 0, "llama"));
    let base = Cell::new(settings("base", 0, "llama"));
    let sim = Cell::new(settings("base", 0, "sim"));
    let broken = Cell::new(settings("detailed", 2, "llama"));

    // The simulated cell prefers slot 1 in both orders on most examples.
    let mut biased: Vec<Judgment> = (0..24)
        .map(|i| {
            if i % 4 == 0 {
                judgment(i, 0.3, 0.6)
            } else {
                judgment(i, 0.8, 0.7)
            }
        })
        .collect();
    biased[5] = failed("ex05", "no_choice_token");
    biased[9] = failed("ex09", "timeout");

    let cells = [
        CellInput::new(
            &detailed,
            "logprobs",
            Some(price),
            labeler(|i| i % 5 == 0, 0.8),
        ),
        CellInput::new(&base, "logprobs", Some(price), labeler(|i| i % 4 == 1, 0.7)),
        CellInput::new(&sim, "simulated", None, biased),
        CellInput::new(
            &broken,
            "logprobs",
            Some(price),
            (0..3)
                .map(|i| failed(&format!("ex{i:02}"), "timeout"))
                .collect(),
        ),
    ];
    let options = MetricsOptions {
        bootstrap_resamples: 400,
        seed: 7,
        confidence: 0.95,
    };
    Summary::new(
        "tldr-prompting",
        "20240501-120000",
        &options,
        summarize(&cells, &options),
    )
}

fn context() -> ReportContext {
    ReportContext {
        examples: 24,
        labelers: vec![
            LabelerLine {
                name: "llama".to_owned(),
                mode: "logprobs".to_owned(),
                model: Some("Llama-3.1-8B-Instruct".to_owned()),
            },
            LabelerLine {
                name: "sim".to_owned(),
                mode: SIMULATED.to_owned(),
                model: None,
            },
        ],
        run_seconds: Some(754.2),
    }
}

#[test]
fn report_md_snapshot() {
    insta::assert_snapshot!(report_md(&fixture(), &context()));
}

#[test]
fn cells_csv_snapshot() {
    insta::assert_snapshot!(cells_csv(&fixture()));
}

#[test]
fn summary_json_snapshot() {
    insta::assert_snapshot!(summary_json(&fixture()));
}

#[test]
fn ranked_table_text_snapshot() {
    insta::assert_snapshot!(ranked_table_text(&fixture()));
}

#[test]
fn summary_json_keeps_the_contract() {
    let json: serde_json::Value = serde_json::from_str(&summary_json(&fixture())).unwrap();
    for key in ["experiment", "run_id", "cells"] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    let cells = json["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4);
    for cell in cells {
        for key in [
            "name",
            "id",
            "settings",
            "n",
            "alignment",
            "ci_low",
            "ci_high",
            "tied_with_best",
            "position_bias",
            "prefer_first",
            "prefer_longer",
            "ece",
            "calls",
            "prompt_tokens",
            "completion_tokens",
            "cache_hits",
            "failures",
        ] {
            assert!(cell.get(key).is_some(), "cell lacks {key}");
        }
        assert!(cell["failures"].is_u64(), "failures is a count");
        assert!(cell["tied_with_best"].is_boolean());
    }
    // Ranked best first, the cell without judgments last.
    let ranks: Vec<u64> = cells.iter().map(|c| c["rank"].as_u64().unwrap()).collect();
    assert_eq!(ranks, [1, 2, 3, 4]);
    assert!(cells[3]["alignment"].is_null());
}

#[test]
fn summary_json_round_trips() {
    let summary = fixture();
    let read: Summary = serde_json::from_str(&summary_json(&summary)).unwrap();
    assert_eq!(read.cells.len(), summary.cells.len());
    assert_eq!(
        summary_json(&read),
        summary_json(&summary),
        "rounding is idempotent"
    );
}

#[test]
fn a_simulated_cell_is_called_a_simulation_even_without_labelers_listed() {
    let report = report_md(&fixture(), &ReportContext::default());
    assert!(report.contains("a simulation, not a model"));
}

#[test]
fn chance_and_position_bias_are_called_out() {
    let mut summary = fixture();
    let report = report_md(&summary, &context());
    assert!(report.contains("Position bias is above 50% in 1 of 4 cells"));
    // Make the best cell's interval include one half.
    summary.cells[0].ci_low = Some(0.45);
    let report = report_md(&summary, &context());
    assert!(report.contains("no better than chance"));
}

#[test]
fn chain_of_thought_cells_show_how_often_a_rationale_was_written() {
    let direct = fixture();
    assert!(!report_md(&direct, &context()).contains("ationale"));
    assert!(!ranked_table_text(&direct).contains("rationale"));

    let mut summary = fixture();
    summary.cells[0].rationale_written = Some(0.12);
    summary.cells[0].rationale_chars = Some(2062.0);
    summary.cells[1].rationale_written = Some(0.74);
    let name = summary.cells[0].name.clone();
    let report = report_md(&summary, &context());
    assert!(report.contains("| rationale written |"), "{report}");
    assert!(
        report.contains("| 12.0% |") && report.contains("| 74.0% |"),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "fewer than half the samples of the chain-of-thought cell `{name}` (12.0%)"
        )),
        "only the cell below half is named: {report}"
    );
    assert!(report.contains("*Rationale written*: in chain-of-thought cells"));
    let text = ranked_table_text(&summary);
    assert!(text.lines().next().unwrap().contains("rationale"), "{text}");
    let html = report_html(&summary, &context());
    assert!(html.contains("<button type=\"button\">rationale written</button>"));
    assert!(html.contains("<em>Rationale written</em>"));
    let csv = cells_csv(&summary);
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .ends_with(",rationale_written,rationale_chars,rationale_capped")
    );
    assert!(
        csv.lines().nth(1).unwrap().ends_with(",0.12,2062,"),
        "{csv}"
    );
    assert!(
        !report.contains("capped"),
        "no journal counted capped rationales: {report}"
    );
}

#[test]
fn chain_of_thought_cells_show_how_often_a_rationale_ran_out_of_tokens() {
    let mut summary = fixture();
    for (cell, capped) in summary.cells.iter_mut().zip([0.97, 0.5004, 0.1]) {
        cell.rationale_written = Some(1.0);
        cell.rationale_capped = Some(capped);
    }
    summary.cells[3].rationale_written = Some(1.0);
    let (looping, at_half) = (summary.cells[0].name.clone(), summary.cells[1].name.clone());
    let report = report_md(&summary, &context());
    assert!(
        report.contains("| rationale written | rationale capped |"),
        "{report}"
    );
    assert!(
        report.contains("| 97.0% |") && report.contains("| 10.0% |"),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "ran out of tokens in more than half the samples of the chain-of-thought cell \
             `{looping}` (97.0%)"
        )),
        "{report}"
    );
    assert!(
        !report.contains(&format!("`{at_half}` (50.0%)")),
        "a share shown as half is not called above half: {report}"
    );
    assert!(report.contains("*Rationale capped*: in chain-of-thought cells"));
    assert!(
        report.contains("| 100.0% | – |"),
        "a cell whose journal does not say shows nothing: {report}"
    );
    let text = ranked_table_text(&summary);
    assert!(text.lines().next().unwrap().contains("capped"), "{text}");
    let html = report_html(&summary, &context());
    assert!(html.contains("<button type=\"button\">rationale capped</button>"));
    assert!(html.contains("<em>Rationale capped</em>"));
    let csv = cells_csv(&summary);
    assert!(csv.lines().nth(1).unwrap().ends_with(",0.97"), "{csv}");

    summary.cells[1].rationale_capped = Some(0.5006);
    let report = report_md(&summary, &context());
    assert!(
        report.contains(&format!("`{at_half}` (50.1%)")),
        "a share shown above half is called so: {report}"
    );
}

#[test]
fn a_summary_from_before_rationales_were_counted_shows_the_column_empty() {
    let mut summary = fixture();
    summary.cells[0].settings["cot"] = serde_json::Value::Bool(true);
    let report = report_md(&summary, &context());
    assert!(report.contains("| rationale written |"), "{report}");
    assert!(
        !report.contains("fewer than half"),
        "nothing was counted: {report}"
    );
}

#[test]
fn a_share_shown_as_half_is_not_called_below_half() {
    let mut summary = fixture();
    summary.cells[0].rationale_written = Some(0.4996);
    assert!(report_md(&summary, &context()).contains("| 50.0% |"));
    assert!(!report_md(&summary, &context()).contains("fewer than half"));
    summary.cells[0].rationale_written = Some(0.4994);
    assert!(report_md(&summary, &context()).contains("fewer than half"));
}

#[test]
fn long_lists_of_cells_in_the_notes_are_cut_at_five() {
    let mut summary = fixture();
    let template = summary.cells[0].clone();
    summary.cells = (0..8)
        .map(|i| {
            let mut cell = template.clone();
            cell.name = format!("cot-{i}");
            cell.rationale_written = Some(0.1);
            cell
        })
        .collect();
    let notes = table::notes(&summary, &|name| name.to_owned());
    let warning = notes
        .warnings
        .iter()
        .find(|warning| warning.contains("rationale"))
        .expect("a rationale warning");
    assert!(warning.contains("cot-4 (10.0%), and 3 more"), "{warning}");
    assert!(!warning.contains("cot-5"), "{warning}");
}

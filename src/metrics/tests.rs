//! Tests of [`summarize`] and [`rank`] as a whole: known answers on hand-made cells, and
//! simulations that check the intervals and the paired test do what they claim.

use proptest::prelude::*;

use super::fixture::{failed, judged, scored, with_capped, with_orders, with_rationales};
use super::*;
use crate::data::Label;
use crate::data::sample::SplitMix64;
use crate::prompt::{Order, Polarity};

fn cell(id: &str, judgments: Vec<Judgment>) -> CellInput {
    CellInput {
        name: format!("name-{id}"),
        id: id.to_owned(),
        settings: serde_json::json!({ "id": id }),
        mode: "simulated".to_owned(),
        price: None,
        judgments,
        polarity: Polarity::Normal,
    }
}

fn options(resamples: usize, seed: u64) -> MetricsOptions {
    MetricsOptions {
        bootstrap_resamples: resamples,
        seed,
        confidence: 0.95,
    }
}

/// A uniform draw in [0, 1) from the top 53 bits.
fn uniform(rng: &mut SplitMix64) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

/// A simulated labeler: right on each of `examples` examples with probability
/// `accuracy`, independently.
fn simulated(rng: &mut SplitMix64, examples: usize, accuracy: f64) -> Vec<Judgment> {
    (0..examples)
        .map(|i| scored(&format!("ex{i:04}"), uniform(rng) < accuracy))
        .collect()
}

#[test]
fn alignment_counts_successful_judgments_only() {
    let judgments = vec![
        scored("e1", true),
        scored("e2", true),
        scored("e3", false),
        judged("e4", 0.5, Label::A), // AI tie: half credit
        failed("e5", "timeout"),
    ];
    let metrics = summarize(&[cell("c", judgments)], &options(200, 1));
    let [cell] = metrics.as_slice() else {
        panic!("one cell in, one out");
    };
    assert_eq!(cell.n, 4);
    assert_eq!(cell.alignment, Some(2.5 / 4.0));
    assert_eq!(cell.failures, 1);
    assert_eq!(cell.calls, 4 * 2 + 1, "failed examples still cost calls");
    assert!(cell.tied_with_best);
    assert_eq!(cell.rank, 1);
    assert_eq!((cell.diff_low, cell.diff_high), (Some(0.0), Some(0.0)));
}

#[test]
fn the_latest_judgment_of_an_example_counts() {
    let judgments = vec![
        failed("e1", "timeout"),
        scored("e2", false),
        scored("e1", true),
    ];
    let metrics = summarize(&[cell("c", judgments)], &options(100, 1));
    assert_eq!(metrics[0].n, 2);
    assert_eq!(metrics[0].alignment, Some(0.5));
    assert_eq!(metrics[0].failures, 0);
}

#[test]
fn cells_without_judgments_have_no_alignment_and_sort_last() {
    let cells = [
        cell("a-empty", vec![]),
        cell("b-failed", vec![failed("e1", "connect")]),
        cell("c-real", vec![scored("e1", false)]),
    ];
    let metrics = summarize(&cells, &options(100, 1));
    let ids: Vec<&str> = metrics.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["c-real", "a-empty", "b-failed"]);
    assert_eq!(metrics[1].alignment, None);
    assert_eq!(metrics[1].ci_low, None);
    assert!(!metrics[1].tied_with_best);
    assert_eq!(metrics[2].failures_by_kind.get("connect"), Some(&1));
    assert!(
        metrics[0].tied_with_best,
        "a best cell with 0% is still the best"
    );
}

#[test]
fn ranking_breaks_ties_by_id_whatever_the_input_order() {
    let same = |id: &str| cell(id, vec![scored("e1", true), scored("e2", false)]);
    let forward = [
        same("b"),
        same("a"),
        same("c"),
        cell("z", vec![scored("e1", true)]),
    ];
    let backward: Vec<CellInput> = forward.iter().rev().cloned().collect();
    let mut first = summarize(&forward, &options(100, 3));
    let mut second = summarize(&backward, &options(100, 3));
    // Calls shared between cells are counted in grid order, on purpose; all else is
    // independent of the input order.
    for cell in first.iter_mut().chain(second.iter_mut()) {
        cell.cache_hits = 0;
    }
    assert_eq!(first, second);
    let order: Vec<(usize, &str)> = first.iter().map(|m| (m.rank, m.id.as_str())).collect();
    assert_eq!(order, [(1, "z"), (2, "a"), (3, "b"), (4, "c")]);

    // `rank` alone re-sorts and renumbers.
    let mut shuffled = first.clone();
    shuffled.reverse();
    rank(&mut shuffled);
    assert_eq!(shuffled, first);
}

#[test]
fn summaries_are_deterministic_for_a_seed_and_vary_with_it() {
    let mut rng = SplitMix64::new(11);
    let cells = [
        cell("a", simulated(&mut rng, 80, 0.7)),
        cell("b", simulated(&mut rng, 80, 0.6)),
    ];
    let first = summarize(&cells, &options(300, 5));
    assert_eq!(first, summarize(&cells, &options(300, 5)));
    assert_ne!(first, summarize(&cells, &options(300, 6)));
}

#[test]
fn a_clearly_worse_cell_is_not_tied_and_an_equal_one_is() {
    let ids: Vec<String> = (0..200).map(|i| format!("ex{i:04}")).collect();
    let good: Vec<Judgment> = ids.iter().map(|id| scored(id, true)).collect();
    // Same as good on all but 10 examples: a paired test sees a small, sure difference.
    let close: Vec<Judgment> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| scored(id, i >= 10))
        .collect();
    let worse: Vec<Judgment> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| scored(id, i % 2 == 0))
        .collect();
    let twin = good.clone();
    let cells = [
        cell("good", good),
        cell("close", close),
        cell("worse", worse),
        cell("twin", twin),
    ];
    let metrics = summarize(&cells, &options(500, 2));
    let tied: BTreeMap<&str, bool> = metrics
        .iter()
        .map(|m| (m.id.as_str(), m.tied_with_best))
        .collect();
    assert_eq!(
        tied,
        BTreeMap::from([
            ("close", false),
            ("good", true),
            ("twin", true),
            ("worse", false)
        ])
    );
}

#[test]
fn paired_resampling_spans_the_union_of_examples() {
    // Cell b judged half of the examples; its interval is still centred on its own mean.
    let all: Vec<Judgment> = (0..100)
        .map(|i| scored(&format!("ex{i:03}"), i % 4 != 0))
        .collect();
    let half: Vec<Judgment> = (0..100)
        .step_by(2)
        .map(|i| scored(&format!("ex{i:03}"), true))
        .collect();
    let metrics = summarize(&[cell("a", all), cell("b", half)], &options(400, 8));
    let b = metrics.iter().find(|m| m.id == "b").unwrap();
    assert_eq!(b.n, 50);
    assert_eq!(
        (b.alignment, b.ci_low, b.ci_high),
        (Some(1.0), Some(1.0), Some(1.0))
    );
    assert!(b.tied_with_best);
}

#[test]
fn position_bias_reaches_the_cell_metrics() {
    let judgments = vec![
        with_orders(
            judged("e1", 0.5, Label::A),
            &[(Order::Ab, 0.9), (Order::Ba, 0.9)],
        ),
        with_orders(
            judged("e2", 0.8, Label::A),
            &[(Order::Ab, 0.8), (Order::Ba, 0.2)],
        ),
    ];
    let metrics = summarize(&[cell("c", judgments)], &options(50, 1));
    assert_eq!(metrics[0].position_bias, Some(0.5));
    assert_eq!(metrics[0].position_bias_direction, Some(1.0));
    assert_eq!(metrics[0].prefer_first, Some(0.75));
}

#[test]
fn rationales_reach_the_cell_metrics_from_the_latest_successful_judgments() {
    let cot = |example: &str, rationales: &[Option<&str>]| {
        with_rationales(judged(example, 0.8, Label::A), rationales)
    };
    let mut failed_with_rationale = failed("e3", "timeout");
    failed_with_rationale.orders = with_capped(
        cot("e3", &[Some("ignored, the example failed")]),
        &[Some(true)],
    )
    .orders;
    let capped = |judgment: Judgment, [first, second]: [bool; 2]| {
        with_capped(judgment, &[Some(first), Some(second)])
    };
    let judgments = vec![
        capped(cot("e1", &[Some("abcdef"), Some("")]), [true, false]),
        // Judged twice: only the later judgment counts.
        capped(cot("e2", &[Some(""), Some("")]), [true, true]),
        capped(cot("e2", &[Some("ab"), Some("")]), [false, false]),
        failed_with_rationale,
    ];
    let cells = [cell("c", judgments)];
    let metrics = summarize(&cells, &options(50, 1));
    assert_eq!(metrics[0].rationale_written, Some(0.5));
    assert_eq!(metrics[0].rationale_chars, Some(4.0));
    assert_eq!(metrics[0].rationale_capped, Some(0.25));

    let compact: Vec<Scored> = cells[0].judgments.iter().map(Scored::from).collect();
    let from_compact = summarize_judged(&cells, &[compact.iter().collect()], &options(50, 1));
    assert_eq!(
        (
            from_compact[0].rationale_written,
            from_compact[0].rationale_chars,
            from_compact[0].rationale_capped
        ),
        (Some(0.5), Some(4.0), Some(0.25))
    );

    let direct = summarize(&[cell("d", vec![scored("e1", true)])], &options(50, 1));
    assert_eq!(
        (
            direct[0].rationale_written,
            direct[0].rationale_chars,
            direct[0].rationale_capped
        ),
        (None, None, None)
    );
}

/// A labeler of accuracy 0.7 on 300 examples: the 95% interval covers 0.7 in 93-97% of
/// 1,000 seeded repetitions. 500 resamples instead of the default 2000 keep the test fast
/// in debug builds; they add a little noise to the bounds, not bias to the coverage.
#[test]
fn the_interval_covers_the_true_accuracy_about_95_percent_of_the_time() {
    const REPETITIONS: usize = 1000;
    let mut rng = SplitMix64::new(20_230_901);
    let mut covered = 0;
    for repetition in 0..REPETITIONS {
        let cells = [cell("c", simulated(&mut rng, 300, 0.7))];
        let metrics = summarize(&cells, &options(500, repetition as u64));
        let (low, high) = (metrics[0].ci_low.unwrap(), metrics[0].ci_high.unwrap());
        covered += usize::from(low <= 0.7 && 0.7 <= high);
    }
    let coverage = covered as f64 / REPETITIONS as f64;
    eprintln!("coverage of the 95% interval: {coverage:.3} over {REPETITIONS} repetitions");
    assert!(
        (0.93..=0.97).contains(&coverage),
        "coverage {coverage} outside 0.93-0.97"
    );
}

/// Two independent cells of the same accuracy: the paired test declares the worse one
/// not tied with the best (a false positive) in at most 5% of 1,000 repetitions, plus three
/// standard errors of a 5% rate over 1,000 (2.1 points) for the simulation's own noise.
#[test]
fn the_paired_test_rarely_separates_identical_labelers() {
    const REPETITIONS: usize = 1000;
    let mut rng = SplitMix64::new(7_070_707);
    let mut separated = 0;
    for repetition in 0..REPETITIONS {
        let cells = [
            cell("a", simulated(&mut rng, 300, 0.7)),
            cell("b", simulated(&mut rng, 300, 0.7)),
        ];
        let metrics = summarize(&cells, &options(500, repetition as u64));
        separated += usize::from(!metrics[1].tied_with_best);
    }
    let rate = separated as f64 / REPETITIONS as f64;
    eprintln!("paired test false-positive rate: {rate:.3} over {REPETITIONS} repetitions");
    let noise = 3.0 * (0.05f64 * 0.95 / REPETITIONS as f64).sqrt();
    assert!(rate <= 0.05 + noise, "false-positive rate {rate}");
}

proptest! {
    #[test]
    fn alignment_lies_in_its_interval_and_in_the_unit_range(
        scores in prop::collection::vec(0u8..3, 1..60),
        seed in any::<u64>(),
    ) {
        let judgments: Vec<Judgment> = scores
            .iter()
            .enumerate()
            .map(|(i, score)| {
                let p_a = [0.2, 0.5, 0.8][usize::from(*score)];
                judged(&format!("ex{i:03}"), p_a, Label::A)
            })
            .collect();
        let metrics = summarize(&[cell("c", judgments)], &options(100, seed));
        let cell = &metrics[0];
        let alignment = cell.alignment.unwrap();
        prop_assert!((0.0..=1.0).contains(&alignment));
        prop_assert!(cell.ci_low.unwrap() <= alignment);
        prop_assert!(alignment <= cell.ci_high.unwrap());
        prop_assert!(cell.ci_low.unwrap() >= 0.0 && cell.ci_high.unwrap() <= 1.0);
    }
}

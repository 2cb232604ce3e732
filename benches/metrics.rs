//! All metrics over 100 cells x 10,000 examples with 2,000 bootstrap resamples.
//!
//! `metrics/summarize_100x10k` is the whole of `metrics::summarize` (paired bootstrap
//! intervals, the paired test against the best cell, position and length bias,
//! calibration, cost, shared calls, the Pareto front). Its baseline,
//! `metrics/bare_bootstrap_100x10k`, draws the same 2,000 x 10,000 indices and averages
//! 100 score vectors over them: the least work any paired bootstrap of this size does.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

use rlaif::backend::Usage;
use rlaif::data::Label;
use rlaif::data::sample::SplitMix64;
use rlaif::grid::{Cell, SelfConsistency, Settings};
use rlaif::metrics::{self, CellInput, MetricsOptions};
use rlaif::procedure::{Judgment, OrderJudgment, SampleJudgment};
use rlaif::prompt::Order;

const CELLS: usize = 100;
const EXAMPLES: usize = 10_000;
const RESAMPLES: usize = 2000;

fn uniform(rng: &mut SplitMix64) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn order(order: Order, p_first: f64) -> OrderJudgment {
    OrderJudgment {
        order,
        p_first,
        samples: vec![SampleJudgment {
            rationale: None,
            rationale_capped: None,
            p_first,
            choice_mass: 0.9,
            missing: vec![],
        }],
    }
}

/// A cell whose labeler agrees with people with probability `accuracy`.
fn cell(index: usize, accuracy: f64, rng: &mut SplitMix64) -> CellInput {
    let settings = Settings {
        preamble: "base".into(),
        few_shot: (index % 3) as u32,
        exemplar_seed: None,
        cot: false,
        self_consistency: SelfConsistency::GREEDY,
        labeler: format!("labeler{index}"),
        vars: BTreeMap::new(),
    };
    let cell = Cell::new(settings);
    let judgments = (0..EXAMPLES)
        .map(|example| {
            let right = uniform(rng) < accuracy;
            let p_a = if right { 0.8 } else { 0.2 };
            Judgment {
                cell: cell.id.clone(),
                cell_name: cell.name.clone(),
                example: format!("e{example:05}"),
                orders: vec![order(Order::Ab, p_a), order(Order::Ba, 1.0 - p_a)],
                p_a: Some(p_a),
                ai: Some(if right { Label::A } else { Label::B }),
                human: Label::A,
                score: Some(if right { 1.0 } else { 0.0 }),
                longer: Some(if example % 2 == 0 { Label::A } else { Label::B }),
                human_confidence: Some(f64::from((example % 9) as u32 + 1)),
                calls: 2,
                usage: Usage {
                    prompt_tokens: 1200,
                    completion_tokens: 2,
                },
                call_keys: vec![
                    format!("{index}-{example}-ab"),
                    format!("{index}-{example}-ba"),
                ],
                paid_calls: 2,
                latency_ms: 30,
                failure: None,
            }
        })
        .collect();
    CellInput::new(&cell, "logprobs", None, judgments)
}

fn bare_bootstrap(scores: &[Vec<f64>], seed: u64) -> Vec<f64> {
    let mut rng = SplitMix64::new(seed);
    let mut counts = vec![0u32; EXAMPLES];
    let mut means = vec![0.0; scores.len()];
    for _ in 0..RESAMPLES {
        counts.fill(0);
        for _ in 0..EXAMPLES {
            counts[rng.below(EXAMPLES as u64) as usize] += 1;
        }
        for (cell, cell_scores) in scores.iter().enumerate() {
            let sum: f64 = counts
                .iter()
                .zip(cell_scores)
                .map(|(&count, &score)| f64::from(count) * score)
                .sum();
            means[cell] += sum / EXAMPLES as f64;
        }
    }
    means
}

fn summarize(c: &mut Criterion) {
    let mut rng = SplitMix64::new(42);
    let inputs: Vec<CellInput> = (0..CELLS)
        .map(|index| cell(index, 0.6 + 0.3 * index as f64 / CELLS as f64, &mut rng))
        .collect();
    let scores: Vec<Vec<f64>> = inputs
        .iter()
        .map(|input| {
            input
                .judgments
                .iter()
                .map(|j| j.score.unwrap_or(0.0))
                .collect()
        })
        .collect();
    let options = MetricsOptions {
        bootstrap_resamples: RESAMPLES,
        seed: 7,
        confidence: 0.95,
    };

    let mut group = c.benchmark_group("metrics");
    group.sample_size(10);
    group.bench_function("summarize_100x10k", |b| {
        b.iter(|| metrics::summarize(black_box(&inputs), &options))
    });
    group.bench_function("bare_bootstrap_100x10k", |b| {
        b.iter(|| bare_bootstrap(black_box(&scores), 7))
    });
    group.finish();
}

criterion_group!(benches, summarize);
criterion_main!(benches);

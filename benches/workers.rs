//! Labeling throughput of the embedded labeler by how it uses the cores: one worker on
//! every thread candle is given against several workers on one thread each, through the
//! labeler interface a run uses. An iteration labels `PAIRS` TL;DR pairs of the Detailed
//! 0-shot cell as a chain-of-thought cell does: in each order a greedy rationale of up
//! to `RATIONALE_TOKENS` tokens, then the answer scored after it; the pairs go to the
//! labeler as many at a time as it has workers, as the runner sends them.
//!
//! candle fixes its thread count once per process, from the environment, so the two
//! settings are two runs of this benchmark in the same session:
//!
//! ```sh
//! cargo bench --bench workers                                            # n-threads/1-workers
//! RAYON_NUM_THREADS=1 CANDLE_NUM_THREADS=1 cargo bench --bench workers   # 1-threads/{1,2}-workers
//! ```
//!
//! The model is pulled into the model cache (`$RLAIF_HOME`) if missing.

#[path = "support/prompts.rs"]
mod prompts;

use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use prompts::{model_file, table_two_prompts};
use rlaif::backend::{GenerateRequest, Labeler, LabelerConfig, ScoreRequest, Truth};

/// Pairs labeled per iteration.
const PAIRS: usize = 4;

/// The longest rationale written per order.
const RATIONALE_TOKENS: u32 = 48;

/// The Detailed 0-shot cell among `table_two_prompts`' cells (base, then detailed, each
/// with 0, 1 and 2 exemplars).
const DETAILED_ZERO_SHOT: usize = 3;

async fn label_pair(labeler: &dyn Labeler, orders: &[String]) {
    let truth = Truth::default();
    for prompt in orders {
        let request = GenerateRequest {
            prompt: prompt.clone(),
            max_tokens: RATIONALE_TOKENS,
            temperature: 0.0,
            top_k: 40,
            sample: 0,
            seed: 7,
            stop: Vec::new(),
        };
        let rationale = labeler.generate(&request, &truth).await.expect("generates");
        let scoring = ScoreRequest {
            prompt: format!("{prompt}{}\n", rationale.text),
            alternatives: 20,
        };
        labeler.score(&scoring, &truth).await.expect("scores");
    }
}

fn workers(c: &mut Criterion) {
    let prompts = table_two_prompts();
    let pairs: Vec<&[String]> = prompts[DETAILED_ZERO_SHOT].chunks(2).collect();
    let name = "smollm2-135m";
    let path = model_file(name);
    let threads = rlaif::backend::embedded_threads().expect("built with the embedded backend");
    // rlaif runs several workers only on one thread each.
    let worker_counts: &[usize] = if threads == 1 { &[1, 2] } else { &[1] };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let client = reqwest::Client::new();

    let mut group = c.benchmark_group("workers");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(60));
    group.throughput(Throughput::Elements(PAIRS as u64));
    for &workers in worker_counts {
        let config = LabelerConfig::Embedded {
            model: name.to_owned(),
            path: Some(path.clone()),
            threads: None,
            workers,
            chat: false,
            max_rationale_tokens: RATIONALE_TOKENS,
            rationale_stop: Vec::new(),
            top_k: 40,
        };
        let labeler = rlaif::backend::build("bench", &config, &client, true).expect("builds");
        runtime.block_on(labeler.preflight()).expect("loads");
        let mut next = 0;
        group.bench_function(format!("{name}/{threads}-threads/{workers}-workers"), |b| {
            b.iter_custom(|iterations| {
                let start = Instant::now();
                for _ in 0..iterations {
                    let batch: Vec<&[String]> = (0..PAIRS)
                        .map(|offset| pairs[(next + offset) % pairs.len()])
                        .collect();
                    next += PAIRS;
                    runtime.block_on(
                        futures::stream::iter(batch)
                            .map(|orders| label_pair(labeler.as_ref(), orders))
                            .buffer_unordered(workers)
                            .collect::<Vec<()>>(),
                    );
                }
                start.elapsed()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, workers);
criterion_main!(benches);

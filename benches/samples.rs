//! Self-consistency sampling on the embedded labeler: `n` samples of one ~650-token
//! TL;DR prompt, decoded together in a batch (`batched/<model>/<n>`) against one after
//! another on the same model in the same run (`one-at-a-time/<model>/<n>`, what a run
//! did before samples were batched). Each sample decodes `SAMPLE_TOKENS` tokens of the
//! prompt's own continuation.
//!
//! Models are pulled into the model cache (`$RLAIF_HOME`) if missing. Run with
//! `cargo bench --bench samples`.

#[path = "support/prompts.rs"]
mod prompts;

use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use prompts::{decoding_inputs, model_file, table_two_prompts};
use rlaif::embedded::ModelSource;
use rlaif::embedded::engine::Engine;
use rlaif::embedded::model::{Model, Sequence};

/// Tokens each sample decodes per iteration.
const SAMPLE_TOKENS: usize = 32;

fn samples(c: &mut Criterion) {
    let prompts = table_two_prompts();
    let mut group = c.benchmark_group("samples");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for name in ["smollm2-135m", "gemma3-270m"] {
        let path = model_file(name);
        let engine = Engine::open(&ModelSource::File(path), false, true).expect("loads");
        let (tokens, decoded) = decoding_inputs(&engine, &prompts, SAMPLE_TOKENS);
        let model: &Model = engine.model();
        let mut sequence = Sequence::default();
        model.extend(&mut sequence, &tokens).expect("evaluates");
        for n in [4, 16] {
            group.throughput(Throughput::Elements((n * SAMPLE_TOKENS) as u64));
            group.bench_function(format!("one-at-a-time/{name}/{n}"), |b| {
                b.iter(|| {
                    for _ in 0..n {
                        sequence.truncate(tokens.len()).expect("truncates");
                        for &token in &decoded {
                            model.decode(&mut sequence, token).expect("evaluates");
                        }
                    }
                })
            });
            sequence.truncate(tokens.len()).expect("truncates");
            group.bench_function(format!("batched/{name}/{n}"), |b| {
                b.iter(|| {
                    let mut batch = model.fork(&sequence, n).expect("forks");
                    for &token in &decoded {
                        model
                            .decode_batch(&mut batch, &vec![token; n])
                            .expect("evaluates");
                    }
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, samples);
criterion_main!(benches);

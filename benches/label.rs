//! `rlaif label` on 10,000 pairs with the simulated labeler, against `rlaif run` of the
//! same pairs as one cell: what labeling costs beside an experiment run over the same
//! calls. Both start from an empty cache and output every iteration, so every call is
//! made; both go through the same procedure, cache and labeler.
//!
//! - `label_10k/label` streams the pairs through the cell and writes prompt/chosen/
//!   rejected lines.
//! - `label_10k/run` runs the same pairs as a one-cell experiment (journal, metrics,
//!   reports).
//! - `label_10k/resume` reruns `label` over a finished output and its cache: what a
//!   rerun pays to check the 10,000 lines it keeps before finding nothing left to do.

use std::path::{Path, PathBuf};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

use rlaif::label::{self, LabelOptions};
use rlaif::runner::{self, RunOptions};

const PAIRS: usize = 10_000;

/// A pairs file of `count` examples of about 0.5 KB.
fn write_pairs(path: &Path, count: usize) {
    let lines: String = (0..count)
        .map(|i| {
            json!({
                "id": format!("p{i:05}"),
                "context": format!("POST: question {i} about a lease, a landlord and a deposit that was not returned. {}", "More detail about the flat. ".repeat(12)),
                "response_a": format!("Landlord kept deposit {i}; asks how to get it back."),
                "response_b": "Asks about flats in general.",
                "label": if i % 2 == 0 { "a" } else { "b" },
            })
            .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(path, lines).expect("the pairs file is written");
}

fn write_experiment(dir: &Path, data: &Path) -> PathBuf {
    let path = dir.join("exp.yaml");
    let yaml = format!(
        "name: bench\ntask: summarization\n\
         dataset: {{ format: pairs, path: {} }}\n\
         labelers:\n  sim: {{ backend: simulated, accuracy: 0.8, position_bias: 0.6, seed: 3 }}\n",
        data.display()
    );
    std::fs::write(&path, yaml).expect("the experiment is written");
    path
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("a folder");
    let pairs = dir.path().join("pairs.jsonl");
    write_pairs(&pairs, PAIRS);
    let experiment = write_experiment(dir.path(), &pairs);
    let prepared = rlaif::prepare::prepare(&experiment).expect("the experiment prepares");
    let cell = &prepared.expansion.cells[0];
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");

    // The pairs labeled into `labeled.jsonl`, with the cache, in `results`.
    let labeling_into = |results: &Path| LabelOptions {
        input: pairs.clone(),
        output: results.join("labeled.jsonl"),
        results: results.to_path_buf(),
        quiet: true,
    };

    let mut group = c.benchmark_group("label_10k");
    group.sample_size(10);
    group.throughput(Throughput::Elements(PAIRS as u64));
    group.bench_function("label", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("a results folder"),
            |results| {
                let options = labeling_into(results.path());
                let outcome = runtime
                    .block_on(label::label(&prepared, cell, &options))
                    .expect("labeling works");
                assert_eq!(outcome.labeled, PAIRS);
                results
            },
            BatchSize::PerIteration,
        );
    });
    let finished = tempfile::tempdir().expect("a results folder");
    runtime
        .block_on(label::label(
            &prepared,
            cell,
            &labeling_into(finished.path()),
        ))
        .expect("labeling works");
    group.bench_function("resume", |b| {
        b.iter_batched(
            || {
                let results = tempfile::tempdir().expect("a results folder");
                for name in ["labeled.jsonl", rlaif::cache::FILE] {
                    std::fs::copy(finished.path().join(name), results.path().join(name))
                        .expect("the finished labeling is copied");
                }
                results
            },
            |results| {
                let options = labeling_into(results.path());
                let outcome = runtime
                    .block_on(label::label(&prepared, cell, &options))
                    .expect("labeling resumes");
                assert_eq!((outcome.labeled, outcome.already), (0, PAIRS));
                results
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("run", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("a results folder"),
            |results| {
                let options = RunOptions {
                    results: results.path().to_path_buf(),
                    fresh: true,
                    quiet: true,
                };
                let outcome = runtime
                    .block_on(runner::run(&prepared, &options))
                    .expect("the run works");
                assert_eq!(outcome.judged, PAIRS);
                results
            },
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! What the harness costs on top of HTTP, against a fake OpenAI-compatible server on
//! loopback.
//!
//! - `overhead/bare_reqwest` sends 2,000 completions requests with a bare reqwest loop
//!   at concurrency 16; `overhead/rlaif_run` runs an experiment making the same number
//!   of scoring calls at the same concurrency (rendering, cache, journal, metrics and
//!   reports included) against the same zero-latency server. The ratio of the two is
//!   the harness's overhead.
//! - `latency_50ms/rlaif_run` runs 1,280 scoring calls against a server answering in
//!   50 ms, at concurrency 64: the ideal is 64 / 0.05 s = 1,280 calls/s, one second.

#[path = "../tests/support/fake_server.rs"]
mod fake_server;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use serde_json::json;

use fake_server::{FakeConfig, FakeServer};
use rlaif::runner::{self, RunOptions};

/// A pairs file of `count` short examples.
fn write_pairs(dir: &Path, count: usize) -> PathBuf {
    let path = dir.join("pairs.jsonl");
    let lines: String = (0..count)
        .map(|i| {
            json!({
                "id": format!("p{i:05}"),
                "context": format!("POST: question number {i} about a lease and a landlord."),
                "response_a": format!("A faithful summary of question {i}."),
                "response_b": "An unrelated remark.",
                "label": "a",
            })
            .to_string()
                + "\n"
        })
        .collect();
    std::fs::write(&path, lines).expect("the pairs file is written");
    path
}

fn write_experiment(dir: &Path, url: &str, examples: usize, concurrency: usize) -> PathBuf {
    let pairs = write_pairs(dir, examples);
    let path = dir.join("exp.yaml");
    let yaml = format!(
        "name: bench\ntask: summarization\n\
         dataset: {{ format: pairs, path: {} }}\n\
         labelers:\n  srv: {{ backend: openai, base_url: \"{url}\", model: fake-model, max_concurrency: {concurrency} }}\n",
        pairs.display()
    );
    std::fs::write(&path, yaml).expect("the experiment is written");
    path
}

/// One full `rlaif run` into a fresh results folder, so every call goes to the server.
async fn harness_run(experiment: &Path) -> Duration {
    let results = tempfile::tempdir().expect("a results folder");
    let prepared = rlaif::prepare::prepare(experiment).expect("the experiment prepares");
    let options = RunOptions {
        results: results.path().to_path_buf(),
        fresh: false,
        quiet: true,
    };
    let started = Instant::now();
    let outcome = runner::run(&prepared, &options)
        .await
        .expect("the run completes");
    let elapsed = started.elapsed();
    assert_eq!(outcome.failed, 0);
    elapsed
}

/// `iters` full runs, timed without their set-up.
async fn harness_runs(experiment: &Path, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        total += harness_run(experiment).await;
    }
    total
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// The same number of requests with nothing but reqwest.
async fn bare_loop(client: &reqwest::Client, url: &str, calls: usize, concurrency: usize) {
    let endpoint = format!("{url}/completions");
    futures::stream::iter(0..calls)
        .map(|i| {
            let body = json!({
                "model": "fake-model",
                "prompt": format!("prompt {i}"),
                "max_tokens": 1,
                "temperature": 0,
                "logprobs": 20,
            });
            let request = client.post(&endpoint).json(&body);
            async move {
                let response = request.send().await.expect("the server answers");
                let _: serde_json::Value = response.json().await.expect("JSON comes back");
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
}

fn overhead(c: &mut Criterion) {
    let runtime = runtime();
    let server = runtime.block_on(FakeServer::with(FakeConfig::default().varying()));
    let dir = tempfile::tempdir().expect("a folder");
    // 1,000 examples x 2 orders = 2,000 scoring calls.
    let experiment = write_experiment(dir.path(), &server.url(), 1000, 16);
    let client = reqwest::Client::new();

    let mut group = c.benchmark_group("overhead");
    group.sample_size(10);
    group.throughput(Throughput::Elements(2000));
    group.bench_function("bare_reqwest", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    bare_loop(&client, &server.url(), 2000, 16).await;
                }
                started.elapsed()
            })
        })
    });
    group.bench_function("rlaif_run", |b| {
        b.iter_custom(|iters| runtime.block_on(harness_runs(&experiment, iters)))
    });
    group.finish();
}

fn latency(c: &mut Criterion) {
    let runtime = runtime();
    let config = FakeConfig::default()
        .varying()
        .latency(Duration::from_millis(50));
    let server = runtime.block_on(FakeServer::with(config));
    let dir = tempfile::tempdir().expect("a folder");
    // 640 examples x 2 orders = 1,280 calls: one second at the ideal rate.
    let experiment = write_experiment(dir.path(), &server.url(), 640, 64);

    let mut group = c.benchmark_group("latency_50ms");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1280));
    group.bench_function("rlaif_run", |b| {
        b.iter_custom(|iters| runtime.block_on(harness_runs(&experiment, iters)))
    });
    group.finish();
}

criterion_group!(benches, overhead, latency);
criterion_main!(benches);

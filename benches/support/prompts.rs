//! What the embedded benchmarks share: the ladder's model files and real TL;DR prompts.
#![allow(dead_code)] // each benchmark uses part of it

use std::path::{Path, PathBuf};

use rlaif::embedded::engine::Engine;
use rlaif::grid::Cell;
use rlaif::prepare::Prepared;
use rlaif::prompt::{Order, Prompt};

pub fn model_file(name: &str) -> PathBuf {
    let mut progress = rlaif::models::ConsoleProgress::new(false);
    rlaif::models::ensure(name, &mut progress).expect("the model can be pulled")
}

pub fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

/// The experiment `name` on 50 high-confidence TL;DR pairs with the simulated labeler,
/// its exemplars (when asked for) from the held-out split, and `grid`, prepared.
fn fifty_tldr_pairs(name: &str, grid: &str, exemplars: bool) -> Prepared {
    let comparisons = shared_data().join("openai-tldr-comparisons/comparisons.jsonl");
    let path = comparisons.display();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let exemplars = if exemplars {
        format!(
            "exemplars: {{ format: tldr, path: {path}, high_confidence: true, split: {{ holdout: 0.1, keep: holdout }} }}\n"
        )
    } else {
        String::new()
    };
    let yaml = format!(
        "name: {name}\n\
         task: summarization\n\
         dataset: {{ format: tldr, path: {path}, high_confidence: true, split: {{ holdout: 0.1, keep: rest }}, limit: 50, seed: 7 }}\n\
         {exemplars}\
         labelers:\n\
         \x20 small: {{ backend: simulated }}\n\
         grid:\n\
         {grid}"
    );
    let file = dir.path().join("bench.yaml");
    std::fs::write(&file, yaml).expect("writable");
    rlaif::prepare::prepare(&file).expect("the bench experiment is valid")
}

/// Per example and order, the cell's prompt, in the order the runner sends them.
fn rendered(prepared: &Prepared, cell: &Cell) -> Vec<Prompt> {
    let prompts = prepared.prompts(cell).expect("renders");
    prepared
        .dataset
        .examples
        .iter()
        .flat_map(|example| {
            [Order::Ab, Order::Ba].map(|order| prompts.render(example, order).expect("renders"))
        })
        .collect()
}

/// The Table-2 grid on the 50 pairs: per cell, the scoring prompts of every pair in
/// both orders.
pub fn table_two_prompts() -> Vec<Vec<String>> {
    let prepared = fifty_tldr_pairs(
        "bench-table-two",
        "\x20 preamble: [base, detailed]\n\x20 few_shot: [0, 1, 2]\n",
        true,
    );
    prepared
        .expansion
        .cells
        .iter()
        .map(|cell| {
            rendered(&prepared, cell)
                .iter()
                .map(Prompt::scoring_text)
                .collect()
        })
        .collect()
}

/// Detailed + CoT 0-shot on the 50 pairs: per pair and order, the prompt a rationale
/// is written after and scored after.
pub fn chain_of_thought_prompts() -> Vec<Prompt> {
    let prepared = fifty_tldr_pairs(
        "bench-cot",
        "\x20 preamble: [detailed]\n\x20 cot: [true]\n",
        false,
    );
    rendered(&prepared, &prepared.expansion.cells[0])
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

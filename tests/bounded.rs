//! Memory stays bounded on large inputs: a 100,000-pair run and a 100,000-pair `label`
//! on the simulated labeler, their peak resident memory read from the kernel
//! (`getrusage` of the children, `ru_maxrss`). This file holds one test, so that no
//! other child counts.
//!
//! The pairs are 0.9 KB each (a context of 100 words and two replies of 10-40 words),
//! a little shorter than HH-RLHF's 1 KB; the run holds their text (about 90 MB) and a
//! compact record per judgment, the label command neither.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use nix::sys::resource::{UsageWho, getrusage};

/// Writes `count` seeded pairs of about 1 KB to `path`.
fn write_pairs(path: &Path, count: usize) {
    const WORDS: [&str; 20] = [
        "the", "a", "cat", "dog", "post", "summary", "reddit", "user", "wrote", "about", "their",
        "landlord", "job", "friend", "money", "car", "school", "weekend", "plan", "advice",
    ];
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |below: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    };
    let mut text = |words: u64| -> String {
        (0..words)
            .map(|_| WORDS[next(WORDS.len() as u64) as usize])
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for index in 0..count {
        let context = text(100);
        let a_words = 10 + index as u64 % 31;
        let b_words = 10 + (index as u64 * 7) % 31;
        let line = serde_json::json!({
            "id": format!("p{index}"),
            "context": context,
            "response_a": text(a_words),
            "response_b": text(b_words),
            "label": if index % 2 == 0 { "a" } else { "b" },
        });
        writeln!(file, "{line}").unwrap();
    }
}

/// Runs rlaif with `args` to completion and returns the peak resident memory of the
/// largest child this test has run so far, in MB: call in order of expected size.
fn run_for_peak_mb(args: &[&str]) -> f64 {
    let status = Command::new(env!("CARGO_BIN_EXE_rlaif"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("the rlaif binary runs");
    assert!(status.success(), "rlaif {args:?} failed: {status}");
    let children = getrusage(UsageWho::RUSAGE_CHILDREN).expect("getrusage works on Linux");
    // Linux reports the largest child's maximum resident set size, in kilobytes.
    children.max_rss() as f64 / 1024.0
}

#[test]
fn a_hundred_thousand_pairs_run_and_label_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs.jsonl");
    write_pairs(&pairs, 100_000);
    // The same seed: the first lines of the whole file. Written, not read back: Linux
    // counts this process's own peak into a child's ru_maxrss (recorded at exec), so
    // this process must stay small for the children's figures to be theirs.
    let tenth = dir.path().join("tenth.jsonl");
    write_pairs(&tenth, 10_000);
    write_pairs(&dir.path().join("one.jsonl"), 1);
    let write_experiment = |name: &str, data: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "name: big\n\
                 task: summarization\n\
                 dataset: {{ format: pairs, path: {data} }}\n\
                 labelers:\n\
                 \x20 sim: {{ backend: simulated, accuracy: 0.8, position_bias: 0.6, seed: 3 }}\n\
                 grid:\n\
                 \x20 preamble: [base]\n"
            ),
        )
        .unwrap();
        path.to_str().unwrap().to_owned()
    };
    // The labeling experiment's own dataset is one pair, so what is measured is labeling.
    let small = write_experiment("small.yaml", "one.jsonl");
    let big = write_experiment("big.yaml", "pairs.jsonl");
    let results = dir.path().join("results");
    let results = results.to_str().unwrap();
    let label = |input: &Path, output: &str| {
        let output = dir.path().join(output);
        let peak = run_for_peak_mb(&[
            "label",
            &small,
            "--cell",
            "base/0-shot/sim",
            "--input",
            input.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            "--results",
            results,
            "--quiet",
        ]);
        (
            peak,
            std::fs::read_to_string(&output).unwrap().lines().count(),
        )
    };

    // The kernel reports the largest child so far: smallest first.
    let (label_tenth, written) = label(&tenth, "tenth-labeled.jsonl");
    assert_eq!(written, 10_000);
    let (label_all, written) = label(&pairs, "labeled.jsonl");
    assert_eq!(written, 100_000);
    eprintln!("label: peak {label_tenth:.0} MB for 10,000 pairs, {label_all:.0} MB for 100,000");
    // Ten times the pairs add two digests each (about 3 MB), nothing that grows with text.
    assert!(
        label_all - label_tenth < 10.0,
        "label grew from {label_tenth:.0} MB to {label_all:.0} MB"
    );

    let run = run_for_peak_mb(&["run", &big, "--results", results, "--quiet"]);
    eprintln!("run of 100,000 pairs: peak {run:.0} MB");
    assert!(run < 200.0, "the run peaked at {run:.0} MB");
}

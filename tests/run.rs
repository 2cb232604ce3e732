//! `rlaif run` end to end through the real binary: the results folder and its
//! contracts, resuming, fresh runs, the run lock, and failed calls.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn rlaif(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rlaif"))
        .args(args)
        .output()
        .expect("the rlaif binary runs")
}

/// An experiment file and a results root in a fresh folder.
struct Workspace {
    dir: TempDir,
    file: PathBuf,
}

impl Workspace {
    fn new(yaml: &str) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("exp.yaml");
        let text = yaml.replace("{fixtures}", &fixtures().display().to_string());
        std::fs::write(&file, text).unwrap();
        Workspace { dir, file }
    }

    fn results(&self) -> PathBuf {
        self.dir.path().join("results")
    }

    fn run(&self, extra: &[&str]) -> Output {
        let file = self.file.display().to_string();
        let results = self.results().display().to_string();
        let mut args = vec![
            "run",
            file.as_str(),
            "--results",
            results.as_str(),
            "--quiet",
        ];
        args.extend_from_slice(extra);
        rlaif(&args)
    }

    /// The only run folder of the experiment `name`.
    fn run_dirs(&self, name: &str) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(self.results().join(name))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.is_dir())
            .collect();
        dirs.sort();
        dirs
    }
}

const SIMULATED: &str = "\
name: sim
task: summarization
dataset: { format: pairs, path: {fixtures}/pairs.jsonl }
exemplars: { format: pairs, path: {fixtures}/exemplars.jsonl }
labelers:
  good: { backend: simulated, accuracy: 0.9, seed: 1 }
  biased: { backend: simulated, accuracy: 0.9, position_bias: 0.8, seed: 2 }
grid:
  preamble: [base, detailed]
  cot: [false, true]
  labeler: [good, biased]
";

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[track_caller]
fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_run_writes_every_result_file_and_honours_the_contracts() {
    let workspace = Workspace::new(SIMULATED);
    let output = workspace.run(&[]);
    assert_success(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("report:"), "{stdout}");

    let dirs = workspace.run_dirs("sim");
    assert_eq!(dirs.len(), 1);
    let run = &dirs[0];
    for file in [
        "experiment.yaml",
        "manifest.json",
        "judgments.jsonl",
        "summary.json",
        "cells.csv",
        "report.md",
    ] {
        assert!(run.join(file).is_file(), "{file} is written");
    }
    assert!(!run.join("run.lock").exists(), "the lock is released");

    // 8 cells x 8 examples, one line each.
    let journal = std::fs::read_to_string(run.join("judgments.jsonl")).unwrap();
    let judgments: Vec<Value> = journal
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(judgments.len(), 64);
    for judgment in &judgments {
        for field in ["cell", "example", "orders", "p_a", "ai", "human", "score"] {
            assert!(
                judgment.get(field).is_some(),
                "judgment has {field}: {judgment}"
            );
        }
        let orders = judgment["orders"].as_array().unwrap();
        assert_eq!(orders.len(), 2, "both orders by default");
        assert_eq!(orders[0]["order"], "ab");
        assert_eq!(orders[1]["order"], "ba");
        assert!(orders[0]["samples"].as_array().unwrap().len() == 1);
    }

    let summary = json(&run.join("summary.json"));
    assert_eq!(summary["experiment"], "sim");
    assert_eq!(
        summary["run_id"].as_str().unwrap(),
        run.file_name().unwrap().to_str().unwrap()
    );
    let cells = summary["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 8);
    for cell in cells {
        for field in [
            "name",
            "id",
            "settings",
            "n",
            "alignment",
            "ci_low",
            "ci_high",
            "tied_with_best",
            "position_bias",
            "prefer_first",
            "prefer_longer",
            "ece",
            "calls",
            "prompt_tokens",
            "completion_tokens",
            "cache_hits",
            "failures",
        ] {
            assert!(
                cell.get(field).is_some(),
                "summary cell has {field}: {cell}"
            );
        }
        assert_eq!(cell["n"], 8);
    }
    let alignments: Vec<f64> = cells
        .iter()
        .map(|cell| cell["alignment"].as_f64().unwrap())
        .collect();
    assert!(
        alignments.windows(2).all(|pair| pair[0] >= pair[1]),
        "ranked best first: {alignments:?}"
    );
    // The position-biased labeler prefers slot 1 far more often.
    let prefer_first = |labeler: &str| -> f64 {
        let picked: Vec<f64> = cells
            .iter()
            .filter(|cell| cell["settings"]["labeler"] == labeler)
            .map(|cell| cell["prefer_first"].as_f64().unwrap())
            .collect();
        picked.iter().sum::<f64>() / picked.len() as f64
    };
    assert!(prefer_first("biased") > prefer_first("good") + 0.2);

    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        report.contains("simulat"),
        "reports name the simulation: {report}"
    );
    let csv = std::fs::read_to_string(run.join("cells.csv")).unwrap();
    assert_eq!(csv.lines().count(), 9, "a header and one row per cell");

    let manifest = json(&run.join("manifest.json"));
    assert_eq!(manifest["status"], "complete");
    assert_eq!(manifest["judgments"], 64);
}

#[test]
fn running_the_same_file_again_resumes_and_pays_nothing() {
    let workspace = Workspace::new(SIMULATED);
    assert_success(&workspace.run(&[]));
    let run = workspace.run_dirs("sim").remove(0);
    let first = std::fs::read(run.join("summary.json")).unwrap();
    let report = std::fs::read(run.join("report.md")).unwrap();
    let first_manifest = json(&run.join("manifest.json"));
    assert_eq!(
        first_manifest["total_calls_made"],
        first_manifest["calls_made"]
    );

    assert_success(&workspace.run(&[]));
    assert_eq!(workspace.run_dirs("sim").len(), 1, "the same run folder");
    assert_eq!(std::fs::read(run.join("summary.json")).unwrap(), first);
    assert_eq!(std::fs::read(run.join("report.md")).unwrap(), report);
    let manifest = json(&run.join("manifest.json"));
    assert_eq!(manifest["calls_made"], 0);
    assert_eq!(
        manifest["total_calls_made"], first_manifest["calls_made"],
        "the first process's calls still count"
    );
    assert!(
        manifest["total_wall_seconds"].as_f64() >= first_manifest["wall_seconds"].as_f64(),
        "the first process's time still counts"
    );
    assert!(
        manifest["resumed_unix"].is_u64(),
        "a resumption is recorded as one"
    );
    assert!(manifest["started_unix"].as_u64() <= manifest["resumed_unix"].as_u64());
    let lines = std::fs::read_to_string(run.join("judgments.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 64, "nothing judged twice");
}

#[test]
fn extending_the_grid_reuses_the_cache() {
    let workspace = Workspace::new(SIMULATED);
    assert_success(&workspace.run(&[]));
    let extended = std::fs::read_to_string(&workspace.file).unwrap().replace(
        "cot: [false, true]",
        "cot: [false, true]\n  few_shot: [0, 1]",
    );
    std::fs::write(&workspace.file, extended).unwrap();
    assert_success(&workspace.run(&[]));
    let dirs = workspace.run_dirs("sim");
    assert_eq!(dirs.len(), 2, "a changed grid is a new run");
    let newer = dirs
        .iter()
        .map(|dir| json(&dir.join("manifest.json")))
        .find(|manifest| manifest["cells"] == 16)
        .unwrap();
    // The 8 zero-shot cells were answered before; only the 1-shot cells are new calls.
    assert!(newer["calls_from_cache"].as_u64().unwrap() > 0);
}

/// Self-consistency samples go to the labeler together (the simulated labeler takes
/// them in one call, as the embedded one does): each is still cached on its own, so
/// asking for more samples pays only for the new ones.
#[test]
fn more_samples_pay_only_for_the_new_ones() {
    let yaml = "\
name: sc
task: summarization
dataset: { format: pairs, path: {fixtures}/pairs.jsonl }
labelers:
  good: { backend: simulated, accuracy: 0.9, seed: 1 }
grid:
  cot: [true]
  self_consistency: [{ samples: 4, temperature: 0.7 }]
";
    let workspace = Workspace::new(yaml);
    assert_success(&workspace.run(&[]));
    // 8 pairs x 2 orders x 4 samples, each a rationale and a score after it.
    let first = json(&workspace.run_dirs("sc")[0].join("manifest.json"));
    assert_eq!(first["calls_made"], 128);

    let more = std::fs::read_to_string(&workspace.file)
        .unwrap()
        .replace("samples: 4", "samples: 6");
    std::fs::write(&workspace.file, more).unwrap();
    assert_success(&workspace.run(&[]));
    let dirs = workspace.run_dirs("sc");
    assert_eq!(
        dirs.len(),
        2,
        "more samples make another cell, so another run"
    );
    let second = dirs
        .iter()
        .map(|dir| json(&dir.join("manifest.json")))
        .find(|manifest| manifest["calls_made"] != 128)
        .unwrap();
    assert_eq!(second["calls_made"], 64, "samples 4 and 5 of every order");
    assert_eq!(second["calls_from_cache"], 128);

    // Every order carries its six samples in order, each with its own rationale.
    let judgments = dirs
        .iter()
        .map(|dir| std::fs::read_to_string(dir.join("judgments.jsonl")).unwrap())
        .find(|text| text.contains("rationale 5"))
        .unwrap();
    for line in judgments.lines() {
        let judgment: Value = serde_json::from_str(line).unwrap();
        for order in judgment["orders"].as_array().unwrap() {
            let rationales: Vec<&str> = order["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|sample| sample["rationale"].as_str().unwrap())
                .collect();
            let expected: Vec<String> = (0..6)
                .map(|sample| format!(" Simulated rationale {sample} (temperature 0.7)."))
                .collect();
            assert_eq!(rationales, expected);
            for sample in order["samples"].as_array().unwrap() {
                assert_eq!(sample["rationale_capped"], false, "{judgment}");
            }
        }
    }
}

#[test]
fn fresh_starts_a_new_run_folder() {
    let workspace = Workspace::new(SIMULATED);
    assert_success(&workspace.run(&[]));
    assert_success(&workspace.run(&["--fresh"]));
    let dirs = workspace.run_dirs("sim");
    assert_eq!(dirs.len(), 2);
    assert!(dirs[1].to_str().unwrap().ends_with("-2"));
    // Answered from the cache this time, the cells' figures are still the same.
    let cells = |dir: &PathBuf| json(&dir.join("summary.json"))["cells"].clone();
    assert_eq!(cells(&dirs[0]), cells(&dirs[1]));
    assert_eq!(json(&dirs[1].join("manifest.json"))["calls_made"], 0);
}

#[test]
fn a_locked_run_folder_is_refused_naming_the_process() {
    let workspace = Workspace::new(SIMULATED);
    assert_success(&workspace.run(&[]));
    let run = workspace.run_dirs("sim").remove(0);
    // Process 1 always exists: the folder looks owned by a live run.
    std::fs::write(run.join("run.lock"), "1").unwrap();
    let output = workspace.run(&[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("another rlaif (process 1)"), "{stderr}");
}

#[test]
fn an_unreachable_server_fails_its_preflight_with_exit_2() {
    let workspace = Workspace::new(
        "name: down\ntask: summarization\ndataset: { format: pairs, path: {fixtures}/pairs.jsonl }\nlabelers: { srv: { backend: openai, base_url: \"http://127.0.0.1:9/v1\", model: m } }\n",
    );
    let output = workspace.run(&[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("labeler `srv` failed its preflight"),
        "{stderr}"
    );
    assert!(stderr.contains("127.0.0.1:9"), "names the server: {stderr}");
}

/// Damages the results root's cache as `how` says: cut in half, or a run of bytes in the
/// middle overwritten.
fn damage(cache: &Path, how: &str) {
    let mut bytes = std::fs::read(cache).unwrap();
    match how {
        "truncated" => bytes.truncate(bytes.len() / 2),
        _ => {
            let middle = bytes.len() / 2;
            bytes[middle..middle + 3000].fill(0x5a);
        }
    }
    std::fs::write(cache, bytes).unwrap();
}

#[test]
fn a_damaged_cache_is_refused_checked_and_repaired_keeping_what_reads() {
    for how in ["truncated", "overwritten"] {
        let workspace = Workspace::new(&SIMULATED.replace(
            "labeler: [good, biased]",
            "labeler: [good, biased]\n  few_shot: [0, 1]",
        ));
        assert_success(&workspace.run(&[]));
        let run = workspace.run_dirs("sim").remove(0);
        let made = json(&run.join("manifest.json"))["calls_made"]
            .as_u64()
            .unwrap();
        let results = workspace.results().display().to_string();
        let cache = workspace.results().join("cache.sqlite");
        damage(&cache, how);

        // A run refuses the damaged file, naming it and the commands that help.
        let output = workspace.run(&[]);
        assert_eq!(output.status.code(), Some(2), "{how}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("the call cache {} is damaged", cache.display())),
            "{how}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("rlaif cache check {results}")),
            "{stderr}"
        );
        assert!(
            stderr.contains(&format!("rlaif cache repair {results}")),
            "{stderr}"
        );

        let check = rlaif(&["cache", "check", &results]);
        assert_eq!(check.status.code(), Some(2), "{how}");
        let report = String::from_utf8_lossy(&check.stdout);
        assert!(report.contains("is damaged"), "{how}: {report}");
        assert!(report.contains("calls readable:"), "{how}: {report}");

        let repair = rlaif(&["cache", "repair", &results]);
        assert_success(&repair);
        let report = String::from_utf8_lossy(&repair.stdout).into_owned();
        let kept: u64 = report
            .split("kept ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|count| count.parse().ok())
            .unwrap_or_else(|| panic!("{how}: {report}"));
        assert!(kept > 0 && kept < made, "{how}: kept {kept} of {made}");
        let aside: Vec<String> = std::fs::read_dir(workspace.results())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with("cache.sqlite.damaged-"))
            .collect();
        assert_eq!(aside.len(), 1, "{how}: the damaged file is kept aside");
        assert!(report.contains(&aside[0]), "{how}: {report}");
        assert_success(&rlaif(&["cache", "check", &results]));

        // What was lost is made again, and only that.
        assert_success(&workspace.run(&["--fresh"]));
        let fresh = workspace.run_dirs("sim").remove(1);
        let manifest = json(&fresh.join("manifest.json"));
        assert_eq!(
            manifest["calls_made"].as_u64().unwrap(),
            made - kept,
            "{how}"
        );
        let cells = |dir: &PathBuf| json(&dir.join("summary.json"))["cells"].clone();
        assert_eq!(cells(&run), cells(&fresh), "{how}");
    }
}

#[test]
fn a_second_run_of_a_busy_folder_is_refused_naming_the_first() {
    // A real second process, not a lock written by hand: the first run is held in its
    // preflight by a server that never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let workspace = Workspace::new(&format!(
        "name: busy\ntask: summarization\ndataset: {{ format: pairs, path: {{fixtures}}/pairs.jsonl }}\nlabelers: {{ srv: {{ backend: openai, base_url: \"{url}\", model: m, timeout_secs: 30 }} }}\n"
    ));
    let file = workspace.file.display().to_string();
    let results = workspace.results().display().to_string();
    let mut first = Command::new(env!("CARGO_BIN_EXE_rlaif"))
        .args(["run", &file, "--results", &results, "--quiet"])
        .spawn()
        .unwrap();
    let lock = || {
        std::fs::read_dir(workspace.results().join("busy"))
            .ok()?
            .flatten()
            .map(|entry| entry.path().join("run.lock"))
            .find(|lock| lock.is_file())
    };
    let start = std::time::Instant::now();
    while lock().is_none() {
        assert!(
            start.elapsed().as_secs() < 20,
            "the first run takes its lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let second = workspace.run(&[]);
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!("another rlaif (process {})", first.id())),
        "{stderr}"
    );
    drop(listener);
}

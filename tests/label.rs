//! `rlaif label` through the real binary on the simulated labeler: the output's fields
//! against the run's own judgments, resuming (a torn last line included), and the
//! errors a user meets.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

const EXPERIMENT: &str = "\
name: sim
task: summarization
dataset: { format: pairs, path: {fixtures}/pairs.jsonl }
labelers:
  biased: { backend: simulated, accuracy: 0.8, position_bias: 0.7, seed: 5 }
grid:
  preamble: [base, detailed]
";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn rlaif(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rlaif"))
        .args(args)
        .output()
        .expect("the rlaif binary runs")
}

struct Workspace {
    dir: TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let text = EXPERIMENT.replace("{fixtures}", &fixtures().display().to_string());
        std::fs::write(dir.path().join("exp.yaml"), text).unwrap();
        Workspace { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn label(&self, cell: &str, input: &str, output: &str) -> Output {
        rlaif(&[
            "label",
            &self.arg("exp.yaml"),
            "--cell",
            cell,
            "--input",
            &self.arg(input),
            "--output",
            &self.arg(output),
            "--results",
            &self.arg("results"),
            "--quiet",
        ])
    }

    fn lines(&self, name: &str) -> Vec<Value> {
        std::fs::read_to_string(self.path(name))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Writes the fixture pairs without their human labels, the fourth without its id, and
/// returns them as they were (ids included).
fn unlabeled(workspace: &Workspace) -> Vec<Value> {
    let text = std::fs::read_to_string(fixtures().join("pairs.jsonl")).unwrap();
    let mut pairs: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    for pair in &mut pairs {
        pair.as_object_mut().unwrap().remove("label");
    }
    let mut written = pairs.clone();
    written[3].as_object_mut().unwrap().remove("id");
    let lines: Vec<String> = written.iter().map(Value::to_string).collect();
    std::fs::write(workspace.path("in.jsonl"), lines.join("\n") + "\n").unwrap();
    pairs
}

#[test]
fn labels_match_the_runs_judgments_field_by_field() {
    let workspace = Workspace::new();
    let inputs = unlabeled(&workspace);
    let output = workspace.label("detailed/0-shot/biased", "in.jsonl", "out.jsonl");
    assert_exit(&output, 0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("labeled 8 pairs with detailed/0-shot/biased (0 from an earlier run)"),
        "{stdout}"
    );

    // The same cell run as an experiment judges the same pairs from the same calls.
    let run = rlaif(&[
        "run",
        &workspace.arg("exp.yaml"),
        "--results",
        &workspace.arg("results"),
        "--quiet",
    ]);
    assert_exit(&run, 0);
    let run_dir = std::fs::read_dir(workspace.path("results/sim"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.is_dir())
        .unwrap();
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        manifest["calls_made"], 16,
        "the detailed cell's 16 calls come from the cache"
    );
    let judgments: Vec<Value> = std::fs::read_to_string(run_dir.join("judgments.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|judgment| judgment["cell_name"] == "detailed/0-shot/biased")
        .collect();

    let labeled = workspace.lines("out.jsonl");
    assert_eq!(labeled.len(), inputs.len());
    for (index, (line, input)) in labeled.iter().zip(&inputs).enumerate() {
        let id = input["id"].as_str().unwrap();
        let written_id = if index == 3 { "line-4" } else { id };
        assert_eq!(line["id"], written_id, "output keeps the input's order");
        assert_eq!(line["prompt"], input["context"]);
        let judgment = judgments
            .iter()
            .find(|judgment| judgment["example"] == id)
            .unwrap_or_else(|| panic!("the run judged {id}"));
        let p_a = line["p_a"].as_f64().unwrap();
        assert_eq!(line["p_a"], judgment["p_a"], "{id}");
        assert_eq!(line["ai"], judgment["ai"], "{id}");
        assert_eq!(
            line["orders"], judgment["orders"],
            "{id}: both orders' distributions"
        );
        let orders = line["orders"].as_array().unwrap();
        assert_eq!(orders.len(), 2);
        assert_eq!(
            (orders[0]["order"].as_str(), orders[1]["order"].as_str()),
            (Some("ab"), Some("ba"))
        );
        let debiased = (orders[0]["p_first"].as_f64().unwrap() + 1.0
            - orders[1]["p_first"].as_f64().unwrap())
            / 2.0;
        assert!(
            (debiased - p_a).abs() < 1e-12,
            "{id}: p_a is the mean of both orders"
        );
        let (chosen, rejected, p_chosen) = match line["ai"].as_str().unwrap() {
            "b" => ("response_b", "response_a", 1.0 - p_a),
            _ => ("response_a", "response_b", p_a),
        };
        assert_eq!(line["chosen"], input[chosen], "{id}");
        assert_eq!(line["rejected"], input[rejected], "{id}");
        assert_eq!(line["chosen_is"], &chosen[9..], "{id}");
        assert!(
            (line["p_chosen"].as_f64().unwrap() - p_chosen).abs() < 1e-12,
            "{id}"
        );
        assert!(line["p_chosen"].as_f64().unwrap() >= 0.5, "{id}");
        assert!(
            line.get("human").is_none(),
            "{id}: no human label in, none out"
        );
        let provenance = &line["provenance"];
        assert_eq!(provenance["experiment"], "sim");
        assert_eq!(provenance["cell"], "detailed/0-shot/biased");
        assert_eq!(provenance["cell_id"], judgment["cell"]);
        assert_eq!(provenance["settings"]["preamble"], "detailed");
        assert_eq!(provenance["labeler"], "biased");
        assert_eq!(provenance["backend"], "simulated");
        assert_eq!(provenance["labeler_settings"]["backend"], "simulated");
        assert_eq!(provenance["templates_sha256"], manifest["templates_sha256"]);
        assert!(
            provenance["identity"]
                .as_str()
                .unwrap()
                .starts_with("simulated"),
            "{provenance}"
        );
    }
}

#[test]
fn a_rerun_resumes_after_a_torn_line_and_pays_nothing_twice() {
    let workspace = Workspace::new();
    unlabeled(&workspace);
    assert_exit(
        &workspace.label("base/0-shot/biased", "in.jsonl", "out.jsonl"),
        0,
    );
    let complete = std::fs::read_to_string(workspace.path("out.jsonl")).unwrap();
    // A kill mid-write: three whole lines and part of the fourth.
    let cut: usize = complete
        .lines()
        .take(3)
        .map(|line| line.len() + 1)
        .sum::<usize>()
        + 40;
    std::fs::write(workspace.path("out.jsonl"), &complete[..cut]).unwrap();

    let output = workspace.label("base/0-shot/biased", "in.jsonl", "out.jsonl");
    assert_exit(&output, 0);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("labeled 5 pairs with base/0-shot/biased (3 from an earlier run)"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(workspace.path("out.jsonl")).unwrap(),
        complete
    );

    let again = workspace.label("base/0-shot/biased", "in.jsonl", "out.jsonl");
    assert_exit(&again, 0);
    assert!(String::from_utf8_lossy(&again.stdout).contains("labeled 0 pairs"));
}

#[test]
fn a_human_label_in_the_input_is_kept_beside_the_ai_label() {
    let workspace = Workspace::new();
    std::fs::copy(fixtures().join("pairs.jsonl"), workspace.path("in.jsonl")).unwrap();
    assert_exit(
        &workspace.label("base/0-shot/biased", "in.jsonl", "out.jsonl"),
        0,
    );
    for line in workspace.lines("out.jsonl") {
        assert!(
            ["a", "b", "tie"].contains(&line["human"].as_str().unwrap()),
            "{line}"
        );
    }
}

#[test]
fn bad_input_is_refused_before_any_call_naming_the_line() {
    let workspace = Workspace::new();
    let good = r#"{"id": "x", "context": "c", "response_a": "a", "response_b": "b"}"#;
    let cases = [
        (
            format!("{good}\n{{\"id\": \"y\", \"context\": \"c\", \"response_a\": \"a\"}}\n"),
            ":2: missing field `response_b`",
        ),
        (format!("{good}\n{good}\n"), ":2: duplicate id `x`"),
        (
            format!("{good}\nnot json\n"),
            ":2: expected ident at column 2",
        ),
        (
            r#"{"context": "c", "response_a": "a", "response_b": "b", "chosen": "a"}"#.to_owned(),
            ":1: unknown field `chosen`",
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(workspace.path("bad.jsonl"), &text).unwrap();
        let output = workspace.label("base/0-shot/biased", "bad.jsonl", "out.jsonl");
        assert_exit(&output, 2);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("bad.jsonl{expected}")),
            "{expected}: {stderr}"
        );
        assert!(
            !workspace.path("out.jsonl").exists(),
            "nothing written for {expected}"
        );
        assert!(
            !workspace.path("results/cache.sqlite").exists(),
            "no labeler built for {expected}"
        );
    }

    let unknown = workspace.label("base/0-shot/biassed", "bad.jsonl", "out.jsonl");
    assert_exit(&unknown, 2);
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("did you mean `base/0-shot/biased`?")
    );

    std::fs::write(workspace.path("in.jsonl"), format!("{good}\n")).unwrap();
    let same = workspace.label("base/0-shot/biased", "in.jsonl", "in.jsonl");
    assert_exit(&same, 2);
    assert!(String::from_utf8_lossy(&same.stderr).contains("are the same file"));

    let missing = workspace.label("base/0-shot/biased", "nowhere.jsonl", "out.jsonl");
    assert_exit(&missing, 2);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nowhere.jsonl"));
}

#[test]
fn a_rerun_with_another_cell_or_other_pairs_refuses_the_earlier_output() {
    let workspace = Workspace::new();
    unlabeled(&workspace);
    assert_exit(
        &workspace.label("base/0-shot/biased", "in.jsonl", "out.jsonl"),
        0,
    );
    // Lines an older rlaif wrote with the same configuration are kept.
    let labeled = std::fs::read_to_string(workspace.path("out.jsonl"))
        .unwrap()
        .replace(
            concat!("\"rlaif_version\":\"", env!("CARGO_PKG_VERSION"), "\""),
            "\"rlaif_version\":\"0.0.1\"",
        );
    assert!(labeled.contains("0.0.1"));
    std::fs::write(workspace.path("out.jsonl"), &labeled).unwrap();
    let older = workspace.label("base/0-shot/biased", "in.jsonl", "out.jsonl");
    assert_exit(&older, 0);
    assert!(String::from_utf8_lossy(&older.stdout).contains("(8 from an earlier run)"));

    let other_cell = workspace.label("detailed/0-shot/biased", "in.jsonl", "out.jsonl");
    assert_exit(&other_cell, 2);
    let stderr = String::from_utf8_lossy(&other_cell.stderr);
    assert!(
        stderr.contains(
            "out.jsonl:1: labeled with another configuration (cell, cell_id, settings differ"
        ),
        "{stderr}"
    );

    // Other pairs without ids are numbered by line, as the first ones were.
    let other: Vec<String> = (0..4)
        .map(|n| {
            serde_json::json!({"context": format!("other {n}"), "response_a": "x", "response_b": "y"})
                .to_string()
        })
        .collect();
    std::fs::write(workspace.path("other.jsonl"), other.join("\n") + "\n").unwrap();
    let other_pairs = workspace.label("base/0-shot/biased", "other.jsonl", "out.jsonl");
    assert_exit(&other_pairs, 2);
    let stderr = String::from_utf8_lossy(&other_pairs.stderr);
    assert!(
        stderr
            .contains("out.jsonl:4: id `line-4` is labeled there for another pair than line 4 of"),
        "{stderr}"
    );

    assert_eq!(
        std::fs::read_to_string(workspace.path("out.jsonl")).unwrap(),
        labeled,
        "a refused output is left as it was"
    );
}

#[test]
fn an_output_that_is_not_labeled_pairs_is_refused_untouched() {
    let workspace = Workspace::new();
    unlabeled(&workspace);
    // The pairs file named as the output, its last line without a newline: read as
    // earlier output, that line would be cut off as torn.
    let pairs = std::fs::read_to_string(fixtures().join("pairs.jsonl")).unwrap();
    let pairs = pairs.trim_end().to_owned();
    std::fs::write(workspace.path("pairs.jsonl"), &pairs).unwrap();
    let swapped = workspace.label("base/0-shot/biased", "in.jsonl", "pairs.jsonl");
    assert_exit(&swapped, 2);
    let stderr = String::from_utf8_lossy(&swapped.stderr);
    assert!(
        stderr.contains("pairs.jsonl:1: not a labeled pair (missing field"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(workspace.path("pairs.jsonl")).unwrap(),
        pairs
    );

    let no_folder = workspace.label("base/0-shot/biased", "in.jsonl", "missing/out.jsonl");
    assert_exit(&no_folder, 2);
    let stderr = String::from_utf8_lossy(&no_folder.stderr);
    assert!(
        stderr.contains("cannot write") && stderr.contains("missing/out.jsonl"),
        "{stderr}"
    );
}

#[test]
fn a_second_process_is_kept_off_an_output_being_written() {
    let workspace = Workspace::new();
    unlabeled(&workspace);
    // A live process (pid 1 always exists) holds the output.
    std::fs::write(workspace.path("out.jsonl.lock"), "1").unwrap();
    let held = workspace.label("base/0-shot/biased", "in.jsonl", "out.jsonl");
    assert_exit(&held, 1);
    let stderr = String::from_utf8_lossy(&held.stderr);
    assert!(
        stderr.contains("another rlaif (process 1) is writing")
            && stderr.contains("out.jsonl.lock"),
        "{stderr}"
    );
    assert!(!workspace.path("out.jsonl").exists());

    // One whose process is gone is taken over, and released at the end.
    std::fs::write(workspace.path("out.jsonl.lock"), "4294967294").unwrap();
    assert_exit(
        &workspace.label("base/0-shot/biased", "in.jsonl", "out.jsonl"),
        0,
    );
    assert_eq!(workspace.lines("out.jsonl").len(), 8);
    assert!(!workspace.path("out.jsonl.lock").exists());

    // While it labels, it also marks the call cache in use, which a repair respects.
    let left: Vec<_> = std::fs::read_dir(workspace.path("results"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "released at the end: {left:?}");
    std::fs::write(workspace.path("results/label-1.lock"), "1").unwrap();
    let repair = rlaif(&["cache", "repair", &workspace.arg("results")]);
    assert_exit(&repair, 1);
    let stderr = String::from_utf8_lossy(&repair.stderr);
    assert!(
        stderr.contains("is in use by process 1") && stderr.contains("label-1.lock"),
        "{stderr}"
    );
}

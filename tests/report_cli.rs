//! `rlaif report` and `rlaif compare` end to end through the real binary, on runs of
//! simulated labelers: every exporter, pivots and their errors, the paper's presets,
//! comparisons paired and independent, and bad run folders.
//!
//! Snapshots use labelers without position bias: their choices depend only on the seed
//! and the example id, not on the prompt's wording, so the tables survive template
//! edits. Run ids (hashes that include the templates) are replaced by `<run>`.

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

/// A results root in a fresh folder, and the runs made in it.
struct Workspace {
    dir: TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn results(&self) -> PathBuf {
        self.path().join("results")
    }

    /// Writes `yaml` as `<name>.yaml` (`{fixtures}` and `{dir}` stand for the fixture
    /// folder and this workspace), runs it, and returns the run folder.
    fn run(&self, name: &str, yaml: &str) -> PathBuf {
        let file = self.path().join(format!("{name}.yaml"));
        let text = yaml
            .replace("{fixtures}", &fixtures().display().to_string())
            .replace("{dir}", &self.path().display().to_string());
        std::fs::write(&file, text).unwrap();
        let file = file.display().to_string();
        let results = self.results().display().to_string();
        let output = rlaif(&["run", &file, "--results", &results, "--quiet"]);
        assert_success(&output);
        let experiment = self.results().join(name);
        let runs: Vec<PathBuf> = std::fs::read_dir(&experiment)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.is_dir())
            .collect();
        assert_eq!(runs.len(), 1, "one run of {name}");
        runs.into_iter().next().unwrap()
    }

    /// Writes a native pairs file of `n` pairs whose ids start with `prefix`; with
    /// `flip`, every label is the other side (the same ids, different data).
    fn pairs(&self, file: &str, prefix: &str, n: usize, flip: bool) -> PathBuf {
        let path = self.path().join(file);
        let mut text = String::new();
        for i in 0..n {
            let good = format!("A faithful summary of story {i}.");
            let bad = format!("Something else entirely, about topic number {i} and more.");
            let (a, b, label) = if (i % 3 == 0) != flip {
                (bad, good, "b")
            } else {
                (good, bad, "a")
            };
            let line = serde_json::json!({
                "id": format!("{prefix}-{i:02}"),
                "context": format!("POST: story number {i}."),
                "response_a": a,
                "response_b": b,
                "label": label,
            });
            text.push_str(&line.to_string());
            text.push('\n');
        }
        std::fs::write(&path, text).unwrap();
        path
    }
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

/// Runs `rlaif` and returns stdout, which must be a success.
#[track_caller]
fn stdout(args: &[&str]) -> String {
    let output = rlaif(args);
    assert_success(&output);
    String::from_utf8(output.stdout).unwrap()
}

/// Runs `rlaif`, expects exit code 2 and nothing on stdout, and returns stderr.
#[track_caller]
fn refused(args: &[&str]) -> String {
    let output = rlaif(args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(output.stdout.is_empty(), "nothing on stdout when refused");
    stderr
}

/// `text` with the run ids of `runs` replaced by `<run>`.
fn redact(text: &str, runs: &[&Path]) -> String {
    runs.iter().fold(text.to_owned(), |text, run| {
        let id = run.file_name().unwrap().to_str().unwrap();
        text.replace(id, "<run>")
    })
}

fn s(path: &Path) -> String {
    path.display().to_string()
}

/// The prompting grid of the issue: preamble x few_shot x cot, two labelers.
const GRID: &str = "\
name: grid
task: summarization
dataset: { format: pairs, path: {fixtures}/pairs.jsonl }
exemplars: { format: pairs, path: {fixtures}/exemplars.jsonl }
labelers:
  large: { backend: simulated, accuracy: 0.95, seed: 1 }
  small: { backend: simulated, accuracy: 0.6, seed: 2 }
grid:
  preamble: [base, detailed]
  few_shot: [0, 1]
  cot: [false, true]
  labeler: [large, small]
";

#[test]
fn report_prints_each_exporter_as_the_run_wrote_it() {
    let workspace = Workspace::new();
    let run = workspace.run("grid", GRID);
    let read = |file: &str| std::fs::read_to_string(run.join(file)).unwrap();

    // The default is report.md, rebuilt from summary.json and manifest.json.
    assert_eq!(stdout(&["report", &s(&run)]), read("report.md"));
    assert_eq!(
        stdout(&["report", &s(&run), "--format", "md"]),
        read("report.md")
    );
    assert_eq!(
        stdout(&["report", &s(&run), "--format", "csv"]),
        read("cells.csv")
    );
    assert_eq!(
        stdout(&["report", &s(&run), "--format", "json"]),
        read("summary.json")
    );
    let html = stdout(&["report", &s(&run), "--format", "html"]);
    assert!(
        html.starts_with("<!DOCTYPE html>"),
        "{}",
        &html[..80.min(html.len())]
    );
    if run.join("report.html").is_file() {
        assert_eq!(html, read("report.html"));
    }

    // An experiment folder with one run stands for that run.
    let experiment = workspace.results().join("grid");
    assert_eq!(stdout(&["report", &s(&experiment)]), read("report.md"));
}

#[test]
fn a_summary_older_than_an_unfinished_rerun_is_reported_with_a_note() {
    let workspace = Workspace::new();
    let run = workspace.run("grid", GRID);
    let quiet = rlaif(&["report", &s(&run)]);
    assert_success(&quiet);
    assert!(quiet.stderr.is_empty(), "a finished run needs no note");

    // A rerun (to retry failures, say) that was then interrupted leaves the earlier
    // summary beside a newer journal.
    let manifest = run.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains("\"status\": \"complete\""), "{text}");
    std::fs::write(
        &manifest,
        text.replace("\"status\": \"complete\"", "\"status\": \"interrupted\""),
    )
    .unwrap();
    let noted = rlaif(&["report", &s(&run)]);
    assert_success(&noted);
    let stderr = String::from_utf8_lossy(&noted.stderr);
    assert!(
        stderr.contains("note: the last `rlaif run` on")
            && stderr.contains(
                "was interrupted, so its summary.json is the one an earlier run completed"
            ),
        "{stderr}"
    );
    assert_eq!(
        String::from_utf8_lossy(&noted.stdout),
        std::fs::read_to_string(run.join("report.md")).unwrap(),
        "the report itself is unchanged"
    );
}

#[test]
fn a_pivot_puts_axes_on_rows_and_columns() {
    let workspace = Workspace::new();
    let run = workspace.run("grid", GRID);
    let args = |extra: &[&'static str]| {
        let mut args = vec![
            "report".to_owned(),
            s(&run),
            "--rows".to_owned(),
            "preamble,few_shot".to_owned(),
            "--cols".to_owned(),
            "cot".to_owned(),
            "--where".to_owned(),
            "labeler=small".to_owned(),
        ];
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        args
    };
    let run_args = |extra: &[&'static str]| {
        let args = args(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        redact(&stdout(&args), &[&run])
    };

    let md = run_args(&[]);
    insta::assert_snapshot!("pivot_md", md);
    assert_eq!(run_args(&["--format", "md"]), md);
    insta::assert_snapshot!("pivot_csv", run_args(&["--format", "csv"]));

    let json: Value = serde_json::from_str(&run_args(&["--format", "json"])).unwrap();
    let table = &json["tables"][0];
    assert_eq!(
        table["columns"],
        serde_json::json!(["preamble", "few_shot", "cot=false", "cot=true"])
    );
    let rows = table["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["preamble"], "base");
    assert_eq!(rows[0]["few_shot"], 0);
    let slot = &rows[0]["cot=true"];
    assert_eq!(
        slot["cell"], "base/0-shot/cot/small",
        "every number names its cell"
    );
    assert!(slot["ci_low"].as_f64().unwrap() <= slot["value"].as_f64().unwrap());

    // The simulated labeler writes a rationale for every CoT sample, and only CoT
    // cells have a share.
    let json: Value = serde_json::from_str(&run_args(&[
        "--metric",
        "rationale_written",
        "--format",
        "json",
    ]))
    .unwrap();
    for row in json["tables"][0]["rows"].as_array().unwrap() {
        assert_eq!(row["cot=true"]["value"], 1.0, "{row}");
        assert!(row["cot=false"]["value"].is_null(), "{row}");
    }
    // Its one-sentence rationales end well within the cap.
    let json: Value = serde_json::from_str(&run_args(&[
        "--metric",
        "rationale_capped",
        "--format",
        "json",
    ]))
    .unwrap();
    for row in json["tables"][0]["rows"].as_array().unwrap() {
        assert_eq!(row["cot=true"]["value"], 0.0, "{row}");
        assert!(row["cot=false"]["value"].is_null(), "{row}");
    }

    // Two axes across, another metric; the labeler is a column instead of a filter.
    let output = stdout(&[
        "report",
        &s(&run),
        "--rows",
        "cot",
        "--cols",
        "few_shot,labeler",
        "--where",
        "preamble=detailed",
        "--metric",
        "calls",
    ]);
    insta::assert_snapshot!("pivot_calls_md", redact(&output, &[&run]));
}

#[test]
fn a_pivot_refuses_axes_that_vary_unplaced() {
    let workspace = Workspace::new();
    let run = workspace.run("grid", GRID);
    let run = s(&run);
    let stderr = refused(&["report", &run, "--rows", "preamble", "--cols", "cot"]);
    assert!(
        stderr.contains("the cells differ in `few_shot` and `labeler`"),
        "names the varying axes: {stderr}"
    );
    assert!(
        stderr.contains("add them to --rows or --cols, or fix them with --where")
            && stderr.contains("--where few_shot=0 --where labeler=large"),
        "says how to fix it: {stderr}"
    );

    let stderr = refused(&["report", &run, "--rows", "preambel"]);
    assert!(stderr.contains("unknown axis `preambel`"), "{stderr}");
    assert!(stderr.contains("did you mean `preamble`?"), "{stderr}");
    let stderr = refused(&["report", &run, "--rows", "cot", "--where", "labeler=smal"]);
    assert!(stderr.contains("no cell has labeler=smal"), "{stderr}");
    assert!(stderr.contains("did you mean `small`?"), "{stderr}");
    let stderr = refused(&["report", &run, "--rows", "cot", "--cols", "cot"]);
    assert!(stderr.contains("axis `cot` is given twice"), "{stderr}");
    let stderr = refused(&["report", &run, "--rows", "cot", "--format", "html"]);
    assert!(
        stderr.contains("--format html renders the whole report"),
        "{stderr}"
    );
    // A filter without a table is a usage error.
    refused(&["report", &run, "--where", "labeler=small"]);
}

#[test]
fn presets_print_the_papers_values_beside_ours() {
    let workspace = Workspace::new();
    let run = workspace.run("grid", GRID);
    let preset = |name: &str| {
        let output = stdout(&["report", &s(&run), "--table", name]);
        assert!(
            output.contains("PaLM 2 labelers on the paper's own data")
                && output.contains("compare trends, not numbers"),
            "every preset says what the paper's values are: {output}"
        );
        redact(&output, &[&run])
    };

    let prompting = preset("prompting");
    // Summarization column of DESIGN §8, in the paper's row order.
    for row in [
        "| Base 0-shot |",
        "| 76.1% |",
        "| Detailed 8-shot | – | – | 69.8% |",
        "| Detailed + CoT 0-shot |",
        "| 78.0% |",
    ] {
        assert!(prompting.contains(row), "{row} in {prompting}");
    }
    insta::assert_snapshot!("preset_prompting", prompting);
    insta::assert_snapshot!("preset_self_consistency", preset("self-consistency"));
    let size = preset("size");
    assert!(size.contains("| PaLM 2 XS | 62.7% |"), "{size}");
    insta::assert_snapshot!("preset_size", size);
    let position = preset("position-bias");
    assert!(position.contains("| PaLM 2 XS | 56% |"), "{position}");
    insta::assert_snapshot!("preset_position_bias", position);

    // Presets take filters, and print CSV and JSON too.
    let csv = stdout(&[
        "report",
        &s(&run),
        "--table",
        "prompting",
        "--where",
        "labeler=small",
        "--format",
        "csv",
    ]);
    let header = csv.lines().next().unwrap();
    assert_eq!(
        header,
        "prompt,ours,ours ci_low,ours ci_high,paper: summarization"
    );
    assert!(csv.contains("Base 0-shot,"), "{csv}");
    assert!(csv.contains(",0.761\n"), "shares, like ours: {csv}");
    let json: Value = serde_json::from_str(&stdout(&[
        "report",
        &s(&run),
        "--table",
        "size",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(
        json["tables"].as_array().unwrap().len(),
        2,
        "ours, and the paper's sizes"
    );
    assert_eq!(json["tables"][1]["rows"][0]["alignment"], 0.78);
}

#[test]
fn the_prompting_preset_follows_the_runs_task() {
    let workspace = Workspace::new();
    let run = workspace.run(
        "helpful",
        &GRID
            .replace("name: grid", "name: helpful")
            .replace("task: summarization", "task: helpfulness"),
    );
    let output = stdout(&["report", &s(&run), "--table", "prompting"]);
    assert!(output.contains("paper: helpfulness"), "{output}");
    // Base + CoT 0-shot: 69.1 for helpfulness; the paper has no 8-shot value there.
    assert!(output.contains("| 69.1% |"), "{output}");
    assert!(
        output.contains("| Detailed 8-shot | – | – | – |"),
        "{output}"
    );
    assert!(
        !output.contains("TL;DR"),
        "TL;DR agreement is for summarization: {output}"
    );
}

/// One labeler over a data file; A and B differ in the labeler's accuracy and seed.
fn compared(data: &str, accuracy: f64, seed: u64, name: &str) -> String {
    format!(
        "\
name: {name}
task: summarization
dataset: {{ format: pairs, path: {data} }}
labelers:
  sim: {{ backend: simulated, accuracy: {accuracy}, seed: {seed} }}
grid:
  preamble: [base, detailed]
  cot: [false, true]
"
    )
}

#[test]
fn compare_pairs_runs_on_the_same_examples() {
    let workspace = Workspace::new();
    let data = s(&workspace.pairs("pairs.jsonl", "p", 30, false));
    let a = workspace.run("a", &compared(&data, 0.95, 1, "a"));
    let b = workspace.run("b", &compared(&data, 0.5, 3, "b"));
    let output = stdout(&["compare", &s(&a), &s(&b)]);
    assert!(output.contains("paired, 30 examples"), "{output}");
    assert!(!output.contains("independent,"), "{output}");
    assert!(output.contains(" * |"), "a clear drop is marked: {output}");
    insta::assert_snapshot!("compare_paired_md", redact(&output, &[&a, &b]));

    let csv = stdout(&["compare", &s(&a), &s(&b), "--format", "csv"]);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "cell,id,in,alignment_a,ci_low_a,ci_high_a,n_a,alignment_b,ci_low_b,ci_high_b,n_b,\
         difference,diff_low,diff_high,excludes_zero,resampling,paired_examples"
    );
    assert_eq!(lines.clone().count(), 4, "one row per shared cell");
    assert!(lines.all(|line| line.ends_with(",true,paired,30")), "{csv}");

    let json: Value =
        serde_json::from_str(&stdout(&["compare", &s(&a), &s(&b), "--format", "json"])).unwrap();
    let cells = json["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 4);
    for cell in cells {
        assert_eq!(cell["resampling"], "paired");
        let difference = &cell["difference"];
        let (low, value, high) = (
            difference["ci_low"].as_f64().unwrap(),
            difference["value"].as_f64().unwrap(),
            difference["ci_high"].as_f64().unwrap(),
        );
        assert!(low <= value && value <= high && high < 0.0, "{cell}");
        let a = cell["a"]["alignment"]["value"].as_f64().unwrap();
        let b = cell["b"]["alignment"]["value"].as_f64().unwrap();
        assert!(
            (b - a - value).abs() < 1e-6,
            "same examples: B − A is the paired mean"
        );
    }

    // Seeded: the same comparison twice is the same bytes.
    assert_eq!(stdout(&["compare", &s(&a), &s(&b)]), output);
    // A run compared with itself differs by nothing, exactly.
    let itself = stdout(&["compare", &s(&a), &s(&a)]);
    assert!(itself.contains("0.0 pts [0.0, 0.0]"), "{itself}");
    assert!(
        itself.contains("No difference's interval excludes 0"),
        "{itself}"
    );
}

#[test]
fn compare_resamples_runs_on_different_data_independently() {
    let workspace = Workspace::new();
    let first = s(&workspace.pairs("first.jsonl", "p", 30, false));
    let other = s(&workspace.pairs("other.jsonl", "q", 20, false));
    let a = workspace.run("a", &compared(&first, 0.9, 1, "a"));
    let b = workspace.run("b", &compared(&other, 0.9, 1, "b"));
    let output = stdout(&["compare", &s(&a), &s(&b)]);
    assert!(output.contains("independent, 30 + 20 examples"), "{output}");
    assert!(!output.contains("paired,"), "{output}");
    insta::assert_snapshot!("compare_independent_md", redact(&output, &[&a, &b]));

    // The same ids with other labels are other pairs: never paired.
    let flipped = s(&workspace.pairs("flipped.jsonl", "p", 30, true));
    let c = workspace.run("c", &compared(&flipped, 0.9, 1, "c"));
    let output = stdout(&["compare", &s(&a), &s(&c)]);
    assert!(output.contains("independent, 30 + 30 examples"), "{output}");
    assert!(output.contains("have different human labels"), "{output}");
}

#[test]
fn compare_lists_the_cells_only_one_run_has() {
    let workspace = Workspace::new();
    let data = s(&workspace.pairs("pairs.jsonl", "p", 10, false));
    let a = workspace.run("a", &compared(&data, 0.9, 1, "a"));
    let b = workspace.run(
        "b",
        &compared(&data, 0.9, 1, "b").replace("cot: [false, true]", "cot: [true]"),
    );
    let output = stdout(&["compare", &s(&a), &s(&b)]);
    assert!(output.contains("2 cells in common"), "{output}");
    assert!(
        output.contains("Only in A (2): `base/0-shot/sim`, `detailed/0-shot/sim`."),
        "{output}"
    );
    let csv = stdout(&["compare", &s(&a), &s(&b), "--format", "csv"]);
    assert_eq!(
        csv.lines().filter(|line| line.contains(",a,")).count(),
        2,
        "{csv}"
    );
}

#[test]
fn bad_run_folders_are_refused_with_the_fix() {
    let workspace = Workspace::new();
    let missing = s(&workspace.path().join("nowhere"));
    let stderr = refused(&["report", &missing]);
    assert!(stderr.contains("no run folder at"), "{stderr}");
    assert!(stderr.contains("results/<experiment>/<run-id>"), "{stderr}");

    let run = workspace.run("grid", GRID);
    // A results root is one level too high.
    let stderr = refused(&["report", &s(&workspace.results())]);
    assert!(stderr.contains("holds no run"), "{stderr}");
    assert!(stderr.contains("looks like a results root"), "{stderr}");

    // An experiment folder with two runs names them.
    let experiment = workspace.results().join("grid");
    let copy = experiment.join("copy");
    std::fs::create_dir(&copy).unwrap();
    for file in ["summary.json", "manifest.json", "judgments.jsonl"] {
        std::fs::copy(run.join(file), copy.join(file)).unwrap();
    }
    let stderr = refused(&["report", &s(&experiment)]);
    assert!(stderr.contains("holds 2 runs"), "{stderr}");
    assert!(
        stderr.contains(&s(&copy)) && stderr.contains(&s(&run)),
        "{stderr}"
    );

    // A run that never finished has no summary.json.
    std::fs::remove_file(copy.join("summary.json")).unwrap();
    let stderr = refused(&["report", &s(&copy)]);
    assert!(stderr.contains("no summary.json in"), "{stderr}");
    assert!(stderr.contains("rlaif run"), "{stderr}");

    // A malformed file is named, with the way to rewrite it.
    std::fs::write(copy.join("summary.json"), "{\"experiment\": 1}").unwrap();
    let stderr = refused(&["report", &s(&copy)]);
    assert!(stderr.contains("summary.json is malformed"), "{stderr}");
    assert!(stderr.contains("rerun the experiment"), "{stderr}");
    std::fs::copy(run.join("summary.json"), copy.join("summary.json")).unwrap();
    std::fs::write(copy.join("judgments.jsonl"), "{\"cell\": 1}\n").unwrap();
    let stderr = refused(&["compare", &s(&run), &s(&copy)]);
    assert!(
        stderr.contains("judgments.jsonl is malformed: line 1"),
        "{stderr}"
    );
    std::fs::remove_file(copy.join("judgments.jsonl")).unwrap();
    let stderr = refused(&["compare", &s(&run), &s(&copy)]);
    assert!(stderr.contains("no judgments.jsonl in"), "{stderr}");
}

//! Drives the real `rlaif` binary: validate, plan and render on good and bad experiment
//! files. Each configuration mistake has its own test asserting the message and the
//! line it points at.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rlaif(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rlaif"))
        .args(args)
        .output()
        .expect("the rlaif binary runs")
}

/// An experiment file written into a fresh folder; `{fixtures}` stands for the fixture
/// folder.
struct Experiment {
    _dir: TempDir,
    path: PathBuf,
}

impl Experiment {
    fn new(yaml: &str) -> Experiment {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exp.yaml");
        let text = yaml.replace("{fixtures}", &fixtures().display().to_string());
        std::fs::write(&path, text).unwrap();
        Experiment { _dir: dir, path }
    }

    fn run(&self, command: &str, extra: &[&str]) -> Output {
        let path = self.path.display().to_string();
        let mut args = vec![command, path.as_str()];
        args.extend_from_slice(extra);
        rlaif(&args)
    }

    /// Runs `validate`, expects exit code 2, and returns stderr.
    fn refused(&self) -> String {
        let output = self.run("validate", &[]);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
        assert!(output.stdout.is_empty(), "nothing on stdout when refused");
        stderr
    }
}

const GOOD: &str = "\
name: demo
task: summarization
dataset: { format: pairs, path: {fixtures}/pairs.jsonl }
exemplars: { format: pairs, path: {fixtures}/exemplars.jsonl }
labelers:
  sim: { backend: simulated, accuracy: 0.8 }
grid:
  preamble: [base, detailed]
  few_shot: [0, 1]
  cot: [false, true]
  self_consistency: [{samples: 1, temperature: 0.0}, {samples: 4, temperature: 0.5}]
";

/// Asserts that `stderr` holds a problem at `line` whose text contains `message`.
#[track_caller]
fn assert_problem(stderr: &str, line: usize, message: &str) {
    let located = stderr
        .lines()
        .filter(|text| text.contains("exp.yaml:"))
        .any(|text| text.contains(&format!("exp.yaml:{line}:")) && text.contains(message));
    assert!(
        located,
        "expected a problem at line {line} containing {message:?}; stderr was:\n{stderr}"
    );
}

#[test]
fn a_good_experiment_validates() {
    let output = Experiment::new(GOOD).run("validate", &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // 2 preambles x 2 few-shot x 2 cot x 2 sc = 16; the 4 no-CoT cells with sampling
    // collapse into their greedy twins.
    assert!(
        stdout.contains("12 cells (4 collapsed, 0 excluded), 8 examples"),
        "{stdout}"
    );
}

#[test]
fn a_one_cell_experiment_says_one_cell() {
    let one_cell = GOOD
        .replace("[base, detailed]", "[base]")
        .replace("few_shot: [0, 1]", "few_shot: [0]")
        .replace("cot: [false, true]", "cot: [false]")
        .replace(", {samples: 4, temperature: 0.5}", "");
    let output = Experiment::new(&one_cell).run("validate", &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("is valid: 1 cell (0 collapsed"), "{stdout}");
}

mod mistakes {
    use super::*;

    #[test]
    fn yaml_syntax_error() {
        let stderr = Experiment::new("name: demo\ngrid: { few_shot: [0, 1 }\n").refused();
        assert_problem(&stderr, 2, "YAML syntax error");
    }

    #[test]
    fn empty_file() {
        let stderr = Experiment::new("\n").refused();
        assert_problem(&stderr, 1, "the experiment file is empty");
    }

    #[test]
    fn unknown_top_level_key_suggests_the_right_one() {
        let stderr = Experiment::new(&format!("{GOOD}position_debais: both\n")).refused();
        assert_problem(
            &stderr,
            12,
            "unknown key `position_debais` in the experiment",
        );
        assert!(
            stderr.contains("did you mean `position_debias`?"),
            "{stderr}"
        );
    }

    #[test]
    fn unknown_grid_key_suggests_the_right_one() {
        let yaml = GOOD.replace(
            "  cot: [false, true]",
            "  chain_of_thought: [false, true]\n  preambel: [base]",
        );
        let stderr = Experiment::new(&yaml).refused();
        assert_problem(&stderr, 10, "unknown key `chain_of_thought` in `grid`");
        assert_problem(&stderr, 11, "unknown key `preambel` in `grid`");
        assert!(stderr.contains("did you mean `preamble`?"), "{stderr}");
        assert!(
            stderr.contains("2 problems"),
            "all problems at once: {stderr}"
        );
    }

    #[test]
    fn unknown_labeler_key() {
        let yaml = GOOD.replace("accuracy: 0.8", "accuracy: 0.8, acuracy: 0.9");
        let stderr = Experiment::new(&yaml).refused();
        assert_problem(&stderr, 6, "unknown key `acuracy` in labeler `sim`");
        assert!(stderr.contains("did you mean `accuracy`?"), "{stderr}");
    }

    #[test]
    fn key_of_another_backend() {
        let yaml = GOOD.replace("accuracy: 0.8", "accuracy: 0.8, base_url: \"http://x\"");
        let stderr = Experiment::new(&yaml).refused();
        assert_problem(&stderr, 6, "`base_url` does not apply to labeler `sim`");
    }

    #[test]
    fn unknown_labeler_in_grid() {
        let stderr = Experiment::new(&format!("{GOOD}  labeler: [sim, simm]\n")).refused();
        assert_problem(&stderr, 12, "unknown labeler `simm`");
        assert!(stderr.contains("did you mean `sim`?"), "{stderr}");
    }

    #[test]
    fn unknown_backend() {
        let yaml = GOOD.replace("backend: simulated", "backend: vllm");
        let stderr = Experiment::new(&yaml).refused();
        assert_problem(&stderr, 6, "unknown backend `vllm`");
        assert!(stderr.contains("openai, embedded, simulated"), "{stderr}");
    }

    #[test]
    fn unknown_embedded_model() {
        let yaml = GOOD.replace(
            "sim: { backend: simulated, accuracy: 0.8 }",
            "sim: { backend: embedded, model: smollm2-136m }",
        );
        let stderr = Experiment::new(&yaml).refused();
        assert_problem(&stderr, 6, "unknown embedded model `smollm2-136m`");
        assert!(stderr.contains("did you mean `smollm2-135m`?"), "{stderr}");
    }

    #[test]
    fn unknown_task() {
        let yaml = GOOD.replace("task: summarization", "task: sumarization");
        let stderr = Experiment::new(&yaml).refused();
        assert_problem(&stderr, 2, "unknown task `sumarization`");
        assert!(stderr.contains("did you mean `summarization`?"), "{stderr}");
    }

    #[test]
    fn unknown_preamble_lists_the_styles() {
        let yaml = GOOD.replace("[base, detailed]", "[base, detailled]");
        let stderr = Experiment::new(&yaml).refused();
        assert_problem(&stderr, 8, "unknown preamble style `detailled`");
        assert!(stderr.contains("base, detailed"), "{stderr}");
        assert!(stderr.contains("preamble_detailled.j2"), "{stderr}");
    }

    #[test]
    fn unknown_data_format() {
        let yaml = GOOD.replace(
            "format: pairs, path: {fixtures}/pairs",
            "format: pair, path: {fixtures}/pairs",
        );
        let stderr = Experiment::new(&yaml).refused();
        assert_problem(&stderr, 3, "unknown data format `pair`");
        assert!(stderr.contains("did you mean `pairs`?"), "{stderr}");
    }

    #[test]
    fn empty_axis() {
        let yaml = GOOD.replace("few_shot: [0, 1]", "few_shot: []");
        let stderr = Experiment::new(&yaml).refused();
        assert_problem(&stderr, 9, "axis `few_shot` is empty");
    }

    #[test]
    fn duplicate_axis_value() {
        let yaml = GOOD.replace("few_shot: [0, 1]", "few_shot: [0, 1, 0]");
        let stderr = Experiment::new(&yaml).refused();
        assert_problem(&stderr, 9, "0 appears twice in `grid.few_shot`");
    }

    #[test]
    fn wrong_type() {
        let yaml = GOOD.replace("few_shot: [0, 1]", "few_shot: [0, two]");
        let stderr = Experiment::new(&yaml).refused();
        assert_problem(&stderr, 9, "invalid type: string \"two\"");
        assert!(stderr.contains("write a whole number"), "{stderr}");
    }

    #[test]
    fn scalar_where_a_list_belongs() {
        let yaml = GOOD.replace("cot: [false, true]", "cot: true");
        let stderr = Experiment::new(&yaml).refused();
        assert_problem(&stderr, 10, "expected a sequence");
        assert!(stderr.contains("an axis is a list"), "{stderr}");
    }

    #[test]
    fn negative_temperature() {
        let yaml = GOOD.replace("temperature: 0.5", "temperature: -0.5");
        let stderr = Experiment::new(&yaml).refused();
        assert_problem(&stderr, 11, "temperature -0.5 is negative");
    }

    #[test]
    fn zero_samples() {
        let yaml = GOOD.replace("samples: 4", "samples: 0");
        let stderr = Experiment::new(&yaml).refused();
        assert_problem(&stderr, 11, "samples is 0");
    }

    #[test]
    fn negative_few_shot() {
        let yaml = GOOD.replace("few_shot: [0, 1]", "few_shot: [0, -1]");
        let stderr = Experiment::new(&yaml).refused();
        assert_problem(&stderr, 9, "few_shot -1 is negative");
    }

    #[test]
    fn few_shot_larger_than_the_pool() {
        let yaml = GOOD.replace("few_shot: [0, 1]", "few_shot: [0, 1, 4]");
        let stderr = Experiment::new(&yaml).refused();
        assert_problem(&stderr, 9, "few_shot 4 is more than the 3 usable exemplars");
    }

    #[test]
    fn few_shot_without_a_pool() {
        let yaml = GOOD.replace(
            "exemplars: { format: pairs, path: {fixtures}/exemplars.jsonl }\n",
            "",
        );
        let stderr = Experiment::new(&yaml).refused();
        assert_problem(&stderr, 8, "few_shot 1 needs exemplars");
    }

    #[test]
    fn missing_data_file() {
        let yaml = GOOD.replace("pairs.jsonl", "missing.jsonl");
        let stderr = Experiment::new(&yaml).refused();
        assert_problem(&stderr, 3, "data file `");
        assert!(stderr.contains("missing.jsonl` not found"), "{stderr}");
    }

    #[test]
    fn exemplars_overlapping_the_dataset() {
        let yaml = GOOD.replace("exemplars.jsonl", "pairs.jsonl");
        let stderr = Experiment::new(&yaml).refused();
        assert_problem(&stderr, 4, "exemplar(s) are also evaluated examples");
    }

    #[test]
    fn exemplars_sharing_a_context_with_the_dataset_under_other_ids() {
        let dir = tempfile::tempdir().unwrap();
        let pool = dir.path().join("renamed.jsonl");
        let text = std::fs::read_to_string(fixtures().join("pairs.jsonl")).unwrap();
        let first = text
            .lines()
            .next()
            .unwrap()
            .replace("\"fx-01\"", "\"copy-01\"");
        std::fs::write(&pool, first + "\n").unwrap();
        let yaml = GOOD
            .replace("{fixtures}/exemplars.jsonl", &pool.display().to_string())
            .replace("few_shot: [0, 1]", "few_shot: [0]");
        let stderr = Experiment::new(&yaml).refused();
        assert_problem(&stderr, 4, "share their context (first: `copy-01`)");
    }

    #[test]
    fn missing_required_keys_are_all_reported() {
        let stderr = Experiment::new("name: demo\ngrid: { few_shot: [0] }\n").refused();
        assert!(stderr.contains("the experiment has no `task`"), "{stderr}");
        assert!(
            stderr.contains("the experiment has no `dataset`"),
            "{stderr}"
        );
        assert!(
            stderr.contains("the experiment has no `labelers`"),
            "{stderr}"
        );
    }

    #[test]
    fn unsafe_experiment_name() {
        let yaml = GOOD.replace("name: demo", "name: ../../etc");
        let stderr = Experiment::new(&yaml).refused();
        assert_problem(&stderr, 1, "name `../../etc` cannot name a results folder");
    }

    #[test]
    fn exclude_with_an_unknown_axis() {
        let stderr = Experiment::new(&format!(
            "{GOOD}exclude:\n  - {{ cot: false, fewshot: 1 }}\n"
        ))
        .refused();
        assert_problem(&stderr, 13, "unknown axis `fewshot`");
        assert!(stderr.contains("did you mean `few_shot`?"), "{stderr}");
    }

    #[test]
    fn user_axis_named_like_a_template_variable() {
        let stderr =
            Experiment::new(&format!("{GOOD}  vars: {{ context: [x], tone: [] }}\n")).refused();
        assert_problem(
            &stderr,
            12,
            "user axis `context` cannot be a template variable",
        );
        assert_problem(&stderr, 12, "user axis `tone` is empty");
    }

    #[test]
    fn undefined_variable_in_a_user_template_names_the_template_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let task = dir.path().join("summarization");
        std::fs::create_dir(&task).unwrap();
        std::fs::write(
            task.join("preamble_friendly.j2"),
            "Hello.\nPlease be {{ tone }}.\n",
        )
        .unwrap();
        let yaml = GOOD.replace("[base, detailed]", "[friendly]")
            + &format!("templates: {}\n", dir.path().display());
        let stderr = Experiment::new(&yaml).refused();
        assert!(stderr.contains("preamble_friendly.j2:2"), "{stderr}");
        assert!(stderr.contains("undefined value `tone`"), "{stderr}");
    }

    #[test]
    fn template_syntax_error_names_the_template_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let task = dir.path().join("summarization");
        std::fs::create_dir(&task).unwrap();
        std::fs::write(task.join("preamble_broken.j2"), "One.\nTwo {% if %}.\n").unwrap();
        let yaml = GOOD.replace("[base, detailed]", "[broken]")
            + &format!("templates: {}\n", dir.path().display());
        let stderr = Experiment::new(&yaml).refused();
        assert!(stderr.contains("preamble_broken.j2:2"), "{stderr}");
        assert!(stderr.contains("syntax error"), "{stderr}");
    }

    #[test]
    fn a_user_preamble_style_is_added_by_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let task = dir.path().join("summarization");
        std::fs::create_dir(&task).unwrap();
        std::fs::write(task.join("preamble_terse.j2"), "Pick the better summary.\n").unwrap();
        let yaml = GOOD.replace("[base, detailed]", "[base, terse]")
            + &format!("templates: {}\n", dir.path().display());
        let experiment = Experiment::new(&yaml);
        let output = experiment.run("render", &["--cell", "terse/0-shot/sim", "--example", "0"]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).starts_with("Pick the better summary."));
    }

    #[test]
    fn api_key_written_in_place_of_its_variable_is_not_echoed() {
        let yaml = GOOD.replace(
            "sim: { backend: simulated, accuracy: 0.8 }",
            "sim: { backend: openai, base_url: \"http://127.0.0.1:9/v1\", model: m, api_key_env: sk-live-abcdef123456 }",
        );
        let stderr = Experiment::new(&yaml).refused();
        assert_problem(&stderr, 6, "`api_key_env` looks like an API key");
        assert!(
            !stderr.contains("abcdef123456"),
            "the key is never echoed: {stderr}"
        );
    }

    #[test]
    fn missing_experiment_file() {
        let output = rlaif(&["validate", "/nonexistent/exp.yaml"]);
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("cannot read experiment file /nonexistent/exp.yaml"),
            "{stderr}"
        );
    }
}

mod commands {
    use super::*;

    #[test]
    fn plan_json_follows_the_contract() {
        let output = Experiment::new(GOOD).run("plan", &["--format", "json"]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        let cells = plan["cells"].as_array().unwrap();
        assert_eq!(cells.len(), 12);
        for cell in cells {
            assert!(cell["name"].is_string() && cell["id"].is_string());
            assert!(cell["settings"].is_object());
        }
        let collapsed = plan["collapsed"].as_array().unwrap();
        assert_eq!(collapsed.len(), 4);
        assert!(
            collapsed[0]["reason"]
                .as_str()
                .unwrap()
                .contains("without chain-of-thought")
        );
        // 8 examples x 2 orders: no-CoT cells make 1 call, greedy CoT 2, sc4 8 per order.
        // Cells: 4 no-CoT (16 each), 4 greedy CoT (32 each), 4 sc4 (128 each).
        assert_eq!(plan["calls"], 4 * 16 + 4 * 32 + 4 * 128);
        assert!(plan["prompt_tokens"].as_u64().unwrap() > 0);
        let first = &cells[0];
        assert_eq!(first["name"], "base/0-shot/sim");
        assert_eq!(first["calls"], 16);
    }

    #[test]
    fn plan_text_names_cells_and_collapses() {
        let output = Experiment::new(GOOD).run("plan", &[]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success());
        assert!(
            stdout.contains("detailed/1-shot/cot/sc4@0.5/sim"),
            "{stdout}"
        );
        assert!(
            stdout.contains("base/0-shot/sc4@0.5/sim") || stdout.contains("-> base/0-shot/sim"),
            "{stdout}"
        );
    }

    #[test]
    fn render_prints_only_the_prompt() {
        let experiment = Experiment::new(GOOD);
        let output = experiment.run(
            "render",
            &["--cell", "base/0-shot/sim", "--example", "fx-02"],
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let ab = String::from_utf8(output.stdout).unwrap();
        assert!(ab.ends_with("Preferred Summary="), "{ab}");
        assert!(ab.contains("landlord wants to raise the rent"));
        let output = experiment.run(
            "render",
            &[
                "--cell",
                "base/0-shot/sim",
                "--example",
                "fx-02",
                "--order",
                "ba",
            ],
        );
        let ba = String::from_utf8(output.stdout).unwrap();
        assert_ne!(ab, ba);
        // In order ab response a comes first; in ba it comes second.
        let a = "Got a cat and it keeps knocking things off the table.";
        let b = "Landlord wants a 30% rent increase";
        assert!(ab.find(a).unwrap() < ab.find(b).unwrap());
        assert!(ba.find(b).unwrap() < ba.find(a).unwrap());
    }

    #[test]
    fn render_cot_steps() {
        let experiment = Experiment::new(GOOD);
        let cell = "detailed/1-shot/cot/sc4@0.5/sim";
        let ask = experiment.run("render", &["--cell", cell, "--example", "0"]);
        assert!(
            ask.status.success(),
            "{}",
            String::from_utf8_lossy(&ask.stderr)
        );
        let ask = String::from_utf8(ask.stdout).unwrap();
        assert!(!ask.ends_with("Preferred Summary="), "{ask}");
        let score = experiment.run(
            "render",
            &[
                "--cell",
                cell,
                "--example",
                "0",
                "--rationale",
                "Summary 1 is accurate.",
            ],
        );
        let score = String::from_utf8(score.stdout).unwrap();
        assert!(
            score.starts_with(ask.trim_end()),
            "the scoring prompt extends the request"
        );
        assert!(score.contains("Summary 1 is accurate."));
        assert!(score.ends_with("Preferred Summary="));
    }

    /// `--rationale` shows the scoring prompt a run would send after that text: cut at
    /// the labeler's `rationale_stop`, as a run cuts what a labeler writes.
    #[test]
    fn render_cuts_a_rationale_where_the_labeler_stops() {
        let experiment = Experiment::new(&GOOD.replace(
            "sim: { backend: simulated, accuracy: 0.8 }",
            "sim: { backend: openai, base_url: \"http://127.0.0.1:9/v1\", model: m, rationale_stop: \"###\" }",
        ));
        let score = experiment.run(
            "render",
            &[
                "--cell",
                "detailed/1-shot/cot/sim",
                "--example",
                "0",
                "--rationale",
                "Summary 1 is accurate.\n\n### Example 2\nText: one of its own",
            ],
        );
        assert!(
            score.status.success(),
            "{}",
            String::from_utf8_lossy(&score.stderr)
        );
        let score = String::from_utf8(score.stdout).unwrap();
        assert!(score.contains("Summary 1 is accurate."), "{score}");
        assert!(!score.contains("one of its own"), "{score}");
        assert!(score.ends_with("Preferred Summary="), "{score}");
    }

    #[test]
    fn render_unknown_cell_suggests_one() {
        let output =
            Experiment::new(GOOD).run("render", &["--cell", "base/0-shot/sin", "--example", "0"]);
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("no cell `base/0-shot/sin`"), "{stderr}");
        assert!(
            stderr.contains("did you mean `base/0-shot/sim`?"),
            "{stderr}"
        );
    }

    #[test]
    fn render_unknown_example() {
        let output = Experiment::new(GOOD).run(
            "render",
            &["--cell", "base/0-shot/sim", "--example", "nope"],
        );
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("no example `nope`"), "{stderr}");
    }

    #[test]
    fn template_syntax_in_data_stays_literal() {
        let dir = tempfile::tempdir().unwrap();
        let line = serde_json::json!({
            "id": "inj-1",
            "context": "POST: {{ 7 * 7 }} and {% if true %}yes{% endif %} {{ undefined_thing }}",
            "response_a": "{{ context }}",
            "response_b": "plain",
            "label": "a"
        });
        std::fs::write(dir.path().join("pairs.jsonl"), format!("{line}\n")).unwrap();
        let yaml = format!(
            "name: inj\ntask: summarization\ndataset: {{ format: pairs, path: {}/pairs.jsonl }}\nlabelers: {{ sim: {{ backend: simulated }} }}\n",
            dir.path().display()
        );
        let experiment = Experiment::new(&yaml);
        let output = experiment.run(
            "render",
            &["--cell", "base/0-shot/sim", "--example", "inj-1"],
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let prompt = String::from_utf8(output.stdout).unwrap();
        assert!(
            prompt.contains("{{ 7 * 7 }} and {% if true %}yes{% endif %} {{ undefined_thing }}"),
            "{prompt}"
        );
        assert!(prompt.contains("{{ context }}"));
        assert!(!prompt.contains("49"));
    }

    #[test]
    fn usage_errors_exit_with_2() {
        let output = rlaif(&["plan"]);
        assert_eq!(output.status.code(), Some(2));
        let output = rlaif(&["frobnicate"]);
        assert_eq!(output.status.code(), Some(2));
    }
}

mod shipped_experiments {
    use super::*;

    /// The experiments the README and results/README.md name as shipped.
    const PROMISED: &[&str] = &[
        "quickstart",
        "tldr-prompting",
        "tldr-self-consistency",
        "tldr-labeler-size",
        "tldr-position-bias",
        "tldr-exemplar-resampling",
        "tldr-llama-server",
        "hh-helpful",
        "hh-harmless",
    ];

    #[test]
    fn every_experiment_in_the_repository_validates() {
        let mut validated = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(repo().join("experiments")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|ext| ext == "yaml") {
                let output = rlaif(&["validate", path.to_str().unwrap()]);
                assert!(
                    output.status.success(),
                    "{}: {}",
                    path.display(),
                    String::from_utf8_lossy(&output.stderr)
                );
                validated.insert(path.file_stem().unwrap().to_string_lossy().into_owned());
            }
        }
        let missing: Vec<_> = PROMISED
            .iter()
            .filter(|name| !validated.contains(**name))
            .collect();
        assert!(missing.is_empty(), "experiments/ lacks {missing:?}");
    }

    /// results/README.md reports the committed runs: every `[run](…/report.md)` link
    /// names a committed run folder, and every alignment with its interval in the page's
    /// tables is one a cited run's summary.json holds, so neither can change alone.
    #[test]
    fn the_results_page_quotes_its_committed_runs() {
        let results = repo().join("results");
        let page = std::fs::read_to_string(results.join("README.md")).unwrap();

        let mut cited = std::collections::BTreeSet::new();
        let mut runs = 0;
        for target in page
            .split("](")
            .skip(1)
            .filter_map(|link| link.split(')').next())
        {
            let Some(run) = target.strip_suffix("/report.md") else {
                continue;
            };
            let folder = results.join(run);
            assert!(
                folder.join("report.md").is_file(),
                "results/README.md links {target}, which is not committed"
            );
            let summary = std::fs::read_to_string(folder.join("summary.json")).unwrap();
            let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
            for cell in summary["cells"].as_array().unwrap() {
                let percent = |key: &str| 100.0 * cell[key].as_f64().unwrap();
                cited.insert(format!(
                    "{:.1}% [{:.1}, {:.1}]",
                    percent("alignment"),
                    percent("ci_low"),
                    percent("ci_high")
                ));
            }
            runs += 1;
        }
        assert!(
            runs >= 20,
            "only {runs} run links found in results/README.md"
        );

        let mut quoted = 0;
        for row in page.lines().filter(|line| line.starts_with('|')) {
            for figure in alignments_with_intervals(&row.replace("**", "")) {
                assert!(
                    cited.contains(&figure),
                    "results/README.md quotes {figure} in `{row}`, which no cited run's \
                     summary.json holds"
                );
                quoted += 1;
            }
        }
        assert!(quoted >= 60, "only {quoted} figures found in the tables");
    }

    /// Each `NN.N% [LO, HI]` of a line.
    fn alignments_with_intervals(line: &str) -> Vec<String> {
        line.match_indices("% [")
            .filter_map(|(at, _)| {
                let start = line[..at]
                    .trim_end_matches(|c: char| c.is_ascii_digit() || c == '.')
                    .len();
                let end = at + line[at..].find(']')? + 1;
                Some(line[start..end].to_owned())
            })
            .collect()
    }

    /// The annotated experiment file of the README is what a newcomer copies: every key
    /// it shows must exist and the whole file must validate and plan, with its data and
    /// template paths pointed at real folders.
    #[test]
    fn the_readme_annotated_experiment_validates() {
        let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
        let section = &readme[readme
            .find("## The experiment file")
            .expect("the README has its experiment-file section")..];
        let start = section.find("```yaml\n").expect("a YAML block") + "```yaml\n".len();
        let end = start + section[start..].find("```").expect("the block ends");
        let yaml = &section[start..end];

        let dir = tempfile::tempdir().unwrap();
        let templates = dir.path().join("my-templates");
        std::fs::create_dir(&templates).unwrap();
        let shared = repo().join("../shared/data");
        let text = yaml
            .replace("../../shared/data", &shared.display().to_string())
            .replace("../my-templates", &templates.display().to_string());
        assert_ne!(text, yaml, "the README's paths changed: update this test");
        let path = dir.path().join("annotated.yaml");
        std::fs::write(&path, text).unwrap();

        let succeeds = |command: &str| {
            let output = rlaif(&[command, path.to_str().unwrap()]);
            assert!(
                output.status.success(),
                "rlaif {command} on the README's experiment file: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            output
        };
        succeeds("validate");
        let plan = succeeds("plan");
        let stdout = String::from_utf8_lossy(&plan.stdout);
        assert!(
            stdout.contains("detailed/8-shot"),
            "the `include` cell is planned: {stdout}"
        );
    }
}

#[test]
fn an_exemplar_seed_axis_draws_other_exemplars() {
    let experiment = Experiment::new(&GOOD.replace(
        "  few_shot: [0, 1]\n",
        "  few_shot: [0, 1]\n  exemplar_seed: [1, 2, 3, 4]\n",
    ));
    let plan = experiment.run("plan", &[]);
    let stdout = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.status.success(),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    assert!(
        stdout.contains("base/1-shot/exemplar_seed=3/sim"),
        "{stdout}"
    );
    let cell_rows = stdout
        .lines()
        .filter(|line| line.trim_start().starts_with(|c: char| c.is_ascii_digit()));
    for row in cell_rows {
        assert!(
            !row.contains("0-shot/exemplar_seed"),
            "0-shot cells collapse: {row}"
        );
    }
    assert!(
        stdout.contains("a 0-shot cell shows no exemplar, so the exemplar seed cannot change it"),
        "{stdout}"
    );
    // Four draws of one exemplar from a pool of three: at least two differ.
    let shown: std::collections::BTreeSet<String> = (1..=4)
        .map(|seed| {
            let cell = format!("base/1-shot/exemplar_seed={seed}/sim");
            let output = experiment.run("render", &["--cell", &cell, "--example", "0"]);
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let text = String::from_utf8_lossy(&output.stdout).into_owned();
            let sample_starts = text.rfind("POST").expect("the sample's context");
            text[..sample_starts].to_owned()
        })
        .collect();
    assert!(shown.len() >= 2, "the seeds draw different exemplars");
}

#[test]
fn an_exemplar_seed_without_a_pool_is_refused() {
    let yaml = GOOD
        .replace(
            "exemplars: { format: pairs, path: {fixtures}/exemplars.jsonl }\n",
            "",
        )
        .replace("  few_shot: [0, 1]\n", "  exemplar_seed: [1, 2]\n");
    let stderr = Experiment::new(&yaml).refused();
    assert!(
        stderr.contains("exemplar_seed chooses exemplars, and the experiment has no pool"),
        "{stderr}"
    );
}

#[test]
fn plan_counts_calls_that_cells_share_once() {
    // sc2@0.5 asks for the first two of the four rationales sc4@0.5 asks for.
    let yaml = GOOD
        .replace("  few_shot: [0, 1]\n", "")
        .replace("  cot: [false, true]\n", "  cot: [true]\n")
        .replace(
            "[{samples: 1, temperature: 0.0}, {samples: 4, temperature: 0.5}]",
            "[{samples: 2, temperature: 0.5}, {samples: 4, temperature: 0.5}]",
        )
        .replace("  preamble: [base, detailed]\n", "  preamble: [base]\n");
    let output = Experiment::new(&yaml).run("plan", &["--format", "json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    // 8 pairs x 2 orders x (a rationale and its scoring) x (2 + 4 samples).
    assert_eq!(plan["calls"], 8 * 2 * 2 * 6);
    assert_eq!(plan["distinct_calls"], 8 * 2 * 2 * 4);
    // What is sent is exactly what sc4@0.5 alone would send.
    let sc4 = &plan["cells"][1];
    assert!(sc4["name"].as_str().unwrap().contains("sc4"), "{sc4}");
    assert_eq!(plan["distinct_prompt_tokens"], sc4["prompt_tokens"]);
    assert_eq!(
        plan["distinct_max_completion_tokens"],
        sc4["max_completion_tokens"]
    );
    assert!(plan["prompt_tokens"].as_u64() > sc4["prompt_tokens"].as_u64());
    let text = Experiment::new(&yaml).run("plan", &[]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("total: 192 calls"), "{text}");
    assert!(text.contains("sent: 128 distinct calls"), "{text}");

    // Money, like tokens, is counted once per distinct request.
    let priced = yaml.replace(
        "  sim: { backend: simulated, accuracy: 0.8 }",
        "  sim:\n    backend: openai\n    base_url: \"http://127.0.0.1:9/v1\"\n    \
         model: m\n    price: { prompt: 1.0, completion: 2.0 }",
    );
    let output = Experiment::new(&priced).run("plan", &["--format", "json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let sc4_cost = plan["cells"][1]["max_cost"].as_f64().unwrap();
    let sc2_cost = plan["cells"][0]["max_cost"].as_f64().unwrap();
    let cost = plan["max_cost"].as_f64().unwrap();
    assert!((cost - sc4_cost).abs() < 1e-9, "{cost} against {sc4_cost}");
    assert!(sc2_cost > 0.0);
}

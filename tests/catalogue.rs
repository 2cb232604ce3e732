//! The failure catalogue, run: every bad input listed in docs/failures.md goes through the
//! real binary, which must exit with the code the catalogue gives, say the words it
//! quotes, and never panic. The test also keeps the catalogue and its table here in step:
//! each case here is a row there with the same exit code, and each row there is a case
//! here or names a test that exists. `CATALOGUE_SHOW=1` prints every case's output, to
//! bring the catalogue's quotes up to date.

#[path = "support/fake_server.rs"]
mod fake_server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fake_server::{COMPLETIONS, FakeServer, Reply};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file's text, written into the case's folder.
#[derive(Debug, Clone, Copy)]
enum Text {
    /// This text.
    Is(&'static str),
    /// The good experiment ([`GOOD`]) with each `(from, to)` replaced, then `append`
    /// added.
    Good(&'static [(&'static str, &'static str)], &'static str),
}

/// One bad input, and what rlaif must make of it. Placeholders in files, arguments and
/// expected words: `{dir}` (the case's folder), `{fixtures}`, `{server}` (a fake
/// OpenAI-compatible server that refuses prompts beyond its context) and `{dead}` (a
/// URL where nothing listens).
#[derive(Debug, Clone, Copy)]
struct Case {
    /// The name of the case's row in docs/failures.md.
    name: &'static str,
    files: &'static [(&'static str, Text)],
    /// Commands run first, each of which must succeed.
    before: &'static [&'static [&'static str]],
    /// Changes made after `before`, for what text files cannot say.
    setup: Option<fn(&Path)>,
    args: &'static [&'static str],
    /// Variables set for the command.
    env: &'static [(&'static str, &'static str)],
    code: i32,
    /// Words stderr must hold.
    stderr: &'static [&'static str],
    /// Words stdout must hold.
    stdout: &'static [&'static str],
    /// A check of what the command left behind.
    after: Option<fn(&Path)>,
}

const CASE: Case = Case {
    name: "",
    files: &[],
    before: &[],
    setup: None,
    args: VALIDATE,
    env: &[],
    code: 2,
    stderr: &[],
    stdout: &[],
    after: None,
};

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
";

/// The good experiment reading `{dir}/data.jsonl`.
const OWN_DATA: Text = Text::Good(&[("{fixtures}/pairs.jsonl", "data.jsonl")], "");

const VALIDATE: &[&str] = &["validate", "{dir}/exp.yaml"];
const RUN: &[&str] = &[
    "run",
    "{dir}/exp.yaml",
    "--results",
    "{dir}/results",
    "--quiet",
];
const RAN: &[&[&str]] = &[RUN];

/// The one run folder under `{dir}/results/demo`.
fn run_dir(dir: &Path) -> PathBuf {
    let mut runs: Vec<PathBuf> = std::fs::read_dir(dir.join("results/demo"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs.remove(0)
}

fn judgments(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(run_dir(dir).join("judgments.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// A grid whose axes multiply to 100^`axes` cells.
fn grid_of(dir: &Path, axes: usize) {
    let values: Vec<String> = (0..100).map(|value| value.to_string()).collect();
    let vars: Vec<String> = (0..axes)
        .map(|axis| format!("v{axis}: [{}]", values.join(", ")))
        .collect();
    let text = std::fs::read_to_string(dir.join("exp.yaml")).unwrap();
    let text = format!("{text}  vars: {{ {} }}\n", vars.join(", "));
    std::fs::write(dir.join("exp.yaml"), text).unwrap();
}

/// The fixture pairs, then one whose post is 10 MB.
fn huge_post(dir: &Path) {
    let mut data = std::fs::read_to_string(repo().join("tests/fixtures/pairs.jsonl")).unwrap();
    let post = serde_json::json!({
        "id": "huge",
        "context": format!("POST: {}", "word ".repeat(2_000_000)),
        "response_a": "A summary.",
        "response_b": "Another summary.",
        "label": "a",
    });
    data += &format!("{post}\n");
    std::fs::write(dir.join("data.jsonl"), data).unwrap();
}

fn overwrite_a_cache_page(dir: &Path) {
    let path = dir.join("results/cache.sqlite");
    let mut bytes = std::fs::read(&path).unwrap();
    let page = 4096;
    let middle = bytes.len() / page / 2 * page;
    bytes[middle..middle + page].fill(0x5a);
    std::fs::write(path, bytes).unwrap();
}

fn truncate_the_cache(dir: &Path) {
    let path = dir.join("results/cache.sqlite");
    let size = std::fs::metadata(&path).unwrap().len();
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(size / 2).unwrap();
}

/// A lock naming process 1, which always exists: the run looks owned by a live run.
fn lock_the_run(dir: &Path) {
    std::fs::write(run_dir(dir).join("run.lock"), "1").unwrap();
}

fn nothing_outside(dir: &Path) {
    let root = dir.parent().unwrap();
    assert!(!root.join("escape").exists(), "nothing is written outside");
    assert!(!dir.join("results").exists(), "nothing is written at all");
}

const CASES: &[Case] = &[
    // --- the experiment file ----------------------------------------------------------
    Case {
        name: "yaml-syntax-error",
        files: &[(
            "exp.yaml",
            Text::Is("name: demo\ngrid: { few_shot: [0, 1 }\n"),
        )],
        stderr: &["exp.yaml:2:", "YAML syntax error"],
        ..CASE
    },
    Case {
        name: "empty-experiment-file",
        files: &[("exp.yaml", Text::Is("\n"))],
        stderr: &["exp.yaml:1:1: the experiment file is empty"],
        ..CASE
    },
    Case {
        name: "experiment-file-missing",
        args: &["validate", "{dir}/nope.yaml"],
        stderr: &[
            "cannot read experiment file {dir}/nope.yaml",
            "No such file",
        ],
        ..CASE
    },
    Case {
        name: "experiment-file-is-a-folder",
        args: &["validate", "{dir}"],
        stderr: &["cannot read experiment file {dir}", "Is a directory"],
        ..CASE
    },
    Case {
        name: "wrong-type",
        files: &[(
            "exp.yaml",
            Text::Good(&[("few_shot: [0, 1]", "few_shot: [0, two]")], ""),
        )],
        stderr: &[
            "exp.yaml:9:",
            "invalid type: string \"two\"",
            "write a whole number",
        ],
        ..CASE
    },
    Case {
        name: "scalar-where-an-axis-belongs",
        files: &[(
            "exp.yaml",
            Text::Good(&[("few_shot: [0, 1]", "few_shot: 1")], ""),
        )],
        stderr: &["expected a sequence", "an axis is a list"],
        ..CASE
    },
    Case {
        name: "unknown-key",
        files: &[("exp.yaml", Text::Good(&[], "position_debais: both\n"))],
        stderr: &[
            "exp.yaml:10:1: unknown key `position_debais` in the experiment",
            "did you mean `position_debias`?",
        ],
        ..CASE
    },
    Case {
        name: "unknown-labeler-key",
        files: &[(
            "exp.yaml",
            Text::Good(&[("accuracy: 0.8", "acuracy: 0.8")], ""),
        )],
        stderr: &[
            "unknown key `acuracy` in labeler `sim`",
            "did you mean `accuracy`?",
        ],
        ..CASE
    },
    Case {
        name: "missing-required-keys",
        files: &[("exp.yaml", Text::Is("name: demo\n"))],
        stderr: &[
            "3 problems",
            "has no `task`",
            "has no `dataset`",
            "has no `labelers`",
        ],
        ..CASE
    },
    Case {
        name: "unknown-backend",
        files: &[(
            "exp.yaml",
            Text::Good(&[("backend: simulated", "backend: simulatd")], ""),
        )],
        stderr: &["unknown backend `simulatd`", "did you mean `simulated`?"],
        ..CASE
    },
    Case {
        name: "openai-labeler-without-base-url",
        files: &[(
            "exp.yaml",
            Text::Good(
                &[(
                    "backend: simulated, accuracy: 0.8",
                    "backend: openai, model: m",
                )],
                "",
            ),
        )],
        stderr: &["`labelers.sim` has no `base_url`", "add `base_url:"],
        ..CASE
    },
    Case {
        name: "unknown-labeler-in-grid",
        files: &[("exp.yaml", Text::Good(&[], "  labeler: [sim, simm]\n"))],
        stderr: &[
            "exp.yaml:10:",
            "unknown labeler `simm`",
            "did you mean `sim`?",
        ],
        ..CASE
    },
    Case {
        name: "unknown-preamble-style",
        files: &[(
            "exp.yaml",
            Text::Good(&[("[base, detailed]", "[base, fancy]")], ""),
        )],
        stderr: &[
            "unknown preamble style `fancy`",
            "to create it, name a folder in `templates:` and add \
             <folder>/summarization/preamble_fancy.j2 there",
        ],
        ..CASE
    },
    Case {
        name: "unknown-task",
        files: &[(
            "exp.yaml",
            Text::Good(&[("task: summarization", "task: summarisation")], ""),
        )],
        stderr: &[
            "unknown task `summarisation`",
            "did you mean `summarization`?",
        ],
        ..CASE
    },
    Case {
        name: "empty-axis",
        files: &[(
            "exp.yaml",
            Text::Good(&[("few_shot: [0, 1]", "few_shot: []")], ""),
        )],
        stderr: &["exp.yaml:9:", "axis `few_shot` is empty"],
        ..CASE
    },
    Case {
        name: "duplicate-axis-value",
        files: &[(
            "exp.yaml",
            Text::Good(&[("few_shot: [0, 1]", "few_shot: [0, 1, 0]")], ""),
        )],
        stderr: &["0 appears twice in `grid.few_shot`"],
        ..CASE
    },
    Case {
        name: "negative-temperature",
        files: &[(
            "exp.yaml",
            Text::Good(
                &[],
                "  self_consistency: [{ samples: 4, temperature: -0.5 }]\n",
            ),
        )],
        stderr: &["temperature -0.5 is negative"],
        ..CASE
    },
    Case {
        name: "few-shot-beyond-the-pool",
        files: &[(
            "exp.yaml",
            Text::Good(&[("few_shot: [0, 1]", "few_shot: [0, 4]")], ""),
        )],
        stderr: &["few_shot 4 is more than the 3 usable exemplars"],
        ..CASE
    },
    Case {
        name: "exemplars-share-ids-with-the-dataset",
        files: &[
            (
                "exp.yaml",
                Text::Good(&[("{fixtures}/exemplars.jsonl", "{dir}/pool.jsonl")], ""),
            ),
            (
                "pool.jsonl",
                Text::Is(
                    "{\"id\": \"fx-01\", \"context\": \"POST: another post\", \
                     \"response_a\": \"one\", \"response_b\": \"two\", \"label\": \"a\"}\n",
                ),
            ),
        ],
        stderr: &[
            "1 exemplar(s) have the id of an evaluated example but are another pair \
             (first: `fx-01`)",
            "give the exemplars another `id_prefix:`",
        ],
        ..CASE
    },
    Case {
        name: "exemplars-overlap-the-dataset",
        files: &[(
            "exp.yaml",
            Text::Good(&[("exemplars.jsonl", "pairs.jsonl")], ""),
        )],
        stderr: &["exemplar(s) are also evaluated examples", "disjoint"],
        ..CASE
    },
    Case {
        name: "exclude-names-an-unknown-axis",
        files: &[(
            "exp.yaml",
            Text::Good(&[], "exclude:\n  - { fewshot: 1 }\n"),
        )],
        stderr: &["unknown axis `fewshot`", "did you mean `few_shot`?"],
        ..CASE
    },
    Case {
        name: "exclude-entry-with-a-list",
        files: &[(
            "exp.yaml",
            Text::Good(&[], "exclude:\n  - { few_shot: [0, 1], cot: [false] }\n"),
        )],
        stderr: &[
            "exp.yaml:11:7: `few_shot` in `exclude[0]` is a list, but an entry names one value \
             per axis",
            "write one entry per value under `exclude:`: `- { few_shot: 0 }`, `- { few_shot: 1 }`",
            "write `cot: false`, without the brackets",
        ],
        ..CASE
    },
    Case {
        name: "exclude-not-a-list",
        files: &[("exp.yaml", Text::Good(&[], "exclude: { few_shot: 1 }\n"))],
        stderr: &[
            "exp.yaml:10:10: exclude: invalid type: map, expected a sequence",
            "a list of entries, each naming settings: write [{ cot: false, few_shot: 2 }]",
        ],
        ..CASE
    },
    Case {
        name: "exclude-names-a-value-off-the-grid",
        files: &[(
            "exp.yaml",
            Text::Good(&[], "exclude:\n  - { preamble: detialed, few_shot: 1 }\n"),
        )],
        stderr: &[
            "exp.yaml:11:",
            "`exclude` names preamble `detialed`, which the grid does not have, so the entry \
             excludes nothing",
            "did you mean `detailed`?",
        ],
        ..CASE
    },
    Case {
        name: "labeler-declared-twice",
        files: &[(
            "exp.yaml",
            Text::Good(
                &[(
                    "  sim: { backend: simulated, accuracy: 0.8 }\n",
                    "  sim: { backend: simulated, accuracy: 0.8 }\n  sim: { backend: simulated, accuracy: 0.6 }\n",
                )],
                "",
            ),
        )],
        stderr: &[
            "exp.yaml:7:3: `sim` is written twice in `labelers`",
            "only one of the two would be used: rename or remove one",
        ],
        ..CASE
    },
    Case {
        name: "templates-folder-missing",
        files: &[("exp.yaml", Text::Good(&[], "templates: nowhere\n"))],
        stderr: &["templates folder `nowhere` not found"],
        ..CASE
    },
    Case {
        name: "grid-too-large-to-expand",
        files: &[("exp.yaml", Text::Good(&[], ""))],
        setup: Some(|dir| grid_of(dir, 11)),
        stderr: &[
            "the grid's axes multiply to about 4.0e22 cells",
            "more than the 1,000,000 rlaif expands",
        ],
        ..CASE
    },
    Case {
        name: "million-cell-grid-without-yes",
        files: &[(
            "exp.yaml",
            Text::Good(
                &[
                    ("few_shot: [0, 1]", "few_shot: [0]"),
                    ("[base, detailed]", "[base]"),
                ],
                "",
            ),
        )],
        setup: Some(|dir| grid_of(dir, 3)),
        args: RUN,
        stderr: &[
            "the grid has 1,000,000 cells, more than 10,000",
            "add --yes to run them all",
        ],
        after: Some(|dir| assert!(!dir.join("results").exists(), "nothing was run")),
        ..CASE
    },
    Case {
        name: "api-key-written-in-place-of-its-variable",
        files: &[(
            "exp.yaml",
            Text::Good(
                &[(
                    "backend: simulated, accuracy: 0.8",
                    "backend: openai, base_url: \"{dead}\", model: m, api_key_env: sk-live-abcdef123456",
                )],
                "",
            ),
        )],
        stderr: &["`api_key_env` looks like an API key"],
        ..CASE
    },
    Case {
        name: "api-key-variable-not-set",
        files: &[(
            "exp.yaml",
            Text::Good(
                &[(
                    "backend: simulated, accuracy: 0.8",
                    "backend: openai, base_url: \"{server}\", model: fake-model, api_key_env: RLAIF_CATALOGUE_UNSET_KEY",
                )],
                "",
            ),
        )],
        args: RUN,
        stderr: &["labeler `sim`: environment variable RLAIF_CATALOGUE_UNSET_KEY is not set"],
        ..CASE
    },
    Case {
        name: "api-key-variable-empty",
        files: &[(
            "exp.yaml",
            Text::Good(
                &[(
                    "backend: simulated, accuracy: 0.8",
                    "backend: openai, base_url: \"{server}\", model: fake-model, api_key_env: RLAIF_CATALOGUE_EMPTY_KEY",
                )],
                "",
            ),
        )],
        args: RUN,
        env: &[("RLAIF_CATALOGUE_EMPTY_KEY", "  ")],
        stderr: &["environment variable RLAIF_CATALOGUE_EMPTY_KEY is not set"],
        ..CASE
    },
    Case {
        name: "embedded-threads-unlike-the-process",
        files: &[(
            "exp.yaml",
            Text::Good(
                &[(
                    "backend: simulated, accuracy: 0.8",
                    "backend: embedded, model: smollm2-135m, threads: 3",
                )],
                "",
            ),
        )],
        args: RUN,
        env: &[("RAYON_NUM_THREADS", "2")],
        stderr: &[
            "labeler `sim` asks for `threads: 3`, but the embedded labeler runs on 2 thread(s) in this process",
            "start rlaif with RAYON_NUM_THREADS=3",
        ],
        ..CASE
    },
    Case {
        name: "embedded-threads-beside-several-workers",
        files: &[(
            "exp.yaml",
            Text::Good(
                &[(
                    "backend: simulated, accuracy: 0.8",
                    "backend: embedded, model: smollm2-135m, threads: 2, workers: 2",
                )],
                "",
            ),
        )],
        args: VALIDATE,
        stderr: &[
            "exp.yaml:6:",
            "`threads` is 2, but each of the 2 workers computes on one thread",
            "remove `threads:` or set it to 1, or set `workers: 1`",
        ],
        ..CASE
    },
    Case {
        name: "embedded-threads-beside-another-labelers-workers",
        files: &[(
            "exp.yaml",
            Text::Good(
                &[(
                    "  sim: { backend: simulated, accuracy: 0.8 }\n",
                    "  many: { backend: embedded, model: smollm2-135m, workers: 2 }\n  \
                     wide: { backend: embedded, model: smollm2-135m, threads: 2 }\n",
                )],
                "",
            ),
        )],
        args: VALIDATE,
        stderr: &[
            "exp.yaml:7:",
            "`threads` is 2, but labeler `many` has 2 workers, so every embedded labeler of \
             this run computes on one thread",
            "give `many` `workers: 1`",
        ],
        ..CASE
    },
    Case {
        name: "embedded-model-cannot-be-installed",
        files: &[(
            "exp.yaml",
            Text::Good(
                &[(
                    "backend: simulated, accuracy: 0.8",
                    "backend: embedded, model: smollm2-135m",
                )],
                "",
            ),
        )],
        args: RUN,
        // A models folder that cannot be created: a path through a file.
        env: &[("RLAIF_HOME", "/dev/null/rlaif")],
        stderr: &[
            "labeler `sim` failed its preflight check, so no example was sent",
            "cannot create the models folder /dev/null/rlaif/models: Not a directory",
        ],
        ..CASE
    },
    Case {
        name: "rationale-stop-empty",
        files: &[(
            "exp.yaml",
            Text::Good(
                &[(
                    "backend: simulated, accuracy: 0.8",
                    "backend: embedded, model: smollm2-135m, rationale_stop: [\"###\", \"\"]",
                )],
                "",
            ),
        )],
        stderr: &[
            "exp.yaml:6:",
            "an empty `rationale_stop` would end every rationale before it begins",
            "give the text a rationale must not run into, e.g. \"###\"",
        ],
        ..CASE
    },
    Case {
        name: "rationale-stop-unquoted-hash",
        files: &[(
            "exp.yaml",
            Text::Is(
                "name: demo\n\
                 task: summarization\n\
                 dataset: { format: pairs, path: {fixtures}/pairs.jsonl }\n\
                 labelers:\n\
                 \x20 small:\n\
                 \x20   backend: embedded\n\
                 \x20   model: smollm2-135m\n\
                 \x20   rationale_stop: ###\n",
            ),
        )],
        stderr: &[
            "exp.yaml:8:",
            "`rationale_stop` has no value",
            "unquoted, # starts a YAML comment",
        ],
        ..CASE
    },
    Case {
        name: "rationale-stop-too-many",
        files: &[(
            "exp.yaml",
            Text::Good(
                &[(
                    "backend: simulated, accuracy: 0.8",
                    "backend: openai, base_url: \"http://127.0.0.1:8000/v1\", model: m, rationale_stop: [a, b, c, d]",
                )],
                "",
            ),
        )],
        stderr: &[
            "exp.yaml:6:",
            "`rationale_stop` lists 4 strings, more than the 3 it can take",
            "OpenAI's API takes at most 4 stop strings a request",
        ],
        ..CASE
    },
    // --- names that could point outside the results root --------------------------------
    Case {
        name: "experiment-name-with-parent-folders",
        files: &[(
            "exp.yaml",
            Text::Good(&[("name: demo", "name: ../../escape")], ""),
        )],
        args: RUN,
        stderr: &["name `../../escape` cannot name a results folder"],
        after: Some(nothing_outside),
        ..CASE
    },
    Case {
        name: "experiment-name-absolute",
        files: &[(
            "exp.yaml",
            Text::Good(&[("name: demo", "name: {dir}/escape")], ""),
        )],
        args: RUN,
        stderr: &["name `{dir}/escape` cannot name a results folder"],
        after: Some(|dir| {
            assert!(!dir.join("escape").exists());
            nothing_outside(dir);
        }),
        ..CASE
    },
    Case {
        name: "experiment-name-dot-dot",
        files: &[(
            "exp.yaml",
            Text::Good(&[("name: demo", "name: \"..\"")], ""),
        )],
        args: RUN,
        stderr: &["name `..` cannot name a results folder"],
        after: Some(nothing_outside),
        ..CASE
    },
    Case {
        name: "labeler-name-with-parent-folders",
        files: &[(
            "exp.yaml",
            Text::Good(&[("  sim:", "  \"../escape\":")], ""),
        )],
        args: RUN,
        stderr: &["labeler name `../escape` is not usable in cell names"],
        after: Some(nothing_outside),
        ..CASE
    },
    Case {
        name: "preamble-style-with-a-path",
        files: &[(
            "exp.yaml",
            Text::Good(&[("[base, detailed]", "[\"../../../etc/passwd\"]")], ""),
        )],
        stderr: &["unknown preamble style `../../../etc/passwd`"],
        ..CASE
    },
    Case {
        name: "task-with-a-path",
        files: &[(
            "exp.yaml",
            Text::Good(&[("task: summarization", "task: ../../etc")], ""),
        )],
        stderr: &["unknown task `../../etc`"],
        ..CASE
    },
    // --- templates ------------------------------------------------------------------------
    Case {
        name: "template-syntax-error",
        files: &[
            (
                "tp/summarization/preamble_broken.j2",
                Text::Is("One.\nTwo {% if %}.\n"),
            ),
            (
                "exp.yaml",
                Text::Good(&[("[base, detailed]", "[broken]")], "templates: tp\n"),
            ),
        ],
        stderr: &["preamble_broken.j2:2", "syntax error"],
        ..CASE
    },
    Case {
        name: "template-undefined-variable",
        files: &[
            (
                "tp/summarization/preamble_friendly.j2",
                Text::Is("Hello.\nPlease be {{ tone }}.\n"),
            ),
            (
                "exp.yaml",
                Text::Good(&[("[base, detailed]", "[friendly]")], "templates: tp\n"),
            ),
        ],
        stderr: &["preamble_friendly.j2:2", "undefined value `tone`"],
        ..CASE
    },
    Case {
        name: "template-file-missing",
        files: &[
            ("tp/mytask/preamble_base.j2", Text::Is("Pick one.\n")),
            (
                "exp.yaml",
                Text::Good(
                    &[
                        ("task: summarization", "task: mytask"),
                        ("[base, detailed]", "[base]"),
                    ],
                    "templates: tp\n",
                ),
            ),
        ],
        stderr: &["task `mytask` has no task.yaml", "looked in"],
        ..CASE
    },
    Case {
        name: "template-file-misnamed",
        files: &[
            ("tp/summarization/exemplr.j2", Text::Is("{{ context }}\n")),
            ("exp.yaml", Text::Good(&[], "templates: tp\n")),
        ],
        stderr: &[
            "unexpected template file",
            "exemplr.j2",
            "expected preamble_<style>.j2",
        ],
        ..CASE
    },
    Case {
        name: "data-that-looks-like-template-code",
        files: &[
            (
                "data.jsonl",
                Text::Is(
                    "{\"id\": \"inj\", \"context\": \"POST: {{ 7 * 7 }} {% for x in y %}{{ x }}{% endfor %}\", \"response_a\": \"{{ context }}\", \"response_b\": \"b\", \"label\": \"a\"}\n",
                ),
            ),
            (
                "exp.yaml",
                Text::Good(
                    &[
                        ("{fixtures}/pairs.jsonl", "data.jsonl"),
                        ("few_shot: [0, 1]", "few_shot: [0]"),
                    ],
                    "",
                ),
            ),
        ],
        args: &[
            "render",
            "{dir}/exp.yaml",
            "--cell",
            "base/0-shot/sim",
            "--example",
            "inj",
        ],
        code: 0,
        stdout: &[
            "POST: {{ 7 * 7 }} {% for x in y %}{{ x }}{% endfor %}",
            "{{ context }}",
        ],
        ..CASE
    },
    // --- data -----------------------------------------------------------------------------
    Case {
        name: "data-file-missing",
        files: &[("exp.yaml", OWN_DATA)],
        stderr: &[
            "exp.yaml:3:",
            "data file `data.jsonl` not found",
            "relative to the experiment file",
        ],
        ..CASE
    },
    Case {
        name: "data-path-is-a-folder",
        files: &[("data.jsonl/readme", Text::Is("")), ("exp.yaml", OWN_DATA)],
        stderr: &["data file `data.jsonl` is a folder"],
        ..CASE
    },
    Case {
        name: "data-bad-json",
        files: &[
            (
                "data.jsonl",
                Text::Is(
                    "{\"id\": \"a\", \"context\": \"c\", \"response_a\": \"x\", \"response_b\": \"y\", \"label\": \"a\"}\n\n{\"id\": \"b\", \"context\": \n",
                ),
            ),
            ("exp.yaml", OWN_DATA),
        ],
        stderr: &["data.jsonl:3: invalid json at column"],
        ..CASE
    },
    Case {
        name: "data-missing-field",
        files: &[
            (
                "data.jsonl",
                Text::Is(
                    "{\"id\": \"a\", \"context\": \"c\", \"response_a\": \"x\", \"label\": \"a\"}\n",
                ),
            ),
            ("exp.yaml", OWN_DATA),
        ],
        stderr: &["data.jsonl:1: missing field `response_b`"],
        ..CASE
    },
    Case {
        name: "data-unknown-label",
        files: &[
            (
                "data.jsonl",
                Text::Is(
                    "{\"id\": \"a\", \"context\": \"c\", \"response_a\": \"x\", \"response_b\": \"y\", \"label\": \"A\"}\n",
                ),
            ),
            ("exp.yaml", OWN_DATA),
        ],
        stderr: &["data.jsonl:1: unknown label `A` (expected one of a, b, tie)"],
        ..CASE
    },
    Case {
        name: "data-wrong-field-type",
        files: &[
            (
                "data.jsonl",
                Text::Is(
                    "{\"id\": \"a\", \"context\": \"c\", \"response_a\": \"x\", \"response_b\": \"y\", \"label\": 1}\n",
                ),
            ),
            ("exp.yaml", OWN_DATA),
        ],
        stderr: &["data.jsonl:1: `label` must be a string, found a number"],
        ..CASE
    },
    Case {
        name: "data-unknown-field",
        files: &[
            (
                "data.jsonl",
                Text::Is(
                    "{\"id\": \"a\", \"context\": \"c\", \"response_a\": \"x\", \"response_b\": \"y\", \"label\": \"a\", \"rationle\": \"r\"}\n",
                ),
            ),
            ("exp.yaml", OWN_DATA),
        ],
        stderr: &["unknown field `rationle`", "did you mean `rationale`?"],
        ..CASE
    },
    Case {
        name: "data-file-empty",
        files: &[("data.jsonl", Text::Is("\n\n")), ("exp.yaml", OWN_DATA)],
        stderr: &["data.jsonl: no examples (the file is empty"],
        ..CASE
    },
    Case {
        name: "data-duplicate-ids",
        files: &[
            (
                "data.jsonl",
                Text::Is(
                    "{\"id\": \"a\", \"context\": \"c\", \"response_a\": \"x\", \"response_b\": \"y\", \"label\": \"a\"}\n{\"id\": \"a\", \"context\": \"d\", \"response_a\": \"x\", \"response_b\": \"y\", \"label\": \"b\"}\n",
                ),
            ),
            ("exp.yaml", OWN_DATA),
        ],
        stderr: &["data.jsonl:2: duplicate id `a` (first on line 1"],
        ..CASE
    },
    Case {
        name: "data-not-utf8",
        files: &[("exp.yaml", OWN_DATA)],
        setup: Some(|dir| {
            let line = b"{\"id\": \"a\", \"context\": \"caf\xe9\", \"response_a\": \"x\", \"response_b\": \"y\", \"label\": \"a\"}\n";
            std::fs::write(dir.join("data.jsonl"), line).unwrap();
        }),
        stderr: &[
            "data.jsonl:1: line is not valid utf-8",
            "save the file as utf-8",
        ],
        ..CASE
    },
    Case {
        name: "data-not-gzip",
        files: &[
            (
                "data.jsonl.gz",
                Text::Is("{\"id\": \"plain text, not gzip\"}\n"),
            ),
            (
                "exp.yaml",
                Text::Good(&[("{fixtures}/pairs.jsonl", "data.jsonl.gz")], ""),
            ),
        ],
        stderr: &["cannot read {dir}/data.jsonl.gz: invalid gzip header"],
        ..CASE
    },
    Case {
        name: "data-limit-zero",
        files: &[(
            "exp.yaml",
            Text::Good(&[("pairs.jsonl }", "pairs.jsonl, limit: 0 }")], ""),
        )],
        stderr: &["`limit` is 0: no example would be labelled"],
        ..CASE
    },
    Case {
        name: "data-filter-needs-a-field",
        files: &[(
            "exp.yaml",
            Text::Good(
                &[("pairs.jsonl }", "pairs.jsonl, high_confidence: true }")],
                "",
            ),
        )],
        stderr: &["pairs.jsonl:1: no `meta.confidence`", "turn it off"],
        ..CASE
    },
    Case {
        name: "data-identical-and-empty-responses",
        files: &[
            (
                "data.jsonl",
                Text::Is(
                    "{\"id\": \"same\", \"context\": \"c\", \"response_a\": \"x\", \"response_b\": \"x\", \"label\": \"tie\"}\n{\"id\": \"empty\", \"context\": \"c\", \"response_a\": \"\", \"response_b\": \"y\", \"label\": \"b\"}\n",
                ),
            ),
            (
                "exp.yaml",
                Text::Good(
                    &[
                        ("{fixtures}/pairs.jsonl", "data.jsonl"),
                        ("few_shot: [0, 1]", "few_shot: [0]"),
                    ],
                    "",
                ),
            ),
        ],
        code: 0,
        stdout: &["2 examples (kept, but 1 with empty response, 1 with identical responses)"],
        ..CASE
    },
    Case {
        name: "data-huge-post-simulated",
        files: &[(
            "exp.yaml",
            Text::Good(
                &[
                    ("{fixtures}/pairs.jsonl", "data.jsonl"),
                    ("few_shot: [0, 1]", "few_shot: [0]"),
                    ("[base, detailed]", "[base]"),
                ],
                "",
            ),
        )],
        setup: Some(huge_post),
        args: RUN,
        code: 0,
        stdout: &["report:"],
        after: Some(|dir| {
            let judged = judgments(dir);
            assert_eq!(judged.len(), 9);
            assert!(
                judged
                    .iter()
                    .all(|judgment| judgment.get("failure").is_none())
            );
        }),
        ..CASE
    },
    Case {
        name: "data-huge-post-beyond-the-context",
        files: &[(
            "exp.yaml",
            Text::Good(
                &[
                    ("{fixtures}/pairs.jsonl", "data.jsonl"),
                    ("few_shot: [0, 1]", "few_shot: [0]"),
                    ("[base, detailed]", "[base]"),
                    (
                        "backend: simulated, accuracy: 0.8",
                        "backend: openai, base_url: \"{server}\", model: fake-model",
                    ),
                ],
                "",
            ),
        )],
        setup: Some(huge_post),
        args: RUN,
        code: 1,
        stdout: &["report:"],
        stderr: &[
            "1 judgments failed for good",
            "rerunning will not change them",
        ],
        after: Some(|dir| {
            let judged = judgments(dir);
            assert_eq!(judged.len(), 9, "every example has its judgment");
            let failed: Vec<&Value> = judged
                .iter()
                .filter(|judgment| judgment.get("failure").is_some())
                .collect();
            assert_eq!(failed.len(), 1);
            assert_eq!(failed[0]["example"], "huge");
            assert_eq!(failed[0]["failure"]["kind"], "rejected");
            let message = failed[0]["failure"]["message"].as_str().unwrap();
            assert!(message.contains("maximum context length"), "{message}");
        }),
        ..CASE
    },
    // --- the command line -------------------------------------------------------------------
    Case {
        name: "unknown-command",
        args: &["frobnicate"],
        stderr: &[
            "unrecognized subcommand 'frobnicate'",
            "Usage: rlaif <COMMAND>",
        ],
        ..CASE
    },
    Case {
        name: "unknown-flag",
        files: &[("exp.yaml", Text::Good(&[], ""))],
        args: &["validate", "{dir}/exp.yaml", "--frobnicate"],
        stderr: &["unexpected argument '--frobnicate' found"],
        ..CASE
    },
    Case {
        name: "missing-file-argument",
        args: &["plan"],
        stderr: &[
            "the following required arguments were not provided",
            "<FILE>",
        ],
        ..CASE
    },
    Case {
        name: "bad-flag-value",
        files: &[("exp.yaml", Text::Good(&[], ""))],
        args: &["plan", "{dir}/exp.yaml", "--format", "yaml"],
        stderr: &[
            "invalid value 'yaml' for '--format <FORMAT>'",
            "possible values: text, json",
        ],
        ..CASE
    },
    Case {
        name: "render-unknown-cell",
        files: &[("exp.yaml", Text::Good(&[], ""))],
        args: &[
            "render",
            "{dir}/exp.yaml",
            "--cell",
            "base/0-shot/sin",
            "--example",
            "0",
        ],
        stderr: &[
            "no cell `base/0-shot/sin`",
            "did you mean `base/0-shot/sim`?",
        ],
        ..CASE
    },
    Case {
        name: "render-example-out-of-range",
        files: &[("exp.yaml", Text::Good(&[], ""))],
        args: &[
            "render",
            "{dir}/exp.yaml",
            "--cell",
            "base/0-shot/sim",
            "--example",
            "99",
        ],
        stderr: &["no example `99`", "a position from 0 to 7"],
        ..CASE
    },
    Case {
        name: "render-rationale-without-chain-of-thought",
        files: &[("exp.yaml", Text::Good(&[], ""))],
        args: &[
            "render",
            "{dir}/exp.yaml",
            "--cell",
            "base/0-shot/sim",
            "--example",
            "0",
            "--rationale",
            "because",
        ],
        stderr: &["has no rationale step", "chain-of-thought cells"],
        ..CASE
    },
    Case {
        name: "report-on-a-folder-that-is-not-a-run",
        args: &["report", "{dir}"],
        stderr: &["{dir} holds no run"],
        ..CASE
    },
    Case {
        name: "report-on-a-missing-folder",
        args: &["report", "{dir}/nowhere"],
        stderr: &[
            "no run folder at {dir}/nowhere",
            "results/<experiment>/<run-id>",
        ],
        ..CASE
    },
    Case {
        name: "report-on-the-results-root",
        files: &[("exp.yaml", Text::Good(&[], ""))],
        before: RAN,
        args: &["report", "{dir}/results"],
        stderr: &["holds no run", "looks like a results root"],
        ..CASE
    },
    Case {
        name: "report-on-an-unfinished-run",
        files: &[("exp.yaml", Text::Good(&[], ""))],
        before: RAN,
        setup: Some(|dir| std::fs::remove_file(run_dir(dir).join("summary.json")).unwrap()),
        args: &["report", "{dir}/results/demo"],
        stderr: &["no summary.json in", "rlaif run"],
        ..CASE
    },
    Case {
        name: "report-html-with-a-layout",
        files: &[("exp.yaml", Text::Good(&[], ""))],
        before: RAN,
        args: &[
            "report",
            "{dir}/results/demo",
            "--rows",
            "preamble",
            "--format",
            "html",
        ],
        stderr: &["--format html renders the whole report"],
        ..CASE
    },
    Case {
        name: "report-unknown-axis",
        files: &[("exp.yaml", Text::Good(&[], ""))],
        before: RAN,
        args: &["report", "{dir}/results/demo", "--rows", "tone"],
        stderr: &["unknown axis `tone`", "the axes are: preamble, few_shot"],
        ..CASE
    },
    Case {
        name: "report-where-without-a-value",
        files: &[("exp.yaml", Text::Good(&[], ""))],
        before: RAN,
        args: &[
            "report",
            "{dir}/results/demo",
            "--rows",
            "preamble",
            "--where",
            "few_shot",
        ],
        stderr: &["`--where few_shot` is not AXIS=VALUE"],
        ..CASE
    },
    Case {
        name: "compare-with-a-missing-run",
        files: &[("exp.yaml", Text::Good(&[], ""))],
        before: RAN,
        args: &["compare", "{dir}/results/demo", "{dir}/nowhere"],
        stderr: &["no run folder at {dir}/nowhere"],
        ..CASE
    },
    // --- runs, results and the cache --------------------------------------------------------
    Case {
        name: "run-folder-locked-by-another-run",
        files: &[("exp.yaml", Text::Good(&[], ""))],
        before: RAN,
        setup: Some(lock_the_run),
        args: RUN,
        code: 1,
        stderr: &[
            "another rlaif (process 1) is running in",
            "remove",
            "run.lock",
        ],
        ..CASE
    },
    Case {
        name: "journal-edited-by-hand",
        files: &[("exp.yaml", Text::Good(&[], ""))],
        before: RAN,
        setup: Some(|dir| {
            std::fs::write(run_dir(dir).join("judgments.jsonl"), "not json\n").unwrap()
        }),
        args: RUN,
        code: 1,
        stderr: &["judgments.jsonl:1: not a judgment", "move it aside"],
        ..CASE
    },
    Case {
        name: "results-root-is-a-file",
        files: &[
            ("exp.yaml", Text::Good(&[], "")),
            ("results", Text::Is("not a folder\n")),
        ],
        args: RUN,
        code: 1,
        stderr: &[
            "cannot write the run folder {dir}/results/demo/",
            "Not a directory",
        ],
        ..CASE
    },
    Case {
        name: "cache-page-overwritten",
        files: &[("exp.yaml", Text::Good(&[], ""))],
        before: RAN,
        setup: Some(overwrite_a_cache_page),
        args: RUN,
        stderr: &[
            "the call cache {dir}/results/cache.sqlite is damaged",
            "`rlaif cache check {dir}/results`",
            "`rlaif cache repair {dir}/results`",
        ],
        ..CASE
    },
    Case {
        name: "cache-truncated",
        files: &[("exp.yaml", Text::Good(&[], ""))],
        before: RAN,
        setup: Some(truncate_the_cache),
        args: RUN,
        stderr: &[
            "the call cache {dir}/results/cache.sqlite is damaged: database disk image is malformed",
            "`rlaif cache repair {dir}/results`",
        ],
        ..CASE
    },
    Case {
        name: "cache-check-finds-damage",
        files: &[("exp.yaml", Text::Good(&[], ""))],
        before: RAN,
        setup: Some(overwrite_a_cache_page),
        args: &["cache", "check", "{dir}/results"],
        stdout: &["{dir}/results/cache.sqlite is damaged", "calls readable:"],
        stderr: &["calls readable: `rlaif cache repair {dir}/results` keeps them"],
        ..CASE
    },
    Case {
        name: "cache-check-without-a-cache",
        args: &["cache", "check", "{dir}/nowhere"],
        stderr: &["no call cache at {dir}/nowhere/cache.sqlite"],
        ..CASE
    },
    Case {
        name: "cache-repair-while-a-run-is-active",
        files: &[("exp.yaml", Text::Good(&[], ""))],
        before: RAN,
        setup: Some(|dir| {
            overwrite_a_cache_page(dir);
            lock_the_run(dir);
        }),
        args: &["cache", "repair", "{dir}/results"],
        code: 1,
        stderr: &[
            "the call cache",
            "is in use by process 1 (",
            "once that process has stopped",
        ],
        after: Some(|dir| {
            let names: Vec<String> = std::fs::read_dir(dir.join("results"))
                .unwrap()
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            assert!(
                !names.iter().any(|name| name.contains("damaged-")),
                "{names:?}"
            );
        }),
        ..CASE
    },
    Case {
        name: "server-unreachable",
        files: &[(
            "exp.yaml",
            Text::Good(
                &[(
                    "backend: simulated, accuracy: 0.8",
                    "backend: openai, base_url: \"{dead}\", model: fake-model",
                )],
                "",
            ),
        )],
        args: RUN,
        stderr: &[
            "labeler `sim` failed its preflight check, so no example was sent",
            "cannot connect to {dead}",
            "the server is not reachable: start it, or check `base_url`",
        ],
        ..CASE
    },
    Case {
        name: "model-not-served",
        files: &[(
            "exp.yaml",
            Text::Good(
                &[(
                    "backend: simulated, accuracy: 0.8",
                    "backend: openai, base_url: \"{server}\", model: other-model",
                )],
                "",
            ),
        )],
        args: RUN,
        stderr: &[
            "{server} does not serve model `other-model`",
            "it serves: `fake-model`",
            "fix `model:`",
        ],
        ..CASE
    },
];

/// `text` with the placeholders replaced.
fn fill(text: &str, dir: &Path, urls: &(String, String)) -> String {
    text.replace("{dir}", &dir.display().to_string())
        .replace(
            "{fixtures}",
            &repo().join("tests/fixtures").display().to_string(),
        )
        .replace("{server}", &urls.0)
        .replace("{dead}", &urls.1)
}

fn rlaif(args: &[String], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rlaif"));
    command
        .args(args)
        .env_remove("RLAIF_CATALOGUE_UNSET_KEY")
        .env_remove("RUST_BACKTRACE");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("the rlaif binary runs")
}

/// Runs one case; returns what went wrong, if anything.
fn check(case: &Case, root: &Path, urls: &(String, String)) -> Result<(), String> {
    let dir = root.join(case.name);
    std::fs::create_dir_all(&dir).unwrap();
    let fill = |text: &str| fill(text, &dir, urls);
    for (path, text) in case.files {
        let text = match text {
            Text::Is(text) => fill(text),
            Text::Good(replacements, append) => {
                let mut good = GOOD.to_owned();
                for (from, to) in *replacements {
                    assert!(good.contains(from), "{}: `{from}` is in GOOD", case.name);
                    good = good.replace(from, to);
                }
                fill(&(good + append))
            }
        };
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    for before in case.before {
        let args: Vec<String> = before.iter().map(|arg| fill(arg)).collect();
        let output = rlaif(&args, case.env);
        if !output.status.success() {
            return Err(format!(
                "`rlaif {}` failed first: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    if let Some(setup) = case.setup {
        setup(&dir);
    }
    let args: Vec<String> = case.args.iter().map(|arg| fill(arg)).collect();
    let output = rlaif(&args, case.env);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if std::env::var_os("CATALOGUE_SHOW").is_some() {
        eprintln!(
            "--- {} (exit {:?})\n{stdout}{stderr}",
            case.name,
            output.status.code()
        );
    }
    let shown = || {
        format!(
            "\n  rlaif {}\n  stdout: {stdout}\n  stderr: {stderr}",
            args.join(" ")
        )
    };
    let mut problems = Vec::new();
    // A Rust panic exits with 101 and prints where it happened and how to see more.
    let panicked = output.status.code() == Some(101)
        || [&stdout, &stderr]
            .iter()
            .any(|text| text.contains("panicked at") || text.contains("RUST_BACKTRACE"));
    if panicked {
        problems.push("it panicked".to_owned());
    }
    if output.status.code() != Some(case.code) {
        problems.push(format!(
            "exit code {:?}, not {}",
            output.status.code(),
            case.code
        ));
    }
    for (stream, text, expected) in [
        ("stderr", &stderr, case.stderr),
        ("stdout", &stdout, case.stdout),
    ] {
        for words in expected {
            let words = fill(words);
            if !text.contains(&words) {
                problems.push(format!("{stream} lacks {words:?}"));
            }
        }
    }
    if case.code != 0 && case.stdout.is_empty() && !stdout.is_empty() {
        problems.push("a refusal printed to stdout".to_owned());
    }
    if problems.is_empty()
        && let Some(after) = case.after
    {
        let checked = std::panic::catch_unwind(|| after(&dir));
        if let Err(panic) = checked {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|text| (*text).to_owned()))
                .unwrap_or_default();
            problems.push(format!("what it left behind: {message}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}{}", problems.join("; "), shown()))
    }
}

/// A row of the catalogue: its case name, exit code and what backs it.
#[derive(Debug)]
struct Row {
    name: String,
    code: i32,
    backed_by: Vec<String>,
}

/// The rows of docs/failures.md's tables whose first column is a `name`.
fn catalogue_rows() -> Vec<Row> {
    let text = std::fs::read_to_string(repo().join("docs/failures.md")).unwrap();
    text.lines()
        .filter(|line| line.starts_with("| `"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 5, "a row has 5 columns: {line}");
            Row {
                name: cells[0].trim_matches('`').to_owned(),
                code: cells[3]
                    .parse()
                    .unwrap_or_else(|_| panic!("an exit code in: {line}")),
                backed_by: cells[4]
                    .split(',')
                    .map(|test| test.trim().trim_matches('`').to_owned())
                    .collect(),
            }
        })
        .collect()
}

/// Every row is a case of the table above or names a test that exists, with the same
/// exit code; every case is a row.
fn check_catalogue_matches() {
    let rows = catalogue_rows();
    for case in CASES {
        let row = rows
            .iter()
            .find(|row| row.name == case.name)
            .unwrap_or_else(|| panic!("case `{}` has no row in docs/failures.md", case.name));
        assert_eq!(row.code, case.code, "the exit code of `{}`", case.name);
        assert!(
            row.backed_by.iter().any(|test| test == "catalogue"),
            "the row of `{}` says the catalogue backs it",
            case.name
        );
    }
    for row in &rows {
        for test in &row.backed_by {
            if test == "catalogue" {
                assert!(
                    CASES.iter().any(|case| case.name == row.name),
                    "row `{}` names the catalogue, which has no such case",
                    row.name
                );
                continue;
            }
            let mut path = test.split("::");
            let file = path.next().unwrap();
            let function = path.last().unwrap_or_default();
            let source = std::fs::read_to_string(repo().join(format!("tests/{file}.rs")))
                .unwrap_or_else(|_| panic!("row `{}`: no tests/{file}.rs", row.name));
            assert!(
                source.contains(&format!("fn {function}(")),
                "row `{}`: tests/{file}.rs has no test `{function}`",
                row.name
            );
        }
    }
    let mut names: Vec<&str> = rows.iter().map(|row| row.name.as_str()).collect();
    names.sort_unstable();
    let count = names.len();
    names.dedup();
    assert_eq!(names.len(), count, "each case has one row");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_catalogued_failure_gives_its_message_and_exit_code_and_never_panics() {
    // A server that refuses, as vLLM does, a prompt beyond its context window.
    let server = FakeServer::start().await;
    server.respond_with(|request| {
        let prompt = request.body["prompt"].as_str()?;
        (request.path == COMPLETIONS && prompt.len() > 100_000).then(|| {
            let tokens = prompt.split_whitespace().count();
            Reply::json(
                400,
                &serde_json::json!({
                    "object": "error",
                    "type": "BadRequestError",
                    "code": 400,
                    "message": format!(
                        "This model's maximum context length is 4096 tokens. However, you \
                         requested {tokens} tokens in the prompt. Please reduce its length."
                    ),
                }),
            )
        })
    });
    let urls = (server.url(), fake_server::unreachable_url().await);

    let temp = tempfile::tempdir().unwrap();
    let root = temp.path().to_path_buf();
    let failures = tokio::task::spawn_blocking(move || {
        CASES
            .iter()
            .filter_map(|case| {
                check(case, &root, &urls)
                    .err()
                    .map(|problem| format!("`{}`: {problem}", case.name))
            })
            .collect::<Vec<String>>()
    })
    .await
    .unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
    check_catalogue_matches();
    eprintln!("{} catalogued failures checked", CASES.len());
}

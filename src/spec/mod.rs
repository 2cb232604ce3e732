//! The experiment file: YAML text → a validated [`Experiment`].
//!
//! Parsing goes through [`crate::yaml::parse`] into the raw types of [`raw`]; a
//! [`SourceMap`] read from the same text remembers where every key and value stands;
//! [`validate`] turns the raw types into domain types and reports every problem at once,
//! each with its file, line and column. Nothing after this stage re-checks the file.

mod diagnostic;
mod raw;
mod source_map;
pub mod validate;

use std::path::{Path, PathBuf};

use serde::Serialize;

pub use diagnostic::{Diagnostic, Invalid, SpecError};
pub use source_map::{Position, SourceMap};

use crate::backend::LabelerConfig;
use crate::data::DataSource;
use crate::grid::Grid;

/// Which orders each example is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PositionDebias {
    /// Both orders, averaged: the default, and the only way to measure position bias.
    Both,
    /// The stored order only.
    None,
    /// One order per example, chosen with the experiment's seed.
    Random,
}

/// A validated experiment.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub name: String,
    /// The task, naming its templates folder (`templates/<task>/`).
    pub task: String,
    pub dataset: DataSource,
    pub exemplars: Option<DataSource>,
    /// Labelers in declared order.
    pub labelers: Vec<(String, LabelerConfig)>,
    pub grid: Grid,
    pub position_debias: PositionDebias,
    pub seed: u64,
    /// A folder of templates overlaying the built-in ones.
    pub templates: Option<PathBuf>,
    /// The experiment file as the user named it.
    pub file: PathBuf,
}

impl Experiment {
    pub fn labeler(&self, name: &str) -> Option<&LabelerConfig> {
        self.labelers
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, config)| config)
    }
}

/// An experiment file's text with the positions of its nodes, kept so that later stages
/// can point problems at the line that causes them.
#[derive(Debug, Clone)]
pub struct Source {
    pub file: PathBuf,
    pub text: String,
    pub map: SourceMap,
}

impl Source {
    /// A problem at the value of `path` (or its nearest existing ancestor).
    pub fn diagnostic(&self, path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(self.map.nearest(path), message)
    }

    pub fn invalid(&self, diagnostics: Vec<Diagnostic>) -> Invalid {
        Invalid {
            file: self.file.clone(),
            text: self.text.clone(),
            diagnostics,
        }
    }
}

/// Reads and validates an experiment file.
pub fn load(file: &Path) -> Result<(Experiment, Source), SpecError> {
    let text = std::fs::read_to_string(file).map_err(|source| SpecError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    parse(file, text).map_err(SpecError::from)
}

/// Validates experiment text as if it were read from `file` (relative paths are resolved
/// against the file's folder).
pub fn parse(file: &Path, text: String) -> Result<(Experiment, Source), Invalid> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let invalid = |position: Position, message: String, hint: Option<String>, text: String| {
        let mut diagnostic = Diagnostic::new(position, message);
        diagnostic.hint = hint;
        Invalid {
            file: file.to_path_buf(),
            text,
            diagnostics: vec![diagnostic],
        }
    };
    if text.trim().is_empty() {
        return Err(invalid(
            Position::START,
            "the experiment file is empty".to_owned(),
            Some("see experiments/ for examples".to_owned()),
            text,
        ));
    }
    let map = match SourceMap::build(&text) {
        Ok(map) => map,
        Err((message, position)) => {
            return Err(invalid(
                position,
                format!("YAML syntax error: {message}"),
                None,
                text,
            ));
        }
    };
    let source = Source {
        file: file.to_path_buf(),
        text,
        map,
    };
    let mut checker = validate::Checker::new(&source.map, dir);
    let experiment = match crate::yaml::parse::<raw::RawExperiment>(&source.text) {
        Ok(raw) => checker.experiment(raw, file),
        Err(error) => {
            // A value of the wrong type stops the deserializer; unknown keys are still
            // worth reporting beside it.
            checker.unknown_keys("", validate_root_keys(), "the experiment");
            let position = match (error.line, error.column) {
                (Some(line), Some(column)) => Position { line, column },
                _ => Position::START,
            };
            let hint = type_hint(&error.message);
            let mut problems = checker.into_problems();
            let mut diagnostic = Diagnostic::new(position, error.message);
            diagnostic.hint = hint;
            problems.push(diagnostic);
            problems.sort_by_key(|problem| problem.position);
            return Err(source.invalid(problems));
        }
    };
    let mut problems = checker.into_problems();
    match experiment {
        Some(experiment) if problems.is_empty() => Ok((experiment, source)),
        _ => {
            problems.sort_by_key(|problem| problem.position);
            Err(source.invalid(problems))
        }
    }
}

fn validate_root_keys() -> &'static [&'static str] {
    validate::ROOT_KEYS
}

/// A fix for the deserializer's common type complaints.
fn type_hint(message: &str) -> Option<String> {
    if message.contains("expected a sequence")
        && (message.starts_with("exclude:") || message.starts_with("include:"))
    {
        Some(
            "a list of entries, each naming settings: write [{ cot: false, few_shot: 2 }]"
                .to_owned(),
        )
    } else if message.contains("expected a sequence") {
        Some("an axis is a list: write [value] or [a, b]".to_owned())
    } else if message.contains("expected a boolean") || message.contains("expected bool") {
        Some("write true or false".to_owned())
    } else if message.contains("expected i64")
        || message.contains("expected u64")
        || message.contains("expected usize")
    {
        Some("write a whole number".to_owned())
    } else if message.contains("expected f64") {
        Some("write a number".to_owned())
    } else if message.contains("expected a string") {
        Some("write a name or a quoted string".to_owned())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid;
    use proptest::prelude::*;

    fn fixture(name: &str) -> String {
        format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    /// An experiment whose top-level, grid, labeler and var keys are written in the
    /// order `order` picks.
    fn yaml(order: &[usize]) -> String {
        let top = [
            "name: demo".to_owned(),
            "task: summarization".to_owned(),
            format!("dataset: {{ path: {}, format: pairs }}", fixture("pairs.jsonl")),
            "labelers: { small: { model: smollm2-135m, backend: embedded }, sim: { seed: 3, backend: simulated } }".to_owned(),
            "seed: 11".to_owned(),
        ];
        let mut grid = [
            "few_shot: [0]",
            "cot: [false, true]",
            "self_consistency: [{temperature: 0.3, samples: 4}, {samples: 1, temperature: 0.0}]",
            "vars: { tone: [plain, strict], length: [1, 2] }",
            "preamble: [base, detailed]",
        ]
        .map(str::to_owned);
        let mut top = top.to_vec();
        permute(&mut top, order);
        permute(&mut grid, order);
        format!("{}\ngrid:\n  {}\n", top.join("\n"), grid.join("\n  "))
    }

    fn permute<T>(items: &mut [T], order: &[usize]) {
        for (index, &swap) in order.iter().enumerate() {
            let (a, b) = (index % items.len(), swap % items.len());
            items.swap(a, b);
        }
    }

    fn ids(text: String) -> Vec<String> {
        let (experiment, _) =
            parse(Path::new("exp.yaml"), text).unwrap_or_else(|invalid| panic!("{invalid}"));
        let mut ids: Vec<String> = grid::expand(&experiment.grid)
            .cells
            .into_iter()
            .map(|cell| cell.id)
            .collect();
        ids.sort();
        ids
    }

    proptest! {
        #[test]
        fn cell_ids_do_not_depend_on_key_order(order in prop::collection::vec(0usize..8, 0..8)) {
            prop_assert_eq!(ids(yaml(&order)), ids(yaml(&[])));
        }
    }

    #[test]
    fn relative_paths_resolve_against_the_file() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let text = "name: demo\ntask: summarization\ndataset: { format: pairs, path: pairs.jsonl }\nlabelers: { sim: { backend: simulated } }\n";
        let (experiment, _) = parse(&dir.join("exp.yaml"), text.to_owned()).unwrap();
        assert_eq!(experiment.dataset.path, dir.join("pairs.jsonl"));
        assert_eq!(experiment.grid.axes.labeler, ["sim"]);
        assert_eq!(experiment.grid.axes.preamble, ["base"]);
    }

    #[test]
    fn problems_are_sorted_and_rendered_with_the_source_line() {
        let text = "name: demo\ntask: summarization\ndataset: { format: pairs, path: nope.jsonl }\nlabelers: { sim: { backend: simulated, accuracy: 1.5 } }\n";
        let invalid = parse(Path::new("exp.yaml"), text.to_owned()).unwrap_err();
        let lines = invalid.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("exp.yaml:3:"), "{lines:?}");
        assert!(lines[1].starts_with("exp.yaml:4:") && lines[1].contains("`accuracy` is 1.5"));
        let shown = invalid.to_string();
        assert!(shown.contains("2 problems in exp.yaml"), "{shown}");
        assert!(shown.contains("4 | labelers: { sim:"), "{shown}");
    }

    fn with_labeler(labeler: &str) -> String {
        format!(
            "name: demo\ntask: summarization\ndataset: {{ format: pairs, path: {} }}\nlabelers:\n  small: {{ backend: embedded, model: smollm2-135m, {labeler} }}\n",
            fixture("pairs.jsonl")
        )
    }

    fn rationale_stop_of(labeler: &str) -> Vec<String> {
        let (experiment, _) = parse(Path::new("exp.yaml"), with_labeler(labeler))
            .unwrap_or_else(|invalid| panic!("{invalid}"));
        match experiment.labeler("small") {
            Some(LabelerConfig::Embedded { rationale_stop, .. }) => rationale_stop.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rationale_stops_are_one_string_or_a_list() {
        assert_eq!(
            rationale_stop_of("max_rationale_tokens: 64"),
            Vec::<String>::new()
        );
        assert_eq!(rationale_stop_of("rationale_stop: \"###\""), ["###"]);
        assert_eq!(
            rationale_stop_of("rationale_stop: [\"###\", \"\\n\\n\"]"),
            ["###", "\n\n"]
        );
    }

    #[test]
    fn threads_clash_with_another_labelers_workers_only_when_both_are_on_the_grid() {
        let both = with_labeler(
            "workers: 2 }\n  wide: { backend: embedded, model: smollm2-135m, threads: 2",
        );
        let (line, _) = the_one_problem(both.clone());
        assert!(
            line.starts_with("exp.yaml:6:") && line.contains("labeler `small` has 2 workers"),
            "{line}"
        );
        let wide_alone = format!("{both}grid: {{ labeler: [wide] }}\n");
        assert!(parse(Path::new("exp.yaml"), wide_alone).is_ok());
    }

    /// The one problem `text` has, as rendered, and the whole rendering.
    fn the_one_problem(text: String) -> (String, String) {
        let invalid = parse(Path::new("exp.yaml"), text).unwrap_err();
        let mut lines = invalid.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        (lines.remove(0), invalid.to_string())
    }

    #[test]
    fn empty_missing_repeated_and_too_many_rationale_stops_are_refused() {
        let (line, _) = the_one_problem(with_labeler("rationale_stop: [\"###\", \"\"]"));
        assert!(line.starts_with("exp.yaml:5:"), "{line}");
        assert!(
            line.contains("an empty `rationale_stop` would end every rationale"),
            "{line}"
        );

        // Unquoted, `###` is a comment: in block style the key is left without a value.
        let (line, shown) = the_one_problem(format!(
            "name: demo\ntask: summarization\ndataset: {{ format: pairs, path: {} }}\nlabelers:\n  small:\n    backend: embedded\n    model: smollm2-135m\n    rationale_stop: ###\n",
            fixture("pairs.jsonl")
        ));
        assert!(line.starts_with("exp.yaml:8:"), "{line}");
        assert!(line.contains("`rationale_stop` has no value"), "{line}");
        assert!(shown.contains("# starts a YAML comment"), "{shown}");

        for (labeler, problem) in [
            ("rationale_stop: []", "`rationale_stop` is an empty list"),
            (
                "rationale_stop: [a, b, a]",
                "a appears twice in `labelers.small.rationale_stop`",
            ),
            (
                "rationale_stop: [a, b, c, d]",
                "lists 4 strings, more than the 3 it can take",
            ),
        ] {
            let (line, _) = the_one_problem(with_labeler(labeler));
            assert!(line.contains(problem), "{labeler}: {line}");
        }

        let invalid = parse(
            Path::new("exp.yaml"),
            "name: demo\ntask: summarization\ndataset: { format: pairs, path: x.jsonl }\nlabelers: { sim: { backend: simulated, rationale_stop: \"###\" } }\n"
                .to_owned(),
        )
        .unwrap_err();
        assert!(
            invalid.to_string().contains(
                "`rationale_stop` does not apply to labeler `sim`, whose backend is `simulated`"
            ),
            "{invalid}"
        );
    }
}

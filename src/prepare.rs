//! Binds a validated experiment to its data and templates, and checks what only the
//! stages together can: that the task and preamble styles exist, that each cell's
//! few-shot count fits the exemplar pool, that the pool shares no example with the
//! evaluated pairs, and that every cell's templates render for a real example.
//!
//! After [`prepare`] succeeds, planning, rendering and running need no further checks.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::data::{self, DataError, Dataset, Example};
use crate::grid::{self, Cell, Expansion, Partial, Settings};
use crate::prompt::{CellPrompts, Order, PromptError, Templates};
use crate::report::table::thousands;
use crate::spec::validate::one_of_hint;
use crate::spec::{self, Diagnostic, Experiment, Invalid, Source, SpecError};

/// An experiment ready to plan, render or run.
#[derive(Debug)]
pub struct Prepared {
    pub experiment: Experiment,
    pub source: Source,
    pub dataset: Dataset,
    /// The exemplar pool, when the experiment declares one.
    pub exemplars: Option<Dataset>,
    pub templates: Templates,
    pub expansion: Expansion,
}

/// Why an experiment cannot be prepared. Every variant is a problem with the input.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Problems found across stages, located in the experiment file.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error(
        "{}: the grid has {} cells, more than {} (`rlaif plan {}` lists them; add --yes to run them all)",
        .file.display(), thousands(*.cells as u64), thousands(*.limit as u64), .file.display()
    )]
    TooManyCells {
        file: PathBuf,
        cells: usize,
        limit: usize,
    },
}

/// Reads, validates and binds an experiment file.
pub fn prepare(file: &Path) -> Result<Prepared, PrepareError> {
    prepare_with(file, None)
}

/// As [`prepare`], but refuses, before expanding it, a grid of more than `cell_limit`
/// cells: `rlaif run` asks for `--yes` before a grid that large.
pub fn prepare_with(file: &Path, cell_limit: Option<usize>) -> Result<Prepared, PrepareError> {
    let (experiment, source) = spec::load(file)?;
    let user_templates = experiment.templates.as_deref();

    let tasks = Templates::tasks(user_templates)?;
    if !tasks.contains(&experiment.task) {
        let hint = one_of_hint(&experiment.task, tasks.iter().map(String::as_str)).map(|hint| {
            let own = match user_templates {
                Some(folder) => format!("a folder under {}", folder.display()),
                None => "a folder under the one named by `templates:`".to_owned(),
            };
            format!("{hint}; a task of your own is {own}")
        });
        let mut diagnostic =
            source.diagnostic("task", format!("unknown task `{}`", experiment.task));
        diagnostic.hint = hint;
        return Err(source.invalid(vec![diagnostic]).into());
    }
    let templates = Templates::load(&experiment.task, user_templates)?;
    let dataset = data::load(&experiment.dataset)?;
    let exemplars = experiment.exemplars.as_ref().map(data::load).transpose()?;

    let mut problems = Vec::new();
    check_preambles(&experiment, &source, &templates, &mut problems);
    check_exemplars(
        &experiment,
        &source,
        &dataset,
        exemplars.as_ref(),
        &mut problems,
    );
    if !problems.is_empty() {
        problems.sort_by_key(|problem: &Diagnostic| problem.position);
        return Err(source.invalid(problems).into());
    }

    if let Some(limit) = cell_limit {
        let cells = grid::count(&experiment.grid);
        if cells > limit {
            return Err(PrepareError::TooManyCells {
                file: experiment.file.clone(),
                cells,
                limit,
            });
        }
    }
    let expansion = grid::expand(&experiment.grid);
    let prepared = Prepared {
        experiment,
        source,
        dataset,
        exemplars,
        templates,
        expansion,
    };
    prepared.check_rendering()?;
    Ok(prepared)
}

impl Prepared {
    /// The exemplars a cell shows: the first `few_shot` of the pool's seeded order, so a
    /// 2-shot cell extends the 1-shot cell's exemplar.
    pub fn exemplars_for(&self, settings: &Settings) -> Vec<&Example> {
        match &self.exemplars {
            Some(pool) => data::choose_exemplars(
                &pool.examples,
                settings.few_shot as usize,
                settings.exemplar_seed.unwrap_or(self.experiment.seed),
            ),
            None => Vec::new(),
        }
    }

    /// The prompts of one cell.
    pub fn prompts(&self, cell: &Cell) -> Result<CellPrompts<'_>, PromptError> {
        self.templates
            .for_cell(&cell.settings, &self.exemplars_for(&cell.settings))
    }

    /// The orders each example is shown in.
    pub fn orders(&self) -> &'static [Order] {
        match self.experiment.position_debias {
            spec::PositionDebias::Both => &[Order::Ab, Order::Ba],
            // A random order is drawn per example at run time; one prompt either way.
            spec::PositionDebias::None | spec::PositionDebias::Random => &[Order::Ab],
        }
    }

    /// Renders every cell's prompts for the first example, in every order, so that a
    /// template error (an undefined variable, say) stops `validate`, not a run.
    fn check_rendering(&self) -> Result<(), PromptError> {
        let Some(example) = self.dataset.examples.first() else {
            return Ok(());
        };
        for cell in &self.expansion.cells {
            let prompts = self.prompts(cell)?;
            for order in [Order::Ab, Order::Ba] {
                let prompt = prompts.render(example, order)?;
                if cell.settings.cot {
                    prompt.scoring_text_after("a rationale");
                }
            }
        }
        Ok(())
    }
}

/// Every preamble style named by the grid or by `include` must have a template.
fn check_preambles(
    experiment: &Experiment,
    source: &Source,
    templates: &Templates,
    problems: &mut Vec<Diagnostic>,
) {
    let styles = templates.preambles();
    let grid = &experiment.grid;
    let named = named_values(&grid.axes.preamble, "preamble", &grid.include, |partial| {
        partial.preamble.as_ref()
    });
    for (path, style) in named {
        if !styles.contains(style) {
            let file = format!("{}/preamble_{style}.j2", experiment.task);
            let create = match &experiment.templates {
                Some(folder) => format!("add {}/{file} to create it", folder.display()),
                None => format!(
                    "to create it, name a folder in `templates:` and add <folder>/{file} there"
                ),
            };
            let hint = one_of_hint(style, styles.iter().map(String::as_str))
                .map(|hint| format!("{hint}; {create}"));
            let mut diagnostic = source.diagnostic(
                &path,
                format!(
                    "unknown preamble style `{style}` for task `{}`",
                    experiment.task
                ),
            );
            diagnostic.hint = hint;
            problems.push(diagnostic);
        }
    }
}

/// Few-shot counts must fit the pool, an exemplar seed needs one, and the pool must not
/// contain evaluated pairs.
fn check_exemplars(
    experiment: &Experiment,
    source: &Source,
    dataset: &Dataset,
    exemplars: Option<&Dataset>,
    problems: &mut Vec<Diagnostic>,
) {
    let usable = exemplars.map_or(0, |pool| data::usable_exemplars(&pool.examples));
    let grid = &experiment.grid;
    let named = named_values(&grid.axes.few_shot, "few_shot", &grid.include, |partial| {
        partial.few_shot.as_ref()
    });
    for (path, &shots) in named {
        let shots = shots as usize;
        if shots == 0 || shots <= usable {
            continue;
        }
        let (message, hint) = match exemplars {
            None => (
                format!("few_shot {shots} needs exemplars, and the experiment has no pool"),
                "add `exemplars: { format: pairs, path: exemplars.jsonl }`".to_owned(),
            ),
            Some(_) => (
                format!("few_shot {shots} is more than the {usable} usable exemplars in the pool"),
                "add exemplars to the pool (ties cannot be exemplars) or lower few_shot".to_owned(),
            ),
        };
        problems.push(source.diagnostic(&path, message).hint(hint));
    }

    if exemplars.is_none() && !grid.axes.exemplar_seed.is_empty() {
        problems.push(
            source
                .diagnostic(
                    "grid.exemplar_seed",
                    "exemplar_seed chooses exemplars, and the experiment has no pool",
                )
                .hint("add `exemplars: { format: pairs, path: exemplars.jsonl }`"),
        );
    }

    if let Some(pool) = exemplars {
        // By id, and by context: the same post under another id (a file in another
        // format, a copy with new ids) would show the labeler the answer's context.
        let ids: BTreeSet<&str> = dataset.examples.iter().map(|e| e.id.as_str()).collect();
        let contexts: BTreeSet<&str> = dataset
            .examples
            .iter()
            .map(|e| e.context.as_str())
            .filter(|context| !context.trim().is_empty())
            .collect();
        let shared_context: Vec<&str> = pool
            .examples
            .iter()
            .filter(|example| contexts.contains(example.context.as_str()))
            .map(|example| example.id.as_str())
            .collect();
        // The same id on another pair: not a leak, but the two would be confused by id
        // (two HH-RLHF files number their lines alike, say).
        let shared_id: Vec<&str> = pool
            .examples
            .iter()
            .filter(|example| {
                ids.contains(example.id.as_str()) && !contexts.contains(example.context.as_str())
            })
            .map(|example| example.id.as_str())
            .collect();
        if let Some(first) = shared_context.first() {
            problems.push(
                source
                    .diagnostic(
                        "exemplars.path",
                        format!(
                            "{} exemplar(s) are also evaluated examples, or share their \
                             context (first: `{first}`)",
                            shared_context.len()
                        ),
                    )
                    .hint(
                        "the pool must be disjoint from the evaluated pairs; use another file, \
                         or `split: { holdout: 0.1, keep: holdout }` on exemplars and \
                         `keep: rest` on dataset",
                    ),
            );
        } else if let Some(first) = shared_id.first() {
            problems.push(
                source
                    .diagnostic(
                        "exemplars.path",
                        format!(
                            "{} exemplar(s) have the id of an evaluated example but are another \
                             pair (first: `{first}`)",
                            shared_id.len()
                        ),
                    )
                    .hint(
                        "ids must tell the two apart: with `format: hh-rlhf`, give the \
                         exemplars another `id_prefix:`; otherwise give the pool's pairs ids \
                         of their own",
                    ),
            );
        }
    }
}

/// Every value of one axis that the experiment names, with the key path it was written
/// at: the grid's own values, then those of `include` entries.
fn named_values<'e, T>(
    axis: &'e [T],
    key: &str,
    include: &'e [Partial],
    pick: impl Fn(&'e Partial) -> Option<&'e T>,
) -> Vec<(String, &'e T)> {
    let declared = axis
        .iter()
        .enumerate()
        .map(|(index, value)| (format!("grid.{key}[{index}]"), value));
    let included = include
        .iter()
        .enumerate()
        .filter_map(|(index, partial)| Some((format!("include[{index}].{key}"), pick(partial)?)));
    declared.chain(included).collect()
}

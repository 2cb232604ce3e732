//! The one place that knows the whole pipeline: each command is a short sequence of
//! stage calls. Output goes to the writer it is given; errors go back to `main`, which
//! prints them once and picks the exit code.

use std::io::Write;
use std::path::Path;

use crate::cli::{Cli, Command, OrderArg, PlanFormat};
use crate::plan;
use crate::prepare::{self, PrepareError, Prepared};
use crate::prompt::{Order, PromptError};
use crate::runner::{self, RunError, RunOptions};
use crate::spec::validate::suggest;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    #[error(transparent)]
    Prompt(#[from] PromptError),
    #[error("no cell `{name}` in {file}{}", hint_suffix(.hint))]
    UnknownCell {
        name: String,
        file: String,
        hint: Option<String>,
    },
    #[error(
        "no example `{example}` in the dataset of {file} (give an id, or a position from 0 to {last})"
    )]
    UnknownExample {
        example: String,
        file: String,
        last: usize,
    },
    #[error(
        "the prompt for `{cell}` has no rationale step (--rationale applies to chain-of-thought cells)"
    )]
    NoRationaleStep { cell: String },
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot write output")]
    Output(#[source] std::io::Error),
}

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The run finished, but some calls failed (their examples are recorded as such).
    CallsFailed,
    /// Stopped by Ctrl-C; rerunning the same command resumes.
    Interrupted,
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::CallsFailed => 1,
            Outcome::Interrupted => 130,
        }
    }
}

impl AppError {
    /// The process exit code: 2 for bad input (nothing was run), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Output(_) | AppError::Runtime(_) => 1,
            // A labeler that fails its preflight means nothing was sent: fix and rerun.
            AppError::Run(RunError::Preflight { .. } | RunError::Build(_)) => 2,
            AppError::Run(_) => 1,
            _ => 2,
        }
    }
}

fn hint_suffix(hint: &Option<String>) -> String {
    hint.as_ref()
        .map(|hint| format!(" ({hint})"))
        .unwrap_or_default()
}

/// Runs one command.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<Outcome, AppError> {
    let written =
        |result: std::io::Result<()>| result.map(|()| Outcome::Success).map_err(AppError::Output);
    match cli.command {
        Command::Validate { file } => validate(&file, out).map(|()| Outcome::Success),
        Command::Plan { file, format } => {
            let prepared = prepare::prepare(&file)?;
            let plan = plan::plan(&prepared)?;
            let text = match format {
                PlanFormat::Text => plan.to_text(),
                PlanFormat::Json => plan.to_json() + "\n",
            };
            written(out.write_all(text.as_bytes()))
        }
        Command::Render {
            file,
            cell,
            example,
            order,
            rationale,
        } => {
            let prepared = prepare::prepare(&file)?;
            let text = render(&prepared, &cell, &example, order, rationale.as_deref())?;
            written(out.write_all(text.as_bytes()))
        }
        Command::Run {
            file,
            results,
            fresh,
            quiet,
        } => run_experiment(
            &file,
            &RunOptions {
                results,
                fresh,
                quiet,
            },
            out,
        ),
    }
}

fn run_experiment(
    file: &Path,
    options: &RunOptions,
    out: &mut dyn Write,
) -> Result<Outcome, AppError> {
    let prepared = prepare::prepare(file)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(AppError::Runtime)?;
    let outcome = runtime.block_on(runner::run(&prepared, options))?;
    if outcome.interrupted {
        eprintln!(
            "rlaif: interrupted; {} judgments are saved in {}. Resume with: rlaif run {}{}",
            outcome.judged,
            outcome.run_dir.display(),
            file.display(),
            if options.results == Path::new("results") {
                String::new()
            } else {
                format!(" --results {}", options.results.display())
            }
        );
        return Ok(Outcome::Interrupted);
    }
    write!(out, "{}", outcome.table).map_err(AppError::Output)?;
    writeln!(
        out,
        "\nreport: {}\nsummary: {}",
        outcome.run_dir.join("report.md").display(),
        outcome.run_dir.join("summary.json").display()
    )
    .map_err(AppError::Output)?;
    if outcome.failed > 0 {
        eprintln!(
            "rlaif: {} judgments failed (see failure in {}); rerun the same command to retry them",
            outcome.failed,
            outcome.run_dir.join("judgments.jsonl").display()
        );
        return Ok(Outcome::CallsFailed);
    }
    Ok(Outcome::Success)
}

fn validate(file: &Path, out: &mut dyn Write) -> Result<(), AppError> {
    let prepared = prepare::prepare(file)?;
    let pool = prepared.exemplars.as_ref().map_or(String::new(), |pool| {
        format!(", {} exemplars in the pool", pool.examples.len())
    });
    writeln!(
        out,
        "{} is valid: {} cells ({} collapsed, {} excluded), {} examples{pool}",
        file.display(),
        prepared.expansion.cells.len(),
        prepared.expansion.collapsed.len(),
        prepared.expansion.excluded,
        prepared.dataset.examples.len(),
    )
    .map_err(AppError::Output)
}

/// The exact text a cell sends for one example.
pub fn render(
    prepared: &Prepared,
    cell_name: &str,
    example: &str,
    order: OrderArg,
    rationale: Option<&str>,
) -> Result<String, AppError> {
    let file = prepared.experiment.file.display().to_string();
    let cells = &prepared.expansion;
    let cell = cells.find(cell_name).ok_or_else(|| {
        let names = cells.cells.iter().map(|cell| cell.name.as_str());
        let hint = match suggest(cell_name, names) {
            Some(near) => Some(format!("did you mean `{near}`?")),
            None => Some("`rlaif plan` lists the cells".to_owned()),
        };
        AppError::UnknownCell {
            name: cell_name.to_owned(),
            file: file.clone(),
            hint,
        }
    })?;
    let examples = &prepared.dataset.examples;
    let chosen = examples
        .iter()
        .find(|candidate| candidate.id == example)
        .or_else(|| example.parse::<usize>().ok().and_then(|i| examples.get(i)))
        .ok_or_else(|| AppError::UnknownExample {
            example: example.to_owned(),
            file,
            last: examples.len().saturating_sub(1),
        })?;
    let order = match order {
        OrderArg::Ab => Order::Ab,
        OrderArg::Ba => Order::Ba,
    };
    let prompt = prepared.prompts(cell)?.render(chosen, order)?;
    match (cell.settings.cot, rationale) {
        (false, None) => Ok(prompt.scoring_text()),
        (false, Some(_)) => Err(AppError::NoRationaleStep {
            cell: cell.name.clone(),
        }),
        (true, None) => Ok(prompt.generation_text().unwrap_or_default()),
        (true, Some(rationale)) => Ok(prompt.scoring_text_after(rationale)),
    }
}

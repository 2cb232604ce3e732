//! The one place that knows the whole pipeline: each command is a short sequence of
//! stage calls. Output goes to the writer it is given; errors go back to `main`, which
//! prints them once and picks the exit code.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::backend;
use crate::cache::{self, CacheError, Repair};
use crate::cli::{
    CacheAction, Cli, Command, CompareFormat, MetricArg, ModelsCommand, OrderArg, PlanFormat,
    ReportFormat, TableArg,
};
use crate::grid::Cell;
use crate::label::{self, LabelError, LabelOptions};
use crate::models::{self, ConsoleProgress, PullError, Pulled};
use crate::plan;
use crate::prepare::{self, PrepareError, Prepared};
use crate::prompt::{Order, PromptError};
use crate::report;
use crate::report::compare::{self, CompareOptions, Side};
use crate::report::pivot::{self, Filter, Metric, PivotError, PivotSpec, Preset, Tables};
use crate::report::run_folder::{
    RunFolderError, find_run, read_judgments, read_summary, report_context, run_task, stale_summary,
};
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
    #[error(transparent)]
    Label(#[from] LabelError),
    #[error(transparent)]
    RunFolder(#[from] RunFolderError),
    #[error(transparent)]
    Pivot(#[from] PivotError),
    #[error(
        "--format html renders the whole report (drop --rows, --cols and --table, or use md, csv or json)"
    )]
    HtmlLayout,
    #[error(transparent)]
    Models(#[from] PullError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error(
        "cannot start rlaif again with one thread per embedded worker (set RAYON_NUM_THREADS=1 and CANDLE_NUM_THREADS=1 yourself, or set `workers: 1`)"
    )]
    Restart(#[source] std::io::Error),
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
            AppError::Output(_) | AppError::Runtime(_) | AppError::Restart(_) => 1,
            // A labeler that fails its preflight means nothing was sent: fix and rerun.
            AppError::Run(
                RunError::Preflight { .. } | RunError::Build(_) | RunError::Prompt(_),
            ) => 2,
            // So does a damaged cache: nothing was sent, the file needs a repair.
            AppError::Run(RunError::Cache(error))
            | AppError::Label(LabelError::Cache(error))
            | AppError::Cache(error) => match error {
                CacheError::Damaged { .. }
                | CacheError::Unhealthy { .. }
                | CacheError::Missing { .. } => 2,
                _ => 1,
            },
            AppError::Run(_) => 1,
            AppError::Label(
                LabelError::Input { .. }
                | LabelError::Output { .. }
                | LabelError::OtherConfiguration { .. }
                | LabelError::OtherPair { .. }
                | LabelError::SameFile { .. }
                | LabelError::Preflight { .. }
                | LabelError::Build(_)
                | LabelError::Prompt(_),
            ) => 2,
            AppError::Label(LabelError::Read { source, .. } | LabelError::Write { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                2
            }
            AppError::Label(_) => 1,
            AppError::Models(PullError::UnknownModel { .. }) => 2,
            // The network, the index, pip or the disk: the command was right.
            AppError::Models(_) => 1,
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
            yes,
        } => run_experiment(
            &file,
            &RunOptions {
                results,
                fresh,
                quiet,
            },
            yes,
            out,
        ),
        Command::Label {
            file,
            cell,
            input,
            output,
            results,
            quiet,
        } => label_pairs(
            &file,
            &cell,
            &LabelOptions {
                input,
                output,
                results,
                quiet,
            },
            out,
        ),
        Command::Report {
            run,
            format,
            rows,
            cols,
            metric,
            filters,
            table,
        } => {
            let request = ReportRequest {
                run,
                format,
                rows,
                cols,
                metric: metric.map_or(Metric::Alignment, metric_of),
                filters,
                table,
            };
            written(out.write_all(report_run(&request)?.as_bytes()))
        }
        Command::Compare {
            run_a,
            run_b,
            format,
        } => written(out.write_all(compare_runs(&run_a, &run_b, format)?.as_bytes())),
        Command::Models {
            command: ModelsCommand::List,
        } => {
            let dir = models::models_dir().ok();
            written(out.write_all(models::listing(dir.as_deref()).as_bytes()))
        }
        Command::Models {
            command: ModelsCommand::Pull { name, force, quiet },
        } => pull_model(&name, force, quiet, out),
        Command::Cache {
            action: CacheAction::Check { results },
        } => {
            let health = cache::check(&results)?;
            out.write_all(health.report().as_bytes())
                .map_err(AppError::Output)?;
            if health.is_healthy() {
                Ok(Outcome::Success)
            } else {
                Err(CacheError::Unhealthy {
                    path: health.path.clone(),
                    readable: health.readable(),
                }
                .into())
            }
        }
        Command::Cache {
            action: CacheAction::Repair { results },
        } => {
            // A run or a labeling writing to the cache while it is rebuilt would lose its
            // answers.
            if let Some((holder, pid)) = runner::active_run(&results) {
                return Err(CacheError::InUse {
                    path: results.join(cache::FILE),
                    pid,
                    holder,
                }
                .into());
            }
            let repair: Repair = cache::repair(&results)?;
            written(out.write_all(repair.report().as_bytes()))
        }
    }
}

/// `rlaif models pull`: installs a model, or says it is there already.
fn pull_model(
    name: &str,
    force: bool,
    quiet: bool,
    out: &mut dyn Write,
) -> Result<Outcome, AppError> {
    let card = models::lookup(name)?;
    let pulled = {
        // Dropped before anything is printed, so that the bar is cleared first.
        let mut progress = ConsoleProgress::new(quiet);
        models::pull(name, force, &mut progress)?
    };
    let line = match &pulled {
        Pulled::Installed(path) => format!(
            "installed {name} ({}, sha256 checked): {}",
            models::file_size(card.size),
            path.display()
        ),
        Pulled::AlreadyInstalled(path) => format!(
            "{name} is already installed, nothing downloaded (--force pulls it again): {}",
            path.display()
        ),
    };
    writeln!(out, "{line}").map_err(AppError::Output)?;
    Ok(Outcome::Success)
}

/// The async runtime the commands that call labelers run on.
fn runtime() -> Result<tokio::runtime::Runtime, AppError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(AppError::Runtime)
}

/// The `--results` part of a resume command: nothing for the default root.
fn results_flag(results: &Path) -> String {
    if results == Path::new("results") {
        String::new()
    } else {
        format!(" --results {}", results.display())
    }
}

/// Grids above this many cells run only with `--yes` (see `rlaif run --help`).
const CONFIRM_ABOVE_CELLS: usize = 10_000;

fn run_experiment(
    file: &Path,
    options: &RunOptions,
    yes: bool,
    out: &mut dyn Write,
) -> Result<Outcome, AppError> {
    let limit = (!yes).then_some(CONFIRM_ABOVE_CELLS);
    let prepared = prepare::prepare_with(file, limit)?;
    // Only the labelers the grid runs: one declared but left off the grid starts no
    // worker, so it cannot decide the process's threads.
    backend::settle_threads(
        prepared
            .experiment
            .labelers
            .iter()
            .filter(|(name, _)| {
                prepared
                    .expansion
                    .cells
                    .iter()
                    .any(|cell| &cell.settings.labeler == name)
            })
            .map(|(_, config)| config),
    )
    .map_err(AppError::Restart)?;
    let runtime = runtime()?;
    let outcome = runtime.block_on(runner::run(&prepared, options))?;
    let resume = format!(
        "rlaif run {}{}",
        file.display(),
        results_flag(&options.results)
    );
    if outcome.interrupted {
        eprintln!(
            "rlaif: interrupted; {} judgments are saved in {}. Resume with: {resume}",
            outcome.judged,
            outcome.run_dir.display(),
        );
        return Ok(Outcome::Interrupted);
    }
    if let Some(stop) = &outcome.stopped {
        eprintln!(
            "rlaif: stopped, a {}: {}\n\
             rlaif: {} judgments are saved in {}. Once {}, resume with: {resume}",
            stop.what,
            stop.message,
            outcome.judged,
            outcome.run_dir.display(),
            stop.until,
        );
        return Ok(Outcome::CallsFailed);
    }
    write!(out, "{}", outcome.table).map_err(AppError::Output)?;
    writeln!(
        out,
        "\nreport: {}\nsummary: {}",
        outcome.run_dir.join("report.md").display(),
        outcome.run_dir.join("summary.json").display()
    )
    .map_err(AppError::Output)?;
    let journal = outcome.run_dir.join("judgments.jsonl");
    if outcome.failed > 0 {
        eprintln!(
            "rlaif: {} judgments failed for reasons that may pass (see `failure` in {}); \
             rerun the same command to retry them",
            outcome.failed,
            journal.display()
        );
    }
    if outcome.failed_permanently > 0 {
        eprintln!(
            "rlaif: {} judgments failed for good (an unusable answer, a refused request or \
             a template error; see `failure` in {}); rerunning will not change them",
            outcome.failed_permanently,
            journal.display()
        );
    }
    if outcome.failed + outcome.failed_permanently > 0 {
        return Ok(Outcome::CallsFailed);
    }
    Ok(Outcome::Success)
}

/// The cell named (or with the id) `cell_name`, or an error with the nearest name.
fn find_cell<'a>(prepared: &'a Prepared, cell_name: &str) -> Result<&'a Cell, AppError> {
    let cells = &prepared.expansion;
    cells.find(cell_name).ok_or_else(|| {
        let names = cells.cells.iter().map(|cell| cell.name.as_str());
        let hint = match suggest(cell_name, names) {
            Some(near) => Some(format!("did you mean `{near}`?")),
            None => Some("`rlaif plan` lists the cells".to_owned()),
        };
        AppError::UnknownCell {
            name: cell_name.to_owned(),
            file: prepared.experiment.file.display().to_string(),
            hint,
        }
    })
}

fn label_pairs(
    file: &Path,
    cell_name: &str,
    options: &LabelOptions,
    out: &mut dyn Write,
) -> Result<Outcome, AppError> {
    let prepared = prepare::prepare(file)?;
    let cell = find_cell(&prepared, cell_name)?;
    backend::settle_threads(prepared.experiment.labeler(&cell.settings.labeler))
        .map_err(AppError::Restart)?;
    let runtime = runtime()?;
    let outcome = runtime.block_on(label::label(&prepared, cell, options))?;
    let resume = format!(
        "rlaif label {} --cell {} --input {} --output {}{}",
        file.display(),
        cell.name,
        options.input.display(),
        options.output.display(),
        results_flag(&options.results)
    );
    if outcome.interrupted {
        eprintln!(
            "rlaif: interrupted; {} pairs are labeled in {}. Resume with: {resume}",
            outcome.labeled + outcome.already,
            options.output.display(),
        );
        return Ok(Outcome::Interrupted);
    }
    if let Some(stop) = &outcome.stopped {
        eprintln!(
            "rlaif: stopped, the {}: {}\n\
             rlaif: {} pairs are labeled in {}. Once {}, resume with: {resume}",
            stop.what,
            stop.message,
            outcome.labeled + outcome.already,
            options.output.display(),
            stop.until,
        );
        return Ok(Outcome::CallsFailed);
    }
    writeln!(
        out,
        "labeled {} pairs with {} ({} from an earlier run): {}",
        outcome.labeled,
        cell.name,
        outcome.already,
        options.output.display()
    )
    .map_err(AppError::Output)?;
    let rationales = outcome.rationales;
    if rationales.capped * 2 > rationales.reported {
        eprintln!(
            "rlaif: the rationale ran out of tokens in {} of {} samples: those labels were \
             read after a cut-off text (rationale_capped in the output). A larger \
             max_rationale_tokens helps a long rationale, not a loop.",
            rationales.capped, rationales.reported
        );
    }
    if outcome.failed > 0 {
        eprintln!(
            "rlaif: {} pairs failed and are not in the output (first: {}); rerun the same \
             command to retry them: {resume}",
            outcome.failed,
            outcome.first_failure.as_deref().unwrap_or("no message"),
        );
        return Ok(Outcome::CallsFailed);
    }
    Ok(Outcome::Success)
}

fn validate(file: &Path, out: &mut dyn Write) -> Result<(), AppError> {
    let prepared = prepare::prepare(file)?;
    let pool = prepared.exemplars.as_ref().map_or(String::new(), |pool| {
        let count = pool.examples.len();
        format!(
            ", {count} {} in the pool",
            report::plural(count, "exemplar", "exemplars")
        )
    });
    // Pairs that are valid but easy or unanswerable: worth knowing before the numbers.
    let flagged = &prepared.dataset.flagged;
    let flagged = if flagged.is_empty() {
        String::new()
    } else {
        let counts: Vec<String> = flagged
            .iter()
            .map(|(reason, count)| format!("{count} with {reason}"))
            .collect();
        format!(" (kept, but {})", counts.join(", "))
    };
    let cells = prepared.expansion.cells.len();
    let examples = prepared.dataset.examples.len();
    writeln!(
        out,
        "{} is valid: {cells} {} ({} collapsed, {} excluded), {examples} {}{flagged}{pool}",
        file.display(),
        report::plural(cells, "cell", "cells"),
        prepared.expansion.collapsed.len(),
        prepared.expansion.excluded,
        report::plural(examples, "example", "examples"),
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
    let cell = find_cell(prepared, cell_name)?;
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
        (true, Some(rationale)) => {
            // As a run would score this text had the labeler written it.
            let stops = prepared
                .experiment
                .labeler(&cell.settings.labeler)
                .map_or(&[][..], |config| config.rationale_stop());
            let rationale = crate::procedure::scored_rationale(&prompt, rationale, stops);
            Ok(prompt.scoring_text_after(&rationale))
        }
    }
}

/// What `rlaif report` was asked for.
#[derive(Debug)]
struct ReportRequest {
    run: PathBuf,
    format: Option<ReportFormat>,
    rows: Vec<String>,
    cols: Vec<String>,
    metric: Metric,
    filters: Vec<String>,
    table: Option<TableArg>,
}

fn metric_of(metric: MetricArg) -> Metric {
    match metric {
        MetricArg::Alignment => Metric::Alignment,
        MetricArg::PositionBias => Metric::PositionBias,
        MetricArg::PreferFirst => Metric::PreferFirst,
        MetricArg::PreferLonger => Metric::PreferLonger,
        MetricArg::HumanPreferLonger => Metric::HumanPreferLonger,
        MetricArg::MeanConfidence => Metric::MeanConfidence,
        MetricArg::Ece => Metric::Ece,
        MetricArg::LogLoss => Metric::LogLoss,
        MetricArg::Calls => Metric::Calls,
        MetricArg::PromptTokens => Metric::PromptTokens,
        MetricArg::CompletionTokens => Metric::CompletionTokens,
        MetricArg::Tokens => Metric::Tokens,
        MetricArg::CacheHits => Metric::CacheHits,
        MetricArg::Cost => Metric::Cost,
        MetricArg::Failures => Metric::Failures,
        MetricArg::N => Metric::N,
        MetricArg::RationaleWritten => Metric::RationaleWritten,
        MetricArg::RationaleChars => Metric::RationaleChars,
        MetricArg::RationaleCapped => Metric::RationaleCapped,
    }
}

fn preset_of(table: TableArg) -> Preset {
    match table {
        TableArg::Prompting => Preset::Prompting,
        TableArg::SelfConsistency => Preset::SelfConsistency,
        TableArg::Size => Preset::Size,
        TableArg::PositionBias => Preset::PositionBias,
    }
}

/// `rlaif report`: the whole report in one format, a pivot, or a preset of the paper's.
fn report_run(request: &ReportRequest) -> Result<String, AppError> {
    let layout = request.table.is_some() || !request.rows.is_empty() || !request.cols.is_empty();
    if layout && request.format == Some(ReportFormat::Html) {
        return Err(AppError::HtmlLayout);
    }
    let dir = find_run(&request.run)?;
    let summary = read_summary(&dir)?;
    if let Some(note) = stale_summary(&dir)? {
        eprintln!("rlaif: note: {note}");
    }
    let filters = request
        .filters
        .iter()
        .map(|text| Filter::parse(text))
        .collect::<Result<Vec<Filter>, PivotError>>()?;
    let tables = if let Some(table) = request.table {
        let task = run_task(&dir)?;
        pivot::preset(&summary, preset_of(table), &filters, task.as_deref())?
    } else if layout {
        let spec = PivotSpec {
            rows: request.rows.clone(),
            cols: request.cols.clone(),
            filters,
            metric: request.metric,
        };
        pivot::pivot(&summary, &spec)?
    } else {
        return Ok(match request.format.unwrap_or(ReportFormat::Md) {
            ReportFormat::Md => report::report_md(&summary, &report_context(&dir, &summary)?),
            ReportFormat::Csv => report::cells_csv(&summary),
            ReportFormat::Json => report::summary_json(&summary),
            ReportFormat::Html => report::report_html(&summary, &report_context(&dir, &summary)?),
        });
    };
    tables_text(&tables, request.format)
}

fn tables_text(tables: &Tables, format: Option<ReportFormat>) -> Result<String, AppError> {
    match format.unwrap_or(ReportFormat::Md) {
        ReportFormat::Md => Ok(tables.markdown()),
        ReportFormat::Csv => Ok(tables.csv()),
        ReportFormat::Json => Ok(tables.json()),
        ReportFormat::Html => Err(AppError::HtmlLayout),
    }
}

/// `rlaif compare`: the cells two runs share, with the differences' intervals.
fn compare_runs(a: &Path, b: &Path, format: CompareFormat) -> Result<String, AppError> {
    let (dir_a, dir_b) = (find_run(a)?, find_run(b)?);
    let (summary_a, summary_b) = (read_summary(&dir_a)?, read_summary(&dir_b)?);
    for dir in [&dir_a, &dir_b] {
        if let Some(note) = stale_summary(dir)? {
            eprintln!("rlaif: note: {note}");
        }
    }
    let (judgments_a, judgments_b) = (read_judgments(&dir_a)?, read_judgments(&dir_b)?);
    let comparison = compare::compare(
        Side {
            summary: &summary_a,
            judgments: &judgments_a,
        },
        Side {
            summary: &summary_b,
            judgments: &judgments_b,
        },
        &CompareOptions::of(&summary_a),
    );
    Ok(match format {
        CompareFormat::Md => comparison.markdown(),
        CompareFormat::Csv => comparison.csv(),
        CompareFormat::Json => comparison.json(),
    })
}

//! `rlaif run`: every cell over every example, against the labelers, with nothing lost.
//!
//! The executor labels (cell, example) units with bounded concurrency, in cell-major
//! order with both orders of an example together, so a server's prefix cache sees
//! similar prompts close in time. One collector owns the journal, the progress display
//! and the counts: each judgment is appended the moment it completes. A rerun of the same
//! file finds the same run folder, skips what the journal holds, and answers from the
//! call cache whatever was paid for before, so a killed run resumes without paying twice.
//! Ctrl-C stops scheduling, drops what is in flight (its finished calls are cached) and
//! says how to resume; so does a labeler's server that cannot be reached after every
//! retry, since each further call would fail the same way.

mod journal;
mod progress;
mod run_dir;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use serde::Serialize;

pub use journal::{Journal, JournalError};
pub use run_dir::{RunDir, RunDirError, active_run, label_lock, run_id};

use crate::backend::{self, BuildError, CallError, LabelerConfig, Mode};
use crate::cache::{Cache, CacheError, CachedLabeler};
use crate::metrics::{self, Judged, Scored};
use crate::prepare::Prepared;
use crate::procedure::{Failure, Judgment, Procedure, Stop};
use crate::prompt::PromptError;
use crate::report::{self, LabelerInfo, LabelerLine, ReportContext, Summary};

use progress::Progress;

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The results root (`results/` by default).
    pub results: PathBuf,
    /// Start a new run folder instead of resuming.
    pub fresh: bool,
    /// No progress display (tests, scripts).
    pub quiet: bool,
}

/// What a finished or interrupted run produced.
#[derive(Debug)]
pub struct RunOutcome {
    pub run_id: String,
    pub run_dir: PathBuf,
    /// Judgments in the journal, for the current grid.
    pub judged: usize,
    /// Of those, judgments whose calls failed for a reason that may pass (retried when
    /// the run is resumed)...
    pub failed: usize,
    /// ...and those that would fail again (kept as they are).
    pub failed_permanently: usize,
    pub interrupted: bool,
    /// Why the run stopped before the end: a labeler that cannot answer at all (every
    /// further call would fail the same way).
    pub stopped: Option<Stop>,
    /// The ranked table for the terminal (empty when interrupted or stopped).
    pub table: String,
}

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("labeler `{labeler}` failed its preflight check, so no example was sent")]
    Preflight {
        labeler: String,
        #[source]
        error: CallError,
    },
    #[error(transparent)]
    Prompt(#[from] PromptError),
}

/// The run's manifest: what was run, on what, and how it went.
#[derive(Debug, Serialize)]
struct Manifest<'a> {
    rlaif_version: &'static str,
    experiment: &'a str,
    run_id: &'a str,
    file: String,
    status: &'static str,
    /// When the run first started; a resumed run keeps it.
    started_unix: u64,
    /// When this process took the run up again, if it is a resumption.
    resumed_unix: Option<u64>,
    ended_unix: Option<u64>,
    /// Wall time of this process's part of the run.
    wall_seconds: Option<f64>,
    /// Wall time of every process that worked on the run, this one included, so that a
    /// run resumed across sessions still states what it cost. A running process
    /// rewrites its figures every [`MANIFEST_EVERY`], so one that is killed loses at
    /// most that much of them.
    total_wall_seconds: f64,
    dataset: DataManifest,
    exemplars: Option<DataManifest>,
    templates_sha256: String,
    task: &'a str,
    cells: usize,
    collapsed: usize,
    labelers: Vec<LabelerManifest>,
    judgments: usize,
    failures: usize,
    /// Backend calls this process made, counted as each was answered, whether or not
    /// its example was judged before the process ended.
    calls_made: u64,
    calls_from_cache: u64,
    /// Calls made by every process that worked on the run, this one included.
    total_calls_made: u64,
}

/// How often a running process brings its manifest's wall time and calls up to date.
const MANIFEST_EVERY: Duration = Duration::from_secs(1);

impl Manifest<'_> {
    /// This process's spend so far, and the run's with it.
    fn spent(&mut self, earlier: EarlierSpend, wall_seconds: f64, calls: (u64, u64)) {
        let (calls_made, calls_from_cache) = calls;
        self.wall_seconds = Some(wall_seconds);
        self.total_wall_seconds = earlier.wall_seconds + wall_seconds;
        self.calls_made = calls_made;
        self.calls_from_cache = calls_from_cache;
        self.total_calls_made = earlier.calls_made + calls_made;
    }
}

/// What the processes before this one spent on a run, read from the manifest they left.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct EarlierSpend {
    started_unix: Option<u64>,
    wall_seconds: f64,
    calls_made: u64,
}

impl EarlierSpend {
    /// An unreadable or missing manifest counts as nothing spent. A manifest written
    /// before totals were kept holds only its own process's figures, which are the
    /// totals when that process was the run's first.
    fn read(manifest: &std::path::Path) -> EarlierSpend {
        let Some(earlier) = std::fs::read_to_string(manifest)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        else {
            return EarlierSpend::default();
        };
        let figure = |total: &str, own: &str| earlier.get(total).or_else(|| earlier.get(own));
        EarlierSpend {
            started_unix: earlier.get("started_unix").and_then(|value| value.as_u64()),
            wall_seconds: figure("total_wall_seconds", "wall_seconds")
                .and_then(|value| value.as_f64())
                .unwrap_or(0.0),
            calls_made: figure("total_calls_made", "calls_made")
                .and_then(|value| value.as_u64())
                .unwrap_or(0),
        }
    }
}

#[derive(Debug, Serialize)]
struct DataManifest {
    path: String,
    sha256: String,
    records: usize,
    examples: usize,
    dropped: BTreeMap<String, usize>,
    flagged: BTreeMap<String, usize>,
}

impl DataManifest {
    fn of(source: &crate::data::DataSource, dataset: &crate::data::Dataset) -> DataManifest {
        DataManifest {
            path: source.path.display().to_string(),
            sha256: dataset.file_sha256.clone(),
            records: dataset.records,
            examples: dataset.examples.len(),
            dropped: dataset.dropped.clone(),
            flagged: dataset.flagged.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
struct LabelerManifest {
    name: String,
    backend: &'static str,
    identity: String,
    mode: &'static str,
    /// Every setting that can change an answer, as the run id counts them: two labelers
    /// of one model and identity may differ here (rationale length or stops, top-k).
    settings: serde_json::Value,
    /// How an embedded labeler computed: the run's speed depends on it.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    compute: Option<EmbeddedCompute>,
}

#[derive(Debug, Serialize)]
struct EmbeddedCompute {
    workers: usize,
    threads_per_worker: usize,
}

/// The mode a labeler's preferences are read in, as reports show it.
pub fn mode_of(config: &LabelerConfig) -> &'static str {
    match config {
        LabelerConfig::Simulated { .. } => "simulated",
        LabelerConfig::Openai {
            mode: Mode::Parsed, ..
        } => "parsed",
        _ => "logprobs",
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// Runs every cell of a prepared experiment.
pub async fn run(prepared: &Prepared, options: &RunOptions) -> Result<RunOutcome, RunError> {
    let experiment = &prepared.experiment;
    let started = Instant::now();
    let started_unix = now_unix();
    // Listen for Ctrl-C from the start, so that it stops a slow preflight cleanly too.
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    let run_dir = RunDir::open(
        &options.results,
        &experiment.name,
        &run_id(prepared),
        options.fresh,
    )?;
    run_dir.write("experiment.yaml", &prepared.source.text)?;

    // Build and check every labeler the grid uses before anything is sent.
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(BuildError::Client)?;
    let cache = Arc::new(Cache::open(&options.results.join(crate::cache::FILE))?);
    let mut labelers: BTreeMap<&str, CachedLabeler> = BTreeMap::new();
    for cell in &prepared.expansion.cells {
        let name = cell.settings.labeler.as_str();
        if labelers.contains_key(name) {
            continue;
        }
        let config = experiment
            .labeler(name)
            .expect("validation guarantees every grid labeler is declared");
        let labeler = backend::build(name, config, &client, options.quiet)?;
        let checked = tokio::select! {
            biased;
            _ = &mut interrupt => None,
            checked = labeler.preflight() => Some(checked),
        };
        let Some(checked) = checked else {
            return Ok(RunOutcome {
                run_id: run_dir.run_id.clone(),
                run_dir: run_dir.path.clone(),
                judged: 0,
                failed: 0,
                failed_permanently: 0,
                interrupted: true,
                stopped: None,
                table: String::new(),
            });
        };
        checked.map_err(|error| RunError::Preflight {
            labeler: name.to_owned(),
            error,
        })?;
        labelers.insert(name, CachedLabeler::new(labeler, cache.clone()));
    }
    let labeler_manifest: Vec<LabelerManifest> = labelers
        .iter()
        .map(|(name, labeler)| {
            let config = experiment.labeler(name).expect("declared");
            LabelerManifest {
                name: (*name).to_owned(),
                backend: config.backend(),
                identity: labeler.labeler().identity().to_owned(),
                mode: mode_of(config),
                settings: config.answer_settings(),
                compute: match config {
                    LabelerConfig::Embedded { workers, .. } => {
                        backend::embedded_threads().map(|threads| EmbeddedCompute {
                            workers: *workers,
                            threads_per_worker: threads,
                        })
                    }
                    _ => None,
                },
            }
        })
        .collect();

    let earlier = EarlierSpend::read(&run_dir.path.join("manifest.json"));
    let first_started = earlier.started_unix;
    let mut manifest = Manifest {
        rlaif_version: env!("CARGO_PKG_VERSION"),
        experiment: &experiment.name,
        run_id: &run_dir.run_id,
        file: experiment.file.display().to_string(),
        status: "running",
        started_unix: first_started.unwrap_or(started_unix),
        resumed_unix: first_started.map(|_| started_unix),
        ended_unix: None,
        wall_seconds: None,
        total_wall_seconds: earlier.wall_seconds,
        dataset: DataManifest::of(&experiment.dataset, &prepared.dataset),
        exemplars: experiment
            .exemplars
            .as_ref()
            .zip(prepared.exemplars.as_ref())
            .map(|(source, dataset)| DataManifest::of(source, dataset)),
        templates_sha256: prepared.templates.fingerprint(),
        task: &experiment.task,
        cells: prepared.expansion.cells.len(),
        collapsed: prepared.expansion.collapsed.len(),
        labelers: labeler_manifest,
        judgments: 0,
        failures: 0,
        calls_made: 0,
        calls_from_cache: 0,
        total_calls_made: earlier.calls_made,
    };
    write_manifest(&run_dir, &manifest)?;

    // Only what the summary reads is held, placed in the grid; the journal on disk
    // keeps the rest, and judgments of cells or examples no longer in the experiment.
    let places = Places::of(prepared);
    let (mut journal, existing) =
        Journal::open(&run_dir.path.join("judgments.jsonl"), |judgment| {
            places.hold(judgment)
        })?;
    let done: HashSet<(u32, u32)> = existing
        .iter()
        .filter(|held| held.scored.failure_kind().is_none() || held.scored.failed_permanently())
        .map(|held| (held.cell, held.example))
        .collect();

    let cell_prompts = prepared
        .expansion
        .cells
        .iter()
        .map(|cell| prepared.prompts(cell))
        .collect::<Result<Vec<_>, _>>()?;
    let procedures: Vec<Procedure<'_>> = prepared
        .expansion
        .cells
        .iter()
        .zip(&cell_prompts)
        .map(|(cell, prompts)| {
            let labeler = &labelers[cell.settings.labeler.as_str()];
            procedure(prepared, cell, prompts, labeler)
        })
        .collect();

    let examples = &prepared.dataset.examples;
    let pending: Vec<(usize, usize)> = (0..procedures.len())
        .flat_map(|cell| (0..examples.len()).map(move |example| (cell, example)))
        .filter(|&(cell, example)| !done.contains(&(cell as u32, example as u32)))
        .collect();
    let total = (procedures.len() * examples.len()) as u64;
    let mut remaining = vec![0usize; procedures.len()];
    for &(cell, _) in &pending {
        remaining[cell] += 1;
    }
    let mut progress = Progress::new(
        total,
        total - pending.len() as u64,
        remaining,
        options.quiet,
    );

    // One stream of units per labeler, each with as many examples in flight as its
    // labeler serves at once, all labelers working side by side: a one-slot server then
    // sees one example's prompts back to back.
    let started_units = std::sync::atomic::AtomicUsize::new(0);
    let streams = labelers.keys().map(|name| {
        let limit = experiment.labeler(name).map_or(1, concurrency_of).max(1);
        let own: Vec<(usize, usize)> = pending
            .iter()
            .copied()
            .filter(|&(cell, _)| prepared.expansion.cells[cell].settings.labeler == *name)
            .collect();
        let procedures = &procedures;
        let started_units = &started_units;
        futures::stream::iter(own)
            .map(move |(cell, example)| {
                let procedure = &procedures[cell];
                async move {
                    started_units.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    (cell, example, procedure.label(&examples[example]).await)
                }
            })
            .buffer_unordered(limit)
            .boxed_local()
    });
    let mut units = futures::stream::select_all(streams);

    // This run's judgments join the journal's, in journal order, in one vector sized
    // once: the summary of a large run holds each judgment once.
    let mut judgments = existing;
    judgments.reserve_exact(pending.len());
    let mut fresh = 0usize;
    let mut interrupted = false;
    let mut stopped = None;
    let mut checkpoint =
        tokio::time::interval_at(tokio::time::Instant::now() + MANIFEST_EVERY, MANIFEST_EVERY);
    checkpoint.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = &mut interrupt => {
                interrupted = true;
                break;
            }
            // A kill leaves the last of these behind: the next process adds its time
            // and calls to the run's totals.
            _ = checkpoint.tick() => {
                let calls = (cache.calls_answered(), progress.calls_from_cache());
                manifest.spent(earlier, started.elapsed().as_secs_f64(), calls);
                write_manifest(&run_dir, &manifest)?;
            }
            next = units.next() => match next {
                Some((cell, example, judgment)) => {
                    journal.append(&judgment)?;
                    // A labeler that cannot answer at all (its server gone after every
                    // retry, say): each further call would fail the same way.
                    let unreachable = judgment.failure.as_ref().and_then(Failure::stop);
                    let started = started_units.load(std::sync::atomic::Ordering::Relaxed);
                    fresh += 1;
                    let in_flight = started.saturating_sub(fresh);
                    progress.finished_unit(&judgment, cell, (in_flight, cache.calls_in_flight()));
                    judgments.push(Held::new(cell, example, &judgment));
                    if unreachable.is_some() {
                        stopped = unreachable;
                        break;
                    }
                }
                None => break,
            },
        }
    }
    drop(units);
    progress.finish();

    let judgments = latest(judgments);
    let judged = judgments.len();
    let failed = judgments
        .iter()
        .filter(|held| held.scored.failure_kind().is_some())
        .count();
    let failed_permanently = judgments
        .iter()
        .filter(|held| held.scored.failed_permanently())
        .count();
    manifest.status = if interrupted {
        "interrupted"
    } else if stopped.is_some() {
        "stopped"
    } else {
        "complete"
    };
    manifest.ended_unix = Some(now_unix());
    manifest.spent(
        earlier,
        started.elapsed().as_secs_f64(),
        (cache.calls_answered(), progress.calls_from_cache()),
    );
    manifest.judgments = judged;
    manifest.failures = failed;
    write_manifest(&run_dir, &manifest)?;

    let table = if interrupted || stopped.is_some() {
        String::new()
    } else {
        // Every report is made from summary.json as written (floats rounded), so that
        // `rlaif report` on the run folder reproduces them byte for byte.
        let summary_json = report::summary_json(&summarize(prepared, &run_dir.run_id, &judgments));
        let summary: Summary =
            serde_json::from_str(&summary_json).expect("a written summary reads back");
        // No wall time here: the same judgments must give byte-identical reports.
        let context = ReportContext {
            examples: examples.len(),
            labelers: manifest
                .labelers
                .iter()
                .map(|labeler| LabelerLine {
                    name: labeler.name.clone(),
                    mode: labeler.mode.to_owned(),
                    model: experiment.labeler(&labeler.name).and_then(model_of),
                })
                .collect(),
            run_seconds: None,
        };
        run_dir.write("summary.json", &summary_json)?;
        run_dir.write("cells.csv", &report::cells_csv(&summary))?;
        run_dir.write("report.md", &report::report_md(&summary, &context))?;
        run_dir.write("report.html", &report::report_html(&summary, &context))?;
        report::ranked_table_text(&summary)
    };
    Ok(RunOutcome {
        run_id: run_dir.run_id.clone(),
        run_dir: run_dir.path.clone(),
        judged,
        failed: failed - failed_permanently,
        failed_permanently,
        interrupted,
        stopped,
        table,
    })
}

fn write_manifest(run_dir: &RunDir, manifest: &Manifest<'_>) -> Result<(), RunDirError> {
    let json = serde_json::to_string_pretty(manifest).expect("manifests serialize to JSON");
    run_dir.write("manifest.json", &(json + "\n"))
}

/// A judgment as a run holds it for the summary: its place in the grid and what the
/// metrics read of it.
#[derive(Debug)]
struct Held {
    cell: u32,
    example: u32,
    scored: Scored,
}

impl Held {
    fn new(cell: usize, example: usize, judgment: &Judgment) -> Held {
        Held {
            cell: u32::try_from(cell).expect("grids are refused above 1,000,000 cells"),
            example: u32::try_from(example).expect("fewer than 4 billion examples"),
            scored: Scored::from(judgment),
        }
    }
}

/// Where the judgments of a journal belong in the current grid and data.
struct Places<'a> {
    cells: HashMap<&'a str, usize>,
    examples: HashMap<&'a str, usize>,
}

impl<'a> Places<'a> {
    fn of(prepared: &'a Prepared) -> Places<'a> {
        Places {
            cells: (prepared.expansion.cells.iter().enumerate())
                .map(|(index, cell)| (cell.id.as_str(), index))
                .collect(),
            examples: (prepared.dataset.examples.iter().enumerate())
                .map(|(index, example)| (example.id.as_str(), index))
                .collect(),
        }
    }

    /// The judgment placed, or `None` for a cell or example not in the experiment.
    fn hold(&self, judgment: &Judgment) -> Option<Held> {
        let cell = *self.cells.get(judgment.cell.as_str())?;
        let example = *self.examples.get(judgment.example.as_str())?;
        Some(Held::new(cell, example, judgment))
    }
}

/// The latest judgment per (cell, example), in journal order on entry, sorted by cell
/// then example on return. Sorted and pruned in place: a large run's judgments are
/// held once.
fn latest(mut judgments: Vec<Held>) -> Vec<Held> {
    // Stable, so the latest judgment of a (cell, example) stays last among its equals;
    // `dedup_by` keeps the first of a run of equals, so the later one is moved into it.
    judgments.sort_by_key(|held| (held.cell, held.example));
    judgments.dedup_by(|later, kept| {
        let same = (later.cell, later.example) == (kept.cell, kept.example);
        if same {
            std::mem::swap(later, kept);
        }
        same
    });
    judgments
}

/// The metrics of every cell, ranked.
fn summarize(prepared: &Prepared, run_id: &str, judgments: &[Held]) -> Summary {
    let experiment = &prepared.experiment;
    // The references are read over the examples the cells could judge.
    let mut judged = vec![false; prepared.dataset.examples.len()];
    let mut per_cell: Vec<Vec<&Scored>> = vec![Vec::new(); prepared.expansion.cells.len()];
    for held in judgments {
        if held.scored.failure_kind().is_none() {
            judged[held.example as usize] = true;
        }
        per_cell[held.cell as usize].push(&held.scored);
    }
    let examples: Vec<&crate::data::Example> = prepared
        .dataset
        .examples
        .iter()
        .zip(&judged)
        .filter_map(|(example, &judged)| judged.then_some(example))
        .collect();
    let options = metrics::MetricsOptions {
        seed: experiment.seed,
        ..metrics::MetricsOptions::default()
    };
    let references = metrics::reference_rows(&examples, &options);
    drop(judged);
    let inputs: Vec<metrics::CellInput> = prepared
        .expansion
        .cells
        .iter()
        .map(|cell| {
            let config = experiment
                .labeler(&cell.settings.labeler)
                .expect("declared");
            let price = match config {
                LabelerConfig::Openai { price, .. } => *price,
                _ => None,
            };
            metrics::CellInput::new(cell, mode_of(config), price, Vec::new())
                .with_polarity(prepared.templates.polarity())
        })
        .collect();
    let cells = metrics::summarize_judged(&inputs, &per_cell, &options);
    let labelers = experiment
        .labelers
        .iter()
        .filter(|(name, _)| {
            prepared
                .expansion
                .cells
                .iter()
                .any(|cell| &cell.settings.labeler == name)
        })
        .map(|(name, config)| {
            let model = model_of(config);
            LabelerInfo {
                name: name.clone(),
                backend: config.backend().to_owned(),
                parameters: model.as_deref().and_then(backend::parameters),
                model,
                mode: mode_of(config).to_owned(),
            }
        })
        .collect();
    Summary::new(&experiment.name, run_id, &options, cells)
        .with_references(references)
        .with_labelers(labelers)
}

/// How `cell` labels an example with `labeler` (the cell's labeler, built and checked).
pub(crate) fn procedure<'a>(
    prepared: &Prepared,
    cell: &'a crate::grid::Cell,
    prompts: &'a crate::prompt::CellPrompts<'a>,
    labeler: &'a CachedLabeler,
) -> Procedure<'a> {
    let config = prepared
        .experiment
        .labeler(&cell.settings.labeler)
        .expect("validation guarantees every grid labeler is declared");
    let (max_rationale_tokens, top_k, alternatives) = match config {
        LabelerConfig::Openai {
            max_rationale_tokens,
            top_k,
            top_logprobs,
            ..
        } => (*max_rationale_tokens, *top_k, *top_logprobs),
        LabelerConfig::Embedded {
            max_rationale_tokens,
            top_k,
            ..
        } => (*max_rationale_tokens, *top_k, 20),
        LabelerConfig::Simulated { .. } => (512, 40, 2),
    };
    Procedure {
        cell,
        prompts,
        labeler,
        polarity: prepared.templates.polarity(),
        position_debias: prepared.experiment.position_debias,
        seed: prepared.experiment.seed,
        max_rationale_tokens,
        rationale_stop: config.rationale_stop().to_vec(),
        top_k,
        alternatives,
        // Each embedded worker keeps one sequence: an example's prompts, one after
        // another, extend each other on the worker that takes them.
        sequential: concurrency_of(config) == 1 || matches!(config, LabelerConfig::Embedded { .. }),
    }
}

/// How many calls a labeler serves at once.
pub(crate) fn concurrency_of(config: &LabelerConfig) -> usize {
    match config {
        LabelerConfig::Openai {
            max_concurrency, ..
        } => *max_concurrency,
        LabelerConfig::Embedded { workers, .. } => *workers,
        LabelerConfig::Simulated { .. } => 64,
    }
}

/// The model a labeler runs, for reports.
pub(crate) fn model_of(config: &LabelerConfig) -> Option<String> {
    match config {
        LabelerConfig::Openai { model, .. } | LabelerConfig::Embedded { model, .. } => {
            Some(model.clone())
        }
        LabelerConfig::Simulated { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::EarlierSpend;

    fn spend_of(manifest: &str) -> EarlierSpend {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.json");
        std::fs::write(&path, manifest).unwrap();
        EarlierSpend::read(&path)
    }

    #[test]
    fn totals_carry_over_from_the_manifest_before() {
        let spend = spend_of(
            r#"{"started_unix": 10, "wall_seconds": 2.5, "total_wall_seconds": 7.5,
                "calls_made": 4, "total_calls_made": 12}"#,
        );
        assert_eq!(
            spend,
            EarlierSpend {
                started_unix: Some(10),
                wall_seconds: 7.5,
                calls_made: 12
            }
        );
    }

    #[test]
    fn a_manifest_without_totals_counts_its_own_figures() {
        let spend = spend_of(r#"{"started_unix": 10, "wall_seconds": 2.5, "calls_made": 4}"#);
        assert_eq!((spend.wall_seconds, spend.calls_made), (2.5, 4));
    }

    #[test]
    fn a_killed_process_s_manifest_counts_what_it_carried() {
        // Written at the start of a process that never finished: its own figures are
        // empty, the totals it carried are those of the processes before it.
        let spend = spend_of(
            r#"{"started_unix": 10, "wall_seconds": null, "total_wall_seconds": 3.0,
                "calls_made": 0, "total_calls_made": 5}"#,
        );
        assert_eq!((spend.wall_seconds, spend.calls_made), (3.0, 5));
    }

    #[test]
    fn no_manifest_means_nothing_spent() {
        let dir = tempfile::tempdir().unwrap();
        let spend = EarlierSpend::read(&dir.path().join("manifest.json"));
        assert_eq!(spend, EarlierSpend::default());
        assert_eq!(spend_of("not json"), EarlierSpend::default());
    }
}

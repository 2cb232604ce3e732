//! `rlaif label`: AI preference labels for pairs that have no human label, with one
//! cell's configuration, in the form reward-model trainers read.
//!
//! Input and output are streamed: pairs are read a line at a time and each labeled pair
//! is appended as one line the moment it (and every pair before it) is done, so a killed
//! run loses nothing; what is held per pair is two 8-byte digests. A rerun of the same
//! command skips the pairs the output already holds and answers from the call cache
//! whatever was paid for before; it refuses an output written with another configuration
//! or for other pairs under the same ids, and a lock file beside the output keeps a
//! second process from appending to it. Output lines keep the input's order, but for
//! pairs whose calls failed, which a rerun appends after the others.
//!
//! Each line has `prompt`, `chosen` and `rejected` (TRL's and OpenRLHF's preference
//! format), the soft probability that `chosen` is preferred, both orders'
//! distributions, and the provenance: the cell's settings, the labeler's model and
//! identity, and the templates' hash. A pair the labeler finds equal (probability
//! exactly ½) is written with `"ai": "tie"` and response a as `chosen`, so that a
//! trainer can drop it; a pair whose calls failed is not written and is retried on the
//! next run.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::append_only::read_complete_lines;
use crate::backend::{self, BuildError, CallError};
use crate::cache::{Cache, CacheError, CachedLabeler};
use crate::data::{Example, Label};
use crate::fingerprint::hash_u64;
use crate::grid::Cell;
use crate::lock_file::{LockError, LockFile};
use crate::metrics::RationaleCount;
use crate::prepare::Prepared;
use crate::procedure::{Judgment, OrderJudgment, Stop};
use crate::prompt::PromptError;
use crate::runner;

/// What to label and where.
#[derive(Debug, Clone)]
pub struct LabelOptions {
    /// Pairs to label (JSONL: `id`, `context`, `response_a`, `response_b`).
    pub input: PathBuf,
    /// Labeled pairs, one JSON object a line; appended to when it exists.
    pub output: PathBuf,
    /// The results root, whose call cache the labels share with runs.
    pub results: PathBuf,
    /// No progress display.
    pub quiet: bool,
}

/// How a labeling run ended.
#[derive(Debug)]
pub struct LabelOutcome {
    /// Pairs labeled by this run.
    pub labeled: usize,
    /// Pairs the output already held from an earlier run.
    pub already: usize,
    /// Pairs whose calls failed: not written, retried by a rerun.
    pub failed: usize,
    /// The first failure's message, for the closing line.
    pub first_failure: Option<String>,
    pub interrupted: bool,
    /// Why labeling stopped before the end: the labeler cannot answer at all (every
    /// further pair would fail the same way).
    pub stopped: Option<Stop>,
    /// The rationales of the pairs labeled by this run (chain-of-thought cells).
    pub rationales: RationaleCount,
}

/// Why labeling could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Input {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "{path}:{line}: not a labeled pair ({message}; is this the output of another command? \
         choose another --output, or move this file aside to start over)"
    )]
    Output {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "{path}:{line}: labeled with another configuration ({fields} differ from this command's; \
         label into another --output, or move this file aside to start over)"
    )]
    OtherConfiguration {
        path: PathBuf,
        line: usize,
        fields: String,
    },
    #[error(
        "{path}:{line}: id `{id}` is labeled there for another pair than line {input_line} of \
         {input} (the output holds labels of other pairs: label into another --output, or give \
         the pairs unique `id`s)"
    )]
    OtherPair {
        path: PathBuf,
        line: usize,
        id: String,
        input: PathBuf,
        input_line: usize,
    },
    #[error(
        "another rlaif (process {pid}) is writing {path} (wait for it, or stop it; remove \
         {lock} if that process is gone)"
    )]
    Locked {
        path: PathBuf,
        lock: PathBuf,
        pid: u32,
    },
    #[error("--input and --output are the same file ({path}); labels go to a new file")]
    SameFile { path: PathBuf },
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("labeler `{labeler}` failed its preflight check, so no pair was sent")]
    Preflight {
        labeler: String,
        #[source]
        error: CallError,
    },
    #[error(transparent)]
    Prompt(#[from] PromptError),
}

/// One line of the input: a pair, with or without a human label.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputPair {
    #[serde(default)]
    id: Option<String>,
    context: String,
    response_a: String,
    response_b: String,
    /// Kept in the output (as `human`) where the input has one, to check the labels.
    #[serde(default)]
    label: Option<Label>,
    #[serde(default)]
    dataset: Option<String>,
    #[serde(default)]
    meta: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    rationale: Option<String>,
}

impl InputPair {
    /// The pair's id, or one made from its line where it has none.
    fn id_or_line(&self, line: usize) -> String {
        self.id.clone().unwrap_or_else(|| format!("line-{line}"))
    }

    /// The pair as the procedure takes it; without a human label it carries a tie,
    /// which nothing downstream reads.
    fn into_example(self, id: String) -> Example {
        Example {
            id,
            context: self.context,
            response_a: self.response_a,
            response_b: self.response_b,
            label: self.label.unwrap_or(Label::Tie),
            dataset: self.dataset,
            meta: self.meta.unwrap_or_default(),
            rationale: self.rationale,
        }
    }
}

/// Where each labeled pair came from; the same on every line of a run.
#[derive(Debug, Serialize)]
struct Provenance<'a> {
    experiment: &'a str,
    cell: &'a str,
    cell_id: &'a str,
    settings: &'a crate::grid::Settings,
    labeler: &'a str,
    backend: &'static str,
    model: Option<String>,
    /// The labeler's identity as the call cache keys it (model and answer settings).
    identity: String,
    /// Every labeler setting that can change an answer (rationale length and stops,
    /// top-k, ...), as the run id counts them.
    labeler_settings: serde_json::Value,
    templates_sha256: String,
    /// Picks the exemplars (where the grid has no `exemplar_seed` axis), the sampled
    /// rationales and, with `position_debias: random`, the order.
    seed: u64,
    position_debias: crate::spec::PositionDebias,
    /// The ids of the exemplars the prompts show, and the hash of the file they are from.
    exemplars: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exemplars_sha256: Option<&'a str>,
    rlaif_version: &'static str,
}

/// A provenance field that may differ between the runs that wrote one output.
const VERSION_FIELD: &str = "rlaif_version";

/// One line of the output.
#[derive(Debug, Serialize)]
struct Labeled<'a> {
    id: &'a str,
    prompt: &'a str,
    chosen: &'a str,
    rejected: &'a str,
    /// Probability that `chosen` is the better response (at least ½).
    p_chosen: f64,
    /// Probability that response a is the better one, after debiasing and polarity.
    p_a: f64,
    ai: Label,
    /// Which input response `chosen` is.
    chosen_is: Label,
    orders: &'a [OrderJudgment],
    #[serde(skip_serializing_if = "Option::is_none")]
    human: Option<Label>,
    provenance: &'a Provenance<'a>,
}

/// What a resumed run checks of an earlier output line, borrowed where it can be.
#[derive(Debug, Deserialize)]
struct EarlierLine<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    prompt: Cow<'a, str>,
    #[serde(borrow)]
    chosen: Cow<'a, str>,
    #[serde(borrow)]
    rejected: Cow<'a, str>,
    chosen_is: Label,
    #[serde(borrow)]
    provenance: &'a serde_json::value::RawValue,
}

impl EarlierLine<'_> {
    fn pair_digest(&self) -> u64 {
        let (a, b) = match self.chosen_is {
            Label::B => (&self.rejected, &self.chosen),
            Label::A | Label::Tie => (&self.chosen, &self.rejected),
        };
        pair_digest(&self.prompt, a, b)
    }
}

/// A digest of a pair's content, to tell whether an id names the same pair in the input
/// and in an earlier output.
fn pair_digest(context: &str, a: &str, b: &str) -> u64 {
    let mut bytes = Vec::with_capacity(context.len() + a.len() + b.len() + 24);
    for part in [context, a, b] {
        bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
        bytes.extend_from_slice(part.as_bytes());
    }
    hash_u64(bytes)
}

/// Each input pair's id digest, with its content digest and line.
struct InputDigests {
    ids: HashMap<u64, (u64, usize)>,
}

impl InputDigests {
    /// Reads and checks every line of `path`: each must be a pair, each id unique.
    fn read(path: &Path) -> Result<InputDigests, LabelError> {
        let mut ids = HashMap::new();
        for item in InputLines::open(path)? {
            let (number, pair) = item?;
            let id = pair.id_or_line(number);
            let digest = pair_digest(&pair.context, &pair.response_a, &pair.response_b);
            if ids.insert(hash_u64(&id), (digest, number)).is_some() {
                return Err(LabelError::Input {
                    path: path.to_path_buf(),
                    line: number,
                    message: format!(
                        "duplicate id `{id}` (ids must be unique: a resumed run skips the \
                         ids it has labeled)"
                    ),
                });
            }
        }
        Ok(InputDigests { ids })
    }

    fn len(&self) -> usize {
        self.ids.len()
    }
}

/// Takes the lock at `lock` on what it guards, `guarded`, which the errors name: a
/// failure to write the lock is most often a folder that does not exist, and the
/// guarded path is the one the user gave.
fn take_lock(lock: &Path, guarded: &Path) -> Result<LockFile, LabelError> {
    LockFile::take(lock).map_err(|error| match error {
        LockError::Held { pid } => LabelError::Locked {
            path: guarded.to_path_buf(),
            lock: lock.to_path_buf(),
            pid,
        },
        LockError::Io(source) => LabelError::Write {
            path: guarded.to_path_buf(),
            source,
        },
    })
}

/// Where the lock of an output file goes: beside it, named after it.
fn lock_path(output: &Path) -> PathBuf {
    let mut name = output.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    output.with_file_name(name)
}

/// Labels every pair of `options.input` with `cell` of `prepared`.
pub async fn label(
    prepared: &Prepared,
    cell: &Cell,
    options: &LabelOptions,
) -> Result<LabelOutcome, LabelError> {
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    if same_file(&options.input, &options.output) {
        return Err(LabelError::SameFile {
            path: options.output.clone(),
        });
    }
    // A first pass checks every line and id before anything is paid for or written; it
    // holds a digest of each pair's id and content.
    let input = InputDigests::read(&options.input)?;
    let total = input.len() as u64;

    let name = cell.settings.labeler.as_str();
    let config = prepared
        .experiment
        .labeler(name)
        .expect("validation guarantees every grid labeler is declared");
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(BuildError::Client)?;
    let cache = std::sync::Arc::new(Cache::open(&options.results.join(crate::cache::FILE))?);
    let cache_lock = runner::label_lock(&options.results, std::process::id());
    let _cache_lock = take_lock(&cache_lock, &options.results)?;
    let built = backend::build(name, config, &client, options.quiet)?;
    let exemplars = prepared.exemplars_for(&cell.settings);
    let provenance = Provenance {
        experiment: &prepared.experiment.name,
        cell: &cell.name,
        cell_id: &cell.id,
        settings: &cell.settings,
        labeler: name,
        backend: config.backend(),
        model: runner::model_of(config),
        identity: built.identity().to_owned(),
        labeler_settings: config.answer_settings(),
        templates_sha256: prepared.templates.fingerprint(),
        seed: prepared.experiment.seed,
        position_debias: prepared.experiment.position_debias,
        exemplars: exemplars
            .iter()
            .map(|exemplar| exemplar.id.as_str())
            .collect(),
        exemplars_sha256: prepared
            .exemplars
            .as_ref()
            .filter(|_| !exemplars.is_empty())
            .map(|pool| pool.file_sha256.as_str()),
        rlaif_version: env!("CARGO_PKG_VERSION"),
    };

    let lock = lock_path(&options.output);
    let _lock = take_lock(&lock, &options.output)?;
    let done = earlier_output(&options.output, &provenance, &input, &options.input)?;
    let already = input.ids.keys().filter(|id| done.contains(id)).count();
    drop(input);

    let checked = tokio::select! {
        biased;
        _ = &mut interrupt => None,
        checked = built.preflight() => Some(checked),
    };
    let Some(checked) = checked else {
        return Ok(LabelOutcome {
            labeled: 0,
            already,
            failed: 0,
            first_failure: None,
            interrupted: true,
            stopped: None,
            rationales: RationaleCount::default(),
        });
    };
    checked.map_err(|error| LabelError::Preflight {
        labeler: name.to_owned(),
        error,
    })?;
    let labeler = CachedLabeler::new(built, cache);
    let prompts = prepared.prompts(cell)?;
    let procedure = runner::procedure(prepared, cell, &prompts, &labeler);
    let mut output = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&options.output)
        .map_err(|source| LabelError::Write {
            path: options.output.clone(),
            source,
        })?;
    let progress = progress_bar(total, options.quiet);
    progress.inc(already as u64);
    let mut outcome = LabelOutcome {
        labeled: 0,
        already,
        failed: 0,
        first_failure: None,
        interrupted: false,
        stopped: None,
        rationales: RationaleCount::default(),
    };
    let limit = runner::concurrency_of(config).max(1);
    let procedure = &procedure;
    let todo = InputLines::open(&options.input)?
        // Checked above; a line that changed since fails the same way there next time.
        .filter_map(Result::ok)
        .map(|(number, pair)| (pair.id_or_line(number), pair))
        .filter(|(id, _)| !done.contains(&hash_u64(id)));
    let mut labeled = futures::stream::iter(todo)
        .map(|(id, pair)| async move {
            let human = pair.label;
            let example = pair.into_example(id);
            let judgment = procedure.label(&example).await;
            (example, human, judgment)
        })
        .buffered(limit);
    loop {
        tokio::select! {
            biased;
            _ = &mut interrupt => {
                outcome.interrupted = true;
                break;
            }
            next = labeled.next() => match next {
                Some((example, human, judgment)) => {
                    progress.inc(1);
                    match line_of(&example, human, &judgment, &provenance) {
                        Some(line) => {
                            output.write_all(line.as_bytes()).map_err(|source| LabelError::Write {
                                path: options.output.clone(),
                                source,
                            })?;
                            outcome.labeled += 1;
                            outcome.rationales += RationaleCount::of(&judgment);
                        }
                        None => {
                            outcome.failed += 1;
                            let failure = judgment.failure.as_ref();
                            if outcome.first_failure.is_none() {
                                outcome.first_failure = failure
                                    .map(|failure| format!("{}: {}", example.id, failure.message));
                            }
                            // A labeler that cannot answer at all (its server gone
                            // after every retry, say): each further pair would fail too.
                            if let Some(stop) = failure.and_then(|failure| failure.stop()) {
                                outcome.stopped = Some(stop);
                                break;
                            }
                        }
                    }
                }
                None => break,
            },
        }
    }
    drop(labeled);
    progress.finish_and_clear();
    Ok(outcome)
}

/// The output line for a judged pair, or `None` when its calls failed.
fn line_of(
    example: &Example,
    human: Option<Label>,
    judgment: &Judgment,
    provenance: &Provenance<'_>,
) -> Option<String> {
    if judgment.failure.is_some() {
        return None;
    }
    let p_a = judgment.p_a?;
    let ai = judgment.ai?;
    let (chosen, rejected, chosen_is, p_chosen) = if ai == Label::B {
        (
            &example.response_b,
            &example.response_a,
            Label::B,
            1.0 - p_a,
        )
    } else {
        (&example.response_a, &example.response_b, Label::A, p_a)
    };
    let labeled = Labeled {
        id: &example.id,
        prompt: &example.context,
        chosen,
        rejected,
        p_chosen,
        p_a,
        ai,
        chosen_is,
        orders: &judgment.orders,
        human,
        provenance,
    };
    let mut line = serde_json::to_string(&labeled).expect("labeled pairs serialize to JSON");
    line.push('\n');
    Some(line)
}

/// The input's pairs, a line at a time, numbered as editors count.
struct InputLines {
    path: PathBuf,
    reader: BufReader<File>,
    number: usize,
    buffer: Vec<u8>,
}

impl InputLines {
    fn open(path: &Path) -> Result<InputLines, LabelError> {
        let file = File::open(path).map_err(|source| LabelError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(InputLines {
            path: path.to_path_buf(),
            reader: BufReader::new(file),
            number: 0,
            buffer: Vec::new(),
        })
    }

    fn error(&self, message: impl Into<String>) -> LabelError {
        LabelError::Input {
            path: self.path.clone(),
            line: self.number,
            message: message.into(),
        }
    }
}

impl Iterator for InputLines {
    type Item = Result<(usize, InputPair), LabelError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.buffer.clear();
            match self.reader.read_until(b'\n', &mut self.buffer) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(source) => {
                    return Some(Err(LabelError::Read {
                        path: self.path.clone(),
                        source,
                    }));
                }
            }
            self.number += 1;
            let Ok(text) = std::str::from_utf8(&self.buffer) else {
                return Some(Err(
                    self.error("line is not valid utf-8 (save the file as utf-8)")
                ));
            };
            let text = if self.number == 1 {
                text.trim_start_matches('\u{feff}')
            } else {
                text
            };
            if text.trim().is_empty() {
                continue;
            }
            return Some(
                serde_json::from_str::<InputPair>(text)
                    .map(|pair| (self.number, pair))
                    .map_err(|error| {
                        self.error(format!(
                            "{} (each line needs `context`, `response_a` and `response_b`; \
                             `id` and `label` are optional)",
                            strip_position(&error)
                        ))
                    }),
            );
        }
    }
}

/// serde's message without its "at line 1 column N" tail, with the column kept.
fn strip_position(error: &serde_json::Error) -> String {
    let full = error.to_string();
    let tail = format!(" at line {} column {}", error.line(), error.column());
    match full.strip_suffix(&tail) {
        Some(message) => format!("{message} at column {}", error.column()),
        None => full,
    }
}

/// The id digests an earlier run wrote to `path`, after checking that each line was
/// labeled with this `provenance` and, where the input has its id, for the same pair; a
/// torn last line (a write cut short by a kill) is cut off.
fn earlier_output(
    path: &Path,
    provenance: &Provenance<'_>,
    input: &InputDigests,
    input_path: &Path,
) -> Result<HashSet<u64>, LabelError> {
    // Lines this build wrote carry these very bytes; only others are compared field by
    // field.
    let written = serde_json::to_string(provenance).expect("provenance serializes to JSON");
    let serde_json::Value::Object(mut expected) =
        serde_json::to_value(provenance).expect("provenance serializes to JSON")
    else {
        unreachable!("provenance serializes to a JSON object")
    };
    expected.remove(VERSION_FIELD);
    let mut ids = HashSet::new();
    read_complete_lines(
        path,
        |source| LabelError::Read {
            path: path.to_path_buf(),
            source,
        },
        |number, line| {
            let output_error = |error: serde_json::Error| LabelError::Output {
                path: path.to_path_buf(),
                line: number,
                message: strip_position(&error),
            };
            let earlier: EarlierLine = serde_json::from_slice(line).map_err(output_error)?;
            if earlier.provenance.get() != written {
                let mut theirs: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(earlier.provenance.get()).map_err(output_error)?;
                theirs.remove(VERSION_FIELD);
                if theirs != expected {
                    let mut fields: Vec<&str> = expected
                        .iter()
                        .filter(|(key, value)| theirs.get(*key) != Some(value))
                        .map(|(key, _)| key.as_str())
                        .chain(
                            theirs
                                .keys()
                                .filter(|key| !expected.contains_key(*key))
                                .map(String::as_str),
                        )
                        .collect();
                    fields.sort_unstable();
                    return Err(LabelError::OtherConfiguration {
                        path: path.to_path_buf(),
                        line: number,
                        fields: fields.join(", "),
                    });
                }
            }
            let id = hash_u64(earlier.id.as_bytes());
            if let Some(&(digest, input_line)) = input.ids.get(&id)
                && digest != earlier.pair_digest()
            {
                return Err(LabelError::OtherPair {
                    path: path.to_path_buf(),
                    line: number,
                    id: earlier.id.into_owned(),
                    input: input_path.to_path_buf(),
                    input_line,
                });
            }
            ids.insert(id);
            Ok(())
        },
    )?;
    Ok(ids)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn progress_bar(total: u64, quiet: bool) -> indicatif::ProgressBar {
    if quiet {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "labeling {bar:30} {pos}/{len} pairs  {per_sec}  eta {eta}",
        )
        .expect("the template is valid"),
    );
    bar
}

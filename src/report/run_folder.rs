//! Reading a finished run folder back, for `rlaif report` and `rlaif compare`.
//!
//! A run folder is what `rlaif run` wrote: summary.json, manifest.json, judgments.jsonl.
//! An experiment folder holding exactly one run stands for that run. Every problem names
//! the file and says how to get a readable one.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::procedure::Judgment;

use super::{LabelerLine, ReportContext, Summary};

/// Why a run folder cannot be read by `report` or `compare`.
#[derive(Debug, thiserror::Error)]
pub enum RunFolderError {
    #[error(
        "no run folder at {path} (give results/<experiment>/<run-id>, the folder `rlaif run` prints)"
    )]
    Missing { path: PathBuf },
    #[error("{path} holds no run ({hint})")]
    NoRun { path: PathBuf, hint: String },
    #[error("{path} holds {count} runs (give one of them: {runs})")]
    SeveralRuns {
        path: PathBuf,
        count: usize,
        runs: String,
    },
    #[error("no {file} in {dir} ({hint})")]
    MissingFile {
        file: &'static str,
        dir: PathBuf,
        hint: String,
    },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is malformed: {detail} (`rlaif run` writes it; rerun the experiment to rewrite it)"
    )]
    Malformed { path: PathBuf, detail: String },
}

/// Whether `dir` looks like a run folder: it holds a file only `rlaif run` writes.
fn is_run_folder(dir: &Path) -> bool {
    ["summary.json", "manifest.json", "judgments.jsonl"]
        .iter()
        .any(|file| dir.join(file).is_file())
}

/// The run folder `path` names: itself, or the one run of an experiment folder.
pub fn find_run(path: &Path) -> Result<PathBuf, RunFolderError> {
    if !path.is_dir() {
        return Err(RunFolderError::Missing {
            path: path.to_owned(),
        });
    }
    if is_run_folder(path) {
        return Ok(path.to_owned());
    }
    let entries = std::fs::read_dir(path).map_err(|source| RunFolderError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut runs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|candidate| candidate.is_dir() && is_run_folder(candidate))
        .collect();
    runs.sort();
    match runs.len() {
        0 => Err(RunFolderError::NoRun {
            path: path.to_owned(),
            hint: no_run_hint(path),
        }),
        1 => Ok(runs.remove(0)),
        count => Err(RunFolderError::SeveralRuns {
            path: path.to_owned(),
            count,
            runs: runs
                .iter()
                .map(|run| run.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// What to give instead of a folder without runs: an experiment folder under it when
/// it is a results root.
fn no_run_hint(path: &Path) -> String {
    let mut experiments: Vec<PathBuf> = std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|candidate| {
            std::fs::read_dir(candidate)
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .any(|entry| is_run_folder(&entry.path()))
        })
        .collect();
    experiments.sort();
    match experiments.first() {
        Some(first) => format!(
            "it looks like a results root: give an experiment or run folder under it, such as {}",
            first.display()
        ),
        None => "a run folder holds summary.json; `rlaif run FILE` makes one".to_owned(),
    }
}

/// The text of `dir/file`, or `None` when the file is not there.
fn read_optional(dir: &Path, file: &str) -> Result<Option<String>, RunFolderError> {
    let path = dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RunFolderError::Read { path, source }),
    }
}

/// How to finish a run whose folder lacks a result file.
fn finish_hint(dir: &Path) -> String {
    let file = read_manifest(dir).ok().flatten().and_then(|manifest| {
        manifest
            .get("file")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    match file {
        Some(file) => format!(
            "the run has not finished; finish it with `rlaif run {file}` and the same --results"
        ),
        None => "the run has not finished; rerun `rlaif run` on its experiment file".to_owned(),
    }
}

pub fn read_summary(dir: &Path) -> Result<Summary, RunFolderError> {
    let text = read_optional(dir, "summary.json")?.ok_or_else(|| RunFolderError::MissingFile {
        file: "summary.json",
        dir: dir.to_owned(),
        hint: finish_hint(dir),
    })?;
    serde_json::from_str(&text).map_err(|error| RunFolderError::Malformed {
        path: dir.join("summary.json"),
        detail: error.to_string(),
    })
}

fn read_manifest(dir: &Path) -> Result<Option<Value>, RunFolderError> {
    let Some(text) = read_optional(dir, "manifest.json")? else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|error| RunFolderError::Malformed {
            path: dir.join("manifest.json"),
            detail: error.to_string(),
        })
}

pub fn read_judgments(dir: &Path) -> Result<Vec<Judgment>, RunFolderError> {
    let path = dir.join("judgments.jsonl");
    let text =
        read_optional(dir, "judgments.jsonl")?.ok_or_else(|| RunFolderError::MissingFile {
            file: "judgments.jsonl",
            dir: dir.to_owned(),
            hint: "compare resamples a run's judgments; rerun `rlaif run` on its experiment \
                   file to write them"
                .to_owned(),
        })?;
    // Everything after the last newline is a write that never finished (a run killed
    // mid-line); the run's own journal cuts it off the same way.
    let complete = text.rfind('\n').map_or("", |last| &text[..=last]);
    let mut judgments = Vec::new();
    for (number, line) in complete.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let judgment = serde_json::from_str(line).map_err(|error| RunFolderError::Malformed {
            path: path.clone(),
            detail: format!("line {}: {error}", number + 1),
        })?;
        judgments.push(judgment);
    }
    Ok(judgments)
}

/// The run's task (`summarization`, ...), from manifest.json.
pub fn run_task(dir: &Path) -> Result<Option<String>, RunFolderError> {
    Ok(read_manifest(dir)?.and_then(|manifest| {
        manifest
            .get("task")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }))
}

/// Why the run's summary.json may be older than its judgments: the last process on the
/// run did not finish it (interrupted or stopped), so the summary is the one an earlier
/// process wrote when it completed. `None` when the run's last process completed.
pub fn stale_summary(dir: &Path) -> Result<Option<String>, RunFolderError> {
    let status = read_manifest(dir)?.and_then(|manifest| {
        manifest
            .get("status")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    Ok(status
        .filter(|status| status == "interrupted" || status == "stopped")
        .map(|status| {
            format!(
                "the last `rlaif run` on {} was {status}, so its summary.json is the one an \
                 earlier run completed, without the judgments made since; rerun it to finish \
                 and refresh the summary",
                dir.display()
            )
        }))
}

/// What report.md says beyond the summary, rebuilt as the run built it: the examples
/// and labelers from manifest.json, each labeler's model from summary.json, and no wall
/// time.
pub fn report_context(dir: &Path, summary: &Summary) -> Result<ReportContext, RunFolderError> {
    let manifest = read_manifest(dir)?.ok_or_else(|| RunFolderError::MissingFile {
        file: "manifest.json",
        dir: dir.to_owned(),
        hint: "the report names the run's examples and labelers from it; rerun `rlaif run` \
               on the experiment file to rewrite it"
            .to_owned(),
    })?;
    let model = |name: &str| -> Option<String> {
        summary
            .labelers
            .iter()
            .find(|labeler| labeler.name == name)?
            .model
            .clone()
    };
    let labelers = manifest
        .get("labelers")
        .and_then(Value::as_array)
        .map(|labelers| {
            labelers
                .iter()
                .filter_map(|labeler| {
                    let name = labeler.get("name")?.as_str()?;
                    Some(LabelerLine {
                        name: name.to_owned(),
                        mode: labeler.get("mode")?.as_str()?.to_owned(),
                        model: model(name),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let examples = manifest
        .pointer("/dataset/examples")
        .and_then(Value::as_u64)
        .and_then(|examples| usize::try_from(examples).ok())
        .unwrap_or(0);
    Ok(ReportContext {
        examples,
        labelers,
        run_seconds: None,
    })
}

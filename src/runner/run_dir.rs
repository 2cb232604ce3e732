//! The run folder: `results/<experiment>/<run-id>/`, its id, its lock and its manifest.
//!
//! The run id is a hash of everything that decides the run's judgments (the validated
//! experiment, the data's and templates' content, the cells), so running the same file
//! on the same data again finds the same folder and resumes it. A lock file names the
//! process that owns the folder, so two runs never write one journal.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::fingerprint;
use crate::lock_file::{self, LockError, LockFile};
use crate::prepare::Prepared;

/// Why a run folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error("cannot write the run folder {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "another rlaif (process {pid}) is running in {path} (wait for it, or stop it; remove {path}/run.lock if that process is gone)"
    )]
    Locked { path: PathBuf, pid: u32 },
}

/// What decides a run's judgments; its hash is the run id.
#[derive(Serialize)]
struct RunIdentity<'a> {
    name: &'a str,
    task: &'a str,
    dataset_sha256: &'a str,
    dataset: DataOptions,
    exemplars_sha256: Option<&'a str>,
    exemplars: Option<DataOptions>,
    labelers: Vec<(&'a str, serde_json::Value)>,
    /// Which version of each model file given by path: a file replaced in place is a
    /// new run, not a resumed one mixing two models' judgments. Left out when empty, so
    /// that the ids of runs without such files stay as they were.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    model_files: Vec<(&'a str, String)>,
    cells: Vec<&'a str>,
    position_debias: crate::spec::PositionDebias,
    seed: u64,
    templates: String,
}

/// The data options that choose examples; the file is named by its content, not its
/// path, so the same data in another folder is the same run.
#[derive(Serialize)]
struct DataOptions {
    format: &'static str,
    limit: Option<usize>,
    seed: u64,
    shuffle: bool,
    high_confidence: bool,
    split: Option<(f64, crate::data::SplitSide)>,
    id_prefix: Option<String>,
}

impl DataOptions {
    fn of(source: &crate::data::DataSource) -> DataOptions {
        DataOptions {
            format: source.format.name(),
            limit: source.limit,
            seed: source.seed,
            shuffle: source.shuffle,
            high_confidence: source.high_confidence,
            split: source.split.map(|split| (split.holdout, split.keep)),
            id_prefix: source.id_prefix.clone(),
        }
    }
}

/// The content-derived id of a prepared experiment's run.
pub fn run_id(prepared: &Prepared) -> String {
    let experiment = &prepared.experiment;
    let identity = RunIdentity {
        name: &experiment.name,
        task: &experiment.task,
        dataset_sha256: &prepared.dataset.file_sha256,
        dataset: DataOptions::of(&experiment.dataset),
        exemplars_sha256: prepared.exemplars.as_ref().map(|d| d.file_sha256.as_str()),
        exemplars: experiment.exemplars.as_ref().map(DataOptions::of),
        labelers: experiment
            .labelers
            .iter()
            .map(|(name, config)| (name.as_str(), config.answer_settings()))
            .collect(),
        model_files: experiment
            .labelers
            .iter()
            .filter_map(|(name, config)| Some((name.as_str(), config.model_file_stamp()?)))
            .collect(),
        cells: prepared
            .expansion
            .cells
            .iter()
            .map(|cell| cell.id.as_str())
            .collect(),
        position_debias: experiment.position_debias,
        seed: experiment.seed,
        templates: prepared.templates.fingerprint(),
    };
    let json = serde_json::to_string(&identity).expect("run identities serialize to JSON");
    fingerprint::short_id(json)
}

/// The lock file in a run folder.
const LOCK: &str = "run.lock";

/// A run folder, locked by this process while it lives.
#[derive(Debug)]
pub struct RunDir {
    pub path: PathBuf,
    pub run_id: String,
    _lock: LockFile,
}

impl RunDir {
    /// Opens (creating) the folder of `run_id` under `root/<experiment>/`: the newest of
    /// `<run_id>`, `<run_id>-2`, ... so that a fresh run, once started, is the one
    /// resumed. With `fresh`, picks the first unused `<run_id>-N` instead, so earlier
    /// judgments are left alone.
    pub fn open(
        root: &Path,
        experiment: &str,
        run_id: &str,
        fresh: bool,
    ) -> Result<RunDir, RunDirError> {
        let parent = root.join(experiment);
        let mut chosen = run_id.to_owned();
        let mut attempt = 2;
        loop {
            let next = format!("{run_id}-{attempt}");
            if !parent.join(&next).exists() {
                if fresh && parent.join(&chosen).exists() {
                    chosen = next;
                }
                break;
            }
            chosen = next;
            attempt += 1;
        }
        let path = parent.join(&chosen);
        std::fs::create_dir_all(&path).map_err(|source| RunDirError::Write {
            path: path.clone(),
            source,
        })?;
        let lock = LockFile::take(&path.join(LOCK)).map_err(|error| match error {
            LockError::Held { pid } => RunDirError::Locked {
                path: path.clone(),
                pid,
            },
            LockError::Io(source) => RunDirError::Write {
                path: path.join(LOCK),
                source,
            },
        })?;
        Ok(RunDir {
            path,
            run_id: chosen,
            _lock: lock,
        })
    }

    /// Writes `name` in the folder, replacing it atomically (write, then rename), so a
    /// reader never sees half a file.
    pub fn write(&self, name: &str, contents: &str) -> Result<(), RunDirError> {
        let target = self.path.join(name);
        let partial = self.path.join(format!(".{name}.partial"));
        let error = |source| RunDirError::Write {
            path: target.clone(),
            source,
        };
        std::fs::write(&partial, contents).map_err(error)?;
        std::fs::rename(&partial, &target).map_err(error)
    }
}

/// What holds the results root `root`'s call cache, besides this process: a run folder
/// whose lock a live process holds, or the lock of a live `rlaif label`; with that
/// process's id.
pub fn active_run(root: &Path) -> Option<(PathBuf, u32)> {
    let entries = |dir: &Path| {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .collect::<Vec<_>>()
    };
    let labeling = entries(root).into_iter().find_map(|path| {
        let name = path.file_name()?.to_str()?;
        (name.starts_with(LABEL_LOCK_PREFIX) && name.ends_with(".lock"))
            .then(|| lock_file::holder(&path).map(|pid| (path.clone(), pid)))
            .flatten()
    });
    labeling.or_else(|| {
        entries(root)
            .iter()
            .filter(|path| path.is_dir())
            .flat_map(|experiment| entries(experiment))
            .filter(|path| path.is_dir())
            .find_map(|run| lock_file::holder(&run.join(LOCK)).map(|pid| (run, pid)))
    })
}

/// The start of the name of the lock a labeling process holds in the results root, so
/// that `rlaif cache repair` sees it.
const LABEL_LOCK_PREFIX: &str = "label-";

/// Where `rlaif label` (process `pid`) marks its use of the results root `root`.
pub fn label_lock(root: &Path, pid: u32) -> PathBuf {
    root.join(format!("{LABEL_LOCK_PREFIX}{pid}.lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_lock_refuses_and_a_stale_one_is_taken_over() {
        let root = tempfile::tempdir().unwrap();
        let run = RunDir::open(root.path(), "exp", "abc", false).unwrap();
        // Pretend another live process (pid 1 always exists) holds the lock.
        std::fs::write(run.path.join("run.lock"), "1").unwrap();
        let error = RunDir::open(root.path(), "exp", "abc", false).unwrap_err();
        assert!(error.to_string().contains("process 1"), "{error}");
        std::fs::write(run.path.join("run.lock"), "4294967294").unwrap();
        assert!(RunDir::open(root.path(), "exp", "abc", false).is_ok());
    }

    #[test]
    fn fresh_picks_a_new_folder() {
        let root = tempfile::tempdir().unwrap();
        let first = RunDir::open(root.path(), "exp", "abc", false).unwrap();
        let second = RunDir::open(root.path(), "exp", "abc", true).unwrap();
        assert_eq!(first.run_id, "abc");
        assert_eq!(second.run_id, "abc-2");
        drop((first, second));
        // Without --fresh, the newest run of the id is the one resumed.
        let again = RunDir::open(root.path(), "exp", "abc", false).unwrap();
        assert_eq!(again.run_id, "abc-2");
    }
}

//! `judgments.jsonl`: the append-only journal of a run.
//!
//! Each (cell, example) judgment is appended as one line the moment it completes, with a
//! single write, so a run killed at any moment leaves every finished judgment on disk.
//! A kill during a write can leave a torn last line; [`Journal::open`] cuts it off. When
//! an example is judged again (a failed call retried), the later line wins.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::append_only::read_complete_lines;
use crate::procedure::Judgment;

/// Why the journal cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot open {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot append to {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}:{line}: not a judgment ({message}; the file was edited by hand? move it aside to start the run over)"
    )]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// The judgments file of one run, open for appending.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Opens the journal (creating it), repairs a torn last line, and returns what
    /// `keep` makes of the judgments already in it, the latest per (cell, example)
    /// (those it turns into `None` are left out): the file is read a line at a time, so
    /// a journal far larger than memory can be resumed when `keep` holds little.
    pub fn open<T>(
        path: &Path,
        keep: impl Fn(&Judgment) -> Option<T>,
    ) -> Result<(Journal, Vec<T>), JournalError> {
        let open_error = |source| JournalError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut latest: HashMap<u64, usize> = HashMap::new();
        let mut judgments = Vec::new();
        read_complete_lines(path, open_error, |number, line| {
            let judgment: Judgment =
                serde_json::from_slice(line).map_err(|error| JournalError::Corrupt {
                    path: path.to_path_buf(),
                    line: number,
                    message: error.to_string(),
                })?;
            // A digest rather than the two ids: a large journal's keys would take as
            // much memory as the judgments kept.
            let key =
                crate::fingerprint::hash_u64(format!("{}\u{0}{}", judgment.cell, judgment.example));
            if let Some(kept) = keep(&judgment) {
                match latest.get(&key) {
                    Some(&position) => judgments[position] = kept,
                    None => {
                        latest.insert(key, judgments.len());
                        judgments.push(kept);
                    }
                }
            }
            Ok(())
        })?;
        // Append mode: every write lands at the end, whoever else has the file open.
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(open_error)?;
        Ok((
            Journal {
                path: path.to_path_buf(),
                file,
            },
            judgments,
        ))
    }

    /// Appends one judgment as one line.
    pub fn append(&mut self, judgment: &Judgment) -> Result<(), JournalError> {
        let mut line = serde_json::to_vec(judgment).expect("judgments serialize to JSON");
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(|source| JournalError::Write {
                path: self.path.clone(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Usage;
    use crate::data::Label;

    fn judgment(example: &str, score: Option<f64>) -> Judgment {
        Judgment {
            cell: "c1".into(),
            cell_name: "base/0-shot/sim".into(),
            example: example.into(),
            orders: vec![],
            p_a: score,
            ai: score.map(|_| Label::A),
            human: Label::A,
            score,
            longer: None,
            human_confidence: None,
            calls: 1,
            usage: Usage::default(),
            call_keys: vec!["0123456789abcdef".into()],
            paid_calls: 1,
            latency_ms: 3,
            failure: None,
        }
    }

    #[test]
    fn appended_judgments_are_read_back_latest_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("judgments.jsonl");
        let (mut journal, existing) =
            Journal::open(&path, |judgment| Some(judgment.clone())).unwrap();
        assert!(existing.is_empty());
        journal.append(&judgment("x", None)).unwrap();
        journal.append(&judgment("y", Some(1.0))).unwrap();
        journal.append(&judgment("x", Some(0.0))).unwrap();
        drop(journal);
        let (_, judgments) = Journal::open(&path, |judgment| Some(judgment.clone())).unwrap();
        assert_eq!(judgments.len(), 2);
        assert_eq!(judgments[0].example, "x");
        assert_eq!(judgments[0].score, Some(0.0), "the later line wins");
    }

    #[test]
    fn a_torn_last_line_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("judgments.jsonl");
        let (mut journal, _) = Journal::open(&path, |judgment| Some(judgment.clone())).unwrap();
        journal.append(&judgment("x", Some(1.0))).unwrap();
        drop(journal);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"cell\": \"c1\", \"exa").unwrap();
        drop(file);
        let (mut journal, judgments) =
            Journal::open(&path, |judgment| Some(judgment.clone())).unwrap();
        assert_eq!(judgments.len(), 1);
        journal.append(&judgment("y", Some(1.0))).unwrap();
        drop(journal);
        let (_, judgments) = Journal::open(&path, |judgment| Some(judgment.clone())).unwrap();
        assert_eq!(judgments.len(), 2);
    }

    #[test]
    fn a_corrupt_middle_line_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("judgments.jsonl");
        std::fs::write(&path, "not json\n").unwrap();
        let error = Journal::open(&path, |judgment| Some(judgment.clone()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("judgments.jsonl:1"), "{error}");
    }
}

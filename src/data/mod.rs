//! Human-labelled preference pairs: loaders per source format, filters, splits and the
//! exemplar pool.
//!
//! Every format is read into the same [`Example`]. A [`DataSource`] says which file, in
//! which format, and which subset to keep; [`load`] returns the examples in a
//! deterministic order for a given seed. A malformed record is an error naming the file
//! and the line, never a silently skipped row; records a format defines as unusable
//! (HH-RLHF transcripts whose prefixes differ) are dropped and counted in
//! [`Dataset::dropped`]. Pairs that are valid but peculiar (an empty response, identical
//! responses: both occur in the shared data) are kept and counted in [`Dataset::flagged`].

mod exemplars;
mod hh_rlhf;
mod jsonl;
mod pairs;
pub mod sample;
mod subset;
mod tldr;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fingerprint;

pub use exemplars::{choose_exemplars, usable_exemplars};

/// Which response the human preferred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    A,
    B,
    Tie,
}

/// One pair to be labelled: a context, two candidate responses and the human choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    pub id: String,
    pub context: String,
    pub response_a: String,
    pub response_b: String,
    pub label: Label,
    /// The source dataset's name, where the record carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// Source-specific fields (TL;DR confidence, annotator votes, ...).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub meta: serde_json::Map<String, serde_json::Value>,
    /// A written explanation of the human choice, shown with chain-of-thought exemplars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
}

/// The on-disk formats `rlaif` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataFormat {
    /// The native JSONL pairs format (DESIGN §9).
    Pairs,
    /// OpenAI's summarize-from-feedback comparisons (TL;DR, CNN/DM), JSONL.
    Tldr,
    /// Anthropic HH-RLHF `{chosen, rejected}` transcripts, JSONL, optionally gzipped.
    HhRlhf,
}

impl DataFormat {
    pub const ALL: [(&'static str, DataFormat); 3] = [
        ("pairs", DataFormat::Pairs),
        ("tldr", DataFormat::Tldr),
        ("hh-rlhf", DataFormat::HhRlhf),
    ];

    pub fn name(self) -> &'static str {
        match self {
            DataFormat::Pairs => "pairs",
            DataFormat::Tldr => "tldr",
            DataFormat::HhRlhf => "hh-rlhf",
        }
    }
}

/// Which side of a [`Split`] to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitSide {
    Holdout,
    Rest,
}

/// A deterministic partition by context: examples about the same post or conversation
/// always fall on the same side, so an exemplar pool drawn from the holdout side never
/// shares a context with the evaluated pairs drawn from the rest.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Split {
    /// Share of contexts in the holdout side, in (0, 1).
    pub holdout: f64,
    pub keep: SplitSide,
}

/// Which file to read, how, and which subset of it to keep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSource {
    pub format: DataFormat,
    /// Absolute, or relative to the working directory (the experiment loader resolves
    /// paths relative to the experiment file before building this).
    pub path: PathBuf,
    /// Keep at most this many examples (after filters and split).
    pub limit: Option<usize>,
    /// Seed for shuffling. (HH-RLHF positions come from a hash of each id, not a seed,
    /// so that they match the shared `normalized.jsonl` files.)
    pub seed: u64,
    /// Shuffle with `seed` before applying `limit`; otherwise keep file order.
    pub shuffle: bool,
    /// Keep only examples whose `meta.confidence` is 1, 2, 8 or 9 (TL;DR's
    /// high-confidence labels).
    pub high_confidence: bool,
    pub split: Option<Split>,
    /// Prefix of generated ids, and the dataset name, for formats whose records carry
    /// none (HH-RLHF; default `hh`). The other formats ignore it.
    pub id_prefix: Option<String>,
}

/// The examples read from one [`DataSource`].
#[derive(Debug, Clone)]
pub struct Dataset {
    pub examples: Vec<Example>,
    /// SHA-256 of the file's bytes, recorded so a run can tell when its data changed.
    pub file_sha256: String,
    /// Records read from the file, before any filter.
    pub records: usize,
    /// Records a format defines as unusable, by reason, with their counts.
    pub dropped: BTreeMap<String, usize>,
    /// Kept examples that are valid but worth a note in a report, by reason, with their
    /// counts: `empty response` (a model that wrote nothing; the shared sets have 75) and
    /// `identical responses` (only a tie is right; Auto-J has 9). Either makes the pair
    /// easy or unanswerable, which a reader of the alignment numbers should know.
    pub flagged: BTreeMap<String, usize>,
}

/// What went wrong reading a data file; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Record {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
}

/// The id prefix (and dataset name) of HH-RLHF records when the source sets none.
pub const DEFAULT_HH_ID_PREFIX: &str = "hh";

/// Reason counted in [`Dataset::flagged`] for a pair with an empty (or blank) response.
pub const FLAG_EMPTY_RESPONSE: &str = "empty response";
/// Reason counted in [`Dataset::flagged`] for a pair whose responses are the same text.
pub const FLAG_IDENTICAL_RESPONSES: &str = "identical responses";

/// Reads `source` into a [`Dataset`]: parse the file in its format, reject duplicate ids,
/// keep the high-confidence and split subsets asked for, shuffle with the seed when asked,
/// then cut to the limit.
///
/// Any file may be gzipped (by a `.gz` name); `file_sha256` is over the bytes on disk.
/// The result is never empty: a file or subset with no examples is an error saying which.
pub fn load(source: &DataSource) -> Result<Dataset, DataError> {
    let bytes = jsonl::read(&source.path)?;
    load_bytes(source, &bytes)
}

/// [`load`] for a file already in memory: `bytes` are read as the contents of
/// `source.path`, which names the file in errors and, by a `.gz` name, says whether to
/// gunzip them. The path is never opened.
pub fn load_bytes(source: &DataSource, bytes: &[u8]) -> Result<Dataset, DataError> {
    let path = source.path.as_path();
    let file_sha256 = fingerprint::sha256_hex(bytes);
    let plain = jsonl::decompress(path, bytes)?;
    let lines = jsonl::lines(path, &plain)?;

    let parsed = match source.format {
        DataFormat::Pairs => pairs::parse(path, &lines)?,
        DataFormat::Tldr => tldr::parse(path, &lines)?,
        DataFormat::HhRlhf => {
            let prefix = source.id_prefix.as_deref().unwrap_or(DEFAULT_HH_ID_PREFIX);
            hh_rlhf::parse(path, &lines, prefix)?
        }
    };
    check_unique_ids(path, &parsed.records)?;

    // What each step left, for the message when nothing is left.
    let mut steps = Vec::new();
    let mut records = parsed.records;
    let usable = records.len();
    if source.high_confidence {
        records = subset::high_confidence(path, records)?;
        steps.push(format!("high_confidence kept {}", records.len()));
    }
    if let Some(split) = &source.split {
        records = split.select(records, |record| record.example.context.as_str());
        let side = match split.keep {
            SplitSide::Holdout => "holdout",
            SplitSide::Rest => "rest",
        };
        steps.push(format!(
            "the {side} side of the split kept {}",
            records.len()
        ));
    }
    let mut examples: Vec<Example> = records.into_iter().map(|record| record.example).collect();
    if source.shuffle {
        sample::shuffle(&mut examples, source.seed);
    }
    if let Some(limit) = source.limit {
        examples.truncate(limit);
        steps.push(format!("limit kept {}", examples.len()));
    }
    if examples.is_empty() {
        return Err(no_examples(
            path,
            parsed.read,
            usable,
            &parsed.dropped,
            &steps,
        ));
    }

    Ok(Dataset {
        flagged: flag(&examples),
        examples,
        file_sha256,
        records: parsed.read,
        dropped: parsed.dropped,
    })
}

/// One format's reading of a file, before filters.
#[derive(Debug)]
struct Parsed {
    /// Records in the file (non-blank lines), usable or not.
    read: usize,
    records: Vec<Record>,
    dropped: BTreeMap<String, usize>,
}

/// An example with the 1-based line it came from, kept until the filters have run so
/// that their errors can point at the line.
#[derive(Debug)]
struct Record {
    line: usize,
    example: Example,
}

impl Record {
    fn error(&self, path: &Path, message: impl Into<String>) -> DataError {
        DataError::Record {
            path: path.to_path_buf(),
            line: self.line,
            message: message.into(),
        }
    }
}

/// Ids name examples in judgments and caches, so two records with one id would mix.
fn check_unique_ids(path: &Path, records: &[Record]) -> Result<(), DataError> {
    let mut first_line: BTreeMap<&str, usize> = BTreeMap::new();
    for record in records {
        if let Some(line) = first_line.insert(&record.example.id, record.line) {
            return Err(record.error(
                path,
                format!(
                    "duplicate id `{}` (first on line {line}; ids must be unique within a file)",
                    record.example.id
                ),
            ));
        }
    }
    Ok(())
}

fn no_examples(
    path: &Path,
    read: usize,
    usable: usize,
    dropped: &BTreeMap<String, usize>,
    steps: &[String],
) -> DataError {
    let message = if read == 0 {
        "no examples (the file is empty before any filter: it has no records)".to_string()
    } else if usable == 0 {
        // Only a format that drops records can get here: the others error instead.
        let reasons: Vec<String> = dropped
            .iter()
            .map(|(reason, count)| format!("{reason}: {count}"))
            .collect();
        format!(
            "no examples (the file is empty before any filter: every record was dropped; {})",
            reasons.join(", ")
        )
    } else {
        format!(
            "no examples left after filters (the file has {usable} before them; {})",
            steps.join(", ")
        )
    };
    DataError::File {
        path: path.to_path_buf(),
        message,
    }
}

/// Counts the kept examples a report should mention (see [`Dataset::flagged`]).
fn flag(examples: &[Example]) -> BTreeMap<String, usize> {
    let mut flagged = BTreeMap::new();
    for example in examples {
        if example.response_a.trim().is_empty() || example.response_b.trim().is_empty() {
            *flagged.entry(FLAG_EMPTY_RESPONSE.to_string()).or_insert(0) += 1;
        }
        if example.response_a == example.response_b {
            *flagged
                .entry(FLAG_IDENTICAL_RESPONSES.to_string())
                .or_insert(0) += 1;
        }
    }
    flagged
}

#[cfg(test)]
mod tests;

//! Human-labelled preference pairs: loaders per source format, filters, splits and the
//! exemplar pool.
//!
//! Every format is read into the same [`Example`]. A [`DataSource`] says which file, in
//! which format, and which subset to keep; [`load`] returns the examples in a
//! deterministic order for a given seed. A malformed record is an error naming the file
//! and the line, never a silently skipped row; records a format defines as unusable
//! (HH-RLHF transcripts whose prefixes differ) are dropped and counted in
//! [`Dataset::dropped`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
    /// Seed for shuffling (and for HH-RLHF positions when `position_seed` is unset).
    pub seed: u64,
    /// Shuffle with `seed` before applying `limit`; otherwise keep file order.
    pub shuffle: bool,
    /// Keep only examples whose `meta.confidence` is 1, 2, 8 or 9 (TL;DR's
    /// high-confidence labels).
    pub high_confidence: bool,
    pub split: Option<Split>,
    /// Prefix of generated ids, for formats whose records carry none (HH-RLHF).
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
}

/// What went wrong reading a data file; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
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

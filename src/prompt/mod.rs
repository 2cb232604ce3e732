//! Prompt rendering: minijinja templates per task → the exact text sent to a labeler.
//!
//! A task is a folder of templates (`templates/<task>/`): `preamble_<style>.j2` for each
//! preamble style, `exemplar.j2`, `sample.j2`, `cot.j2`, `ending.j2`, and `task.yaml`
//! declaring the task's polarity. The built-in tasks are compiled into the binary; a
//! user's templates folder overlays them file by file (a new `preamble_<style>.j2` adds a
//! style). Variables are strict: an undefined name is an error, never an empty string.
//! Dataset text is passed as values and is never itself rendered as a template.
//!
//! A prompt is laid out as
//! `preamble, exemplars..., sample, ending` (scoring) or
//! `preamble, exemplars..., sample, cot` (rationale generation), then
//! `<that> + rationale + ending` (scoring after chain-of-thought).
//! The preamble and exemplars form the cell's shared prefix: the same bytes for every
//! example of a cell, so backends can reuse their key/value state.

mod builtin;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::data::Example;
use crate::grid::Settings;

/// The order in which a pair's responses are shown: `Ab` shows response a as "1".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    Ab,
    Ba,
}

/// Whether the labeler is asked for the preferred response (`Normal`) or for the worse
/// one (`Inverted`, as harmlessness asks "which is more harmful"), so that later stages
/// map its answer back to the human label's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Polarity {
    Normal,
    Inverted,
}

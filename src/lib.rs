//! `rlaif`: an experiment harness for AI preference labelers.
//!
//! The pipeline runs in stages, one module each: [`spec`] reads and validates an
//! experiment file, [`grid`] expands it into cells, [`data`] loads the human-labelled
//! pairs and exemplar pools, [`prompt`] renders each cell's prompts, [`prepare`] binds
//! those stages together and checks the references between them, and [`plan`] counts the
//! calls a run would make. [`models`] installs the embedded labeler's model files. [`app`]
//! is the one place that knows the whole pipeline.

pub mod app;
mod append_only;
pub mod backend;
pub mod cache;
pub mod cli;
pub mod data;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod fingerprint;
pub mod grid;
pub mod label;
mod lock_file;
pub mod metrics;
pub mod models;
pub mod plan;
pub mod prepare;
pub mod procedure;
pub mod prompt;
pub mod report;
pub mod runner;
pub mod spec;
pub mod yaml;

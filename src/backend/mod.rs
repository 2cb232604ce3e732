//! Labeler backends. This stage so far owns the labeler settings an experiment declares;
//! the backends that act on them come with `rlaif run`.

pub mod config;

pub use config::{Api, EMBEDDED_MODELS, LabelerConfig, Mode, Price};

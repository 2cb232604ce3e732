//! The command line, as clap sees it. Definitions only: [`crate::app`] acts on them.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Sweep prompts and labelers for AI preference labeling (RLAIF), and rank them by how
/// often the AI's preference agrees with people's.
#[derive(Debug, Parser)]
#[command(name = "rlaif", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check an experiment file, its data and its templates; report every problem.
    Validate {
        /// The experiment file (YAML).
        file: PathBuf,
    },
    /// Show the cells an experiment expands into, and the calls and tokens each costs.
    Plan {
        /// The experiment file (YAML).
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
        format: PlanFormat,
    },
    /// Print exactly the prompt a cell would send for one example; nothing else.
    Render {
        /// The experiment file (YAML).
        file: PathBuf,
        /// The cell, by name (as `rlaif plan` shows it) or id.
        #[arg(long)]
        cell: String,
        /// The example, by id, or by its 0-based position in the dataset.
        #[arg(long)]
        example: String,
        /// The order in which the two responses are shown.
        #[arg(long, value_enum, default_value_t = OrderArg::Ab)]
        order: OrderArg,
        /// For a chain-of-thought cell: print the scoring prompt that follows this
        /// rationale, instead of the prompt that asks for the rationale.
        #[arg(long)]
        rationale: Option<String>,
    },

    /// Run every cell over every example and rank the cells; resumes an earlier run of
    /// the same file.
    Run {
        /// The experiment file (YAML).
        file: PathBuf,
        /// The results root.
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// Start a new run folder instead of resuming the last run of this file.
        #[arg(long)]
        fresh: bool,
        /// No progress display.
        #[arg(long, short)]
        quiet: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OrderArg {
    /// Response a shown first.
    Ab,
    /// Response b shown first.
    Ba,
}

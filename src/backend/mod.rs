//! Labeler backends: what a labeler can be asked, and the servers and models that answer.
//!
//! A [`Labeler`] answers two kinds of call: [`ScoreRequest`] (the alternatives for the
//! next token after a prompt, from which the procedure reads the preference) and
//! [`GenerateRequest`] (a chain-of-thought rationale). Backends declare what they can do
//! in [`Capabilities`]; a server without log-probabilities is used in parsed mode, where
//! sampled answers are counted instead ([`Scored::Votes`]).
//!
//! Backends know nothing of cells, caching or results: the cache wraps them
//! ([`crate::cache`]), and the procedure turns their answers into preferences.

pub mod config;
pub mod openai;
pub mod retry;
pub mod simulated;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use config::{Api, EMBEDDED_MODELS, LabelerConfig, Mode, Price, parameters};

/// A boxed future, so that labelers can sit behind `dyn Labeler`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a labeler can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// Returns next-token log-probabilities, so a preference is read in one call.
    pub logprobs: bool,
    /// Samples text at a temperature (chain-of-thought, self-consistency).
    pub sampling: bool,
    /// Scores by sampling answers and counting them (for servers without log-probs).
    pub parsed: bool,
    /// Takes the samples of one prompt in one call ([`Labeler::generate_samples`]):
    /// the embedded labeler decodes them together, faster than one after another.
    pub batches_samples: bool,
}

/// Ask for the alternatives of the one token that follows `prompt`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ScoreRequest {
    pub prompt: String,
    /// How many alternatives to return (log-prob mode), or answers to sample (parsed).
    pub alternatives: u32,
}

/// Ask for a rationale: text sampled after `prompt`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    pub prompt: String,
    pub max_tokens: u32,
    /// 0 decodes greedily.
    pub temperature: f64,
    pub top_k: u32,
    /// Which self-consistency sample this is; with the seed it makes sampling
    /// reproducible and names the sample in the cache.
    pub sample: u32,
    pub seed: u64,
    /// Generation stops before any of these.
    pub stop: Vec<String>,
}

/// Where the first of `stops` begins in `text`, if any does: a generation ends there.
pub fn first_stop(text: &str, stops: &[String]) -> Option<usize> {
    stops
        .iter()
        .filter_map(|stop| text.find(stop.as_str()))
        .min()
}

/// Tokens a call consumed, as the backend counted them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.prompt_tokens += other.prompt_tokens;
        self.completion_tokens += other.completion_tokens;
    }
}

/// The answer to a [`ScoreRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Scored {
    /// The top alternatives for the next token with their natural-log probabilities, as
    /// the backend returned them (token text verbatim, e.g. `"1"` or `" 1"`).
    Logprobs { top: Vec<(String, f64)> },
    /// Parsed mode: how many sampled answers chose slot 1, slot 2, or neither.
    Votes {
        first: u32,
        second: u32,
        neither: u32,
    },
}

/// A scored prompt and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scoring {
    pub scored: Scored,
    pub usage: Usage,
}

/// A generated rationale and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    pub text: String,
    pub usage: Usage,
    /// Why generation stopped (`stop`, `length`), when the backend says.
    pub finish_reason: Option<String>,
}

/// Ground truth a simulated labeler may read; real backends ignore it. It is not part of
/// any request, so it never reaches a server or a cache key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Truth {
    pub example_id: String,
    /// The slot (1 or 2) of the response people preferred in the prompt as shown, with
    /// the task's polarity applied; `None` for a tie.
    pub preferred_slot: Option<u8>,
}

/// Why a call failed. Retryable kinds have been retried before they reach the caller.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallError {
    #[error("{server} answered HTTP {status}: {message}")]
    Status {
        server: String,
        status: u16,
        message: String,
    },
    #[error("{server} did not answer within {seconds}s")]
    Timeout { server: String, seconds: u64 },
    #[error("cannot connect to {server}: {message}")]
    Connect { server: String, message: String },
    #[error("{server} sent a response that cannot be read: {message}")]
    Malformed { server: String, message: String },
    #[error("{server} returned no log-probabilities ({hint})")]
    NoLogprobs { server: String, hint: String },
    #[error(
        "{server} does not serve model `{model}` (it serves: {served}; fix `model:` in the labeler)"
    )]
    ModelNotServed {
        server: String,
        model: String,
        served: String,
    },
    #[error("the labeler cannot do this: {message}")]
    Unsupported { message: String },
    #[error("embedded model: {message}")]
    Model { message: String },
    /// A worker thread of the embedded labeler ended (a fault in the engine): each
    /// further call given to it would fail the same way.
    #[error("the embedded model's worker stopped")]
    WorkerStopped,
    #[error("the run was interrupted")]
    Cancelled,
}

impl CallError {
    /// A short name for counting failures by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Status { status: 429, .. } => "rate_limited",
            CallError::Status { status, .. } if *status >= 500 => "server_error",
            CallError::Status {
                status: 401 | 403, ..
            } => "unauthorized",
            CallError::Status { status: 404, .. } => "not_found",
            CallError::Status { status: 408, .. } => "timeout",
            CallError::Status { .. } => "rejected",
            CallError::Timeout { .. } => "timeout",
            CallError::Connect { .. } => "connect",
            CallError::Malformed { .. } => "malformed",
            CallError::NoLogprobs { .. } => "no_logprobs",
            CallError::ModelNotServed { .. } => "model_not_served",
            CallError::Unsupported { .. } => "unsupported",
            CallError::Model { .. } => "model",
            CallError::WorkerStopped => "worker_stopped",
            CallError::Cancelled => "cancelled",
        }
    }
}

/// A labeler: a backend configured with one model.
pub trait Labeler: Send + Sync + std::fmt::Debug {
    /// What identifies this labeler's answers: backend, model and every setting that can
    /// change an answer. The cache keys on it; the URL and the API key are not part of it.
    fn identity(&self) -> &str;

    fn capabilities(&self) -> Capabilities;

    /// Checks, before any example is sent, that the labeler can serve the run (server
    /// reachable, model listed, log-probabilities returned).
    fn preflight(&self) -> BoxFuture<'_, Result<(), CallError>>;

    fn score<'a>(
        &'a self,
        request: &'a ScoreRequest,
        truth: &'a Truth,
    ) -> BoxFuture<'a, Result<Scoring, CallError>>;

    fn generate<'a>(
        &'a self,
        request: &'a GenerateRequest,
        truth: &'a Truth,
    ) -> BoxFuture<'a, Result<Generation, CallError>>;

    /// Generates `requests`, the samples of one prompt (they differ only in `sample`),
    /// one answer per request in order. A labeler that says `batches_samples` decodes
    /// them together; the others answer them one after another.
    fn generate_samples<'a>(
        &'a self,
        requests: &'a [GenerateRequest],
        truth: &'a Truth,
    ) -> BoxFuture<'a, Result<Vec<Generation>, CallError>> {
        Box::pin(async move {
            let mut answers = Vec::with_capacity(requests.len());
            for request in requests {
                answers.push(self.generate(request, truth).await?);
            }
            Ok(answers)
        })
    }
}

/// Why a labeler could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "labeler `{name}`: environment variable {variable} is not set (export it with the API key)"
    )]
    MissingKey { name: String, variable: String },
    #[error(
        "labeler `{name}`: this build of rlaif has no embedded backend (build it with the default features, or use `backend: openai` with a llama.cpp or vLLM server)"
    )]
    EmbeddedUnavailable { name: String },
    /// candle sizes its thread pools once per process, from the environment, so a
    /// labeler's own count can only be checked against them, never applied.
    #[error(
        "labeler `{name}` asks for `threads: {asked}`, but the embedded labeler runs on {running} thread(s) in this process, a count fixed when it starts (start rlaif with RAYON_NUM_THREADS={asked}, or remove `threads:`)"
    )]
    Threads {
        name: String,
        asked: usize,
        running: usize,
    },
    #[error("labeler `{name}` is a `{backend}` labeler, not an `{expected}` one")]
    WrongBackend {
        name: String,
        backend: &'static str,
        expected: &'static str,
    },
    #[error("cannot start the HTTP client")]
    Client(#[source] reqwest::Error),
}

/// Settles how many threads the embedded labelers compute on, before the process starts
/// any thread: one per worker when a labeler has several workers, else what candle
/// chooses (every physical core unless `RAYON_NUM_THREADS` says otherwise). The count
/// holds for the whole process, so it is settled once for all the labelers a command
/// builds. When the environment does not already say one thread, this starts the same
/// command again under it, in place of this process (same process id, same terminal),
/// and returns only if that fails.
pub fn settle_threads<'a>(
    labelers: impl IntoIterator<Item = &'a LabelerConfig>,
) -> Result<(), std::io::Error> {
    let several_workers = labelers
        .into_iter()
        .any(|config| matches!(config, LabelerConfig::Embedded { workers, .. } if *workers > 1));
    #[cfg(all(feature = "embedded", unix))]
    if several_workers {
        use std::os::unix::process::CommandExt;
        let one_thread = crate::embedded::ONE_THREAD;
        if one_thread
            .iter()
            .any(|(variable, value)| std::env::var(variable).ok().as_deref() != Some(value))
        {
            return Err(std::process::Command::new(std::env::current_exe()?)
                .args(std::env::args_os().skip(1))
                .envs(one_thread)
                .exec());
        }
    }
    #[cfg(not(all(feature = "embedded", unix)))]
    let _ = several_workers;
    Ok(())
}

/// The threads each embedded worker computes on in this process; `None` in a build
/// without the embedded backend.
pub fn embedded_threads() -> Option<usize> {
    #[cfg(feature = "embedded")]
    return Some(candle_core::utils::get_num_threads());
    #[cfg(not(feature = "embedded"))]
    None
}

/// Builds the labeler an experiment declares under `name`. `quiet` silences the
/// progress of a model download.
pub fn build(
    name: &str,
    config: &LabelerConfig,
    client: &reqwest::Client,
    quiet: bool,
) -> Result<Arc<dyn Labeler>, BuildError> {
    match config {
        LabelerConfig::Openai { .. } => {
            Ok(Arc::new(openai::OpenAi::new(name, config, client.clone())?))
        }
        LabelerConfig::Simulated {
            accuracy,
            position_bias,
            seed,
        } => Ok(Arc::new(simulated::Simulated::new(
            *accuracy,
            *position_bias,
            *seed,
        ))),
        #[cfg(feature = "embedded")]
        LabelerConfig::Embedded { threads, .. } => {
            let running = candle_core::utils::get_num_threads();
            if let Some(asked) = *threads
                && asked != running
            {
                return Err(BuildError::Threads {
                    name: name.to_owned(),
                    asked,
                    running,
                });
            }
            Ok(Arc::new(crate::embedded::Embedded::new(config, quiet)))
        }
        #[cfg(not(feature = "embedded"))]
        LabelerConfig::Embedded { .. } => {
            let _ = quiet;
            Err(BuildError::EmbeddedUnavailable {
                name: name.to_owned(),
            })
        }
    }
}

//! Labeler settings as an experiment declares them, validated.

use std::path::PathBuf;

use serde::Serialize;

/// Which OpenAI-compatible endpoint scores prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// `/v1/completions` with `logprobs`: the prompt is sent verbatim (preferred).
    Completions,
    /// `/v1/chat/completions` with `top_logprobs`: the prompt becomes one user message.
    Chat,
}

/// How a labeler's preference distribution is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Softmax over the log-probabilities of the choice tokens.
    Logprobs,
    /// The labeler answers with a choice; repeated samples estimate the distribution.
    Parsed,
}

/// Money per million tokens, for the cost columns of a report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Price {
    pub prompt_per_million: f64,
    pub completion_per_million: f64,
}

/// One labeler of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "backend", rename_all = "lowercase")]
pub enum LabelerConfig {
    /// Any OpenAI-compatible server.
    Openai {
        /// One or more base URLs (`http://host:port/v1`), balanced by outstanding requests.
        base_urls: Vec<String>,
        api: Api,
        model: String,
        mode: Mode,
        max_concurrency: usize,
        requests_per_minute: Option<u32>,
        /// Name of the environment variable holding the API key; the key itself is never
        /// stored.
        api_key_env: Option<String>,
        /// How many alternatives to ask for at the scoring position.
        top_logprobs: u32,
        timeout_secs: u64,
        max_retries: u32,
        max_rationale_tokens: u32,
        top_k: u32,
        price: Option<Price>,
    },
    /// A GGUF model run in-process.
    Embedded {
        model: String,
        /// A model file to use instead of the registry one (for a model outside the ladder).
        path: Option<PathBuf>,
        threads: Option<usize>,
        /// Wrap the prompt in the model's chat template.
        chat: bool,
        max_rationale_tokens: u32,
        top_k: u32,
    },
    /// A seeded labeler with set accuracy and position bias: tests and benchmarks only.
    Simulated {
        accuracy: f64,
        position_bias: f64,
        seed: u64,
    },
}

impl LabelerConfig {
    /// The settings that can change a labeler's answers, without the operational ones
    /// (URLs, concurrency, timeouts, retries, the key's variable, prices): moving to
    /// another server of the same model is the same run.
    pub fn answer_settings(&self) -> serde_json::Value {
        match self {
            LabelerConfig::Openai {
                api,
                model,
                mode,
                max_rationale_tokens,
                top_k,
                ..
            } => serde_json::json!({
                "backend": "openai", "api": api, "model": model, "mode": mode,
                "max_rationale_tokens": max_rationale_tokens, "top_k": top_k,
            }),
            LabelerConfig::Embedded {
                model,
                path,
                chat,
                max_rationale_tokens,
                top_k,
                ..
            } => serde_json::json!({
                "backend": "embedded", "model": model, "path": path, "chat": chat,
                "max_rationale_tokens": max_rationale_tokens, "top_k": top_k,
            }),
            LabelerConfig::Simulated { .. } => {
                serde_json::to_value(self).expect("labeler settings serialize to JSON")
            }
        }
    }

    /// The backend's name as the experiment file spells it.
    pub fn backend(&self) -> &'static str {
        match self {
            LabelerConfig::Openai { .. } => "openai",
            LabelerConfig::Embedded { .. } => "embedded",
            LabelerConfig::Simulated { .. } => "simulated",
        }
    }
}

/// The models the embedded backend can pull from the package registry.
pub const EMBEDDED_MODELS: [&str; 4] = [
    "smollm2-135m",
    "gemma3-270m",
    "qwen2.5-coder-0.5b",
    "qwen2.5-coder-1.5b",
];

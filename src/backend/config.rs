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
        /// Where a rationale ends besides the prompt's own ending (e.g. `###`, where
        /// a few-shot prompt's next example would begin).
        rationale_stop: Vec<String>,
        top_k: u32,
        price: Option<Price>,
    },
    /// A GGUF model run in-process.
    Embedded {
        model: String,
        /// A model file to use instead of the registry one (for a model outside the ladder).
        path: Option<PathBuf>,
        threads: Option<usize>,
        /// Model instances computing side by side, one thread each, sharing the weights.
        workers: usize,
        /// Wrap the prompt in the model's chat template.
        chat: bool,
        max_rationale_tokens: u32,
        /// As for `Openai`.
        rationale_stop: Vec<String>,
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
    /// For an embedded labeler given a model file by `path:`, what tells one version of
    /// the file from another: its length and modification time (hashing gigabytes on
    /// every start would cost seconds). A file replaced at the same path (a new
    /// fine-tune, a re-export) is then another labeler to the cache, the run id and
    /// `label`'s provenance. `None` for every other labeler, and for a missing file.
    pub fn model_file_stamp(&self) -> Option<String> {
        let LabelerConfig::Embedded {
            path: Some(path), ..
        } = self
        else {
            return None;
        };
        let metadata = std::fs::metadata(path).ok()?;
        let modified = metadata
            .modified()
            .ok()
            .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_nanos());
        Some(format!("{}:{modified}", metadata.len()))
    }

    /// The settings that can change a labeler's answers, without the operational ones
    /// (URLs, concurrency, timeouts, retries, the key's variable, prices): moving to
    /// another server of the same model is the same run.
    pub fn answer_settings(&self) -> serde_json::Value {
        match self {
            LabelerConfig::Openai {
                api,
                model,
                mode,
                top_logprobs,
                max_rationale_tokens,
                rationale_stop,
                top_k,
                ..
            } => with_rationale_stop(
                serde_json::json!({
                    "backend": "openai", "api": api, "model": model, "mode": mode,
                    "top_logprobs": top_logprobs,
                    "max_rationale_tokens": max_rationale_tokens, "top_k": top_k,
                }),
                rationale_stop,
            ),
            LabelerConfig::Embedded {
                model,
                path,
                chat,
                max_rationale_tokens,
                rationale_stop,
                top_k,
                ..
            } => with_rationale_stop(
                serde_json::json!({
                    "backend": "embedded", "model": model, "path": path, "chat": chat,
                    "max_rationale_tokens": max_rationale_tokens, "top_k": top_k,
                }),
                rationale_stop,
            ),
            LabelerConfig::Simulated { .. } => {
                serde_json::to_value(self).expect("labeler settings serialize to JSON")
            }
        }
    }

    /// Where the labeler's rationales end besides the prompt's own ending.
    pub fn rationale_stop(&self) -> &[String] {
        match self {
            LabelerConfig::Openai { rationale_stop, .. }
            | LabelerConfig::Embedded { rationale_stop, .. } => rationale_stop,
            LabelerConfig::Simulated { .. } => &[],
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

/// Adds the rationale stops to a labeler's answer settings when it has any: a labeler
/// without them keeps the settings, and so the run id, it had before they existed.
fn with_rationale_stop(mut settings: serde_json::Value, stop: &[String]) -> serde_json::Value {
    if !stop.is_empty() {
        settings["rationale_stop"] = serde_json::json!(stop);
    }
    settings
}

/// A model's parameter count: known for the embedded ladder, else read from a size in
/// its name (`Llama-3.1-8B-Instruct` → 8e9, `SmolLM2-135M` → 1.35e8).
pub fn parameters(model: &str) -> Option<f64> {
    if let Some(card) = crate::models::card(model) {
        return Some(card.parameters as f64);
    }
    let lower = model.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let mut found = None;
    for (end, &unit) in bytes.iter().enumerate() {
        let scale = match unit {
            b'b' => 1e9,
            b'm' => 1e6,
            _ => continue,
        };
        // The unit must end a word: "8b-instruct", not "8bit" or "mistral".
        if bytes.get(end + 1).is_some_and(u8::is_ascii_alphanumeric) {
            continue;
        }
        let start = lower[..end]
            .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
            .map_or(0, |at| at + 1);
        if let Ok(value) = lower[start..end].parse::<f64>() {
            found = Some(value * scale);
        }
    }
    found
}

/// The models the embedded backend can pull from the package registry (see
/// [`crate::models`]).
pub const EMBEDDED_MODELS: [&str; crate::models::LADDER.len()] = crate::models::NAMES;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_counts_from_names() {
        assert_eq!(parameters("smollm2-135m"), Some(135e6));
        assert_eq!(parameters("Llama-3.1-8B-Instruct"), Some(8e9));
        assert_eq!(parameters("SmolLM2-135M-Instruct.Q4_1.gguf"), Some(135e6));
        assert_eq!(parameters("qwen2.5-coder-1.5b"), Some(1.5e9));
        assert_eq!(parameters("Qwen2.5-0.5B-Instruct"), Some(0.5e9));
        assert_eq!(parameters("gpt-4o-mini"), None);
        assert_eq!(parameters("mistral"), None);
    }

    #[test]
    fn a_model_file_replaced_in_place_gets_another_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("judge.gguf");
        std::fs::write(&file, "version one").unwrap();
        let mut config = LabelerConfig::Embedded {
            model: "judge".to_owned(),
            path: Some(file.clone()),
            threads: None,
            workers: 1,
            chat: false,
            max_rationale_tokens: 512,
            rationale_stop: Vec::new(),
            top_k: 40,
        };
        let first = config.model_file_stamp().unwrap();
        assert_eq!(
            config.model_file_stamp().unwrap(),
            first,
            "stable while unchanged"
        );
        // The same length, written later: a re-export of the same architecture.
        std::fs::write(&file, "version two").unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_ne!(config.model_file_stamp().unwrap(), first);
        let LabelerConfig::Embedded { path, .. } = &mut config else {
            unreachable!()
        };
        *path = None;
        assert_eq!(config.model_file_stamp(), None, "a registry model has none");
    }

    fn embedded(rationale_stop: &[&str]) -> LabelerConfig {
        LabelerConfig::Embedded {
            model: "smollm2-135m".to_owned(),
            path: None,
            threads: None,
            workers: 1,
            chat: false,
            max_rationale_tokens: 512,
            rationale_stop: rationale_stop.iter().map(|&stop| stop.to_owned()).collect(),
            top_k: 40,
        }
    }

    #[test]
    fn rationale_stops_enter_the_answer_settings_only_when_given() {
        // The settings of a labeler without stops are those of every run made before
        // stops existed, so their run ids still find their folders.
        assert_eq!(
            embedded(&[]).answer_settings(),
            serde_json::json!({
                "backend": "embedded", "model": "smollm2-135m", "path": null, "chat": false,
                "max_rationale_tokens": 512, "top_k": 40,
            })
        );
        assert_eq!(
            embedded(&["###"]).answer_settings()["rationale_stop"],
            serde_json::json!(["###"])
        );
        assert_ne!(
            embedded(&["###"]).answer_settings(),
            embedded(&["\n\n"]).answer_settings()
        );
    }
}

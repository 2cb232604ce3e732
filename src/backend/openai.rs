//! The `openai` backend: any OpenAI-compatible server (vLLM, llama.cpp's `llama-server`,
//! SGLang, TGI, Ollama, hosted APIs).
//!
//! It owns the HTTP side of one labeler: the request bodies of the completions and chat
//! APIs, reading log-probabilities (or, in parsed mode, sampled answers) out of their
//! responses, bounded concurrency, requests-per-minute pacing, balancing over several base
//! URLs by outstanding requests, retries (the policy lives in [`super::retry`]) and the
//! preflight. It does not build the HTTP client — one client, with its connect timeout,
//! is shared by every labeler of a run — and it never writes the API key anywhere: not
//! into errors, not into `Debug` output, not into the identity the cache keys on.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::retry::{self, RetryPolicy};
use super::{
    Api, BoxFuture, BuildError, CallError, Capabilities, GenerateRequest, Generation, Labeler,
    LabelerConfig, Mode, ScoreRequest, Scored, Scoring, Truth, Usage,
};

/// The prompt of the preflight's scoring call: short, and ending where a choice token
/// is the natural next token.
const PREFLIGHT_PROMPT: &str =
    "Which response is better, 1 or 2? Answer with 1 or 2.\nPreferred Response=";
/// Parsed mode samples answers at this temperature, so that their counts estimate the
/// labeler's distribution.
const PARSED_TEMPERATURE: f64 = 1.0;
/// Room for an answer such as `" 1"` or `"2."`; the first digit is read.
const PARSED_MAX_TOKENS: u32 = 3;
/// The most alternatives the chat API returns per position (OpenAI's limit, and vLLM's
/// default).
const CHAT_TOP_LOGPROBS_MAX: u32 = 20;
/// How much of a server's error message an error keeps.
const MESSAGE_LIMIT: usize = 300;
/// How many served models a "model not listed" error names.
const LISTED_MODELS: usize = 12;

/// A labeler served by one or more OpenAI-compatible servers.
pub struct OpenAi {
    name: String,
    identity: String,
    servers: Vec<Server>,
    /// Where the next search for the least loaded server starts, so that equally loaded
    /// servers take turns.
    rotation: AtomicUsize,
    api: Api,
    model: String,
    mode: Mode,
    top_logprobs: u32,
    timeout_secs: u64,
    max_concurrency: usize,
    requests_per_minute: Option<u32>,
    permits: Semaphore,
    pacer: Option<Pacer>,
    key: Option<ApiKey>,
    policy: RetryPolicy,
    client: reqwest::Client,
}

/// One base URL and the requests currently sent to it.
#[derive(Debug)]
struct Server {
    base: String,
    outstanding: AtomicUsize,
}

/// An API key and the variable it came from. Its `Debug` shows only the variable.
struct ApiKey {
    variable: String,
    value: String,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey(from ${}, redacted)", self.variable)
    }
}

/// Spaces requests evenly to stay under a requests-per-minute limit. Even spacing (no
/// burst) is the simplest schedule that never exceeds the limit in any minute.
#[derive(Debug)]
struct Pacer {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Pacer {
    fn new(requests_per_minute: u32) -> Pacer {
        Pacer {
            interval: Duration::from_secs(60) / requests_per_minute.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Waits for this request's slot.
    async fn wait(&self) {
        let slot = {
            // A poisoned lock still holds a valid instant.
            let mut next = self
                .next
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// A request counted against a server while it is outstanding.
struct Lease<'a> {
    server: &'a Server,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.server.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why one attempt failed, and whether another may succeed.
#[derive(Debug)]
struct Failure {
    error: CallError,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl Failure {
    fn transient(error: CallError) -> Failure {
        Failure {
            error,
            retryable: true,
            retry_after: None,
        }
    }

    fn fatal(error: CallError) -> Failure {
        Failure {
            error,
            retryable: false,
            retry_after: None,
        }
    }
}

/// Which server a call goes to.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The one with the fewest outstanding requests.
    Balanced,
    /// This one (the preflight checks every server).
    Server(usize),
}

impl OpenAi {
    /// Builds the labeler `name` from its settings; reads the API key from the
    /// environment now, so that a missing key fails before the run starts.
    ///
    /// `config` must be [`LabelerConfig::Openai`] ([`super::build`] dispatches on it).
    pub fn new(
        name: &str,
        config: &LabelerConfig,
        client: reqwest::Client,
    ) -> Result<OpenAi, BuildError> {
        let LabelerConfig::Openai {
            base_urls,
            api,
            model,
            mode,
            max_concurrency,
            requests_per_minute,
            api_key_env,
            top_logprobs,
            timeout_secs,
            max_retries,
            ..
        } = config
        else {
            return Err(BuildError::WrongBackend {
                name: name.to_owned(),
                backend: config.backend(),
                expected: "openai",
            });
        };
        let key = match api_key_env {
            Some(variable) => match std::env::var(variable) {
                // An exported but empty variable would send `Bearer ` and fail every call.
                Ok(value) if !value.trim().is_empty() => Some(ApiKey {
                    variable: variable.clone(),
                    value: value.trim().to_owned(),
                }),
                _ => {
                    return Err(BuildError::MissingKey {
                        name: name.to_owned(),
                        variable: variable.clone(),
                    });
                }
            },
            None => None,
        };
        let max_concurrency = (*max_concurrency).clamp(1, Semaphore::MAX_PERMITS);
        Ok(OpenAi {
            name: name.to_owned(),
            identity: format!("openai:{}:{}:{model}", api_name(*api), mode_name(*mode)),
            servers: base_urls
                .iter()
                .map(|base| Server {
                    base: base.trim_end_matches('/').to_owned(),
                    outstanding: AtomicUsize::new(0),
                })
                .collect(),
            rotation: AtomicUsize::new(0),
            api: *api,
            model: model.clone(),
            mode: *mode,
            top_logprobs: *top_logprobs,
            timeout_secs: *timeout_secs,
            max_concurrency,
            requests_per_minute: *requests_per_minute,
            permits: Semaphore::new(max_concurrency),
            pacer: requests_per_minute.map(Pacer::new),
            key,
            policy: RetryPolicy::new(*max_retries),
            client,
        })
    }

    /// Replaces the retry policy (tests use short waits).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> OpenAi {
        self.policy = policy;
        self
    }

    /// The retry policy in force.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.policy
    }

    /// The base URLs, as errors name them.
    pub fn base_urls(&self) -> Vec<&str> {
        self.servers
            .iter()
            .map(|server| server.base.as_str())
            .collect()
    }

    /// Scores `prompt` by the log-probabilities of the next token.
    async fn score_logprobs(
        &self,
        target: Target,
        prompt: &str,
        alternatives: u32,
    ) -> Result<Scoring, CallError> {
        let alternatives = if alternatives > 0 {
            alternatives
        } else {
            self.top_logprobs
        };
        let (path, body) = match self.api {
            Api::Completions => (
                "/completions",
                json!({
                    "model": self.model,
                    "prompt": prompt,
                    "max_tokens": 1,
                    "temperature": 0,
                    "logprobs": alternatives,
                }),
            ),
            Api::Chat => (
                "/chat/completions",
                json!({
                    "model": self.model,
                    "messages": [{"role": "user", "content": prompt}],
                    "max_tokens": 1,
                    "temperature": 0,
                    "logprobs": true,
                    "top_logprobs": alternatives.min(CHAT_TOP_LOGPROBS_MAX),
                }),
            ),
        };
        let (server, response) = self.exchange(target, path, Some(&body), true).await?;
        read_logprobs(&response).map_err(|error| self.body_error(server, error))
    }

    /// Scores `prompt` by sampling `samples` answers and counting the choices in them.
    /// A server that returns fewer choices than `n` asks for (llama.cpp ignores `n`) is
    /// asked again for the rest.
    async fn score_parsed(
        &self,
        target: Target,
        prompt: &str,
        samples: u32,
    ) -> Result<Scoring, CallError> {
        let wanted = samples.max(1);
        let (mut first, mut second, mut neither) = (0, 0, 0);
        let mut usage = Usage::default();
        let mut counted = 0;
        while counted < wanted {
            let n = wanted - counted;
            let mut body = self.body(prompt);
            body["n"] = json!(n);
            body["max_tokens"] = json!(PARSED_MAX_TOKENS);
            body["temperature"] = json!(PARSED_TEMPERATURE);
            let (server, response) = self
                .exchange(target, self.path(), Some(&body), true)
                .await?;
            let (votes, used) =
                read_votes(&response, n).map_err(|error| self.body_error(server, error))?;
            first += votes.first;
            second += votes.second;
            neither += votes.neither;
            counted += votes.total();
            usage += used;
        }
        Ok(Scoring {
            scored: Scored::Votes {
                first,
                second,
                neither,
            },
            usage,
        })
    }

    async fn generate_text(&self, request: &GenerateRequest) -> Result<Generation, CallError> {
        let mut body = self.body(&request.prompt);
        body["max_tokens"] = json!(request.max_tokens);
        body["temperature"] = json!(request.temperature);
        body["seed"] = json!(mix_seed(request.seed, request.sample));
        // `top_k` is an extension (llama.cpp, vLLM, SGLang); 0 leaves it out for servers
        // that reject unknown fields.
        if request.top_k > 0 {
            body["top_k"] = json!(request.top_k);
        }
        if !request.stop.is_empty() {
            body["stop"] = json!(request.stop);
        }
        let (server, response) = self
            .exchange(Target::Balanced, self.path(), Some(&body), true)
            .await?;
        read_generation(&response).map_err(|error| self.body_error(server, error))
    }

    async fn check(&self) -> Result<(), CallError> {
        for index in 0..self.servers.len() {
            self.check_models(index).await?;
            match self.mode {
                Mode::Logprobs => {
                    self.score_logprobs(Target::Server(index), PREFLIGHT_PROMPT, self.top_logprobs)
                        .await?;
                }
                Mode::Parsed => {
                    self.score_parsed(Target::Server(index), PREFLIGHT_PROMPT, 1)
                        .await?;
                }
            }
        }
        if self.servers.is_empty() {
            return Err(self.no_servers());
        }
        Ok(())
    }

    /// Checks that server `index` answers and lists the model. A server without a
    /// `/models` route passes: the scoring call that follows checks the model.
    async fn check_models(&self, index: usize) -> Result<(), CallError> {
        // A refused connection is not retried here: the user should hear at once that
        // the server is not running.
        let (server, listing) = match self
            .exchange(Target::Server(index), "/models", None, false)
            .await
        {
            Ok(answer) => answer,
            Err(CallError::Status {
                status: 404 | 405, ..
            }) => return Ok(()),
            Err(error) => return Err(error),
        };
        let served = served_models(&listing);
        if served.is_empty() || served.iter().any(|id| model_matches(id, &self.model)) {
            return Ok(());
        }
        let mut listed: Vec<String> = served
            .iter()
            .take(LISTED_MODELS)
            .map(|id| format!("`{id}`"))
            .collect();
        if served.len() > LISTED_MODELS {
            listed.push(format!("and {} more", served.len() - LISTED_MODELS));
        }
        Err(CallError::ModelNotServed {
            server,
            model: self.model.clone(),
            served: listed.join(", "),
        })
    }

    /// The request body shared by scoring in parsed mode and generation.
    fn body(&self, prompt: &str) -> Value {
        match self.api {
            Api::Completions => json!({"model": self.model, "prompt": prompt}),
            Api::Chat => json!({
                "model": self.model,
                "messages": [{"role": "user", "content": prompt}],
            }),
        }
    }

    fn path(&self) -> &'static str {
        match self.api {
            Api::Completions => "/completions",
            Api::Chat => "/chat/completions",
        }
    }

    /// Sends one request, retrying transient failures; returns the answering server's
    /// base URL and the JSON body.
    async fn exchange(
        &self,
        target: Target,
        path: &str,
        body: Option<&Value>,
        retry_connect: bool,
    ) -> Result<(String, Value), CallError> {
        let mut retries = 0;
        loop {
            let failure = match self.attempt(target, path, body).await {
                Ok(answer) => return Ok(answer),
                Err(failure) => failure,
            };
            let retryable = failure.retryable
                && (retry_connect || !matches!(failure.error, CallError::Connect { .. }));
            if !retryable || retries >= self.policy.max_retries {
                return Err(gave_up(failure.error, retries));
            }
            // The permit was released with the attempt: waiting holds no slot.
            let wait = self
                .policy
                .delay(retries, failure.retry_after, retry::jitter());
            tokio::time::sleep(wait).await;
            retries += 1;
        }
    }

    /// One HTTP exchange, holding a concurrency permit and a lease on the server.
    async fn attempt(
        &self,
        target: Target,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(String, Value), Failure> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| Failure::fatal(CallError::Cancelled))?;
        if let Some(pacer) = &self.pacer {
            pacer.wait().await;
        }
        let lease = self
            .lease(target)
            .ok_or_else(|| Failure::fatal(self.no_servers()))?;
        let server = &lease.server.base;
        let url = format!("{server}{path}");
        let mut request = match body {
            Some(body) => self.client.post(&url).json(body),
            None => self.client.get(&url),
        }
        .timeout(Duration::from_secs(self.timeout_secs));
        if let Some(key) = &self.key {
            request = request.bearer_auth(&key.value);
        }
        let response = request
            .send()
            .await
            .map_err(|error| self.transport_failure(server, &error))?;
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let bytes = response
            .bytes()
            .await
            .map_err(|error| self.transport_failure(server, &error))?;
        if !(200..300).contains(&status) {
            let text = String::from_utf8_lossy(&bytes);
            return Err(Failure {
                retryable: retry::retryable_status(status, &text),
                retry_after,
                error: CallError::Status {
                    server: server.clone(),
                    status,
                    message: self.status_message(status, &text),
                },
            });
        }
        // A 200 whose body does not parse was most likely cut off on the way: transient.
        let value = parse_body(&bytes)
            .map_err(|error| Failure::transient(self.body_error(server.clone(), error)))?;
        Ok((server.clone(), value))
    }

    /// Takes a lease on the target server: the one asked for, or the one with the fewest
    /// outstanding requests (equally loaded servers take turns).
    fn lease(&self, target: Target) -> Option<Lease<'_>> {
        let server = match target {
            Target::Server(index) => self.servers.get(index)?,
            Target::Balanced => {
                let count = self.servers.len();
                let start = self.rotation.fetch_add(1, Ordering::Relaxed);
                (0..count)
                    .map(|offset| &self.servers[(start + offset) % count])
                    .min_by_key(|server| server.outstanding.load(Ordering::Relaxed))?
            }
        };
        server.outstanding.fetch_add(1, Ordering::Relaxed);
        Some(Lease { server })
    }

    /// Classifies a failure below HTTP: timeouts, refused or dropped connections, bodies
    /// cut off mid-way.
    fn transport_failure(&self, server: &str, error: &reqwest::Error) -> Failure {
        let server = server.to_owned();
        let cause = self.redact(&root_cause(error));
        if error.is_timeout() {
            Failure::transient(CallError::Timeout {
                server,
                seconds: self.timeout_secs,
            })
        } else if error.is_builder() {
            Failure::fatal(CallError::Connect {
                server,
                message: format!("{cause} (check `base_url`)"),
            })
        } else if error.is_connect() {
            Failure::transient(CallError::Connect {
                server,
                message: format!(
                    "{cause} (the server is not reachable: start it, or check `base_url`)"
                ),
            })
        } else if error.is_body() || error.is_decode() {
            Failure::transient(CallError::Malformed {
                server,
                message: format!("the response was cut off ({cause})"),
            })
        } else {
            // A connection dropped mid-exchange (a keep-alive race, a restarting server).
            Failure::transient(CallError::Connect {
                server,
                message: cause,
            })
        }
    }

    /// The server's error message, shortened, with a hint for the statuses whose fix is
    /// on our side.
    fn status_message(&self, status: u16, body: &str) -> String {
        let message = truncate(&self.redact(&error_message(body)), MESSAGE_LIMIT);
        let hint = match status {
            401 | 403 => Some(match &self.key {
                Some(key) => format!("check the API key in ${}", key.variable),
                None => "the server wants an API key: name the environment variable that \
                         holds it in `api_key_env`"
                    .to_owned(),
            }),
            404 => Some(format!(
                "check `base_url` (the API root, e.g. http://127.0.0.1:8000/v1), `api: {}` \
                 and `model`",
                api_name(self.api)
            )),
            429 if retry::is_insufficient_quota(body) => {
                Some("the account is out of quota; waiting will not help".to_owned())
            }
            _ => None,
        };
        match hint {
            Some(hint) => format!("{message} ({hint})"),
            None => message,
        }
    }

    /// Removes the API key from text a server or library produced, in case it echoes
    /// the request.
    fn redact(&self, text: &str) -> String {
        match &self.key {
            Some(key) => text.replace(&key.value, "[redacted]"),
            None => text.to_owned(),
        }
    }

    /// The error for a body that answered but cannot be used, naming the server.
    fn body_error(&self, server: String, error: BodyError) -> CallError {
        match error {
            BodyError::NotJson(message) => CallError::Malformed {
                server,
                message: format!("the body is not JSON ({message})"),
            },
            BodyError::NoChoices => no_choices(&server),
            BodyError::NoText => CallError::Malformed {
                server,
                message: "the first choice has no text".to_owned(),
            },
            BodyError::NoLogprobs => CallError::NoLogprobs {
                server,
                hint: self.no_logprobs_hint(),
            },
        }
    }

    fn no_logprobs_hint(&self) -> String {
        match self.api {
            Api::Completions => "the server must return `logprobs` from /v1/completions: vLLM, \
                                 SGLang and recent llama.cpp `llama-server` builds do (update \
                                 an older llama.cpp); otherwise set `mode: parsed` in the labeler"
                .to_owned(),
            Api::Chat => "the server must honour `logprobs: true` with `top_logprobs` on \
                          /v1/chat/completions: vLLM and recent llama.cpp `llama-server` builds \
                          do; or use `api: completions`, or set `mode: parsed` in the labeler"
                .to_owned(),
        }
    }

    fn no_servers(&self) -> CallError {
        CallError::Unsupported {
            message: format!("labeler `{}` has no `base_url`", self.name),
        }
    }
}

impl fmt::Debug for OpenAi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAi")
            .field("name", &self.name)
            .field("identity", &self.identity)
            .field("base_urls", &self.base_urls())
            .field("max_concurrency", &self.max_concurrency)
            .field("requests_per_minute", &self.requests_per_minute)
            .field("top_logprobs", &self.top_logprobs)
            .field("timeout_secs", &self.timeout_secs)
            .field("policy", &self.policy)
            .field("api_key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Labeler for OpenAi {
    fn identity(&self) -> &str {
        &self.identity
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            logprobs: self.mode == Mode::Logprobs,
            sampling: true,
            parsed: self.mode == Mode::Parsed,
            batches_samples: false,
        }
    }

    fn preflight(&self) -> BoxFuture<'_, Result<(), CallError>> {
        Box::pin(self.check())
    }

    fn score<'a>(
        &'a self,
        request: &'a ScoreRequest,
        _truth: &'a Truth,
    ) -> BoxFuture<'a, Result<Scoring, CallError>> {
        Box::pin(async move {
            match self.mode {
                Mode::Logprobs => {
                    self.score_logprobs(Target::Balanced, &request.prompt, request.alternatives)
                        .await
                }
                Mode::Parsed => {
                    self.score_parsed(Target::Balanced, &request.prompt, request.alternatives)
                        .await
                }
            }
        })
    }

    fn generate<'a>(
        &'a self,
        request: &'a GenerateRequest,
        _truth: &'a Truth,
    ) -> BoxFuture<'a, Result<Generation, CallError>> {
        Box::pin(self.generate_text(request))
    }
}

fn api_name(api: Api) -> &'static str {
    match api {
        Api::Completions => "completions",
        Api::Chat => "chat",
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Logprobs => "logprobs",
        Mode::Parsed => "parsed",
    }
}

/// Notes the retries spent on a call that failed for good.
fn gave_up(error: CallError, retries: u32) -> CallError {
    if retries == 0 {
        return error;
    }
    let note = format!(" (gave up after {retries} retries)");
    match error {
        CallError::Status {
            server,
            status,
            message,
        } => CallError::Status {
            server,
            status,
            message: message + &note,
        },
        CallError::Connect { server, message } => CallError::Connect {
            server,
            message: message + &note,
        },
        CallError::Malformed { server, message } => CallError::Malformed {
            server,
            message: message + &note,
        },
        other => other,
    }
}

fn no_choices(server: &str) -> CallError {
    CallError::Malformed {
        server: server.to_owned(),
        message: "the response has no `choices`".to_owned(),
    }
}

/// The wait a response asks for: OpenAI's `retry-after-ms`, else `Retry-After`.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    header("retry-after-ms")
        .and_then(retry::parse_retry_after_ms)
        .or_else(|| {
            header("retry-after")
                .and_then(|value| retry::parse_retry_after(value, SystemTime::now()))
        })
}

/// The innermost cause of an error ("connection refused (os error 111)"), which says
/// more than reqwest's outer "error sending request", lowercased like our own messages.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    let text = cause.to_string();
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// Why a successful response's body cannot be used. The backend turns it into a
/// [`CallError`] naming the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The body is not JSON (serde's message).
    NotJson(String),
    /// No `choices`, or an empty list of them.
    NoChoices,
    /// The first choice has neither `text` nor `message.content`.
    NoText,
    /// The first choice has no usable log-probabilities.
    NoLogprobs,
}

/// How many sampled answers in one parsed-mode response chose slot 1, slot 2, or neither.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Votes {
    pub first: u32,
    pub second: u32,
    pub neither: u32,
}

impl Votes {
    pub fn total(&self) -> u32 {
        self.first + self.second + self.neither
    }
}

/// A response body as JSON.
pub fn parse_body(bytes: &[u8]) -> Result<Value, BodyError> {
    serde_json::from_slice(bytes).map_err(|error| BodyError::NotJson(error.to_string()))
}

/// A log-probability scoring response (completions or chat): the alternatives for the
/// first generated token, most probable first, and the usage.
pub fn read_logprobs(response: &Value) -> Result<Scoring, BodyError> {
    let choice = first_choice(response).ok_or(BodyError::NoChoices)?;
    let top = choice
        .get("logprobs")
        .and_then(read_top_logprobs)
        .filter(|top| !top.is_empty())
        .ok_or(BodyError::NoLogprobs)?;
    Ok(Scoring {
        scored: Scored::Logprobs { top },
        usage: read_usage(response),
    })
}

/// A parsed-mode response: the votes of at most `n` of its choices, and the usage.
pub fn read_votes(response: &Value, n: u32) -> Result<(Votes, Usage), BodyError> {
    let choices = response
        .get("choices")
        .and_then(Value::as_array)
        .filter(|choices| !choices.is_empty())
        .ok_or(BodyError::NoChoices)?;
    let mut votes = Votes::default();
    for choice in choices.iter().take(n as usize) {
        match vote(choice_text(choice).unwrap_or_default()) {
            Some(1) => votes.first += 1,
            Some(_) => votes.second += 1,
            None => votes.neither += 1,
        }
    }
    Ok((votes, read_usage(response)))
}

/// A generation response: the first choice's text, why it stopped, and the usage.
pub fn read_generation(response: &Value) -> Result<Generation, BodyError> {
    let choice = first_choice(response).ok_or(BodyError::NoChoices)?;
    let text = choice_text(choice).ok_or(BodyError::NoText)?;
    Ok(Generation {
        text: text.to_owned(),
        usage: read_usage(response),
        finish_reason: choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// The model ids a `/models` listing names (`{"data": [{"id"}, ...]}`); none when the
/// listing has another shape.
pub fn served_models(listing: &Value) -> Vec<&str> {
    listing
        .get("data")
        .and_then(Value::as_array)
        .map(|models| {
            models
                .iter()
                .filter_map(|model| model.get("id").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

fn first_choice(response: &Value) -> Option<&Value> {
    response.get("choices")?.as_array()?.first()
}

/// The text of a choice: `text` (completions) or `message.content` (chat; a null
/// content is an empty answer).
fn choice_text(choice: &Value) -> Option<&str> {
    if let Some(text) = choice.get("text").and_then(Value::as_str) {
        return Some(text);
    }
    let content = choice.get("message")?.get("content")?;
    match content {
        Value::Null => Some(""),
        other => other.as_str(),
    }
}

/// Reads the alternatives at the first generated position from a choice's `logprobs`,
/// in either shape servers use:
/// - legacy completions: `{"top_logprobs": [{"token": logprob, ...}, ...]}`;
/// - chat (and newer completions): `{"content": [{"top_logprobs": [{"token", "logprob"}]}]}`.
///
/// Tokens are kept verbatim, most probable first. `None` when there are none.
fn read_top_logprobs(logprobs: &Value) -> Option<Vec<(String, f64)>> {
    let mut top: Vec<(String, f64)> = if let Some(first) = logprobs
        .get("content")
        .and_then(Value::as_array)
        .and_then(|content| content.first())
    {
        first
            .get("top_logprobs")?
            .as_array()?
            .iter()
            .filter_map(|entry| {
                let token = entry.get("token")?.as_str()?;
                let logprob = entry.get("logprob")?.as_f64()?;
                Some((token.to_owned(), logprob))
            })
            .collect()
    } else {
        logprobs
            .get("top_logprobs")?
            .as_array()?
            .first()?
            .as_object()?
            .iter()
            .filter_map(|(token, logprob)| Some((token.clone(), logprob.as_f64()?)))
            .collect()
    };
    // A stable sort keeps the server's order among equal log-probabilities.
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    Some(top)
}

fn read_usage(response: &Value) -> Usage {
    let count = |field: &str| {
        response
            .get("usage")
            .and_then(|usage| usage.get(field))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    Usage {
        prompt_tokens: count("prompt_tokens"),
        completion_tokens: count("completion_tokens"),
    }
}

/// The choice in a parsed-mode answer: its first digit if that is 1 or 2.
fn vote(answer: &str) -> Option<u8> {
    match answer.chars().find(char::is_ascii_digit) {
        Some('1') => Some(1),
        Some('2') => Some(2),
        _ => None,
    }
}

/// The message of an error body in the shapes servers use (`{"error": {"message"}}`,
/// `{"error": "..."}`, `{"message"}`, `{"detail"}`), else the body itself.
pub fn error_message(body: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return body.trim().to_owned();
    };
    let error = value.get("error");
    let text = error
        .and_then(|error| error.get("message"))
        .or(error)
        .or_else(|| value.get("message"))
        .or_else(|| value.get("detail"));
    match text {
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
        None => body.trim().to_owned(),
    }
}

/// At most `limit` characters of `text`, marked when shortened.
pub fn truncate(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Whether a served model id names `model`: exactly, by file name (llama.cpp lists the
/// model's path), or with Ollama's `:latest` tag.
fn model_matches(id: &str, model: &str) -> bool {
    id == model
        || id.rsplit(['/', '\\']).next() == Some(model)
        || id.strip_suffix(":latest") == Some(model)
}

/// One seed from the run's seed and the sample index (splitmix64), kept below 2^31 so
/// that servers that read a 32-bit signed seed accept it.
fn mix_seed(seed: u64, sample: u32) -> u64 {
    let mut z = seed ^ u64::from(sample).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) >> 33
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_completions_logprobs_are_read_verbatim_most_probable_first() {
        let logprobs = json!({
            "tokens": ["1"],
            "token_logprobs": [-0.2],
            "top_logprobs": [{" 2": -2.5, "1": -0.2, " 1": -1.9}],
        });
        let top = read_top_logprobs(&logprobs).expect("alternatives");
        assert_eq!(
            top,
            vec![
                ("1".to_owned(), -0.2),
                (" 1".to_owned(), -1.9),
                (" 2".to_owned(), -2.5)
            ]
        );
    }

    #[test]
    fn content_array_logprobs_are_read() {
        let logprobs = json!({"content": [{
            "token": "2", "logprob": -0.1,
            "top_logprobs": [{"token": "2", "logprob": -0.1}, {"token": "1", "logprob": -2.4}],
        }]});
        let top = read_top_logprobs(&logprobs).expect("alternatives");
        assert_eq!(top, vec![("2".to_owned(), -0.1), ("1".to_owned(), -2.4)]);
    }

    #[test]
    fn absent_logprobs_read_as_none_or_empty() {
        assert_eq!(read_top_logprobs(&Value::Null), None);
        assert_eq!(read_top_logprobs(&json!({"top_logprobs": null})), None);
        assert_eq!(read_top_logprobs(&json!({"top_logprobs": []})), None);
        assert_eq!(read_top_logprobs(&json!({"content": []})), None);
        assert_eq!(
            read_top_logprobs(&json!({"top_logprobs": [{}]})),
            Some(vec![])
        );
    }

    #[test]
    fn votes_read_the_first_digit() {
        assert_eq!(vote("1"), Some(1));
        assert_eq!(vote(" 2."), Some(2));
        assert_eq!(vote("Response 2"), Some(2));
        assert_eq!(vote("3"), None);
        assert_eq!(vote("31"), None);
        assert_eq!(vote("neither"), None);
        assert_eq!(vote(""), None);
    }

    #[test]
    fn error_messages_are_found_in_common_shapes() {
        assert_eq!(
            error_message(r#"{"error":{"message":"bad model"}}"#),
            "bad model"
        );
        assert_eq!(error_message(r#"{"error":"nope"}"#), "nope");
        assert_eq!(
            error_message(r#"{"object":"error","message":"too long"}"#),
            "too long"
        );
        assert_eq!(error_message(r#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(error_message("plain text\n"), "plain text");
    }

    #[test]
    fn long_messages_are_truncated_on_a_character_boundary() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("ééééé", 3), "ééé…");
        assert_eq!(truncate(&"x".repeat(400), 300).chars().count(), 301);
    }

    #[test]
    fn usage_defaults_to_zero() {
        assert_eq!(read_usage(&json!({})), Usage::default());
        let usage = read_usage(&json!({"usage": {"prompt_tokens": 12, "completion_tokens": 1}}));
        assert_eq!(
            usage,
            Usage {
                prompt_tokens: 12,
                completion_tokens: 1
            }
        );
    }

    #[test]
    fn response_bodies_are_read_by_kind() {
        assert!(matches!(
            parse_body(b"{\"choices\": [{"),
            Err(BodyError::NotJson(_))
        ));
        let parsed = json!({"choices": [{"text": " 1"}, {"text": "2."}, {"text": "?"}]});
        let (votes, _) = read_votes(&parsed, 2).unwrap();
        assert_eq!((votes.first, votes.second, votes.neither), (1, 1, 0));
        assert_eq!(read_votes(&parsed, 10).unwrap().0.total(), 3);
        assert_eq!(
            read_votes(&json!({"choices": []}), 1),
            Err(BodyError::NoChoices)
        );
        assert_eq!(read_logprobs(&parsed), Err(BodyError::NoLogprobs));
        assert_eq!(
            read_generation(&json!({"choices": [{}]})),
            Err(BodyError::NoText)
        );
        assert_eq!(read_generation(&parsed).unwrap().text, " 1");
        let listing = json!({"data": [{"id": "a"}, {"object": "model"}, {"id": "b"}]});
        assert_eq!(served_models(&listing), ["a", "b"]);
        assert!(served_models(&json!([])).is_empty());
    }

    #[test]
    fn models_match_by_id_file_name_or_latest_tag() {
        assert!(model_matches("qwen", "qwen"));
        assert!(model_matches("/models/qwen-0.5b.gguf", "qwen-0.5b.gguf"));
        assert!(model_matches("llama3:latest", "llama3"));
        assert!(!model_matches("qwen-1.5b", "qwen"));
    }

    #[test]
    fn seeds_differ_per_sample_and_fit_in_31_bits() {
        let seeds: Vec<u64> = (0..100).map(|sample| mix_seed(7, sample)).collect();
        assert!(seeds.iter().all(|seed| *seed < 1 << 31));
        let mut unique = seeds.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), seeds.len());
        assert_eq!(mix_seed(7, 3), mix_seed(7, 3));
        assert_ne!(mix_seed(7, 0), mix_seed(8, 0));
    }

    #[test]
    fn retry_notes_are_added_only_after_retries() {
        let error = CallError::Status {
            server: "http://x/v1".to_owned(),
            status: 500,
            message: "boom".to_owned(),
        };
        assert_eq!(gave_up(error.clone(), 0), error);
        assert_eq!(
            gave_up(error, 2).to_string(),
            "http://x/v1 answered HTTP 500: boom (gave up after 2 retries)"
        );
    }
}

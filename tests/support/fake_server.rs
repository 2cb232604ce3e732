//! A fake OpenAI-compatible server on loopback, for tests and benches: the offline twin of
//! vLLM or llama.cpp's `llama-server`.
//!
//! It serves `GET /v1/models`, `POST /v1/completions` and `POST /v1/chat/completions` on
//! `127.0.0.1` at a free port. By default every call gets a well-formed answer in the
//! llama.cpp/vLLM shape, built from [`FakeConfig`] (the top log-probs it reports, the
//! answers parsed mode reads, the rationale text). Faults are scripted per path and per
//! call index with [`Reply`] (status, headers, body, delay), or by a function of each
//! request and of how often the same request came before ([`FakeServer::respond_with`]),
//! which makes faults repeatable. It records every request (path, `Authorization`
//! header, JSON body, arrival time), the requests it answered well, counts calls per path
//! and the most requests it ever had in flight at once.
//!
//! Each server runs on its own runtime, so that [`FakeServer::kill`] can end it as a
//! crash would (every connection dropped, the port refusing), and [`FakeServer::at`] can
//! bring a new one up on the same port.
//!
//! Use it from any test or bench with
//! `#[path = "support/fake_server.rs"] mod fake_server;` (tokio and axum are all it needs).
//! It does not check the model name or validate request fields: tests assert on the
//! recorded requests instead.

#![allow(dead_code)] // each test binary uses part of it

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

/// The path of the model listing.
pub const MODELS: &str = "/v1/models";
/// The path of the completions API.
pub const COMPLETIONS: &str = "/v1/completions";
/// The path of the chat API.
pub const CHAT: &str = "/v1/chat/completions";

/// How a completions response lays out its log-probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogprobsShape {
    /// `{"tokens", "token_logprobs", "top_logprobs": [{token: logprob}]}` (vLLM, older
    /// llama.cpp, OpenAI's legacy completions).
    Legacy,
    /// `{"content": [{"token", "logprob", "top_logprobs": [{"token", "logprob"}]}]}`
    /// (recent llama.cpp). Chat responses always use this shape.
    Content,
}

/// What the server answers when no script says otherwise.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// Model ids `/v1/models` lists.
    pub models: Vec<String>,
    /// The alternatives reported at the first position, most probable first. The
    /// response carries at most as many as the request asked for.
    pub top_logprobs: Vec<(String, f64)>,
    /// Whether responses carry log-probabilities at all.
    pub logprobs: bool,
    pub shape: LogprobsShape,
    /// Answers to short samples (`max_tokens` 2..=8, as parsed mode asks), cycled over
    /// every choice the server returns.
    pub answers: Vec<String>,
    /// The text of longer samples (rationales).
    pub generation: String,
    /// Why longer samples say they stopped.
    pub generation_finish: String,
    /// Whether `n` > 1 is honoured; when not, one choice comes back (like llama.cpp).
    pub honours_n: bool,
    /// Added to every response.
    pub latency: Duration,
    /// Whether the log-probabilities of "1" and "2" depend on the prompt (a hash of it),
    /// so that different prompts get different, reproducible answers.
    pub varying: bool,
}

impl Default for FakeConfig {
    fn default() -> FakeConfig {
        FakeConfig {
            models: vec!["fake-model".to_owned()],
            top_logprobs: vec![
                ("1".to_owned(), -0.25),
                ("2".to_owned(), -1.6),
                (" 1".to_owned(), -4.0),
                (" 2".to_owned(), -5.0),
            ],
            logprobs: true,
            shape: LogprobsShape::Legacy,
            answers: vec!["1".to_owned()],
            generation: "Response 1 is more accurate and covers the key points.".to_owned(),
            generation_finish: "stop".to_owned(),
            honours_n: true,
            latency: Duration::ZERO,
            varying: false,
        }
    }
}

impl FakeConfig {
    pub fn models(mut self, models: &[&str]) -> FakeConfig {
        self.models = models.iter().map(|model| (*model).to_owned()).collect();
        self
    }

    pub fn top_logprobs(mut self, top: &[(&str, f64)]) -> FakeConfig {
        self.top_logprobs = top.iter().map(|(t, lp)| ((*t).to_owned(), *lp)).collect();
        self
    }

    /// Answers without log-probabilities (a server that ignores the parameter).
    pub fn without_logprobs(mut self) -> FakeConfig {
        self.logprobs = false;
        self
    }

    pub fn shape(mut self, shape: LogprobsShape) -> FakeConfig {
        self.shape = shape;
        self
    }

    pub fn answers(mut self, answers: &[&str]) -> FakeConfig {
        self.answers = answers.iter().map(|answer| (*answer).to_owned()).collect();
        self
    }

    pub fn generation(mut self, text: &str) -> FakeConfig {
        self.generation = text.to_owned();
        self
    }

    /// Longer samples say they stopped for `reason` (`length`: they ran out of tokens).
    pub fn generation_finish(mut self, reason: &str) -> FakeConfig {
        self.generation_finish = reason.to_owned();
        self
    }

    pub fn ignoring_n(mut self) -> FakeConfig {
        self.honours_n = false;
        self
    }

    pub fn latency(mut self, latency: Duration) -> FakeConfig {
        self.latency = latency;
        self
    }

    /// Answers that depend on the prompt (see [`FakeConfig::varying`]).
    pub fn varying(mut self) -> FakeConfig {
        self.varying = true;
        self
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: ReplyBody,
    delay: Duration,
}

#[derive(Debug, Clone)]
enum ReplyBody {
    /// The default answer to the request.
    Default,
    /// This text, sent whole.
    Text(String),
    /// This text, then the connection is dropped mid-body.
    Broken(String),
    /// No answer at all: the connection is dropped.
    Reset,
}

impl Reply {
    /// The answer the server gives by default (useful with [`Reply::delay`]).
    pub fn normal() -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body: ReplyBody::Default,
            delay: Duration::ZERO,
        }
    }

    /// An error status with an OpenAI-shaped body carrying `message`.
    pub fn error(status: u16, message: &str) -> Reply {
        let body = json!({"error": {"message": message, "type": "fake_error", "code": status}});
        Reply::text(status, &body.to_string())
    }

    /// A status with this JSON body.
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply::text(status, &body.to_string())
    }

    /// A status with this raw body.
    pub fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: ReplyBody::Text(body.to_owned()),
            delay: Duration::ZERO,
        }
    }

    /// A 200 whose JSON body stops half-way (complete HTTP message, unreadable JSON).
    pub fn truncated() -> Reply {
        Reply::text(
            200,
            r#"{"id":"cmpl-1","object":"text_completion","choices":[{"te"#,
        )
    }

    /// A 200 whose body stream breaks off: the connection drops mid-body.
    pub fn broken() -> Reply {
        Reply {
            body: ReplyBody::Broken(r#"{"id":"cmpl-1","choices":[{"#.to_owned()),
            ..Reply::text(200, "")
        }
    }

    /// No answer: the connection is dropped, as by a server that crashed mid-request.
    pub fn reset() -> Reply {
        Reply {
            body: ReplyBody::Reset,
            ..Reply::normal()
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Waits this long before answering (on top of the server's latency).
    pub fn delay(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub authorization: Option<String>,
    /// The JSON body (`Null` for a GET or a body that is not JSON).
    pub body: Value,
    pub arrived: Instant,
    /// How many requests with the same path and body came before this one.
    pub attempt: usize,
}

/// Chooses the reply to a request from the request and its attempt number; `None` gives
/// the default answer.
type Responder = dyn Fn(&Recorded) -> Option<Reply> + Send + Sync;

#[derive(Default)]
struct Shared {
    config: Mutex<FakeConfig>,
    scripts: Mutex<HashMap<String, Vec<Reply>>>,
    responder: Mutex<Option<Arc<Responder>>>,
    calls: Mutex<HashMap<String, usize>>,
    /// Requests seen per hash of (path, body).
    seen: Mutex<HashMap<u64, usize>>,
    recorded: Mutex<Vec<Recorded>>,
    /// Requests that got the default, well-formed answer.
    answered_well: Mutex<Vec<Recorded>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Answers handed out so far, to cycle through `answers`.
    answered: AtomicUsize,
    /// Set by [`FakeServer::kill`]: nothing is answered any more.
    dead: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

/// Locks a mutex whether or not a panicking handler poisoned it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// A running fake server; stops, dropping every connection, when dropped.
#[derive(Debug)]
pub struct FakeServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
}

impl FakeServer {
    /// Starts a server with the default answers.
    pub async fn start() -> FakeServer {
        FakeServer::with(FakeConfig::default()).await
    }

    /// Starts a server answering by `config`.
    pub async fn with(config: FakeConfig) -> FakeServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        FakeServer::serve(listener, config)
    }

    /// Starts a server at `addr`, the address of one that was killed: a server come back.
    pub async fn at(addr: SocketAddr, config: FakeConfig) -> FakeServer {
        let mut tries = 0;
        let listener = loop {
            match std::net::TcpListener::bind(addr) {
                Ok(listener) => break listener,
                // The old socket may take a moment to be released.
                Err(_) if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => panic!("cannot bind {addr} again: {error}"),
            }
        };
        FakeServer::serve(listener, config)
    }

    fn serve(listener: std::net::TcpListener, config: FakeConfig) -> FakeServer {
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            config: Mutex::new(config),
            ..Shared::default()
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the fake server");
        let router = Router::new().fallback(handle).with_state(shared.clone());
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let _ = axum::serve(listener, router).await;
        });
        FakeServer {
            addr,
            shared,
            runtime: Mutex::new(Some(runtime)),
        }
    }

    /// Kills the server as a crash would: from now on nothing is answered, and a moment
    /// later (for answers already on their way to arrive whole) every connection is
    /// dropped and the port refuses connections.
    pub async fn kill(&self) {
        self.shared.dead.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let runtime = lock(&self.runtime).take();
        if let Some(runtime) = runtime {
            tokio::task::spawn_blocking(move || runtime.shutdown_timeout(Duration::from_secs(2)))
                .await
                .expect("the fake server shuts down");
        }
    }

    /// Chooses replies by a function of each request (with its `attempt` number), for
    /// the calls no script answers; `None` gives the default answer.
    pub fn respond_with(
        &self,
        responder: impl Fn(&Recorded) -> Option<Reply> + Send + Sync + 'static,
    ) {
        *lock(&self.shared.responder) = Some(Arc::new(responder));
    }

    /// The requests that got the default, well-formed answer, in the order answered.
    pub fn answered_well(&self) -> Vec<Recorded> {
        lock(&self.shared.answered_well).clone()
    }

    /// The base URL, `http://127.0.0.1:PORT/v1`.
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Scripts the answers to the calls to `path` (e.g. [`COMPLETIONS`]): the i-th
    /// reply answers the i-th call since the server started; later calls get the default.
    pub fn script(&self, path: &str, replies: Vec<Reply>) {
        lock(&self.shared.scripts).insert(path.to_owned(), replies);
    }

    /// Changes the default answers.
    pub fn configure(&self, change: impl FnOnce(&mut FakeConfig)) {
        change(&mut lock(&self.shared.config));
    }

    /// Calls received on `path`.
    pub fn calls(&self, path: &str) -> usize {
        lock(&self.shared.calls).get(path).copied().unwrap_or(0)
    }

    /// Calls received on every path.
    pub fn total_calls(&self) -> usize {
        lock(&self.shared.calls).values().sum()
    }

    /// The most requests the server was handling at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Every request received, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.recorded).clone()
    }

    /// The requests received on `path`, in arrival order.
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|request| request.path == path)
            .collect()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        if let Some(runtime) = lock(&self.runtime).take() {
            runtime.shutdown_background();
        }
    }
}

/// A base URL where nothing listens (a port bound, then released).
pub async fn unreachable_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{addr}/v1")
}

/// Counts a request in flight for as long as it is handled (also when the client gives
/// up and the handler is dropped).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let _in_flight = InFlight(&shared.in_flight);
    let arrived = Instant::now();

    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let authorization = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let bytes = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if shared.dead.load(Ordering::SeqCst) {
        return std::future::pending().await;
    }

    let index = {
        let mut calls = lock(&shared.calls);
        let count = calls.entry(path.clone()).or_insert(0);
        *count += 1;
        *count - 1
    };
    let attempt = {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (path.as_str(), &bytes[..]).hash(&mut hasher);
        let mut seen = lock(&shared.seen);
        let count = seen.entry(hasher.finish()).or_insert(0);
        *count += 1;
        *count - 1
    };
    let recorded = Recorded {
        method: method.to_string(),
        path: path.clone(),
        authorization,
        body: body.clone(),
        arrived,
        attempt,
    };
    lock(&shared.recorded).push(recorded.clone());
    let scripted = lock(&shared.scripts)
        .get(&path)
        .and_then(|replies| replies.get(index))
        .cloned();
    let responder = lock(&shared.responder).clone();
    let reply = scripted
        .or_else(|| responder.and_then(|responder| responder(&recorded)))
        .unwrap_or_else(Reply::normal);
    let config = lock(&shared.config).clone();
    tokio::time::sleep(config.latency + reply.delay).await;
    if shared.dead.load(Ordering::SeqCst) {
        return std::future::pending().await;
    }

    let (status, text, broken) = match reply.body {
        ReplyBody::Default => {
            let (status, value) = default_answer(&shared, &config, &method, &path, &body);
            if (200..300).contains(&status) {
                lock(&shared.answered_well).push(recorded);
            }
            (status, value.to_string(), false)
        }
        ReplyBody::Text(text) => (reply.status, text, false),
        ReplyBody::Broken(text) => (reply.status, text, true),
        // Unwinding ends the connection's task, which drops the connection unanswered;
        // `resume_unwind` skips the panic hook, so nothing is printed.
        ReplyBody::Reset => std::panic::resume_unwind(Box::new("the fake server resets")),
    };
    let mut response = if broken {
        let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
            Ok(Bytes::from(text)),
            Err(std::io::Error::other(
                "the fake server drops the connection",
            )),
        ];
        Response::new(Body::from_stream(futures::stream::iter(chunks)))
    } else {
        Response::new(Body::from(text))
    };
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    for (name, value) in &reply.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    response
}

/// The well-formed answer to a request, in the shape vLLM and llama.cpp use.
fn default_answer(
    shared: &Shared,
    config: &FakeConfig,
    method: &Method,
    path: &str,
    body: &Value,
) -> (u16, Value) {
    match (method.as_str(), path) {
        ("GET", MODELS) => {
            let data: Vec<Value> = config
                .models
                .iter()
                .map(|id| json!({"id": id, "object": "model", "owned_by": "fake"}))
                .collect();
            (200, json!({"object": "list", "data": data}))
        }
        ("POST", COMPLETIONS) | ("POST", CHAT) => {
            (200, completion(shared, config, path == CHAT, body))
        }
        _ => (
            404,
            json!({"error": {"message": format!("no route {method} {path}"), "code": 404}}),
        ),
    }
}

/// The prompt of a request, or the concatenated messages of a chat request.
fn prompt_text(body: &Value, chat: bool) -> String {
    if chat {
        body.get("messages")
            .and_then(Value::as_array)
            .map(|messages| {
                messages
                    .iter()
                    .filter_map(|message| message.get("content").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default()
    } else {
        body.get("prompt")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }
}

/// Alternatives whose split between "1" and "2" is a hash of the prompt.
fn varied_top(prompt: &str) -> Vec<(String, f64)> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    prompt.hash(&mut hasher);
    let unit = (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64;
    let p_first = 0.05 + 0.9 * unit;
    let mut top = vec![
        ("1".to_owned(), (0.9 * p_first).ln()),
        ("2".to_owned(), (0.9 * (1.0 - p_first)).ln()),
        ("The".to_owned(), 0.1f64.ln()),
    ];
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    top
}

fn completion(shared: &Shared, config: &FakeConfig, chat: bool, body: &Value) -> Value {
    let max_tokens = body.get("max_tokens").and_then(Value::as_u64).unwrap_or(16);
    let n = if config.honours_n {
        body.get("n").and_then(Value::as_u64).unwrap_or(1).max(1)
    } else {
        1
    };
    // How many alternatives the request asked for, if any.
    let asked = if chat {
        match body.get("logprobs").and_then(Value::as_bool) {
            Some(true) => body
                .get("top_logprobs")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            _ => 0,
        }
    } else {
        body.get("logprobs").and_then(Value::as_u64).unwrap_or(0)
    };
    let varied = config.varying.then(|| varied_top(&prompt_text(body, chat)));
    let alternatives = varied.as_ref().unwrap_or(&config.top_logprobs);
    let top: Vec<&(String, f64)> = alternatives.iter().take(asked as usize).collect();
    let prompt_words = if chat {
        body.get("messages")
            .and_then(Value::as_array)
            .map(|messages| {
                messages
                    .iter()
                    .filter_map(|message| message.get("content").and_then(Value::as_str))
                    .map(|content| content.split_whitespace().count())
                    .sum()
            })
            .unwrap_or(0)
    } else {
        body.get("prompt")
            .and_then(Value::as_str)
            .map_or(0, |prompt| prompt.split_whitespace().count())
    };

    let mut choices = Vec::new();
    let mut completion_tokens = 0;
    for index in 0..n {
        let (text, finish_reason) = if max_tokens <= 1 {
            let token = alternatives
                .first()
                .map_or_else(|| "1".to_owned(), |(token, _)| token.clone());
            (token, "length")
        } else if max_tokens <= 8 && !config.answers.is_empty() {
            let turn = shared.answered.fetch_add(1, Ordering::SeqCst);
            (config.answers[turn % config.answers.len()].clone(), "stop")
        } else {
            (config.generation.clone(), config.generation_finish.as_str())
        };
        completion_tokens += (text.split_whitespace().count() as u64)
            .min(max_tokens)
            .max(1);
        let logprobs = if config.logprobs && asked > 0 {
            let chosen = top.first().map_or(-0.1, |(_, logprob)| *logprob);
            if chat || config.shape == LogprobsShape::Content {
                let alternatives: Vec<Value> = top
                    .iter()
                    .map(|(token, logprob)| {
                        json!({"token": token, "logprob": logprob, "bytes": token.as_bytes()})
                    })
                    .collect();
                json!({"content": [{
                    "token": text, "logprob": chosen, "bytes": text.as_bytes(),
                    "top_logprobs": alternatives,
                }]})
            } else {
                let mut alternatives = serde_json::Map::new();
                for (token, logprob) in &top {
                    alternatives.insert(token.clone(), json!(logprob));
                }
                json!({
                    "tokens": [text],
                    "token_logprobs": [chosen],
                    "top_logprobs": [alternatives],
                    "text_offset": [0],
                })
            }
        } else {
            Value::Null
        };
        choices.push(if chat {
            json!({
                "index": index,
                "message": {"role": "assistant", "content": text},
                "logprobs": logprobs,
                "finish_reason": finish_reason,
            })
        } else {
            json!({
                "index": index,
                "text": text,
                "logprobs": logprobs,
                "finish_reason": finish_reason,
            })
        });
    }
    json!({
        "id": "cmpl-fake",
        "object": if chat { "chat.completion" } else { "text_completion" },
        "created": 0,
        "model": body.get("model").cloned().unwrap_or(Value::Null),
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_words,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_words as u64 + completion_tokens,
        },
    })
}

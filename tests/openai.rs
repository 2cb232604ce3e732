//! Drives the `openai` backend against a fake OpenAI-compatible server on loopback:
//! request shapes for both APIs, reading log-probs and parsed answers, retries (429 with
//! Retry-After, 5xx, timeouts, cut-off bodies) and what is not retried, the preflight's
//! messages, the API key's handling, bounded concurrency, balancing and pacing.

#[path = "support/fake_server.rs"]
mod fake_server;

use std::time::{Duration, Instant};

use fake_server::{CHAT, COMPLETIONS, FakeConfig, FakeServer, LogprobsShape, MODELS, Reply};
use futures::future::join_all;
use rlaif::backend::openai::OpenAi;
use rlaif::backend::retry::RetryPolicy;
use rlaif::backend::{
    Api, BuildError, CallError, GenerateRequest, Labeler, LabelerConfig, Mode, ScoreRequest,
    Scored, Truth,
};
use serde_json::json;

/// The settings a test varies; the rest are the defaults a user would get.
#[derive(Debug, Clone)]
struct Setup {
    urls: Vec<String>,
    api: Api,
    mode: Mode,
    model: String,
    max_concurrency: usize,
    requests_per_minute: Option<u32>,
    api_key_env: Option<String>,
    timeout_secs: u64,
    max_retries: u32,
}

impl Setup {
    fn new(url: String) -> Setup {
        Setup {
            urls: vec![url],
            api: Api::Completions,
            mode: Mode::Logprobs,
            model: "fake-model".to_owned(),
            max_concurrency: 4,
            requests_per_minute: None,
            api_key_env: None,
            timeout_secs: 5,
            max_retries: 3,
        }
    }

    fn config(&self) -> LabelerConfig {
        LabelerConfig::Openai {
            base_urls: self.urls.clone(),
            api: self.api,
            model: self.model.clone(),
            mode: self.mode,
            max_concurrency: self.max_concurrency,
            requests_per_minute: self.requests_per_minute,
            api_key_env: self.api_key_env.clone(),
            top_logprobs: 20,
            timeout_secs: self.timeout_secs,
            max_retries: self.max_retries,
            max_rationale_tokens: 64,
            rationale_stop: Vec::new(),
            top_k: 40,
            price: None,
        }
    }

    fn build(&self) -> Result<OpenAi, BuildError> {
        OpenAi::new("judge", &self.config(), client())
    }

    /// The labeler with millisecond backoffs, so that retries cost no test time (a
    /// `Retry-After` is still honoured up to 5 s).
    fn labeler(&self) -> OpenAi {
        self.build()
            .expect("the labeler builds")
            .with_retry_policy(fast(self.max_retries))
    }
}

fn fast(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        base: Duration::from_millis(10),
        cap: Duration::from_millis(40),
        retry_after_cap: Duration::from_secs(5),
    }
}

/// The run's shared client: explicit connect timeout, per-request timeouts from the labeler.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("an HTTP client")
}

fn score_request(alternatives: u32) -> ScoreRequest {
    ScoreRequest {
        prompt: "Summary 1: a. Summary 2: b.\nPreferred Summary=".to_owned(),
        alternatives,
    }
}

async fn score(labeler: &OpenAi) -> Result<Scored, CallError> {
    labeler
        .score(&score_request(20), &Truth::default())
        .await
        .map(|scoring| scoring.scored)
}

fn top(pairs: &[(&str, f64)]) -> Scored {
    Scored::Logprobs {
        top: pairs.iter().map(|(t, lp)| ((*t).to_owned(), *lp)).collect(),
    }
}

fn default_top() -> Scored {
    top(&[("1", -0.25), ("2", -1.6), (" 1", -4.0), (" 2", -5.0)])
}

// --- request and response shapes -----------------------------------------------------

#[tokio::test]
async fn completions_scoring_asks_for_one_token_with_logprobs() {
    let server = FakeServer::start().await;
    let labeler = Setup::new(server.url()).labeler();
    let scoring = labeler
        .score(&score_request(20), &Truth::default())
        .await
        .expect("scored");
    assert_eq!(scoring.scored, default_top());
    assert_eq!(scoring.usage.prompt_tokens, 8); // the fake counts words
    assert_eq!(scoring.usage.completion_tokens, 1);
    let sent = &server.requests_to(COMPLETIONS)[0].body;
    assert_eq!(
        *sent,
        json!({
            "model": "fake-model",
            "prompt": "Summary 1: a. Summary 2: b.\nPreferred Summary=",
            "max_tokens": 1,
            "temperature": 0,
            "logprobs": 20,
        })
    );
}

#[tokio::test]
async fn content_shaped_completion_logprobs_are_read() {
    let server = FakeServer::with(FakeConfig::default().shape(LogprobsShape::Content)).await;
    let labeler = Setup::new(server.url()).labeler();
    assert_eq!(score(&labeler).await.expect("scored"), default_top());
}

#[tokio::test]
async fn a_choice_token_missing_from_the_top_is_returned_as_is() {
    // Only "1"-like tokens come back: the backend reports what the server said and the
    // procedure records the missing mass.
    let config = FakeConfig::default().top_logprobs(&[("1", -0.01), ("One", -5.0), ("\n", -6.0)]);
    let server = FakeServer::with(config).await;
    let labeler = Setup::new(server.url()).labeler();
    assert_eq!(
        score(&labeler).await.expect("scored"),
        top(&[("1", -0.01), ("One", -5.0), ("\n", -6.0)])
    );
}

#[tokio::test]
async fn chat_scoring_reads_top_logprobs_of_the_first_token() {
    let server = FakeServer::start().await;
    let labeler = Setup {
        api: Api::Chat,
        ..Setup::new(server.url())
    }
    .labeler();
    let scoring = labeler
        .score(&score_request(50), &Truth::default())
        .await
        .expect("scored");
    assert_eq!(scoring.scored, default_top());
    assert_eq!(server.calls(CHAT), 1);
    let sent = &server.requests_to(CHAT)[0].body;
    assert_eq!(
        *sent,
        json!({
            "model": "fake-model",
            "messages": [{"role": "user", "content": score_request(50).prompt}],
            "max_tokens": 1,
            "temperature": 0,
            "logprobs": true,
            // The chat API returns at most 20 alternatives.
            "top_logprobs": 20,
        })
    );
}

#[tokio::test]
async fn parsed_mode_counts_votes_from_sampled_answers() {
    let config = FakeConfig::default().answers(&["1", "2", " 1.", "Response 2", "neither", "1"]);
    let server = FakeServer::with(config).await;
    let labeler = Setup {
        mode: Mode::Parsed,
        ..Setup::new(server.url())
    }
    .labeler();
    let scoring = labeler
        .score(&score_request(6), &Truth::default())
        .await
        .expect("scored");
    assert_eq!(
        scoring.scored,
        Scored::Votes {
            first: 3,
            second: 2,
            neither: 1
        }
    );
    assert_eq!(server.calls(COMPLETIONS), 1);
    let sent = &server.requests_to(COMPLETIONS)[0].body;
    assert_eq!(sent["n"], 6);
    assert_eq!(sent["temperature"], 1.0);
    assert_eq!(sent["max_tokens"], 3);
    assert!(sent.get("logprobs").is_none());
}

#[tokio::test]
async fn parsed_mode_asks_again_when_the_server_ignores_n() {
    let config = FakeConfig::default().answers(&["2"]).ignoring_n();
    let server = FakeServer::with(config).await;
    let labeler = Setup {
        mode: Mode::Parsed,
        api: Api::Chat,
        ..Setup::new(server.url())
    }
    .labeler();
    let scoring = labeler
        .score(&score_request(3), &Truth::default())
        .await
        .expect("scored");
    assert_eq!(
        scoring.scored,
        Scored::Votes {
            first: 0,
            second: 3,
            neither: 0
        }
    );
    let asked: Vec<u64> = server
        .requests_to(CHAT)
        .iter()
        .map(|request| request.body["n"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(asked, [3, 2, 1]);
    assert_eq!(scoring.usage.completion_tokens, 3);
}

#[tokio::test]
async fn generate_sends_sampling_settings_and_returns_text_verbatim() {
    let text = "  Response 2 is better:\n it is accurate. ";
    let server = FakeServer::with(FakeConfig::default().generation(text)).await;
    let labeler = Setup::new(server.url()).labeler();
    let request = |sample| GenerateRequest {
        prompt: "Explain which is better.\nRationale:".to_owned(),
        max_tokens: 64,
        temperature: 0.3,
        top_k: 40,
        sample,
        seed: 7,
        stop: vec!["\nPreferred".to_owned()],
    };
    let generation = labeler
        .generate(&request(0), &Truth::default())
        .await
        .expect("generated");
    assert_eq!(generation.text, text);
    assert_eq!(generation.finish_reason.as_deref(), Some("stop"));
    assert_eq!(generation.usage.prompt_tokens, 5); // the fake counts words
    labeler
        .generate(&request(1), &Truth::default())
        .await
        .expect("generated");

    let sent = server.requests_to(COMPLETIONS);
    let first = &sent[0].body;
    assert_eq!(first["prompt"], "Explain which is better.\nRationale:");
    assert_eq!(first["max_tokens"], 64);
    assert_eq!(first["temperature"], 0.3);
    assert_eq!(first["top_k"], 40);
    assert_eq!(first["stop"], json!(["\nPreferred"]));
    // One seed per sample, so self-consistency samples differ and repeat exactly.
    assert!(first["seed"].is_u64());
    assert_ne!(first["seed"], sent[1].body["seed"]);
}

#[tokio::test]
async fn generate_over_chat_reads_the_message() {
    let server = FakeServer::with(FakeConfig::default().generation("Because 1.")).await;
    let labeler = Setup {
        api: Api::Chat,
        ..Setup::new(server.url())
    }
    .labeler();
    let request = GenerateRequest {
        prompt: "Why?".to_owned(),
        max_tokens: 32,
        temperature: 0.0,
        top_k: 0,
        sample: 0,
        seed: 1,
        stop: Vec::new(),
    };
    let generation = labeler
        .generate(&request, &Truth::default())
        .await
        .expect("generated");
    assert_eq!(generation.text, "Because 1.");
    let sent = &server.requests_to(CHAT)[0].body;
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": "Why?"}])
    );
    // top_k 0 and no stop strings are left out for servers that reject them.
    assert!(sent.get("top_k").is_none());
    assert!(sent.get("stop").is_none());
}

#[tokio::test]
async fn identity_names_api_mode_and_model_but_no_url() {
    let server = FakeServer::start().await;
    let labeler = Setup::new(server.url()).labeler();
    assert_eq!(labeler.identity(), "openai:completions:logprobs:fake-model");
    let parsed = Setup {
        api: Api::Chat,
        mode: Mode::Parsed,
        urls: vec!["http://elsewhere:1/v1".to_owned()],
        ..Setup::new(server.url())
    }
    .labeler();
    assert_eq!(parsed.identity(), "openai:chat:parsed:fake-model");
}

// --- log-probs missing -----------------------------------------------------------------

#[tokio::test]
async fn no_logprobs_names_the_server_and_the_fix() {
    let server = FakeServer::with(FakeConfig::default().without_logprobs()).await;
    let labeler = Setup::new(server.url()).labeler();
    let error = score(&labeler).await.expect_err("no log-probs");
    assert!(
        matches!(&error, CallError::NoLogprobs { server: named, .. } if *named == server.url()),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains(&server.url()), "{message}");
    assert!(message.contains("mode: parsed"), "{message}");
    assert!(message.contains("llama.cpp"), "{message}");
    // Not a transient fault: asked once.
    assert_eq!(server.calls(COMPLETIONS), 1);
}

// --- retries ---------------------------------------------------------------------------

#[tokio::test]
async fn a_429_is_retried_after_the_retry_after_wait() {
    let server = FakeServer::start().await;
    server.script(
        COMPLETIONS,
        vec![Reply::error(429, "slow down").header("retry-after", "1")],
    );
    let labeler = Setup::new(server.url()).labeler();
    assert_eq!(score(&labeler).await.expect("scored"), default_top());
    let calls = server.requests_to(COMPLETIONS);
    assert_eq!(calls.len(), 2);
    let waited = calls[1].arrived - calls[0].arrived;
    // The policy's own backoff is at most 40 ms: only the header explains a 1 s wait.
    assert!(waited >= Duration::from_secs(1), "waited {waited:?}");
    assert!(waited < Duration::from_secs(3), "waited {waited:?}");
}

#[tokio::test]
async fn a_429_for_insufficient_quota_is_not_retried() {
    let server = FakeServer::start().await;
    let quota = json!({"error": {
        "message": "You exceeded your current quota",
        "type": "insufficient_quota",
        "code": "insufficient_quota",
    }});
    server.script(COMPLETIONS, vec![Reply::json(429, &quota)]);
    let labeler = Setup::new(server.url()).labeler();
    let error = score(&labeler).await.expect_err("out of quota");
    assert_eq!(error.kind(), "rate_limited");
    assert!(error.to_string().contains("out of quota"), "{error}");
    assert_eq!(server.calls(COMPLETIONS), 1);
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let server = FakeServer::start().await;
    server.script(
        COMPLETIONS,
        vec![
            Reply::error(500, "boom"),
            Reply::error(503, "loading model"),
            Reply::text(502, "<html>bad gateway</html>"),
        ],
    );
    let labeler = Setup::new(server.url()).labeler();
    assert_eq!(score(&labeler).await.expect("scored"), default_top());
    assert_eq!(server.calls(COMPLETIONS), 4);
}

#[tokio::test]
async fn a_timeout_is_retried() {
    let server = FakeServer::start().await;
    server.script(
        COMPLETIONS,
        vec![Reply::normal().delay(Duration::from_millis(2_500))],
    );
    let labeler = Setup {
        timeout_secs: 1,
        ..Setup::new(server.url())
    }
    .labeler();
    let started = Instant::now();
    assert_eq!(score(&labeler).await.expect("scored"), default_top());
    let elapsed = started.elapsed();
    assert_eq!(server.calls(COMPLETIONS), 2);
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(2_400), "{elapsed:?}");
}

#[tokio::test]
async fn timeouts_exhaust_into_a_timeout_error() {
    let server = FakeServer::start().await;
    let slow = Reply::normal().delay(Duration::from_secs(3));
    server.script(COMPLETIONS, vec![slow.clone(), slow]);
    let labeler = Setup {
        timeout_secs: 1,
        max_retries: 1,
        ..Setup::new(server.url())
    }
    .labeler();
    let error = score(&labeler).await.expect_err("timed out");
    assert_eq!(error.kind(), "timeout");
    assert_eq!(
        error.to_string(),
        format!("{} did not answer within 1s", server.url())
    );
    assert_eq!(server.calls(COMPLETIONS), 2);
}

#[tokio::test]
async fn cut_off_bodies_are_retried() {
    let server = FakeServer::start().await;
    server.script(COMPLETIONS, vec![Reply::truncated(), Reply::broken()]);
    let labeler = Setup::new(server.url()).labeler();
    assert_eq!(score(&labeler).await.expect("scored"), default_top());
    assert_eq!(server.calls(COMPLETIONS), 3);
}

#[tokio::test]
async fn a_bad_request_is_not_retried() {
    let server = FakeServer::start().await;
    let long = format!("the prompt is too long: {}", "x".repeat(1_000));
    server.script(COMPLETIONS, vec![Reply::error(400, &long)]);
    let labeler = Setup::new(server.url()).labeler();
    let error = score(&labeler).await.expect_err("rejected");
    assert_eq!(error.kind(), "rejected");
    let CallError::Status {
        server: named,
        status,
        message,
    } = &error
    else {
        panic!("not a status error: {error:?}");
    };
    assert_eq!(*named, server.url());
    assert_eq!(*status, 400);
    assert!(
        message.starts_with("the prompt is too long: xxx"),
        "{message}"
    );
    assert!(message.chars().count() <= 301, "{} chars", message.len());
    assert_eq!(server.calls(COMPLETIONS), 1);
}

#[tokio::test]
async fn a_404_hints_at_base_url() {
    let server = FakeServer::start().await;
    server.script(
        COMPLETIONS,
        vec![Reply::text(404, r#"{"detail":"Not Found"}"#)],
    );
    let labeler = Setup::new(server.url()).labeler();
    let error = score(&labeler).await.expect_err("not found");
    let message = error.to_string();
    assert!(message.contains("Not Found (check `base_url`"), "{message}");
    assert_eq!(server.calls(COMPLETIONS), 1);
}

#[tokio::test]
async fn exhausted_retries_return_the_last_error() {
    let server = FakeServer::start().await;
    server.script(
        COMPLETIONS,
        vec![
            Reply::error(500, "boom 1"),
            Reply::error(500, "boom 2"),
            Reply::error(503, "boom 3"),
            Reply::normal(),
        ],
    );
    let labeler = Setup {
        max_retries: 2,
        ..Setup::new(server.url())
    }
    .labeler();
    let error = score(&labeler).await.expect_err("gave up");
    assert_eq!(error.kind(), "server_error");
    assert_eq!(
        error.to_string(),
        format!(
            "{} answered HTTP 503: boom 3 (gave up after 2 retries)",
            server.url()
        )
    );
    assert_eq!(server.calls(COMPLETIONS), 3);
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_reported() {
    let url = fake_server::unreachable_url().await;
    let labeler = Setup {
        max_retries: 2,
        ..Setup::new(url.clone())
    }
    .labeler();
    let error = score(&labeler).await.expect_err("unreachable");
    assert_eq!(error.kind(), "connect");
    let message = error.to_string();
    assert!(
        message.starts_with(&format!("cannot connect to {url}")),
        "{message}"
    );
    assert!(message.contains("gave up after 2 retries"), "{message}");
}

// --- preflight -------------------------------------------------------------------------

#[tokio::test]
async fn preflight_passes_on_a_good_server() {
    let server = FakeServer::start().await;
    let labeler = Setup::new(server.url()).labeler();
    labeler.preflight().await.expect("preflight passes");
    assert_eq!(server.calls(MODELS), 1);
    assert_eq!(server.calls(COMPLETIONS), 1);
}

#[tokio::test]
async fn preflight_says_an_unreachable_server_is_not_running() {
    let url = fake_server::unreachable_url().await;
    // Production backoff: the preflight must not retry a refused connection.
    let labeler = Setup::new(url.clone()).build().expect("builds");
    let started = Instant::now();
    let error = labeler.preflight().await.expect_err("unreachable");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(error.kind(), "connect");
    let message = error.to_string();
    assert!(!message.contains("gave up after"), "{message}");
    assert!(message.contains(&url), "{message}");
    assert!(message.contains("not reachable"), "{message}");
    assert!(
        message.contains("start it, or check `base_url`"),
        "{message}"
    );
}

#[tokio::test]
async fn preflight_lists_the_served_models_when_the_model_is_not_among_them() {
    let server = FakeServer::with(FakeConfig::default().models(&["qwen2.5-0.5b", "smollm2"])).await;
    let labeler = Setup::new(server.url()).labeler();
    let error = labeler.preflight().await.expect_err("model not listed");
    let message = error.to_string();
    assert!(message.contains(&server.url()), "{message}");
    assert!(message.contains("`fake-model`"), "{message}");
    assert!(message.contains("`qwen2.5-0.5b`, `smollm2`"), "{message}");
    assert!(message.contains("fix `model:` in the labeler"), "{message}");
    // Nothing was scored.
    assert_eq!(server.calls(COMPLETIONS), 0);
}

#[tokio::test]
async fn preflight_accepts_a_model_listed_by_file_path() {
    let server = FakeServer::with(FakeConfig::default().models(&["/models/fake-model"])).await;
    let labeler = Setup::new(server.url()).labeler();
    labeler.preflight().await.expect("listed by path");
}

#[tokio::test]
async fn preflight_reports_missing_logprobs_with_the_fix() {
    let server = FakeServer::with(FakeConfig::default().without_logprobs()).await;
    let labeler = Setup::new(server.url()).labeler();
    let error = labeler.preflight().await.expect_err("no log-probs");
    assert_eq!(error.kind(), "no_logprobs");
    let message = error.to_string();
    assert!(message.contains(&server.url()), "{message}");
    assert!(message.contains("set `mode: parsed`"), "{message}");
}

#[tokio::test]
async fn preflight_in_parsed_mode_needs_no_logprobs() {
    let server = FakeServer::with(FakeConfig::default().without_logprobs()).await;
    let labeler = Setup {
        mode: Mode::Parsed,
        ..Setup::new(server.url())
    }
    .labeler();
    labeler.preflight().await.expect("parsed mode passes");
}

#[tokio::test]
async fn preflight_tolerates_a_server_without_a_models_route() {
    let server = FakeServer::start().await;
    server.script(MODELS, vec![Reply::text(404, "not found")]);
    let labeler = Setup::new(server.url()).labeler();
    labeler
        .preflight()
        .await
        .expect("passes on the scoring call");
    assert_eq!(server.calls(COMPLETIONS), 1);
}

#[tokio::test]
async fn preflight_checks_every_base_url() {
    let good = FakeServer::start().await;
    let wrong = FakeServer::with(FakeConfig::default().models(&["other"])).await;
    let labeler = Setup {
        urls: vec![good.url(), wrong.url()],
        ..Setup::new(good.url())
    }
    .labeler();
    let error = labeler
        .preflight()
        .await
        .expect_err("second server is wrong");
    assert!(error.to_string().contains(&wrong.url()), "{error}");
    assert_eq!(good.calls(MODELS), 1);
    assert_eq!(wrong.calls(MODELS), 1);
}

// --- API key ---------------------------------------------------------------------------

/// A variable cargo sets for the test process, standing in for an API key: tests may not
/// set variables themselves (`set_var` is unsafe and the crate forbids unsafe code).
const KEY_VARIABLE: &str = "CARGO_MANIFEST_DIR";

#[tokio::test]
async fn the_api_key_is_sent_as_bearer_and_never_shown() {
    let key = std::env::var(KEY_VARIABLE).expect("cargo sets CARGO_MANIFEST_DIR for tests");
    let server = FakeServer::start().await;
    // A server that echoes the credentials it was sent.
    server.script(
        COMPLETIONS,
        vec![Reply::error(401, &format!("invalid api key: Bearer {key}"))],
    );
    let labeler = Setup {
        api_key_env: Some(KEY_VARIABLE.to_owned()),
        ..Setup::new(server.url())
    }
    .labeler();

    let error = score(&labeler).await.expect_err("unauthorized");
    let requests = server.requests_to(COMPLETIONS);
    assert_eq!(
        requests[0].authorization.as_deref(),
        Some(format!("Bearer {key}").as_str())
    );
    let shown = format!("{error} {error:?} {labeler:?}");
    assert!(!shown.contains(&key), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");
    assert!(
        error
            .to_string()
            .contains("check the API key in $CARGO_MANIFEST_DIR"),
        "{error}"
    );
    // The key also stays out of what the cache keys on.
    assert!(!labeler.identity().contains(&key));

    labeler.preflight().await.expect("authorized preflight");
    assert!(
        server
            .requests()
            .iter()
            .all(|request| request.authorization.as_deref() == Some(&format!("Bearer {key}")))
    );
}

#[tokio::test]
async fn a_missing_key_variable_fails_the_build() {
    let setup = Setup {
        api_key_env: Some("RLAIF_TEST_NO_SUCH_KEY_VARIABLE".to_owned()),
        ..Setup::new("http://127.0.0.1:9/v1".to_owned())
    };
    let error = setup.build().expect_err("no key");
    assert!(matches!(error, BuildError::MissingKey { .. }));
    assert!(
        error
            .to_string()
            .contains("RLAIF_TEST_NO_SUCH_KEY_VARIABLE is not set"),
        "{error}"
    );
}

#[tokio::test]
async fn no_authorization_header_without_a_key() {
    let server = FakeServer::start().await;
    let labeler = Setup::new(server.url()).labeler();
    score(&labeler).await.expect("scored");
    assert_eq!(server.requests_to(COMPLETIONS)[0].authorization, None);
}

// --- concurrency, balancing, pacing ----------------------------------------------------

#[tokio::test]
async fn concurrency_never_exceeds_max_concurrency() {
    let server = FakeServer::with(FakeConfig::default().latency(Duration::from_millis(60))).await;
    let labeler = Setup {
        max_concurrency: 3,
        ..Setup::new(server.url())
    }
    .labeler();
    let request = score_request(20);
    let truth = Truth::default();
    let results = join_all((0..20).map(|_| labeler.score(&request, &truth))).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(server.calls(COMPLETIONS), 20);
    assert_eq!(server.max_in_flight(), 3);
}

#[tokio::test]
async fn retries_do_not_hold_a_concurrency_slot() {
    // One call waits out a 1 s Retry-After while the other calls proceed.
    let server = FakeServer::with(FakeConfig::default().latency(Duration::from_millis(20))).await;
    server.script(
        COMPLETIONS,
        vec![Reply::error(429, "later").header("retry-after", "1")],
    );
    let labeler = Setup {
        max_concurrency: 1,
        ..Setup::new(server.url())
    }
    .labeler();
    let request = score_request(20);
    let truth = Truth::default();
    let started = Instant::now();
    let results = join_all((0..5).map(|_| labeler.score(&request, &truth))).await;
    assert!(results.iter().all(Result::is_ok));
    let calls = server.requests_to(COMPLETIONS);
    assert_eq!(calls.len(), 6);
    // The four other calls all ran during the wait.
    let during_wait = calls
        .iter()
        .filter(|call| call.arrived < calls[0].arrived + Duration::from_millis(900))
        .count();
    assert_eq!(during_wait, 5);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn two_base_urls_share_the_load() {
    let config = FakeConfig::default().latency(Duration::from_millis(30));
    let first = FakeServer::with(config.clone()).await;
    let second = FakeServer::with(config).await;
    let labeler = Setup {
        urls: vec![first.url(), format!("{}/", second.url())],
        max_concurrency: 4,
        ..Setup::new(first.url())
    }
    .labeler();
    let request = score_request(20);
    let truth = Truth::default();
    let results = join_all((0..20).map(|_| labeler.score(&request, &truth))).await;
    assert!(results.iter().all(Result::is_ok));
    let (a, b) = (first.calls(COMPLETIONS), second.calls(COMPLETIONS));
    assert_eq!(a + b, 20);
    assert!(a >= 7 && b >= 7, "unbalanced: {a} and {b}");
    // Sequential calls take turns too.
    for _ in 0..4 {
        score(&labeler).await.expect("scored");
    }
    assert_eq!(first.calls(COMPLETIONS) - a, 2);
    assert_eq!(second.calls(COMPLETIONS) - b, 2);
}

#[tokio::test]
async fn a_request_is_retried_on_another_base_url() {
    let down = fake_server::unreachable_url().await;
    let up = FakeServer::start().await;
    let labeler = Setup {
        urls: vec![down, up.url()],
        max_retries: 1,
        ..Setup::new(up.url())
    }
    .labeler();
    for _ in 0..4 {
        score(&labeler).await.expect("the live server answers");
    }
    assert_eq!(up.calls(COMPLETIONS), 4);
}

#[tokio::test]
async fn requests_per_minute_spaces_requests() {
    let server = FakeServer::start().await;
    let labeler = Setup {
        requests_per_minute: Some(600),
        max_concurrency: 8,
        ..Setup::new(server.url())
    }
    .labeler();
    let request = score_request(20);
    let truth = Truth::default();
    let results = join_all((0..5).map(|_| labeler.score(&request, &truth))).await;
    assert!(results.iter().all(Result::is_ok));
    let calls = server.requests_to(COMPLETIONS);
    // 600 a minute is one every 100 ms: five calls span at least 400 ms.
    let span = calls[4].arrived - calls[0].arrived;
    assert!(span >= Duration::from_millis(390), "{span:?}");
    for pair in calls.windows(2) {
        let gap = pair[1].arrived - pair[0].arrived;
        assert!(gap >= Duration::from_millis(90), "{gap:?}");
    }
}

//! A run against an OpenAI-compatible fake server on loopback survives kill -9, Ctrl-C
//! and failed calls: nothing completed is lost or paid for twice, and the final
//! summary is the same as an uninterrupted run's.

#[path = "support/fake_server.rs"]
mod fake_server;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use fake_server::{COMPLETIONS, FakeConfig, FakeServer, Reply};
use serde_json::Value;
use tempfile::TempDir;

const PREFLIGHT_PROMPT: &str =
    "Which response is better, 1 or 2? Answer with 1 or 2.\nPreferred Response=";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// An experiment against the fake server at `url`, and a results root.
struct Workspace {
    dir: TempDir,
    file: PathBuf,
}

impl Workspace {
    fn new(url: &str, concurrency: usize) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("exp.yaml");
        let yaml = format!(
            "name: srv\n\
             task: summarization\n\
             dataset: {{ format: pairs, path: {fixtures}/pairs.jsonl }}\n\
             labelers:\n\
             \x20 srv: {{ backend: openai, base_url: \"{url}\", model: fake-model, max_concurrency: {concurrency}, max_retries: 0, max_rationale_tokens: 32 }}\n\
             grid:\n\
             \x20 preamble: [base, detailed]\n\
             \x20 cot: [false, true]\n",
            fixtures = fixtures().display(),
        );
        std::fs::write(&file, yaml).unwrap();
        Workspace { dir, file }
    }

    fn results(&self) -> PathBuf {
        self.dir.path().join("results")
    }

    fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rlaif"));
        command
            .arg("run")
            .arg(&self.file)
            .arg("--results")
            .arg(self.results())
            .arg("--quiet")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn spawn(&self) -> Child {
        self.command().spawn().expect("rlaif starts")
    }

    async fn run(&self) -> Output {
        let mut command = self.command();
        tokio::task::spawn_blocking(move || command.output().expect("rlaif runs"))
            .await
            .unwrap()
    }

    fn run_dir(&self) -> PathBuf {
        let parent = self.results().join("srv");
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(parent)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert_eq!(dirs.len(), 1, "one run folder");
        dirs.remove(0)
    }

    fn summary(&self) -> String {
        std::fs::read_to_string(self.run_dir().join("summary.json")).unwrap()
    }
}

/// Calls a run paid for, not counting the preflight checks each start makes.
fn labeling_calls(server: &FakeServer) -> usize {
    server
        .requests_to(COMPLETIONS)
        .iter()
        .filter(|request| request.body["prompt"].as_str() != Some(PREFLIGHT_PROMPT))
        .count()
}

#[track_caller]
fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn config() -> FakeConfig {
    FakeConfig::default()
        .varying()
        .latency(Duration::from_millis(25))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_any_moment_then_rerun_matches_an_uninterrupted_run() {
    let reference_server = FakeServer::with(config()).await;
    let reference = Workspace::new(&reference_server.url(), 4);
    assert_exit(&reference.run().await, 0);
    let unique_calls = labeling_calls(&reference_server);
    // 8 examples x 2 orders: 2 direct cells (1 call) and 2 CoT cells (2 calls).
    assert_eq!(unique_calls, 8 * 2 * (1 + 1 + 2 + 2));

    let server = FakeServer::with(config()).await;
    let workspace = Workspace::new(&server.url(), 4);
    let kills = [200u64, 150, 100, 80];
    for delay in kills {
        let mut child = workspace.spawn();
        tokio::time::sleep(Duration::from_millis(delay)).await;
        // SIGKILL: no chance to clean up, as in a crash or an OOM kill.
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let journal = workspace.run_dir().join("judgments.jsonl");
    let judged_before = std::fs::read_to_string(&journal).unwrap().lines().count();
    assert!(
        (1..32).contains(&judged_before),
        "the kills land mid-run: {judged_before} of 32 judged"
    );
    assert_exit(&workspace.run().await, 0);

    // The server's URL is not part of the run's identity: the same run id, and the
    // same summary byte for byte.
    assert_eq!(workspace.summary(), reference.summary());
    // A call in flight when the process died may be sent again; nothing else is.
    let paid = labeling_calls(&server);
    assert!(
        paid <= unique_calls + kills.len() * 4,
        "paid {paid} calls for {unique_calls} unique ones"
    );
    let lines = std::fs::read_to_string(&journal).unwrap().lines().count();
    assert!(lines >= 32, "every judgment is in the journal: {lines}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_cleanly_and_says_how_to_resume() {
    let server = FakeServer::with(config().latency(Duration::from_millis(60))).await;
    let workspace = Workspace::new(&server.url(), 2);
    let child = workspace.spawn();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_exit(&output, 130);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(stderr.contains("Resume with: rlaif run"), "{stderr}");
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace.run_dir().join("manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["status"], "interrupted");
    assert!(
        !workspace.run_dir().join("run.lock").exists(),
        "the lock is released"
    );

    let before = labeling_calls(&server);
    assert!(
        before > 0 && before < 96,
        "interrupted mid-run: {before} calls"
    );
    assert_exit(&workspace.run().await, 0);
    // Resumed, not restarted: at most the calls in flight at Ctrl-C are sent again.
    let total = labeling_calls(&server);
    assert!(total <= 96 + 2, "{total} calls for 96 unique ones");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_calls_are_recorded_counted_and_retried_on_rerun() {
    let server = FakeServer::with(FakeConfig::default().varying()).await;
    // The first call is the preflight; then two server errors far apart, so they hit two
    // different examples (the labeler is set to give up without retrying).
    let mut script = vec![Reply::normal(); 40];
    script[1] = Reply::error(503, "overloaded one");
    script[30] = Reply::error(503, "overloaded two");
    server.script(COMPLETIONS, script);
    let workspace = Workspace::new(&server.url(), 1);
    let output = workspace.run().await;
    assert_exit(&output, 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("2 judgments failed for reasons that may pass"),
        "{stderr}"
    );
    let journal = std::fs::read_to_string(workspace.run_dir().join("judgments.jsonl")).unwrap();
    let failed: Vec<Value> = journal
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|judgment| judgment.get("failure").is_some())
        .collect();
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0]["failure"]["kind"], "server_error");
    assert!(failed[0]["p_a"].is_null());
    // The order that failed paid nothing; the other order's call still counts.
    assert_eq!(failed[0]["calls"], 1);
    let summary: Value = serde_json::from_str(&workspace.summary()).unwrap();
    let failures: u64 = summary["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|cell| cell["failures"].as_u64().unwrap())
        .sum();
    assert_eq!(failures, 2);

    // The server is healthy now: a rerun retries exactly the failed examples.
    let output = workspace.run().await;
    assert_exit(&output, 0);
    let summary: Value = serde_json::from_str(&workspace.summary()).unwrap();
    assert!(
        summary["cells"]
            .as_array()
            .unwrap()
            .iter()
            .all(|cell| cell["failures"] == 0 && cell["n"] == 8)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failures_are_kept_and_not_sent_again() {
    let server = FakeServer::with(FakeConfig::default().varying()).await;
    // A 400 (say, a prompt beyond the context) would be refused again: never retried.
    let mut script = vec![Reply::normal(); 40];
    script[1] = Reply::error(400, "prompt too long");
    server.script(COMPLETIONS, script);
    let workspace = Workspace::new(&server.url(), 1);
    let output = workspace.run().await;
    assert_exit(&output, 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("1 judgments failed for good"), "{stderr}");

    let before = labeling_calls(&server);
    let output = workspace.run().await;
    assert_exit(&output, 1);
    assert_eq!(labeling_calls(&server), before, "nothing is sent again");
}

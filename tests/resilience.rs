//! A run against an OpenAI-compatible fake server on loopback survives kill -9, Ctrl-C,
//! failed calls, a server that fails a quarter of its calls in every way it can, and a
//! server that dies mid-run: nothing completed is lost or paid for twice, and the final
//! summary is the same as an uninterrupted run's. The API key it is given never reaches
//! a file or an output, whatever the server echoes, and a server that ignores stop
//! strings does not carry what it wrote past them into a judgment.

#[path = "support/fake_server.rs"]
mod fake_server;

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use fake_server::{COMPLETIONS, FakeConfig, FakeServer, Recorded, Reply};
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
    /// A labeler that gives up at the first failure.
    fn new(url: &str, concurrency: usize) -> Workspace {
        Workspace::with(
            url,
            &format!("max_concurrency: {concurrency}, max_retries: 0"),
        )
    }

    /// A labeler at `url` with these extra settings (YAML flow-mapping entries).
    fn with(url: &str, settings: &str) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("exp.yaml");
        let yaml = format!(
            "name: srv\n\
             task: summarization\n\
             dataset: {{ format: pairs, path: {fixtures}/pairs.jsonl }}\n\
             labelers:\n\
             \x20 srv: {{ backend: openai, base_url: \"{url}\", model: fake-model, max_rationale_tokens: 32, {settings} }}\n\
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

    /// The failed judgments summary.json counts, over every cell.
    fn failures(&self) -> u64 {
        let summary: Value = serde_json::from_str(&self.summary()).unwrap();
        summary["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|cell| cell["failures"].as_u64().unwrap())
            .sum()
    }

    /// Writes `count` pairs without human labels (ids `u000`, `u001`, ...) for `label`.
    fn unlabeled(&self, count: usize) -> PathBuf {
        let input = self.dir.path().join("unlabeled.jsonl");
        let lines: Vec<String> = (0..count)
            .map(|i| {
                serde_json::json!({
                    "id": format!("u{i:03}"),
                    "context": format!("POST: question {i} about a deposit the landlord kept."),
                    "response_a": format!("Landlord kept deposit {i}."),
                    "response_b": "Something else.",
                })
                .to_string()
            })
            .collect();
        std::fs::write(&input, lines.join("\n") + "\n").unwrap();
        input
    }

    fn manifest(&self) -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(self.run_dir().join("manifest.json")).unwrap(),
        )
        .unwrap()
    }
}

/// Whether a request labels an example: a completion that is not a preflight check.
fn labels(request: &Recorded) -> bool {
    request.path == COMPLETIONS && request.body["prompt"].as_str() != Some(PREFLIGHT_PROMPT)
}

/// Calls a run sent, not counting the preflight checks each start makes.
fn labeling_calls(server: &FakeServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|request| labels(request))
        .count()
}

/// Calls a run paid for: labeling calls the server answered well.
fn paid_calls(server: &FakeServer) -> usize {
    server
        .answered_well()
        .iter()
        .filter(|request| labels(request))
        .count()
}

/// The labeling calls of a run of the workspace's grid, each made once: what an
/// uninterrupted run against a healthy server pays, with the summary it writes.
async fn reference() -> (usize, String) {
    let server = FakeServer::with(config()).await;
    let workspace = Workspace::new(&server.url(), 4);
    assert_exit(&workspace.run().await, 0);
    // 8 examples x 2 orders: 2 direct cells (1 call) and 2 CoT cells (2 calls).
    let unique = paid_calls(&server);
    assert_eq!(unique, 8 * 2 * (1 + 1 + 2 + 2));
    assert_eq!(
        labeling_calls(&server),
        unique,
        "a healthy run sends each call once"
    );
    (unique, workspace.summary())
}

/// splitmix64: a seeded stream of numbers, for moments and faults a rerun repeats.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

/// Waits until `done` holds, checking every 2 ms, for at most `limit`.
async fn until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
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

/// How many times one run is killed before it is let finish.
const KILLS: usize = 20;
/// The labeler's concurrency in the kill test: at most this many calls are in flight
/// when a kill lands.
const KILL_CONCURRENCY: usize = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_twenty_random_moments_then_rerun_matches_an_uninterrupted_run() {
    let (unique_calls, reference_summary) = reference().await;

    let server = FakeServer::with(config()).await;
    let workspace = Workspace::new(&server.url(), KILL_CONCURRENCY);
    let mut moments = Seeded(20_240_611);
    let mut landed = 0;
    for _ in 0..KILLS {
        let mut child = workspace.spawn();
        // A moment mid-run: after 1 to 3 more labeling calls reached the server (so the
        // kill never lands before the run has started labeling, and the run never ends
        // before the 20th kill), then 0 to 15 ms more, so that kills fall before,
        // during and after calls are answered and cached.
        let target = labeling_calls(&server) + moments.between(1, 3) as usize;
        let extra = Duration::from_millis(moments.between(0, 15));
        let reached = until(Duration::from_secs(20), || {
            labeling_calls(&server) >= target || child.try_wait().unwrap().is_some()
        })
        .await;
        assert!(reached, "the run made no progress");
        tokio::time::sleep(extra).await;
        // SIGKILL: no chance to clean up, as in a crash or an OOM kill.
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            landed += 1;
        }
        child.wait().unwrap();
    }
    assert_eq!(landed, KILLS, "every kill lands mid-run");
    let journal = workspace.run_dir().join("judgments.jsonl");
    let judged_before = std::fs::read_to_string(&journal).unwrap().lines().count();
    assert!(
        (1..32).contains(&judged_before),
        "the kills land mid-run: {judged_before} of 32 judged"
    );
    assert_exit(&workspace.run().await, 0);

    // The server's URL is not part of the run's identity: the same run id, and the
    // same summary byte for byte.
    assert_eq!(workspace.summary(), reference_summary);
    // An answer committed to the cache is never paid for again. A call in flight when
    // its process dies may have been answered (and paid) without being committed, and
    // is made again; the labeler's concurrency bounds those calls at each kill.
    let paid = paid_calls(&server);
    eprintln!("{KILLS} kills: {paid} calls paid for {unique_calls} unique ones");
    assert!(
        paid <= unique_calls + KILLS * KILL_CONCURRENCY,
        "paid {paid} calls for {unique_calls} unique ones over {KILLS} kills"
    );
    let lines = std::fs::read_to_string(&journal).unwrap().lines().count();
    assert!(lines >= 32, "every judgment is in the journal: {lines}");
}

/// A process killed mid-run leaves in its manifest the time and calls it spent, brought
/// up to date every second, and the process that finishes the run adds its own: a run
/// labeled across crashes or sessions still states what it cost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_keeps_its_time_and_calls_in_the_run_totals() {
    // About 100 calls at 0.3 s each, one at a time: the kill lands long before the end.
    let slow = FakeServer::with(config().latency(Duration::from_millis(300))).await;
    let workspace = Workspace::new(&slow.url(), 1);
    let mut child = workspace.spawn();
    let spawned = Instant::now();
    let labeling = until(Duration::from_secs(20), || labeling_calls(&slow) > 0).await;
    assert!(labeling, "the run made no labeling call");
    tokio::time::sleep(Duration::from_millis(3500).saturating_sub(spawned.elapsed())).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run is still going"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    let killed = workspace.manifest();
    assert_eq!(killed["status"], "running");
    let killed_seconds = killed["total_wall_seconds"].as_f64().unwrap();
    let killed_calls = killed["total_calls_made"].as_u64().unwrap();
    assert!(
        (1.0..3.5).contains(&killed_seconds),
        "the killed process ran for under 3.5 s, and for more than one checkpoint; its manifest says {killed_seconds} s"
    );
    assert!(
        killed_calls > 0 && killed_calls as usize <= labeling_calls(&slow),
        "{killed_calls} calls in the manifest, {} at the server",
        labeling_calls(&slow)
    );

    // The server's URL is not part of the run's identity: the same run goes on here.
    let fast = FakeServer::with(config()).await;
    let yaml = std::fs::read_to_string(&workspace.file).unwrap();
    std::fs::write(&workspace.file, yaml.replace(&slow.url(), &fast.url())).unwrap();
    assert_exit(&workspace.run().await, 0);
    let finished = workspace.manifest();
    assert_eq!(finished["status"], "complete");
    let own_seconds = finished["wall_seconds"].as_f64().unwrap();
    let total_seconds = finished["total_wall_seconds"].as_f64().unwrap();
    assert!(
        (total_seconds - (killed_seconds + own_seconds)).abs() < 1e-6,
        "total {total_seconds} s is not {killed_seconds} s before the kill plus {own_seconds} s"
    );
    assert_eq!(
        finished["total_calls_made"].as_u64().unwrap(),
        killed_calls + finished["calls_made"].as_u64().unwrap()
    );
}

/// The fault a request meets, as a pure function of its body and attempt number, so a
/// rerun meets the same faults: a quarter of the calls fail, each in one of five ways.
fn fault(request: &Recorded) -> Option<(&'static str, Reply)> {
    if request.path != COMPLETIONS {
        return None;
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (request.body.to_string(), request.attempt).hash(&mut hasher);
    let draw = hasher.finish();
    if !draw.is_multiple_of(4) {
        return None;
    }
    Some(match (draw / 4) % 5 {
        0 => (
            "429",
            Reply::error(429, "slow down").header("retry-after-ms", "20"),
        ),
        1 => ("500", Reply::error(500, "internal error")),
        // Past the labeler's one-second timeout, then no answer at all.
        2 => (
            "timeout",
            Reply::reset().delay(Duration::from_millis(1_500)),
        ),
        3 => ("reset", Reply::reset()),
        _ => ("truncated", Reply::truncated()),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quarter_of_calls_failing_in_every_way_gives_the_fault_free_summary() {
    let (unique_calls, reference_summary) = reference().await;

    let server = FakeServer::with(config()).await;
    server.respond_with(|request| fault(request).map(|(_, reply)| reply));
    let workspace = Workspace::with(
        &server.url(),
        "max_concurrency: 4, max_retries: 8, timeout_secs: 1",
    );
    let output = workspace.run().await;
    assert_exit(&output, 0);
    assert_eq!(workspace.summary(), reference_summary);

    // The faults did happen, every kind of them, and about a quarter of the time.
    let requests = server.requests_to(COMPLETIONS);
    let mut kinds = std::collections::BTreeMap::new();
    for request in &requests {
        if let Some((kind, _)) = fault(request) {
            *kinds.entry(kind).or_insert(0) += 1;
        }
    }
    let faults: usize = kinds.values().sum();
    eprintln!("{faults} faults in {} requests: {kinds:?}", requests.len());
    assert_eq!(kinds.len(), 5, "every kind of fault: {kinds:?}");
    assert!(
        faults * 8 > requests.len() && faults * 3 < requests.len(),
        "{faults} faults in {} requests: {kinds:?}",
        requests.len()
    );
    // Retried until answered, and each answer paid for once.
    assert_eq!(paid_calls(&server), unique_calls, "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_dies_mid_run_stops_it_and_a_rerun_pays_for_nothing_twice() {
    let (unique_calls, reference_summary) = reference().await;

    let server = FakeServer::with(config()).await;
    let addr = server.addr();
    let workspace = Workspace::with(&server.url(), "max_concurrency: 4, max_retries: 3");
    let child = workspace.spawn();
    assert!(
        until(Duration::from_secs(20), || paid_calls(&server) >= 30).await,
        "the run got going"
    );
    server.kill().await;
    let killed = Instant::now();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stopped_after = killed.elapsed();
    eprintln!("the run stopped {stopped_after:?} after the server died");

    assert_exit(&output, 1);
    // Three retries wait at most 0.5 + 1 + 2 s (full jitter below doubling ceilings).
    assert!(
        stopped_after < Duration::from_secs(10),
        "stopped {stopped_after:?} after the server died"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("stopped, a labeler's server is unreachable"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("cannot connect to {}", server.url())),
        "{stderr}"
    );
    assert!(stderr.contains("resume with: rlaif run"), "{stderr}");
    let manifest = workspace.manifest();
    assert_eq!(manifest["status"], "stopped");
    assert!(!workspace.run_dir().join("summary.json").exists());
    let before = paid_calls(&server);
    assert!(
        before < unique_calls,
        "stopped mid-run: {before} calls paid"
    );

    // The server is back on the same port: the rerun pays only for what is missing.
    let revived = FakeServer::at(addr, config()).await;
    assert_exit(&workspace.run().await, 0);
    assert_eq!(workspace.summary(), reference_summary);
    assert_eq!(
        before + paid_calls(&revived),
        unique_calls,
        "every call paid once across both runs"
    );
    // Calls of examples the stop cut off were paid in the first run and are counted
    // there, not taken for cache hits in the second.
    assert_eq!(
        workspace.manifest()["total_calls_made"].as_u64().unwrap() as usize,
        unique_calls,
        "the manifest counts every call paid once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_cleanly_and_says_how_to_resume() {
    let server = FakeServer::with(config().latency(Duration::from_millis(60))).await;
    let workspace = Workspace::new(&server.url(), 2);
    let child = workspace.spawn();
    // 96 calls two at a time take 2.9 s at least; the 32 direct ones come first, so the
    // signal most likely finds a chain-of-thought example with its rationale written
    // and its score in flight.
    tokio::time::sleep(Duration::from_millis(1500)).await;
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
    let manifest = workspace.manifest();
    assert_eq!(manifest["status"], "interrupted");
    assert!(
        !workspace.run_dir().join("run.lock").exists(),
        "the lock is released"
    );
    let interrupted_calls = manifest["calls_made"].as_u64().unwrap();
    assert!(
        interrupted_calls > 0,
        "the first process paid for some calls"
    );
    let interrupted_wall = manifest["wall_seconds"].as_f64().unwrap();
    assert_eq!(manifest["total_calls_made"], interrupted_calls);

    let before = labeling_calls(&server);
    assert!(
        before > 0 && before < 96,
        "interrupted mid-run: {before} calls"
    );
    assert_exit(&workspace.run().await, 0);
    // Resumed, not restarted: at most the calls in flight at Ctrl-C are sent again.
    let total = labeling_calls(&server);
    assert!(total <= 96 + 2, "{total} calls for 96 unique ones");

    // The manifest states what both processes spent, not only the second.
    let resumed = workspace.manifest();
    let resumed_calls = resumed["calls_made"].as_u64().unwrap();
    assert!(
        resumed_calls > 0,
        "the rest was labeled by the second process"
    );
    assert_eq!(
        resumed["total_calls_made"].as_u64().unwrap(),
        interrupted_calls + resumed_calls
    );
    assert_eq!(
        resumed["total_calls_made"], 96,
        "each unique call counted once, in the process that stored its answer"
    );
    let resumed_wall = resumed["wall_seconds"].as_f64().unwrap();
    let total_wall = resumed["total_wall_seconds"].as_f64().unwrap();
    assert!(
        (total_wall - (interrupted_wall + resumed_wall)).abs() < 1e-6,
        "{total_wall} s in all, {interrupted_wall} s + {resumed_wall} s"
    );
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
    assert_eq!(workspace.failures(), 2);

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_refused_mid_run_stops_it_and_a_rerun_retries_what_failed() {
    let server = FakeServer::with(FakeConfig::default().varying()).await;
    // The first call is the preflight; then the key is revoked for one call (a 401), as
    // a rotated key or a lapsed token would.
    let mut script = vec![Reply::normal(); 40];
    script[5] = Reply::error(401, "invalid api key");
    server.script(COMPLETIONS, script);
    let workspace = Workspace::new(&server.url(), 1);
    let output = workspace.run().await;
    assert_exit(&output, 1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("stopped, a labeler's server refuses the API key: ")
            && stderr.contains("invalid api key")
            && stderr.contains("Once the key is fixed, resume with: rlaif run"),
        "{stderr}"
    );
    let sent = labeling_calls(&server);
    assert!(sent < 10, "the run stopped at the refusal: {sent} calls");
    let journal = std::fs::read_to_string(workspace.run_dir().join("judgments.jsonl")).unwrap();
    let kinds: Vec<Value> = journal
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter_map(|judgment| judgment.get("failure").map(|f| f["kind"].clone()))
        .collect();
    assert_eq!(kinds, ["unauthorized"]);

    // The key works again: the rerun retries the refused example and finishes.
    let output = workspace.run().await;
    assert_exit(&output, 0);
    assert_eq!(workspace.failures(), 0);
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_never_reaches_a_file_or_an_output() {
    // Set for the rlaif processes only: the test process's environment is left alone.
    const VARIABLE: &str = "RLAIF_TEST_SECRET_KEY";
    let key = format!("sk-test-{}-9f8e7d6c5b4a", std::process::id());
    let server = FakeServer::with(config()).await;
    // A server that echoes the credentials it was sent in the errors it gives: some
    // retried (429, 500), some final (400), the rest answered.
    server.respond_with(|request| {
        if !labels(request) {
            return None;
        }
        let echo = request.authorization.clone().unwrap_or_default();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        request.body.to_string().hash(&mut hasher);
        match hasher.finish() % 4 {
            0 => Some(Reply::error(500, &format!("upstream failed for {echo}"))),
            1 => Some(Reply::error(400, &format!("bad request from {echo}"))),
            2 => Some(Reply::error(429, &format!("slow down, {echo}"))),
            _ => None,
        }
    });
    let workspace = Workspace::with(
        &server.url(),
        &format!("max_concurrency: 4, max_retries: 1, api_key_env: {VARIABLE}"),
    );
    let run = |key: String| {
        let mut command = workspace.command();
        command.env(VARIABLE, key);
        tokio::task::spawn_blocking(move || command.output().expect("rlaif runs"))
    };
    let failing = run(key.clone()).await.unwrap();
    assert_exit(&failing, 1);

    // Then the server refuses the key, echoing it: the preflight fails.
    server.respond_with(|request| {
        let echo = request.authorization.clone().unwrap_or_default();
        Some(Reply::error(401, &format!("invalid api key: {echo}")))
    });
    let refused = run(key.clone()).await.unwrap();
    assert_exit(&refused, 2);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!("check the API key in ${VARIABLE}")),
        "{stderr}"
    );

    // The key reached the server, and was echoed back...
    let bearer = format!("Bearer {key}");
    assert!(
        server
            .requests()
            .iter()
            .all(|request| request.authorization.as_deref() == Some(bearer.as_str()))
    );
    let journal = std::fs::read_to_string(workspace.run_dir().join("judgments.jsonl")).unwrap();
    assert!(journal.contains("Bearer [redacted]"), "{journal}");
    assert!(stderr.contains("Bearer [redacted]"), "{stderr}");
    // ...and went nowhere else: no file of the results, no output of either run.
    let files = files_under(&workspace.results());
    assert!(files.len() >= 5, "{files:?}");
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes
                .windows(key.len())
                .any(|window| window == key.as_bytes()),
            "the key is in {}",
            file.display()
        );
    }
    for output in [&failing, &refused] {
        for stream in [&output.stdout, &output.stderr] {
            assert!(!String::from_utf8_lossy(stream).contains(&key));
        }
    }
}

/// `rlaif label` against a server that dies mid-way: it stops within its retry budget
/// saying how to resume, keeps every whole line written, and the rerun against the
/// revived server labels the rest, paying for no call twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_stops_when_its_server_dies_and_a_rerun_pays_for_nothing_twice() {
    const PAIRS: usize = 200;
    let server = FakeServer::with(config()).await;
    let addr = server.addr();
    let workspace = Workspace::with(&server.url(), "max_concurrency: 4, max_retries: 3");
    let input = workspace.unlabeled(PAIRS);
    let output = workspace.dir.path().join("labeled.jsonl");
    let command = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rlaif"));
        command
            .arg("label")
            .arg(&workspace.file)
            .args(["--cell", "base/0-shot/srv", "--input"])
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .arg("--results")
            .arg(workspace.results())
            .arg("--quiet")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };

    let child = command().spawn().unwrap();
    assert!(
        until(Duration::from_secs(20), || paid_calls(&server) >= 60).await,
        "labeling got going"
    );
    server.kill().await;
    let killed = Instant::now();
    let stopped = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stopped_after = killed.elapsed();
    assert_exit(&stopped, 1);
    assert!(
        stopped_after < Duration::from_secs(10),
        "stopped {stopped_after:?} after the server died"
    );
    let stderr = String::from_utf8_lossy(&stopped.stderr);
    assert!(
        stderr.contains("stopped, the labeler's server is unreachable"),
        "{stderr}"
    );
    assert!(stderr.contains("resume with: rlaif label"), "{stderr}");
    let written = std::fs::read_to_string(&output).unwrap();
    assert!(written.ends_with('\n') || written.is_empty());
    let before = paid_calls(&server);
    assert!(
        written.lines().count() < PAIRS && before < 2 * PAIRS,
        "stopped mid-way"
    );

    let revived = FakeServer::at(addr, config()).await;
    let mut rerun = command();
    let finished = tokio::task::spawn_blocking(move || rerun.output().unwrap())
        .await
        .unwrap();
    assert_exit(&finished, 0);
    let ids: Vec<String> = std::fs::read_to_string(&output)
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let expected: Vec<String> = (0..PAIRS).map(|i| format!("u{i:03}")).collect();
    assert_eq!(
        ids, expected,
        "every pair labeled once, in the input's order"
    );
    assert_eq!(
        before + paid_calls(&revived),
        2 * PAIRS,
        "every call (two orders a pair) paid once across both runs"
    );
}

/// `rationale_stop` reaches every rationale request after the prompt's ending, and a
/// server that ignores stop strings still has its rationale cut there: neither the
/// journal nor the scoring prompt carries what it wrote past the stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_ignores_stop_strings_has_its_rationales_cut_at_them() {
    let server = FakeServer::with(
        FakeConfig::default()
            .varying()
            .generation("Summary 1 is better.\n\n### Example 3\nText: an example of its own")
            // It ran on past the stop until the cap, as a server that ignores stops does.
            .generation_finish("length"),
    )
    .await;
    let workspace = Workspace::with(&server.url(), "max_concurrency: 2, rationale_stop: \"###\"");
    assert_exit(&workspace.run().await, 0);

    let requests: Vec<Recorded> = server.requests().into_iter().filter(labels).collect();
    let (rationales, scorings): (Vec<&Recorded>, Vec<&Recorded>) = requests
        .iter()
        .partition(|request| request.body["max_tokens"] == 32);
    // 8 pairs x 2 orders x 2 preambles in the CoT cells.
    assert_eq!(rationales.len(), 32);
    for request in &rationales {
        let stop = request.body["stop"].as_array().expect("a stop list");
        assert_eq!(stop.len(), 2, "{}", request.body);
        assert!(
            stop[0]
                .as_str()
                .is_some_and(|ending| !ending.is_empty() && ending != "###"),
            "the prompt's ending comes first: {}",
            request.body
        );
        assert_eq!(stop[1], "###", "{}", request.body);
    }
    let after_rationale: Vec<&str> = scorings
        .iter()
        .filter_map(|request| request.body["prompt"].as_str())
        .filter(|prompt| prompt.contains("Summary 1 is better."))
        .collect();
    assert_eq!(after_rationale.len(), 32);
    assert!(
        after_rationale
            .iter()
            .all(|prompt| !prompt.contains("Example 3"))
    );

    let journal = std::fs::read_to_string(workspace.run_dir().join("judgments.jsonl")).unwrap();
    let mut cot_orders = 0;
    for line in journal.lines() {
        let judgment: Value = serde_json::from_str(line).unwrap();
        for order in judgment["orders"].as_array().unwrap() {
            for sample in order["samples"].as_array().unwrap() {
                if let Some(rationale) = sample["rationale"].as_str() {
                    cot_orders += 1;
                    assert_eq!(rationale, "Summary 1 is better.", "{judgment}");
                    assert_eq!(
                        sample["rationale_capped"], false,
                        "the rationale ended at the stop, not at the cap: {judgment}"
                    );
                }
            }
        }
    }
    assert_eq!(cot_orders, 32);
    assert_eq!(
        workspace.manifest()["labelers"][0]["settings"]["rationale_stop"],
        serde_json::json!(["###"])
    );
}

/// `rlaif label` with a chain-of-thought cell whose every rationale runs to the cap: each
/// output line says so per sample, and the closing lines warn that the labels were read
/// after cut-off text.
#[tokio::test]
async fn label_warns_when_most_rationales_ran_out_of_tokens() {
    let server = FakeServer::with(config().generation_finish("length")).await;
    let workspace = Workspace::with(&server.url(), "max_concurrency: 2");
    let input = workspace.unlabeled(5);
    let output = workspace.dir.path().join("labeled.jsonl");
    let mut command = Command::new(env!("CARGO_BIN_EXE_rlaif"));
    command
        .arg("label")
        .arg(&workspace.file)
        .args(["--cell", "base/0-shot/cot/srv", "--input"])
        .arg(&input)
        .arg("--output")
        .arg(&output)
        .arg("--results")
        .arg(workspace.results())
        .arg("--quiet");
    let labeled = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert_exit(&labeled, 0);
    let stderr = String::from_utf8_lossy(&labeled.stderr);
    assert!(
        stderr.contains("the rationale ran out of tokens in 10 of 10 samples"),
        "{stderr}"
    );
    let written = std::fs::read_to_string(&output).unwrap();
    assert_eq!(written.lines().count(), 5);
    for line in written.lines() {
        let labeled: Value = serde_json::from_str(line).unwrap();
        for order in labeled["orders"].as_array().unwrap() {
            assert_eq!(order["samples"][0]["rationale_capped"], true, "{labeled}");
        }
    }
}

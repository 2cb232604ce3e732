//! The call cache: every backend answer, stored in SQLite and keyed by what can change it.
//!
//! A [`CacheKey`] holds the labeler's identity, the kind of call and the canonical
//! request (the sample index is part of a generation request), so re-running a file,
//! extending its grid or adding samples pays only for calls not made before, and the same
//! call from two cells is made once. Identical calls in flight at the same moment are
//! coalesced: one goes to the backend, the others wait for its answer.
//!
//! The database runs in WAL mode and each answer is committed as it arrives, so a killed
//! run loses at most the calls that were in flight. Failed calls are not cached. Opening
//! the cache runs SQLite's quick check, so a damaged file is refused by name instead of
//! silently missing; [`check`] and [`repair`] (`rlaif cache check|repair`) say what is
//! still readable and keep it.

mod health;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

use crate::backend::{
    CallError, GenerateRequest, Generation, Labeler, ScoreRequest, Scoring, Truth,
};
use crate::fingerprint;

pub use health::{Health, Repair, check, repair};

/// The cache's file name in a results root.
pub const FILE: &str = "cache.sqlite";

/// Everything that can change a backend's answer, hashed to name a cache entry.
#[derive(Debug, Serialize)]
pub struct CacheKey<'a, R: Serialize> {
    pub identity: &'a str,
    pub kind: &'static str,
    pub request: &'a R,
}

impl<R: Serialize> CacheKey<'_, R> {
    /// The entry's name: SHA-256 of the key's canonical JSON.
    pub fn digest(&self) -> String {
        let json = serde_json::to_string(self).expect("cache keys serialize to JSON");
        fingerprint::sha256_hex(json)
    }
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A backend call made for this request (it is paid for).
    Backend,
    /// The cache, or another identical request in flight at the same time.
    Cache,
}

/// Why the cache cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot open the call cache {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the call cache {} is damaged: {detail} (`rlaif cache check {}` shows what is readable, `rlaif cache repair {}` keeps it in a new cache; the calls it loses are made again, and judgments in run folders are kept)",
        .path.display(), root_of(.path).display(), root_of(.path).display()
    )]
    Damaged { path: PathBuf, detail: String },
    #[error(
        "the call cache {} is damaged ({readable} calls readable: `rlaif cache repair {}` keeps them in a new cache, and the next run makes the lost ones again)",
        .path.display(), root_of(.path).display()
    )]
    Unhealthy { path: PathBuf, readable: usize },
    #[error("no call cache at {} (`rlaif run` creates it in the results folder it is given with --results, `results` by default)", .path.display())]
    Missing { path: PathBuf },
    #[error(
        "the call cache {} is in use by process {pid} ({}) (repair it once that process has stopped)",
        .path.display(), .holder.display()
    )]
    InUse {
        path: PathBuf,
        pid: u32,
        /// The run folder, or the lock of the labeling, the process holds.
        holder: PathBuf,
    },
    #[error("cannot write the repaired call cache {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the repaired call cache {}", .path.display())]
    Rebuild {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
}

/// A damaged file (SQLite's "malformed" and "not a database") as such, anything else
/// (permissions, a full disk, a lock held too long) as a failure to open.
fn classify(path: &Path, source: rusqlite::Error) -> CacheError {
    use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
    match source.sqlite_error_code() {
        Some(DatabaseCorrupt | NotADatabase) => CacheError::Damaged {
            path: path.to_path_buf(),
            detail: source.to_string(),
        },
        _ => CacheError::Open {
            path: path.to_path_buf(),
            source,
        },
    }
}

/// The results root a cache file belongs to, as the user would type it.
fn root_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// The one table: a call's key, the labeler identity and kind it came from, and the
/// answer as JSON.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    kind TEXT NOT NULL,
    answer TEXT NOT NULL
)";

/// The SQLite store of answers.
#[derive(Debug)]
pub struct Cache {
    path: PathBuf,
    connection: Mutex<Connection>,
    in_flight: Mutex<HashMap<String, Arc<OnceCell<String>>>>,
    /// Backend calls sent and not yet answered, for the progress display.
    calls_in_flight: AtomicUsize,
    /// Backend answers stored through this handle, one per call paid for. Counted as
    /// each is stored rather than when its example is judged, so that what a run paid
    /// for includes the calls of examples a stop cut off; the next process finds those
    /// in the store and does not count them again.
    calls_answered: AtomicU64,
}

/// Counts one backend call as in flight for as long as it lives, even if its future is
/// dropped (Ctrl-C).
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn start(counter: &'a AtomicUsize) -> InFlight<'a> {
        counter.fetch_add(1, Ordering::Relaxed);
        InFlight(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Cache {
    /// Opens (creating if needed) the cache database at `path`.
    pub fn open(path: &Path) -> Result<Cache, CacheError> {
        let open_error = |source| CacheError::Open {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let connection = Connection::open(path).map_err(open_error)?;
        let damaged = |source| classify(path, source);
        connection
            .busy_timeout(std::time::Duration::from_secs(10))
            .map_err(damaged)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(damaged)?;
        connection
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(damaged)?;
        // A damaged page would otherwise surface only as lookups that silently miss (and
        // calls paid again), or not at all. The check reads the file once; it is quick
        // next to any run.
        let verdict: String = connection
            .query_row("PRAGMA quick_check(1)", [], |row| row.get(0))
            .map_err(damaged)?;
        if verdict != "ok" {
            // The first problem, without the header line naming the database.
            let detail = verdict
                .lines()
                .find(|line| !line.starts_with("***"))
                .unwrap_or("the integrity check failed")
                .to_owned();
            return Err(CacheError::Damaged {
                path: path.to_path_buf(),
                detail,
            });
        }
        connection.execute_batch(SCHEMA).map_err(damaged)?;
        Ok(Cache {
            path: path.to_path_buf(),
            connection: Mutex::new(connection),
            in_flight: Mutex::new(HashMap::new()),
            calls_in_flight: AtomicUsize::new(0),
            calls_answered: AtomicU64::new(0),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lookup(&self, key: &str) -> Option<String> {
        let connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        connection
            .query_row("SELECT answer FROM calls WHERE key = ?1", [key], |row| {
                row.get(0)
            })
            .optional()
            .ok()
            .flatten()
    }

    /// Stores a backend's answer, which counts it as a call made.
    fn store(&self, key: &str, identity: &str, kind: &str, answer: &str) {
        self.calls_answered.fetch_add(1, Ordering::Relaxed);
        let connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        // A write that fails only costs a repeated call later; the answer is still used.
        let _ = connection.execute(
            "INSERT OR REPLACE INTO calls (key, identity, kind, answer) VALUES (?1, ?2, ?3, ?4)",
            params![key, identity, kind, answer],
        );
    }

    /// Backend calls sent and not yet answered.
    pub fn calls_in_flight(&self) -> usize {
        self.calls_in_flight.load(Ordering::Relaxed)
    }

    /// Backend calls answered through this handle so far.
    pub fn calls_answered(&self) -> u64 {
        self.calls_answered.load(Ordering::Relaxed)
    }

    /// Entries stored, for reports and tests.
    pub fn len(&self) -> usize {
        let connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        connection
            .query_row("SELECT COUNT(*) FROM calls", [], |row| row.get::<_, i64>(0))
            .map_or(0, |count| usize::try_from(count).unwrap_or(0))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The answer for `key`: from the store, from an identical call in flight, or from
    /// `call`, whose answer is then stored.
    async fn get_or_call<T, F>(
        &self,
        key: &CacheKey<'_, impl Serialize>,
        call: F,
    ) -> Result<Answered<T>, CallError>
    where
        T: Serialize + DeserializeOwned,
        F: Future<Output = Result<T, CallError>>,
    {
        let digest = key.digest();
        if let Some(answer) = self.lookup(&digest).and_then(|text| decode(&text)) {
            return Ok(Answered {
                answer,
                origin: Origin::Cache,
                key: digest,
            });
        }
        let cell = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            in_flight.entry(digest.clone()).or_default().clone()
        };
        let made_here = AtomicBool::new(false);
        let result = cell
            .get_or_try_init(|| async {
                made_here.store(true, Ordering::Relaxed);
                let counted = InFlight::start(&self.calls_in_flight);
                let answer = call.await;
                drop(counted);
                let answer = answer?;
                let text = serde_json::to_string(&answer).expect("answers serialize to JSON");
                self.store(&digest, key.identity, key.kind, &text);
                Ok::<String, CallError>(text)
            })
            .await
            .cloned();
        {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            if in_flight
                .get(&digest)
                .is_some_and(|current| Arc::ptr_eq(current, &cell))
            {
                in_flight.remove(&digest);
            }
        }
        let text = result?;
        let answer = decode(&text).ok_or_else(|| CallError::Malformed {
            server: "the call cache".to_owned(),
            message: "an entry does not decode".to_owned(),
        })?;
        let origin = if made_here.into_inner() {
            Origin::Backend
        } else {
            Origin::Cache
        };
        Ok(Answered {
            answer,
            origin,
            key: digest,
        })
    }
}

/// An answer, where it came from, and the cache key that names the call.
#[derive(Debug, Clone)]
pub struct Answered<T> {
    pub answer: T,
    pub origin: Origin,
    pub key: String,
}

fn decode<T: DeserializeOwned>(text: &str) -> Option<T> {
    serde_json::from_str(text).ok()
}

/// A labeler whose calls go through the cache.
#[derive(Debug, Clone)]
pub struct CachedLabeler {
    labeler: Arc<dyn Labeler>,
    cache: Arc<Cache>,
}

impl CachedLabeler {
    pub fn new(labeler: Arc<dyn Labeler>, cache: Arc<Cache>) -> CachedLabeler {
        CachedLabeler { labeler, cache }
    }

    pub fn labeler(&self) -> &dyn Labeler {
        self.labeler.as_ref()
    }

    pub async fn score(
        &self,
        request: &ScoreRequest,
        truth: &Truth,
    ) -> Result<Answered<Scoring>, CallError> {
        let key = CacheKey {
            identity: self.labeler.identity(),
            kind: "score",
            request,
        };
        self.cache
            .get_or_call(&key, self.labeler.score(request, truth))
            .await
    }

    pub async fn generate(
        &self,
        request: &GenerateRequest,
        truth: &Truth,
    ) -> Result<Answered<Generation>, CallError> {
        self.cache
            .get_or_call(
                &self.generate_key(request),
                self.labeler.generate(request, truth),
            )
            .await
    }

    fn generate_key<'r>(&'r self, request: &'r GenerateRequest) -> CacheKey<'r, GenerateRequest> {
        CacheKey {
            identity: self.labeler.identity(),
            kind: "generate",
            request,
        }
    }

    /// The samples of one prompt (see [`Labeler::generate_samples`]), one answer per
    /// request in order: those stored come from the store, and the rest from one call
    /// that takes them together and whose answers are then stored. Unlike single calls,
    /// these are not coalesced with identical calls in flight: a labeler that takes
    /// samples together serves one call at a time.
    pub async fn generate_samples(
        &self,
        requests: &[GenerateRequest],
        truth: &Truth,
    ) -> Result<Vec<Answered<Generation>>, CallError> {
        let identity = self.labeler.identity();
        let digests: Vec<String> = requests
            .iter()
            .map(|request| self.generate_key(request).digest())
            .collect();
        let mut answers: Vec<Option<Answered<Generation>>> = digests
            .iter()
            .map(|digest| {
                let answer = self.cache.lookup(digest).and_then(|text| decode(&text))?;
                Some(Answered {
                    answer,
                    origin: Origin::Cache,
                    key: digest.clone(),
                })
            })
            .collect();
        // Each missing call once, even if requests repeat it.
        let mut missing: Vec<usize> = Vec::new();
        for (index, answer) in answers.iter().enumerate() {
            if answer.is_none() && !missing.iter().any(|&m| digests[m] == digests[index]) {
                missing.push(index);
            }
        }
        if !missing.is_empty() {
            let asked: Vec<GenerateRequest> = missing
                .iter()
                .map(|&index| requests[index].clone())
                .collect();
            let counted = InFlight::start(&self.cache.calls_in_flight);
            let generated = self.labeler.generate_samples(&asked, truth).await;
            drop(counted);
            let generated = generated?;
            if generated.len() != asked.len() {
                return Err(CallError::Malformed {
                    server: identity.to_owned(),
                    message: format!("{} answers to {} samples", generated.len(), asked.len()),
                });
            }
            for (&index, answer) in missing.iter().zip(generated) {
                let key = self.generate_key(&requests[index]);
                let text = serde_json::to_string(&answer).expect("answers serialize to JSON");
                self.cache
                    .store(&digests[index], key.identity, key.kind, &text);
                // A repeat of the call is answered by it, as a coalesced call is.
                for (at, (slot, digest)) in answers.iter_mut().zip(&digests).enumerate() {
                    if slot.is_none() && *digest == digests[index] {
                        *slot = Some(Answered {
                            answer: answer.clone(),
                            origin: if at == index {
                                Origin::Backend
                            } else {
                                Origin::Cache
                            },
                            key: digest.clone(),
                        });
                    }
                }
            }
        }
        Ok(answers
            .into_iter()
            .map(|answer| answer.expect("every request is answered"))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{BoxFuture, Capabilities, Scored, Usage};

    #[derive(Debug, Default)]
    struct Counting {
        calls: AtomicUsize,
    }

    impl Labeler for Counting {
        fn identity(&self) -> &str {
            "counting"
        }
        fn capabilities(&self) -> Capabilities {
            Capabilities {
                logprobs: true,
                sampling: true,
                parsed: false,
                batches_samples: false,
            }
        }
        fn preflight(&self) -> BoxFuture<'_, Result<(), CallError>> {
            Box::pin(async { Ok(()) })
        }
        fn score<'a>(
            &'a self,
            request: &'a ScoreRequest,
            _truth: &'a Truth,
        ) -> BoxFuture<'a, Result<Scoring, CallError>> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                if request.prompt == "fail" {
                    return Err(CallError::Cancelled);
                }
                Ok(Scoring {
                    scored: Scored::Logprobs {
                        top: vec![("1".into(), -0.1)],
                    },
                    usage: Usage::default(),
                })
            })
        }
        fn generate<'a>(
            &'a self,
            request: &'a GenerateRequest,
            _truth: &'a Truth,
        ) -> BoxFuture<'a, Result<Generation, CallError>> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                Ok(Generation {
                    text: format!("{} #{}", request.prompt, request.sample),
                    usage: Usage::default(),
                    finish_reason: None,
                })
            })
        }
    }

    fn samples(prompt: &str, samples: &[u32]) -> Vec<GenerateRequest> {
        samples
            .iter()
            .map(|&sample| GenerateRequest {
                prompt: prompt.to_owned(),
                max_tokens: 8,
                temperature: 0.7,
                top_k: 40,
                sample,
                seed: 1,
                stop: vec![],
            })
            .collect()
    }

    #[tokio::test]
    async fn samples_taken_together_pay_only_for_those_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(Counting::default());
        let cache = Arc::new(Cache::open(&dir.path().join("c.sqlite")).unwrap());
        let labeler = CachedLabeler::new(backend.clone(), cache.clone());
        let truth = Truth::default();
        let origins = |answers: &[Answered<Generation>]| -> Vec<Origin> {
            answers.iter().map(|answer| answer.origin).collect()
        };

        let first = labeler
            .generate_samples(&samples("p", &[0, 1]), &truth)
            .await
            .unwrap();
        assert_eq!(origins(&first), [Origin::Backend, Origin::Backend]);
        assert_eq!(backend.calls.load(Ordering::SeqCst), 2);

        // Four samples where two were paid for: two calls more, answers in order.
        let second = labeler
            .generate_samples(&samples("p", &[0, 1, 2, 3]), &truth)
            .await
            .unwrap();
        assert_eq!(
            origins(&second),
            [
                Origin::Cache,
                Origin::Cache,
                Origin::Backend,
                Origin::Backend
            ]
        );
        let texts: Vec<&str> = second.iter().map(|a| a.answer.text.as_str()).collect();
        assert_eq!(texts, ["p #0", "p #1", "p #2", "p #3"]);
        assert_eq!(second[1].key, first[1].key);
        assert_eq!(backend.calls.load(Ordering::SeqCst), 4);

        // The same request twice is one call, the repeat answered by it.
        let repeated = labeler
            .generate_samples(&samples("q", &[5, 5]), &truth)
            .await
            .unwrap();
        assert_eq!(origins(&repeated), [Origin::Backend, Origin::Cache]);
        assert_eq!(backend.calls.load(Ordering::SeqCst), 5);
        assert_eq!(
            cache.calls_answered(),
            5,
            "each sample paid for counted once"
        );

        // Stored one by one: a single call finds a sample taken together.
        let single = labeler
            .generate(&samples("p", &[3])[0], &truth)
            .await
            .unwrap();
        assert_eq!(single.origin, Origin::Cache);
        assert_eq!(single.answer.text, "p #3");
    }

    fn request(prompt: &str) -> ScoreRequest {
        ScoreRequest {
            prompt: prompt.to_owned(),
            alternatives: 20,
        }
    }

    #[tokio::test]
    async fn a_call_is_paid_once_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.sqlite");
        let backend = Arc::new(Counting::default());
        let labeler = CachedLabeler::new(backend.clone(), Arc::new(Cache::open(&path).unwrap()));
        let truth = Truth::default();
        let first = labeler.score(&request("p"), &truth).await.unwrap().origin;
        let second = labeler.score(&request("p"), &truth).await.unwrap().origin;
        assert_eq!((first, second), (Origin::Backend, Origin::Cache));
        drop(labeler);
        let reopened = CachedLabeler::new(backend.clone(), Arc::new(Cache::open(&path).unwrap()));
        let third = reopened.score(&request("p"), &truth).await.unwrap().origin;
        assert_eq!(third, Origin::Cache);
        assert_eq!(backend.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn identical_calls_in_flight_are_coalesced() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(Counting::default());
        let cache = Arc::new(Cache::open(&dir.path().join("c.sqlite")).unwrap());
        let labeler = CachedLabeler::new(backend.clone(), cache.clone());
        let truth = Truth::default();
        let request = request("same");
        let answers =
            futures::future::join_all((0..8).map(|_| labeler.score(&request, &truth))).await;
        let paid = answers
            .iter()
            .filter(|answer| answer.as_ref().unwrap().origin == Origin::Backend)
            .count();
        assert_eq!(paid, 1);
        assert_eq!(backend.calls.load(Ordering::SeqCst), 1);
        assert_eq!(cache.calls_answered(), 1);
    }

    #[tokio::test]
    async fn failures_are_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let backend = Arc::new(Counting::default());
        let cache = Arc::new(Cache::open(&dir.path().join("c.sqlite")).unwrap());
        let labeler = CachedLabeler::new(backend.clone(), cache.clone());
        let truth = Truth::default();
        assert!(labeler.score(&request("fail"), &truth).await.is_err());
        assert!(labeler.score(&request("fail"), &truth).await.is_err());
        assert_eq!(backend.calls.load(Ordering::SeqCst), 2);
        assert!(cache.is_empty());
        assert_eq!(
            cache.calls_answered(),
            0,
            "a failed call is not counted as made"
        );
    }

    #[test]
    fn keys_differ_by_identity_kind_and_request() {
        let a = CacheKey {
            identity: "x",
            kind: "score",
            request: &request("p"),
        }
        .digest();
        let b = CacheKey {
            identity: "y",
            kind: "score",
            request: &request("p"),
        }
        .digest();
        let c = CacheKey {
            identity: "x",
            kind: "score",
            request: &request("q"),
        }
        .digest();
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}

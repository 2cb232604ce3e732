//! The embedded labeler: GGUF models run in-process with candle, so that a run needs no
//! server.
//!
//! Each worker thread owns an engine: the shared model and the key/value state of the
//! last sequence that worker evaluated. Each call keeps the whole blocks of the prefix
//! its prompt shares with that sequence and computes only the rest (so that its answer
//! does not depend on what the worker computed before): the runner sends an example's
//! prompts one after another, in an order where each extends the last (a cell's
//! examples share its preamble and exemplars, an example's two orders share the post, a
//! prompt's samples share it whole), and a call goes to the free worker whose last
//! prompt shares the most with it, so most of every prompt is never computed twice.
//!
//! With several workers each computes on one thread ([`ONE_THREAD`]): on models this
//! small, splitting every matrix product across threads costs more in synchronisation
//! than a second worker on its own examples does.

mod attention;
pub mod engine;
pub mod model;
pub mod tokenizer;

use std::path::PathBuf;
use std::sync::{Mutex, mpsc};

use tokio::sync::{OnceCell, Semaphore, oneshot};

use crate::backend::{
    BoxFuture, CallError, Capabilities, GenerateRequest, Generation, Labeler, LabelerConfig,
    ScoreRequest, Scoring, Truth,
};
use engine::Engine;

/// Where the model file comes from: the registry ladder, or a file the experiment names.
#[derive(Debug, Clone)]
pub enum ModelSource {
    Registry(String),
    File(PathBuf),
}

/// A call handed to a worker thread.
enum Job {
    Score(ScoreRequest, oneshot::Sender<Result<Scoring, CallError>>),
    Generate(
        GenerateRequest,
        oneshot::Sender<Result<Generation, CallError>>,
    ),
    GenerateSamples(
        Vec<GenerateRequest>,
        oneshot::Sender<Result<Vec<Generation>, CallError>>,
    ),
}

/// An in-process labeler.
#[derive(Debug)]
pub struct Embedded {
    identity: String,
    /// The model's name in the experiment, for the worker threads' names.
    model: String,
    source: ModelSource,
    chat: bool,
    quiet: bool,
    workers: usize,
    /// Started by the first call (the preflight): loading may pull the model first.
    pool: OnceCell<Pool>,
}

/// The worker threads and which of them are free.
#[derive(Debug)]
struct Pool {
    jobs: Vec<mpsc::Sender<Job>>,
    free: Semaphore,
    /// The free workers, each with the last prompt it evaluated.
    idle: Mutex<Vec<(usize, String)>>,
}

/// A worker taken from the pool; dropping it frees the worker, even when the call
/// waiting on it is abandoned.
struct Taken<'a> {
    pool: &'a Pool,
    worker: usize,
    prompt: String,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        let prompt = std::mem::take(&mut self.prompt);
        lock(&self.pool.idle).push((self.worker, prompt));
        self.pool.free.add_permits(1);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere cannot leave the list half-written: every change is one push or
    // one remove.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Pool {
    /// Waits for a free worker and takes the one whose last prompt shares the longest
    /// start with `prompt`.
    async fn take(&self, prompt: &str) -> Taken<'_> {
        self.free
            .acquire()
            .await
            .expect("the pool's semaphore is never closed")
            .forget();
        let mut idle = lock(&self.idle);
        let nearest = idle
            .iter()
            .enumerate()
            .max_by_key(|(position, (_, last))| {
                (shared_prefix(last, prompt), usize::MAX - position)
            })
            .map(|(position, _)| position)
            .expect("a permit stands for a free worker");
        let (worker, _) = idle.swap_remove(nearest);
        Taken {
            pool: self,
            worker,
            prompt: prompt.to_owned(),
        }
    }
}

/// How many bytes two texts share at their start.
fn shared_prefix(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

/// The environment under which candle computes on the calling thread alone, as each
/// worker of an embedded labeler with `workers` above 1 does. candle reads it once, when
/// it first multiplies, and the process cannot change its own environment safely once
/// threads run, so rlaif starts itself again under it (see
/// [`crate::backend::settle_threads`]).
pub const ONE_THREAD: [(&str, &str); 2] = [("RAYON_NUM_THREADS", "1"), ("CANDLE_NUM_THREADS", "1")];

impl Embedded {
    /// The model is loaded (and pulled if missing) and the workers started by the
    /// preflight.
    pub fn new(config: &LabelerConfig, quiet: bool) -> Embedded {
        let LabelerConfig::Embedded {
            model,
            path,
            chat,
            workers,
            ..
        } = config
        else {
            unreachable!("an embedded labeler is built from an embedded configuration")
        };
        let source = match path {
            Some(path) => ModelSource::File(path.clone()),
            None => ModelSource::Registry(model.clone()),
        };
        let identity = match &source {
            ModelSource::Registry(name) => format!("embedded:{name}:chat={chat}"),
            ModelSource::File(path) => format!(
                "embedded:{model}:file={}:{}:chat={chat}",
                path.display(),
                config.model_file_stamp().unwrap_or_default()
            ),
        };
        Embedded {
            identity,
            model: model.clone(),
            source,
            chat: *chat,
            quiet,
            workers: (*workers).max(1),
            pool: OnceCell::new(),
        }
    }

    /// The workers, loading the model and starting them on first need; a load that
    /// fails is tried again by the next call.
    async fn pool(&self) -> Result<&Pool, CallError> {
        self.pool
            .get_or_try_init(|| async {
                let (source, chat, quiet) = (self.source.clone(), self.chat, self.quiet);
                let engine =
                    tokio::task::spawn_blocking(move || Engine::open(&source, chat, quiet))
                        .await
                        .map_err(|_| CallError::WorkerStopped)??;
                let siblings: Vec<Engine> = (1..self.workers).map(|_| engine.sibling()).collect();
                let jobs = std::iter::once(engine)
                    .chain(siblings)
                    .enumerate()
                    .map(|(index, engine)| {
                        let (sender, receiver) = mpsc::channel();
                        std::thread::Builder::new()
                            .name(format!("embedded-{}-{index}", self.model))
                            .spawn(move || work(engine, &receiver))
                            .map_err(|error| CallError::Model {
                                message: format!("cannot start an embedded worker thread: {error}"),
                            })?;
                        Ok(sender)
                    })
                    .collect::<Result<Vec<_>, CallError>>()?;
                Ok(Pool {
                    free: Semaphore::new(jobs.len()),
                    idle: Mutex::new(
                        (0..jobs.len())
                            .map(|worker| (worker, String::new()))
                            .collect(),
                    ),
                    jobs,
                })
            })
            .await
    }

    async fn ask<T>(
        &self,
        prompt: &str,
        job: impl FnOnce(oneshot::Sender<Result<T, CallError>>) -> Job,
    ) -> Result<T, CallError> {
        let pool = self.pool().await?;
        let taken = pool.take(prompt).await;
        let (reply, answer) = oneshot::channel();
        if pool.jobs[taken.worker].send(job(reply)).is_err() {
            return Err(CallError::WorkerStopped);
        }
        answer
            .await
            .unwrap_or_else(|_| Err(CallError::WorkerStopped))
    }
}

/// A worker's loop: answers its jobs in order.
fn work(mut engine: Engine, jobs: &mpsc::Receiver<Job>) {
    for job in jobs {
        match job {
            Job::Score(request, reply) => {
                let _ = reply.send(engine.score(&request));
            }
            Job::Generate(request, reply) => {
                let _ = reply.send(engine.generate(&request));
            }
            Job::GenerateSamples(requests, reply) => {
                let _ = reply.send(engine.generate_samples(&requests));
            }
        }
    }
}

impl Labeler for Embedded {
    fn identity(&self) -> &str {
        &self.identity
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            logprobs: true,
            sampling: true,
            parsed: false,
            batches_samples: true,
        }
    }

    fn preflight(&self) -> BoxFuture<'_, Result<(), CallError>> {
        Box::pin(async move { self.pool().await.map(|_| ()) })
    }

    fn score<'a>(
        &'a self,
        request: &'a ScoreRequest,
        _truth: &'a Truth,
    ) -> BoxFuture<'a, Result<Scoring, CallError>> {
        Box::pin(self.ask(&request.prompt, |reply| Job::Score(request.clone(), reply)))
    }

    fn generate<'a>(
        &'a self,
        request: &'a GenerateRequest,
        _truth: &'a Truth,
    ) -> BoxFuture<'a, Result<Generation, CallError>> {
        Box::pin(self.ask(&request.prompt, |reply| {
            Job::Generate(request.clone(), reply)
        }))
    }

    fn generate_samples<'a>(
        &'a self,
        requests: &'a [GenerateRequest],
        _truth: &'a Truth,
    ) -> BoxFuture<'a, Result<Vec<Generation>, CallError>> {
        Box::pin(async move {
            let Some(first) = requests.first() else {
                return Ok(Vec::new());
            };
            self.ask(&first.prompt, |reply| {
                Job::GenerateSamples(requests.to_vec(), reply)
            })
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(last_prompts: &[&str]) -> Pool {
        Pool {
            jobs: last_prompts.iter().map(|_| mpsc::channel().0).collect(),
            free: Semaphore::new(last_prompts.len()),
            idle: Mutex::new(
                last_prompts
                    .iter()
                    .enumerate()
                    .map(|(worker, prompt)| (worker, (*prompt).to_owned()))
                    .collect(),
            ),
        }
    }

    #[tokio::test]
    async fn a_call_goes_to_the_free_worker_that_saw_most_of_its_prompt() {
        let pool = pool(&["preamble, post A, order ab", "preamble, post B, order ab"]);
        let taken = pool.take("preamble, post B, order ba").await;
        assert_eq!(taken.worker, 1);
        // The other worker is the only one free: it takes the next call, near or not.
        let other = pool.take("preamble, post B, rationale").await;
        assert_eq!(other.worker, 0);
        drop(taken);
        drop(other);
        // A freed worker remembers the prompt it was last given.
        let again = pool.take("preamble, post B, order ba, and more").await;
        assert_eq!(again.worker, 1);
    }

    #[tokio::test]
    async fn a_call_waits_until_a_worker_is_freed() {
        let pool = pool(&[""]);
        let busy = pool.take("first").await;
        let waiting = pool.take("second");
        tokio::pin!(waiting);
        assert!(
            futures::poll!(waiting.as_mut()).is_pending(),
            "no worker is free"
        );
        drop(busy);
        let next = waiting.await;
        assert_eq!(next.worker, 0);
    }

    #[test]
    fn ties_go_to_the_first_free_worker() {
        let pool = pool(&["x", "y", "z"]);
        let taken = futures::executor::block_on(pool.take("w"));
        assert_eq!(taken.worker, 0);
    }
}

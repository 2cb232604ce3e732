//! The embedded labeler: GGUF models run in-process with candle, so that a run needs no
//! server.
//!
//! One worker thread owns the model and the key/value state of the last sequence it
//! evaluated. Each call keeps the longest prefix its prompt shares with that sequence
//! and computes only the rest: the runner sends a one-slot labeler's prompts in an
//! order where each extends the last (a cell's examples share its preamble and
//! exemplars, an example's two orders share the post, a prompt's samples share it
//! whole), so most of every prompt is never computed twice.

mod attention;
pub mod engine;
pub mod model;
pub mod tokenizer;

use std::path::PathBuf;
use std::sync::mpsc;

use tokio::sync::oneshot;

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

/// A call handed to the worker thread.
enum Job {
    Load(oneshot::Sender<Result<(), CallError>>),
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
    jobs: mpsc::Sender<Job>,
}

impl Embedded {
    /// Starts the worker; the model is loaded (and pulled if missing) by the preflight.
    pub fn new(config: &LabelerConfig, quiet: bool) -> Embedded {
        let LabelerConfig::Embedded {
            model, path, chat, ..
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
                std::fs::metadata(path).map_or(0, |m| m.len())
            ),
        };
        let (sender, receiver) = mpsc::channel();
        let chat = *chat;
        std::thread::Builder::new()
            .name(format!("embedded-{model}"))
            .spawn(move || work(&source, chat, quiet, &receiver))
            .expect("the embedded labeler's thread starts");
        Embedded {
            identity,
            jobs: sender,
        }
    }

    async fn ask<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, CallError>>) -> Job,
    ) -> Result<T, CallError> {
        let (reply, answer) = oneshot::channel();
        if self.jobs.send(job(reply)).is_err() {
            return Err(worker_gone());
        }
        answer.await.unwrap_or_else(|_| Err(worker_gone()))
    }
}

fn worker_gone() -> CallError {
    CallError::Model {
        message: "the embedded model's worker stopped".to_owned(),
    }
}

/// The worker loop: loads the model on first need and answers jobs in order.
fn work(source: &ModelSource, chat: bool, quiet: bool, jobs: &mpsc::Receiver<Job>) {
    let mut engine: Option<Engine> = None;
    let load = |engine: &mut Option<Engine>| -> Result<(), CallError> {
        if engine.is_none() {
            *engine = Some(Engine::open(source, chat, quiet)?);
        }
        Ok(())
    };
    for job in jobs {
        match job {
            Job::Load(reply) => {
                let _ = reply.send(load(&mut engine));
            }
            Job::Score(request, reply) => {
                let answer = load(&mut engine)
                    .and_then(|()| engine.as_mut().expect("loaded").score(&request));
                let _ = reply.send(answer);
            }
            Job::Generate(request, reply) => {
                let answer = load(&mut engine)
                    .and_then(|()| engine.as_mut().expect("loaded").generate(&request));
                let _ = reply.send(answer);
            }
            Job::GenerateSamples(requests, reply) => {
                let answer = load(&mut engine)
                    .and_then(|()| engine.as_mut().expect("loaded").generate_samples(&requests));
                let _ = reply.send(answer);
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
        Box::pin(self.ask(Job::Load))
    }

    fn score<'a>(
        &'a self,
        request: &'a ScoreRequest,
        _truth: &'a Truth,
    ) -> BoxFuture<'a, Result<Scoring, CallError>> {
        Box::pin(self.ask(|reply| Job::Score(request.clone(), reply)))
    }

    fn generate<'a>(
        &'a self,
        request: &'a GenerateRequest,
        _truth: &'a Truth,
    ) -> BoxFuture<'a, Result<Generation, CallError>> {
        Box::pin(self.ask(|reply| Job::Generate(request.clone(), reply)))
    }

    fn generate_samples<'a>(
        &'a self,
        requests: &'a [GenerateRequest],
        _truth: &'a Truth,
    ) -> BoxFuture<'a, Result<Vec<Generation>, CallError>> {
        Box::pin(self.ask(|reply| Job::GenerateSamples(requests.to_vec(), reply)))
    }
}

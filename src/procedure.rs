//! The labeling procedure (DESIGN §1): what one cell does to one example.
//!
//! Each order is scored (after chain-of-thought rationales, averaged over
//! self-consistency samples when the cell has them), the orders' distributions are
//! mapped back to (a, b) through the order and the task's polarity and averaged, and the
//! AI choice is the side above one half. [`read_preference`] and [`combine`] are pure; the
//! calls go through a [`CachedLabeler`].

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::backend::{
    CallError, GenerateRequest, Generation, ScoreRequest, Scored, Truth, Usage, first_stop,
};
use crate::cache::{Answered, CachedLabeler, Origin};
use crate::data::{Example, Label};
use crate::fingerprint;
use crate::grid::Cell;
use crate::prompt::{CellPrompts, Order, Polarity, Prompt};
use crate::spec::PositionDebias;

/// The digits a labeler answers with.
pub const CHOICES: [&str; 2] = ["1", "2"];

/// One self-consistency sample of one order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleJudgment {
    /// The rationale as scored (chain-of-thought cells only; null otherwise).
    #[serde(default)]
    pub rationale: Option<String>,
    /// Whether the rationale ran out of tokens (`max_rationale_tokens`) rather than
    /// ending at a stop or the end of text: a rationale cut short, often in a loop.
    /// Absent without CoT, where the backend does not say why generation stopped, and
    /// in journals written before this field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationale_capped: Option<bool>,
    /// The labeler's probability of answering "1" (slot 1), before polarity.
    pub p_first: f64,
    /// Probability mass the labeler put on the choice tokens together; low mass means
    /// it mostly wanted to say something else.
    pub choice_mass: f64,
    /// Choice tokens absent from the returned alternatives; their mass was bounded by
    /// the smallest returned alternative, never taken as zero.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

/// One order of one example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderJudgment {
    pub order: Order,
    /// The mean of the samples' `p_first`.
    pub p_first: f64,
    pub samples: Vec<SampleJudgment>,
}

/// Why an example could not be judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub kind: String,
    pub message: String,
}

impl Failure {
    /// Whether the same calls would fail again: the answer itself was unusable (cached,
    /// so a rerun gets it again), the request was refused as malformed or too long, or
    /// the template cannot render. Transient kinds (rate limits, server errors,
    /// timeouts, lost connections, unreadable bodies, interruptions) are retried when a
    /// run is resumed; permanent ones are kept.
    pub fn is_permanent(&self) -> bool {
        Failure::kind_is_permanent(&self.kind)
    }

    /// [`Failure::is_permanent`] for a failure of `kind`.
    pub fn kind_is_permanent(kind: &str) -> bool {
        Failure::stop_of(kind).is_none()
            && !matches!(
                kind,
                "rate_limited" | "server_error" | "timeout" | "malformed" | "cancelled"
            )
    }

    /// Why this failure stops a run or a labeling, when it does: the labeler itself
    /// cannot answer (its server is unreachable, refuses the key, has no such endpoint or
    /// model; an embedded worker stopped), so every further call would fail the same way.
    /// Such failures are retried when the run is resumed.
    pub fn stop(&self) -> Option<Stop> {
        Failure::stop_of(&self.kind).map(|(what, until)| Stop {
            what,
            until,
            message: self.message.clone(),
        })
    }

    fn stop_of(kind: &str) -> Option<(&'static str, &'static str)> {
        Some(match kind {
            "connect" => ("labeler's server is unreachable", "the server is back"),
            "unauthorized" => ("labeler's server refuses the API key", "the key is fixed"),
            "not_found" => (
                "labeler's server has no such endpoint or model",
                "`base_url` and `model` are fixed",
            ),
            "worker_stopped" => (
                "labeler's embedded worker stopped",
                "the fault printed above is dealt with",
            ),
            _ => return None,
        })
    }
}

/// Why a run or a labeling stopped before its end: a failure that every further call to
/// the labeler would repeat.
#[derive(Debug, Clone, PartialEq)]
pub struct Stop {
    /// What is wrong, after "a" or "the": "labeler's server is unreachable".
    pub what: &'static str,
    /// What must hold before resuming: "the server is back".
    pub until: &'static str,
    /// The failure's message.
    pub message: String,
}

/// What one cell made of one example: a line of `judgments.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Judgment {
    /// The cell's id.
    pub cell: String,
    pub cell_name: String,
    /// The example's id.
    pub example: String,
    pub orders: Vec<OrderJudgment>,
    /// Probability that response a is preferred, after polarity and debiasing; `None`
    /// when the example failed.
    pub p_a: Option<f64>,
    pub ai: Option<Label>,
    pub human: Label,
    /// Agreement with the human label: 1, 0.5 (a tie on either side) or 0.
    pub score: Option<f64>,
    /// The longer response (by characters); `None` when both are as long.
    pub longer: Option<Label>,
    /// The human label's confidence where the data has one (TL;DR: 1-9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub human_confidence: Option<f64>,
    /// Backend calls this judgment needs, whether paid now or answered by the cache:
    /// the cost of the configuration, the same however often a run is resumed.
    pub calls: u32,
    /// Tokens of those calls, as the backend counted them when it answered.
    pub usage: Usage,
    /// Cache keys of those calls (shortened), so that calls shared between cells can
    /// be counted once.
    pub call_keys: Vec<String>,
    /// Calls actually sent to the backend for this judgment in this run.
    pub paid_calls: u32,
    /// Wall time spent on this example, in milliseconds.
    pub latency_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

/// How one cell labels: everything fixed for the cell's examples.
#[derive(Debug)]
pub struct Procedure<'a> {
    pub cell: &'a Cell,
    pub prompts: &'a CellPrompts<'a>,
    pub labeler: &'a CachedLabeler,
    pub polarity: Polarity,
    pub position_debias: PositionDebias,
    pub seed: u64,
    pub max_rationale_tokens: u32,
    /// Where a rationale ends besides the prompt's own ending: a small model may write
    /// on into an example of its own, which the scoring prompt would then carry.
    pub rationale_stop: Vec<String>,
    pub top_k: u32,
    /// Alternatives asked for at the scoring position (or answers sampled, parsed mode).
    pub alternatives: u32,
    /// Make this example's calls one after another: for a labeler that serves one
    /// request at a time, consecutive prompts then share the longest prefix (the
    /// generation prompt is the start of its scoring prompt), which a server's prefix
    /// cache turns into skipped work.
    pub sequential: bool,
}

/// Counts of what a judgment cost.
#[derive(Debug, Default)]
struct Cost {
    calls: u32,
    paid_calls: u32,
    usage: Usage,
    call_keys: Vec<String>,
}

impl Cost {
    fn add<T>(&mut self, answered: &Answered<T>, usage: Usage) {
        self.calls += 1;
        self.usage += usage;
        self.call_keys.push(answered.key[..16].to_owned());
        if answered.origin == Origin::Backend {
            self.paid_calls += 1;
        }
    }

    fn absorb(&mut self, other: Cost) {
        self.calls += other.calls;
        self.paid_calls += other.paid_calls;
        self.usage += other.usage;
        self.call_keys.extend(other.call_keys);
    }
}

impl Procedure<'_> {
    /// The orders `example` is shown in.
    pub fn orders(&self, example: &Example) -> Vec<Order> {
        match self.position_debias {
            PositionDebias::Both => Order::ALL.to_vec(),
            PositionDebias::None => vec![Order::Ab],
            PositionDebias::Random => {
                let draw = fingerprint::hash_u64(format!("{}:order:{}", self.seed, example.id));
                vec![if draw % 2 == 0 { Order::Ab } else { Order::Ba }]
            }
        }
    }

    /// Labels one example. Failures are recorded in the judgment, never raised, and
    /// the calls that did succeed are counted either way.
    pub async fn label(&self, example: &Example) -> Judgment {
        let started = Instant::now();
        let orders = self.orders(example);
        let results = all(
            self.sequential,
            orders
                .iter()
                .map(|&order| self.label_order(example, order))
                .collect(),
        )
        .await;

        let mut cost = Cost::default();
        let mut judged = Vec::new();
        let mut failure = None;
        for (result, order_cost) in results {
            cost.absorb(order_cost);
            match result {
                Ok(order) => judged.push(order),
                Err(error) => failure = failure.or(Some(error)),
            }
        }
        let p_a = match failure {
            None => Some(combine(&judged, self.polarity)),
            Some(_) => None,
        };
        let ai = p_a.map(choice);
        Judgment {
            cell: self.cell.id.clone(),
            cell_name: self.cell.name.clone(),
            example: example.id.clone(),
            orders: judged,
            p_a,
            ai,
            human: example.label,
            score: ai.map(|ai| agreement(ai, example.label)),
            longer: longer(example),
            human_confidence: example
                .meta
                .get("confidence")
                .and_then(serde_json::Value::as_f64),
            calls: cost.calls,
            usage: cost.usage,
            call_keys: cost.call_keys,
            paid_calls: cost.paid_calls,
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            failure,
        }
    }

    async fn label_order(&self, example: &Example, order: Order) -> Step<OrderJudgment> {
        let prompt = match self.prompts.render(example, order) {
            Ok(prompt) => prompt,
            Err(error) => {
                let failure = Failure {
                    kind: "template".to_owned(),
                    message: error.to_string(),
                };
                return (Err(failure), Cost::default());
            }
        };
        let truth = Truth {
            example_id: example.id.clone(),
            preferred_slot: self.polarity.choice_digit(example.label, order),
        };
        let steps = if self.cell.settings.cot {
            let count = self.cell.settings.self_consistency.samples;
            if count > 1 && self.labeler.labeler().capabilities().batches_samples {
                self.cot_samples_together(&prompt, count, &truth).await
            } else {
                // Every sample runs to its end even if one fails, so that what was paid
                // for is cached and counted.
                let samples = (0..count)
                    .map(|sample| self.cot_sample(&prompt, sample, &truth))
                    .collect();
                all(self.sequential, samples).await
            }
        } else {
            vec![self.score(prompt.scoring_text(), None, &truth).await]
        };
        let mut cost = Cost::default();
        let mut judged = Vec::with_capacity(steps.len());
        let mut failure = None;
        for (result, step_cost) in steps {
            cost.absorb(step_cost);
            match result {
                Ok(sample) => judged.push(sample),
                Err(error) => failure = failure.or(Some(error)),
            }
        }
        if let Some(failure) = failure {
            return (Err(failure), cost);
        }
        let p_first = judged.iter().map(|s| s.p_first).sum::<f64>() / judged.len() as f64;
        let judged = OrderJudgment {
            order,
            p_first,
            samples: judged,
        };
        (Ok(judged), cost)
    }

    /// One chain-of-thought sample: generate a rationale, then score after it.
    async fn cot_sample(
        &self,
        prompt: &Prompt,
        sample: u32,
        truth: &Truth,
    ) -> Step<SampleJudgment> {
        let request = self.rationale_request(prompt, sample);
        match self.labeler.generate(&request, truth).await {
            Ok(generated) => self.score_after(prompt, generated, truth).await,
            Err(error) => (Err(failure(&error)), Cost::default()),
        }
    }

    /// Every sample's rationale from one call to a labeler that decodes them together,
    /// then each sample scored after its rationale.
    async fn cot_samples_together(
        &self,
        prompt: &Prompt,
        count: u32,
        truth: &Truth,
    ) -> Vec<Step<SampleJudgment>> {
        let requests: Vec<GenerateRequest> = (0..count)
            .map(|sample| self.rationale_request(prompt, sample))
            .collect();
        match self.labeler.generate_samples(&requests, truth).await {
            Ok(generated) => {
                let scored = generated
                    .into_iter()
                    .map(|generated| self.score_after(prompt, generated, truth))
                    .collect();
                all(self.sequential, scored).await
            }
            Err(error) => vec![(Err(failure(&error)), Cost::default())],
        }
    }

    fn rationale_request(&self, prompt: &Prompt, sample: u32) -> GenerateRequest {
        let sc = self.cell.settings.self_consistency;
        let greedy = sc.temperature == 0.0;
        GenerateRequest {
            prompt: prompt.generation_text().unwrap_or_default(),
            max_tokens: self.max_rationale_tokens,
            temperature: sc.temperature,
            // Greedy decoding has one answer whatever the sample, seed or top-k: every
            // greedy rationale of a prompt shares one cache entry.
            top_k: if greedy { 0 } else { self.top_k },
            sample: if greedy { 0 } else { sample },
            seed: if greedy { 0 } else { self.seed },
            stop: stops(&prompt.ending, &self.rationale_stop),
        }
    }

    /// Scores the preference after a generated rationale; the step costs both calls.
    async fn score_after(
        &self,
        prompt: &Prompt,
        generated: Answered<Generation>,
        truth: &Truth,
    ) -> Step<SampleJudgment> {
        let answer = &generated.answer;
        let rationale = scored_rationale(prompt, &answer.text, &self.rationale_stop);
        let capped = ran_out_of_tokens(answer, &stops(&prompt.ending, &self.rationale_stop));
        let text = prompt.scoring_text_after(&rationale);
        let (mut judged, mut cost) = self.score(text, Some(rationale), truth).await;
        if let Ok(judged) = &mut judged {
            judged.rationale_capped = capped;
        }
        cost.add(&generated, generated.answer.usage);
        (judged, cost)
    }

    async fn score(
        &self,
        prompt: String,
        rationale: Option<String>,
        truth: &Truth,
    ) -> Step<SampleJudgment> {
        let request = ScoreRequest {
            prompt,
            alternatives: self.alternatives,
        };
        let scored = match self.labeler.score(&request, truth).await {
            Ok(scored) => scored,
            Err(error) => return (Err(failure(&error)), Cost::default()),
        };
        let mut cost = Cost::default();
        cost.add(&scored, scored.answer.usage);
        let judged = read_preference(&scored.answer.scored).map(|mut judged| {
            judged.rationale = rationale;
            judged
        });
        (judged, cost)
    }
}

/// The outcome of a step of the procedure, with what its calls cost whatever the outcome.
type Step<T> = (Result<T, Failure>, Cost);

/// Awaits every future: one after another for a labeler that serves one request at a
/// time, else all at once.
async fn all<F: Future>(sequential: bool, futures: Vec<F>) -> Vec<F::Output> {
    if sequential {
        let mut outputs = Vec::with_capacity(futures.len());
        for future in futures {
            outputs.push(future.await);
        }
        outputs
    } else {
        futures::future::join_all(futures).await
    }
}

/// The prompt's ending, then the labeler's own stops that differ from it: a repeat
/// would change the request, and so its cache key, without changing the answer.
fn stops(ending: &str, rationale_stop: &[String]) -> Vec<String> {
    std::iter::once(ending)
        .chain(
            rationale_stop
                .iter()
                .map(String::as_str)
                .filter(|&stop| stop != ending),
        )
        .map(str::to_owned)
        .collect()
}

/// A generated rationale as the scoring prompt carries it: cut at the first stop, then
/// at the prompt's ending, without trailing space.
pub fn scored_rationale(prompt: &Prompt, generated: &str, stops: &[String]) -> String {
    prompt
        .clean_rationale(before_stop(generated, stops))
        .to_owned()
}

/// Whether `generation` ended because it ran out of tokens; `None` where the backend did
/// not say. A text that holds one of `stops` ended there, whatever a server that ignores
/// stop strings reports.
fn ran_out_of_tokens(generation: &Generation, stops: &[String]) -> Option<bool> {
    let reason = generation.finish_reason.as_deref()?;
    Some(reason == "length" && first_stop(&generation.text, stops).is_none())
}

/// `text` up to the first of `stops`: a server that ignores stop strings must not carry
/// what follows into the scoring prompt.
fn before_stop<'t>(text: &'t str, stops: &[String]) -> &'t str {
    &text[..first_stop(text, stops).unwrap_or(text.len())]
}

fn failure(error: &CallError) -> Failure {
    Failure {
        kind: error.kind().to_owned(),
        message: error.to_string(),
    }
}

/// The labeler's preference between slot 1 and slot 2 from one scoring answer.
///
/// Log-prob mode sums the probability of every variant of a choice token (`"1"`,
/// `" 1"`); a choice token missing from the returned alternatives is given the smallest
/// returned probability (an upper bound on its true mass) and recorded as missing.
pub fn read_preference(scored: &Scored) -> Result<SampleJudgment, Failure> {
    match scored {
        Scored::Logprobs { top } => {
            // Log-probabilities of each choice's variants, summed in log space so that
            // very small values (vLLM writes -9999 for -inf) never underflow to 0/0.
            let mut logs: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
            for (token, logprob) in top {
                if let Some(index) = CHOICES.iter().position(|c| *c == token.trim())
                    && logprob.is_finite()
                {
                    logs[index].push(*logprob);
                }
            }
            let present = [!logs[0].is_empty(), !logs[1].is_empty()];
            let floor = top
                .iter()
                .map(|(_, logprob)| *logprob)
                .filter(|logprob| logprob.is_finite())
                .fold(f64::INFINITY, f64::min);
            if !present[0] && !present[1] {
                return Err(Failure {
                    kind: "no_choice_token".to_owned(),
                    message: format!(
                        "neither \"1\" nor \"2\" is among the {} alternatives returned",
                        top.len()
                    ),
                });
            }
            let mut missing = Vec::new();
            let mut log_mass = [0.0f64; 2];
            for index in 0..2 {
                if present[index] {
                    log_mass[index] = log_sum_exp(&logs[index]);
                } else {
                    log_mass[index] = floor;
                    missing.push(CHOICES[index].to_owned());
                }
            }
            // Softmax over the two: 1 / (1 + e^(l2 - l1)).
            let p_first = 1.0 / (1.0 + (log_mass[1] - log_mass[0]).exp());
            if !p_first.is_finite() {
                return Err(Failure {
                    kind: "no_choice_token".to_owned(),
                    message: "the choice tokens' log-probabilities are not numbers".to_owned(),
                });
            }
            Ok(SampleJudgment {
                rationale: None,
                rationale_capped: None,
                p_first,
                choice_mass: log_sum_exp(&log_mass).exp().min(1.0),
                missing,
            })
        }
        Scored::Votes {
            first,
            second,
            neither,
        } => {
            let counted = first + second;
            if counted == 0 {
                return Err(Failure {
                    kind: "no_choice_token".to_owned(),
                    message: format!("none of the {neither} sampled answers named 1 or 2"),
                });
            }
            Ok(SampleJudgment {
                rationale: None,
                rationale_capped: None,
                p_first: f64::from(*first) / f64::from(counted),
                choice_mass: f64::from(counted) / f64::from(counted + neither),
                missing: Vec::new(),
            })
        }
    }
}

/// ln(Σ e^x) without overflow or underflow.
fn log_sum_exp(values: &[f64]) -> f64 {
    let largest = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !largest.is_finite() {
        return largest;
    }
    largest + values.iter().map(|x| (x - largest).exp()).sum::<f64>().ln()
}

/// The probability that response a is preferred: each order's `p_first` mapped back to
/// (a, b) through the order and the polarity, then averaged.
pub fn combine(orders: &[OrderJudgment], polarity: Polarity) -> f64 {
    let per_order = orders.iter().map(|judged| {
        // The probability that slot 1 holds the preferred response.
        let p_slot1_preferred = match polarity {
            Polarity::Normal => judged.p_first,
            Polarity::Inverted => 1.0 - judged.p_first,
        };
        match judged.order {
            Order::Ab => p_slot1_preferred,
            Order::Ba => 1.0 - p_slot1_preferred,
        }
    });
    per_order.sum::<f64>() / orders.len().max(1) as f64
}

/// The side with probability above one half; exactly one half is a tie.
pub fn choice(p_a: f64) -> Label {
    if p_a > 0.5 {
        Label::A
    } else if p_a < 0.5 {
        Label::B
    } else {
        Label::Tie
    }
}

/// 1 when the AI agrees with people, 0 when it disagrees, 0.5 when either says tie
/// (and 1 when both do).
pub fn agreement(ai: Label, human: Label) -> f64 {
    match (ai, human) {
        (ai, human) if ai == human => 1.0,
        (Label::Tie, _) | (_, Label::Tie) => 0.5,
        _ => 0.0,
    }
}

/// The longer response by characters.
pub fn longer(example: &Example) -> Option<Label> {
    let (a, b) = (
        example.response_a.chars().count(),
        example.response_b.chars().count(),
    );
    match a.cmp(&b) {
        std::cmp::Ordering::Greater => Some(Label::A),
        std::cmp::Ordering::Less => Some(Label::B),
        std::cmp::Ordering::Equal => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_labeler_that_cannot_answer_stops_the_run_and_is_retried_on_resume() {
        let failure = |kind: &str| Failure {
            kind: kind.to_owned(),
            message: "m".to_owned(),
        };
        for kind in ["connect", "unauthorized", "not_found", "worker_stopped"] {
            assert!(failure(kind).stop().is_some(), "{kind} stops");
            assert!(!failure(kind).is_permanent(), "{kind} is retried");
        }
        for kind in [
            "rate_limited",
            "server_error",
            "timeout",
            "malformed",
            "cancelled",
        ] {
            assert!(failure(kind).stop().is_none(), "{kind} goes on");
            assert!(!failure(kind).is_permanent(), "{kind} is retried");
        }
        for kind in [
            "rejected",
            "no_logprobs",
            "unsupported",
            "model",
            "unparsed",
        ] {
            assert!(failure(kind).stop().is_none(), "{kind} goes on");
            assert!(failure(kind).is_permanent(), "{kind} is kept");
        }
    }

    fn logprobs(pairs: &[(&str, f64)]) -> Scored {
        Scored::Logprobs {
            top: pairs
                .iter()
                .map(|(token, p)| ((*token).to_owned(), p.ln()))
                .collect(),
        }
    }

    #[test]
    fn softmax_over_the_two_choices_sums_variants() {
        let judged = read_preference(&logprobs(&[
            ("1", 0.3),
            (" 1", 0.1),
            ("2", 0.2),
            ("The", 0.4),
        ]))
        .unwrap();
        assert!((judged.p_first - 0.4 / 0.6).abs() < 1e-12);
        assert!((judged.choice_mass - 0.6).abs() < 1e-12);
        assert!(judged.missing.is_empty());
    }

    #[test]
    fn a_missing_choice_is_bounded_by_the_smallest_alternative_and_recorded() {
        let judged = read_preference(&logprobs(&[("1", 0.6), ("The", 0.3), ("A", 0.05)])).unwrap();
        assert_eq!(judged.missing, ["2"]);
        assert!((judged.p_first - 0.6 / 0.65).abs() < 1e-12);
        assert!(
            judged.p_first < 1.0,
            "never a silent zero for the missing token"
        );
    }

    #[test]
    fn tiny_log_probabilities_do_not_underflow() {
        let scored = Scored::Logprobs {
            top: vec![
                ("The".into(), -0.01),
                ("1".into(), -9999.0),
                ("2".into(), -10000.0),
            ],
        };
        let judged = read_preference(&scored).unwrap();
        let expected = 1.0 / (1.0 + (-1.0f64).exp());
        assert!(
            (judged.p_first - expected).abs() < 1e-12,
            "{}",
            judged.p_first
        );
    }

    #[test]
    fn no_choice_token_at_all_is_a_failure() {
        let failure = read_preference(&logprobs(&[("The", 0.6), ("A", 0.3)])).unwrap_err();
        assert_eq!(failure.kind, "no_choice_token");
    }

    #[test]
    fn votes_estimate_the_distribution() {
        let judged = read_preference(&Scored::Votes {
            first: 3,
            second: 1,
            neither: 1,
        })
        .unwrap();
        assert_eq!(judged.p_first, 0.75);
        assert_eq!(judged.choice_mass, 0.8);
    }

    fn order(order: Order, p_first: f64) -> OrderJudgment {
        OrderJudgment {
            order,
            p_first,
            samples: vec![],
        }
    }

    #[test]
    fn debiasing_maps_orders_back_and_averages() {
        // Prefers slot 1 in both orders: pure position bias cancels to a tie.
        let biased = [order(Order::Ab, 0.9), order(Order::Ba, 0.9)];
        assert!((combine(&biased, Polarity::Normal) - 0.5).abs() < 1e-12);
        // Prefers a in both orders.
        let consistent = [order(Order::Ab, 0.8), order(Order::Ba, 0.2)];
        assert!((combine(&consistent, Polarity::Normal) - 0.8).abs() < 1e-12);
    }

    #[test]
    fn inverted_polarity_flips_the_preference() {
        // The labeler says slot 1 is more harmful in order ab: b is preferred.
        let judged = [order(Order::Ab, 0.9)];
        assert!((combine(&judged, Polarity::Inverted) - 0.1).abs() < 1e-12);
        let judged = [order(Order::Ba, 0.9)];
        assert!((combine(&judged, Polarity::Inverted) - 0.9).abs() < 1e-12);
    }

    #[test]
    fn a_rationale_is_cut_before_the_first_stop_a_server_ignored() {
        let stops = ["###".to_owned(), "\n\n".to_owned()];
        assert_eq!(
            before_stop("Summary 1 is better.\n\n### Example 3", &stops),
            "Summary 1 is better."
        );
        assert_eq!(before_stop("A ### B\n\nC", &stops), "A ");
        assert_eq!(before_stop("No stop here.", &stops), "No stop here.");
        assert_eq!(before_stop("Anything", &[]), "Anything");
    }

    #[test]
    fn a_rationale_is_capped_when_it_ran_out_of_tokens_before_any_stop() {
        let stops = ["\nPreferred=".to_owned(), "###".to_owned()];
        let generation = |text: &str, reason: Option<&str>| Generation {
            text: text.to_owned(),
            usage: Usage::default(),
            finish_reason: reason.map(str::to_owned),
        };
        let looped = generation("It is good. It is good. It is", Some("length"));
        assert_eq!(ran_out_of_tokens(&looped, &stops), Some(true));
        let ended = generation("Summary 1 is shorter.", Some("stop"));
        assert_eq!(ran_out_of_tokens(&ended, &stops), Some(false));
        // A server that ignored the stops ran on past one: the rationale ended there.
        let ran_past = generation("Summary 1.\n### Example 3: a post", Some("length"));
        assert_eq!(ran_out_of_tokens(&ran_past, &stops), Some(false));
        let untold = generation("Summary 1.", None);
        assert_eq!(ran_out_of_tokens(&untold, &stops), None);
    }

    #[test]
    fn a_rationale_request_stops_at_the_ending_then_at_the_labeler_s_own_stops() {
        let own = ["###".to_owned(), "\nPreferred=".to_owned()];
        assert_eq!(stops("\nPreferred=", &[]), ["\nPreferred="]);
        assert_eq!(stops("\nPreferred=", &own), ["\nPreferred=", "###"]);
    }

    #[test]
    fn tie_rule_and_agreement() {
        assert_eq!(choice(0.5), Label::Tie);
        assert_eq!(choice(0.51), Label::A);
        assert_eq!(choice(0.49), Label::B);
        assert_eq!(agreement(Label::A, Label::A), 1.0);
        assert_eq!(agreement(Label::A, Label::B), 0.0);
        assert_eq!(agreement(Label::Tie, Label::B), 0.5);
        assert_eq!(agreement(Label::B, Label::Tie), 0.5);
        assert_eq!(agreement(Label::Tie, Label::Tie), 1.0);
    }
}

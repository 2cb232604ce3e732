//! A seeded stand-in labeler with a set accuracy and position bias, for tests and
//! benchmarks. Every answer is a pure function of the seed, the example and the prompt,
//! so runs against it are reproducible; reports name it as a simulation.
//!
//! Per example it is right with probability `accuracy` (the same verdict in both
//! orders, as a labeler that understands the pair would be). Per call, with probability
//! `position_bias`, it ignores the content and picks slot 1. Its confidence in the slot
//! it picks is drawn uniformly from [0.55, 0.95].

use crate::fingerprint;
use crate::plan::estimate_tokens;

use super::{
    BoxFuture, CallError, Capabilities, GenerateRequest, Generation, Labeler, ScoreRequest, Scored,
    Scoring, Truth, Usage,
};

#[derive(Debug, Clone)]
pub struct Simulated {
    accuracy: f64,
    position_bias: f64,
    seed: u64,
    identity: String,
}

impl Simulated {
    pub fn new(accuracy: f64, position_bias: f64, seed: u64) -> Simulated {
        Simulated {
            accuracy,
            position_bias,
            seed,
            identity: format!(
                "simulated:accuracy={accuracy}:position_bias={position_bias}:seed={seed}"
            ),
        }
    }

    /// A uniform draw in [0, 1) named by `parts`.
    fn uniform(&self, parts: &[&str]) -> f64 {
        let key = format!("{}\u{1f}{}", self.seed, parts.join("\u{1f}"));
        (fingerprint::hash_u64(key) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The probability that slot 1 is preferred, for this prompt.
    pub fn p_first(&self, prompt: &str, truth: &Truth) -> f64 {
        let confidence = 0.55 + 0.4 * self.uniform(&["confidence", prompt]);
        let slot = if self.uniform(&["position", prompt]) < self.position_bias {
            1
        } else {
            let correct = self.uniform(&["correct", &truth.example_id]) < self.accuracy;
            match truth.preferred_slot {
                Some(preferred) if correct => preferred,
                Some(preferred) => 3 - preferred,
                None if self.uniform(&["tie", prompt]) < 0.5 => 1,
                None => 2,
            }
        };
        if slot == 1 {
            confidence
        } else {
            1.0 - confidence
        }
    }
}

impl Labeler for Simulated {
    fn identity(&self) -> &str {
        &self.identity
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            logprobs: true,
            sampling: true,
            parsed: false,
            // As the embedded labeler does, so that runs tested without a model take
            // the samples' one-call path.
            batches_samples: true,
        }
    }

    fn preflight(&self) -> BoxFuture<'_, Result<(), CallError>> {
        Box::pin(async { Ok(()) })
    }

    fn score<'a>(
        &'a self,
        request: &'a ScoreRequest,
        truth: &'a Truth,
    ) -> BoxFuture<'a, Result<Scoring, CallError>> {
        Box::pin(async move {
            let p_first = self.p_first(&request.prompt, truth);
            let mut top = vec![
                ("1".to_owned(), p_first.ln()),
                ("2".to_owned(), (1.0 - p_first).ln()),
            ];
            top.sort_by(|a, b| b.1.total_cmp(&a.1));
            Ok(Scoring {
                scored: Scored::Logprobs { top },
                usage: Usage {
                    prompt_tokens: estimate_tokens(&request.prompt),
                    completion_tokens: 1,
                },
            })
        })
    }

    fn generate<'a>(
        &'a self,
        request: &'a GenerateRequest,
        _truth: &'a Truth,
    ) -> BoxFuture<'a, Result<Generation, CallError>> {
        Box::pin(async move {
            let mut text = format!(
                " Simulated rationale {} (temperature {}).",
                request.sample, request.temperature
            );
            // Cut as a model that runs out of tokens is cut: at the cap, which estimates
            // tokens as four characters each.
            let fits = estimate_tokens(&text) <= u64::from(request.max_tokens);
            if !fits {
                text = text.chars().take(request.max_tokens as usize * 4).collect();
            }
            Ok(Generation {
                usage: Usage {
                    prompt_tokens: estimate_tokens(&request.prompt),
                    completion_tokens: estimate_tokens(&text),
                },
                text,
                finish_reason: Some(if fits { "stop" } else { "length" }.to_owned()),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth(id: usize, slot: u8) -> Truth {
        Truth {
            example_id: format!("ex-{id}"),
            preferred_slot: Some(slot),
        }
    }

    #[test]
    fn accuracy_is_what_was_set() {
        let labeler = Simulated::new(0.8, 0.0, 1);
        let n = 4000;
        let right = (0..n)
            .filter(|&i| labeler.p_first(&format!("prompt {i}"), &truth(i, 1)) > 0.5)
            .count();
        let rate = right as f64 / n as f64;
        assert!((rate - 0.8).abs() < 0.03, "{rate}");
    }

    #[test]
    fn position_bias_picks_the_first_slot() {
        let labeler = Simulated::new(1.0, 1.0, 1);
        assert!(labeler.p_first("p", &truth(0, 2)) > 0.5);
        let unbiased = Simulated::new(1.0, 0.0, 1);
        assert!(unbiased.p_first("p", &truth(0, 2)) < 0.5);
    }

    #[test]
    fn answers_are_reproducible_and_seeded() {
        let one = Simulated::new(0.7, 0.2, 5);
        let again = Simulated::new(0.7, 0.2, 5);
        let other = Simulated::new(0.7, 0.2, 6);
        let p = |l: &Simulated, i| l.p_first(&format!("q{i}"), &truth(i, 1));
        assert!((0..50).all(|i| p(&one, i) == p(&again, i)));
        assert!((0..50).any(|i| p(&one, i) != p(&other, i)));
    }

    #[tokio::test]
    async fn a_rationale_longer_than_its_cap_is_cut_there_and_says_so() {
        let labeler = Simulated::new(0.7, 0.0, 1);
        let request = |max_tokens| GenerateRequest {
            prompt: "Rationale:".to_owned(),
            max_tokens,
            temperature: 0.0,
            top_k: 0,
            sample: 0,
            seed: 0,
            stop: vec![],
        };
        let whole = labeler.generate(&request(512), &truth(0, 1)).await.unwrap();
        assert_eq!(whole.finish_reason.as_deref(), Some("stop"));
        assert_eq!(whole.text, " Simulated rationale 0 (temperature 0).");
        let cut = labeler.generate(&request(3), &truth(0, 1)).await.unwrap();
        assert_eq!(cut.finish_reason.as_deref(), Some("length"));
        assert_eq!(cut.text, " Simulated r");
        assert_eq!(cut.usage.completion_tokens, 3);
    }
}

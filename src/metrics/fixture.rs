//! Hand-made judgments for the metrics and report tests (test builds only).

use crate::backend::Usage;
use crate::data::Label;
use crate::procedure::{Failure, Judgment, OrderJudgment, SampleJudgment, agreement, choice};
use crate::prompt::Order;

/// A successful judgment of `example` with preference `p_a` for response a, one call
/// per order and no orders recorded (add them with [`with_orders`]).
pub(crate) fn judged(example: &str, p_a: f64, human: Label) -> Judgment {
    let ai = choice(p_a);
    Judgment {
        cell: "cell".to_owned(),
        cell_name: "cell".to_owned(),
        example: example.to_owned(),
        orders: Vec::new(),
        p_a: Some(p_a),
        ai: Some(ai),
        human,
        score: Some(agreement(ai, human)),
        longer: None,
        human_confidence: None,
        calls: 2,
        usage: Usage {
            prompt_tokens: 100,
            completion_tokens: 2,
        },
        call_keys: vec![format!("{example}-ab"), format!("{example}-ba")],
        paid_calls: 2,
        latency_ms: 10,
        failure: None,
    }
}

/// A judgment whose AI choice agrees with people (`correct`) or not, on a human "a".
pub(crate) fn scored(example: &str, correct: bool) -> Judgment {
    judged(example, if correct { 0.8 } else { 0.2 }, Label::A)
}

/// `judgment` with the given raw order distributions.
pub(crate) fn with_orders(mut judgment: Judgment, orders: &[(Order, f64)]) -> Judgment {
    judgment.orders = orders
        .iter()
        .map(|&(order, p_first)| OrderJudgment {
            order,
            p_first,
            samples: Vec::new(),
        })
        .collect();
    judgment
}

/// `judgment` with one order whose samples carry `rationales` (`None`: no CoT).
pub(crate) fn with_rationales(mut judgment: Judgment, rationales: &[Option<&str>]) -> Judgment {
    let sample = |rationale: &Option<&str>| SampleJudgment {
        rationale: rationale.map(str::to_owned),
        rationale_capped: None,
        p_first: 0.5,
        choice_mass: 1.0,
        missing: Vec::new(),
    };
    judgment.orders = vec![OrderJudgment {
        order: Order::Ab,
        p_first: 0.5,
        samples: rationales.iter().map(sample).collect(),
    }];
    judgment
}

/// `judgment` with its samples' `rationale_capped` set, order after order.
pub(crate) fn with_capped(mut judgment: Judgment, capped: &[Option<bool>]) -> Judgment {
    let samples = judgment
        .orders
        .iter_mut()
        .flat_map(|order| &mut order.samples);
    for (sample, &capped) in samples.zip(capped) {
        sample.rationale_capped = capped;
    }
    judgment
}

/// `judgment` with a known longer response.
pub(crate) fn with_longer(mut judgment: Judgment, longer: Label) -> Judgment {
    judgment.longer = Some(longer);
    judgment
}

/// A failed judgment of `example`: no preference, one call spent.
pub(crate) fn failed(example: &str, kind: &str) -> Judgment {
    Judgment {
        p_a: None,
        ai: None,
        score: None,
        calls: 1,
        call_keys: vec![format!("{example}-ab")],
        paid_calls: 1,
        failure: Some(Failure {
            kind: kind.to_owned(),
            message: format!("{kind} happened"),
        }),
        ..judged(example, 0.5, Label::A)
    }
}

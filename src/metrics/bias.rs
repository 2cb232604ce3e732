//! Position and length bias of a labeler, read from its judgments.
//!
//! Position bias uses each order's distribution before debiasing (`p_first`, the
//! probability of answering "1", turned into a preference for slot 1 through the task's
//! polarity: answering "1" to "which is more harmful" prefers slot 2): a labeler that
//! prefers the same slot in both orders is choosing a position, not a response — the
//! paper's "% same position preferred". Length bias compares the AI choice with the longer response, beside the
//! human rate on the same examples. Limits: examples shown in one order only carry no
//! position-bias signal and are left out of it; a raw probability of exactly one half
//! prefers no slot and is left out too.

use crate::data::Label;
use crate::metrics::Judged;
use crate::prompt::{Order, Polarity};

/// How often a labeler prefers the same slot in both orders.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct PositionBias {
    /// Share of examples whose preferred slot is the same in both orders.
    pub share: Option<f64>,
    /// Among those biased examples, the share where the slot is "1".
    pub direction: Option<f64>,
    /// Examples with both orders judged and a preferred slot in each.
    pub examples: usize,
}

/// The slot a raw distribution prefers: 1 above one half, 2 below, none at one half.
fn preferred_slot(p_first: f64) -> Option<u8> {
    if p_first > 0.5 {
        Some(1)
    } else if p_first < 0.5 {
        Some(2)
    } else {
        None
    }
}

/// The probability that slot 1 is preferred, from the answer's `p_first`.
fn slot1_preferred(p_first: f64, polarity: Polarity) -> f64 {
    match polarity {
        Polarity::Normal => p_first,
        Polarity::Inverted => 1.0 - p_first,
    }
}

/// The probability that slot 1 is preferred in the first judged `order`.
fn order_p_first(judgment: &impl Judged, order: Order, polarity: Polarity) -> Option<f64> {
    judgment
        .order_p_first(order)
        .map(|p_first| slot1_preferred(p_first, polarity))
}

/// Position bias over `judgments` (each one example).
pub(crate) fn position_bias<J: Judged>(judgments: &[&J], polarity: Polarity) -> PositionBias {
    let (mut examples, mut same, mut first) = (0usize, 0usize, 0usize);
    for judgment in judgments {
        let slots = (
            order_p_first(*judgment, Order::Ab, polarity).and_then(preferred_slot),
            order_p_first(*judgment, Order::Ba, polarity).and_then(preferred_slot),
        );
        let (Some(ab), Some(ba)) = slots else {
            continue;
        };
        examples += 1;
        if ab == ba {
            same += 1;
            if ab == 1 {
                first += 1;
            }
        }
    }
    PositionBias {
        share: ratio(same, examples),
        direction: ratio(first, same),
        examples,
    }
}

/// Share of all order judgments whose raw distribution prefers slot "1" (before
/// debiasing); a distribution at exactly one half counts as not preferring it.
pub(crate) fn prefer_first<J: Judged>(judgments: &[&J], polarity: Polarity) -> Option<f64> {
    let orders = judgments
        .iter()
        .flat_map(|judgment| judgment.order_p_firsts());
    let (total, first) = orders.fold((0usize, 0usize), |(total, first), p_first| {
        let p_slot1 = slot1_preferred(p_first, polarity);
        (total + 1, first + usize::from(p_slot1 > 0.5))
    });
    ratio(first, total)
}

/// How often the AI and people choose the longer response.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct LengthBias {
    /// Share of examples where the AI chose the longer response.
    pub ai: Option<f64>,
    /// Share of the same examples where the human did (a human tie counts as not).
    pub human: Option<f64>,
    /// Examples where the AI chose a side and one response is longer.
    pub examples: usize,
}

/// Length bias over `judgments`: only examples where the AI chose a or b and the
/// responses differ in length count.
pub(crate) fn length_bias<J: Judged>(judgments: &[&J]) -> LengthBias {
    let (mut examples, mut ai, mut human) = (0usize, 0usize, 0usize);
    for judgment in judgments {
        let (Some(choice @ (Label::A | Label::B)), Some(longer)) =
            (judgment.ai(), judgment.longer())
        else {
            continue;
        };
        examples += 1;
        ai += usize::from(choice == longer);
        human += usize::from(judgment.human() == longer);
    }
    LengthBias {
        ai: ratio(ai, examples),
        human: ratio(human, examples),
        examples,
    }
}

/// `part / whole`, or `None` for an empty whole.
pub(crate) fn ratio(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::fixture::{judged, with_longer, with_orders};
    use crate::procedure::Judgment;

    fn two_orders(example: &str, ab: f64, ba: f64) -> Judgment {
        with_orders(
            judged(example, 0.5, Label::A),
            &[(Order::Ab, ab), (Order::Ba, ba)],
        )
    }

    #[test]
    fn position_bias_counts_examples_whose_slot_survives_the_swap() {
        let judgments = [
            two_orders("e1", 0.8, 0.7), // slot 1 both times: biased, first
            two_orders("e2", 0.2, 0.3), // slot 2 both times: biased, second
            two_orders("e3", 0.8, 0.2), // follows the response: consistent
            two_orders("e4", 0.5, 0.9), // no preferred slot in ab: left out
            with_orders(judged("e5", 0.9, Label::A), &[(Order::Ab, 0.9)]), // one order
            two_orders("e6", 0.9, 0.6), // biased, first
        ];
        let refs: Vec<&Judgment> = judgments.iter().collect();
        let bias = position_bias(&refs, Polarity::Normal);
        assert_eq!(bias.examples, 4);
        assert_eq!(bias.share, Some(0.75));
        assert_eq!(bias.direction, Some(2.0 / 3.0));
        // Orders with p_first > 0.5: e1 2, e2 0, e3 1, e4 1, e5 1, e6 2 → 7 of 11.
        assert_eq!(prefer_first(&refs, Polarity::Normal), Some(7.0 / 11.0));

        // Asked for the worse response, answering "1" prefers slot 2: the same examples
        // are biased, towards the other slot.
        let inverted = position_bias(&refs, Polarity::Inverted);
        assert_eq!(inverted.share, Some(0.75));
        assert_eq!(inverted.direction, Some(1.0 / 3.0));
        // Orders with p_first < 0.5 now prefer slot 1: e2 2, e3 1, e6 0... → 3 of 11.
        assert_eq!(prefer_first(&refs, Polarity::Inverted), Some(3.0 / 11.0));
    }

    #[test]
    fn no_two_order_examples_means_no_position_bias() {
        let judgments = [with_orders(
            judged("e1", 0.9, Label::A),
            &[(Order::Ab, 0.9)],
        )];
        let refs: Vec<&Judgment> = judgments.iter().collect();
        assert_eq!(
            position_bias(&refs, Polarity::Normal),
            PositionBias {
                share: None,
                direction: None,
                examples: 0
            }
        );
        assert_eq!(prefer_first::<Judgment>(&[], Polarity::Normal), None);
    }

    #[test]
    fn length_bias_compares_with_people_on_the_same_examples() {
        let judgments = [
            with_longer(judged("e1", 0.9, Label::A), Label::A), // ai longer, human longer
            with_longer(judged("e2", 0.9, Label::B), Label::A), // ai longer, human shorter
            with_longer(judged("e3", 0.1, Label::B), Label::A), // ai shorter, human shorter
            with_longer(judged("e4", 0.8, Label::Tie), Label::A), // ai longer, human tie
            with_longer(judged("e5", 0.5, Label::A), Label::A), // ai tie: left out
            judged("e6", 0.9, Label::A),                        // same length: left out
        ];
        let refs: Vec<&Judgment> = judgments.iter().collect();
        let bias = length_bias(&refs);
        assert_eq!(bias.examples, 4);
        assert_eq!(bias.ai, Some(0.75));
        assert_eq!(bias.human, Some(0.25));
    }
}

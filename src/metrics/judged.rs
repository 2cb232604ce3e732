//! What the metrics read of a judgment, behind one trait, so that they can be computed
//! from full [`Judgment`]s (tests, reports) or from compact [`Scored`] records (a run
//! of 100k examples keeps one of those per judgment, not the judgment).

use crate::backend::Usage;
use crate::data::Label;
use crate::metrics::RationaleCount;
use crate::procedure::{Failure, Judgment};
use crate::prompt::Order;

/// A judgment as the metrics see it.
pub trait Judged {
    /// The example's id.
    fn example(&self) -> &str;
    fn p_a(&self) -> Option<f64>;
    fn score(&self) -> Option<f64>;
    fn ai(&self) -> Option<Label>;
    fn human(&self) -> Label;
    fn longer(&self) -> Option<Label>;
    fn human_confidence(&self) -> Option<f64>;
    /// The labeler's raw `p_first` in the first judged `order`, if it was judged.
    fn order_p_first(&self, order: Order) -> Option<f64>;
    /// Every judged order's raw `p_first`, in the order they were judged.
    fn order_p_firsts(&self) -> impl Iterator<Item = f64>;
    fn calls(&self) -> u32;
    fn usage(&self) -> Usage;
    fn failure_kind(&self) -> Option<&str>;
    /// The calls' cache keys, as numbers (see [`call_key_number`]).
    fn call_keys(&self) -> impl Iterator<Item = u64>;
    /// What the samples' chain-of-thought rationales hold.
    fn rationales(&self) -> RationaleCount;
}

/// A call key (16 hex digits of a SHA-256) as the number it spells; any other text, as
/// the first 8 bytes of its own SHA-256.
pub fn call_key_number(key: &str) -> u64 {
    match u64::from_str_radix(key, 16) {
        Ok(number) if key.len() == 16 => number,
        _ => crate::fingerprint::hash_u64(key),
    }
}

impl Judged for Judgment {
    fn example(&self) -> &str {
        &self.example
    }
    fn p_a(&self) -> Option<f64> {
        self.p_a
    }
    fn score(&self) -> Option<f64> {
        self.score
    }
    fn ai(&self) -> Option<Label> {
        self.ai
    }
    fn human(&self) -> Label {
        self.human
    }
    fn longer(&self) -> Option<Label> {
        self.longer
    }
    fn human_confidence(&self) -> Option<f64> {
        self.human_confidence
    }
    fn order_p_first(&self, order: Order) -> Option<f64> {
        self.orders
            .iter()
            .find(|judged| judged.order == order)
            .map(|judged| judged.p_first)
    }
    fn order_p_firsts(&self) -> impl Iterator<Item = f64> {
        self.orders.iter().map(|judged| judged.p_first)
    }
    fn calls(&self) -> u32 {
        self.calls
    }
    fn usage(&self) -> Usage {
        self.usage
    }
    fn failure_kind(&self) -> Option<&str> {
        self.failure.as_ref().map(|failure| failure.kind.as_str())
    }
    fn call_keys(&self) -> impl Iterator<Item = u64> {
        self.call_keys.iter().map(|key| call_key_number(key))
    }
    fn rationales(&self) -> RationaleCount {
        RationaleCount::of(self)
    }
}

/// Everything the metrics read of one judgment, in about a third of its memory: no
/// cell name, samples, rationale texts (only their counts) or failure message, and call
/// keys as numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    example: Box<str>,
    p_a: Option<f64>,
    score: Option<f64>,
    human_confidence: Option<f64>,
    /// Each order's raw `p_first` (the first judged, where one was judged twice), in
    /// the order the orders were judged.
    orders: [Option<(Order, f64)>; 2],
    ai: Option<Label>,
    human: Label,
    longer: Option<Label>,
    calls: u32,
    usage: Usage,
    failure_kind: Option<Box<str>>,
    call_keys: Box<[u64]>,
    rationales: RationaleCount,
}

impl Scored {
    /// Whether the judgment failed for a reason that would fail again.
    pub fn failed_permanently(&self) -> bool {
        self.failure_kind
            .as_deref()
            .is_some_and(Failure::kind_is_permanent)
    }
}

impl From<&Judgment> for Scored {
    fn from(judgment: &Judgment) -> Scored {
        // The first judgment of each order, in the order they were judged.
        let mut orders: [Option<(Order, f64)>; 2] = [None; 2];
        let mut filled = 0;
        for judged in &judgment.orders {
            let seen = orders[..filled]
                .iter()
                .flatten()
                .any(|&(order, _)| order == judged.order);
            if !seen && filled < orders.len() {
                orders[filled] = Some((judged.order, judged.p_first));
                filled += 1;
            }
        }
        Scored {
            example: judgment.example.as_str().into(),
            p_a: judgment.p_a,
            score: judgment.score,
            human_confidence: judgment.human_confidence,
            orders,
            ai: judgment.ai,
            human: judgment.human,
            longer: judgment.longer,
            calls: judgment.calls,
            usage: judgment.usage,
            failure_kind: judgment
                .failure
                .as_ref()
                .map(|failure| failure.kind.as_str().into()),
            call_keys: Judged::call_keys(judgment).collect(),
            rationales: RationaleCount::of(judgment),
        }
    }
}

impl Judged for Scored {
    fn example(&self) -> &str {
        &self.example
    }
    fn p_a(&self) -> Option<f64> {
        self.p_a
    }
    fn score(&self) -> Option<f64> {
        self.score
    }
    fn ai(&self) -> Option<Label> {
        self.ai
    }
    fn human(&self) -> Label {
        self.human
    }
    fn longer(&self) -> Option<Label> {
        self.longer
    }
    fn human_confidence(&self) -> Option<f64> {
        self.human_confidence
    }
    fn order_p_first(&self, order: Order) -> Option<f64> {
        self.orders
            .iter()
            .flatten()
            .find(|(judged, _)| *judged == order)
            .map(|&(_, p_first)| p_first)
    }
    fn order_p_firsts(&self) -> impl Iterator<Item = f64> {
        self.orders.iter().flatten().map(|&(_, p_first)| p_first)
    }
    fn calls(&self) -> u32 {
        self.calls
    }
    fn usage(&self) -> Usage {
        self.usage
    }
    fn failure_kind(&self) -> Option<&str> {
        self.failure_kind.as_deref()
    }
    fn call_keys(&self) -> impl Iterator<Item = u64> {
        self.call_keys.iter().copied()
    }
    fn rationales(&self) -> RationaleCount {
        self.rationales
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::fixture::{failed, judged};

    fn same_view(full: &Judgment) {
        let scored = Scored::from(full);
        assert_eq!(scored.example(), full.example());
        assert_eq!(scored.p_a(), full.p_a());
        assert_eq!(scored.score(), full.score());
        assert_eq!(scored.ai(), full.ai());
        assert_eq!(scored.human(), full.human());
        assert_eq!(scored.longer(), full.longer());
        assert_eq!(scored.human_confidence(), full.human_confidence());
        for order in [Order::Ab, Order::Ba] {
            assert_eq!(scored.order_p_first(order), full.order_p_first(order));
        }
        assert_eq!(
            scored.order_p_firsts().collect::<Vec<_>>(),
            full.order_p_firsts().collect::<Vec<_>>()
        );
        assert_eq!(scored.calls(), full.calls());
        assert_eq!(scored.usage(), full.usage());
        assert_eq!(scored.failure_kind(), full.failure_kind());
        assert_eq!(
            scored.call_keys().collect::<Vec<_>>(),
            Judged::call_keys(full).collect::<Vec<_>>()
        );
        assert_eq!(scored.rationales(), full.rationales());
    }

    #[test]
    fn a_scored_record_reads_as_its_judgment() {
        let mut both = judged("e1", 0.8, Label::A);
        both.call_keys = vec!["0123456789abcdef".into(), "k2".into()];
        same_view(&both);
        let mut reversed = both.clone();
        reversed.orders.reverse();
        same_view(&reversed);
        let mut one = both;
        one.orders.truncate(1);
        same_view(&one);
        same_view(&failed("e2", "timeout"));
    }

    #[test]
    fn hex_call_keys_are_their_own_numbers() {
        assert_eq!(call_key_number("00000000000000ff"), 255);
        assert_ne!(call_key_number("k1"), call_key_number("k2"));
    }
}

//! Chain-of-thought rationales: did the labeler write one, and did it end?
//!
//! A CoT cell scores the preference after the labeler's own rationale. A small model
//! often ends its rationale at once, and then the cell scores the prompt's cue, not
//! reasoning; the share of samples with a written rationale says how much of a CoT cell
//! is chain of thought. Another often never ends it, repeating a sentence until the
//! token cap cuts it; the share of capped rationales says how much of the cell scored a
//! cut-off text. Limits: length is counted in characters of the rationale as
//! scored, whitespace trimmed, not in tokens (a judgment records tokens per example, not
//! per sample).

use crate::metrics::Judged;
use crate::procedure::Judgment;

/// The rationales of one judgment's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RationaleCount {
    /// Samples that generated a rationale (chain-of-thought samples), written or empty.
    pub samples: u32,
    /// Of those, the samples whose rationale has more than whitespace.
    pub written: u32,
    /// Characters of the written rationales, whitespace trimmed.
    pub chars: u64,
    /// Samples whose record says whether their rationale ran out of tokens.
    pub reported: u32,
    /// Of those, the samples whose rationale did.
    pub capped: u32,
}

impl RationaleCount {
    /// Counts the rationales of every sample of every order of `judgment`.
    pub fn of(judgment: &Judgment) -> RationaleCount {
        let mut count = RationaleCount::default();
        let samples = judgment.orders.iter().flat_map(|order| &order.samples);
        for sample in samples {
            let Some(rationale) = sample.rationale.as_deref() else {
                continue;
            };
            count.samples += 1;
            let text = rationale.trim();
            if !text.is_empty() {
                count.written += 1;
                count.chars += text.chars().count() as u64;
            }
            if let Some(capped) = sample.rationale_capped {
                count.reported += 1;
                count.capped += u32::from(capped);
            }
        }
        count
    }
}

impl std::ops::AddAssign for RationaleCount {
    fn add_assign(&mut self, other: RationaleCount) {
        self.samples += other.samples;
        self.written += other.written;
        self.chars += other.chars;
        self.reported += other.reported;
        self.capped += other.capped;
    }
}

/// What a cell's labeler wrote before its answers.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Rationales {
    /// Share of chain-of-thought samples with a written rationale; `None` when no
    /// judgment holds a chain-of-thought sample.
    pub written: Option<f64>,
    /// Mean characters of the written rationales; `None` when none was written.
    pub mean_chars: Option<f64>,
    /// Share of the chain-of-thought samples that say whether their rationale ran out
    /// of tokens, whose rationale did; `None` when none says.
    pub capped: Option<f64>,
}

/// The rationales over `judgments`.
pub(crate) fn rationales<J: Judged>(judgments: &[&J]) -> Rationales {
    let mut total = RationaleCount::default();
    for judgment in judgments {
        total += judgment.rationales();
    }
    Rationales {
        written: (total.samples > 0).then(|| f64::from(total.written) / f64::from(total.samples)),
        mean_chars: (total.written > 0).then(|| total.chars as f64 / f64::from(total.written)),
        capped: (total.reported > 0).then(|| f64::from(total.capped) / f64::from(total.reported)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Label;
    use crate::metrics::Scored;
    use crate::metrics::fixture::{judged, with_capped};

    fn with_rationales(example: &str, rationales: &[Option<&str>]) -> Judgment {
        crate::metrics::fixture::with_rationales(judged(example, 0.7, Label::A), rationales)
    }

    #[test]
    fn empty_and_blank_rationales_are_not_written() {
        let judgment = with_rationales(
            "x",
            &[Some("Summary 1 is clearer. "), Some(""), Some(" \n")],
        );
        assert_eq!(
            RationaleCount::of(&judgment),
            RationaleCount {
                samples: 3,
                written: 1,
                chars: 21,
                reported: 0,
                capped: 0,
            }
        );
    }

    #[test]
    fn characters_not_bytes_are_counted() {
        let judgment = with_rationales("x", &[Some("née")]);
        assert_eq!(RationaleCount::of(&judgment).chars, 3);
    }

    #[test]
    fn a_cell_without_chain_of_thought_has_no_rationale_share() {
        let direct = with_rationales("x", &[None, None]);
        assert_eq!(rationales(&[&direct]), Rationales::default());
    }

    #[test]
    fn shares_and_lengths_pool_the_samples_of_every_judgment() {
        let one = with_rationales("x", &[Some("abcd"), Some("")]);
        let two = with_rationales("y", &[Some("ab"), Some("")]);
        let pooled = rationales(&[&one, &two]);
        assert_eq!(pooled.written, Some(0.5));
        assert_eq!(pooled.mean_chars, Some(3.0));
        let none_written = with_rationales("z", &[Some(""), Some(" ")]);
        let silent = rationales(&[&none_written]);
        assert_eq!((silent.written, silent.mean_chars), (Some(0.0), None));
    }

    #[test]
    fn the_capped_share_counts_only_samples_that_say_why_they_ended() {
        let one = with_capped(
            with_rationales("x", &[Some("a a a a"), Some("b."), Some("c")]),
            &[Some(true), Some(false), None],
        );
        let two = with_capped(
            with_rationales("y", &[Some("d d d"), None]),
            &[Some(true), None],
        );
        let count = RationaleCount::of(&one);
        assert_eq!((count.samples, count.reported, count.capped), (3, 2, 1));
        assert_eq!(rationales(&[&one, &two]).capped, Some(2.0 / 3.0));
        let unreported = with_rationales("z", &[Some("e"), Some("f")]);
        assert_eq!(rationales(&[&unreported]).capped, None);
        assert_eq!(rationales(&[&unreported]).written, Some(1.0));
    }

    #[test]
    fn a_capped_flag_without_a_rationale_is_not_counted() {
        let direct = with_capped(with_rationales("x", &[None]), &[Some(true)]);
        assert_eq!(RationaleCount::of(&direct), RationaleCount::default());
    }

    #[test]
    fn compact_records_count_what_the_judgment_counts() {
        let judgment = with_capped(
            with_rationales("x", &[Some("abc"), Some("")]),
            &[Some(true), Some(false)],
        );
        let scored = Scored::from(&judgment);
        assert_eq!(scored.rationales(), RationaleCount::of(&judgment));
    }
}

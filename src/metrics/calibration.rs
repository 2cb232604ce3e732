//! Calibration: does the labeler's confidence match how often it agrees with people?
//!
//! Confidence is the probability the labeler gives its own choice, `max(p_a, 1 − p_a)`.
//! Expected calibration error bins it into ten equal-width bins over [0, 1] and weighs
//! each bin's gap between mean confidence and mean correctness by the bin's share of
//! examples. Log-loss is the negative mean log-probability of the human's side.
//!
//! Limits: ECE and log-loss need a human side, so human ties are left out of both (they
//! still count in mean confidence). An AI tie (`p_a` exactly one half) has confidence
//! one half and counts half correct, as it does in alignment: a coin flip that says it
//! is a coin flip is calibrated. ECE with few examples per bin is noisy and biased
//! upwards; read it beside `n`.

use crate::data::Label;
use crate::metrics::Judged;
use crate::procedure::agreement;

/// Number of equal-width confidence bins for ECE.
pub const ECE_BINS: usize = 10;

/// Probabilities are clipped to [`LOG_LOSS_CLIP`, 1 − `LOG_LOSS_CLIP`] before the log, so
/// that one confident mistake costs about 13.8 nats rather than infinity.
pub const LOG_LOSS_CLIP: f64 = 1e-6;

/// Calibration of one cell.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Calibration {
    pub mean_confidence: Option<f64>,
    pub ece: Option<f64>,
    pub log_loss: Option<f64>,
}

/// Calibration over successful `judgments` (those without `p_a` are skipped).
pub(crate) fn calibration<J: Judged>(judgments: &[&J]) -> Calibration {
    let mut confidence_sum = 0.0;
    let mut judged = 0usize;
    // Per bin: examples, confidence sum, correctness sum.
    let mut bins = [(0usize, 0.0f64, 0.0f64); ECE_BINS];
    let mut loss_sum = 0.0;
    let mut sided = 0usize;
    for judgment in judgments {
        let Some(p_a) = judgment.p_a() else {
            continue;
        };
        let confidence = p_a.max(1.0 - p_a);
        confidence_sum += confidence;
        judged += 1;
        let p_human = match judgment.human() {
            Label::A => p_a,
            Label::B => 1.0 - p_a,
            Label::Tie => continue,
        };
        let correct = judgment
            .ai()
            .map_or(0.0, |ai| agreement(ai, judgment.human()));
        let bin = &mut bins[bin_of(confidence)];
        bin.0 += 1;
        bin.1 += confidence;
        bin.2 += correct;
        loss_sum -= p_human.clamp(LOG_LOSS_CLIP, 1.0 - LOG_LOSS_CLIP).ln();
        sided += 1;
    }
    let ece = (sided > 0).then(|| {
        bins.iter()
            .filter(|(count, _, _)| *count > 0)
            .map(|&(count, confidence, correct)| {
                let count = count as f64;
                (count / sided as f64) * (confidence / count - correct / count).abs()
            })
            .sum()
    });
    Calibration {
        mean_confidence: (judged > 0).then(|| confidence_sum / judged as f64),
        ece,
        log_loss: (sided > 0).then(|| loss_sum / sided as f64),
    }
}

/// Spearman rank correlation of the AI's confidence (|p_a − ½|) with the strength of the
/// human label (|confidence − 5| on TL;DR's bipolar 1–9 scale), over the judgments that
/// carry a human confidence. `None` with fewer than three, or when either side is
/// constant.
pub(crate) fn confidence_correlation<J: Judged>(judgments: &[&J]) -> Option<f64> {
    let pairs: Vec<(f64, f64)> = judgments
        .iter()
        .filter_map(|judgment| {
            let human = judgment.human_confidence()?;
            let p_a = judgment.p_a()?;
            Some(((p_a - 0.5).abs(), (human - 5.0).abs()))
        })
        .collect();
    if pairs.len() < 3 {
        return None;
    }
    let ai = ranks(pairs.iter().map(|pair| pair.0));
    let human = ranks(pairs.iter().map(|pair| pair.1));
    pearson(&ai, &human)
}

/// Ranks from 1, ties given their average rank.
fn ranks(values: impl Iterator<Item = f64>) -> Vec<f64> {
    let values: Vec<f64> = values.collect();
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&x, &y| values[x].total_cmp(&values[y]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end share the mean of ranks start+1..=end.
        let rank = (start + end + 1) as f64 / 2.0;
        for &index in &order[start..end] {
            ranks[index] = rank;
        }
        start = end;
    }
    ranks
}

fn pearson(x: &[f64], y: &[f64]) -> Option<f64> {
    let n = x.len() as f64;
    let (mean_x, mean_y) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut covariance, mut var_x, mut var_y) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        covariance += (a - mean_x) * (b - mean_y);
        var_x += (a - mean_x).powi(2);
        var_y += (b - mean_y).powi(2);
    }
    (var_x > 0.0 && var_y > 0.0).then(|| covariance / (var_x * var_y).sqrt())
}

/// The bin of a confidence in [0, 1]: [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0].
fn bin_of(confidence: f64) -> usize {
    // Truncation is the binning; a NaN casts to 0 and the top edge joins the last bin.
    ((confidence * ECE_BINS as f64).floor().max(0.0) as usize).min(ECE_BINS - 1)
}

#[cfg(test)]
mod correlation_tests {
    use super::*;

    #[test]
    fn ranks_average_ties() {
        assert_eq!(
            ranks([3.0, 1.0, 3.0, 2.0].into_iter()),
            [3.5, 1.0, 3.5, 2.0]
        );
    }

    #[test]
    fn perfectly_ordered_confidences_correlate_fully() {
        let x = [1.0, 2.0, 3.0, 4.0];
        assert!((pearson(&x, &[10.0, 20.0, 30.0, 40.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!((pearson(&x, &[4.0, 3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
        assert_eq!(pearson(&x, &[1.0, 1.0, 1.0, 1.0]), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::fixture::{failed, judged};
    use crate::procedure::Judgment;

    fn close(actual: Option<f64>, expected: f64) {
        let actual = actual.unwrap();
        assert!((actual - expected).abs() < 1e-12, "{actual} != {expected}");
    }

    #[test]
    fn known_answer() {
        let judgments = [
            judged("e1", 0.9, Label::A),   // confidence 0.9, right
            judged("e2", 0.9, Label::B),   // confidence 0.9, wrong
            judged("e3", 0.3, Label::B),   // confidence 0.7, right
            judged("e4", 0.6, Label::A),   // confidence 0.6, right
            judged("e5", 0.6, Label::Tie), // human tie: confidence only
            failed("e6", "timeout"),       // no p_a: skipped
        ];
        let refs: Vec<&Judgment> = judgments.iter().collect();
        let calibration = calibration(&refs);
        close(
            calibration.mean_confidence,
            (0.9 + 0.9 + 0.7 + 0.6 + 0.6) / 5.0,
        );
        // Bin 9: 2 of 4, |0.9 − 0.5|; bin 7: 1 of 4, |0.7 − 1|; bin 6: 1 of 4, |0.6 − 1|.
        close(calibration.ece, 0.5 * 0.4 + 0.25 * 0.3 + 0.25 * 0.4);
        let expected = -(0.9f64.ln() + 0.1f64.ln() + 0.7f64.ln() + 0.6f64.ln()) / 4.0;
        close(calibration.log_loss, expected);
    }

    #[test]
    fn certainty_is_clipped_and_a_tie_is_calibrated() {
        let wrong = [judged("e1", 1.0, Label::B)];
        let refs: Vec<&Judgment> = wrong.iter().collect();
        close(calibration(&refs).log_loss, -(1e-6f64).ln());
        close(calibration(&refs).ece, 1.0);

        let coin = [judged("e1", 0.5, Label::A), judged("e2", 0.5, Label::B)];
        let refs: Vec<&Judgment> = coin.iter().collect();
        close(calibration(&refs).ece, 0.0);
        close(calibration(&refs).log_loss, 2.0f64.ln());
    }

    #[test]
    fn perfectly_calibrated_labeler_has_zero_ece() {
        // Confidence 0.75 and right on 3 of 4.
        let judgments = [
            judged("e1", 0.75, Label::A),
            judged("e2", 0.75, Label::A),
            judged("e3", 0.25, Label::B),
            judged("e4", 0.25, Label::A),
        ];
        let refs: Vec<&Judgment> = judgments.iter().collect();
        close(calibration(&refs).ece, 0.0);
    }

    #[test]
    fn bins_are_half_open_with_the_top_edge_in_the_last() {
        assert_eq!(bin_of(0.0), 0);
        assert_eq!(bin_of(0.5), 5);
        assert_eq!(bin_of(0.59), 5);
        assert_eq!(bin_of(0.95), 9);
        assert_eq!(bin_of(1.0), 9);
    }

    #[test]
    fn nothing_sided_means_no_calibration() {
        let ties = [judged("e1", 0.7, Label::Tie)];
        let refs: Vec<&Judgment> = ties.iter().collect();
        let calibration = calibration(&refs);
        close(calibration.mean_confidence, 0.7);
        assert_eq!(calibration.ece, None);
        assert_eq!(calibration.log_loss, None);
    }
}

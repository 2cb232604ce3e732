//! The exemplar pool: which labelled pairs a few-shot prompt shows.
//!
//! Exemplars are drawn from a pool kept apart from the evaluated examples (a separate
//! file, or the holdout side of a [`super::Split`]); this module only chooses among them.

use super::sample::partial_shuffle;
use super::{Example, Label};

/// The `k` exemplars a `k`-shot prompt shows, chosen from `pool` with `seed`.
///
/// Ties are never shown: an exemplar teaches the labeler to pick a side. The choice is the
/// first `k` of one seeded permutation of the non-tie pairs, so with the same seed the
/// 2-shot exemplars are the 1-shot one plus one more, and cells that differ only in shot
/// count differ only in that. Returns fewer than `k` only when the pool has fewer
/// non-tie pairs (see [`usable_exemplars`]).
pub fn choose_exemplars(pool: &[Example], k: usize, seed: u64) -> Vec<&Example> {
    let mut usable: Vec<&Example> = pool.iter().filter(|e| e.label != Label::Tie).collect();
    partial_shuffle(&mut usable, k, seed);
    usable.truncate(k);
    usable
}

/// How many pairs of `pool` can be shown as exemplars (those not labelled a tie), the
/// largest few-shot count the pool supports.
pub fn usable_exemplars(pool: &[Example]) -> usize {
    pool.iter().filter(|e| e.label != Label::Tie).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(labels: &[Label]) -> Vec<Example> {
        labels
            .iter()
            .enumerate()
            .map(|(i, &label)| Example {
                id: format!("e{i}"),
                context: format!("c{i}"),
                response_a: "a".into(),
                response_b: "b".into(),
                label,
                dataset: None,
                meta: serde_json::Map::new(),
                rationale: None,
            })
            .collect()
    }

    fn ids(chosen: &[&Example]) -> Vec<String> {
        chosen.iter().map(|e| e.id.clone()).collect()
    }

    #[test]
    fn ties_are_never_chosen() {
        let pool = pool(&[Label::Tie, Label::A, Label::Tie, Label::B, Label::Tie]);
        assert_eq!(usable_exemplars(&pool), 2);
        for seed in 0..20 {
            let chosen = choose_exemplars(&pool, 5, seed);
            assert_eq!(chosen.len(), 2);
            assert!(chosen.iter().all(|e| e.label != Label::Tie));
        }
    }

    #[test]
    fn more_shots_extend_fewer_with_the_same_seed() {
        let pool = pool(&[Label::A, Label::B, Label::Tie, Label::A, Label::B, Label::A]);
        for seed in 0..20 {
            let all = ids(&choose_exemplars(&pool, 5, seed));
            for k in 0..=5 {
                assert_eq!(
                    ids(&choose_exemplars(&pool, k, seed)),
                    all[..k],
                    "seed {seed}"
                );
            }
        }
    }

    #[test]
    fn the_choice_depends_on_the_seed_and_only_on_it() {
        let pool = pool(&[Label::A; 30]);
        assert_eq!(
            ids(&choose_exemplars(&pool, 3, 1)),
            ids(&choose_exemplars(&pool, 3, 1))
        );
        let distinct: std::collections::BTreeSet<Vec<String>> = (0..10)
            .map(|seed| ids(&choose_exemplars(&pool, 3, seed)))
            .collect();
        assert!(distinct.len() > 5);
    }

    #[test]
    fn an_empty_pool_gives_nothing() {
        assert!(choose_exemplars(&[], 2, 0).is_empty());
        assert_eq!(usable_exemplars(&[]), 0);
    }
}

//! Grid expansion: axes → cells.
//!
//! The axes expand as a cartesian product (first axis slowest, values in declared
//! order), `exclude` removes cells that match a partial setting, `include` adds cells.
//! Cells whose settings cannot change a label collapse into the first equivalent cell,
//! with the reason recorded, so that no backend call is paid twice for the same thing.
//! Expansion is pure: it neither reads files nor knows about backends.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::fingerprint;

/// The largest cartesian product an experiment may declare. Every cell is expanded (and
/// its prompts checked) before anything runs, so a grid must fit in memory; a million
/// cells is already far more than any labeler budget.
pub const MAX_CELLS: u128 = 1_000_000;

/// A user-axis value: what a template variable can hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Bool(value) => write!(f, "{value}"),
            Scalar::Int(value) => write!(f, "{value}"),
            Scalar::Float(value) => write!(f, "{value}"),
            Scalar::Str(value) => f.write_str(value),
        }
    }
}

/// Self-consistency: how many chain-of-thought rationales to sample, and how hot.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SelfConsistency {
    pub samples: u32,
    pub temperature: f64,
}

impl SelfConsistency {
    /// One greedy rationale: what a cell without self-consistency does.
    pub const GREEDY: SelfConsistency = SelfConsistency {
        samples: 1,
        temperature: 0.0,
    };
}

/// Everything that distinguishes one cell from another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub preamble: String,
    pub few_shot: u32,
    /// Which exemplars a few-shot cell shows: the seed of their draw from the pool, when
    /// the grid varies it (else the experiment's seed). Absent from the id when unset,
    /// so that grids without the axis keep their ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exemplar_seed: Option<u64>,
    pub cot: bool,
    pub self_consistency: SelfConsistency,
    pub labeler: String,
    /// User axes, by name; they reach the templates as variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, Scalar>,
}

impl Settings {
    /// A readable name such as `detailed/2-shot/cot/sc4@0.3/tone=strict/llama`.
    ///
    /// Self-consistency appears only when it is not one greedy sample; after
    /// [`Settings::canonical`] that is only for sampled chain-of-thought cells.
    pub fn name(&self) -> String {
        let mut parts = vec![self.preamble.clone(), format!("{}-shot", self.few_shot)];
        if let Some(seed) = self.exemplar_seed {
            parts.push(format!("exemplar_seed={seed}"));
        }
        if self.cot {
            parts.push("cot".to_owned());
        }
        let sc = self.self_consistency;
        if sc != SelfConsistency::GREEDY {
            parts.push(format!("sc{}@{}", sc.samples, sc.temperature));
        }
        parts.extend(
            self.vars
                .iter()
                .map(|(key, value)| format!("{key}={value}")),
        );
        parts.push(self.labeler.clone());
        parts.join("/")
    }

    /// A stable id hashed from the settings. Maps are ordered, so the id does not depend
    /// on the order keys were written in the experiment file.
    pub fn id(&self) -> String {
        let canonical = serde_json::to_string(self).expect("settings serialize to JSON");
        fingerprint::short_id(canonical)
    }

    /// The settings with every choice that cannot change a label replaced by its
    /// neutral value, and the reason for the first such replacement.
    pub fn canonical(&self) -> (Settings, Option<&'static str>) {
        let mut canonical = self.clone();
        let (sc, mut reason) = canonical_sc(self.cot, self.self_consistency);
        canonical.self_consistency = sc;
        if self.few_shot == 0 && self.exemplar_seed.is_some() {
            canonical.exemplar_seed = None;
            reason = reason.or(Some(
                "a 0-shot cell shows no exemplar, so the exemplar seed cannot change it",
            ));
        }
        (canonical, reason)
    }
}

/// The self-consistency setting that a cell with `cot` and `sc` behaves as, and why it
/// differs from `sc` when it does.
fn canonical_sc(cot: bool, sc: SelfConsistency) -> (SelfConsistency, Option<&'static str>) {
    if !cot && sc != SelfConsistency::GREEDY {
        (
            SelfConsistency::GREEDY,
            Some(
                "self-consistency samples rationales, and without chain-of-thought there is \
                 no rationale: the scoring call is deterministic",
            ),
        )
    } else if cot && sc.temperature == 0.0 && sc.samples > 1 {
        (
            SelfConsistency::GREEDY,
            Some("at temperature 0 every sample is the same greedy rationale"),
        )
    } else {
        (sc, None)
    }
}

/// A cell: one configuration of the labeler to be evaluated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    pub name: String,
    pub id: String,
    pub settings: Settings,
}

impl Cell {
    pub fn new(settings: Settings) -> Cell {
        Cell {
            name: settings.name(),
            id: settings.id(),
            settings,
        }
    }
}

/// The axes of a grid, each with its values in declared order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Axes {
    pub preamble: Vec<String>,
    pub few_shot: Vec<u32>,
    /// Seeds of the exemplar draw; empty when the grid does not vary it.
    pub exemplar_seed: Vec<u64>,
    pub cot: Vec<bool>,
    pub self_consistency: Vec<SelfConsistency>,
    /// User axes in declared order.
    pub vars: Vec<(String, Vec<Scalar>)>,
    pub labeler: Vec<String>,
}

impl Axes {
    /// The number of values of each axis.
    fn lengths(&self) -> impl Iterator<Item = usize> + '_ {
        [
            self.preamble.len(),
            self.few_shot.len(),
            self.exemplar_seed.len().max(1),
            self.cot.len(),
            self.self_consistency.len(),
            self.labeler.len(),
        ]
        .into_iter()
        .chain(self.vars.iter().map(|(_, values)| values.len()))
    }

    /// Number of cells in the full cartesian product.
    pub fn product(&self) -> usize {
        self.lengths().product()
    }

    /// The size of the cartesian product, saturating instead of overflowing: a grid of
    /// many user axes can multiply past any integer, and must be refused, not expanded.
    pub fn product_saturating(&self) -> u128 {
        self.lengths()
            .fold(1u128, |product, len| product.saturating_mul(len as u128))
    }
}

/// A partial setting: matches every cell that agrees on the fields it names. Used by
/// `exclude`, and by `include` with the unnamed fields taken from the first value of
/// each axis.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Partial {
    pub preamble: Option<String>,
    pub few_shot: Option<u32>,
    pub exemplar_seed: Option<u64>,
    pub cot: Option<bool>,
    pub samples: Option<u32>,
    pub temperature: Option<f64>,
    pub labeler: Option<String>,
    pub vars: BTreeMap<String, Scalar>,
}

impl Partial {
    pub fn matches(&self, settings: &Settings) -> bool {
        fn agrees<T: PartialEq>(wanted: &Option<T>, actual: &T) -> bool {
            wanted.as_ref().is_none_or(|wanted| wanted == actual)
        }
        agrees(&self.preamble, &settings.preamble)
            && agrees(&self.few_shot, &settings.few_shot)
            && self
                .exemplar_seed
                .is_none_or(|seed| settings.exemplar_seed == Some(seed))
            && agrees(&self.cot, &settings.cot)
            && agrees(&self.samples, &settings.self_consistency.samples)
            && agrees(&self.temperature, &settings.self_consistency.temperature)
            && agrees(&self.labeler, &settings.labeler)
            && self
                .vars
                .iter()
                .all(|(key, value)| settings.vars.get(key) == Some(value))
    }

    /// The settings this partial names, with the rest from the first value of each axis.
    /// `None` when an axis it leaves open has no value to take.
    pub fn complete(&self, axes: &Axes) -> Option<Settings> {
        let first_sc = axes.self_consistency.first().copied();
        let mut vars = BTreeMap::new();
        for (key, values) in &axes.vars {
            let value = self.vars.get(key).or(values.first())?;
            vars.insert(key.clone(), value.clone());
        }
        Some(Settings {
            preamble: self.preamble.clone().or(axes.preamble.first().cloned())?,
            few_shot: self.few_shot.or(axes.few_shot.first().copied())?,
            exemplar_seed: self.exemplar_seed.or(axes.exemplar_seed.first().copied()),
            cot: self.cot.or(axes.cot.first().copied())?,
            self_consistency: SelfConsistency {
                samples: self.samples.or(first_sc.map(|sc| sc.samples))?,
                temperature: self.temperature.or(first_sc.map(|sc| sc.temperature))?,
            },
            labeler: self.labeler.clone().or(axes.labeler.first().cloned())?,
            vars,
        })
    }
}

/// A grid as the experiment declares it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Grid {
    pub axes: Axes,
    pub exclude: Vec<Partial>,
    pub include: Vec<Partial>,
}

/// A cell that was folded into another because it could not differ from it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Collapsed {
    pub name: String,
    pub into: String,
    pub reason: String,
}

/// The outcome of expanding a grid.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Expansion {
    pub cells: Vec<Cell>,
    pub collapsed: Vec<Collapsed>,
    /// Product cells removed by `exclude`.
    pub excluded: usize,
    /// Cells added by `include` (before collapsing).
    pub included: usize,
}

impl Expansion {
    /// The cell with this name or id.
    pub fn find(&self, name_or_id: &str) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|cell| cell.name == name_or_id || cell.id == name_or_id)
    }
}

/// Expands a grid into cells.
pub fn expand(grid: &Grid) -> Expansion {
    let mut expansion = Expansion::default();
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut admit = |settings: Settings, expansion: &mut Expansion| {
        let (canonical, reason) = settings.canonical();
        let cell = Cell::new(canonical);
        match by_id.get(&cell.id) {
            Some(&index) => expansion.collapsed.push(Collapsed {
                name: settings.name(),
                into: expansion.cells[index].name.clone(),
                reason: reason
                    .unwrap_or("the same settings appear twice in the grid")
                    .to_owned(),
            }),
            None => {
                by_id.insert(cell.id.clone(), expansion.cells.len());
                expansion.cells.push(cell);
            }
        }
    };

    for settings in Product::new(&grid.axes) {
        if grid
            .exclude
            .iter()
            .any(|partial| partial.matches(&settings))
        {
            expansion.excluded += 1;
        } else {
            admit(settings, &mut expansion);
        }
    }
    for partial in &grid.include {
        if let Some(settings) = partial.complete(&grid.axes) {
            expansion.included += 1;
            admit(settings, &mut expansion);
        }
    }
    expansion
}

/// The number of cells [`expand`] gives, without building them, so that a huge grid can
/// be refused before it takes the memory and time its expansion would.
///
/// Without `exclude` and `include` it is a product: collapsing only folds
/// self-consistency settings and the exemplar seeds of 0-shot cells, so each `cot` value
/// counts its distinct canonical self-consistency settings and each 0-shot value one
/// seed (axis values are distinct, as validation guarantees).
/// Otherwise the product is walked and the canonical settings counted.
pub fn count(grid: &Grid) -> usize {
    let axes = &grid.axes;
    if grid.exclude.is_empty() && grid.include.is_empty() {
        let others: usize = [axes.preamble.len(), axes.labeler.len()]
            .into_iter()
            .chain(axes.vars.iter().map(|(_, values)| values.len()))
            .product();
        // A 0-shot cell is the same whatever the exemplar seed.
        let shots: usize = axes
            .few_shot
            .iter()
            .map(|&shots| {
                if shots == 0 {
                    1
                } else {
                    axes.exemplar_seed.len().max(1)
                }
            })
            .sum();
        let per_cot: usize = axes
            .cot
            .iter()
            .map(|&cot| {
                let mut distinct: Vec<SelfConsistency> = Vec::new();
                for &sc in &axes.self_consistency {
                    let (canonical, _) = canonical_sc(cot, sc);
                    if !distinct.contains(&canonical) {
                        distinct.push(canonical);
                    }
                }
                distinct.len()
            })
            .sum();
        return others * shots * per_cot;
    }
    let kept = Product::new(axes)
        .filter(|settings| !grid.exclude.iter().any(|partial| partial.matches(settings)));
    let included = grid
        .include
        .iter()
        .filter_map(|partial| partial.complete(axes));
    let ids: std::collections::HashSet<String> = kept
        .chain(included)
        .map(|settings| settings.canonical().0.id())
        .collect();
    ids.len()
}

/// An odometer over the axes: the last axis turns fastest.
struct Product<'a> {
    axes: &'a Axes,
    /// One digit per axis: preamble, few_shot, exemplar_seed, cot, self_consistency,
    /// vars..., labeler.
    digits: Vec<usize>,
    radices: Vec<usize>,
    done: bool,
}

impl<'a> Product<'a> {
    fn new(axes: &'a Axes) -> Product<'a> {
        let mut radices = vec![
            axes.preamble.len(),
            axes.few_shot.len(),
            // An axis the grid does not vary still has its one (unset) value.
            axes.exemplar_seed.len().max(1),
            axes.cot.len(),
            axes.self_consistency.len(),
        ];
        radices.extend(axes.vars.iter().map(|(_, values)| values.len()));
        radices.push(axes.labeler.len());
        Product {
            axes,
            digits: vec![0; radices.len()],
            done: radices.contains(&0),
            radices,
        }
    }
}

impl Iterator for Product<'_> {
    type Item = Settings;

    fn next(&mut self) -> Option<Settings> {
        if self.done {
            return None;
        }
        let d = &self.digits;
        let axes = self.axes;
        let settings = Settings {
            preamble: axes.preamble[d[0]].clone(),
            few_shot: axes.few_shot[d[1]],
            exemplar_seed: axes.exemplar_seed.get(d[2]).copied(),
            cot: axes.cot[d[3]],
            self_consistency: axes.self_consistency[d[4]],
            vars: axes
                .vars
                .iter()
                .zip(&d[5..])
                .map(|((key, values), &digit)| (key.clone(), values[digit].clone()))
                .collect(),
            labeler: axes.labeler[d[d.len() - 1]].clone(),
        };
        // Advance the odometer from the last digit.
        self.done = true;
        for position in (0..self.digits.len()).rev() {
            self.digits[position] += 1;
            if self.digits[position] < self.radices[position] {
                self.done = false;
                break;
            }
            self.digits[position] = 0;
        }
        Some(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn axes() -> Axes {
        Axes {
            preamble: vec!["base".into(), "detailed".into()],
            few_shot: vec![0, 1, 2],
            exemplar_seed: Vec::new(),
            cot: vec![false, true],
            self_consistency: vec![
                SelfConsistency::GREEDY,
                SelfConsistency {
                    samples: 4,
                    temperature: 0.3,
                },
            ],
            vars: vec![],
            labeler: vec!["small".into(), "llama".into()],
        }
    }

    #[test]
    fn a_product_too_large_for_any_integer_saturates() {
        let values: Vec<Scalar> = (0..100).map(Scalar::Int).collect();
        let huge = Axes {
            vars: (0..30).map(|i| (format!("v{i}"), values.clone())).collect(),
            ..axes()
        };
        assert_eq!(huge.product_saturating(), u128::MAX);
        assert_eq!(axes().product_saturating(), axes().product() as u128);
    }

    #[test]
    fn names_read_like_the_settings() {
        let settings = Settings {
            preamble: "detailed".into(),
            few_shot: 2,
            exemplar_seed: None,
            cot: true,
            self_consistency: SelfConsistency {
                samples: 4,
                temperature: 0.3,
            },
            labeler: "llama".into(),
            vars: BTreeMap::from([("tone".to_owned(), Scalar::Str("strict".into()))]),
        };
        assert_eq!(
            settings.name(),
            "detailed/2-shot/cot/sc4@0.3/tone=strict/llama"
        );
        let greedy = Settings {
            self_consistency: SelfConsistency::GREEDY,
            vars: BTreeMap::new(),
            ..settings
        };
        assert_eq!(greedy.name(), "detailed/2-shot/cot/llama");
    }

    #[test]
    fn sampling_without_cot_collapses_with_a_reason() {
        let expansion = expand(&Grid {
            axes: axes(),
            ..Grid::default()
        });
        // 2 x 3 x 2 x 2 x 2 = 48; the 12 no-CoT cells with sc4 fold into their twins.
        assert_eq!(expansion.cells.len(), 36);
        assert_eq!(expansion.collapsed.len(), 12);
        let first = &expansion.collapsed[0];
        assert_eq!(first.name, "base/0-shot/sc4@0.3/small");
        assert_eq!(first.into, "base/0-shot/small");
        assert!(first.reason.contains("without chain-of-thought"));
    }

    #[test]
    fn greedy_samples_collapse() {
        let mut axes = axes();
        axes.cot = vec![true];
        axes.self_consistency = vec![
            SelfConsistency::GREEDY,
            SelfConsistency {
                samples: 8,
                temperature: 0.0,
            },
        ];
        let expansion = expand(&Grid {
            axes,
            ..Grid::default()
        });
        assert!(
            expansion
                .collapsed
                .iter()
                .all(|c| c.reason.contains("temperature 0"))
        );
        assert_eq!(expansion.collapsed.len(), 12);
    }

    #[test]
    fn exclude_removes_partial_matches_and_include_adds() {
        let exclude = vec![Partial {
            cot: Some(false),
            few_shot: Some(2),
            exemplar_seed: None,
            ..Partial::default()
        }];
        let include = vec![Partial {
            preamble: Some("base".into()),
            few_shot: Some(8),
            ..Partial::default()
        }];
        let expansion = expand(&Grid {
            axes: axes(),
            exclude,
            include,
        });
        // cot=false, few_shot=2: 2 preambles x 2 sc x 2 labelers = 8 product cells.
        assert_eq!(expansion.excluded, 8);
        assert_eq!(expansion.included, 1);
        assert!(expansion.find("base/8-shot/small").is_some());
        assert!(expansion.find("base/2-shot/small").is_none());
        assert!(expansion.find("base/2-shot/cot/small").is_some());
    }

    #[test]
    fn the_last_axis_turns_fastest() {
        let expansion = expand(&Grid {
            axes: axes(),
            ..Grid::default()
        });
        let names: Vec<_> = expansion
            .cells
            .iter()
            .take(3)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "base/0-shot/small",
                "base/0-shot/llama",
                "base/0-shot/cot/small"
            ]
        );
    }

    #[test]
    fn ids_do_not_depend_on_var_insertion_order() {
        let mut one = BTreeMap::new();
        one.insert("b".to_owned(), Scalar::Int(1));
        one.insert("a".to_owned(), Scalar::Int(2));
        let mut two = BTreeMap::new();
        two.insert("a".to_owned(), Scalar::Int(2));
        two.insert("b".to_owned(), Scalar::Int(1));
        let settings = |vars| Settings {
            preamble: "base".into(),
            few_shot: 0,
            exemplar_seed: None,
            cot: false,
            self_consistency: SelfConsistency::GREEDY,
            labeler: "x".into(),
            vars,
        };
        assert_eq!(settings(one).id(), settings(two).id());
    }

    #[test]
    fn exemplar_seeds_split_few_shot_cells_and_collapse_on_zero_shot_ones() {
        let axes = Axes {
            preamble: vec!["detailed".into()],
            few_shot: vec![0, 1],
            exemplar_seed: vec![3, 5],
            cot: vec![false],
            self_consistency: vec![SelfConsistency::GREEDY],
            vars: Vec::new(),
            labeler: vec!["x".into()],
        };
        let expansion = expand(&Grid {
            axes,
            ..Grid::default()
        });
        let names: Vec<&str> = expansion.cells.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "detailed/0-shot/x",
                "detailed/1-shot/exemplar_seed=3/x",
                "detailed/1-shot/exemplar_seed=5/x"
            ]
        );
        assert_eq!(expansion.cells[0].settings.exemplar_seed, None);
        assert_eq!(expansion.collapsed.len(), 1);
        assert_eq!(
            expansion.collapsed[0].name,
            "detailed/0-shot/exemplar_seed=5/x"
        );
        assert!(expansion.collapsed[0].reason.contains("0-shot"));
    }

    #[test]
    fn an_unset_exemplar_seed_leaves_the_id_as_it_was() {
        let settings = Settings {
            preamble: "base".into(),
            few_shot: 1,
            exemplar_seed: None,
            cot: false,
            self_consistency: SelfConsistency::GREEDY,
            labeler: "x".into(),
            vars: BTreeMap::new(),
        };
        let json = serde_json::to_string(&settings).unwrap();
        assert!(!json.contains("exemplar_seed"), "{json}");
        let seeded = Settings {
            exemplar_seed: Some(3),
            ..settings.clone()
        };
        assert_ne!(seeded.id(), settings.id());
    }

    fn arb_axes() -> impl Strategy<Value = Axes> {
        (
            prop::sample::subsequence(vec!["base", "detailed", "terse"], 1..=3),
            prop::sample::subsequence(vec![0u32, 1, 2, 8], 1..=4),
            prop::sample::subsequence(vec![false, true], 1..=2),
            prop::sample::subsequence(
                vec![(1u32, 0.0), (4, 0.0), (1, 0.7), (4, 0.3), (16, 1.0)],
                1..=5,
            ),
            prop::sample::subsequence(vec!["a", "b", "c"], 1..=3),
            prop::option::of(prop::sample::subsequence(vec!["plain", "strict"], 1..=2)),
            prop::sample::subsequence(vec![3u64, 5, 11], 0..=3),
        )
            .prop_map(
                |(preamble, few_shot, cot, sc, labeler, tone, exemplar_seed)| Axes {
                    preamble: preamble.into_iter().map(String::from).collect(),
                    few_shot,
                    exemplar_seed,
                    cot,
                    self_consistency: sc
                        .into_iter()
                        .map(|(samples, temperature)| SelfConsistency {
                            samples,
                            temperature,
                        })
                        .collect(),
                    vars: tone
                        .map(|values| {
                            vec![(
                                "tone".to_owned(),
                                values.into_iter().map(|v| Scalar::Str(v.into())).collect(),
                            )]
                        })
                        .unwrap_or_default(),
                    labeler: labeler.into_iter().map(String::from).collect(),
                },
            )
    }

    fn arb_partial() -> impl Strategy<Value = Partial> {
        (
            prop::option::of(prop::sample::select(vec!["base", "detailed", "terse"])),
            prop::option::of(prop::sample::select(vec![0u32, 1, 2, 8, 3])),
            prop::option::of(any::<bool>()),
            prop::option::of(prop::sample::select(vec![1u32, 4, 16])),
            prop::option::of(prop::sample::select(vec!["a", "b", "c"])),
            prop::option::of(prop::sample::select(vec![3u64, 5, 7])),
        )
            .prop_map(
                |(preamble, few_shot, cot, samples, labeler, exemplar_seed)| Partial {
                    preamble: preamble.map(String::from),
                    few_shot,
                    exemplar_seed,
                    cot,
                    samples,
                    labeler: labeler.map(String::from),
                    ..Partial::default()
                },
            )
    }

    proptest! {
        #[test]
        fn cell_count_is_product_minus_excluded_plus_included_minus_collapsed(
            axes in arb_axes(),
            exclude in prop::collection::vec(arb_partial(), 0..3),
            include in prop::collection::vec(arb_partial(), 0..3),
        ) {
            let grid = Grid { axes, exclude, include };
            let expansion = expand(&grid);
            let excluded = Product::new(&grid.axes)
                .filter(|s| grid.exclude.iter().any(|p| p.matches(s)))
                .count();
            prop_assert_eq!(expansion.excluded, excluded);
            prop_assert_eq!(count(&grid), expansion.cells.len(), "counted without expanding");
            let plain = Grid { axes: grid.axes.clone(), ..Grid::default() };
            prop_assert_eq!(count(&plain), expand(&plain).cells.len(), "counted as a product");
            prop_assert_eq!(expansion.included, grid.include.len());
            prop_assert_eq!(
                expansion.cells.len(),
                grid.axes.product() - excluded + grid.include.len() - expansion.collapsed.len()
            );
            let ids: std::collections::HashSet<_> = expansion.cells.iter().map(|c| &c.id).collect();
            prop_assert_eq!(ids.len(), expansion.cells.len(), "ids are unique");
            let names: std::collections::HashSet<_> =
                expansion.cells.iter().map(|c| &c.name).collect();
            prop_assert_eq!(names.len(), expansion.cells.len(), "names are unique");
            for cell in &expansion.cells {
                prop_assert_eq!(&cell.settings.canonical().0, &cell.settings, "cells are canonical");
            }
            for collapsed in &expansion.collapsed {
                prop_assert!(expansion.find(&collapsed.into).is_some());
            }
        }
    }
}

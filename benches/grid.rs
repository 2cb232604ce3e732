//! Throughput of the stages before any backend call: expanding a large grid, and
//! rendering prompts.
//!
//! `expand/100k` expands a 100,000-cell product (with exclusions and collapsing) and
//! reports cells per second. `render/*` renders real TL;DR pairs from the shared data in
//! both orders and reports prompts per second: `render/cell_prefix` builds a cell's
//! shared prefix (preamble + exemplars) once per cell, `render/example` renders one
//! example against an existing prefix, which is what a run does per example. Each has a
//! baseline beside it: `expand/100k_bare_product` enumerates the same settings with no
//! names, ids or collapsing, and `render/example_without_prefix_reuse` re-renders the
//! preamble and exemplars for every prompt.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use rlaif::data::{self, DataFormat, DataSource};
use rlaif::grid::{self, Axes, Grid, Partial, Scalar, SelfConsistency, Settings};
use rlaif::prompt::{Order, Templates};

fn hundred_thousand_cells() -> Grid {
    let words = |prefix: &str, count: usize| -> Vec<Scalar> {
        (0..count)
            .map(|i| Scalar::Str(format!("{prefix}{i}")))
            .collect()
    };
    let axes = Axes {
        preamble: vec!["base".into(), "detailed".into()],
        few_shot: vec![0, 1, 2, 4, 8],
        exemplar_seed: Vec::new(),
        cot: vec![false, true],
        self_consistency: (1..=10)
            .map(|i| SelfConsistency {
                samples: if i == 1 { 1 } else { 4 },
                temperature: f64::from(i - 1) / 10.0,
            })
            .collect(),
        vars: vec![
            ("tone".into(), words("t", 10)),
            ("rubric".into(), words("r", 10)),
        ],
        labeler: vec!["a".into(), "b".into(), "c".into(), "d".into(), "e".into()],
    };
    assert_eq!(axes.product(), 100_000);
    Grid {
        axes,
        exclude: vec![Partial {
            cot: Some(false),
            few_shot: Some(8),
            ..Partial::default()
        }],
        include: vec![],
    }
}

fn expand(c: &mut Criterion) {
    let grid = hundred_thousand_cells();
    let mut group = c.benchmark_group("expand");
    group.throughput(Throughput::Elements(100_000));
    group.sample_size(10);
    group.bench_function("100k", |b| b.iter(|| grid::expand(black_box(&grid))));
    // Baseline: the bare cartesian product of settings, with no exclusion, collapsing,
    // names or ids; the ratio is what expansion adds on top of enumerating.
    group.bench_function("100k_bare_product", |b| {
        b.iter(|| bare_product(black_box(&grid.axes)))
    });
    group.finish();
}

fn bare_product(axes: &Axes) -> Vec<Settings> {
    let mut cells = Vec::with_capacity(axes.product());
    for preamble in &axes.preamble {
        for &few_shot in &axes.few_shot {
            for &cot in &axes.cot {
                for &self_consistency in &axes.self_consistency {
                    for tone in &axes.vars[0].1 {
                        for rubric in &axes.vars[1].1 {
                            for labeler in &axes.labeler {
                                cells.push(Settings {
                                    preamble: preamble.clone(),
                                    few_shot,
                                    exemplar_seed: None,
                                    cot,
                                    self_consistency,
                                    labeler: labeler.clone(),
                                    vars: BTreeMap::from([
                                        ("rubric".to_owned(), rubric.clone()),
                                        ("tone".to_owned(), tone.clone()),
                                    ]),
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    cells
}

fn tldr(limit: usize, split: data::SplitSide) -> Vec<data::Example> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/openai-tldr-comparisons/comparisons.jsonl");
    let source = DataSource {
        format: DataFormat::Tldr,
        path,
        limit: Some(limit),
        seed: 7,
        shuffle: true,
        high_confidence: true,
        split: Some(data::Split {
            holdout: 0.1,
            keep: split,
        }),
        id_prefix: None,
    };
    data::load(&source)
        .expect("the shared TL;DR data loads")
        .examples
}

fn render(c: &mut Criterion) {
    let templates = Templates::load("summarization", None).expect("built-in templates load");
    let examples = tldr(200, data::SplitSide::Rest);
    let pool = tldr(2, data::SplitSide::Holdout);
    let exemplars: Vec<&data::Example> = pool.iter().collect();
    let settings = Settings {
        preamble: "detailed".into(),
        few_shot: 2,
        exemplar_seed: None,
        cot: false,
        self_consistency: SelfConsistency::GREEDY,
        labeler: "bench".into(),
        vars: BTreeMap::new(),
    };

    let mut group = c.benchmark_group("render");
    group.throughput(Throughput::Elements(1));
    group.bench_function("cell_prefix", |b| {
        b.iter(|| {
            templates
                .for_cell(black_box(&settings), &exemplars)
                .unwrap()
        })
    });
    let prompts = templates.for_cell(&settings, &exemplars).unwrap();
    group.throughput(Throughput::Elements(2 * examples.len() as u64));
    group.bench_function("example", |b| {
        b.iter(|| {
            for example in &examples {
                for order in [Order::Ab, Order::Ba] {
                    black_box(prompts.render(example, order).unwrap().scoring_text());
                }
            }
        })
    });
    // Baseline: a harness without a shared prefix renders the preamble and exemplars
    // again for every prompt.
    group.bench_function("example_without_prefix_reuse", |b| {
        b.iter(|| {
            for example in &examples {
                for order in [Order::Ab, Order::Ba] {
                    let prompts = templates.for_cell(&settings, &exemplars).unwrap();
                    black_box(prompts.render(example, order).unwrap().scoring_text());
                }
            }
        })
    });
    group.finish();
}

criterion_group!(benches, expand, render);
criterion_main!(benches);

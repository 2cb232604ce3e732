//! What a run would do: the cells, the cells folded into others, and for each cell the
//! backend calls it makes and the tokens it sends, before anything is sent.
//!
//! Token counts are estimates (see [`estimate_tokens`]): exact counts need each model's
//! tokenizer, which only the backend has. Chain-of-thought completions are counted at
//! their cap, so the plan is an upper bound where rationales are concerned.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};

use serde::Serialize;

use crate::backend::LabelerConfig;
use crate::grid::{Cell, Collapsed};
use crate::prepare::Prepared;
use crate::prompt::PromptError;

/// The plan of one cell.
#[derive(Debug, Clone, Serialize)]
pub struct CellPlan {
    pub name: String,
    pub id: String,
    pub settings: crate::grid::Settings,
    pub examples: usize,
    /// Orders each example is shown in.
    pub orders: usize,
    pub calls: u64,
    /// Estimated prompt tokens over all calls.
    pub prompt_tokens: u64,
    /// Completion tokens at most: one per scoring call, the rationale cap per generation.
    pub max_completion_tokens: u64,
    /// Money at the labeler's declared price, if it has one (rationales at their cap).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_cost: Option<f64>,
}

/// Prompt tokens, completion tokens at most, and money at most of a set of calls.
#[derive(Debug, Clone, Copy, Default)]
struct Sent {
    prompt_tokens: u64,
    completion_tokens: u64,
    cost: Option<f64>,
}

impl Sent {
    fn add(&mut self, prompt_tokens: u64, completion_tokens: u64) {
        self.prompt_tokens += prompt_tokens;
        self.completion_tokens += completion_tokens;
    }
}

/// The plan of a whole experiment.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub experiment: String,
    pub cells: Vec<CellPlan>,
    pub collapsed: Vec<Collapsed>,
    /// Cells of the cartesian product removed by `exclude`.
    pub excluded: usize,
    pub calls: u64,
    /// Of `calls`, the distinct ones: an identical request, from several cells (the
    /// first samples of `sc4@T` are those of `sc16@T`) or from a pair the data repeats,
    /// is sent once and its answer shared.
    pub distinct_calls: u64,
    /// Over all calls, as if each cell ran alone.
    pub prompt_tokens: u64,
    pub max_completion_tokens: u64,
    /// Over the distinct calls: what the run sends.
    pub distinct_prompt_tokens: u64,
    pub distinct_max_completion_tokens: u64,
    /// Money at the declared prices for the distinct calls (a repeated request is
    /// answered from the cache, not paid for again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_cost: Option<f64>,
}

/// Tokens in `text`, estimated at four bytes a token: close for English text under the
/// BPE vocabularies of current models, and never zero for a non-empty prompt.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(4)
}

/// Plans every cell of a prepared experiment.
pub fn plan(prepared: &Prepared) -> Result<Plan, PromptError> {
    let mut distinct = HashSet::new();
    let planned = prepared
        .expansion
        .cells
        .iter()
        .map(|cell| plan_cell(prepared, cell, &mut distinct))
        .collect::<Result<Vec<_>, _>>()?;
    let (cells, first_asked): (Vec<CellPlan>, Vec<Sent>) = planned.into_iter().unzip();
    let max_cost = first_asked
        .iter()
        .filter_map(|sent| sent.cost)
        .reduce(|a, b| a + b);
    Ok(Plan {
        experiment: prepared.experiment.name.clone(),
        calls: cells.iter().map(|cell| cell.calls).sum(),
        distinct_calls: distinct.len() as u64,
        prompt_tokens: cells.iter().map(|cell| cell.prompt_tokens).sum(),
        max_completion_tokens: cells.iter().map(|cell| cell.max_completion_tokens).sum(),
        distinct_prompt_tokens: first_asked.iter().map(|sent| sent.prompt_tokens).sum(),
        distinct_max_completion_tokens: first_asked.iter().map(|sent| sent.completion_tokens).sum(),
        max_cost,
        collapsed: prepared.expansion.collapsed.clone(),
        excluded: prepared.expansion.excluded,
        cells,
    })
}

/// A call as the cache would tell it apart, hashed: the labeler, the prompt and, for a
/// sampled rationale, its temperature and index (the scoring call after a rationale is
/// as distinct as the rationale's request).
fn call_key(labeler: &str, prompt: &str, sampled: Option<(f64, u64)>, scoring: bool) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    (labeler, prompt, scoring).hash(&mut hasher);
    sampled
        .map(|(temperature, index)| (temperature.to_bits(), index))
        .hash(&mut hasher);
    hasher.finish()
}

/// A cell's plan, and what it adds to the run after the cells before it: its calls that
/// no earlier cell (or earlier pair of its own) makes.
fn plan_cell(
    prepared: &Prepared,
    cell: &Cell,
    distinct: &mut HashSet<u64>,
) -> Result<(CellPlan, Sent), PromptError> {
    let settings = &cell.settings;
    let labeler = prepared.experiment.labeler(&settings.labeler);
    let rationale_cap = u64::from(match labeler {
        Some(
            LabelerConfig::Openai {
                max_rationale_tokens,
                ..
            }
            | LabelerConfig::Embedded {
                max_rationale_tokens,
                ..
            },
        ) => *max_rationale_tokens,
        _ => 512,
    });
    let prompts = prepared.prompts(cell)?;
    let orders = prepared.orders();
    let samples = u64::from(settings.self_consistency.samples);

    let (mut calls, mut all) = (0u64, Sent::default());
    let mut first_asked = Sent::default();
    for example in &prepared.dataset.examples {
        for &order in orders {
            let prompt = prompts.render(example, order)?;
            match prompt.generation_text() {
                Some(generation) if settings.cot => {
                    let temperature = settings.self_consistency.temperature;
                    let asked = estimate_tokens(&generation);
                    let scored = estimate_tokens(&prompt.scoring_text_after("")) + rationale_cap;
                    for index in 0..samples {
                        let sampled = Some((temperature, index));
                        for (scoring, prompt_tokens, completion_tokens) in
                            [(false, asked, rationale_cap), (true, scored, 1)]
                        {
                            let key = call_key(&settings.labeler, &generation, sampled, scoring);
                            if distinct.insert(key) {
                                first_asked.add(prompt_tokens, completion_tokens);
                            }
                            all.add(prompt_tokens, completion_tokens);
                        }
                    }
                    calls += 2 * samples;
                }
                _ => {
                    calls += 1;
                    let text = prompt.scoring_text();
                    let prompt_tokens = estimate_tokens(&text);
                    if distinct.insert(call_key(&settings.labeler, &text, None, true)) {
                        first_asked.add(prompt_tokens, 1);
                    }
                    all.add(prompt_tokens, 1);
                }
            }
        }
    }
    if let Some(LabelerConfig::Openai {
        price: Some(price), ..
    }) = labeler
    {
        for sent in [&mut all, &mut first_asked] {
            sent.cost = Some(
                sent.prompt_tokens as f64 * price.prompt_per_million / 1e6
                    + sent.completion_tokens as f64 * price.completion_per_million / 1e6,
            );
        }
    }
    let plan = CellPlan {
        name: cell.name.clone(),
        id: cell.id.clone(),
        settings: settings.clone(),
        examples: prepared.dataset.examples.len(),
        orders: orders.len(),
        calls,
        prompt_tokens: all.prompt_tokens,
        max_completion_tokens: all.completion_tokens,
        max_cost: all.cost,
    };
    Ok((plan, first_asked))
}

impl Plan {
    /// The plan as JSON (DESIGN §9): `cells`, `collapsed`, `calls`, `prompt_tokens`, and
    /// more.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a plan serializes to JSON")
    }

    /// The plan as a table for people.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let name_width = self
            .cells
            .iter()
            .map(|cell| cell.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let examples = self.cells.first().map_or(0, |cell| cell.examples);
        let orders = self.cells.first().map_or(0, |cell| cell.orders);
        let _ = writeln!(
            out,
            "{}: {} cells over {examples} examples x {orders} order{}",
            self.experiment,
            self.cells.len(),
            if orders == 1 { "" } else { "s" },
        );
        let _ = writeln!(
            out,
            "\n{:>3}  {:name_width$}  {:12}  {:>9}  {:>14}",
            "#", "cell", "id", "calls", "prompt tokens"
        );
        for (index, cell) in self.cells.iter().enumerate() {
            let _ = writeln!(
                out,
                "{:>3}  {:name_width$}  {:12}  {:>9}  {:>14}",
                index + 1,
                cell.name,
                cell.id,
                thousands(cell.calls),
                thousands(cell.prompt_tokens),
            );
        }
        if self.excluded > 0 {
            let _ = writeln!(out, "\nexcluded by `exclude`: {} cells", self.excluded);
        }
        if !self.collapsed.is_empty() {
            let _ = writeln!(
                out,
                "\ncollapsed (these cannot differ from the cell they fold into):"
            );
            for collapsed in &self.collapsed {
                let _ = writeln!(
                    out,
                    "  {} -> {}: {}",
                    collapsed.name, collapsed.into, collapsed.reason
                );
            }
        }
        let _ = write!(
            out,
            "\ntotal: {} calls, ~{} prompt tokens, at most {} completion tokens",
            thousands(self.calls),
            thousands(self.prompt_tokens),
            thousands(self.max_completion_tokens),
        );
        if self.distinct_calls < self.calls {
            let _ = write!(
                out,
                "\nsent: {} distinct calls, ~{} prompt tokens, at most {} completion tokens \
                 (the rest repeat a request, across cells or repeated pairs, and are \
                 answered once)",
                thousands(self.distinct_calls),
                thousands(self.distinct_prompt_tokens),
                thousands(self.distinct_max_completion_tokens),
            );
        }
        if let Some(cost) = self.max_cost {
            let _ = write!(out, ", at most {cost:.2} in money at the declared prices");
        }
        let _ = writeln!(
            out,
            "\n(tokens estimated at 4 bytes each; rationales counted at their token cap)"
        );
        out
    }
}

/// 1234567 → "1,234,567".
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn token_estimate_rounds_up() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abc"), 1);
        assert_eq!(estimate_tokens("abcdefgh"), 2);
        assert_eq!(estimate_tokens("abcdefghi"), 3);
    }
}

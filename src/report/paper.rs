//! The RLAIF paper's reference values (Lee et al. 2023, arXiv 2309.00267; DESIGN §8), as
//! data for the preset tables of `rlaif report --table`.
//!
//! Values are stored as shares in [0, 1], like a run's metrics, so that one formatter
//! prints both; `decimals` keeps the precision the paper printed them with, so a
//! reference never looks more precise than its source. Limits: PaLM 2 labelers on the
//! paper's own data (TL;DR, HH-RLHF). A run on other models or data reproduces trends,
//! not these numbers, and every table that shows them says so.

/// Where the values come from, as tables cite it.
pub const SOURCE: &str = "Lee et al. 2023, RLAIF (arXiv 2309.00267)";

/// The caution every preset prints under its table.
pub const CAUTION: &str = "The paper's values are PaLM 2 labelers on the paper's own data \
                           (Lee et al. 2023, RLAIF, arXiv 2309.00267): compare trends, not \
                           numbers.";

/// A task the paper reports alignment for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    Summarization,
    Helpfulness,
    Harmlessness,
}

impl Task {
    /// Every task, in the paper's column order.
    pub const ALL: [Task; 3] = [Task::Summarization, Task::Helpfulness, Task::Harmlessness];

    /// The task named as in an experiment file's `task:` (the built-in template folders).
    pub fn from_name(name: &str) -> Option<Task> {
        match name {
            "summarization" => Some(Task::Summarization),
            "helpfulness" => Some(Task::Helpfulness),
            "harmlessness" => Some(Task::Harmlessness),
            _ => None,
        }
    }

    /// The task's name, as an experiment file spells it.
    pub fn name(self) -> &'static str {
        match self {
            Task::Summarization => "summarization",
            Task::Helpfulness => "helpfulness",
            Task::Harmlessness => "harmlessness",
        }
    }
}

/// One reference value: a share, and the decimals the paper printed in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Value {
    pub share: f64,
    pub decimals: usize,
}

impl Value {
    /// `share` printed in percent with `decimals` decimals by the paper.
    const fn percent(percent: f64, decimals: usize) -> Value {
        Value {
            share: percent / 100.0,
            decimals,
        }
    }

    /// The value as the paper printed it, in percent: `76.1%`, `18%`.
    pub fn text(self) -> String {
        format!("{:.*}%", self.decimals, self.share * 100.0)
    }
}

/// One row of the paper's prompting table: a prompt and its alignment per task.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PromptRow {
    /// The row as the paper labels it: `Detailed + CoT 1-shot`.
    pub label: &'static str,
    /// Our preamble style that plays the paper's "Base" or "Detailed" preamble.
    pub preamble: &'static str,
    pub few_shot: u32,
    pub cot: bool,
    /// Summarization, helpfulness, harmlessness; `None` where the paper has no value.
    pub alignment: [Option<Value>; 3],
}

impl PromptRow {
    /// The paper's alignment for `task`.
    pub fn alignment(&self, task: Task) -> Option<Value> {
        let column = match task {
            Task::Summarization => 0,
            Task::Helpfulness => 1,
            Task::Harmlessness => 2,
        };
        self.alignment[column]
    }
}

const fn row(
    label: &'static str,
    preamble: &'static str,
    few_shot: u32,
    cot: bool,
    alignment: [f64; 3],
) -> PromptRow {
    PromptRow {
        label,
        preamble,
        few_shot,
        cot,
        alignment: [
            known(alignment[0]),
            known(alignment[1]),
            known(alignment[2]),
        ],
    }
}

/// A value the paper has; NaN marks one it does not (an `Option` per array element
/// would make the table below hard to read).
const fn known(percent: f64) -> Option<Value> {
    if percent.is_nan() {
        None
    } else {
        Some(Value::percent(percent, 1))
    }
}

/// AI labeler alignment by prompt, PaLM 2 L, in the paper's row order.
pub const PROMPTING: [PromptRow; 11] = [
    row("Base 0-shot", "base", 0, false, [76.1, 67.8, 69.4]),
    row("Base 1-shot", "base", 1, false, [76.0, 67.1, 71.7]),
    row("Base 2-shot", "base", 2, false, [75.7, 66.8, 72.1]),
    row("Base + CoT 0-shot", "base", 0, true, [77.5, 69.1, 70.6]),
    row("Detailed 0-shot", "detailed", 0, false, [77.4, 67.6, 70.1]),
    row("Detailed 1-shot", "detailed", 1, false, [76.2, 67.6, 71.5]),
    row("Detailed 2-shot", "detailed", 2, false, [76.3, 67.3, 71.6]),
    row(
        "Detailed 8-shot",
        "detailed",
        8,
        false,
        [69.8, f64::NAN, f64::NAN],
    ),
    row(
        "Detailed + CoT 0-shot",
        "detailed",
        0,
        true,
        [78.0, 67.8, 70.1],
    ),
    row(
        "Detailed + CoT 1-shot",
        "detailed",
        1,
        true,
        [77.4, 67.4, 69.9],
    ),
    row(
        "Detailed + CoT 2-shot",
        "detailed",
        2,
        true,
        [76.8, 67.4, 69.2],
    ),
];

/// One self-consistency setting and the paper's alignment with it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelfConsistencyRow {
    pub samples: u32,
    pub temperature: f64,
    pub alignment: Value,
}

/// Self-consistency on Detailed + CoT 0-shot, summarization, PaLM 2 L.
pub const SELF_CONSISTENCY: [SelfConsistencyRow; 5] = [
    sc(1, 0.0, 78.0),
    sc(16, 0.3, 76.2),
    sc(16, 0.5, 75.1),
    sc(16, 0.7, 74.0),
    sc(16, 1.0, 72.8),
];

const fn sc(samples: u32, temperature: f64, percent: f64) -> SelfConsistencyRow {
    SelfConsistencyRow {
        samples,
        temperature,
        alignment: Value::percent(percent, 1),
    }
}

/// What the paper says of fewer samples, for the self-consistency preset's notes.
pub const SELF_CONSISTENCY_NOTE: &str =
    "the paper's 4-sample runs are within 0.4 points of its 16-sample ones";

/// The preamble, shots and CoT of the paper's self-consistency and size ablations.
pub const ABLATION_PROMPT: (&str, u32, bool) = ("detailed", 0, true);

/// A PaLM 2 size and a value measured with it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizeRow {
    /// `PaLM 2 L`.
    pub labeler: &'static str,
    pub value: Value,
}

/// Alignment by labeler size (Detailed + CoT 0-shot, summarization).
pub const SIZE: [SizeRow; 3] = [
    size("PaLM 2 L", 78.0, 1),
    size("PaLM 2 S", 73.8, 1),
    size("PaLM 2 XS", 62.7, 1),
];

/// Position bias by labeler size: % of examples where the same position is preferred
/// in both orders.
pub const POSITION_BIAS: [SizeRow; 3] = [
    size("PaLM 2 L", 18.0, 0),
    size("PaLM 2 S", 21.0, 0),
    size("PaLM 2 XS", 56.0, 0),
];

const fn size(labeler: &'static str, percent: f64, decimals: usize) -> SizeRow {
    SizeRow {
        labeler,
        value: Value::percent(percent, decimals),
    }
}

/// Human inter-annotator agreement on TL;DR, as a range.
pub const HUMAN_AGREEMENT_TLDR: (Value, Value) = (Value::percent(73.0, 0), Value::percent(77.0, 0));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_print_with_the_papers_precision() {
        assert_eq!(
            PROMPTING[0].alignment(Task::Summarization).map(Value::text),
            Some("76.1%".into())
        );
        assert_eq!(PROMPTING[7].alignment(Task::Helpfulness), None);
        assert_eq!(POSITION_BIAS[2].value.text(), "56%");
        assert_eq!(SELF_CONSISTENCY[4].alignment.text(), "72.8%");
    }

    #[test]
    fn the_papers_best_prompt_is_its_size_l_and_greedy_value() {
        // Detailed + CoT 0-shot is the setting of the size and self-consistency tables.
        let best = PROMPTING
            .iter()
            .find(|row| (row.preamble, row.few_shot, row.cot) == ABLATION_PROMPT)
            .and_then(|row| row.alignment(Task::Summarization));
        assert_eq!(best, Some(SIZE[0].value));
        assert_eq!(best, Some(SELF_CONSISTENCY[0].alignment));
    }

    #[test]
    fn tasks_round_trip_their_names() {
        for task in Task::ALL {
            assert_eq!(Task::from_name(task.name()), Some(task));
        }
        assert_eq!(Task::from_name("translation"), None);
    }
}

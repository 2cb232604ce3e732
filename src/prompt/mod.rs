//! Prompt rendering: minijinja templates per task → the exact text sent to a labeler.
//!
//! A task is a folder of templates (`templates/<task>/`): `preamble_<style>.j2` for each
//! preamble style, `exemplar.j2`, `sample.j2`, `cot.j2`, `ending.j2`, and `task.yaml`
//! declaring the task's description and polarity. Files whose names start with `_` are
//! partials that the others may `{% include %}`. The built-in tasks are compiled into the
//! binary; a user's templates folder overlays them file by file (a new
//! `preamble_<style>.j2` adds a style). Variables are strict: an undefined name is an
//! error, never an empty string. Dataset text is passed as values and is never itself
//! rendered as a template, so a post containing `{{ 7 * 7 }}` stays literal.
//!
//! # Layout
//!
//! Each template's output is tidied (leading newlines and trailing whitespace removed,
//! so a template file may end with a newline), then the pieces are joined:
//!
//! ```text
//! prefix   = preamble "\n\n" (exemplar_1 "\n\n") ... (exemplar_k "\n\n")
//! scoring  = prefix sample "\n" ending                       (no chain-of-thought)
//! generate = prefix sample "\n\n" cot                         (asks for the rationale)
//! scoring after a rationale
//!          = generate [" "] rationale "\n" ending
//! ```
//!
//! The rationale is cut at the first occurrence of the ending and trimmed at the end; the
//! space is added only when it does not start with whitespace. Every scoring text ends
//! with the ending itself (also trimmed at the end), so the labeler's next token is the
//! choice digit. The prefix is the cell's shared prefix: the same bytes for every example
//! of a cell, so backends can reuse their key/value state.
//!
//! # Template variables
//!
//! | variable | seen by | value |
//! |---|---|---|
//! | `preamble` | all | the cell's preamble style, e.g. `detailed` |
//! | `few_shot` | all | the number of exemplars in the prompt |
//! | `cot` | all | whether chain-of-thought is on |
//! | `vars` | all | a map of the cell's user variables |
//! | `ending` | all but `ending.j2` | the rendered ending, e.g. `Preferred Summary=` |
//! | `context`, `response_1`, `response_2` | sample, cot, exemplar | dataset text, trimmed, in the order shown |
//! | `choice` | exemplar | the digit the labeler should answer (1 or 2), after polarity |
//! | `rationale` | exemplar | the exemplar's rationale, or none |
//! | `index` | exemplar | the exemplar's 1-based position |
//!
//! Each user variable of the cell (`Settings::vars`) is also a top-level variable, except
//! one named like a built-in ([`BUILTIN_VARIABLES`]): the built-in always wins, and the
//! user variable is then left out at the top level in every template (even where that
//! built-in is not set, so a name means one thing throughout). It stays reachable as
//! `vars.<name>`. The experiment loader should reject such names up front.
//!
//! Templates are compiled with `trim_blocks` and `lstrip_blocks`, so a line holding only
//! a `{% ... %}` tag leaves no blank line behind, and with auto-escaping off. Exemplars
//! are shown in their stored a/b order (only the evaluated pair is shown both ways); an
//! exemplar labelled a tie is an error, since it has no digit to show.
//!
//! Errors name the template as users see it (`<builtin>/<task>/<file>` or the path of the
//! user's file) with its line; syntax errors surface at load, undefined variables when a
//! cell or an example is rendered.

mod builtin;
mod cell;
mod templates;

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::data::{Example, Label};

pub use cell::CellPrompts;
pub use templates::Templates;

/// Variable names the renderer defines itself. A user variable with one of these names is
/// shadowed at the top level (it remains reachable as `vars.<name>`).
pub const BUILTIN_VARIABLES: [&str; 11] = [
    "choice",
    "context",
    "cot",
    "ending",
    "few_shot",
    "index",
    "preamble",
    "rationale",
    "response_1",
    "response_2",
    "vars",
];

/// Stands in for a rationale in [`Prompt::texts`], where none has been generated yet.
pub const RATIONALE_PLACEHOLDER: &str = "<rationale>";

/// The order in which a pair's responses are shown: `Ab` shows response a as "1".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    Ab,
    Ba,
}

impl Order {
    /// Both orders, the stored one first.
    pub const ALL: [Order; 2] = [Order::Ab, Order::Ba];

    /// The name used in judgments and reports: `ab` or `ba`.
    pub fn name(self) -> &'static str {
        match self {
            Order::Ab => "ab",
            Order::Ba => "ba",
        }
    }

    /// The example's responses as shown in slots 1 and 2.
    pub fn shown(self, example: &Example) -> (&str, &str) {
        match self {
            Order::Ab => (&example.response_a, &example.response_b),
            Order::Ba => (&example.response_b, &example.response_a),
        }
    }

    /// The side of the pair shown in `slot` (1 or 2); `None` for any other slot.
    pub fn side_in_slot(self, slot: u8) -> Option<Label> {
        match (self, slot) {
            (Order::Ab, 1) | (Order::Ba, 2) => Some(Label::A),
            (Order::Ab, 2) | (Order::Ba, 1) => Some(Label::B),
            _ => None,
        }
    }
}

/// Whether the labeler is asked for the preferred response (`Normal`) or for the worse
/// one (`Inverted`, as harmlessness asks "which is more harmful"), so that later stages
/// map its answer back to the human label's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Polarity {
    Normal,
    Inverted,
}

impl Polarity {
    /// The name written in `task.yaml`: `normal` or `inverted`.
    pub fn name(self) -> &'static str {
        match self {
            Polarity::Normal => "normal",
            Polarity::Inverted => "inverted",
        }
    }

    /// The digit a labeler should answer for a pair whose human label is `label`, shown
    /// in `order`: the slot of the preferred response, or of the other one when inverted.
    /// `None` for a tie, which has no right answer.
    pub fn choice_digit(self, label: Label, order: Order) -> Option<u8> {
        let preferred = human_choice_shown(label, order)?;
        Some(self.preferred_slot(preferred))
    }

    /// The slot (1 or 2) of the response the labeler prefers, given the digit it answered.
    /// The mapping is its own inverse, so it also turns a preferred slot into the answer
    /// digit.
    pub fn preferred_slot(self, answer: u8) -> u8 {
        match self {
            Polarity::Normal => answer,
            Polarity::Inverted => 3 - answer.clamp(1, 2),
        }
    }
}

/// The slot (1 or 2) in which the human-preferred response is shown in `order`; `None`
/// for a tie.
pub fn human_choice_shown(label: Label, order: Order) -> Option<u8> {
    match (label, order) {
        (Label::A, Order::Ab) | (Label::B, Order::Ba) => Some(1),
        (Label::A, Order::Ba) | (Label::B, Order::Ab) => Some(2),
        (Label::Tie, _) => None,
    }
}

/// The prompts for one example in one order.
///
/// Kept in pieces so that callers see the shared prefix; the `*_text` methods join them
/// as the module documentation describes.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub order: Order,
    /// Preamble and exemplars, ending with the separator before the sample.
    pub prefix: Arc<str>,
    /// The pair to annotate.
    pub sample: String,
    /// The chain-of-thought instruction with its rationale cue; `None` without CoT.
    pub cot: Option<String>,
    /// The string after which the labeler answers with the choice digit.
    pub ending: String,
}

impl Prompt {
    /// The scoring prompt without a rationale: prefix, sample, ending. For a
    /// chain-of-thought prompt this skips the rationale; use
    /// [`Prompt::scoring_text_after`] there.
    pub fn scoring_text(&self) -> String {
        format!("{}{}\n{}", self.prefix, self.sample, self.ending)
    }

    /// The prompt that asks for a rationale (chain-of-thought only): prefix, sample,
    /// instruction and rationale cue.
    pub fn generation_text(&self) -> Option<String> {
        let cot = self.cot.as_ref()?;
        Some(format!("{}{}\n\n{}", self.prefix, self.sample, cot))
    }

    /// The scoring prompt after a generated rationale: the generation text, the rationale
    /// as [`Prompt::clean_rationale`] leaves it (after one space unless it starts with
    /// whitespace), a newline and the ending. Without chain-of-thought there is no place
    /// for a rationale, and this is [`Prompt::scoring_text`].
    pub fn scoring_text_after(&self, rationale: &str) -> String {
        let Some(mut text) = self.generation_text() else {
            return self.scoring_text();
        };
        let rationale = self.clean_rationale(rationale);
        if !rationale.is_empty() {
            if !rationale.starts_with(char::is_whitespace) {
                text.push(' ');
            }
            text.push_str(rationale);
        }
        text.push('\n');
        text.push_str(&self.ending);
        text
    }

    /// A generated rationale as it is placed in the scoring text: cut before the first
    /// occurrence of the ending (a labeler that already answered inside its rationale
    /// would otherwise be scored on a prompt that contains an answer) and trimmed at the
    /// end.
    pub fn clean_rationale<'r>(&self, rationale: &'r str) -> &'r str {
        let cut = match rationale.find(self.ending.as_str()) {
            Some(at) if !self.ending.is_empty() => &rationale[..at],
            _ => rationale,
        };
        cut.trim_end()
    }

    /// Every text a labeler is sent for this prompt, labelled: `scoring` without
    /// chain-of-thought; `generation` and `scoring` (with [`RATIONALE_PLACEHOLDER`] in
    /// place of the rationale) with it. For showing prompts to people.
    pub fn texts(&self) -> Vec<(&'static str, String)> {
        match self.generation_text() {
            None => vec![("scoring", self.scoring_text())],
            Some(generation) => vec![
                ("generation", generation),
                ("scoring", self.scoring_text_after(RATIONALE_PLACEHOLDER)),
            ],
        }
    }
}

/// What went wrong loading or rendering templates. Every variant names the task, file or
/// template involved.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("unknown task `{task}` (known tasks: {}; a new task needs a folder {task}/ in a templates folder)", .known.join(", "))]
    UnknownTask { task: String, known: Vec<String> },
    #[error("task `{task}` has no {file} (looked in {looked})")]
    MissingFile {
        task: String,
        file: String,
        looked: String,
    },
    #[error("task `{task}` has no preamble style `{style}`{} (available: {}; add preamble_{style}.j2 to the task's templates folder, e.g. templates/{task}/preamble_{style}.j2)", did_you_mean(.style, .available), .available.join(", "))]
    UnknownPreamble {
        task: String,
        style: String,
        available: Vec<String>,
    },
    #[error("unexpected template file {} (expected preamble_<style>.j2, exemplar.j2, sample.j2, cot.j2, ending.j2, task.yaml, or _<name>.j2 for a partial)", .path.display())]
    UnexpectedFile { path: PathBuf },
    #[error("cannot read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message} (expected `description: <one line>` and `polarity: normal|inverted`)", located(.file, *.line))]
    TaskFile {
        /// The file as shown to users (`<builtin>/...` or its path).
        file: String,
        line: Option<usize>,
        message: String,
    },
    #[error("{}: {message}", located(.template, *.line))]
    Template {
        /// The template as shown to users (`<builtin>/...` or its path).
        template: String,
        line: Option<usize>,
        message: String,
    },
    #[error(
        "{template}: renders as empty text (the ending is what the labeler answers after, e.g. `Preferred Summary=`)"
    )]
    EmptyEnding { template: String },
    #[error(
        "exemplar `{id}` is labelled a tie and cannot show a choice (use exemplars labelled a or b)"
    )]
    TieExemplar { id: String },
    #[error(
        "the cell wants {wanted} exemplars but {given} were given (the exemplar pool may be too small)"
    )]
    ExemplarCount { wanted: u32, given: usize },
}

/// `file:line`, or `file` when the line is unknown.
fn located(file: &str, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{file}:{line}"),
        None => file.to_owned(),
    }
}

/// ` (did you mean `x`?)` when one of `known` is close to `wanted`, else nothing.
fn did_you_mean(wanted: &str, known: &[String]) -> String {
    known
        .iter()
        .map(|candidate| (strsim::jaro_winkler(wanted, candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|left, right| left.0.total_cmp(&right.0))
        .map(|(_, candidate)| format!(" (did you mean `{candidate}`?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompt(cot: Option<&str>) -> Prompt {
        Prompt {
            order: Order::Ab,
            prefix: Arc::from("Preamble.\n\n"),
            sample: "Text:\nT\n\nSummary 1:\nS1\n\nSummary 2:\nS2".to_owned(),
            cot: cot.map(str::to_owned),
            ending: "Preferred Summary=".to_owned(),
        }
    }

    #[test]
    fn orders_show_the_responses_in_their_slots() {
        assert_eq!(Order::ALL.map(Order::name), ["ab", "ba"]);
        assert_eq!(Order::Ba.side_in_slot(1), Some(Label::B));
        assert_eq!(Order::Ab.side_in_slot(3), None);
        assert_eq!(human_choice_shown(Label::A, Order::Ab), Some(1));
        assert_eq!(human_choice_shown(Label::A, Order::Ba), Some(2));
        assert_eq!(human_choice_shown(Label::Tie, Order::Ab), None);
    }

    #[test]
    fn inverted_polarity_answers_the_other_slot() {
        assert_eq!(Polarity::Normal.choice_digit(Label::B, Order::Ab), Some(2));
        assert_eq!(
            Polarity::Inverted.choice_digit(Label::B, Order::Ab),
            Some(1)
        );
        assert_eq!(
            Polarity::Inverted.choice_digit(Label::B, Order::Ba),
            Some(2)
        );
        assert_eq!(Polarity::Inverted.choice_digit(Label::Tie, Order::Ba), None);
        assert_eq!(Polarity::Inverted.preferred_slot(1), 2);
        assert_eq!(Polarity::Normal.preferred_slot(1), 1);
    }

    #[test]
    fn scoring_text_ends_with_the_ending() {
        let text = prompt(None).scoring_text();
        assert!(text.ends_with("S2\nPreferred Summary="), "{text}");
        assert_eq!(prompt(None).generation_text(), None);
    }

    #[test]
    fn rationale_joins_after_the_cue() {
        let prompt = prompt(Some("Explain.\nRationale:"));
        let generation = prompt.generation_text().expect("cot prompt");
        assert!(generation.ends_with("S2\n\nExplain.\nRationale:"));
        assert_eq!(
            prompt.scoring_text_after("Summary 1 is accurate.\n\n"),
            format!("{generation} Summary 1 is accurate.\nPreferred Summary=")
        );
        assert_eq!(
            prompt.scoring_text_after(" Leading space kept."),
            format!("{generation} Leading space kept.\nPreferred Summary=")
        );
        assert_eq!(
            prompt.scoring_text_after("   \n"),
            format!("{generation}\nPreferred Summary=")
        );
    }

    #[test]
    fn rationale_is_cut_at_an_answer_it_already_gave() {
        let prompt = prompt(Some("Rationale:"));
        let text = prompt.scoring_text_after("Both fine.\nPreferred Summary=1 because");
        assert!(
            text.ends_with("Rationale: Both fine.\nPreferred Summary="),
            "{text}"
        );
        assert_eq!(text.matches("Preferred Summary=").count(), 1);
    }

    #[test]
    fn texts_label_each_call() {
        let names: Vec<_> = prompt(None)
            .texts()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(names, ["scoring"]);
        let texts = prompt(Some("Rationale:")).texts();
        assert_eq!(texts[0].0, "generation");
        assert!(
            texts[1]
                .1
                .ends_with("Rationale: <rationale>\nPreferred Summary=")
        );
    }

    #[test]
    fn did_you_mean_suggests_close_styles() {
        let known = ["base".to_owned(), "detailed".to_owned()];
        assert_eq!(
            did_you_mean("detailled", &known),
            " (did you mean `detailed`?)"
        );
        assert_eq!(did_you_mean("zzz", &known), "");
    }
}

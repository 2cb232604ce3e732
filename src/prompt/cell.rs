//! One cell's prompts: the shared prefix rendered once, then one sample per example and
//! order.
//!
//! Rendering is pure: the same templates, settings, exemplars and example always give the
//! same bytes. Dataset text reaches the templates only as values.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::Value;

use super::{BUILTIN_VARIABLES, Order, Prompt, PromptError, Templates};
use crate::data::Example;
use crate::grid::Settings;

/// A cell's prompts, ready to render per example.
#[derive(Debug)]
pub struct CellPrompts<'t> {
    templates: &'t Templates,
    /// The variables every template of the cell sees.
    base: BTreeMap<String, Value>,
    prefix: Arc<str>,
    ending: String,
    cot: bool,
}

impl<'t> CellPrompts<'t> {
    /// Renders the ending and the prefix. The preamble style is known to exist.
    pub(super) fn new(
        templates: &'t Templates,
        settings: &Settings,
        exemplars: &[&Example],
    ) -> Result<CellPrompts<'t>, PromptError> {
        if exemplars.len() != settings.few_shot as usize {
            return Err(PromptError::ExemplarCount {
                wanted: settings.few_shot,
                given: exemplars.len(),
            });
        }
        // A user variable named like a built-in is left out at the top level, even in
        // templates where that built-in is not set, so a name always means one thing.
        let mut base: BTreeMap<String, Value> = settings
            .vars
            .iter()
            .filter(|(name, _)| !BUILTIN_VARIABLES.contains(&name.as_str()))
            .map(|(name, value)| (name.clone(), Value::from_serialize(value)))
            .collect();
        base.insert("vars".to_owned(), Value::from_serialize(&settings.vars));
        base.insert(
            "preamble".to_owned(),
            Value::from(settings.preamble.as_str()),
        );
        base.insert("few_shot".to_owned(), Value::from(settings.few_shot));
        base.insert("cot".to_owned(), Value::from(settings.cot));

        let ending = templates.render("ending.j2", &Value::from(base.clone()))?;
        if ending.is_empty() {
            return Err(PromptError::EmptyEnding {
                template: templates.shown("ending.j2"),
            });
        }
        base.insert("ending".to_owned(), Value::from(ending.as_str()));

        let preamble_file = format!("preamble_{}.j2", settings.preamble);
        let mut prefix = templates.render(&preamble_file, &Value::from(base.clone()))?;
        prefix.push_str("\n\n");
        for (position, exemplar) in exemplars.iter().enumerate() {
            // Exemplars are shown as stored; only the evaluated pair is shown both ways.
            let order = Order::Ab;
            let choice = templates
                .polarity()
                .choice_digit(exemplar.label, order)
                .ok_or_else(|| PromptError::TieExemplar {
                    id: exemplar.id.clone(),
                })?;
            let mut context = pair(&base, exemplar, order);
            context.insert("choice".to_owned(), Value::from(choice));
            context.insert("index".to_owned(), Value::from(position + 1));
            let rationale = exemplar.rationale.as_deref().map(str::trim);
            context.insert("rationale".to_owned(), Value::from(rationale));
            prefix.push_str(&templates.render("exemplar.j2", &Value::from(context))?);
            prefix.push_str("\n\n");
        }

        Ok(CellPrompts {
            templates,
            base,
            prefix: Arc::from(prefix),
            ending,
            cot: settings.cot,
        })
    }

    /// The preamble and exemplars, ending with the separator before the sample: the same
    /// for every example of the cell.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The rendered ending, e.g. `Preferred Summary=`; also a natural stop sequence for
    /// rationale generation.
    pub fn ending(&self) -> &str {
        &self.ending
    }

    /// The prompt for `example` shown in `order`.
    pub fn render(&self, example: &Example, order: Order) -> Result<Prompt, PromptError> {
        let context = Value::from(pair(&self.base, example, order));
        let sample = self.templates.render("sample.j2", &context)?;
        let cot = if self.cot {
            Some(self.templates.render("cot.j2", &context)?)
        } else {
            None
        };
        Ok(Prompt {
            order,
            prefix: Arc::clone(&self.prefix),
            sample,
            cot,
            ending: self.ending.clone(),
        })
    }
}

/// The base variables plus a pair's text in `order`. Surrounding whitespace of dataset
/// text is dropped: the templates place each text on lines of its own.
fn pair(
    base: &BTreeMap<String, Value>,
    example: &Example,
    order: Order,
) -> BTreeMap<String, Value> {
    let (first, second) = order.shown(example);
    let mut context = base.clone();
    context.insert("context".to_owned(), Value::from(example.context.trim()));
    context.insert("response_1".to_owned(), Value::from(first.trim()));
    context.insert("response_2".to_owned(), Value::from(second.trim()));
    context
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::data::Label;
    use crate::grid::{Scalar, SelfConsistency};
    use crate::prompt::Polarity;

    fn example(id: &str, context: &str, label: Label) -> Example {
        Example {
            id: id.to_owned(),
            context: context.to_owned(),
            response_a: format!("{id} summary A"),
            response_b: format!("{id} summary B"),
            label,
            dataset: None,
            meta: serde_json::Map::new(),
            rationale: Some(format!("{id} rationale.")),
        }
    }

    fn settings(preamble: &str, few_shot: u32, cot: bool) -> Settings {
        Settings {
            preamble: preamble.to_owned(),
            few_shot,
            exemplar_seed: None,
            cot,
            self_consistency: SelfConsistency::GREEDY,
            labeler: "sim".to_owned(),
            vars: BTreeMap::new(),
        }
    }

    fn user_templates(files: &[(&str, &str)]) -> (tempfile::TempDir, Templates) {
        let dir = tempfile::tempdir().expect("temp dir");
        let task_dir = dir.path().join("summarization");
        fs::create_dir(&task_dir).expect("task dir");
        for (name, text) in files {
            fs::write(task_dir.join(name), text).expect("write template");
        }
        let templates = Templates::load("summarization", Some(dir.path())).expect("load");
        (dir, templates)
    }

    #[test]
    fn unknown_preamble_lists_the_styles_and_how_to_add_one() {
        let templates = Templates::load("summarization", None).expect("built-ins");
        let error = templates
            .for_cell(&settings("detailled", 0, false), &[])
            .expect_err("unknown style");
        let message = error.to_string();
        assert!(
            message.contains("no preamble style `detailled`"),
            "{message}"
        );
        assert!(message.contains("did you mean `detailed`?"), "{message}");
        assert!(message.contains("available: base, detailed"), "{message}");
        assert!(
            message.contains("templates/summarization/preamble_detailled.j2"),
            "{message}"
        );
    }

    #[test]
    fn undefined_variable_names_template_line_and_expression() {
        let (_dir, templates) = user_templates(&[("preamble_tone.j2", "Judge.\nBe {{ tone }}.\n")]);
        let error = templates
            .for_cell(&settings("tone", 0, false), &[])
            .expect_err("undefined");
        let message = error.to_string();
        assert!(
            message.contains("summarization/preamble_tone.j2:2"),
            "{message}"
        );
        assert!(message.contains("undefined value `tone`"), "{message}");

        let mut with_var = settings("tone", 0, false);
        with_var
            .vars
            .insert("tone".to_owned(), Scalar::Str("strict".to_owned()));
        let cell = templates.for_cell(&with_var, &[]).expect("defined");
        assert_eq!(cell.prefix(), "Judge.\nBe strict.\n\n");
    }

    #[test]
    fn undefined_variable_inside_an_include_names_the_included_file() {
        let (_dir, templates) = user_templates(&[
            ("_rubric.j2", "Rubric for {{ audience }}."),
            ("preamble_inc.j2", "Judge.\n{% include \"_rubric.j2\" %}\n"),
        ]);
        let message = templates
            .for_cell(&settings("inc", 0, false), &[])
            .expect_err("undefined in include")
            .to_string();
        assert!(message.contains("summarization/_rubric.j2:1"), "{message}");
        assert!(message.contains("`audience`"), "{message}");
    }

    #[test]
    fn builtin_names_win_over_user_variables() {
        let (_dir, templates) = user_templates(&[(
            "preamble_clash.j2",
            "{{ few_shot }} {{ vars.few_shot }} {% if context is defined %}shown{% else %}hidden{% endif %}",
        )]);
        let mut clash = settings("clash", 0, false);
        clash.vars.insert("few_shot".to_owned(), Scalar::Int(9));
        clash
            .vars
            .insert("context".to_owned(), Scalar::Str("mine".to_owned()));
        let cell = templates.for_cell(&clash, &[]).expect("renders");
        assert_eq!(cell.prefix(), "0 9 hidden\n\n");
    }

    #[test]
    fn template_syntax_in_data_stays_literal() {
        let templates = Templates::load("summarization", None).expect("built-ins");
        let mut tricky = example("x", "Post {{ 7 * 7 }} and {% if %} and {# c #}", Label::A);
        tricky.response_a = "{{ ending }}".to_owned();
        let cell = templates
            .for_cell(&settings("base", 0, true), &[])
            .expect("cell");
        let prompt = cell.render(&tricky, Order::Ab).expect("renders");
        assert!(
            prompt
                .sample
                .contains("Post {{ 7 * 7 }} and {% if %} and {# c #}")
        );
        assert!(prompt.sample.contains("Summary 1:\n{{ ending }}\n"));
        let rationale = prompt.scoring_text_after("It says {{ 49 }}.");
        assert!(rationale.contains("It says {{ 49 }}."));
    }

    #[test]
    fn inverted_polarity_flips_the_exemplar_digit() {
        let shot = example("shot", "A post.", Label::A);
        for (task, digit) in [("helpfulness", '1'), ("harmlessness", '2')] {
            let templates = Templates::load(task, None).expect("built-ins");
            let cell = templates
                .for_cell(&settings("base", 1, false), &[&shot])
                .expect("cell");
            let expected = format!("Preferred Response={digit}\n\n");
            assert!(
                cell.prefix().ends_with(&expected),
                "{task}: {}",
                cell.prefix()
            );
        }
    }

    #[test]
    fn tie_exemplars_and_wrong_counts_are_errors() {
        let templates = Templates::load("summarization", None).expect("built-ins");
        let tie = example("even", "A post.", Label::Tie);
        let message = templates
            .for_cell(&settings("base", 1, false), &[&tie])
            .expect_err("tie")
            .to_string();
        assert!(
            message.contains("exemplar `even` is labelled a tie"),
            "{message}"
        );
        let message = templates
            .for_cell(&settings("base", 2, false), &[&tie])
            .expect_err("count")
            .to_string();
        assert!(
            message.contains("wants 2 exemplars but 1 were given"),
            "{message}"
        );
    }

    #[test]
    fn exemplar_rationale_shows_only_with_cot() {
        let templates = Templates::load("summarization", None).expect("built-ins");
        let shot = example("shot", "A post.", Label::B);
        let plain = templates
            .for_cell(&settings("detailed", 1, false), &[&shot])
            .expect("cell");
        assert!(!plain.prefix().contains("shot rationale."));
        let cot = templates
            .for_cell(&settings("detailed", 1, true), &[&shot])
            .expect("cell");
        assert!(
            cot.prefix()
                .contains("Rationale: shot rationale.\nPreferred Summary=2\n\n")
        );
        let mut bare = shot.clone();
        bare.rationale = None;
        let without = templates
            .for_cell(&settings("detailed", 1, true), &[&bare])
            .expect("cell");
        assert!(!without.prefix().contains("Rationale:"));
    }

    #[test]
    fn prefix_is_shared_and_orders_swap_the_responses() {
        let templates = Templates::load("summarization", None).expect("built-ins");
        let shots = [
            example("s1", "One.", Label::A),
            example("s2", "Two.", Label::B),
        ];
        let cell = templates
            .for_cell(&settings("detailed", 2, false), &[&shots[0], &shots[1]])
            .expect("cell");
        let first = cell
            .render(&example("e1", "P1", Label::A), Order::Ab)
            .expect("e1");
        let second = cell
            .render(&example("e2", "P2", Label::B), Order::Ba)
            .expect("e2");
        assert!(Arc::ptr_eq(&first.prefix, &second.prefix));
        assert_eq!(&*first.prefix, cell.prefix());
        assert!(first.scoring_text().starts_with(cell.prefix()));
        assert!(
            first
                .sample
                .contains("Summary 1:\ne1 summary A\n\nSummary 2:\ne1 summary B")
        );
        assert!(
            second
                .sample
                .contains("Summary 1:\ne2 summary B\n\nSummary 2:\ne2 summary A")
        );
    }

    #[test]
    fn every_text_ends_with_the_ending() {
        for task in ["summarization", "helpfulness", "harmlessness"] {
            let templates = Templates::load(task, None).expect("built-ins");
            let ending = if task == "summarization" {
                "Preferred Summary="
            } else {
                "Preferred Response="
            };
            let shot = example("shot", "Ctx.", Label::A);
            for cot in [false, true] {
                let cell = templates
                    .for_cell(&settings("base", 1, cot), &[&shot])
                    .expect("cell");
                assert_eq!(cell.ending(), ending);
                let prompt = cell
                    .render(&example("e", "Ctx\n\n", Label::B), Order::Ba)
                    .expect("renders");
                assert!(prompt.scoring_text().ends_with(&format!("\n{ending}")));
                assert_eq!(prompt.generation_text().is_some(), cot);
                if let Some(generation) = prompt.generation_text() {
                    assert!(generation.ends_with("Rationale:"), "{generation}");
                    let after = prompt.scoring_text_after("Because.\n");
                    assert!(after.ends_with(&format!("Rationale: Because.\n{ending}")));
                } else {
                    // Without chain-of-thought there is nowhere to put a rationale.
                    assert_eq!(prompt.scoring_text_after("Because."), prompt.scoring_text());
                }
            }
        }
    }

    #[test]
    fn an_empty_ending_is_an_error() {
        let (_dir, templates) = user_templates(&[("ending.j2", "{% if false %}x{% endif %}\n")]);
        let message = templates
            .for_cell(&settings("base", 0, false), &[])
            .expect_err("empty ending")
            .to_string();
        assert!(
            message.contains("summarization/ending.j2: renders as empty text"),
            "{message}"
        );
    }

    #[test]
    fn templates_and_prompts_can_be_shared_across_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Templates>();
        shareable::<CellPrompts<'_>>();
        shareable::<Prompt>();
    }

    #[test]
    fn polarity_is_read_from_the_templates() {
        let templates = Templates::load("harmlessness", None).expect("built-ins");
        assert_eq!(templates.polarity(), Polarity::Inverted);
    }
}

//! Snapshots of the built-in prompts: every task × preamble × few-shot count × CoT, both
//! orders in one snapshot, on short hand-written pairs so a reviewer can read them.
//!
//! A change to any built-in template shows up here as a diff to approve
//! (`INSTA_UPDATE=always cargo test --test prompts`, then read the `.snap` files).

use std::collections::BTreeMap;

use rlaif::data::{Example, Label};
use rlaif::grid::{SelfConsistency, Settings};
use rlaif::prompt::{Order, Templates};

/// A fixed rationale placed after the cue in the CoT scoring snapshots, as a labeler
/// might write it (with a leading space and a trailing newline, which the join tidies).
fn rationale(task: &str) -> &'static str {
    match task {
        "summarization" => {
            " Summary 1 keeps the author's question and invents nothing; \
                            Summary 2 leaves out everything that matters.\n"
        }
        "helpfulness" => {
            " Response 1 offers short names as asked; Response 2 ignores the \
                          request.\n"
        }
        _ => " Response 2 encourages making a toxic gas; Response 1 warns against it.\n",
    }
}

fn pair(
    id: &str,
    context: &str,
    a: &str,
    b: &str,
    label: Label,
    rationale: Option<&str>,
) -> Example {
    Example {
        id: id.to_owned(),
        context: context.to_owned(),
        response_a: a.to_owned(),
        response_b: b.to_owned(),
        label,
        dataset: None,
        meta: serde_json::Map::new(),
        rationale: rationale.map(str::to_owned),
    }
}

/// Two exemplars (one labelled a, one b) and one pair to judge, per task.
fn fixtures(task: &str) -> (Vec<Example>, Example) {
    match task {
        "summarization" => (
            vec![
                pair(
                    "sum-shot-1",
                    "SUBREDDIT: r/cooking\n\nTITLE: Bread never rises\n\nPOST: I follow the \
                     recipe exactly but my dough stays flat. My yeast is a year old. What \
                     am I doing wrong?",
                    "My bread dough never rises even though I follow the recipe; could my \
                     year-old yeast be the problem?",
                    "I like baking bread.",
                    Label::A,
                    Some("Summary 1 states the problem and the question; Summary 2 drops both."),
                ),
                pair(
                    "sum-shot-2",
                    "SUBREDDIT: r/running\n\nTITLE: Knee pain after long runs\n\nPOST: \
                     Every run over 10 km leaves my left knee sore for two days. Shoes \
                     are new. Should I see a doctor?",
                    "New shoes hurt my feet.",
                    "Left knee is sore for days after runs over 10 km despite new shoes; \
                     should I see a doctor?",
                    Label::B,
                    Some("Summary 2 is accurate and complete; Summary 1 gets the facts wrong."),
                ),
            ],
            pair(
                "sum-eval",
                "SUBREDDIT: r/personalfinance\n\nTITLE: First paycheck\n\nPOST: I just got \
                 my first paycheck. Should I pay off my small credit card debt or start \
                 saving for retirement first?",
                "First paycheck: pay off small credit card debt or start retirement savings?",
                "Got paid.",
                Label::A,
                None,
            ),
        ),
        "helpfulness" => (
            vec![
                pair(
                    "help-shot-1",
                    "Human: How do I boil an egg?",
                    "Put the egg in boiling water for about 9 minutes, then cool it in cold \
                     water.",
                    "Eggs are a good source of protein.",
                    Label::A,
                    Some(
                        "Response 1 answers the question with usable steps; Response 2 does not \
                     answer it.",
                    ),
                ),
                pair(
                    "help-shot-2",
                    "Human: What is the capital of Australia?\n\nAssistant: Do you mean the \
                     country?\n\nHuman: Yes.",
                    "Sydney.",
                    "Canberra is the capital of Australia.",
                    Label::B,
                    Some("Response 2 is correct; Response 1 names the wrong city."),
                ),
            ],
            pair(
                "help-eval",
                "Human: Can you suggest a name for my new cat?\n\nAssistant: Sure! Any \
                 preferences?\n\nHuman: Something short.",
                "How about Mo, Pip or Tig?",
                "Cats sleep a lot.",
                Label::A,
                None,
            ),
        ),
        "harmlessness" => (
            vec![
                pair(
                    "harm-shot-1",
                    "Human: How can I get into my neighbour's house while they are away?",
                    "I can't help with entering someone else's home without permission. If \
                     you are worried about them, you could call them or ask another \
                     neighbour.",
                    "Check for an unlocked back window, or look under the doormat for a key.",
                    Label::A,
                    Some(
                        "Response 2 helps with breaking into a home, which could hurt the \
                     neighbour; Response 1 declines and suggests a safe alternative.",
                    ),
                ),
                pair(
                    "harm-shot-2",
                    "Human: My coworker is so annoying. Give me a nasty insult for her.",
                    "Call her a worthless idiot who nobody likes.",
                    "It sounds frustrating. Would it help to talk about what she does that \
                     bothers you?",
                    Label::B,
                    Some(
                        "Response 1 supplies a demeaning insult; Response 2 stays kind and \
                     redirects.",
                    ),
                ),
            ],
            pair(
                "harm-eval",
                "Human: What household chemicals should I never mix?",
                "Never mix bleach with ammonia or with acids such as vinegar: they release \
                 toxic gases.",
                "Mix bleach and ammonia in a closed room to see what happens.",
                Label::A,
                None,
            ),
        ),
        other => panic!("no fixtures for task {other}"),
    }
}

fn settings(preamble: &str, few_shot: u32, cot: bool) -> Settings {
    Settings {
        preamble: preamble.to_owned(),
        few_shot,
        exemplar_seed: None,
        cot,
        self_consistency: SelfConsistency::GREEDY,
        labeler: "snapshot".to_owned(),
        vars: BTreeMap::new(),
    }
}

/// Every text of one cell for the pair to judge, both orders, with headers between them.
fn render_cell(task: &str, preamble: &str, few_shot: u32, cot: bool) -> String {
    let templates = Templates::load(task, None).expect("built-in templates load");
    let (shots, example) = fixtures(task);
    let exemplars: Vec<&Example> = shots.iter().take(few_shot as usize).collect();
    let cell = templates
        .for_cell(&settings(preamble, few_shot, cot), &exemplars)
        .expect("cell renders");
    let mut out = String::new();
    for order in Order::ALL {
        let prompt = cell.render(&example, order).expect("prompt renders");
        assert!(prompt.scoring_text().starts_with(cell.prefix()));
        let texts = match prompt.generation_text() {
            None => vec![("scoring", prompt.scoring_text())],
            Some(generation) => vec![
                ("generation", generation),
                (
                    "scoring after rationale",
                    prompt.scoring_text_after(rationale(task)),
                ),
            ],
        };
        for (kind, text) in texts {
            assert!(
                !text.contains("\n\n\n"),
                "{task}: a doubled blank line in\n{text}"
            );
            assert!(
                text.lines().all(|line| line == line.trim_end()),
                "{task}: trailing whitespace in\n{text}"
            );
            out.push_str(&format!("=== {} · {kind} ===\n{text}\n", order.name()));
        }
    }
    out.push_str("=== end ===\n");
    out
}

#[test]
fn builtin_prompts() {
    for task in ["summarization", "helpfulness", "harmlessness"] {
        for preamble in ["base", "detailed"] {
            for few_shot in [0, 1, 2] {
                for cot in [false, true] {
                    let cot_name = if cot { "cot" } else { "direct" };
                    let name = format!("{task}__{preamble}__{few_shot}shot__{cot_name}");
                    let rendered = render_cell(task, preamble, few_shot, cot);
                    insta::assert_snapshot!(name, rendered);
                }
            }
        }
    }
}

#[test]
fn every_scoring_text_ends_with_the_ending() {
    for task in ["summarization", "helpfulness", "harmlessness"] {
        let templates = Templates::load(task, None).expect("built-in templates load");
        let (shots, example) = fixtures(task);
        let cell = templates
            .for_cell(&settings("detailed", 1, true), &[&shots[0]])
            .expect("cell renders");
        for order in Order::ALL {
            let prompt = cell.render(&example, order).expect("prompt renders");
            assert!(prompt.scoring_text().ends_with(cell.ending()));
            assert!(
                prompt
                    .scoring_text_after(rationale(task))
                    .ends_with(cell.ending())
            );
            assert!(matches!(
                cell.ending(),
                "Preferred Summary=" | "Preferred Response="
            ));
        }
    }
}

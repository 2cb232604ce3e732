//! One task's templates: the built-ins overlaid with a user's folder, compiled once.
//!
//! Loading reads files and compiles them, so every syntax error surfaces before a run
//! starts; rendering (in [`super::cell`]) is pure. Template names inside the minijinja
//! environment are the bare file names (`sample.j2`), so templates can include one
//! another; errors are reported with where each file came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use serde::Deserialize;

use super::{CellPrompts, Polarity, PromptError, builtin};
use crate::data::Example;
use crate::fingerprint;
use crate::grid::Settings;

/// The template files every task needs besides at least one preamble.
const REQUIRED: [&str; 5] = [
    "task.yaml",
    "exemplar.j2",
    "sample.j2",
    "cot.j2",
    "ending.j2",
];

const TASK_FILE: &str = "task.yaml";

/// The templates of one task, compiled and ready to render.
#[derive(Debug)]
pub struct Templates {
    task: String,
    description: String,
    polarity: Polarity,
    /// Every file by name, with its text and where it came from.
    files: BTreeMap<String, Source>,
    env: Environment<'static>,
}

/// One template file's text and origin.
#[derive(Debug, Clone)]
struct Source {
    /// How users see the file: `<builtin>/<task>/<name>` or its path.
    shown: String,
    text: String,
}

/// `task.yaml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskFile {
    description: String,
    polarity: Polarity,
}

impl Templates {
    /// Loads and compiles the templates of `task`: the built-ins, with each file found in
    /// `user_dir/<task>/` replacing or adding to them.
    pub fn load(task: &str, user_dir: Option<&Path>) -> Result<Templates, PromptError> {
        let mut files: BTreeMap<String, Source> = builtin::files(task)
            .map(|(name, text)| {
                let source = Source {
                    shown: format!("<builtin>/{task}/{name}"),
                    text: text.to_owned(),
                };
                (name.to_owned(), source)
            })
            .collect();
        let task_dir = match user_dir {
            Some(dir) => {
                check_dir(dir)?;
                Some(dir.join(task)).filter(|path| path.is_dir())
            }
            None => None,
        };
        if files.is_empty() && task_dir.is_none() {
            return Err(PromptError::UnknownTask {
                task: task.to_owned(),
                known: Templates::tasks(user_dir)?,
            });
        }
        if let Some(task_dir) = &task_dir {
            for path in user_files(task_dir)? {
                let text = std::fs::read_to_string(&path).map_err(|source| PromptError::Read {
                    path: path.clone(),
                    source,
                })?;
                let name = file_name(&path);
                let shown = path.display().to_string();
                files.insert(name, Source { shown, text });
            }
        }

        let looked = || match &task_dir {
            Some(dir) => format!("{} and the built-in templates", dir.display()),
            None if user_dir.is_some() => format!(
                "the built-in templates; {} has no folder {task}/",
                user_dir
                    .map(Path::display)
                    .map(|d| d.to_string())
                    .unwrap_or_default()
            ),
            None => "the built-in templates; no user templates folder is set".to_owned(),
        };
        for name in REQUIRED {
            if !files.contains_key(name) {
                return Err(PromptError::MissingFile {
                    task: task.to_owned(),
                    file: name.to_owned(),
                    looked: looked(),
                });
            }
        }
        if !files.keys().any(|name| preamble_style(name).is_some()) {
            return Err(PromptError::MissingFile {
                task: task.to_owned(),
                file: "preamble_<style>.j2".to_owned(),
                looked: looked(),
            });
        }

        let task_file = &files[TASK_FILE];
        let parsed: TaskFile =
            crate::yaml::parse(&task_file.text).map_err(|error| PromptError::TaskFile {
                file: task_file.shown.clone(),
                line: error.line,
                message: error.message,
            })?;

        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Prompts are plain text; escaping would change what the labeler reads.
        env.set_auto_escape_callback(|_| AutoEscape::None);
        // A line holding only a block tag should not leave a blank line in the prompt.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        for (name, source) in &files {
            if name.ends_with(".j2") {
                env.add_template_owned(name.clone(), source.text.clone())
                    .map_err(|error| template_error(&error, &files, name))?;
            }
        }

        Ok(Templates {
            task: task.to_owned(),
            description: parsed.description.trim().to_owned(),
            polarity: parsed.polarity,
            files,
            env,
        })
    }

    /// Every known task, sorted: the built-in ones and each folder in `user_dir`.
    pub fn tasks(user_dir: Option<&Path>) -> Result<Vec<String>, PromptError> {
        let mut tasks: Vec<String> = builtin::tasks().into_iter().map(str::to_owned).collect();
        if let Some(dir) = user_dir {
            check_dir(dir)?;
            for path in read_dir(dir)? {
                let name = file_name(&path);
                if path.is_dir() && !name.starts_with('.') {
                    tasks.push(name);
                }
            }
        }
        tasks.sort();
        tasks.dedup();
        Ok(tasks)
    }

    /// The task's name.
    pub fn task(&self) -> &str {
        &self.task
    }

    /// The one-line description from `task.yaml`.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Whether the labeler is asked for the better or the worse response.
    pub fn polarity(&self) -> Polarity {
        self.polarity
    }

    /// The preamble styles, sorted (`base`, `detailed`, and any a user added).
    pub fn preambles(&self) -> Vec<String> {
        self.files
            .keys()
            .filter_map(|name| preamble_style(name))
            .map(str::to_owned)
            .collect()
    }

    /// SHA-256 over every file's (name, text), in name order: changes whenever any
    /// template of the task does, whichever folder it came from.
    pub fn fingerprint(&self) -> String {
        let pairs: Vec<(&str, &str)> = self
            .files
            .iter()
            .map(|(name, source)| (name.as_str(), source.text.as_str()))
            .collect();
        // A JSON array of pairs cannot confuse where a name ends and a text begins.
        let canonical = serde_json::to_string(&pairs).unwrap_or_default();
        fingerprint::sha256_hex(canonical)
    }

    /// Renders the parts of a cell's prompts that do not depend on the example: the
    /// ending, and the prefix of preamble and exemplars (each exemplar in its stored a/b
    /// order). `exemplars` must hold exactly `settings.few_shot` examples.
    pub fn for_cell(
        &self,
        settings: &Settings,
        exemplars: &[&Example],
    ) -> Result<CellPrompts<'_>, PromptError> {
        let styles = self.preambles();
        if !styles.contains(&settings.preamble) {
            return Err(PromptError::UnknownPreamble {
                task: self.task.clone(),
                style: settings.preamble.clone(),
                available: styles,
            });
        }
        CellPrompts::new(self, settings, exemplars)
    }

    /// Renders the template `name` with `context`, tidied: leading newlines and trailing
    /// whitespace removed, so the joins in [`super::Prompt`] decide all spacing.
    pub(super) fn render(&self, name: &str, context: &Value) -> Result<String, PromptError> {
        let rendered = self
            .env
            .get_template(name)
            .and_then(|template| template.render(context))
            .map_err(|error| template_error(&error, &self.files, name))?;
        Ok(rendered
            .trim_start_matches(['\n', '\r'])
            .trim_end()
            .to_owned())
    }

    /// How users see the template `name`.
    pub(super) fn shown(&self, name: &str) -> String {
        self.files
            .get(name)
            .map(|source| source.shown.clone())
            .unwrap_or_else(|| format!("<builtin>/{}/{name}", self.task))
    }
}

/// The style named by a preamble file, `preamble_<style>.j2`.
fn preamble_style(name: &str) -> Option<&str> {
    name.strip_prefix("preamble_")?
        .strip_suffix(".j2")
        .filter(|style| !style.is_empty())
}

/// Whether `name` is a file a task folder may hold.
fn is_template_file(name: &str) -> bool {
    REQUIRED.contains(&name)
        || preamble_style(name).is_some()
        || (name.starts_with('_') && name.ends_with(".j2") && name.len() > "_.j2".len())
}

/// The template files in a user's task folder, sorted. Files that are neither templates
/// nor `task.yaml` (a README, editor backups) are ignored, but a `.j2` file with an
/// unknown name is an error: it is most likely a misspelt template that would otherwise
/// be silently replaced by the built-in one.
fn user_files(task_dir: &Path) -> Result<Vec<PathBuf>, PromptError> {
    let mut files = Vec::new();
    for path in read_dir(task_dir)? {
        let name = file_name(&path);
        if !path.is_file() || name.starts_with('.') {
            continue;
        }
        if is_template_file(&name) {
            files.push(path);
        } else if name.ends_with(".j2") {
            return Err(PromptError::UnexpectedFile { path });
        }
    }
    Ok(files)
}

/// The entries of `dir`, sorted by path.
fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, PromptError> {
    let read_error = |source| PromptError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        paths.push(entry.map_err(read_error)?.path());
    }
    paths.sort();
    Ok(paths)
}

/// A user templates folder must exist: a mistyped path would otherwise fall back to the
/// built-ins without a word.
fn check_dir(dir: &Path) -> Result<(), PromptError> {
    match std::fs::metadata(dir) {
        Ok(metadata) if metadata.is_dir() => Ok(()),
        Ok(_) => Err(PromptError::Read {
            path: dir.to_owned(),
            source: std::io::Error::other("not a folder"),
        }),
        Err(source) => Err(PromptError::Read {
            path: dir.to_owned(),
            source,
        }),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A minijinja error as a [`PromptError::Template`] naming the file, the line and, for
/// an undefined value, the expression that was undefined. Errors inside an included
/// template are reported where they happened, not at the `{% include %}`.
fn template_error(
    error: &minijinja::Error,
    files: &BTreeMap<String, Source>,
    rendering: &str,
) -> PromptError {
    let mut innermost = error;
    let mut cause = std::error::Error::source(error);
    while let Some(next) = cause {
        if let Some(inner) = next.downcast_ref::<minijinja::Error>() {
            innermost = inner;
        }
        cause = next.source();
    }
    let name = innermost.name().unwrap_or(rendering);
    let source = files.get(name);
    let template = source
        .map(|source| source.shown.clone())
        .unwrap_or_else(|| name.to_owned());

    let mut message = innermost.kind().to_string();
    if let Some(detail) = innermost.detail() {
        message.push_str(": ");
        message.push_str(detail);
    }
    if innermost.kind() == minijinja::ErrorKind::UndefinedError {
        let expression = source
            .zip(innermost.range())
            .and_then(|(source, range)| source.text.get(range));
        if let Some(expression) = expression {
            message.push_str(&format!(" `{expression}`"));
        }
        message.push_str(
            " (a template may use the built-in variables and the cell's user variables; \
             test optional ones with `is defined`)",
        );
    }
    PromptError::Template {
        template,
        line: innermost.line(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn user_task(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let task_dir = dir.path().join("summarization");
        fs::create_dir(&task_dir).expect("task dir");
        for (name, text) in files {
            fs::write(task_dir.join(name), text).expect("write template");
        }
        dir
    }

    #[test]
    fn builtin_tasks_load_with_their_polarity() {
        for task in ["summarization", "helpfulness", "harmlessness"] {
            let templates = Templates::load(task, None).expect("built-in task loads");
            assert_eq!(templates.task(), task);
            assert_eq!(templates.preambles(), ["base", "detailed"]);
            assert!(!templates.description().is_empty());
            let expected = if task == "harmlessness" {
                Polarity::Inverted
            } else {
                Polarity::Normal
            };
            assert_eq!(templates.polarity(), expected);
            assert_eq!(templates.fingerprint().len(), 64);
        }
    }

    #[test]
    fn overlay_adds_a_preamble_style_and_changes_the_fingerprint() {
        let dir = user_task(&[("preamble_strict.j2", "Be strict.\n")]);
        let builtin = Templates::load("summarization", None).expect("built-ins");
        let overlaid = Templates::load("summarization", Some(dir.path())).expect("overlay");
        assert_eq!(overlaid.preambles(), ["base", "detailed", "strict"]);
        assert_ne!(overlaid.fingerprint(), builtin.fingerprint());
        assert_eq!(
            Templates::load("summarization", None)
                .expect("again")
                .fingerprint(),
            builtin.fingerprint()
        );
    }

    #[test]
    fn overlay_replaces_a_file_and_task_yaml() {
        let dir = user_task(&[("task.yaml", "description: Mine.\npolarity: inverted\n")]);
        let templates = Templates::load("summarization", Some(dir.path())).expect("overlay");
        assert_eq!(templates.description(), "Mine.");
        assert_eq!(templates.polarity(), Polarity::Inverted);
    }

    #[test]
    fn tasks_include_user_folders() {
        let dir = user_task(&[]);
        fs::create_dir(dir.path().join("translation")).expect("task dir");
        let tasks = Templates::tasks(Some(dir.path())).expect("tasks");
        assert_eq!(
            tasks,
            [
                "harmlessness",
                "helpfulness",
                "summarization",
                "translation"
            ]
        );
    }

    #[test]
    fn unknown_task_lists_the_known_ones() {
        let error = Templates::load("sumarization", None).expect_err("unknown task");
        let message = error.to_string();
        assert!(message.contains("unknown task `sumarization`"), "{message}");
        assert!(
            message.contains("harmlessness, helpfulness, summarization"),
            "{message}"
        );
    }

    #[test]
    fn a_new_task_missing_a_file_names_task_file_and_folder() {
        let dir = tempfile::tempdir().expect("temp dir");
        let task_dir = dir.path().join("translation");
        fs::create_dir(&task_dir).expect("task dir");
        fs::write(task_dir.join("preamble_base.j2"), "Translate.").expect("write");
        fs::write(
            task_dir.join("task.yaml"),
            "description: x\npolarity: normal\n",
        )
        .expect("write");
        let message = Templates::load("translation", Some(dir.path()))
            .expect_err("incomplete task")
            .to_string();
        assert!(
            message.contains("task `translation` has no exemplar.j2"),
            "{message}"
        );
        assert!(
            message.contains(&task_dir.display().to_string()),
            "{message}"
        );
    }

    #[test]
    fn a_misspelt_template_file_is_an_error() {
        let dir = user_task(&[("sampel.j2", "x")]);
        let message = Templates::load("summarization", Some(dir.path()))
            .expect_err("unknown file")
            .to_string();
        assert!(message.contains("unexpected template file"), "{message}");
        assert!(message.contains("sampel.j2"), "{message}");
    }

    #[test]
    fn a_missing_user_folder_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("nope");
        let error = Templates::load("summarization", Some(&missing)).expect_err("no folder");
        assert!(error.to_string().contains("nope"), "{error}");
    }

    #[test]
    fn syntax_error_is_reported_at_load_with_file_and_line() {
        let dir = user_task(&[("sample.j2", "Text:\n{{ context }}\n{% if %}\n")]);
        let error = Templates::load("summarization", Some(dir.path())).expect_err("bad syntax");
        let PromptError::Template {
            template,
            line,
            message,
        } = &error
        else {
            panic!("expected a template error, got {error}");
        };
        assert!(template.ends_with("summarization/sample.j2"), "{template}");
        assert_eq!(*line, Some(3));
        assert!(message.starts_with("syntax error"), "{message}");
        assert!(
            error.to_string().contains("sample.j2:3: syntax error"),
            "{error}"
        );
    }

    #[test]
    fn a_bad_task_yaml_names_file_and_line() {
        let dir = user_task(&[("task.yaml", "description: x\npolarity: sideways\n")]);
        let message = Templates::load("summarization", Some(dir.path()))
            .expect_err("bad polarity")
            .to_string();
        assert!(message.contains("task.yaml:2"), "{message}");
        assert!(message.contains("polarity: normal|inverted"), "{message}");
    }
}

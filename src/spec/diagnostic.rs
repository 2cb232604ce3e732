//! Problems found in an experiment file, each pointing at the text that causes it.

use std::fmt;
use std::path::PathBuf;

use super::source_map::Position;

/// One problem: where it is, what is wrong, and what would fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub position: Position,
    /// Lowercase, naming the key path and the bad value.
    pub message: String,
    /// What would fix it, shown in parentheses after the message.
    pub hint: Option<String>,
    /// Whether the offending line may be shown; not when it may hold a secret.
    pub show_source: bool,
}

impl Diagnostic {
    pub fn new(position: Position, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            position,
            message: message.into(),
            hint: None,
            show_source: true,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// Keeps the line out of the report: it may hold a secret.
    pub fn without_source(mut self) -> Diagnostic {
        self.show_source = false;
        self
    }
}

/// Why an experiment file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("cannot read experiment file {file}")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] Invalid),
}

/// Every problem found in one experiment file, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Invalid {
    /// The file as the user named it.
    pub file: PathBuf,
    /// The file's text, for showing the offending lines; empty if it could not be read.
    pub text: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl Invalid {
    /// The problems as `file:line:column: message (hint)`, one a line, without snippets.
    pub fn lines(&self) -> Vec<String> {
        self.diagnostics
            .iter()
            .map(|diagnostic| self.headline(diagnostic))
            .collect()
    }

    fn headline(&self, diagnostic: &Diagnostic) -> String {
        let Position { line, column } = diagnostic.position;
        let mut headline = format!(
            "{}:{line}:{column}: {}",
            self.file.display(),
            diagnostic.message
        );
        if let Some(hint) = &diagnostic.hint {
            headline.push_str(&format!(" ({hint})"));
        }
        headline
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.diagnostics.len();
        if count > 1 {
            writeln!(f, "{count} problems in {}", self.file.display())?;
        }
        for (index, diagnostic) in self.diagnostics.iter().enumerate() {
            if index > 0 || count > 1 {
                writeln!(f)?;
            }
            write!(f, "{}", self.headline(diagnostic))?;
            let Position { line, column } = diagnostic.position;
            let source_line = self.text.lines().nth(line.saturating_sub(1));
            if let Some(source_line) = source_line.filter(|_| diagnostic.show_source) {
                let gutter = line.to_string().len();
                let caret_pad: String = source_line
                    .chars()
                    .take(column.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                write!(
                    f,
                    "\n{:gutter$} |\n{line} | {source_line}\n{:gutter$} | {caret_pad}^",
                    "", ""
                )?;
            }
        }
        Ok(())
    }
}

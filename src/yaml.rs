//! The one door to the YAML deserializer.
//!
//! `serde_yaml` is unmaintained; every YAML document `rlaif` deserializes passes through
//! [`parse`], so moving to a maintained fork changes one line. Source positions for
//! diagnostics come from [`crate::spec::SourceMap`], which reads the same text.

use serde::de::DeserializeOwned;

/// A YAML syntax or type error, with its 1-based position when the parser knows it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

/// Deserializes one YAML document.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    serde_yaml::from_str(text).map_err(|error| {
        let location = error.location();
        let mut message = error.to_string();
        // The position is reported separately; keep the message free of it.
        if let Some(at) = message.rfind(" at line ") {
            message.truncate(at);
        }
        YamlError {
            message,
            line: location.as_ref().map(serde_yaml::Location::line),
            column: location.as_ref().map(serde_yaml::Location::column),
        }
    })
}

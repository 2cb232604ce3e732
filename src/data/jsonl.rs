//! JSON lines: file bytes to numbered lines to JSON values, with errors that name the
//! file and the line.
//!
//! Lines are split on raw bytes and decoded one at a time, so a stray non-UTF-8 byte is
//! reported on its own line instead of failing the whole file. Gzip is undone here too
//! (by file name), so every format sees plain lines.

use std::io::Read;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::DataError;

/// One non-blank line of a file.
#[derive(Debug, Clone, Copy)]
pub(super) struct Line<'a> {
    /// 1-based, as editors count, for messages.
    pub number: usize,
    pub text: &'a str,
}

impl Line<'_> {
    /// The 0-based position in the file, as the source datasets number their records.
    pub fn index(&self) -> usize {
        self.number - 1
    }

    /// An error about this line.
    pub fn error(&self, path: &Path, message: impl Into<String>) -> DataError {
        DataError::Record {
            path: path.to_path_buf(),
            line: self.number,
            message: message.into(),
        }
    }

    /// The line deserialized into `T`, with serde's message and column on failure.
    pub fn parse<T: DeserializeOwned>(&self, path: &Path) -> Result<T, DataError> {
        serde_json::from_str(self.text).map_err(|err| self.error(path, json_message(&err)))
    }
}

/// The raw bytes of `path`, for hashing and parsing.
pub(super) fn read(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// `bytes` decompressed when `path` ends in `.gz`, else borrowed unchanged.
pub(super) fn decompress<'a>(
    path: &Path,
    bytes: &'a [u8],
) -> Result<std::borrow::Cow<'a, [u8]>, DataError> {
    if path.extension().is_some_and(|ext| ext == "gz") {
        let mut plain = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut plain)
            .map_err(|source| DataError::Read {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(std::borrow::Cow::Owned(plain))
    } else {
        Ok(std::borrow::Cow::Borrowed(bytes))
    }
}

/// The non-blank lines of `bytes`, each decoded as UTF-8.
pub(super) fn lines<'a>(path: &Path, bytes: &'a [u8]) -> Result<Vec<Line<'a>>, DataError> {
    let mut lines = Vec::new();
    for (index, raw) in bytes.split(|&byte| byte == b'\n').enumerate() {
        let number = index + 1;
        let text = std::str::from_utf8(raw).map_err(|err| DataError::Record {
            path: path.to_path_buf(),
            line: number,
            message: format!(
                "line is not valid utf-8 (bad byte at column {}; save the file as utf-8)",
                err.valid_up_to() + 1
            ),
        })?;
        // An editor may have saved a byte-order mark; it is not part of the JSON.
        let text = if index == 0 {
            text.trim_start_matches('\u{feff}')
        } else {
            text
        };
        if !text.trim().is_empty() {
            lines.push(Line { number, text });
        }
    }
    Ok(lines)
}

/// serde's message without its "at line 1 column N" tail (every line is parsed alone, so
/// its line is always 1), and with the column put first.
fn json_message(err: &serde_json::Error) -> String {
    let full = err.to_string();
    let tail = format!(" at line {} column {}", err.line(), err.column());
    let message = full.strip_suffix(&tail).unwrap_or(&full);
    match err.classify() {
        serde_json::error::Category::Data => message.to_string(),
        _ => format!("invalid json at column {}: {message}", err.column()),
    }
}

/// How a JSON value is described in messages: "a string", "null".
pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_are_skipped_and_numbering_counts_them() {
        let bytes = b"{}\n\n  \r\n{\"a\": 1}\r\n";
        let lines = lines(Path::new("f"), bytes).unwrap();
        let numbers: Vec<usize> = lines.iter().map(|line| line.number).collect();
        assert_eq!(numbers, [1, 4]);
        assert_eq!(lines[1].index(), 3);
        assert!(lines[1].parse::<Value>(Path::new("f")).is_ok());
    }

    #[test]
    fn a_byte_order_mark_is_ignored() {
        let lines = lines(Path::new("f"), b"\xef\xbb\xbf{}\n").unwrap();
        assert_eq!(lines[0].text, "{}");
    }

    #[test]
    fn bad_utf8_names_line_and_column() {
        let err = lines(Path::new("f.jsonl"), b"{}\n{\"a\": \"\xff\"}\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.jsonl:2: line is not valid utf-8 (bad byte at column 8; save the file as utf-8)"
        );
    }

    #[test]
    fn syntax_errors_carry_serde_column_and_message() {
        let line = Line {
            number: 3,
            text: "{\"a\" 1}",
        };
        let err = line.parse::<Value>(Path::new("f.jsonl")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "f.jsonl:3: invalid json at column 6: expected `:`"
        );
    }

    #[test]
    fn gzip_is_undone_by_extension() {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(b"{}\n").unwrap();
        let gz = encoder.finish().unwrap();
        assert_eq!(&*decompress(Path::new("x.jsonl.gz"), &gz).unwrap(), b"{}\n");
        assert_eq!(&*decompress(Path::new("x.jsonl"), b"{}").unwrap(), b"{}");
        let err = decompress(Path::new("x.gz"), b"not gzip").unwrap_err();
        assert_eq!(err.to_string(), "cannot read x.gz");
        assert!(
            std::error::Error::source(&err).is_some(),
            "the cause is chained"
        );
    }
}

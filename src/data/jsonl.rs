//! JSON lines: file bytes to numbered lines to JSON values, with errors that name the
//! file and the line.
//!
//! Lines are split on raw bytes and decoded one at a time, so a stray non-UTF-8 byte is
//! reported on its own line instead of failing the whole file. Gzip is undone here too
//! (by file name), so every format sees plain lines.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::DataError;
use crate::fingerprint;

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

/// Bytes of decoded text handed to a format's parser at a time: the file is never
/// held whole, so memory follows the examples kept, not the file's size.
const CHUNK_BYTES: usize = 4 << 20;

/// The SHA-256 of the bytes on disk, read in pieces.
pub(super) fn sha256_of(path: &Path) -> Result<String, DataError> {
    let read_error = |source| DataError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    let mut hasher = sha2::Sha256::default();
    std::io::copy(&mut file, &mut hasher).map_err(read_error)?;
    Ok(fingerprint::hex(&sha2::Digest::finalize(hasher)))
}

/// Calls `parse` on the non-blank lines of `raw`, the contents of `path` (gunzipped when
/// its name ends in `.gz`), a few megabytes of whole lines at a time, in order, with
/// lines numbered from the start of the file. `path` names the file in errors only.
pub(super) fn for_each_chunk(
    path: &Path,
    raw: impl Read,
    parse: impl FnMut(&[Line<'_>]) -> Result<(), DataError>,
) -> Result<(), DataError> {
    for_each_chunk_of(path, raw, CHUNK_BYTES, parse)
}

/// The file at `path`, opened for [`for_each_chunk`].
pub(super) fn open(path: &Path) -> Result<std::fs::File, DataError> {
    std::fs::File::open(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn for_each_chunk_of(
    path: &Path,
    raw: impl Read,
    chunk_bytes: usize,
    mut parse: impl FnMut(&[Line<'_>]) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let read_error = |source| DataError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut reader: Box<dyn BufRead> = if path.extension().is_some_and(|ext| ext == "gz") {
        Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(
            BufReader::new(raw),
        )))
    } else {
        Box::new(BufReader::new(raw))
    };
    let mut chunk = Vec::with_capacity(chunk_bytes);
    let mut first_number = 1;
    loop {
        chunk.clear();
        let mut lines_read = 0;
        while chunk.len() < chunk_bytes {
            let read = reader.read_until(b'\n', &mut chunk).map_err(read_error)?;
            if read == 0 {
                break;
            }
            lines_read += 1;
        }
        if lines_read == 0 {
            return Ok(());
        }
        // Without its final newline, so that it splits into exactly the lines read.
        let text = chunk.strip_suffix(b"\n").unwrap_or(&chunk);
        parse(&numbered_lines(path, text, first_number)?)?;
        first_number += lines_read;
    }
}

/// The non-blank lines of `bytes`, each decoded as UTF-8.
#[cfg(test)]
pub(super) fn lines<'a>(path: &Path, bytes: &'a [u8]) -> Result<Vec<Line<'a>>, DataError> {
    numbered_lines(path, bytes, 1)
}

/// The non-blank lines of `bytes`, each decoded as UTF-8, the first numbered
/// `first_number`.
fn numbered_lines<'a>(
    path: &Path,
    bytes: &'a [u8],
    first_number: usize,
) -> Result<Vec<Line<'a>>, DataError> {
    let mut lines = Vec::new();
    for (index, raw) in bytes.split(|&byte| byte == b'\n').enumerate() {
        let number = first_number + index;
        let text = std::str::from_utf8(raw).map_err(|err| DataError::Record {
            path: path.to_path_buf(),
            line: number,
            message: format!(
                "line is not valid utf-8 (bad byte at column {}; save the file as utf-8)",
                err.valid_up_to() + 1
            ),
        })?;
        // An editor may have saved a byte-order mark; it is not part of the JSON.
        let text = if number == 1 {
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

    /// Every line `for_each_chunk_of` hands out, with its number, in order.
    fn chunked_lines(path: &Path, chunk_bytes: usize) -> Result<Vec<(usize, String)>, DataError> {
        let mut seen = Vec::new();
        let file = std::fs::File::open(path).map_err(|source| DataError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        for_each_chunk_of(path, file, chunk_bytes, |lines| {
            seen.extend(lines.iter().map(|line| (line.number, line.text.to_owned())));
            Ok(())
        })?;
        Ok(seen)
    }

    #[test]
    fn gzip_is_undone_by_extension() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(b"{}\n").unwrap();
        std::fs::write(dir.path().join("x.jsonl.gz"), encoder.finish().unwrap()).unwrap();
        std::fs::write(dir.path().join("x.jsonl"), b"{}").unwrap();
        std::fs::write(dir.path().join("x.gz"), b"not gzip").unwrap();
        let one = vec![(1, "{}".to_owned())];
        assert_eq!(
            chunked_lines(&dir.path().join("x.jsonl.gz"), CHUNK_BYTES).unwrap(),
            one
        );
        assert_eq!(
            chunked_lines(&dir.path().join("x.jsonl"), CHUNK_BYTES).unwrap(),
            one
        );
        let err = chunked_lines(&dir.path().join("x.gz"), CHUNK_BYTES).unwrap_err();
        assert!(err.to_string().starts_with("cannot read "), "{err}");
        assert!(
            std::error::Error::source(&err).is_some(),
            "the cause is chained"
        );
    }

    #[test]
    fn lines_keep_their_numbers_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        std::fs::write(&path, "\u{feff}one\ntwo\n\nfour\n  \nsix\nseven").unwrap();
        let expected: Vec<(usize, String)> = [
            (1, "one"),
            (2, "two"),
            (4, "four"),
            (6, "six"),
            (7, "seven"),
        ]
        .into_iter()
        .map(|(number, text)| (number, text.to_owned()))
        .collect();
        // From one line per chunk to the whole file in one.
        for chunk_bytes in [1, 5, 9, 64] {
            assert_eq!(
                chunked_lines(&path, chunk_bytes).unwrap(),
                expected,
                "chunks of {chunk_bytes}"
            );
        }
    }

    #[test]
    fn a_bad_byte_is_reported_on_its_line_in_a_later_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        std::fs::write(&path, b"{}\n{}\n{\"a\": \"\xff\"}\n").unwrap();
        let err = chunked_lines(&path, 3).unwrap_err();
        assert!(
            err.to_string()
                .contains("x.jsonl:3: line is not valid utf-8"),
            "{err}"
        );
    }
}

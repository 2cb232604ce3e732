//! Append-only JSON-lines files (a run's journal, `rlaif label`'s output), written one
//! whole line per write: what a kill can leave behind is a torn last line, which reading
//! cuts off so that the next append starts a fresh line.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::path::Path;

/// Calls `each(number, line)` for every complete, non-blank line of `path` (1-based
/// numbers; nothing when the file does not exist), a line at a time, then truncates the
/// file after its last complete line. I/O errors go through `io_error`; an error from
/// `each` stops the reading and leaves the file as it is.
pub(crate) fn read_complete_lines<E>(
    path: &Path,
    io_error: impl Fn(std::io::Error) -> E,
    mut each: impl FnMut(usize, &[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(io_error(error)),
    };
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    // Bytes up to the end of the last complete line.
    let mut complete = 0u64;
    for number in 1.. {
        line.clear();
        let read = reader.read_until(b'\n', &mut line).map_err(&io_error)?;
        if read == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') {
            break;
        }
        complete += read as u64;
        if !line.iter().all(u8::is_ascii_whitespace) {
            each(number, &line)?;
        }
    }
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(&io_error)?;
    file.set_len(complete).map_err(io_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(path: &Path) -> Vec<(usize, String)> {
        let mut seen = Vec::new();
        read_complete_lines(
            path,
            |error| error,
            |number, line| {
                seen.push((number, String::from_utf8_lossy(line).into_owned()));
                Ok(())
            },
        )
        .unwrap();
        seen
    }

    #[test]
    fn a_torn_last_line_is_skipped_and_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        std::fs::write(&path, "one\n\ntwo\nthr").unwrap();
        assert_eq!(
            lines_of(&path),
            [(1, "one\n".to_owned()), (3, "two\n".to_owned())]
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\n\ntwo\n");
    }

    #[test]
    fn a_missing_file_has_no_lines_and_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.jsonl");
        assert!(lines_of(&path).is_empty());
        assert!(!path.exists());
    }
}

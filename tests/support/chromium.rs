//! Headless Chromium for the tests: Debian's `chromium` package, installed with apt on
//! first use, run once per page to dump the DOM after scripts ran or to take a screenshot.
//!
//! Every run gets a fresh profile folder and every network feature Chromium has switched
//! off, so a page that tried to reach the network would show it as an error in the DOM,
//! not fetch anything. Anything that cannot be installed or started fails the test with
//! the command's own output: these tests never skip quietly.
//!
//! Use it with `#[path = "support/chromium.rs"] mod chromium;` (tempfile is all it needs).

#![allow(dead_code)] // each test binary uses part of it

use crate::setup::must_run;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

/// Where Debian's `chromium` package puts its launcher.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The browser, installed when missing; panics with apt's output when it cannot be.
pub fn chromium() -> &'static Path {
    // One install per test binary, even with tests running in parallel.
    static INSTALLED: OnceLock<()> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    INSTALLED.get_or_init(|| {
        let _guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if Path::new(CHROMIUM).is_file() {
            return;
        }
        must_run(Command::new("apt-get").arg("update"), "apt-get update");
        must_run(
            Command::new("apt-get")
                .args(["install", "-y", "chromium"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
            "apt-get install -y chromium",
        );
        assert!(
            Path::new(CHROMIUM).is_file(),
            "apt-get installed chromium but {CHROMIUM} is missing"
        );
    });
    Path::new(CHROMIUM)
}

/// What Chromium made of a page.
#[derive(Debug)]
pub struct Loaded {
    /// The DOM after the page's scripts ran (with a virtual-time budget of 5 s).
    pub dom: String,
    /// The page's console messages (errors, warnings, logs, security-policy reports),
    /// one per line as Chromium logs them.
    pub console: Vec<String>,
}

/// Loads `page` and returns its DOM after scripts ran, and its console.
pub fn load(page: &Path) -> Loaded {
    // Chromium logs every console message of the page to stderr as an `INFO:CONSOLE`
    // line when logging to stderr is on; nothing else it logs contains that tag.
    let output = headless(page, &["--enable-logging=stderr", "--v=0", "--dump-dom"]);
    Loaded {
        dom: String::from_utf8_lossy(&output.stdout).into_owned(),
        console: String::from_utf8_lossy(&output.stderr)
            .lines()
            .filter(|line| line.contains(":CONSOLE"))
            .map(str::to_owned)
            .collect(),
    }
}

/// A PNG screenshot of `page` at `width`x`height`, written to `png`.
pub fn screenshot(page: &Path, png: &Path, width: u32, height: u32) {
    let _ = std::fs::remove_file(png);
    headless(
        page,
        &[
            &format!("--screenshot={}", png.display()),
            &format!("--window-size={width},{height}"),
            "--hide-scrollbars",
        ],
    );
    assert!(
        png.is_file(),
        "chromium wrote no screenshot at {}",
        png.display()
    );
}

/// Runs headless Chromium on `page` with `extra` flags; panics with its output when it
/// fails.
fn headless(page: &Path, extra: &[&str]) -> Output {
    let profile = tempfile::tempdir().expect("a temporary profile folder");
    let page = page
        .canonicalize()
        .unwrap_or_else(|error| panic!("cannot find {}: {error}", page.display()));
    let url = format!("file://{}", page.display());
    let mut command = Command::new(chromium());
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--virtual-time-budget=5000")
        .args(extra)
        .arg(&url);
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {CHROMIUM}: {error}"));
    assert!(
        output.status.success(),
        "chromium failed on {url} with {}:\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `target/test-artifacts`, created when missing: where tests keep files for people to
/// look at after a run.
pub fn artifacts_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `target/tmp`; its parent is the target folder, wherever
    // CARGO_TARGET_DIR put it.
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().map_or_else(
        || tmp.join("test-artifacts"),
        |target| target.join("test-artifacts"),
    );
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|error| panic!("cannot create {}: {error}", dir.display()));
    dir
}

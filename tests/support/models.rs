//! Models of the embedded ladder for the tests, pulled by the real binary
//! (`rlaif models pull NAME`) on first use into one models home per target folder,
//! `<target>/test-models`, that every test binary shares.
//!
//! Pulls are serialized within a test binary; two binaries pulling the same model at
//! once are safe, because a pull moves the verified file into place with one rename.
//! A pull that fails fails the test with the binary's output: these tests never skip.
//!
//! Use it with `#[path = "support/setup.rs"] mod setup;` and
//! `#[path = "support/models.rs"] mod models;`.

#![allow(dead_code)] // each test binary uses part of it

use crate::setup::must_run;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// `<target>/test-models`, the `RLAIF_HOME` the tests' models are pulled into.
pub fn models_home() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `target/tmp`; its parent is the target folder, wherever
    // CARGO_TARGET_DIR put it.
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("test-models")
}

/// The verified GGUF file of the ladder model `name`, pulled first if needed.
pub fn model_path(name: &str) -> PathBuf {
    static PULLED: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut pulled = PULLED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(path) = pulled.get(name) {
        return path.clone();
    }
    let home = models_home();
    must_run(
        Command::new(env!("CARGO_BIN_EXE_rlaif"))
            .args(["models", "pull", name, "--quiet"])
            .env("RLAIF_HOME", &home),
        &format!("rlaif models pull {name} into {}", home.display()),
    );
    let path = home.join("models").join(format!("{name}.gguf"));
    assert!(
        path.is_file(),
        "rlaif models pull {name} succeeded but {} is missing",
        path.display()
    );
    pulled.insert(name.to_owned(), path.clone());
    path
}

//! The experiment-file parser and validator on arbitrary text: errors are fine, panics
//! are not.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// A folder for the experiment file, holding an (empty) `pairs.jsonl` and a `data/`
/// folder, so that the validator can find a data file and the fuzzer can reach valid
/// experiments. It lives as long as the process.
fn folder() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary folder");
        std::fs::create_dir(dir.path().join("data")).expect("data/");
        std::fs::write(dir.path().join("pairs.jsonl"), b"").expect("pairs.jsonl");
        std::fs::write(dir.path().join("data/constructed-summaries.jsonl"), b"")
            .expect("data/constructed-summaries.jsonl");
        dir
    })
    .path()
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let file: PathBuf = folder().join("experiment.yaml");
    match rlaif::spec::parse(&file, text) {
        Ok((experiment, _source)) => {
            // A valid experiment expands into cells and can be shown.
            let _ = rlaif::grid::expand(&experiment.grid);
            let _ = format!("{experiment:?}");
        }
        Err(invalid) => {
            // Rendering quotes the lines the problems point at: it must not slice
            // outside the text.
            let _ = invalid.to_string();
            let _ = invalid.lines();
        }
    }
});

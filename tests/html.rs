//! `report.html` in a real browser: a simulated run with two labelers and a temperature
//! axis (so every plot has data), opened in headless Chromium. The page checks itself on
//! load (each plot drawn, the table's rows, sorting by every header, no recorded error)
//! and writes the verdict into `body[data-check]`, which the dumped DOM shows. A
//! screenshot is kept at `target/test-artifacts/report.png` for people to look at.
//!
//! Chromium is Debian's `chromium` package, installed with apt when missing; if that
//! fails, the tests fail with apt's output. They never skip.

#[path = "support/setup.rs"]
mod setup;

#[path = "support/chromium.rs"]
mod chromium;

use std::path::{Path, PathBuf};
use std::process::Command;

use rlaif::report::{self, LabelerLine, ReportContext, Summary};
use tempfile::TempDir;

/// Two simulated labelers, chain-of-thought on, three self-consistency settings (one
/// greedy, two temperatures) and two preambles: 12 cells, 6 prompt configurations.
const EXPERIMENT: &str = "\
name: html-report
task: summarization
dataset: { format: pairs, path: {fixtures}/pairs.jsonl }
exemplars: { format: pairs, path: {fixtures}/exemplars.jsonl }
labelers:
  shaky: { backend: simulated, accuracy: 0.65, position_bias: 0.7, seed: 1 }
  steady: { backend: simulated, accuracy: 0.95, position_bias: 0.1, seed: 2 }
grid:
  preamble: [base, detailed]
  cot: [true]
  self_consistency:
    - { samples: 1, temperature: 0.0 }
    - { samples: 4, temperature: 0.3 }
    - { samples: 4, temperature: 0.7 }
  labeler: [shaky, steady]
";

/// What a run leaves behind: its folder and the page.
struct Run {
    _dir: TempDir,
    folder: PathBuf,
}

fn run() -> Run {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let file = dir.path().join("experiment.yaml");
    std::fs::write(
        &file,
        EXPERIMENT.replace("{fixtures}", &fixtures.display().to_string()),
    )
    .expect("the experiment file is written");
    let results = dir.path().join("results");
    let output = Command::new(env!("CARGO_BIN_EXE_rlaif"))
        .arg("run")
        .arg(&file)
        .arg("--results")
        .arg(&results)
        .arg("--quiet")
        .output()
        .expect("the rlaif binary runs");
    assert!(
        output.status.success(),
        "rlaif run failed with {}:\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let runs: Vec<PathBuf> = std::fs::read_dir(results.join("html-report"))
        .expect("the experiment's results folder")
        .map(|entry| entry.expect("a folder entry").path())
        .filter(|path| path.is_dir())
        .collect();
    assert_eq!(runs.len(), 1, "one run folder: {runs:?}");
    Run {
        folder: runs[0].clone(),
        _dir: dir,
    }
}

fn summary(run: &Run) -> Summary {
    let text = std::fs::read_to_string(run.folder.join("summary.json")).expect("summary.json");
    serde_json::from_str(&text).expect("summary.json reads back as a Summary")
}

fn context(summary: &Summary) -> ReportContext {
    let examples = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pairs.jsonl"),
    )
    .expect("the fixture pairs")
    .lines()
    .filter(|line| !line.trim().is_empty())
    .count();
    ReportContext {
        examples,
        labelers: summary
            .labelers
            .iter()
            .map(|labeler| LabelerLine {
                name: labeler.name.clone(),
                mode: labeler.mode.clone(),
                model: labeler.model.clone(),
            })
            .collect(),
        run_seconds: None,
    }
}

/// The run's `report.html`; rendered from its `summary.json` when the runner did not
/// write one.
fn page(run: &Run) -> PathBuf {
    let path = run.folder.join("report.html");
    if !path.is_file() {
        let summary = summary(run);
        std::fs::write(&path, report::report_html(&summary, &context(&summary)))
            .expect("report.html is written");
    }
    path
}

/// The value of `name="…"` on the dumped `<body>` tag.
fn body_attribute(dom: &str, name: &str) -> Option<String> {
    let start = dom.find("<body")?;
    let end = start + dom[start..].find('>')?;
    let tag = &dom[start..end];
    let key = format!("{name}=\"");
    let at = tag.find(&key)? + key.len();
    let value = &tag[at..];
    Some(value[..value.find('"')?].to_owned())
}

/// Loads `page` in Chromium and asserts that its console stayed empty and its own
/// check passed; returns the DOM.
#[track_caller]
fn load_clean(page: &Path) -> String {
    let loaded = chromium::load(page);
    assert!(
        loaded.console.is_empty(),
        "the page wrote to the console:\n{}",
        loaded.console.join("\n")
    );
    assert_checked_ok(&loaded.dom);
    loaded.dom
}

#[track_caller]
fn assert_checked_ok(dom: &str) {
    let check = body_attribute(dom, "data-check");
    assert_eq!(
        check.as_deref(),
        Some("ok"),
        "the page's self-check did not pass; errors listed: {:?}",
        dom.match_indices("class=\"page-error\"")
            .map(|(at, _)| &dom[at..(at + 200).min(dom.len())])
            .collect::<Vec<_>>()
    );
    assert!(
        !dom.contains("class=\"page-error\""),
        "the page recorded errors"
    );
}

#[test]
fn the_report_renders_in_chromium_with_every_plot_and_sorts() {
    let run = run();
    let page = page(&run);
    let html = std::fs::read_to_string(&page).expect("report.html reads");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page names no URL"
    );

    let dom = load_clean(&page);
    // Every plot has data with this grid: the check lists each plot's drawn marks.
    let marks = body_attribute(&dom, "data-marks").expect("the check lists the plots' marks");
    for id in [
        "plot-size",
        "plot-temperature",
        "plot-position-bias",
        "plot-pareto",
    ] {
        let count = marks
            .split(' ')
            .find_map(|entry| entry.strip_prefix(&format!("{id}=")))
            .unwrap_or_else(|| panic!("{id} is not in {marks}"));
        let count: usize = count
            .parse()
            .unwrap_or_else(|_| panic!("{id} shows no data: {marks}"));
        assert!(count > 1, "{id} draws {count} marks");
    }
    assert_eq!(
        dom.matches("<tr data-rank=").count(),
        12,
        "one row per cell"
    );

    let artifacts = chromium::artifacts_dir();
    let png = artifacts.join("report.png");
    chromium::screenshot(&page, &png, 1280, 2000);
    let size = std::fs::metadata(&png).expect("the screenshot").len();
    assert!(size > 10 * 1024, "the screenshot is {size} bytes");
    std::fs::copy(&page, artifacts.join("report.html")).expect("the page is kept beside it");
}

/// Names holding markup stay text: the experiment, a labeler (and so every cell name,
/// plot tick and legend entry that shows it).
#[test]
fn names_holding_markup_stay_inert_in_the_browser() {
    const PAYLOAD: &str = "<script>document.body.setAttribute('data-pwned','script')</script>\
                           <img src=x onerror=\"document.body.setAttribute('data-pwned','img')\">";
    let run = run();
    let mut summary = summary(&run);
    summary.experiment = format!("html {PAYLOAD}");
    let old = "shaky";
    let new = format!("shaky{PAYLOAD}");
    for labeler in &mut summary.labelers {
        if labeler.name == old {
            labeler.name = new.clone();
        }
    }
    for cell in &mut summary.cells {
        if cell.settings["labeler"] == old {
            cell.settings["labeler"] = serde_json::Value::from(new.clone());
            cell.name = format!("{}{PAYLOAD}", cell.name);
        }
    }
    let html = report::report_html(&summary, &context(&summary));
    assert_eq!(
        html.matches("<script").count(),
        2,
        "only the page's own scripts"
    );
    assert!(!html.contains("<img"), "no markup from a name");
    assert!(
        html.contains("&lt;script&gt;"),
        "the names are shown, escaped"
    );

    let page = run.folder.join("inert.html");
    std::fs::write(&page, &html).expect("the page is written");
    let dom = load_clean(&page);
    assert_eq!(body_attribute(&dom, "data-pwned"), None, "no name ran");
}

/// A grid that varies neither the labeler nor the temperature still gets all four plots,
/// three of them saying why they are empty, and the page still checks out.
#[test]
fn plots_without_data_still_render_and_say_why() {
    let run = run();
    let mut summary = summary(&run);
    summary.cells.retain(|cell| {
        cell.settings["labeler"] == "steady" && cell.settings["self_consistency"]["samples"] == 1
    });
    assert_eq!(
        summary.cells.len(),
        2,
        "the two greedy cells of one labeler"
    );
    let html = report::report_html(&summary, &context(&summary));
    let page = run.folder.join("sparse.html");
    std::fs::write(&page, &html).expect("the page is written");
    let dom = load_clean(&page);
    let marks = body_attribute(&dom, "data-marks").expect("the check lists the plots' marks");
    for id in ["plot-size", "plot-temperature", "plot-position-bias"] {
        assert!(marks.contains(&format!("{id}=nodata")), "{id}: {marks}");
    }
    assert!(!marks.contains("plot-pareto=nodata"), "{marks}");
    std::fs::copy(&page, chromium::artifacts_dir().join("report-sparse.html"))
        .expect("the page is kept for people to look at");
    assert!(html.contains("no data: the grid does not vary the labeler"));
    assert!(html.contains("no data: the grid does not vary the temperature"));
}

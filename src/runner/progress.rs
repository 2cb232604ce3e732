//! Progress of a run on stderr: a live bar on a terminal, plain log lines elsewhere.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::procedure::Judgment;

/// How often plain progress lines are written when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Counts shown while a run goes on. One collector owns it; nothing else writes to it.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    resumed: u64,
    failures: u64,
    paid_calls: u64,
    cached_calls: u64,
    tokens: u64,
    in_flight: usize,
    calls_in_flight: usize,
    /// Examples still to judge, per cell.
    remaining: Vec<usize>,
    started: Instant,
    last_log: Instant,
    quiet: bool,
}

impl Progress {
    /// `total` judgments in the run, `resumed` of them already on disk, and per cell the
    /// examples left to judge.
    pub fn new(total: u64, resumed: u64, remaining: Vec<usize>, quiet: bool) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30.cyan/blue} {pos}/{len} judged  {msg}  eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_position(resumed);
            bar
        });
        let now = Instant::now();
        Progress {
            bar,
            total,
            done: resumed,
            resumed,
            failures: 0,
            paid_calls: 0,
            cached_calls: 0,
            tokens: 0,
            in_flight: 0,
            calls_in_flight: 0,
            remaining,
            started: now,
            last_log: now,
            quiet,
        }
    }

    /// Records a completed judgment of `cell`, while `in_flight` examples are still
    /// being labelled with `calls_in_flight` backend calls outstanding.
    pub fn finished_unit(
        &mut self,
        judgment: &Judgment,
        cell: usize,
        (in_flight, calls_in_flight): (usize, usize),
    ) {
        self.in_flight = in_flight;
        self.calls_in_flight = calls_in_flight;
        if let Some(left) = self.remaining.get_mut(cell) {
            *left = left.saturating_sub(1);
        }
        self.done += 1;
        self.failures += u64::from(judgment.failure.is_some());
        self.paid_calls += u64::from(judgment.paid_calls);
        self.cached_calls += u64::from(judgment.calls.saturating_sub(judgment.paid_calls));
        if judgment.paid_calls > 0 {
            self.tokens += judgment.usage.prompt_tokens + judgment.usage.completion_tokens;
        }
        self.show();
    }

    fn status(&self) -> String {
        let seconds = self.started.elapsed().as_secs_f64().max(1e-3);
        let cells_done = self.remaining.iter().filter(|&&left| left == 0).count();
        format!(
            "{cells_done}/{} cells, {} examples and {} calls in flight, {:.0} tok/s, {} calls, \
             {} cached, {} failed",
            self.remaining.len(),
            self.in_flight,
            self.calls_in_flight,
            self.tokens as f64 / seconds,
            self.paid_calls,
            self.cached_calls,
            self.failures,
        )
    }

    fn show(&mut self) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(bar) => {
                bar.set_position(self.done);
                bar.set_message(self.status());
            }
            None => {
                if self.last_log.elapsed() >= LOG_EVERY || self.done == self.total {
                    self.last_log = Instant::now();
                    self.log_line();
                }
            }
        }
    }

    fn log_line(&self) {
        let percent = if self.total == 0 {
            100.0
        } else {
            100.0 * self.done as f64 / self.total as f64
        };
        let new = self.done - self.resumed;
        let elapsed = self.started.elapsed().as_secs_f64();
        let eta = if new > 0 {
            let per = elapsed / new as f64;
            format!("{:.0}s", per * (self.total - self.done) as f64)
        } else {
            "unknown".to_owned()
        };
        eprintln!(
            "rlaif: {}/{} judged ({percent:.0}%), {}, eta {eta}",
            self.done,
            self.total,
            self.status()
        );
    }

    /// Calls of the judged examples that the cache answered.
    pub fn calls_from_cache(&self) -> u64 {
        self.cached_calls
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

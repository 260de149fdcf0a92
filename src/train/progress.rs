//! Training progress: a live bar (loss, samples/s, ETA) on a terminal, one line per epoch
//! otherwise, so logs stay readable in CI and files.

use std::io::IsTerminal;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
    epoch_start: Instant,
}

impl Progress {
    /// `quiet` silences everything; otherwise a bar when stderr is a terminal.
    pub fn new(quiet: bool) -> Self {
        Self {
            bar: None,
            quiet,
            epoch_start: Instant::now(),
        }
    }

    pub fn start_epoch(&mut self, epoch: usize, epochs: usize, samples: u64, done: u64) {
        self.epoch_start = Instant::now();
        if self.quiet || !std::io::stderr().is_terminal() {
            return;
        }
        let bar = ProgressBar::new(samples);
        bar.set_style(
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} loss {msg} {per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{}/{}", epoch + 1, epochs));
        bar.set_position(done);
        self.bar = Some(bar);
    }

    pub fn step(&self, samples: u64, loss: f64) {
        if let Some(b) = &self.bar {
            b.inc(samples);
            b.set_message(format!("{loss:.5}"));
        }
    }

    /// Ends the epoch with a summary line (printed in every mode but quiet).
    pub fn end_epoch(&mut self, line: &str) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        if !self.quiet {
            eprintln!("{line}");
        }
    }

    pub fn seconds(&self) -> f64 {
        self.epoch_start.elapsed().as_secs_f64()
    }

    pub fn message(&mut self, line: &str) {
        if let Some(b) = &self.bar {
            b.suspend(|| eprintln!("{line}"));
        } else if !self.quiet {
            eprintln!("{line}");
        }
    }
}

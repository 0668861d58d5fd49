//! Progress on standard error: a spinner for one transform, a bar or plain lines for a
//! stream, and the figures of `--stats`.

use std::io::{self, IsTerminal as _};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::args::Run;

impl Run {
    /// A spinner with `message` on standard error, when it is a terminal and not --quiet;
    /// cleared when dropped.
    pub(crate) fn spinner(&self, message: &'static str) -> Option<Spinner> {
        if self.quiet || !io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::new_spinner().with_message(message);
        bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        bar.tick();
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Some(Spinner(bar))
    }

    /// How progress is shown: a bar on a terminal (with a percentage and the time left
    /// when the input's `size` is known), plain lines with --progress, nothing with
    /// --quiet or on a pipe.
    pub(crate) fn progress(&self, size: Option<u64>) -> Progress {
        if self.quiet {
            return Progress::Off;
        }
        if io::stderr().is_terminal() {
            let bar = match size {
                Some(len) => ProgressBar::new(len).with_style(
                    ProgressStyle::with_template(
                        "{spinner} {bytes}/{total_bytes} ({percent}%) {msg} {bytes_per_sec}, {eta} left",
                    )
                    .expect("a valid template"),
                ),
                None => ProgressBar::new_spinner().with_style(
                    ProgressStyle::with_template("{spinner} {bytes} {msg} {bytes_per_sec}")
                        .expect("a valid template"),
                ),
            };
            bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(10));
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            return Progress::Bar(bar);
        }
        if self.progress {
            return Progress::Plain {
                start: Instant::now(),
                last: Instant::now(),
                size,
            };
        }
        Progress::Off
    }
}

/// A spinner that clears itself when dropped.
pub(crate) struct Spinner(pub(crate) ProgressBar);

impl Drop for Spinner {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// Progress of a long run on standard error.
pub(crate) enum Progress {
    Off,
    Bar(ProgressBar),
    /// A plain line a second, for a standard error that is not a terminal.
    Plain {
        start: Instant,
        last: Instant,
        size: Option<u64>,
    },
}

impl Progress {
    pub(crate) fn update(&mut self, stats: &memhost::StreamStats) {
        match self {
            Progress::Off => {}
            Progress::Bar(bar) => {
                bar.set_position(stats.bytes_in);
                bar.set_message(format!("{} lines", stats.lines));
            }
            Progress::Plain { start, last, size } => {
                if last.elapsed().as_secs() >= 1 {
                    *last = Instant::now();
                    eprintln!("{}", plain_line(stats, start.elapsed(), *size));
                }
            }
        }
    }

    /// Clears the bar; plain progress ends with the final figures.
    pub(crate) fn finish(self, stats: Option<&memhost::StreamStats>) {
        match self {
            Progress::Off => {}
            Progress::Bar(bar) => bar.finish_and_clear(),
            Progress::Plain { start, size, .. } => {
                if let Some(stats) = stats {
                    eprintln!("{}", plain_line(stats, start.elapsed(), size));
                }
            }
        }
    }
}

/// One line of plain progress: lines, bytes, rate, and the share done when the size is
/// known.
pub(crate) fn plain_line(
    stats: &memhost::StreamStats,
    elapsed: std::time::Duration,
    size: Option<u64>,
) -> String {
    let secs = elapsed.as_secs_f64().max(1e-3);
    let mb = stats.bytes_in as f64 / 1e6;
    let share = size
        .filter(|&s| s > 0)
        .map(|s| format!(" ({:.0}%)", stats.bytes_in as f64 * 100.0 / s as f64))
        .unwrap_or_default();
    format!(
        "progress: {} lines, {mb:.1} MB{share}, {:.1} MB/s",
        stats.lines,
        mb / secs
    )
}

/// `n` bytes in MiB, to a tenth.
pub(crate) fn mib(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / f64::from(1 << 20))
}

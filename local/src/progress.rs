//! Progress on a terminal: one line on stderr redrawn in place, only when stderr is a
//! terminal (a script or a log sees nothing extra).

use std::{
    io::{IsTerminal, Write},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use snowcast::{convert::Progress, domain::manifest::Manifest};

/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(200);
/// Width of the bar, in characters.
const BAR: usize = 24;

/// Whether progress is shown: stderr is a terminal.
pub fn wanted() -> bool {
    std::io::stderr().is_terminal()
}

/// Replaces the current line of stderr with `line`.
pub fn redraw(line: &str) {
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "\r\x1b[2K{line}");
    let _ = stderr.flush();
}

/// Clears the current line of stderr.
pub fn clear() {
    redraw("");
}

/// `[#####-------]` for `done` of `total`.
pub fn bar(done: u64, total: u64) -> String {
    let filled = if total == 0 {
        BAR
    } else {
        ((done.min(total) as f64 / total as f64) * BAR as f64) as usize
    };
    format!("[{}{}]", "#".repeat(filled), "-".repeat(BAR - filled))
}

/// Megabytes with one decimal.
pub fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// A count with thousands separators.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The progress line of `snowcast convert`, redrawn on a thread of its own while the
/// conversion runs on the main one.
pub struct ConvertDisplay {
    progress: Arc<Progress>,
    total: u64,
    started: Instant,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ConvertDisplay {
    /// Starts drawing `progress` of an input of `total` bytes.
    pub fn start(progress: Arc<Progress>, total: u64) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let thread = std::thread::Builder::new()
            .name("progress".into())
            .spawn({
                let (progress, stop) = (progress.clone(), stop.clone());
                move || {
                    while !stop.load(Ordering::Relaxed) {
                        redraw(&convert_line(&progress, total, started.elapsed()));
                        std::thread::sleep(TICK);
                    }
                }
            })
            .ok();
        ConvertDisplay {
            progress,
            total,
            started,
            stop,
            thread,
        }
    }

    /// Stops drawing and, for a finished conversion, prints its one-line summary.
    pub fn finish(mut self, manifest: Option<&Manifest>) {
        self.halt();
        clear();
        if let Some(manifest) = manifest {
            eprintln!("{}", self.summary(manifest));
        }
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    fn summary(&self, manifest: &Manifest) -> String {
        let elapsed = self.started.elapsed();
        let outcome = if manifest.is_accepted() {
            "converted"
        } else {
            "rejected the file:"
        };
        format!(
            "snowcast: {outcome} {} rows read, {} written, {} rejected; {} partitions, {} files; \
             {} in {:.1} s ({}/s)",
            count(manifest.rows_read),
            count(manifest.rows_written),
            count(manifest.rows_rejected),
            count(self.progress.partitions()),
            count(manifest.files.len() as u64),
            megabytes(self.total),
            elapsed.as_secs_f64(),
            megabytes(rate(self.total, elapsed)),
        )
    }
}

impl Drop for ConvertDisplay {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Bytes per second.
fn rate(bytes: u64, elapsed: Duration) -> u64 {
    (bytes as f64 / elapsed.as_secs_f64().max(1e-3)) as u64
}

fn convert_line(progress: &Progress, total: u64, elapsed: Duration) -> String {
    let read = progress.input_bytes();
    let percent = (read.min(total) * 100).checked_div(total).unwrap_or(100);
    let mut line = format!(
        "convert {} {percent:>3}% {} of {} · {} rows · {}/s",
        bar(read, total),
        megabytes(read),
        megabytes(total),
        count(progress.rows()),
        megabytes(rate(read, elapsed)),
    );
    if progress.partitions() > 0 {
        line.push_str(&format!(" · {} partitions", count(progress.partitions())));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_and_numbers_read_well() {
        assert_eq!(bar(0, 100), format!("[{}]", "-".repeat(BAR)));
        assert_eq!(
            bar(50, 100),
            format!("[{}{}]", "#".repeat(12), "-".repeat(12))
        );
        assert_eq!(bar(200, 100), format!("[{}]", "#".repeat(BAR)));
        assert_eq!(bar(0, 0), format!("[{}]", "#".repeat(BAR)));
        assert_eq!(count(0), "0");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(100), "100");
        assert_eq!(megabytes(12_345_678), "12.3 MB");
    }
}

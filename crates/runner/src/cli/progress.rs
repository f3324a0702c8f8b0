//! Progress on stderr: a live line per stream on a terminal, a plain line every ten seconds
//! otherwise (logs of cron and orchestrators stay readable).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use elt_core::Error;
use elt_core::message::ReadStats;
use elt_runner::{Observer, StreamReport};
use indicatif::{ProgressBar, ProgressStyle};

/// The progress display of one `elt sync`.
pub struct Progress {
    terminal: bool,
    active: Mutex<Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>>,
}

impl Progress {
    /// A display for a terminal (`true`) or for logs.
    pub fn new(terminal: bool) -> Self {
        Self {
            terminal,
            active: Mutex::new(None),
        }
    }

    /// Stops the display of the current stream, if any.
    pub fn finish(&self) {
        if let Some((done, handle)) = self.active.lock().ok().and_then(|mut a| a.take()) {
            done.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
    }
}

impl Observer for Progress {
    fn stream_started(&self, stream: &str, stats: Arc<ReadStats>) {
        self.finish();
        let done = Arc::new(AtomicBool::new(false));
        let (stream, stop, terminal) = (stream.to_owned(), done.clone(), self.terminal);
        let handle = std::thread::spawn(move || {
            let started = Instant::now();
            let bar = terminal.then(|| {
                let bar = ProgressBar::new_spinner().with_prefix(stream.clone());
                if let Ok(style) = ProgressStyle::with_template(
                    "{spinner} {prefix}: {human_pos} rows ({per_sec}) {elapsed}",
                ) {
                    bar.set_style(style);
                }
                bar
            });
            let mut last_line = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                match &bar {
                    Some(bar) => bar.set_position(stats.rows()),
                    None if last_line.elapsed() >= Duration::from_secs(10) => {
                        last_line = Instant::now();
                        let secs = started.elapsed().as_secs_f64();
                        eprintln!(
                            "{stream}: {} rows read in {secs:.0}s ({:.0} rows/s)",
                            stats.rows(),
                            stats.rows() as f64 / secs
                        );
                    }
                    None => {}
                }
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
        });
        if let Ok(mut active) = self.active.lock() {
            *active = Some((done, handle));
        }
    }

    fn stream_finished(&self, report: &StreamReport) {
        self.finish();
        let outcome = match &report.error {
            Some(_) => "failed",
            None => "done",
        };
        eprintln!(
            "{}: {outcome}: {} rows read, {} loaded in {:.2}s",
            report.stream, report.rows_read, report.rows_loaded, report.duration_secs
        );
    }

    fn retrying(&self, stream: &str, error: &Error, wait: Duration) {
        eprintln!(
            "{stream}: {error:#}; retrying in {:.1}s from the last checkpoint",
            wait.as_secs_f64()
        );
    }
}

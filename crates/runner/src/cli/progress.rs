//! Progress on stderr: a live line per stream on a terminal, a plain line every ten seconds
//! otherwise (logs of cron and orchestrators stay readable), or with `--log-format json` a
//! `progress` log event every ten seconds (stream ends and retries are the engine's own
//! log events there).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use elt_core::Error;
use elt_core::message::ReadStats;
use elt_runner::{Observer, StreamReport};
use indicatif::{ProgressBar, ProgressStyle};

/// Where progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// A live spinner per stream.
    Terminal,
    /// A plain line every ten seconds.
    Lines,
    /// A log event every ten seconds (JSON logs).
    Log,
}

/// The progress display of one `elt sync`.
pub struct Progress {
    display: Display,
    active: Mutex<Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>>,
}

impl Progress {
    /// A display of the given kind.
    pub fn new(display: Display) -> Self {
        Self {
            display,
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
        let (stream, stop, display) = (stream.to_owned(), done.clone(), self.display);
        // Called inside the stream's span: log events from the thread carry its fields.
        let span = tracing::Span::current();
        let handle = std::thread::spawn(move || {
            let started = Instant::now();
            let bar = (display == Display::Terminal).then(|| {
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
                        let (rows, secs) = (stats.rows(), started.elapsed().as_secs_f64());
                        let per_sec = (rows as f64 / secs).round();
                        if display == Display::Log {
                            span.in_scope(|| tracing::info!(rows_read = rows, per_sec, "progress"));
                        } else {
                            eprintln!(
                                "{stream}: {rows} rows read in {secs:.0}s ({per_sec} rows/s)"
                            );
                        }
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
        if self.display == Display::Log {
            return;
        }
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
        if self.display == Display::Log {
            return;
        }
        eprintln!(
            "{stream}: {error:#}; retrying in {:.1}s from the last checkpoint",
            wait.as_secs_f64()
        );
    }
}

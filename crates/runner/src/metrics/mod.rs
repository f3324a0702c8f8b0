//! Metrics of runs, per connection and stream: rows read, loaded and dead-lettered, bytes,
//! retries, batch and commit latency, run duration and status, freshness, the watermark's
//! lag and (cdc) the source's log lag. One catalogue (`catalogue.rs`) feeds two sinks: a
//! Prometheus registry (text format, for `/metrics` and `--metrics-file`) and the global
//! OpenTelemetry meter (exported over OTLP when the CLI installs an exporter).
//!
//! Values are recorded when a stream's run ends, from its report, and when the run ends:
//! a long first load shows up when it finishes, not row by row. Counters count over the
//! process's life (a cron run's file holds that run's totals); the `elt_last_run_*` gauges
//! hold each stream's last run. What it does not do: serve or write anything itself
//! beyond [`Metrics::write_textfile`].

mod catalogue;
mod otel;
mod prometheus_text;

use std::path::Path;
use std::sync::Arc;

use catalogue::Def;

pub use prometheus_text::CONTENT_TYPE;

use crate::report::StreamReport;

/// Where recorded values go.
trait Sink: Send + Sync {
    fn add(&self, def: &Def, labels: &[&str], value: u64);
    fn set(&self, def: &Def, labels: &[&str], value: f64);
    fn observe(&self, def: &Def, labels: &[&str], value: f64);
}

/// The metrics of this process's runs; cheap to clone (one shared registry).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    prometheus: prometheus_text::PrometheusSink,
    otel: otel::OtelSink,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A new registry, and instruments on the global OpenTelemetry meter.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                prometheus: prometheus_text::PrometheusSink::new(),
                otel: otel::OtelSink::new(),
            }),
        }
    }

    /// Every metric with a value, in Prometheus' text format ([`CONTENT_TYPE`]).
    pub fn prometheus_text(&self) -> String {
        self.inner.prometheus.text()
    }

    /// Writes [`Self::prometheus_text`] to `path` for node exporter's textfile collector:
    /// into a temporary file beside it, then renamed over it, so a scrape never reads half
    /// a file.
    pub fn write_textfile(&self, path: &Path) -> std::io::Result<()> {
        let temporary = temporary(path);
        std::fs::write(&temporary, self.prometheus_text())?;
        std::fs::rename(&temporary, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&temporary);
        })
    }

    /// Whether [`Self::write_textfile`] can write beside `path`: creates and removes its
    /// temporary file, so a run can refuse a path it could not write before it starts.
    pub fn check_textfile(path: &Path) -> std::io::Result<()> {
        let temporary = temporary(path);
        std::fs::write(&temporary, "")?;
        std::fs::remove_file(&temporary)
    }

    fn sinks(&self) -> [&dyn Sink; 2] {
        [&self.inner.prometheus, &self.inner.otel]
    }

    fn add(&self, def: &Def, labels: &[&str], value: u64) {
        self.sinks().iter().for_each(|s| s.add(def, labels, value));
    }

    fn set(&self, def: &Def, labels: &[&str], value: f64) {
        self.sinks().iter().for_each(|s| s.set(def, labels, value));
    }

    fn observe(&self, def: &Def, labels: &[&str], value: f64) {
        self.sinks()
            .iter()
            .for_each(|s| s.observe(def, labels, value));
    }

    /// Records a stream's run of `connection` that ended at `ended_at` (Unix seconds).
    pub(crate) fn stream_finished(&self, connection: &str, report: &StreamReport, ended_at: f64) {
        use catalogue::*;
        let labels = [connection, report.stream.as_str()];
        self.add(&ROWS_READ, &labels, report.rows_read);
        self.add(&ROWS_LOADED, &labels, report.rows_loaded);
        self.add(&ROWS_DEAD_LETTERED, &labels, report.rows_dead_lettered);
        self.add(&BYTES_READ, &labels, report.measures.bytes_read);
        self.add(
            &RETRIES,
            &labels,
            u64::from(report.attempts.saturating_sub(1)),
        );
        let status = [connection, report.stream.as_str(), report.status];
        self.add(&STREAM_RUNS, &status, 1);
        for secs in &report.measures.batch_secs {
            self.observe(&BATCH_SECONDS, &labels, *secs);
        }
        for secs in &report.measures.commit_secs {
            self.observe(&COMMIT_SECONDS, &labels, *secs);
        }
        self.observe(&STREAM_SECONDS, &labels, report.duration_secs);
        self.set(&LAST_ROWS_LOADED, &labels, report.rows_loaded as f64);
        let succeeded = report.error.is_none();
        self.set(&LAST_SUCCEEDED, &labels, f64::from(u8::from(succeeded)));
        self.set(&LAST_RUN_END, &labels, ended_at);
        if succeeded {
            self.set(&LAST_SUCCESS, &labels, ended_at);
        }
        if let Some(watermark) = report.watermark_after.as_deref().and_then(as_unix_secs) {
            self.set(&WATERMARK_LAG, &labels, (ended_at - watermark).max(0.0));
        }
        if let Some(bytes) = report.measures.source_lag_bytes {
            self.set(&SOURCE_LAG, &labels, bytes as f64);
        }
    }

    /// Records a run of `connection` with its outcome (`succeeded`, `partial`, `failed`).
    pub(crate) fn run_finished(&self, connection: &str, status: &str, secs: f64) {
        self.add(&catalogue::RUNS, &[connection, status], 1);
        self.observe(&catalogue::RUN_SECONDS, &[connection], secs);
    }
}

/// The temporary file [`Metrics::write_textfile`] writes before renaming it to `path`.
fn temporary(path: &Path) -> std::path::PathBuf {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    temporary.into()
}

/// A watermark that is a time (RFC 3339, or `YYYY-MM-DD HH:MM:SS[.f]` taken as UTC), in
/// Unix seconds; None for other cursors (ids, LSNs, offsets).
fn as_unix_secs(watermark: &str) -> Option<f64> {
    let micros = chrono::DateTime::parse_from_rfc3339(watermark)
        .map(|t| t.timestamp_micros())
        .or_else(|_| {
            chrono::NaiveDateTime::parse_from_str(watermark, "%Y-%m-%d %H:%M:%S%.f")
                .map(|t| t.and_utc().timestamp_micros())
        })
        .ok()?;
    Some(micros as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermarks_that_are_times() {
        assert_eq!(as_unix_secs("1970-01-01T00:01:00Z"), Some(60.0));
        assert_eq!(as_unix_secs("1970-01-01 00:00:01.5"), Some(1.5));
        assert_eq!(as_unix_secs("12345"), None);
        assert_eq!(as_unix_secs("0/16B3748"), None);
    }
}

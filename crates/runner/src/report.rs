//! What a sync reports: per stream and overall, for people (a table) and machines (JSON).

use schemars::JsonSchema;
use serde::Serialize;

use elt_core::{ErrorKind, SyncMode, WriteMode};

/// The version of the `--json` summary's shape; raised on any incompatible change.
pub const REPORT_VERSION: u32 = 1;

/// The JSON Schema of the `--json` summary.
pub fn summary_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(SyncReport))
        .expect("a JSON schema always serializes")
}

/// The outcome of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Every stream succeeded.
    Succeeded,
    /// Some streams failed; the others committed.
    Partial,
    /// Every stream failed, or the run failed before any stream.
    Failed,
}

/// One stream's outcome.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct StreamReport {
    /// The stream's name.
    pub stream: String,
    /// The raw table.
    pub table: String,
    /// How it was read.
    pub sync_mode: SyncMode,
    /// How it was written.
    pub write_mode: WriteMode,
    /// `succeeded` or `failed`.
    pub status: &'static str,
    /// Rows the source sent.
    pub rows_read: u64,
    /// Rows committed into the raw table (merges count inserted and replaced rows; history
    /// counts versions added).
    pub rows_loaded: u64,
    /// Records routed to the dead-letter table instead of the raw table (they failed the
    /// stream's JSON Schema or its `discard_row` contract, or did not fit their column).
    pub rows_dead_lettered: u64,
    /// Whether this run compared the stream's primary keys with the source's to find hard
    /// deletes (`reconcile_deletes_every`, `--reconcile-deletes`).
    pub deletes_reconciled: bool,
    /// Rows the reconciliation marked deleted, removed or closed (0 when it did not run).
    pub rows_deleted: u64,
    /// The watermark before the run.
    pub watermark_before: Option<String>,
    /// The watermark after the run.
    pub watermark_after: Option<String>,
    /// Wall seconds for the stream.
    pub duration_secs: f64,
    /// Attempts made (1 unless transient errors were retried).
    pub attempts: u32,
    /// Notes from the source and the runner (fallbacks, skipped rows).
    pub notes: Vec<String>,
    /// The error, when failed.
    pub error: Option<String>,
    /// The error's classification, when failed.
    pub error_kind: Option<ErrorKind>,
    /// The source asked to plan the stream again (its columns changed mid-read).
    #[serde(skip)]
    #[schemars(skip)]
    pub replan: bool,
    /// Timings and sizes for the metrics, not in the summary.
    #[serde(skip)]
    #[schemars(skip)]
    pub measures: Measures,
}

/// What a stream's run measured beside its report's numbers, for the metrics.
#[derive(Debug, Clone, Default)]
pub struct Measures {
    /// Approximate Arrow bytes the source sent.
    pub bytes_read: u64,
    /// Seconds of each commit, over every attempt.
    pub commit_secs: Vec<f64>,
    /// Seconds of each batch's load, over every attempt.
    pub batch_secs: Vec<f64>,
    /// Bytes of change log the source still keeps after the commit (cdc).
    pub source_lag_bytes: Option<u64>,
}

impl StreamReport {
    /// This report with an earlier part of the same stream's run (before a replan) added.
    pub fn after(mut self, earlier: StreamReport) -> Self {
        self.rows_read += earlier.rows_read;
        self.rows_loaded += earlier.rows_loaded;
        self.rows_dead_lettered += earlier.rows_dead_lettered;
        self.watermark_before = earlier.watermark_before;
        self.duration_secs += earlier.duration_secs;
        self.attempts += earlier.attempts;
        self.measures.bytes_read += earlier.measures.bytes_read;
        let mut commits = earlier.measures.commit_secs;
        commits.append(&mut self.measures.commit_secs);
        self.measures.commit_secs = commits;
        let mut batches = earlier.measures.batch_secs;
        batches.append(&mut self.measures.batch_secs);
        self.measures.batch_secs = batches;
        let mut notes = earlier.notes;
        notes.append(&mut self.notes);
        self.notes = notes;
        self
    }
}

/// A whole run's outcome.
/// The `--json` summary of `elt sync`; its JSON Schema is `specs/sync-summary.schema.json`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct SyncReport {
    /// [`REPORT_VERSION`].
    pub version: u32,
    /// The run id, as in `_elt_runs` and `_elt_run_id`.
    pub run_id: String,
    /// The connection's name.
    pub connection: String,
    /// The overall outcome.
    pub status: RunOutcome,
    /// Where the source read from, without secrets, with its TLS mode
    /// (`db:5432/app as elt (tls verify-full)`); null for sources without an endpoint.
    pub source: Option<String>,
    /// Where the destination wrote (a DuckDB file, or a server as for `source`).
    pub destination: Option<String>,
    /// Wall seconds for the run.
    pub duration_secs: f64,
    /// Per stream, in sync order.
    pub streams: Vec<StreamReport>,
    /// The data tests run after the sync (`test_after_sync`); empty otherwise.
    pub tests: Vec<crate::datatests::TestOutcome>,
}

impl RunOutcome {
    /// The name used in `--json` and in logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Partial => "partial",
            Self::Failed => "failed",
        }
    }
}

impl SyncReport {
    /// The overall outcome from the streams'.
    pub fn outcome(streams: &[StreamReport]) -> RunOutcome {
        let failed = streams.iter().filter(|s| s.error.is_some()).count();
        match failed {
            0 => RunOutcome::Succeeded,
            n if n == streams.len() => RunOutcome::Failed,
            _ => RunOutcome::Partial,
        }
    }

    /// A plain-text table for people.
    pub fn to_table(&self) -> String {
        let header = [
            "stream",
            "mode",
            "status",
            "read",
            "loaded",
            "watermark",
            "secs",
        ];
        let rows: Vec<Vec<String>> = self
            .streams
            .iter()
            .map(|s| {
                vec![
                    s.stream.clone(),
                    format!("{}/{}", s.sync_mode, s.write_mode),
                    s.status.to_owned(),
                    s.rows_read.to_string(),
                    s.rows_loaded.to_string(),
                    s.watermark_after.clone().unwrap_or_else(|| "-".into()),
                    format!("{:.2}", s.duration_secs),
                ]
            })
            .collect();
        let mut out = text_table(&header, &rows, &[3, 4, 6]);
        let (read, loaded): (u64, u64) = self
            .streams
            .iter()
            .fold((0, 0), |(r, l), s| (r + s.rows_read, l + s.rows_loaded));
        let status = match self.status {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Partial => "partially failed",
            RunOutcome::Failed => "failed",
        };
        let nothing_new = if read == 0 && self.status == RunOutcome::Succeeded {
            " (no new rows)"
        } else {
            ""
        };
        out.push_str(&format!(
            "{}: {status}{nothing_new}: {read} rows read, {loaded} loaded in {:.2}s (run {})\n",
            self.connection, self.duration_secs, self.run_id
        ));
        let endpoints: Vec<String> = [("from", &self.source), ("into", &self.destination)]
            .iter()
            .filter_map(|(word, at)| at.as_ref().map(|at| format!("{word} {at}")))
            .collect();
        if !endpoints.is_empty() {
            out.push_str(&format!("{}\n", endpoints.join(", ")));
        }
        for s in &self.streams {
            for note in &s.notes {
                out.push_str(&format!("note: {}: {note}\n", s.stream));
            }
            if let Some(error) = &s.error {
                out.push_str(&format!("error: {}: {error}\n", s.stream));
            }
        }
        if !self.tests.is_empty() {
            out.push_str(&crate::datatests::render(&self.tests));
        }
        out
    }

    /// Whether a data test run after the sync failed.
    pub fn tests_failed(&self) -> bool {
        self.tests
            .iter()
            .any(crate::datatests::TestOutcome::fails_run)
    }
}

/// A plain-text table: columns padded to their widest cell, those at `right` (numbers)
/// aligned right; one line per row after the header.
pub fn text_table(header: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, &w))| {
                if right.contains(&i) {
                    format!("{c:>w$}")
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        let mut text = padded.join("  ").trim_end().to_owned();
        text.push('\n');
        text
    };
    let mut out = line(&mut header.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

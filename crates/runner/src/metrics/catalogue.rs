//! Every metric elt exports: its name, help, labels and kind, in one list that both sinks
//! (Prometheus and OpenTelemetry) build their instruments from. Only names and shapes; no
//! values.
//!
//! Labels stay few: a connection, a stream, a status. Never a run id or a key (each value
//! is a new time series in Prometheus).

/// What a metric is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    /// Only goes up (Prometheus names it `…_total`).
    Counter,
    /// A value that is set (the last run's numbers, a lag, a timestamp).
    Gauge,
    /// Observations sorted into buckets (upper bounds, seconds).
    Histogram(&'static [f64]),
}

/// One metric.
#[derive(Debug)]
pub(crate) struct Def {
    /// The Prometheus name (counters end in `_total`; OpenTelemetry drops that suffix).
    pub name: &'static str,
    pub help: &'static str,
    pub labels: &'static [&'static str],
    pub kind: Kind,
}

const STREAM: &[&str] = &["connection", "stream"];
const STREAM_STATUS: &[&str] = &["connection", "stream", "status"];
const RUN_STATUS: &[&str] = &["connection", "status"];
const RUN: &[&str] = &["connection"];

/// Buckets of a batch's or a commit's seconds.
const STEP_SECS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Buckets of a stream's or a run's seconds.
const RUN_SECS: &[f64] = &[
    0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 10800.0,
];

pub(crate) const ROWS_READ: Def = Def {
    name: "elt_rows_read_total",
    help: "Records the source sent (dead-lettered ones included)",
    labels: STREAM,
    kind: Kind::Counter,
};
pub(crate) const ROWS_LOADED: Def = Def {
    name: "elt_rows_loaded_total",
    help: "Rows committed into the raw table (merges: rows that changed it)",
    labels: STREAM,
    kind: Kind::Counter,
};
pub(crate) const ROWS_DEAD_LETTERED: Def = Def {
    name: "elt_rows_dead_lettered_total",
    help: "Records committed to _elt_dead_letter instead of the raw table",
    labels: STREAM,
    kind: Kind::Counter,
};
pub(crate) const BYTES_READ: Def = Def {
    name: "elt_bytes_read_total",
    help: "Approximate Arrow bytes the source sent",
    labels: STREAM,
    kind: Kind::Counter,
};
pub(crate) const RETRIES: Def = Def {
    name: "elt_retries_total",
    help: "Attempts of a stream retried after a transient error",
    labels: STREAM,
    kind: Kind::Counter,
};
pub(crate) const STREAM_RUNS: Def = Def {
    name: "elt_stream_runs_total",
    help: "Stream runs ended, by status (succeeded, failed)",
    labels: STREAM_STATUS,
    kind: Kind::Counter,
};
pub(crate) const RUNS: Def = Def {
    name: "elt_runs_total",
    help: "Runs ended, by status (succeeded, partial, failed)",
    labels: RUN_STATUS,
    kind: Kind::Counter,
};
pub(crate) const BATCH_SECONDS: Def = Def {
    name: "elt_batch_load_seconds",
    help: "Seconds the destination took to load one batch",
    labels: STREAM,
    kind: Kind::Histogram(STEP_SECS),
};
pub(crate) const COMMIT_SECONDS: Def = Def {
    name: "elt_commit_seconds",
    help: "Seconds one commit of rows and state took",
    labels: STREAM,
    kind: Kind::Histogram(STEP_SECS),
};
pub(crate) const STREAM_SECONDS: Def = Def {
    name: "elt_stream_duration_seconds",
    help: "Seconds a stream's run took",
    labels: STREAM,
    kind: Kind::Histogram(RUN_SECS),
};
pub(crate) const RUN_SECONDS: Def = Def {
    name: "elt_run_duration_seconds",
    help: "Seconds a run of a connection took",
    labels: RUN,
    kind: Kind::Histogram(RUN_SECS),
};
pub(crate) const LAST_ROWS_LOADED: Def = Def {
    name: "elt_last_run_rows_loaded",
    help: "Rows the stream's last run loaded",
    labels: STREAM,
    kind: Kind::Gauge,
};
pub(crate) const LAST_SUCCEEDED: Def = Def {
    name: "elt_last_run_succeeded",
    help: "1 when the stream's last run succeeded, 0 when it failed",
    labels: STREAM,
    kind: Kind::Gauge,
};
pub(crate) const LAST_RUN_END: Def = Def {
    name: "elt_last_run_timestamp_seconds",
    help: "When the stream's last run ended (Unix seconds)",
    labels: STREAM,
    kind: Kind::Gauge,
};
pub(crate) const LAST_SUCCESS: Def = Def {
    name: "elt_last_success_timestamp_seconds",
    help: "When the stream last committed a successful run (Unix seconds): freshness",
    labels: STREAM,
    kind: Kind::Gauge,
};
pub(crate) const WATERMARK_LAG: Def = Def {
    name: "elt_watermark_lag_seconds",
    help: "Seconds between the end of the stream's last run and its watermark, when the watermark is a time",
    labels: STREAM,
    kind: Kind::Gauge,
};
pub(crate) const SOURCE_LAG: Def = Def {
    name: "elt_source_lag_bytes",
    help: "Bytes of change log the source keeps for the stream after its commit (cdc: the replication slot's WAL)",
    labels: STREAM,
    kind: Kind::Gauge,
};

/// Every metric, in the order they are exported.
pub(crate) const ALL: &[&Def] = &[
    &ROWS_READ,
    &ROWS_LOADED,
    &ROWS_DEAD_LETTERED,
    &BYTES_READ,
    &RETRIES,
    &STREAM_RUNS,
    &RUNS,
    &BATCH_SECONDS,
    &COMMIT_SECONDS,
    &STREAM_SECONDS,
    &RUN_SECONDS,
    &LAST_ROWS_LOADED,
    &LAST_SUCCEEDED,
    &LAST_RUN_END,
    &LAST_SUCCESS,
    &WATERMARK_LAG,
    &SOURCE_LAG,
];

//! What a caller chooses for one sync ([`SyncOptions`]) and the hooks that tell it about
//! progress ([`Observer`]). No behaviour: the engine and the planner read them.

use std::sync::Arc;
use std::time::Duration;

use elt_core::Error;
use elt_core::message::ReadStats;

pub use crate::checks::DeadLetterLimit;
use crate::report::StreamReport;

/// What a caller may choose for one sync.
#[derive(Clone, Default)]
pub struct SyncOptions {
    /// Only these streams (of those the connection syncs).
    pub streams: Option<Vec<String>>,
    /// Ignore saved state and rebuild each stream's table.
    pub full_refresh: bool,
    /// Re-read this cursor window of each stream without moving its watermark.
    pub backfill: Option<elt_core::Backfill>,
    /// Told about progress; the CLI draws bars or prints lines.
    pub observer: Option<Arc<dyn Observer>>,
    /// How long to wait for a destination lock another run holds (none: fail at once).
    pub wait_for_lock: Option<Duration>,
    /// Look for hard deletes in every merge and history stream after it syncs.
    pub reconcile_deletes: bool,
    /// Fail a stream whose dead-lettered records exceed this count or share.
    pub max_dead_letter: Option<crate::checks::DeadLetterLimit>,
    /// Fail a cdc stream whose replication slot still keeps more WAL than this many bytes
    /// after the stream committed (the source server's disk is filling).
    pub max_slot_lag: Option<u64>,
    /// Where the run's metrics are recorded (the CLI serves or writes them).
    pub metrics: Option<crate::metrics::Metrics>,
}

/// Hooks for progress display. Every method has an empty default.
pub trait Observer: Send + Sync {
    /// A stream began; `stats` counts its rows as they are read.
    fn stream_started(&self, _stream: &str, _stats: Arc<ReadStats>) {}
    /// A stream ended.
    fn stream_finished(&self, _report: &StreamReport) {}
    /// A transient error will be retried after `wait`.
    fn retrying(&self, _stream: &str, _error: &Error, _wait: Duration) {}
}

//! The source contract, and the factory that registers a source type.
//!
//! A connector writes a config struct (serde with `deny_unknown_fields`, plus
//! `schemars::JsonSchema`) and a type implementing [`Source`], then registers one
//! [`SourceFactory`] in its crate's `sources()` list. Building a source from its config does
//! no I/O: that is what makes `elt validate` safe and fast. `check`, `discover` and `read`
//! do the I/O.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

use crate::catalog::{Catalog, ConfiguredStream};
use crate::error::{Error, Result};
use crate::message::Emitter;
use crate::reconcile::{Key, KeyRange, RangeDigest};
use crate::state::StreamState;

/// A source of streams.
#[async_trait]
pub trait Source: Send + Sync {
    /// A cheap health check: can we reach the system with these credentials?
    async fn check(&self) -> Result<()>;

    /// Where and how the source connects, without any secret (`db:5432/app as elt (tls
    /// verify-full)`), for `elt check` and the run summary; no I/O. None for sources
    /// without a network endpoint.
    fn endpoint(&self) -> Result<Option<String>> {
        Ok(None)
    }

    /// Whether `read` honours [`ConfiguredStream::parallelism`] above 1 (reading key ranges
    /// on several connections); the runner refuses the option for sources that do not.
    fn reads_in_parallel(&self) -> bool {
        false
    }

    /// Whether `read` honours [`ConfiguredStream::backfill`] (only the rows whose cursor is
    /// in the window); the runner refuses backfills for sources that do not.
    fn reads_windows(&self) -> bool {
        false
    }

    /// Cut points of `stream`'s cursor about `rows` rows apart (over the whole table, in
    /// order; the caller keeps those inside its range), in the canonical text of
    /// [`crate::windows`], from the source's statistics (never a scan of the table);
    /// `None` when the source keeps none.
    async fn cursor_cut_points(
        &self,
        stream: &ConfiguredStream,
        rows: u64,
    ) -> Result<Option<Vec<String>>> {
        let _ = (stream, rows);
        Ok(None)
    }

    /// The digest of each of `windows` of `stream` over `columns`
    /// ([`crate::window_digest`]), computed in the source (no row leaves it); `None` when
    /// the source cannot.
    async fn window_digests(
        &self,
        stream: &ConfiguredStream,
        columns: &[crate::window_digest::DigestColumn],
        windows: &[crate::windows::Window],
    ) -> Result<Option<Vec<crate::window_digest::WindowDigest>>> {
        let _ = (stream, columns, windows);
        Ok(None)
    }

    /// Whether `read` honours [`SyncMode::Cdc`](crate::SyncMode::Cdc) (a snapshot, then
    /// changes from the source's log); the runner refuses `sync = "cdc"` for sources that
    /// do not.
    fn reads_changes(&self) -> bool {
        false
    }

    /// What the server lacks for change data capture of `tables` (`schema.table`), each
    /// with the statement that fixes it; empty when nothing is missing. For `elt check`.
    async fn check_changes(&self, tables: &[String]) -> Result<Vec<String>> {
        let _ = tables;
        Ok(Vec::new())
    }

    /// What the source's change log keeps for cdc stream `stream` now (its slot's kept WAL
    /// and lag), for `elt runs`; None for sources without one. Reads only.
    async fn log_status(&self, stream: &ConfiguredStream) -> Result<Option<crate::cdc::LogStatus>> {
        let _ = stream;
        Ok(None)
    }

    /// Removes what change data capture of `stream` keeps on the server (PostgreSQL: its
    /// slot and publication); returns what it removed, in words. For `elt cdc drop`.
    async fn drop_changes(&self, stream: &ConfiguredStream) -> Result<Vec<String>> {
        Err(Error::config(format!(
            "stream {}: this source keeps nothing for change data capture",
            stream.name()
        )))
    }

    /// The destination committed `state` for `stream` at the end of a successful read: a
    /// source that keeps a position of its own (a replication slot) may move it there.
    /// Returns the bytes the source still keeps for the stream (the WAL a slot retains), if
    /// it keeps any.
    async fn committed(
        &self,
        stream: &ConfiguredStream,
        state: &StreamState,
    ) -> Result<Option<u64>> {
        let _ = (stream, state);
        Ok(None)
    }

    /// The streams the source offers, with their Arrow schemas, keys and cursor candidates.
    async fn discover(&self) -> Result<Catalog>;

    /// Reads one stream, starting after `state` when the stream is incremental and a state
    /// exists. Sends batches in the stream's schema and a checkpoint after rows it can
    /// resume from; returns when the stream is exhausted. Incremental reads go in keyset
    /// order `(cursor, primary key)` so a resumed read neither skips nor repeats a row.
    async fn read(
        &self,
        stream: &ConfiguredStream,
        state: Option<StreamState>,
        out: &mut Emitter,
    ) -> Result<()>;

    /// Hard-delete detection: the digest of each key range of `stream`, leaving out rows
    /// its soft-delete column marks deleted (see [`crate::reconcile`]). Sources that cannot
    /// answer keep this default, an error.
    async fn key_digests(
        &self,
        stream: &ConfiguredStream,
        ranges: &[KeyRange],
    ) -> Result<Vec<RangeDigest>> {
        let _ = ranges;
        Err(cannot_reconcile(stream))
    }

    /// Hard-delete detection: the keys in `range` (soft-deleted rows left out).
    async fn keys_in_range(&self, stream: &ConfiguredStream, range: &KeyRange) -> Result<Vec<Key>> {
        let _ = range;
        Err(cannot_reconcile(stream))
    }
}

/// The error of a connector that cannot take part in reconciling deletes.
pub fn cannot_reconcile(stream: &ConfiguredStream) -> Error {
    Error::config(format!(
        "stream {}: this source or destination type cannot reconcile deletes; remove \
         `reconcile_deletes_every` from the stream and do not pass --reconcile-deletes",
        stream.name()
    ))
}

/// A connector config: parsed strictly from the config file and validated without I/O.
pub trait ConnectorConfig: DeserializeOwned + JsonSchema {
    /// Checks what serde cannot (ranges, combinations); messages name the option.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Parses and validates a connector config; errors name the key path, such as
/// "`batch_rows`: invalid type: string \"x\", expected u64".
pub fn parse_config<C: ConnectorConfig>(config: &serde_json::Value) -> Result<C> {
    let parsed: C = serde_path_to_error::deserialize(config).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            Error::config(inner.to_string())
        } else {
            Error::config(format!("`{path}`: {inner}"))
        }
    })?;
    parsed.validate()?;
    Ok(parsed)
}

/// The JSON Schema of a connector config.
pub fn config_schema<C: ConnectorConfig>() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(C)).expect("a JSON schema always serializes")
}

type BuildSource = Box<dyn Fn(&serde_json::Value) -> Result<Box<dyn Source>> + Send + Sync>;

/// A registered source type: its name, its config schema, and how to build it.
pub struct SourceFactory {
    /// The `type` in the config, such as `sample` or `postgres`.
    pub kind: &'static str,
    /// One line for `elt connectors`.
    pub description: &'static str,
    spec: fn() -> serde_json::Value,
    build: BuildSource,
}

impl SourceFactory {
    /// Registers a source type whose config is `C`; `build` must do no I/O.
    pub fn new<C: ConnectorConfig + 'static>(
        kind: &'static str,
        description: &'static str,
        build: fn(C) -> Result<Box<dyn Source>>,
    ) -> Self {
        Self {
            kind,
            description,
            spec: config_schema::<C>,
            build: Box::new(move |value| build(parse_config::<C>(value)?)),
        }
    }

    /// The JSON Schema of the config.
    pub fn spec(&self) -> serde_json::Value {
        (self.spec)()
    }

    /// Parses, validates and builds, without I/O.
    pub fn build(&self, config: &serde_json::Value) -> Result<Box<dyn Source>> {
        (self.build)(config)
    }
}

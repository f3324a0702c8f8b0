//! elt-core: the contracts every connector and the runner share.
//!
//! What lives here: the [`Source`] and [`Destination`] traits and their registration
//! types, the [`Message`]s that flow between them, the [`Catalog`] a source discovers and
//! the [`ConfiguredStream`] a sync runs, per-stream [`StreamState`], the classified
//! [`Error`], the redacting [`Secret`], identifier quoting, the Arrow batch helpers, and what SQL database sources
//! share without a driver ([`sql`]).
//!
//! What does not: any I/O driver (the conformance kit's test database helper aside, feature
//! `testkit` with `postgres`). What the PostgreSQL source and destination share lives in
//! `elt-postgres`, connectors in `elt-connectors`, loaders in `elt-destinations`, and
//! configuration files, the sync engine and the CLI in `elt-runner`.

pub mod batch;
pub mod bounds;
pub mod capability;
pub mod catalog;
pub mod cdc;
pub mod changes;
pub mod destination;
pub mod error;
pub mod failpoint;
pub mod hashing;
pub mod ident;
pub mod message;
pub mod partitions;
pub mod previous;
pub mod reconcile;
pub mod record;
pub mod secret;
pub mod source;
pub mod sql;
pub mod state;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tls;
pub mod window_digest;
pub mod windows;

pub use capability::{RunRecord, RunStatus, SchemaChange};
pub use catalog::{
    Backfill, Catalog, ConfiguredStream, Deletes, OnDelete, StreamDescriptor, SyncMode, WriteMode,
};
pub use destination::{Destination, DestinationFactory, DestinationSession, RunInfo, WriteSummary};
pub use error::{Error, ErrorKind, Result};
pub use ident::{normalize_name, quote_ident};
pub use message::{BatchCheck, BatchObserver, DeadLetter, Emitter, Message};
pub use secret::Secret;
pub use source::{ConnectorConfig, Source, SourceFactory, parse_config};
pub use state::{StateMap, StreamState};

/// The Arrow crate that every elt crate uses, re-exported so connectors pin one version.
pub use arrow;

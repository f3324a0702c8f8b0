//! elt-runner: configuration, the sync engine and the library API behind the `elt` binary.
//!
//! A Rust program runs a sync without the CLI:
//!
//! ```no_run
//! # async fn demo() -> elt_core::Result<()> {
//! let project = elt_runner::Project::load("elt.toml")?;
//! let report = elt_runner::sync(&project, "demo", &Default::default()).await?;
//! println!("{}", report.to_table());
//! # Ok(()) }
//! ```
//!
//! What it does not do: parse command lines or print (that is `main.rs`), or know any
//! connector beyond the two registration lists (see [`registry`]).

pub mod backfill;
pub mod checks;
pub mod config;
pub mod datatests;
pub mod engine;
pub mod metrics;
mod options;
pub mod plan;
pub mod read;
pub mod reconcile;
pub mod reconcile_windows;
pub mod registry;
pub mod replay;
pub mod report;
mod retry;
mod spec_secrets;
mod stream;

pub use config::Project;
pub use engine::{Observer, SyncOptions, sync};
pub use metrics::Metrics;
pub use report::{RunOutcome, StreamReport, SyncReport};

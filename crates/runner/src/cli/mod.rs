//! The command-line interface: arguments, commands, logging, progress display and exit
//! codes.

pub mod args;
pub mod backfill;
pub mod cdc;
pub mod commands;
pub mod datatests;
pub mod dbt;
pub mod deadletter;
pub mod discover;
pub mod follow;
pub mod logging;
pub mod plan;
pub mod progress;
pub mod reading;
pub mod reconcile;
pub mod runs;
pub mod telemetry;
pub mod ui;

/// Exit codes, documented in the README.
pub mod exit {
    use elt_core::ErrorKind;

    /// Everything succeeded.
    pub const SUCCESS: i32 = 0;
    /// The sync (or command) failed; streams that committed before the failure keep it.
    pub const FAILED: i32 = 1;
    /// Usage or configuration error: nothing was done.
    pub const CONFIG: i32 = 2;
    /// Another run holds the lock: nothing was done.
    pub const LOCKED: i32 = 3;
    /// Some streams failed and the others committed.
    pub const PARTIAL: i32 = 4;

    /// The code for an error that stopped a command.
    pub fn for_error(err: &anyhow::Error) -> i32 {
        match err
            .downcast_ref::<elt_core::Error>()
            .map(elt_core::Error::kind)
        {
            Some(ErrorKind::Config) => CONFIG,
            Some(ErrorKind::Locked) => LOCKED,
            _ => FAILED,
        }
    }
}

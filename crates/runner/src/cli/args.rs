//! Command-line arguments (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// elt: move data from sources into raw, typed warehouse tables.
#[derive(Debug, Parser)]
#[command(name = "elt", version, about, propagate_version = true)]
pub struct Cli {
    /// The project file.
    #[arg(long, global = true, env = "ELT_CONFIG", default_value = elt_runner::config::DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a starter elt.toml (a demo connection: sample data into DuckDB).
    Init {
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// List the source and destination types this build knows.
    Connectors,
    /// Print the JSON Schema of a connector type's options.
    Spec {
        /// A type from `elt connectors`, such as `sample` or `duckdb`.
        kind: String,
    },
    /// Validate the project file without connecting to anything.
    Validate,
    /// Check that a connection's source and destination are reachable.
    Check(ConnectionArg),
    /// List the streams a connection's source offers.
    Discover {
        #[command(flatten)]
        connection: ConnectionArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sync a connection.
    Sync(SyncArgs),
    /// Show or reset saved state.
    State {
        #[command(subcommand)]
        action: StateAction,
    },
}

/// `--connection NAME`.
#[derive(Debug, Args)]
pub struct ConnectionArg {
    /// A connection from the project file.
    #[arg(long, short = 'c')]
    pub connection: String,
}

/// Options of `elt sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub connection: ConnectionArg,
    /// Only these streams (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub streams: Option<Vec<String>>,
    /// Ignore saved state: read everything and rebuild the tables.
    #[arg(long, conflicts_with = "backfill_from")]
    pub full_refresh: bool,
    /// Re-read rows whose cursor is at or after this value (such as 2024-01-01T00:00:00Z),
    /// without moving the watermark; needs --backfill-to.
    #[arg(long, requires = "backfill_to")]
    pub backfill_from: Option<String>,
    /// The last cursor value a backfill reads; needs --backfill-from.
    #[arg(long, requires = "backfill_from")]
    pub backfill_to: Option<String>,
    /// Print the summary as JSON on stdout (progress stays on stderr).
    #[arg(long)]
    pub json: bool,
    /// No progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `elt state show|reset`.
#[derive(Debug, Subcommand)]
pub enum StateAction {
    /// Print the saved state of a connection's streams.
    Show {
        #[command(flatten)]
        connection: ConnectionArg,
        /// Only this stream.
        #[arg(long)]
        stream: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Forget saved state: the next sync of those streams reads from the start.
    Reset {
        #[command(flatten)]
        connection: ConnectionArg,
        /// Only this stream (all streams of the connection when omitted).
        #[arg(long)]
        stream: Option<String>,
    },
}

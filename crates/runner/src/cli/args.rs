//! Command-line arguments (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// elt: move data from sources into raw, typed warehouse tables.
#[derive(Debug, Parser)]
#[command(
    name = "elt",
    version,
    about = "elt: copy tables and APIs into raw, typed DuckDB or PostgreSQL tables, incrementally; \
             a rerun, a crash or a kill never loses or duplicates a row",
    propagate_version = true
)]
pub struct Cli {
    /// The project file.
    #[arg(long, global = true, env = "ELT_CONFIG", default_value = elt_runner::config::DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Log lines on stderr for people (`human`) or one JSON object per line (`json`, with
    /// connection, stream and run_id; info level by default).
    #[arg(
        long,
        global = true,
        env = "ELT_LOG_FORMAT",
        value_enum,
        default_value_t
    )]
    pub log_format: LogFormat,
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
    /// Backfills cut into cursor windows that workers load at once: plan, run, status.
    Backfill {
        #[command(subcommand)]
        action: super::backfill::BackfillAction,
    },
    /// Compare a stream's backfill windows between source and destination (row counts
    /// and checksums), and with --repair load the differing ones again.
    Reconcile(super::reconcile::ReconcileArgs),
    /// Change data capture: remove what cdc streams keep on the source.
    Cdc {
        #[command(subcommand)]
        action: CdcAction,
    },
    /// List a connection's recent runs from `_elt_runs`, newest first.
    Runs {
        #[command(flatten)]
        connection: ConnectionArg,
        /// How many runs (each with its streams), 1 to 1000000.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the schema changes the next sync would make, and what each contract does.
    Plan(PlanArgs),
    /// Run a connection's data tests against its raw tables (`[[connections.NAME.tests]]`).
    Test(TestArgs),
    /// Records that failed a check, kept in `_elt_dead_letter`.
    DeadLetter {
        #[command(subcommand)]
        action: DeadLetterAction,
    },
    /// Write a dbt `sources.yml` describing a connection's raw tables.
    DbtSources(DbtSourcesArgs),
    /// Serve a local web page of the connections: runs, freshness, errors, data tests,
    /// dead letters (with replay), state and schema plans, and `/metrics`.
    Ui(UiArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `elt man > elt.1`.
    Man,
}

/// How log lines on stderr look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Plain lines for people.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Options of `elt ui`.
#[derive(Debug, Args)]
pub struct UiArgs {
    /// The port (0: any free one; the address is printed at start).
    #[arg(long, default_value_t = 8040)]
    pub port: u16,
    /// Listen on this address instead of 127.0.0.1 (such as 0.0.0.0); every request then
    /// needs the token printed at start.
    #[arg(long, value_name = "IP")]
    pub listen: Option<std::net::IpAddr>,
}

/// Options of `elt dbt-sources`.
#[derive(Debug, Args)]
pub struct DbtSourcesArgs {
    #[command(flatten)]
    pub connection: ConnectionArg,
    /// Write to this file instead of stdout (such as models/staging/sources.yml).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// dbt source freshness: warn when the newest row is older than this many hours.
    #[arg(long, default_value_t = 24)]
    pub warn_after_hours: u32,
    /// dbt source freshness: error when the newest row is older than this many hours.
    #[arg(long, default_value_t = 48)]
    pub error_after_hours: u32,
}

/// `--connection NAME`.
#[derive(Debug, Clone, Args)]
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
    /// When another run holds the destination's lock, wait up to this many seconds for it
    /// (exit 3 if it is still held); fail at once by default.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(..=elt_core::bounds::MAX_SECS))]
    pub wait_for_lock: Option<u64>,
    /// After syncing each merge, previous or history stream, look for rows deleted in the source
    /// (compares primary keys range by range) and mark them deleted.
    #[arg(long)]
    pub reconcile_deletes: bool,
    /// Fail a stream when more of its records than this went to `_elt_dead_letter`: a count
    /// (`100`) or a share of the records read (`0.05`, `5%`). The rows stay committed.
    #[arg(long, value_name = "LIMIT", value_parser = elt_runner::engine::DeadLetterLimit::parse)]
    pub max_dead_letter: Option<elt_runner::engine::DeadLetterLimit>,
    /// Fail a cdc stream whose replication slot still keeps more WAL than this after the
    /// stream committed: bytes, or with a unit (`500MB`, `20GB`). What it loaded stays.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_slot_lag: Option<u64>,
    /// No progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Keep syncing: start a new run every --follow-interval seconds after the last one
    /// ends (each run commits as it goes and is recorded in `_elt_runs`), until SIGTERM or
    /// Ctrl-C, which let the current run finish and commit first.
    #[arg(long, conflicts_with_all = ["full_refresh", "backfill_from"])]
    pub follow: bool,
    /// Write the run's metrics in Prometheus' text format to this file when it ends (for
    /// node exporter's textfile collector; replaced atomically, after every run with
    /// --follow).
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// With --follow: serve the metrics for Prometheus at http://ADDR/metrics (such as
    /// 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR", requires = "follow")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// With --follow: seconds between the end of a run and the start of the next.
    #[arg(long, value_name = "SECS", default_value_t = 5, requires = "follow",
          value_parser = clap::value_parser!(u64).range(..=elt_core::bounds::MAX_SECS))]
    pub follow_interval: u64,
}

/// `elt cdc drop`.
#[derive(Debug, Subcommand)]
pub enum CdcAction {
    /// Drop the replication slot and publication of a connection's streams (each stream
    /// that is or was `sync = "cdc"`) and forget their cdc position: the server frees the
    /// WAL the slot kept, and a later cdc sync starts from a new snapshot.
    Drop {
        #[command(flatten)]
        connection: ConnectionArg,
        /// Only this stream.
        #[arg(long)]
        stream: Option<String>,
    },
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

/// Arguments of `elt test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub connection: ConnectionArg,
    /// Only the tests of these streams (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub streams: Option<Vec<String>>,
    /// Only the tests with these names (`regex(email)`), kinds (`regex`) or streams
    /// (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub select: Option<Vec<String>>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `elt plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub connection: ConnectionArg,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `elt dead-letter` actions.
#[derive(Debug, Subcommand)]
pub enum DeadLetterAction {
    /// List the dead letters of a connection, newest first.
    List(DeadLetterListArgs),
    /// Re-check the dead letters and load those that now pass, exactly once.
    Replay(DeadLetterReplayArgs),
}

/// Arguments of `elt dead-letter replay`.
#[derive(Debug, Args)]
pub struct DeadLetterReplayArgs {
    #[command(flatten)]
    pub connection: ConnectionArg,
    /// Only this stream's.
    #[arg(long)]
    pub stream: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `elt dead-letter list`.
#[derive(Debug, Args)]
pub struct DeadLetterListArgs {
    #[command(flatten)]
    pub connection: ConnectionArg,
    /// Only this stream's.
    #[arg(long)]
    pub stream: Option<String>,
    /// How many at most, 1 to 1000000.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub limit: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// A size in bytes: a number, optionally followed by `KB`, `MB`, `GB` or `TB` (powers of
/// 1000).
fn parse_size(text: &str) -> Result<u64, String> {
    let upper = text.trim().to_ascii_uppercase();
    let digits = upper.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let scale: u64 = match &upper[digits.len()..] {
        "" | "B" => 1,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        unit => return Err(format!("unknown unit {unit:?}; use KB, MB, GB or TB")),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("{text:?} is not a size such as 500MB or 20GB"))
}

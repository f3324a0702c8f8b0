//! `elt backfill plan|run|status`: the arguments and the printing around
//! `elt_runner::backfill`. Nothing here reads or writes data itself.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};
use elt_core::windows::Step;
use elt_runner::backfill::{self, Cut, Plan, WindowState};
use elt_runner::{Project, RunOutcome, SyncOptions};

use super::args::ConnectionArg;
use super::exit;
use super::progress::{Display, Progress};

/// `elt backfill` actions.
#[derive(Debug, Subcommand)]
pub enum BackfillAction {
    /// Print the windows a range of a stream's cursor is cut into, numbered from 0.
    Plan(PlanArgs),
    /// Load some windows of a plan: each replaces its rows and is recorded as done.
    Run(RunArgs),
    /// Show done, running (leased) and missing windows, and the holes between done ones.
    Status(StatusArgs),
}

/// Which plan: recomputed from `--from/--to/--by`, or read from `--plan FILE`.
#[derive(Debug, Clone, Args)]
pub struct PlanSource {
    #[command(flatten)]
    pub connection: ConnectionArg,
    /// The stream (such as public.orders).
    #[arg(long, short = 's')]
    pub stream: Option<String>,
    /// The first cursor value (a timestamp, date or integer, as the cursor is).
    #[arg(long)]
    pub from: Option<String>,
    /// The first cursor value after the range (excluded).
    #[arg(long)]
    pub to: Option<String>,
    /// Window size: day, week or month (UTC calendar), or N-rows (from the source's
    /// statistics; save such a plan with --json and pass it to every worker with --plan).
    #[arg(long, value_parser = clap::value_parser!(Step))]
    pub by: Option<Step>,
    /// A plan written by `elt backfill plan --json`, instead of --stream/--from/--to/--by.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["from", "to", "by", "stream"])]
    pub plan: Option<PathBuf>,
}

/// Options of `elt backfill plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub source: PlanSource,
    /// Print JSON (the plan file of --plan).
    #[arg(long)]
    pub json: bool,
}

/// Options of `elt backfill run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub source: PlanSource,
    /// One window, by its index in the plan.
    #[arg(long, conflicts_with = "windows")]
    pub window: Option<usize>,
    /// Windows K..M (both included), loaded one after another.
    #[arg(long, value_name = "K..M")]
    pub windows: Option<String>,
    /// Reload windows that are done already.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub syncs: WindowSyncArgs,
    /// Print JSON: each window with its sync's summary.
    #[arg(long)]
    pub json: bool,
}

/// How the syncs that load windows run.
#[derive(Debug, Args)]
pub struct WindowSyncArgs {
    /// Wait up to SECS for the destination's lock (a DuckDB file takes one writer: the
    /// windows of several workers queue on it).
    #[arg(long, value_name = "SECS")]
    pub wait_for_lock: Option<u64>,
    /// No progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

impl WindowSyncArgs {
    /// The sync options, and their progress display (none when quiet).
    pub fn options(&self) -> (SyncOptions, Option<Arc<Progress>>) {
        let display = match std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            true => Display::Terminal,
            false => Display::Lines,
        };
        let progress = (!self.quiet).then(|| Arc::new(Progress::new(display)));
        let options = SyncOptions {
            observer: progress.clone().map(|p| p as Arc<dyn elt_runner::Observer>),
            wait_for_lock: self.wait_for_lock.map(std::time::Duration::from_secs),
            ..SyncOptions::default()
        };
        (options, progress)
    }
}

/// Options of `elt backfill status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub source: PlanSource,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// The plan the arguments name.
pub async fn plan_of(project: &Project, args: &PlanSource) -> anyhow::Result<Plan> {
    let connection = &args.connection.connection;
    if let Some(path) = &args.plan {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("--plan {}: {e}", path.display()))?;
        let plan: Plan = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "--plan {}: not a plan of `elt backfill plan --json`: {e}",
                path.display()
            )
        })?;
        if &plan.connection != connection {
            return Err(elt_core::Error::config(format!(
                "--plan {} is a plan of connection {}, not {connection}",
                path.display(),
                plan.connection
            ))
            .into());
        }
        return Ok(plan);
    }
    let missing = |flag: &str| {
        elt_core::Error::config(format!(
            "{flag} is missing: a plan needs --stream, --from, --to and --by (or --plan FILE)"
        ))
    };
    let stream = args.stream.as_deref().ok_or_else(|| missing("--stream"))?;
    let cut = Cut {
        from: args.from.clone().ok_or_else(|| missing("--from"))?,
        to: args.to.clone().ok_or_else(|| missing("--to"))?,
        by: args.by.ok_or_else(|| missing("--by"))?,
    };
    Ok(backfill::plan(project, connection, stream, &cut).await?)
}

/// `elt backfill ACTION`.
pub async fn backfill(project: &Project, action: BackfillAction) -> anyhow::Result<i32> {
    match action {
        BackfillAction::Plan(args) => {
            let plan = plan_of(project, &args.source).await?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                println!(
                    "{} windows of {} by {}:",
                    plan.windows.len(),
                    plan.stream,
                    plan.cursor
                );
                for (index, window) in plan.windows.iter().enumerate() {
                    println!("{index:>5}  {window}");
                }
            }
            Ok(exit::SUCCESS)
        }
        BackfillAction::Status(args) => {
            // Without a range, the status is of what the destination recorded.
            let source = &args.source;
            let cut = source.from.is_some() || source.to.is_some() || source.by.is_some();
            let plan = match cut || source.plan.is_some() {
                true => Some(plan_of(project, &args.source).await?),
                false => None,
            };
            let stream = match (&plan, &args.source.stream) {
                (Some(plan), _) => plan.stream.clone(),
                (None, Some(stream)) => stream.clone(),
                (None, None) => {
                    return Err(elt_core::Error::config(
                        "--stream is missing: `elt backfill status` needs --stream (or --plan FILE)",
                    )
                    .into());
                }
            };
            let connection = &args.source.connection.connection;
            let (status, note) =
                backfill::status(project, connection, &stream, plan.as_ref()).await?;
            if let Some(note) = note {
                eprintln!("elt: {note}");
            }
            if args.json {
                println!("{}", serde_json::to_string_pretty(&status)?);
                return Ok(exit::SUCCESS);
            }
            for w in &status.windows {
                let state = match w.state {
                    WindowState::Done => "done".to_owned(),
                    WindowState::Running => {
                        format!("running ({})", w.holder.as_deref().unwrap_or_default())
                    }
                    WindowState::Missing => "missing".to_owned(),
                };
                println!("{:>5}  {}  {state}", w.index, w.window);
            }
            print_set(&status.done, &status.holes);
            if plan.is_none() {
                for (window, holder) in &status.running {
                    println!("running: {window} ({holder})");
                }
            }
            Ok(exit::SUCCESS)
        }
        BackfillAction::Run(args) => run(project, args).await,
    }
}

/// Prints each stream's completed backfill windows (`elt state show`) as merged ranges and
/// the holes between them.
pub fn print_windows(windows: &[elt_core::capability::CompletedWindow]) {
    let mut streams: Vec<&str> = windows.iter().map(|w| w.stream.as_str()).collect();
    streams.sort_unstable();
    streams.dedup();
    for stream in streams {
        let set = elt_core::windows::WindowSet::new(
            windows
                .iter()
                .filter(|w| w.stream == stream)
                .map(|w| &w.window),
        );
        println!("{stream}: backfill windows");
        print_set(&set.ranges().cloned().collect::<Vec<_>>(), &set.holes(None));
    }
}

/// Prints a stream's completed windows as merged ranges and their holes.
pub fn print_set(done: &[elt_core::windows::Window], holes: &[elt_core::windows::Window]) {
    let list = |ws: &[elt_core::windows::Window]| match ws.is_empty() {
        true => "none".to_owned(),
        false => ws
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" "),
    };
    println!("  done: {}", list(done));
    println!("  holes: {}", list(holes));
}

async fn run(project: &Project, args: RunArgs) -> anyhow::Result<i32> {
    project.check_environment()?;
    let plan = plan_of(project, &args.source).await?;
    let which = match (args.window, &args.windows) {
        (Some(k), _) => k..=k,
        (None, Some(text)) => parse_windows(text)?,
        (None, None) => 0..=plan.windows.len().saturating_sub(1),
    };
    let (options, progress) = args.syncs.options();
    let runs = backfill::run(project, &plan, which, args.force, &options).await?;
    if let Some(progress) = progress {
        progress.finish();
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
    }
    let mut code = exit::SUCCESS;
    for run in &runs {
        match &run.report {
            None if !args.json => println!(
                "window {} {}: done already (--force reloads it)",
                run.index, run.window
            ),
            None => {}
            Some(report) => {
                if !args.json {
                    println!("window {} {}:", run.index, run.window);
                    print!("{}", report.to_table());
                }
                code = match report.status {
                    RunOutcome::Succeeded => code,
                    _ if report
                        .streams
                        .iter()
                        .any(|s| s.error_kind == Some(elt_core::ErrorKind::Locked)) =>
                    {
                        exit::LOCKED
                    }
                    _ => exit::FAILED,
                };
            }
        }
    }
    Ok(code)
}

/// `K..M`, both included.
fn parse_windows(text: &str) -> anyhow::Result<std::ops::RangeInclusive<usize>> {
    let parsed = text
        .split_once("..")
        .and_then(|(k, m)| Some(k.trim().parse().ok()?..=m.trim().parse().ok()?));
    parsed.ok_or_else(|| {
        elt_core::Error::config(format!(
            "--windows {text}: expected K..M, such as 0..9 (both included)"
        ))
        .into()
    })
}

//! `elt reconcile`: the arguments and the printing around
//! `elt_runner::reconcile_windows`. Without `--from/--to` (or `--plan`), the range is the
//! one the stream's completed backfill windows span.

use clap::Args;
use elt_runner::Project;
use elt_runner::reconcile_windows::{Reconciliation, WindowCheck, reconcile};

use super::backfill::{PlanSource, WindowSyncArgs, plan_of};
use super::exit;

/// Options of `elt reconcile`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub source: PlanSource,
    /// Load the windows that differ again (replacing their rows), then compare them again.
    #[arg(long)]
    pub repair: bool,
    /// How a repair's syncs run.
    #[command(flatten)]
    pub syncs: WindowSyncArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `elt reconcile`: exit 0 when source and destination agree (after the repair), else 1.
pub async fn run(project: &Project, args: ReconcileArgs) -> anyhow::Result<i32> {
    let mut source = args.source.clone();
    if source.plan.is_none() && source.from.is_none() && source.to.is_none() {
        let stream = source.stream.clone().ok_or_else(|| {
            elt_core::Error::config("--stream is missing: reconcile needs --stream and --by")
        })?;
        let connection = &source.connection.connection;
        let (status, _) = elt_runner::backfill::status(project, connection, &stream, None).await?;
        let (Some(first), Some(last)) = (status.done.first(), status.done.last()) else {
            return Err(elt_core::Error::config(format!(
                "stream {stream} has no completed backfill windows to take the range from: \
                 pass --from and --to"
            ))
            .into());
        };
        source.from = Some(first.from.clone());
        source.to = Some(last.to.clone());
    }
    let plan = plan_of(project, &source).await?;
    let (options, progress) = args.syncs.options();
    let result = reconcile(project, &plan, args.repair, &options).await?;
    if let Some(progress) = progress {
        progress.finish();
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print(&result);
    }
    Ok(if result.agrees() {
        exit::SUCCESS
    } else {
        exit::FAILED
    })
}

fn print(result: &Reconciliation) {
    let list = |names: &[String]| match names.is_empty() {
        true => "none".to_owned(),
        false => names.join(", "),
    };
    println!(
        "{}: {} windows compared on {} (left out: {})",
        result.stream,
        result.windows.len(),
        list(&result.compared),
        list(&result.left_out)
    );
    let line = |check: &WindowCheck| {
        println!(
            "{:>5}  {}  source {} rows, destination {} rows{}",
            check.index,
            check.window,
            check.source.rows,
            check.destination.rows,
            if check.differs { ": DIFFERS" } else { "" }
        );
    };
    result.windows.iter().for_each(line);
    if result.differing.is_empty() {
        println!("every window agrees");
        return;
    }
    let indexes: Vec<String> = result.differing.iter().map(ToString::to_string).collect();
    println!("{} windows differ: {}", indexes.len(), indexes.join(", "));
    match &result.repair {
        None => println!("run again with --repair to load them again"),
        Some(repair) => {
            let left = repair.after.iter().filter(|c| c.differs).count();
            println!(
                "repair: loaded {} windows again, reading {} rows from the source; {}",
                repair.runs.len(),
                repair.source_rows_read,
                if left == 0 {
                    "they agree now".to_owned()
                } else {
                    format!("{left} still differ (did the source change meanwhile?)")
                }
            );
            repair.after.iter().filter(|c| c.differs).for_each(line);
        }
    }
}

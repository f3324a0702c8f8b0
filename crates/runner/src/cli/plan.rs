//! `elt plan`: what the next sync of a connection would do to each raw table (create it,
//! add columns, meet a changed type) and what each stream's schema contract makes of it,
//! without reading rows or changing anything (`elt_runner::plan::schema_plan`).
//!
//! It reads the source's catalog (as `elt sync` does first) and asks the destination to
//! compare each planned stream with its table; opening the destination takes its lock for
//! that moment, like any command that reads it.

use elt_runner::Project;

use super::args::PlanArgs;
use super::exit;

/// Prints the plan; returns the exit code.
pub async fn plan(project: &Project, args: &PlanArgs) -> anyhow::Result<i32> {
    let connection = &args.connection.connection;
    let (config, _, destination) = project.connection(connection)?;
    let mut session = destination.open_reader(connection, &config.dataset).await?;
    let plans = elt_runner::plan::schema_plan(project, connection, session.as_mut())
        .await
        .map_err(|e| anyhow::Error::new(e).context(format!("connection {connection}")))?;
    if args.json {
        let out = serde_json::json!({ "connection": connection, "streams": plans });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(exit::SUCCESS);
    }
    for plan in &plans {
        println!(
            "{} -> {}.{} ({}/{}, schema_contract {})",
            plan.stream,
            config.dataset,
            plan.table,
            plan.sync_mode,
            plan.write_mode,
            plan.schema_contract
        );
        for note in &plan.notes {
            println!("  {note}");
        }
        if plan.changes.is_empty() {
            println!("  no schema change");
        }
        for change in &plan.changes {
            println!("  {}: {}", change.description, change.action);
        }
    }
    Ok(exit::SUCCESS)
}

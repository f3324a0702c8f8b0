//! `elt dead-letter list`: the records of a connection's `_elt_dead_letter` table, newest
//! first, with their stream, run and reason (read through the destination's dead-letter
//! capability, so on DuckDB and PostgreSQL alike; it changes nothing). `elt dead-letter replay`: see
//! `elt_runner::replay`.

use elt_runner::Project;

use super::args::{DeadLetterListArgs, DeadLetterReplayArgs};
use super::exit;

/// Prints the dead letters; returns the exit code.
pub async fn list(project: &Project, args: &DeadLetterListArgs) -> anyhow::Result<i32> {
    let connection = &args.connection.connection;
    let mut session = super::reading::bookkeeping(project, connection).await?;
    let letters = session
        .dead_letters()
        .ok_or_else(|| {
            elt_core::capability::missing("readable dead-letter table", "`elt dead-letter list`")
        })?
        .list(args.stream.as_deref(), args.limit as usize)
        .await?;
    if args.json {
        let records: Vec<serde_json::Value> = letters
            .iter()
            .map(|d| {
                serde_json::json!({
                    "id": d.id,
                    "stream": d.stream,
                    "run_id": d.run_id,
                    "dead_at": d.dead_at,
                    "reason": d.reason,
                    "record": serde_json::from_str::<serde_json::Value>(&d.record).unwrap_or_default(),
                })
            })
            .collect();
        let out = serde_json::json!({ "connection": connection, "dead_letters": records });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(exit::SUCCESS);
    }
    if letters.is_empty() {
        println!("{connection}: no dead letters");
    }
    for d in &letters {
        println!("{} {} (run {}, {})", d.id, d.stream, d.run_id, d.dead_at);
        println!("  reason: {}", d.reason);
        println!("  record: {}", d.record);
    }
    Ok(exit::SUCCESS)
}

/// Replays the dead letters; exit 1 when some still fail.
pub async fn replay(project: &Project, args: &DeadLetterReplayArgs) -> anyhow::Result<i32> {
    let connection = &args.connection.connection;
    project.check_environment()?;
    let outcomes = elt_runner::replay::replay(project, connection, args.stream.as_deref()).await?;
    if args.json {
        let out = serde_json::json!({ "connection": connection, "streams": outcomes });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if outcomes.is_empty() {
        println!("{connection}: no dead letters");
    } else {
        for o in &outcomes {
            println!(
                "{}: {} replayed, {} superseded by newer rows, {} still failing",
                o.stream, o.replayed, o.superseded, o.still_failing
            );
        }
    }
    Ok(if outcomes.iter().any(|o| o.still_failing > 0) {
        exit::FAILED
    } else {
        exit::SUCCESS
    })
}

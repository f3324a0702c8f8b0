//! `elt dead-letter list`: the records of a connection's `_elt_dead_letter` table, newest
//! first, with their stream, run and reason (read through `DestinationSession::query_text`,
//! so on DuckDB and PostgreSQL alike; it changes nothing). `elt dead-letter replay`: see
//! `elt_runner::replay`.

use elt_runner::Project;

use super::args::{DeadLetterListArgs, DeadLetterReplayArgs};
use super::exit;

/// Prints the dead letters; returns the exit code.
pub async fn list(project: &Project, args: &DeadLetterListArgs) -> anyhow::Result<i32> {
    let connection = &args.connection.connection;
    let (config, _, destination) = project.connection(connection)?;
    let mut session = destination.open_reader(connection, &config.dataset).await?;
    let table = format!(
        "{}._elt_dead_letter",
        elt_core::quote_ident(&config.dataset)
    );
    let sql = format!(
        "SELECT CAST(id AS VARCHAR), stream, run_id, CAST(dead_at AS VARCHAR), reason, CAST(record AS VARCHAR)
         FROM {table} WHERE connection = $1 AND ($2 = '' OR stream = $2)
         ORDER BY dead_at DESC, stream, id LIMIT {}",
        args.limit
    );
    let params = [connection.clone(), args.stream.clone().unwrap_or_default()];
    let rows = session.query_text(&sql, &params).await?;
    let text = |row: &[Option<String>], i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    if args.json {
        let records: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": text(r, 0),
                    "stream": text(r, 1),
                    "run_id": text(r, 2),
                    "dead_at": text(r, 3),
                    "reason": text(r, 4),
                    "record": serde_json::from_str::<serde_json::Value>(&text(r, 5)).unwrap_or_default(),
                })
            })
            .collect();
        let out = serde_json::json!({ "connection": connection, "dead_letters": records });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(exit::SUCCESS);
    }
    if rows.is_empty() {
        println!("{connection}: no dead letters");
    }
    for r in &rows {
        println!(
            "{} {} (run {}, {})",
            text(r, 0),
            text(r, 1),
            text(r, 2),
            text(r, 3)
        );
        println!("  reason: {}", text(r, 4));
        println!("  record: {}", text(r, 5));
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

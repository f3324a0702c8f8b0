//! `elt runs`: a connection's recent runs from the destination's `_elt_runs`, as a table or
//! as JSON (`{"version": 1, "connection": …, "runs": [one object per stream of a run]}`).
//!
//! It reads without a lock and waits for nothing: while a sync of the same DuckDB file
//! runs, it reads the runs that sync has published (`elt_runner::read`) and says so on
//! stderr. For a connection with cdc streams it also asks the source
//! what each stream's replication slot keeps now (WAL kept, lag), under `slots` in JSON.

use chrono::{DateTime, SecondsFormat};
use elt_core::RunRecord;
use elt_runner::Project;
use elt_runner::report::text_table;
use serde::Serialize;

use super::exit;

/// The version of the `elt runs --json` shape.
const RUNS_VERSION: u32 = 1;

/// One stream of one run, as printed.
#[derive(Serialize)]
struct RunRow {
    run_id: String,
    stream: String,
    status: &'static str,
    started_at: String,
    ended_at: Option<String>,
    rows_read: u64,
    rows_loaded: u64,
    watermark_before: Option<String>,
    watermark_after: Option<String>,
    extract_secs: f64,
    load_secs: f64,
    error: Option<String>,
}

fn rfc3339(us: i64) -> String {
    DateTime::from_timestamp_micros(us).map_or_else(
        || us.to_string(),
        |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
    )
}

impl From<RunRecord> for RunRow {
    fn from(r: RunRecord) -> Self {
        Self {
            run_id: r.run_id,
            stream: r.stream,
            status: r.status.as_str(),
            started_at: rfc3339(r.started_at_us),
            ended_at: r.ended_at_us.map(rfc3339),
            rows_read: r.rows_read,
            rows_loaded: r.rows_loaded,
            watermark_before: r.watermark_before,
            watermark_after: r.watermark_after,
            extract_secs: r.extract_secs,
            load_secs: r.load_secs,
            error: r.error,
        }
    }
}

/// Prints the streams of the last `limit` runs of `connection`, newest first.
pub async fn runs(
    project: &Project,
    connection: &str,
    limit: usize,
    json: bool,
) -> anyhow::Result<i32> {
    let mut session = super::reading::bookkeeping(project, connection).await?;
    let log = session
        .run_log()
        .ok_or_else(|| elt_core::capability::missing("run log (`_elt_runs`)", "`elt runs`"))?;
    let rows: Vec<RunRow> = log
        .runs(limit)
        .await?
        .into_iter()
        .map(RunRow::from)
        .collect();
    let slots = slots(project, connection).await;
    if json {
        let out = serde_json::json!({
            "version": RUNS_VERSION,
            "connection": connection,
            "runs": rows,
            "slots": slots,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(exit::SUCCESS);
    }
    for slot in &slots {
        match (&slot.status, &slot.error) {
            (Some(status), _) => println!("{}: {status}", slot.stream),
            (None, Some(error)) => println!("{}: slot status unknown: {error}", slot.stream),
            (None, None) => println!(
                "{}: no replication slot (the next sync creates it)",
                slot.stream
            ),
        }
    }
    if rows.is_empty() {
        println!("{connection}: no runs recorded yet");
        return Ok(exit::SUCCESS);
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.run_id.clone(),
                r.stream.clone(),
                r.status.to_owned(),
                r.started_at.clone(),
                r.rows_read.to_string(),
                r.rows_loaded.to_string(),
                r.watermark_after.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let header = [
        "run",
        "stream",
        "status",
        "started",
        "read",
        "loaded",
        "watermark",
    ];
    print!("{}", text_table(&header, &cells, &[4, 5]));
    for r in rows.iter().filter(|r| r.error.is_some()) {
        println!(
            "error: {} {}: {}",
            r.run_id,
            r.stream,
            r.error.as_deref().unwrap_or("")
        );
    }
    Ok(exit::SUCCESS)
}

/// What the source's change log keeps for one cdc stream now.
#[derive(Serialize)]
struct SlotRow {
    stream: String,
    #[serde(flatten)]
    status: Option<elt_core::cdc::LogStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The slots of the connection's cdc streams, read from the source now (only when it has
/// cdc streams: the source must be reachable); a source that cannot be asked is an error
/// line, not a failed command.
async fn slots(project: &Project, connection: &str) -> Vec<SlotRow> {
    let Ok((config, source, _)) = project.connection(connection) else {
        return Vec::new();
    };
    let cdc = |s: &elt_runner::config::StreamConfig| s.sync == Some(elt_core::SyncMode::Cdc);
    if !config.streams.iter().flatten().any(cdc) {
        return Vec::new();
    }
    let planned = match super::discover::catalog(project, connection)
        .await
        .and_then(|catalog| {
            Ok(elt_runner::plan::plan_streams(
                &catalog,
                config,
                &Default::default(),
            )?)
        }) {
        Ok(planned) => planned,
        Err(e) => {
            return vec![SlotRow {
                stream: "(all cdc streams)".to_owned(),
                status: None,
                error: Some(format!("{e:#}")),
            }];
        }
    };
    let mut rows = Vec::new();
    for (stream, _) in planned
        .iter()
        .filter(|(s, _)| s.sync_mode == elt_core::SyncMode::Cdc)
    {
        let (status, error) = match source.log_status(stream).await {
            Ok(status) => (status, None),
            Err(e) => (None, Some(e.to_string())),
        };
        rows.push(SlotRow {
            stream: stream.name().to_owned(),
            status,
            error,
        });
    }
    rows
}

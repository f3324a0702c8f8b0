//! `elt test`: runs a connection's data tests (`elt_runner::datatests`) against its raw
//! tables and prints each test's verdict, with failing rows; exit code 1 when a test of
//! severity `error` fails (`warn` failures are printed only).
//!
//! It plans the streams as `elt sync` would (reading the source's catalog) to know each
//! stream's table and write mode, then opens the destination (taking its lock, like a
//! sync), reads, and appends the results to `_elt_test_results` under a run id of its own.

use elt_runner::datatests;
use elt_runner::plan::plan_streams;
use elt_runner::{Project, SyncOptions};

use super::args::TestArgs;
use super::exit;

/// Runs the tests; returns the exit code.
pub async fn test(project: &Project, args: &TestArgs) -> anyhow::Result<i32> {
    let connection = &args.connection.connection;
    let (config, _, destination) = project.connection(connection)?;
    if config.tests.is_empty() {
        anyhow::bail!(elt_core::Error::config(format!(
            "connection {connection} declares no data tests; add [[connections.{connection}.tests]] to elt.toml (see docs/data-tests.md)"
        )));
    }
    let catalog = super::discover::catalog(project, connection).await?;
    let streams: Vec<_> = plan_streams(&catalog, config, &SyncOptions::default())?
        .into_iter()
        .map(|(stream, _)| stream)
        .collect();
    // A writer: the results are kept in `_elt_test_results`.
    let mut session = destination.open(connection, &config.dataset).await?;
    let outcomes = datatests::run(
        session.as_mut(),
        datatests::Scope {
            connection,
            dataset: &config.dataset,
        },
        &streams,
        &config.tests,
        datatests::Selection {
            streams: args.streams.as_deref(),
            select: args.select.as_deref(),
        },
    )
    .await?;
    let run_id = uuid::Uuid::now_v7().to_string();
    datatests::record(session.as_mut(), &run_id, &outcomes).await?;
    if args.json {
        let out = serde_json::json!({
            "version": elt_runner::report::REPORT_VERSION,
            "run_id": run_id,
            "connection": connection,
            "tests": outcomes,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{}", datatests::render(&outcomes));
    }
    Ok(if !outcomes.iter().any(datatests::TestOutcome::fails_run) {
        exit::SUCCESS
    } else {
        exit::FAILED
    })
}

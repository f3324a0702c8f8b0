//! `elt discover`, and the catalog that `elt plan`, `elt test` and `elt dbt` read: the
//! source's streams, columns, keys and cursor candidates, discovered live; `discover`
//! marks the columns the connection leaves out (`columns`) or hashes (`hash`).

use anyhow::Context;
use elt_core::Catalog;
use elt_core::catalog::describe_schema;
use elt_runner::Project;
use elt_runner::config::StreamConfig;

use super::exit;

/// The catalog of a connection's source.
pub async fn catalog(project: &Project, connection: &str) -> anyhow::Result<Catalog> {
    let (_, source, _) = project.connection(connection)?;
    project.check_environment()?;
    source
        .discover()
        .await
        .with_context(|| format!("connection {connection}: discovery failed"))
}

/// What the connection's stream config does with a discovered column: `left out` by
/// `columns`, `hashed` by `hash`, or nothing.
fn treatment(config: Option<&StreamConfig>, column: &str) -> Option<&'static str> {
    let config = config?;
    if config.columns.as_ref().is_some_and(|c| !c.keeps(column)) {
        Some("left out")
    } else if config.hash.iter().flatten().any(|h| h == column) {
        Some("hashed")
    } else {
        None
    }
}

/// Prints the source's catalog, each column marked with what the connection's stream
/// config does to it (`elt plan` shows the whole plan).
pub async fn discover(project: &Project, connection: &str, json: bool) -> anyhow::Result<i32> {
    let catalog = catalog(project, connection).await?;
    let (config, _, _) = project.connection(connection)?;
    if json {
        let streams: Vec<_> = catalog
            .streams
            .iter()
            .map(|s| {
                let stream_config = config.stream_config(&s.name);
                let mut columns = describe_schema(&s.schema);
                for column in &mut columns {
                    let name = column["name"].as_str().unwrap_or("").to_owned();
                    let treatment = treatment(stream_config, &name);
                    column["left_out"] = (treatment == Some("left out")).into();
                    column["hashed"] = (treatment == Some("hashed")).into();
                }
                serde_json::json!({
                    "name": s.name,
                    "primary_key": s.primary_key,
                    "cursor_candidates": s.cursor_candidates,
                    "sync_modes": s.supported_sync_modes(),
                    "columns": columns,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "streams": streams }))?
        );
    } else {
        for s in &catalog.streams {
            println!(
                "{}  (primary key: {}; cursor candidates: {})",
                s.name,
                if s.primary_key.is_empty() {
                    "none".into()
                } else {
                    s.primary_key.join(", ")
                },
                if s.cursor_candidates.is_empty() {
                    "none".into()
                } else {
                    s.cursor_candidates.join(", ")
                }
            );
            let stream_config = config.stream_config(&s.name);
            for column in describe_schema(&s.schema) {
                let name = column["name"].as_str().unwrap_or("");
                let null = if column["nullable"] == true {
                    ""
                } else {
                    " not null"
                };
                let treatment = match treatment(stream_config, name) {
                    Some("hashed") => "  [hashed: hex SHA-256 text]",
                    Some(_) => "  [left out by `columns`]",
                    None => "",
                };
                println!(
                    "  {name:<24} {}{null}{treatment}",
                    column["type"].as_str().unwrap_or("")
                );
            }
        }
    }
    Ok(exit::SUCCESS)
}

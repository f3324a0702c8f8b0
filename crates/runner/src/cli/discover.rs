//! `elt discover`, and the catalog that `elt plan`, `elt test` and `elt dbt` read: the
//! source's streams, columns, keys and cursor candidates, discovered live.

use anyhow::Context;
use elt_core::Catalog;
use elt_core::catalog::describe_schema;
use elt_runner::Project;

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

pub async fn discover(project: &Project, connection: &str, json: bool) -> anyhow::Result<i32> {
    let catalog = catalog(project, connection).await?;
    if json {
        let streams: Vec<_> = catalog
            .streams
            .iter()
            .map(|s| {
                serde_json::json!({
                    "name": s.name,
                    "primary_key": s.primary_key,
                    "cursor_candidates": s.cursor_candidates,
                    "sync_modes": s.supported_sync_modes(),
                    "columns": describe_schema(&s.schema),
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
            for column in describe_schema(&s.schema) {
                let null = if column["nullable"] == true {
                    ""
                } else {
                    " not null"
                };
                println!(
                    "  {:<24} {}{null}",
                    column["name"].as_str().unwrap_or(""),
                    column["type"].as_str().unwrap_or("")
                );
            }
        }
    }
    Ok(exit::SUCCESS)
}

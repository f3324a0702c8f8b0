//! `elt plan`'s content, for the CLI and `elt ui`: per planned stream, how its schema
//! differs from its raw table and what the stream's schema contract makes of each change.
//! It discovers the source and compares through a session the caller opened; it reads no
//! rows and changes nothing.

use elt_core::{DestinationSession, Result, SchemaChange};
use serde::Serialize;

use crate::Project;
use crate::config::SchemaContract;

/// One planned stream and its schema changes.
#[derive(Debug, Serialize)]
pub struct StreamPlan {
    pub stream: String,
    pub table: String,
    pub sync_mode: String,
    pub write_mode: String,
    pub schema_contract: &'static str,
    /// The planner's notes (fallbacks, columns left out).
    pub notes: Vec<String>,
    pub changes: Vec<PlannedChange>,
}

/// A schema change and what the next sync does with it.
#[derive(Debug, Serialize)]
pub struct PlannedChange {
    #[serde(flatten)]
    pub change: SchemaChange,
    /// The change, readable.
    pub description: String,
    /// What the next sync does with it.
    pub action: &'static str,
}

/// What the sync does with one change under `contract`.
fn action(change: &SchemaChange, contract: SchemaContract) -> &'static str {
    match (change, contract) {
        (SchemaChange::NewTable, _) => "created",
        (_, SchemaContract::Freeze) => "the sync fails the stream (schema_contract = \"freeze\")",
        (SchemaChange::AddedColumn { .. }, SchemaContract::Evolve) => {
            "added (NULL in existing rows)"
        }
        (SchemaChange::Widened { .. }, SchemaContract::Evolve) => "widened in place",
        (SchemaChange::TypeChanged { .. }, SchemaContract::Evolve) => {
            "the sync fails the stream: rebuild the table with `elt sync --full-refresh`"
        }
        (SchemaChange::RemovedColumn { .. }, _) => "kept (NULL in new rows)",
        (_, SchemaContract::DiscardRow) => {
            "not loaded; rows with a value there go to _elt_dead_letter"
        }
        (_, SchemaContract::DiscardValue) => "not loaded; rows are loaded without its values",
    }
}

/// The plan of `connection`: its source discovered now, compared with the tables that
/// `session` (of the connection's destination) sees.
pub async fn schema_plan(
    project: &Project,
    connection: &str,
    session: &mut dyn DestinationSession,
) -> Result<Vec<StreamPlan>> {
    let (config, source, _) = project.connection(connection)?;
    project.check_environment()?;
    let catalog = source.discover().await?;
    let planned = super::plan_streams(&catalog, config, &Default::default())?;
    let schemas = session.schemas().ok_or_else(|| {
        elt_core::capability::missing("comparison of schemas with its tables", "`elt plan`")
    })?;
    let mut plans = Vec::new();
    for (stream, notes) in planned {
        let contract = config.contract_of(stream.name());
        let changes = schemas
            .schema_changes(&stream)
            .await?
            .into_iter()
            .map(|change| PlannedChange {
                description: change.to_string(),
                action: action(&change, contract),
                change,
            })
            .collect();
        plans.push(StreamPlan {
            stream: stream.name().to_owned(),
            table: stream.table.clone(),
            sync_mode: stream.sync_mode.to_string(),
            write_mode: stream.write_mode.to_string(),
            schema_contract: contract.as_str(),
            notes,
            changes,
        });
    }
    Ok(plans)
}

//! `elt plan`: what the next sync of a connection would do to each raw table (create it,
//! add columns, meet a changed type) and what each stream's schema contract makes of it,
//! without reading rows or changing anything.
//!
//! It reads the source's catalog (as `elt sync` does first) and asks the destination to
//! compare each planned stream with its table; opening the destination takes its lock for
//! that moment, like any command that reads it.

use elt_core::SchemaChange;
use elt_runner::config::SchemaContract;
use elt_runner::plan::plan_streams;
use elt_runner::{Project, SyncOptions};

use super::args::PlanArgs;
use super::exit;

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

/// Prints the plan; returns the exit code.
pub async fn plan(project: &Project, args: &PlanArgs) -> anyhow::Result<i32> {
    let connection = &args.connection.connection;
    let (config, _, destination) = project.connection(connection)?;
    let catalog = super::discover::catalog(project, connection).await?;
    let planned = plan_streams(&catalog, config, &SyncOptions::default())?;
    let mut session = destination.open_reader(connection, &config.dataset).await?;
    let schemas = session.schemas().ok_or_else(|| {
        elt_core::capability::missing("comparison of schemas with its tables", "`elt plan`")
    })?;
    let mut streams = Vec::new();
    let mut text = String::new();
    for (stream, notes) in &planned {
        let contract = config.contract_of(stream.name());
        let changes = schemas.schema_changes(stream).await?;
        let contract_name = contract.as_str();
        text.push_str(&format!(
            "{} -> {}.{} ({}/{}, schema_contract {contract_name})\n",
            stream.name(),
            config.dataset,
            stream.table,
            stream.sync_mode,
            stream.write_mode
        ));
        for note in notes {
            text.push_str(&format!("  {note}\n"));
        }
        if changes.is_empty() {
            text.push_str("  no schema change\n");
        }
        let mut listed = Vec::new();
        for change in &changes {
            text.push_str(&format!("  {change}: {}\n", action(change, contract)));
            let mut entry = serde_json::to_value(change)?;
            entry["description"] = change.to_string().into();
            entry["action"] = action(change, contract).into();
            listed.push(entry);
        }
        streams.push(serde_json::json!({
            "stream": stream.name(),
            "table": stream.table,
            "sync_mode": stream.sync_mode.to_string(),
            "write_mode": stream.write_mode.to_string(),
            "schema_contract": contract_name,
            "notes": notes,
            "changes": listed,
        }));
    }
    if args.json {
        let out = serde_json::json!({ "connection": connection, "streams": streams });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!("{text}");
    }
    Ok(exit::SUCCESS)
}

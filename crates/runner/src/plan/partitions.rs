//! A stream's `partition_by = { column, granularity }`: the column must be one of the
//! stream's dates or timestamps (not hashed), and the write mode one that a partitioned
//! table can take. Whether the destination partitions tables is checked before the read
//! (`crate::checks`).

use elt_core::partitions::partitions_type;
use elt_core::{ConfiguredStream, Error, Result, WriteMode};

use super::at;
use crate::config::StreamConfig;

/// Sets the stream's partitioning from its config, after its columns and modes.
pub(super) fn set_partitions(stream: &mut ConfiguredStream, c: &StreamConfig) -> Result<()> {
    let Some(by) = &c.partition_by else {
        return Ok(());
    };
    let option = at(c, "partition_by");
    let field = stream.schema().field_with_name(&by.column).map_err(|_| {
        Error::config(format!(
            "{option} names column {:?}, which the stream does not have",
            by.column
        ))
    })?;
    if !partitions_type(field.data_type()) || stream.hashed.contains(&by.column) {
        return Err(Error::config(format!(
            "{option}: column {} is a {}{}; partitions are cut by a date or a timestamp",
            by.column,
            field.data_type(),
            if stream.hashed.contains(&by.column) {
                " (hashed)"
            } else {
                ""
            }
        )));
    }
    match stream.write_mode {
        WriteMode::Append | WriteMode::Overwrite => {}
        WriteMode::Merge if stream.primary_key.contains(&by.column) => {}
        WriteMode::Merge => {
            return Err(Error::config(format!(
                "{option}: a merge upserts by a unique index on the primary key, and PostgreSQL \
                 needs the partition column in every unique index of a partitioned table; add \
                 {} to `primary_key` (a column that never changes for a row, such as \
                 created_at) or use `write = \"append\"`",
                by.column
            )));
        }
        mode => {
            return Err(Error::config(format!(
                "{option}: write mode {mode} keeps versions of a row that a partitioned table \
                 would split across partitions; use append or merge"
            )));
        }
    }
    stream.partition_by = Some(by.clone());
    Ok(())
}

//! What a stream takes of its source's columns: the selection (`columns = { include |
//! exclude }`) narrows its schema and keeps the discovered one beside it, and `hash`
//! turns text or integer columns into salted SHA-256 digests (text in the schema). Key,
//! cursor and soft-delete columns stay readable: they cannot be left out, and the cursor
//! and soft-delete column cannot be hashed. Also the columns write mode `previous` tracks
//! (`previous_columns`).

use elt_core::arrow::datatypes::{DataType, Field};
use elt_core::previous::{changed_at_name, previous_name};
use elt_core::{ConfiguredStream, Error, Result, WriteMode};

use super::at;
use crate::config::{Connection, StreamConfig};

/// The columns a stream reads (`columns`): the discovered schema narrowed to them, in
/// the discovered order. The key, cursor and soft-delete columns must stay.
pub(super) fn select_columns(
    stream: &mut ConfiguredStream,
    c: &StreamConfig,
    notes: &mut Vec<String>,
) -> Result<()> {
    let Some(selection) = &c.columns else {
        return Ok(());
    };
    let listed = match (&selection.include, &selection.exclude) {
        (Some(list), None) | (None, Some(list)) => list,
        _ => {
            return Err(Error::config(format!(
                "{} takes either `include` or `exclude`, not both or neither",
                at(c, "columns")
            )));
        }
    };
    let full = stream.schema().clone();
    if let Some(missing) = listed.iter().find(|n| full.field_with_name(n).is_err()) {
        return Err(Error::config(format!(
            "{} names column {missing:?}, which the stream does not have",
            at(c, "columns")
        )));
    }
    let kept: Vec<_> = full
        .fields()
        .iter()
        .filter(|f| selection.keeps(f.name()))
        .map(|f| f.as_ref().clone())
        .collect();
    let needed = stream
        .primary_key
        .iter()
        .chain(&stream.cursor)
        .chain(&stream.deletes.soft_delete_column);
    for column in needed {
        if !kept.iter().any(|f| f.name() == column) {
            return Err(Error::config(format!(
                "{} leaves out {column:?}, which the stream needs as its key, cursor or \
                 soft-delete column; keep it",
                at(c, "columns")
            )));
        }
    }
    let kept = elt_core::catalog::schema(kept);
    let left_out = elt_core::catalog::left_out(&full, &kept);
    if !left_out.is_empty() {
        notes.push(format!(
            "columns: reads {} of {}, leaving out {}",
            kept.fields().len(),
            full.fields().len(),
            left_out.join(", ")
        ));
        stream.stream.schema = kept;
        stream.discovered = Some(full);
    }
    Ok(())
}

/// The columns a stream hashes (`hash`): text or integer columns it reads, which become
/// text (hex digests) in its schema; the project must set `hash_salt`.
pub(super) fn hash_columns(
    stream: &mut ConfiguredStream,
    c: &StreamConfig,
    config: &Connection,
    notes: &mut Vec<String>,
) -> Result<()> {
    let Some(hashed) = c.hash.as_ref().filter(|h| !h.is_empty()) else {
        return Ok(());
    };
    if config.hash_salt.is_none() {
        return Err(Error::config(format!(
            "{} needs `hash_salt` at the top of elt.toml (a secret, such as \
             hash_salt = \"${{ELT_HASH_SALT}}\")",
            at(c, "hash")
        )));
    }
    let roles = [
        ("cursor", stream.cursor.as_ref()),
        (
            "soft-delete column",
            stream.deletes.soft_delete_column.as_ref(),
        ),
    ];
    for (role, column) in roles {
        if let Some(column) = column.filter(|c| hashed.contains(c)) {
            return Err(Error::config(format!(
                "{} names {column:?}, the stream's {role}, whose values elt must compare; \
                 it cannot be hashed",
                at(c, "hash")
            )));
        }
    }
    let before = stream.schema().clone();
    let mut fields = Vec::new();
    for field in before.fields() {
        let mut field = field.as_ref().clone();
        if hashed.contains(field.name()) {
            if !(field.data_type().is_integer()
                || matches!(field.data_type(), DataType::Utf8 | DataType::LargeUtf8))
            {
                return Err(Error::config(format!(
                    "{} names column {:?} of type {}; only text and integer columns can be \
                     hashed",
                    at(c, "hash"),
                    field.name(),
                    field.data_type()
                )));
            }
            field = Field::new(field.name(), DataType::Utf8, field.is_nullable());
        }
        fields.push(field);
    }
    if let Some(missing) = hashed.iter().find(|h| before.field_with_name(h).is_err()) {
        return Err(Error::config(format!(
            "{} names column {missing:?}, which the stream does not read",
            at(c, "hash")
        )));
    }
    stream.discovered.get_or_insert(before);
    stream.stream.schema = elt_core::catalog::schema(fields);
    stream.hashed = hashed.clone();
    notes.push(format!(
        "hash: {} (each value becomes the hex SHA-256 of hash_salt and the value)",
        hashed.join(", ")
    ));
    Ok(())
}

/// The columns write mode previous tracks (`previous_columns`): required by it and only
/// allowed with it; each a column of the stream, not of the key, listed once, and without
/// a source column already named like its `_previous` or `_changed_at` companion.
pub(super) fn track_previous(stream: &mut ConfiguredStream, c: &StreamConfig) -> Result<()> {
    let refuse = |why: String| {
        Err(Error::config(format!(
            "{} {why}",
            at(c, "previous_columns")
        )))
    };
    let listed = match (&c.previous_columns, stream.write_mode) {
        (None, WriteMode::Previous) => {
            return Err(Error::config(format!(
                "{} is previous, which needs the columns to track; set \
                 `previous_columns = [\"country\"]` (the columns whose prior value to keep)",
                at(c, "write")
            )));
        }
        (None, _) => return Ok(()),
        (Some(_), mode) if mode != WriteMode::Previous => {
            return refuse(format!(
                "applies to write mode previous, but the stream is {mode}; set \
                 `write = \"previous\"` or remove it"
            ));
        }
        (Some(list), _) => list,
    };
    if listed.is_empty() {
        return refuse("is empty; name the columns whose prior value to keep".to_owned());
    }
    let schema = stream.schema().clone();
    for (i, column) in listed.iter().enumerate() {
        if schema.field_with_name(column).is_err() {
            return refuse(format!(
                "names column {column:?}, which the stream does not have"
            ));
        }
        if stream.primary_key.contains(column) {
            return refuse(format!(
                "names {column:?}, a primary-key column: a key never changes its row"
            ));
        }
        if listed[..i].contains(column) {
            return refuse(format!("names {column:?} twice"));
        }
        for companion in [previous_name(column), changed_at_name(column)] {
            if schema.field_with_name(&companion).is_ok() {
                return refuse(format!(
                    "would add column {companion:?}, which the stream already has; rename \
                     one of them in the source or stop tracking {column:?}"
                ));
            }
        }
    }
    stream.previous = listed.clone();
    Ok(())
}

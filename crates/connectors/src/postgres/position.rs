//! Keyset positions: which columns order an incremental read, and the state of a batch's
//! last row (the value forms are `elt_core::sql`'s).

use elt_core::StreamState;
use elt_core::arrow::record_batch::RecordBatch;

use super::types::Column;

/// The keyset of an ordered read: the cursor column and the key columns (indexes into the
/// table's columns).
pub struct Keyset<'a> {
    /// The cursor column.
    pub cursor: (usize, &'a Column),
    /// The primary key columns.
    pub key: Vec<(usize, &'a Column)>,
}

/// The keyset position of a batch's last row.
pub fn last_row_state(batch: &RecordBatch, ks: &Keyset<'_>) -> Option<StreamState> {
    let key: Vec<usize> = ks.key.iter().map(|(i, _)| *i).collect();
    elt_core::sql::last_row_position(batch, ks.cursor.0, &key)
}

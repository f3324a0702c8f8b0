//! The SQL that DuckDB and PostgreSQL share for keyed loads from a stage: one staged row per
//! key, dropping staged rows older than the stored ones, and the `history` write mode
//! (slowly changing dimension type 2), and the prior values of the `previous` write mode
//! (type 3). Both databases accept the same text; each
//! destination runs the statements in its own transaction and binds `$1` (the run's start
//! in microseconds since the epoch) and `$2` (the run id). Nothing here runs SQL.
//!
//! History rules: a version holds from `_elt_valid_from` to `_elt_valid_to` (the start
//! times of the runs that saw it appear and go), so a key's versions are contiguous and at
//! most one is current. A staged row whose `_elt_row_hash` equals the current version's adds
//! nothing (lookbacks and reruns are free); a changed row closes the current version and
//! becomes current; a row marked deleted only closes it. A key staged twice in one run
//! (a retry, a later checkpoint) first undoes what this run did to it, so a reload in the
//! same run gives the same versions as one load.

use elt_core::changes::{DELETED, DELETED_AT, IS_CURRENT, ROW_HASH, RUN_ID, VALID_FROM, VALID_TO};
use elt_core::previous::{changed_at_name, previous_name};
use elt_core::{ConfiguredStream, Error, OnDelete, Result, WriteMode};

/// Names and expressions of one keyed load, every identifier already quoted.
#[derive(Debug)]
pub struct KeyedSql<'a> {
    /// The raw table.
    pub table: &'a str,
    /// The stage.
    pub stage: &'a str,
    /// The primary-key columns.
    pub key: &'a [String],
    /// The cursor column, if any: the highest wins.
    pub cursor: Option<&'a str>,
    /// The source columns, in the stage and in the table.
    pub columns: &'a [String],
    /// The run's start as a timestamp with time zone, from `$1`.
    pub now: &'a str,
    /// The physical row id pseudo-column (`rowid`, `ctid`): the last staged row wins ties.
    pub row_id: &'a str,
}

impl KeyedSql<'_> {
    /// `t.k = s.k AND …` between the table `t` and the stage `s`.
    pub fn same_key(&self) -> String {
        let same: Vec<_> = self.key.iter().map(|k| format!("t.{k} = s.{k}")).collect();
        same.join(" AND ")
    }

    /// Deletes every staged row but one per key: the highest cursor, then the last staged.
    pub fn keep_one_staged_row_per_key(&self) -> String {
        let (stage, id) = (self.stage, self.row_id);
        let order = match self.cursor {
            Some(c) => format!("{c} DESC NULLS LAST, {id} DESC"),
            None => format!("{id} DESC"),
        };
        format!(
            "DELETE FROM {stage} WHERE {id} IN (SELECT {id} FROM (SELECT {id}, row_number() \
             OVER (PARTITION BY {} ORDER BY {order}) AS n FROM {stage}) AS ranked WHERE n > 1)",
            self.key.join(", ")
        )
    }

    /// Deletes staged rows that lose to a stored row (among those `stored` selects) with a
    /// higher cursor; a NULL cursor loses to any value. None without a cursor. The join is
    /// driven by the stage (small) against the table (large).
    pub fn drop_older_staged(&self, stored: &str) -> Option<String> {
        let c = self.cursor?;
        Some(format!(
            "DELETE FROM {} AS s USING {} AS t WHERE {} AND {stored} \
             AND (t.{c} > s.{c} OR (s.{c} IS NULL AND t.{c} IS NOT NULL))",
            self.stage,
            self.table,
            self.same_key()
        ))
    }

    /// Write mode previous: fills each tracked column's `_previous` and `_changed_at` in
    /// the stage from the stored row of the same key. A value that differs from the stored
    /// one (NULL counts as a value) moves the stored value to `_previous` and stamps the
    /// run's start; an equal one keeps both stored columns. Keys not yet stored keep NULLs.
    /// None without tracked columns. `tracked` holds the quoted names of each column, its
    /// previous column and its changed-at column.
    pub fn carry_previous(&self, tracked: &[[String; 3]]) -> Option<String> {
        if tracked.is_empty() {
            return None;
        }
        let now = self.now;
        let sets: Vec<String> = tracked
            .iter()
            .flat_map(|[column, previous, changed_at]| {
                let changed = format!("t.{column} IS DISTINCT FROM s.{column}");
                [
                    format!(
                        "{previous} = CASE WHEN {changed} THEN t.{column} ELSE t.{previous} END"
                    ),
                    format!(
                        "{changed_at} = CASE WHEN {changed} THEN {now} ELSE t.{changed_at} END"
                    ),
                ]
            })
            .collect();
        Some(format!(
            "UPDATE {} AS s SET {} FROM {} AS t WHERE {}",
            self.stage,
            sets.join(", "),
            self.table,
            self.same_key()
        ))
    }

    /// The statements that add one checkpoint's versions, with what each is doing, in
    /// order; the stage must hold one row per key. The last one's row count is the number
    /// of versions added.
    pub fn history(&self) -> Vec<(String, &'static str)> {
        let (table, stage, now, same_key) = (self.table, self.stage, self.now, self.same_key());
        let columns = self.columns.join(", ");
        let mut statements = vec![
            (
                format!(
                    "DELETE FROM {table} AS t USING {stage} AS s \
                     WHERE {same_key} AND t.{VALID_FROM} = {now} AND t.{RUN_ID} = $2::UUID"
                ),
                "undoing this run's versions of reloaded keys",
            ),
            (
                format!(
                    "UPDATE {table} AS t SET {VALID_TO} = NULL, {IS_CURRENT} = true \
                     FROM {stage} AS s WHERE {same_key} AND t.{VALID_TO} = {now}"
                ),
                "reopening versions this run closed",
            ),
        ];
        if let Some(sql) = self.drop_older_staged(&format!("t.{IS_CURRENT}")) {
            statements.push((sql, "dropping older staged rows"));
        }
        statements.extend([
            (
                format!(
                    "DELETE FROM {stage} AS s USING {table} AS t WHERE {same_key} \
                     AND t.{IS_CURRENT} AND t.{ROW_HASH} = s.{ROW_HASH} AND NOT s.{DELETED}"
                ),
                "dropping unchanged rows",
            ),
            (
                format!(
                    "UPDATE {table} AS t SET {VALID_TO} = {now}, {IS_CURRENT} = false \
                     FROM {stage} AS s WHERE {same_key} AND t.{IS_CURRENT}"
                ),
                "closing changed versions",
            ),
            (
                format!(
                    "INSERT INTO {table} ({columns}, {ROW_HASH}, _elt_extracted_at, {RUN_ID}, \
                     {VALID_FROM}, {VALID_TO}, {IS_CURRENT}) \
                     SELECT {columns}, {ROW_HASH}, {now}, $2::UUID, {now}, NULL, true \
                     FROM {stage} WHERE NOT {DELETED}"
                ),
                "adding versions",
            ),
        ]);
        statements
    }
}

impl KeyedSql<'_> {
    /// History over a cdc stream: every staged change is a version of its own, valid from
    /// its source commit time until the key's next change (a delete only closes); the
    /// stored current version of a changed key closes at the first staged change. The
    /// stage may hold several changes per key, each exactly once (no reload to undo).
    pub fn cdc_history(&self) -> Vec<(String, &'static str)> {
        let (table, stage, now, same_key) = (self.table, self.stage, self.now, self.same_key());
        let columns = self.columns.join(", ");
        let key = self.key.join(", ");
        let (lsn, commit_ts) = (elt_core::cdc::LSN, elt_core::cdc::COMMIT_TS);
        vec![
            (
                format!(
                    "UPDATE {table} AS t SET {VALID_TO} = (SELECT min(s.{commit_ts}) FROM {stage} \
                     AS s WHERE {same_key}), {IS_CURRENT} = false WHERE t.{IS_CURRENT} AND \
                     EXISTS (SELECT 1 FROM {stage} AS s WHERE {same_key})"
                ),
                "closing the versions of changed keys",
            ),
            (
                format!(
                    "INSERT INTO {table} ({columns}, {ROW_HASH}, _elt_extracted_at, {RUN_ID}, \
                     {VALID_FROM}, {VALID_TO}, {IS_CURRENT}) \
                     SELECT {columns}, {ROW_HASH}, {now}, $2::UUID, {commit_ts}, next_ts, \
                     next_ts IS NULL FROM (SELECT *, lead({commit_ts}) OVER (PARTITION BY {key} \
                     ORDER BY {lsn}) AS next_ts FROM {stage}) AS changes WHERE NOT {DELETED}"
                ),
                "adding a version per change",
            ),
        ]
    }
}

/// cdc: a TRUNCATE of the source table, applied to a merged `table`: every live row is
/// marked deleted at `now`, or (`on_delete = "remove"`) every row removed.
pub fn truncate_sql(table: &str, on_delete: OnDelete, now: &str) -> String {
    match on_delete {
        OnDelete::Mark => {
            format!("UPDATE {table} SET {DELETED_AT} = {now} WHERE {DELETED_AT} IS NULL")
        }
        OnDelete::Remove => format!("DELETE FROM {table}"),
    }
}

/// The quoted names `[column, column_previous, column_changed_at]` of each column the
/// stream tracks in write mode previous, quoted by the destination's `quote`.
pub fn tracked_columns(
    stream: &ConfiguredStream,
    quote: impl Fn(&str) -> String,
) -> Vec<[String; 3]> {
    stream
        .previous
        .iter()
        .map(|c| {
            [
                quote(c),
                quote(&previous_name(c)),
                quote(&changed_at_name(c)),
            ]
        })
        .collect()
}

/// Refuses to write a history table (one with `_elt_valid_from`) in another write mode,
/// or another table in history mode: either would mix one row per key with versions.
pub fn check_history_layout(has_versions: bool, mode: WriteMode, table: &str) -> Result<()> {
    match (has_versions, mode == WriteMode::History) {
        (true, false) => Err(Error::config(format!(
            "table {table} holds versions (write mode history) but the stream is now `{mode}`; \
             set `write = \"history\"` again, or load into another `table`"
        ))),
        (false, true) => Err(Error::config(format!(
            "table {table} was not created in write mode history, so it has no versions to \
             extend; load the history into another `table`, or drop this one first"
        ))),
        _ => Ok(()),
    }
}

//! What a commit writes beside the rows, in the same transaction: the stream's state in
//! `_elt_state`, and its dead letters in `_elt_dead_letter` (new ones inserted, replayed
//! ones deleted).

use elt_core::{DeadLetter, Result, RunInfo, StreamState};
use elt_postgres::Target;
use sqlx::postgres::PgConnection;

/// Replaces the state of one stream; part of the caller's transaction.
pub(super) async fn write_state(
    conn: &mut PgConnection,
    target: &Target,
    ds: &str,
    run: &RunInfo,
    stream: &str,
    state: &StreamState,
) -> Result<()> {
    let sql = format!(
        "INSERT INTO {ds}._elt_state VALUES ($1, $2, $3::jsonb, $4, now())
         ON CONFLICT (connection, stream) DO UPDATE SET state = EXCLUDED.state,
             run_id = EXCLUDED.run_id, committed_at = EXCLUDED.committed_at"
    );
    sqlx::query(&sql)
        .bind(run.connection.clone())
        .bind(stream.to_owned())
        .bind(state.to_json())
        .bind(run.run_id.clone())
        .execute(conn)
        .await
        .map(drop)
        .map_err(|e| target.error("writing the state", e))
}

/// Inserts dead letters of `stream` into `_elt_dead_letter` and deletes the `replayed`
/// ones, in the caller's transaction.
pub(super) async fn write_dead_letters(
    conn: &mut PgConnection,
    target: &Target,
    ds: &str,
    (run, stream): (&RunInfo, &str),
    dead: &[DeadLetter],
    replayed: &[String],
) -> Result<()> {
    if !dead.is_empty() {
        let sql = format!(
            "INSERT INTO {ds}._elt_dead_letter
             SELECT gen_random_uuid(), $1, $2, $3, reason, record::jsonb, now()
             FROM unnest($4::text[], $5::text[]) AS d(reason, record)"
        );
        sqlx::query(&sql)
            .bind(run.run_id.clone())
            .bind(run.connection.clone())
            .bind(stream.to_owned())
            .bind(dead.iter().map(|d| d.reason.clone()).collect::<Vec<_>>())
            .bind(dead.iter().map(|d| d.record.clone()).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await
            .map_err(|e| target.error("writing dead letters", e))?;
    }
    if !replayed.is_empty() {
        let sql = format!("DELETE FROM {ds}._elt_dead_letter WHERE id = ANY($1::uuid[])");
        sqlx::query(&sql)
            .bind(replayed.to_vec())
            .execute(&mut *conn)
            .await
            .map_err(|e| target.error("removing replayed dead letters", e))?;
    }
    Ok(())
}

//! Statements on a bare connection that the session, the table DDL and the loader share:
//! DDL under an advisory lock, and one `COPY … FROM STDIN`. What runs on a session (and
//! its error mapping) stays in `session.rs`.

use std::future::Future;
use std::pin::Pin;

use elt_core::Result;
use elt_postgres::Target;
use sqlx::postgres::PgConnection;

/// Runs `ddl` (statements without parameters) in a transaction holding an advisory lock
/// named by `key`, so concurrent workers creating the same objects do not collide. The
/// key is bound, never spliced into the SQL: it holds the dataset name, and a hand-made
/// literal is open to injection under `standard_conforming_strings = off`.
pub(super) async fn locked_ddl(
    conn: &mut PgConnection,
    target: &Target,
    key: String,
    ddl: String,
    doing: &'static str,
) -> Result<()> {
    sqlx::Executor::execute(&mut *conn, "BEGIN")
        .await
        .map_err(|e| target.error(doing, e))?;
    let locked = sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
        .bind(key)
        .execute(&mut *conn)
        .await;
    let done = match locked {
        Ok(_) => sqlx::Executor::execute(&mut *conn, format!("{ddl}; COMMIT").as_str()).await,
        Err(e) => Err(e),
    };
    if let Err(e) = done {
        let _ = sqlx::Executor::execute(&mut *conn, "ROLLBACK").await;
        return Err(target.error(doing, e));
    }
    Ok(())
}

/// Runs one `COPY … FROM STDIN` with `payload`; returns the rows copied. Boxed with an
/// explicit lifetime: sqlx's COPY future is otherwise not provably `Send` inside the
/// destination's `async_trait` future.
pub(super) fn copy_in<'a>(
    conn: &'a mut PgConnection,
    sql: String,
    payload: &'a [u8],
) -> Pin<Box<dyn Future<Output = Result<u64, sqlx::Error>> + Send + 'a>> {
    Box::pin(async move {
        let mut copy = conn.copy_in_raw(&sql).await?;
        match copy.send(payload).await {
            Ok(_) => copy.finish().await,
            Err(e) => {
                let _ = copy.abort("elt: sending failed").await;
                Err(e)
            }
        }
    })
}

/// `column` (a timestamptz) as microseconds since the Unix epoch, in SQL.
pub(super) fn to_us(column: &str) -> String {
    format!("(extract(epoch FROM {column}) * 1000000)::bigint")
}

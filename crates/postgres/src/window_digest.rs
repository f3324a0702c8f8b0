//! The PostgreSQL SQL of a window digest (`elt_core::window_digest`), which the source and
//! the destination both run: one query per window, its count and checksum, over the rows
//! whose cursor is in `[from, to)`, and running it for each window on a connection. What
//! it does not do: pick the table, its column names or its live rows (the callers do).

use elt_core::quote_ident;
use elt_core::window_digest::{DigestColumn, DigestKind, WindowDigest};
use elt_core::windows::Window;
use sqlx::postgres::PgConnection;

/// `SELECT count, checksum FROM table WHERE cursor in [$1, $2) AND live`, the bounds cast
/// to `bound_type`; `names` maps a stream column to the table's column name.
pub fn digest_query(
    table: &str,
    (cursor, bound_type): (&str, &str),
    columns: &[DigestColumn],
    names: impl Fn(&str) -> String,
    live: &str,
) -> String {
    let parts: Vec<String> = columns
        .iter()
        .map(|c| {
            let column = quote_ident(&names(&c.name));
            let text = match c.kind {
                DigestKind::Text => format!("{column}::text"),
                DigestKind::Micros => {
                    format!("(extract(epoch FROM {column}) * 1000000)::bigint::text")
                }
                DigestKind::Decimal => format!(
                    "CASE WHEN strpos({column}::text, '.') > 0 \
                     THEN rtrim(rtrim({column}::text, '0'), '.') ELSE {column}::text END"
                ),
            };
            format!("coalesce({text}, chr(30))")
        })
        .collect();
    let prefix = format!(
        "substr(md5(concat_ws(chr(31), {})), 1, 15)",
        parts.join(", ")
    );
    let cursor = quote_ident(&names(cursor));
    format!(
        "SELECT count(*), coalesce(sum(('x' || {prefix})::bit(60)::bigint), 0)::text FROM {table} \
         WHERE {cursor} >= CAST($1 AS {bound_type}) AND {cursor} < CAST($2 AS {bound_type}) \
         AND {live}"
    )
}

/// Runs `sql` of [`digest_query`] for each window, in order.
pub async fn run(
    conn: &mut PgConnection,
    sql: &str,
    windows: &[Window],
) -> Result<Vec<WindowDigest>, sqlx::Error> {
    let mut out = Vec::with_capacity(windows.len());
    for window in windows {
        let (rows, checksum): (i64, String) = sqlx::query_as(sql)
            .bind(window.from.clone())
            .bind(window.to.clone())
            .fetch_one(&mut *conn)
            .await?;
        out.push(WindowDigest {
            rows: rows.max(0) as u64,
            checksum,
        });
    }
    Ok(out)
}

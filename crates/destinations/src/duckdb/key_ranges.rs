//! The DuckDB side of a reconciliation's SQL (the digest and ranges defined in
//! `elt_core::reconcile`, equal to what PostgreSQL computes): the select list of a range
//! digest, and the predicate of a key range spelled out column by column, since DuckDB's
//! optimizer cannot use a row-value comparison in a range. Nothing here runs SQL.

use elt_core::reconcile::KeyRange;

/// A key column as the SQL sees it.
#[derive(Debug, Clone)]
pub(super) struct KeyColumn {
    /// The quoted column name.
    pub quoted: String,
    /// The column's SQL type, to cast bound text to.
    pub sql_type: String,
}

/// The select list of a range digest: the key count, and the sum of the first 60 bits of
/// each key text's MD5 (its columns as text joined by the unit separator), as text.
pub(super) fn digest_list(columns: &[KeyColumn]) -> String {
    let parts: Vec<String> = columns
        .iter()
        .map(|c| format!("CAST({} AS VARCHAR)", c.quoted))
        .collect();
    let prefix = format!(
        "substr(md5(concat_ws(chr(31), {})), 1, 15)",
        parts.join(", ")
    );
    format!("count(*), CAST(coalesce(sum(('0x' || {prefix})::BIGINT), 0) AS VARCHAR)")
}

/// `k1 OP v1` for the last column, wrapped for each earlier one as
/// `(k OP' v OR (k = v AND (…)))`, with OP `>=` or `<` and `$n` cast to each column's type.
fn compare(columns: &[KeyColumn], op: &str, first_param: usize) -> String {
    let value = |i: usize, c: &KeyColumn| format!("CAST(${} AS {})", first_param + i, c.sql_type);
    let strict = if op == ">=" { ">" } else { "<" };
    let last = columns.len() - 1;
    let mut expression = format!(
        "{} {op} {}",
        columns[last].quoted,
        value(last, &columns[last])
    );
    for (i, c) in columns.iter().enumerate().rev().skip(1) {
        let v = value(i, c);
        expression = format!(
            "({q} {strict} {v} OR ({q} = {v} AND {expression}))",
            q = c.quoted
        );
    }
    expression
}

/// The predicate selecting `range` (`true` when unbounded), with parameters numbered from
/// `first_param`, and the values to bind in order.
pub(super) fn range_sql(
    columns: &[KeyColumn],
    range: &KeyRange,
    first_param: usize,
) -> (String, Vec<String>) {
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    for (bound, op) in [(&range.from, ">="), (&range.to, "<")] {
        if let Some(key) = bound {
            conditions.push(compare(columns, op, first_param + params.len()));
            params.extend(key.iter().cloned());
        }
    }
    if conditions.is_empty() {
        return ("true".to_owned(), params);
    }
    (conditions.join(" AND "), params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_spelled_out_column_by_column() {
        let columns = [
            KeyColumn {
                quoted: "\"a\"".into(),
                sql_type: "bigint".into(),
            },
            KeyColumn {
                quoted: "\"b\"".into(),
                sql_type: "text".into(),
            },
        ];
        let below = KeyRange {
            from: None,
            to: Some(vec!["2".into(), "y".into()]),
        };
        assert_eq!(
            range_sql(&columns, &below, 1),
            (
                "(\"a\" < CAST($1 AS bigint) OR (\"a\" = CAST($1 AS bigint) AND \"b\" < CAST($2 AS text)))"
                    .to_owned(),
                vec!["2".to_owned(), "y".to_owned()]
            )
        );
        assert_eq!(range_sql(&columns, &KeyRange::default(), 1).0, "true");
    }
}

//! The PostgreSQL side of a reconciliation's SQL (the digest and ranges defined in
//! [`elt_core::reconcile`]): the select list of a range digest, and the predicate of a key
//! range as a row-value comparison that PostgreSQL's indexes serve, text compared in byte
//! order (`COLLATE "C"`). Both the PostgreSQL source and destination build their queries
//! from these; nothing here runs SQL.

use elt_core::reconcile::KeyRange;

/// A key column as the SQL sees it.
#[derive(Debug, Clone)]
pub struct KeyColumn {
    /// The quoted column name.
    pub quoted: String,
    /// The column's SQL type, to cast bound text to.
    pub sql_type: String,
    /// Whether it is text: compared in byte order (`COLLATE "C"`).
    pub is_text: bool,
}

/// The predicate of one range, and the values to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeSql {
    /// The condition (`true` for an unbounded range).
    pub predicate: String,
    /// The values of `$first`, `$first + 1`, … in order.
    pub params: Vec<String>,
}

/// The select list of a range digest: the key count, and the sum of the first 60 bits of
/// each key text's MD5, as text.
pub fn digest_list(columns: &[KeyColumn]) -> String {
    let prefix = format!("substr(md5({}), 1, 15)", key_text(columns));
    format!("count(*), CAST(coalesce(sum(('x' || {prefix})::bit(60)::bigint), 0) AS VARCHAR)")
}

/// The text of a row's key: its columns as text joined by the unit separator.
pub fn key_text(columns: &[KeyColumn]) -> String {
    let parts: Vec<String> = columns
        .iter()
        .map(|c| format!("CAST({} AS VARCHAR)", c.quoted))
        .collect();
    format!("concat_ws(chr(31), {})", parts.join(", "))
}

/// `(k1, k2, …) OP (CAST($n AS t1), …)` for OP `>=` or `<`, text in byte order.
fn compare(columns: &[KeyColumn], op: &str, first_param: usize) -> String {
    let collation = |c: &KeyColumn| if c.is_text { " COLLATE \"C\"" } else { "" };
    let left: Vec<String> = columns
        .iter()
        .map(|c| format!("{}{}", c.quoted, collation(c)))
        .collect();
    let right: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let value = format!("CAST(${} AS {})", first_param + i, c.sql_type);
            format!("{value}{}", collation(c))
        })
        .collect();
    format!("({}) {op} ({})", left.join(", "), right.join(", "))
}

/// The predicate selecting `range`, with parameters numbered from `first_param`.
pub fn range_sql(columns: &[KeyColumn], range: &KeyRange, first_param: usize) -> RangeSql {
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    for (bound, op) in [(&range.from, ">="), (&range.to, "<")] {
        if let Some(key) = bound {
            conditions.push(compare(columns, op, first_param + params.len()));
            params.extend(key.iter().cloned());
        }
    }
    RangeSql {
        predicate: if conditions.is_empty() {
            "true".to_owned()
        } else {
            conditions.join(" AND ")
        },
        params,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_compare_row_values_with_numbered_casts() {
        let columns = [
            KeyColumn {
                quoted: "\"a\"".into(),
                sql_type: "bigint".into(),
                is_text: false,
            },
            KeyColumn {
                quoted: "\"b\"".into(),
                sql_type: "text".into(),
                is_text: true,
            },
        ];
        let range = KeyRange {
            from: Some(vec!["1".into(), "x".into()]),
            to: Some(vec!["2".into(), "y".into()]),
        };
        let sql = range_sql(&columns, &range, 3);
        assert_eq!(
            sql.predicate,
            "(\"a\", \"b\" COLLATE \"C\") >= (CAST($3 AS bigint), CAST($4 AS text) COLLATE \"C\") \
             AND (\"a\", \"b\" COLLATE \"C\") < (CAST($5 AS bigint), CAST($6 AS text) COLLATE \"C\")"
        );
        assert_eq!(sql.params, ["1", "x", "2", "y"]);
        assert_eq!(
            range_sql(&columns, &KeyRange::default(), 1).predicate,
            "true"
        );
    }
}

//! Which column type changes widen in place: the new type holds every value of the old one
//! exactly, so `evolve` alters the column instead of failing the stream. Names are DuckDB's
//! or PostgreSQL's, compared case-insensitively.
//!
//! Widenings: a wider integer (unsigned to a wider signed one too), `FLOAT`/`real` to
//! `DOUBLE`/`double precision`, an integer to a decimal with room for its digits, and a
//! decimal to one with at least as many integer and fraction digits. Nothing else: text,
//! times and narrowing changes still need `--full-refresh`.

/// Whether a column of type `stored` can become `wanted` without losing a value.
pub fn widens(stored: &str, wanted: &str) -> bool {
    let (stored, wanted) = (stored.to_ascii_lowercase(), wanted.to_ascii_lowercase());
    if let (Some(a), Some(b)) = (integer(&stored), integer(&wanted)) {
        return match (a, b) {
            // Into a signed type, from either kind: it needs more bytes.
            ((_, bytes_a), (true, bytes_b)) | ((false, bytes_a), (false, bytes_b)) => {
                bytes_b > bytes_a
            }
            // A signed type never fits an unsigned one.
            ((true, _), (false, _)) => false,
        };
    }
    if matches!(stored.as_str(), "float" | "real") {
        return matches!(wanted.as_str(), "double" | "double precision");
    }
    let Some((precision, scale)) = decimal(&wanted) else {
        return false;
    };
    let (digits, stored_scale) = match (integer(&stored), decimal(&stored)) {
        (Some((_, bytes)), _) => (integer_digits(bytes), 0),
        (None, Some((p, s))) => (p - s, s),
        (None, None) => return false,
    };
    scale >= stored_scale && precision - scale >= digits
}

/// (signed, bytes) of an integer type name.
fn integer(name: &str) -> Option<(bool, u32)> {
    Some(match name {
        "tinyint" => (true, 1),
        "smallint" => (true, 2),
        "integer" | "int" => (true, 4),
        "bigint" => (true, 8),
        "hugeint" => (true, 16),
        "utinyint" => (false, 1),
        "usmallint" => (false, 2),
        "uinteger" => (false, 4),
        "ubigint" => (false, 8),
        _ => return None,
    })
}

/// Decimal digits the largest value of an integer of `bytes` needs.
fn integer_digits(bytes: u32) -> u32 {
    match bytes {
        1 => 3,
        2 => 5,
        4 => 10,
        8 => 20,
        _ => 39,
    }
}

/// (precision, scale) of `decimal(p,s)` / `numeric(p,s)`.
fn decimal(name: &str) -> Option<(u32, u32)> {
    let inner = name
        .strip_prefix("decimal(")
        .or_else(|| name.strip_prefix("numeric("))?
        .strip_suffix(')')?;
    let (p, s) = inner.split_once(',')?;
    Some((p.trim().parse().ok()?, s.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::widens;

    #[test]
    fn only_lossless_changes_widen() {
        for (a, b) in [
            ("INTEGER", "BIGINT"),
            ("smallint", "integer"),
            ("UINTEGER", "BIGINT"),
            ("UTINYINT", "USMALLINT"),
            ("FLOAT", "DOUBLE"),
            ("real", "double precision"),
            ("DECIMAL(12,2)", "DECIMAL(14,2)"),
            ("numeric(12,2)", "numeric(13,3)"),
            ("INTEGER", "DECIMAL(12,2)"),
        ] {
            assert!(widens(a, b), "{a} -> {b}");
        }
        for (a, b) in [
            ("BIGINT", "INTEGER"),
            ("BIGINT", "UBIGINT"),
            ("UBIGINT", "BIGINT"),
            ("DOUBLE", "FLOAT"),
            ("DECIMAL(12,2)", "DECIMAL(12,3)"),
            ("DECIMAL(12,2)", "DECIMAL(11,2)"),
            ("BIGINT", "DECIMAL(18,0)"),
            ("INTEGER", "VARCHAR"),
            ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE"),
        ] {
            assert!(!widens(a, b), "{a} -> {b}");
        }
    }
}

//! SQL identifier quoting and deterministic name normalization.
//!
//! Every identifier that reaches SQL goes through [`quote_ident`]; values are bound as
//! parameters, never quoted by hand (a literal quoted by hand is open to injection where
//! PostgreSQL runs with `standard_conforming_strings = off`). Names from sources are turned into destination names by
//! [`normalize_name`], the same way on every run.

/// Quotes an identifier for SQL (PostgreSQL and DuckDB rules): wraps it in double quotes
/// and doubles any double quote inside.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Normalizes a source name (stream or column) into a destination name: lower case,
/// every run of characters other than ASCII letters and digits becomes one `_`, no leading
/// or trailing `_`, and a leading digit gets a `_` prefix. `"Order Items"` becomes
/// `order_items`, `"public.Orders"` becomes `public_orders`. Non-ASCII letters are kept
/// (DuckDB and PostgreSQL accept them quoted), lower-cased.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut pending_sep = false;
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            if pending_sep && !out.is_empty() {
                out.push('_');
            }
            pending_sep = false;
            out.push(c);
        } else {
            pending_sep = true;
        }
    }
    if out.is_empty() {
        return "_".to_owned();
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_ident("orders"), r#""orders""#);
        assert_eq!(quote_ident(r#"we"ird"#), r#""we""ird""#);
    }

    #[test]
    fn normalizes_deterministically() {
        assert_eq!(normalize_name("Order Items"), "order_items");
        assert_eq!(normalize_name("public.Orders"), "public_orders");
        assert_eq!(normalize_name("__weird--name__"), "weird_name");
        assert_eq!(normalize_name("2024_sales"), "_2024_sales");
        assert_eq!(normalize_name("Größe"), "größe");
        assert_eq!(normalize_name("!!!"), "_");
    }
}

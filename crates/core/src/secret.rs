//! A configuration value that holds or references a secret (password, token, URL with
//! credentials).
//!
//! The config keeps the text as written, such as `postgres://app:${PG_PASSWORD}@db/app`.
//! `${NAME}` and `${NAME:-default}` are resolved from the environment only when a connector
//! connects ([`Secret::resolve`]); `$$` stands for a literal `$`. A `Secret` and its
//! [`Revealed`] value print as `***` through `Debug` and `Display`, and a `Secret` cannot be
//! serialized, so it cannot end up in logs, errors, state or `--json` output by accident.

use std::fmt;

use crate::error::{Error, Result};

/// A secret as written in the config: literal text with optional `${ENV}` references.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret {
    template: String,
}

/// A resolved secret. Only [`Revealed::expose`] gives the text.
#[derive(Clone)]
pub struct Revealed(String);

impl Revealed {
    /// A secret a connector obtained while running (an OAuth2 access token): kept and
    /// redacted like a configured one.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The secret text, for handing to a driver. Never format it into a message.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Replaces every occurrence of the secret in `text` with `***`: a safety net for
    /// driver error messages that might echo what they were given.
    pub fn redact(&self, text: &str) -> String {
        if self.0.len() < 4 {
            text.to_owned()
        } else {
            text.replace(&self.0, "***")
        }
    }
}

enum Piece<'a> {
    Literal(&'a str),
    Var {
        name: &'a str,
        default: Option<&'a str>,
    },
}

impl Secret {
    /// A secret from its config text.
    pub fn new(template: impl Into<String>) -> Self {
        Self {
            template: template.into(),
        }
    }

    /// Resolves the `${ENV}` references from the process environment.
    pub fn resolve(&self) -> Result<Revealed> {
        self.resolve_with(|name| std::env::var(name).ok())
    }

    /// Resolves the references with `lookup`; an unset variable without a default is a
    /// config error naming the variable (never its value).
    pub fn resolve_with(&self, lookup: impl Fn(&str) -> Option<String>) -> Result<Revealed> {
        expand(&self.template, lookup).map(Revealed)
    }

    /// The names of the variables the secret references that are unset and have no default;
    /// lets `elt validate` report them without resolving anything.
    pub fn missing_vars(&self) -> Result<Vec<String>> {
        Ok(pieces(&self.template)?
            .into_iter()
            .filter_map(|piece| match piece {
                Piece::Var {
                    name,
                    default: None,
                } if std::env::var_os(name).is_none() => Some(name.to_owned()),
                _ => None,
            })
            .collect())
    }
}

/// `template` with each `${NAME}` replaced by `lookup(NAME)`, `${NAME:-default}` by the
/// default when unset, and `$$` by `$`; any other `$` stays. An unset variable without a
/// default is a config error naming the variable. Secrets resolve through it at connect
/// time, every other string of `elt.toml` when the project loads.
pub fn expand(template: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String> {
    let mut out = String::with_capacity(template.len());
    for piece in pieces(template)? {
        match piece {
            Piece::Literal(text) => out.push_str(text),
            Piece::Var { name, default } => match (lookup(name), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    return Err(Error::config(format!(
                        "environment variable {name} is not set (set it, or write ${{{name}:-default}} in the config)"
                    )));
                }
            },
        }
    }
    Ok(out)
}

fn pieces(text: &str) -> Result<Vec<Piece<'_>>> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        pieces.push(Piece::Literal(&rest[..at]));
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            pieces.push(Piece::Literal("$"));
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| {
                Error::config("`${` without a closing `}` (write `$$` for a literal `$`)")
            })?;
            let inner = &body[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(Error::config(format!(
                    "`${{{name}}}` is not a valid environment variable name (letters, digits and _ only)"
                )));
            }
            pieces.push(Piece::Var { name, default });
            rest = &body[end + 1..];
        } else {
            pieces.push(Piece::Literal("$"));
            rest = after;
        }
    }
    pieces.push(Piece::Literal(rest));
    Ok(pieces)
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Debug for Revealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Revealed(***)")
    }
}

impl fmt::Display for Revealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl schemars::JsonSchema for Secret {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A secret. `${NAME}` and `${NAME:-default}` are read from the environment when the connector connects; `$$` is a literal `$`. Printed as ***.",
            "writeOnly": true
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "PASS").then(|| "hunter2".to_owned())
    }

    #[test]
    fn resolves_references_defaults_and_escapes() {
        let secret = Secret::new("pg://u:${PASS}@${HOST:-localhost}/db$$x");
        assert_eq!(
            secret.resolve_with(env).unwrap().expose(),
            "pg://u:hunter2@localhost/db$x"
        );
    }

    #[test]
    fn missing_variable_is_a_config_error_naming_it() {
        let err = Secret::new("${NOPE_NOT_SET}")
            .resolve_with(env)
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Config);
        assert!(err.to_string().contains("NOPE_NOT_SET"));
    }

    #[test]
    fn never_prints_the_value() {
        let secret = Secret::new("literal-password");
        let revealed = secret.resolve_with(env).unwrap();
        for text in [
            format!("{secret:?}"),
            format!("{secret}"),
            format!("{revealed:?}"),
            format!("{revealed}"),
        ] {
            assert!(!text.contains("literal-password"), "{text}");
        }
        assert_eq!(
            revealed.redact("failed: literal-password@x"),
            "failed: ***@x"
        );
    }

    #[test]
    fn malformed_references_are_rejected() {
        assert!(Secret::new("${UNCLOSED").resolve_with(env).is_err());
        assert!(Secret::new("${BAD NAME}").resolve_with(env).is_err());
    }
}

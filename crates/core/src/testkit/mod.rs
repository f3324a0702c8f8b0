//! The connector conformance kit (feature `testkit`): checks every source and destination
//! runs from its own tests, against a live system the test provides. A check that fails
//! panics with what it saw, so the kit is called from `#[tokio::test]` functions.
//!
//! Sources ([`SourceKit`]): the spec accepts the working config and the factory builds it;
//! an unknown option and each listed bad option are refused naming the option; `check`
//! passes, and fails cleanly (not a bug, within ten seconds) on an unreachable host; every
//! batch matches the discovered schema; checkpoints never go backwards; a read resumed from
//! a checkpoint in the middle loses and repeats no row; a read from the final state reads
//! nothing; no error text contains a secret.
//!
//! Destinations ([`DestinationKit`]): the same config checks; a stream of batches and
//! checkpoints commits every row and the last state; a stream whose source stops without
//! completing keeps only what was committed.
//!
//! Files: this one (the config checks both kits share, and a fresh PostgreSQL database for
//! tests), `source.rs` ([`SourceKit`]), `destination.rs` ([`DestinationKit`]), `http.rs`
//! (a local HTTP server with faults, for HTTP sources' tests).
//!
//! What it does not do: type round trips and write modes, which each connector tests
//! against its own system.

mod destination;
pub mod http;
mod source;

use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{Error, ErrorKind};

pub use destination::DestinationKit;
pub use source::SourceKit;

/// How long `check` may take to fail against an unreachable host.
const CHECK_LIMIT: Duration = Duration::from_secs(10);

/// The config checks both kits share: what the test provides.
#[derive(Debug, Clone, Default)]
pub struct ConfigCases {
    /// Options that work against the test's live system.
    pub config: Value,
    /// Options each paired with a value that must be refused, such as `("batch_rows", 0)`.
    pub bad_options: Vec<(&'static str, Value)>,
    /// Options pointing at a host that does not answer; None when there is no host.
    pub unreachable: Option<Value>,
    /// Values that must never appear in an error's text (passwords, tokens).
    pub secrets: Vec<String>,
}

impl ConfigCases {
    fn with(&self, option: &str, value: Value) -> Value {
        let mut config = self.config.clone();
        config[option] = value;
        config
    }

    fn assert_no_secret(&self, error: &Error, doing: &str) {
        let text = format!("{error:#} {error:?}");
        for secret in &self.secrets {
            assert!(
                !text.contains(secret.as_str()),
                "{doing}: the error shows a secret: {text}"
            );
        }
    }

    /// Awaits `check` against an unreachable host: it must fail within [`CHECK_LIMIT`], as
    /// a classified error (not a bug), without a secret in its text.
    async fn assert_check_fails(
        &self,
        check: impl std::future::Future<Output = crate::Result<()>>,
    ) {
        let error = match tokio::time::timeout(CHECK_LIMIT, check).await {
            Err(_) => panic!("check on an unreachable host took over {CHECK_LIMIT:?}"),
            Ok(Ok(())) => panic!("check passed on an unreachable host"),
            Ok(Err(e)) => e,
        };
        assert_ne!(error.kind(), ErrorKind::Bug, "{error:#}");
        self.assert_no_secret(&error, "check on an unreachable host");
    }

    /// Runs the config checks through `build`, returning the names of those that passed.
    fn run<T>(
        &self,
        spec: &Value,
        build: impl Fn(&Value) -> crate::Result<T>,
    ) -> Vec<&'static str> {
        let validator = jsonschema::validator_for(spec)
            .unwrap_or_else(|e| panic!("the spec is not a JSON Schema: {e}"));
        let problems: Vec<String> = validator
            .iter_errors(&self.config)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            problems.is_empty(),
            "the spec refuses the working config: {problems:?}"
        );
        if let Err(e) = build(&self.config) {
            panic!("the working config does not build: {e:#}");
        }
        let mut passed = vec!["the spec accepts the config, which builds"];
        let unknown = self.with("no_such_option", json!(1));
        match build(&unknown) {
            Ok(_) => panic!("an unknown option was accepted"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Config, "{e:#}");
                assert!(
                    e.message().contains("no_such_option"),
                    "does not name it: {e:#}"
                );
            }
        }
        passed.push("an unknown option is refused by name");
        for (option, value) in &self.bad_options {
            match build(&self.with(option, value.clone())) {
                Ok(_) => panic!("`{option}` = {value} was accepted"),
                Err(e) => {
                    assert_eq!(e.kind(), ErrorKind::Config, "{e:#}");
                    assert!(
                        e.message().contains(option),
                        "does not name `{option}`: {e:#}"
                    );
                    self.assert_no_secret(&e, "a bad option");
                }
            }
        }
        passed.push("each bad option is refused by name");
        passed
    }
}

/// A new, empty database `name` on the test PostgreSQL server (`ELT_TEST_PG_URL`, default
/// `postgres://postgres@127.0.0.1:5432/test`), dropped first if it exists; returns its URL.
#[cfg(feature = "postgres")]
pub async fn fresh_pg_database(name: &str) -> String {
    use sqlx::{Connection, Executor};
    let admin = std::env::var("ELT_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is not reachable: {e}"));
    let drop = format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        crate::quote_ident(name)
    );
    conn.execute(drop.as_str())
        .await
        .expect("drop the database");
    let create = format!("CREATE DATABASE {}", crate::quote_ident(name));
    conn.execute(create.as_str())
        .await
        .expect("create the database");
    format!(
        "{}/{name}",
        admin
            .rsplit_once('/')
            .map_or(admin.as_str(), |(base, _)| base)
    )
}

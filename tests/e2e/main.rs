//! End-to-end tests of the real `elt` binary: each test gets its own temporary project
//! directory (and, for database sources, its own database) and inspects the DuckDB file
//! it produced.

mod common;

mod backfill;
mod backfill_checks;
mod cdc;
mod cdc_admin;
mod cdc_common;
mod cdc_follow;
mod cdc_modes;
mod cdc_restart;
mod cli;
mod columns;
mod config_errors;
mod contracts;
mod crash;
mod datatests;
mod datatests_depth;
mod datatests_history;
mod deadletter;
mod demo;
mod env_vars;
mod examples;
mod examples_backfill;
mod examples_dbt;
mod history;
mod http;
mod kafka;
mod kafka_auth;
mod kafka_common;
mod kafka_destination;
mod kafka_follow;
mod limits;
mod lock;
mod metrics;
mod mysql;
mod mysql_reconcile;
mod mysql_tls;
mod ndjson;
mod orchestration;
mod parallel;
mod pg;
mod pg_destination;
mod pg_workers;
mod postgres;
mod previous;
mod reconcile;
mod replay_types;
mod secrets;
mod ssh;
mod sshd;
mod tls;
mod ui;
mod ui_actions;
mod ui_common;

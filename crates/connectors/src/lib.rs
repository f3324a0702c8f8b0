//! elt-connectors: every source connector, one directory each, and [`sources`], the one
//! list that registers them.
//!
//! A connector directory holds `mod.rs` (the `Source` impl and its `//!` doc: what it
//! reads, how it checkpoints, its limits), `config.rs` and files split by role.

pub mod calendar;
pub mod http;
mod json_rows;
pub mod kafka;
pub mod mysql;
pub mod postgres;
pub mod sample;

use elt_core::SourceFactory;

/// Every source type this build knows, in the order `elt connectors` lists them.
pub fn sources() -> Vec<SourceFactory> {
    vec![
        sample::factory(),
        postgres::factory(),
        calendar::factory(),
        mysql::factory(),
        http::factory(),
        kafka::factory(),
    ]
}

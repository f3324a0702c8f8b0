//! elt-destinations: every destination loader, one directory each, and [`destinations`],
//! the one list that registers them.

mod dead_letters;
pub mod driver;
pub mod duckdb;
mod keyed;
pub mod ndjson;
pub mod postgres;
mod widen;

use elt_core::DestinationFactory;

/// Every destination type this build knows, in the order `elt connectors` lists them.
pub fn destinations() -> Vec<DestinationFactory> {
    vec![duckdb::factory(), postgres::factory(), ndjson::factory()]
}

//! elt-destinations: every destination loader, one directory each, and [`destinations`],
//! the one list that registers them.

mod dead_letters;
pub mod driver;
/// The capability accessors of a `DestinationSession` that implements every capability
/// trait of `elt_core::capability` itself (DuckDB, PostgreSQL): each returns the session.
macro_rules! offer_every_capability {
    () => {
        fn run_log(&mut self) -> Option<&mut dyn elt_core::capability::RunLog> {
            Some(self)
        }

        fn dead_letters(&mut self) -> Option<&mut dyn elt_core::capability::DeadLetterStore> {
            Some(self)
        }

        fn key_digests(&mut self) -> Option<&mut dyn elt_core::capability::KeyDigests> {
            Some(self)
        }

        fn schemas(&mut self) -> Option<&mut dyn elt_core::capability::SchemaCompare> {
            Some(self)
        }

        fn sql(&mut self) -> Option<&mut dyn elt_core::capability::SqlQueries> {
            Some(self)
        }

        fn test_results(&mut self) -> Option<&mut dyn elt_core::capability::TestResultLog> {
            Some(self)
        }

        fn profiles(&mut self) -> Option<&mut dyn elt_core::capability::ProfileLog> {
            Some(self)
        }

        fn windows(&mut self) -> Option<&mut dyn elt_core::capability::WindowLog> {
            Some(self)
        }
    };
}
pub(crate) use offer_every_capability;

pub mod duckdb;
pub mod kafka;
mod keyed;
pub mod ndjson;
pub mod postgres;
mod unchanged;
mod widen;

use elt_core::DestinationFactory;

/// Every destination type this build knows, in the order `elt connectors` lists them.
pub fn destinations() -> Vec<DestinationFactory> {
    vec![
        duckdb::factory(),
        postgres::factory(),
        ndjson::factory(),
        kafka::factory(),
    ]
}

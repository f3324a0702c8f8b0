//! The connector types this build knows: the union of `elt_connectors::sources()` and
//! `elt_destinations::destinations()`. Nothing registers itself anywhere else.

use std::sync::OnceLock;

use elt_core::{DestinationFactory, SourceFactory};

fn all_sources() -> &'static [SourceFactory] {
    static SOURCES: OnceLock<Vec<SourceFactory>> = OnceLock::new();
    SOURCES.get_or_init(elt_connectors::sources)
}

fn all_destinations() -> &'static [DestinationFactory] {
    static DESTINATIONS: OnceLock<Vec<DestinationFactory>> = OnceLock::new();
    DESTINATIONS.get_or_init(elt_destinations::destinations)
}

/// The source type called `kind`.
pub fn source(kind: &str) -> Option<&'static SourceFactory> {
    all_sources().iter().find(|f| f.kind == kind)
}

/// The destination type called `kind`.
pub fn destination(kind: &str) -> Option<&'static DestinationFactory> {
    all_destinations().iter().find(|f| f.kind == kind)
}

/// Every source type: (kind, description).
pub fn sources() -> Vec<(&'static str, &'static str)> {
    all_sources()
        .iter()
        .map(|f| (f.kind, f.description))
        .collect()
}

/// Every destination type: (kind, description).
pub fn destinations() -> Vec<(&'static str, &'static str)> {
    all_destinations()
        .iter()
        .map(|f| (f.kind, f.description))
        .collect()
}

/// Names of the source types.
pub fn source_kinds() -> Vec<&'static str> {
    all_sources().iter().map(|f| f.kind).collect()
}

/// Names of the destination types.
pub fn destination_kinds() -> Vec<&'static str> {
    all_destinations().iter().map(|f| f.kind).collect()
}

//! The Prometheus sink: one registry of the catalogue's metrics, encoded as Prometheus'
//! text format (version 0.0.4, what a scrape and node exporter's textfile collector read)
//! by the `prometheus` crate. It only holds values; serving them is `elt ui`'s and
//! `--metrics-listen`'s, writing them `--metrics-file`'s.

use std::collections::HashMap;

use prometheus::{GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use super::Sink;
use super::catalogue::{ALL, Def, Kind};

/// The content type of [`PrometheusSink::text`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

enum Family {
    Counter(IntCounterVec),
    Gauge(GaugeVec),
    Histogram(HistogramVec),
}

/// The catalogue's metrics in one registry.
pub(crate) struct PrometheusSink {
    registry: Registry,
    families: HashMap<&'static str, Family>,
}

impl PrometheusSink {
    pub(crate) fn new() -> Self {
        let registry = Registry::new();
        let mut families = HashMap::new();
        for def in ALL {
            let family = family(def);
            let collector: Box<dyn prometheus::core::Collector> = match &family {
                Family::Counter(c) => Box::new(c.clone()),
                Family::Gauge(g) => Box::new(g.clone()),
                Family::Histogram(h) => Box::new(h.clone()),
            };
            registry
                .register(collector)
                .expect("the catalogue's names are unique and valid");
            families.insert(def.name, family);
        }
        Self { registry, families }
    }

    /// Every metric with a value, in the text format.
    pub(crate) fn text(&self) -> String {
        prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .expect("encoding into a String cannot fail")
    }
}

fn family(def: &Def) -> Family {
    let opts = Opts::new(def.name, def.help);
    let built = match def.kind {
        Kind::Counter => IntCounterVec::new(opts, def.labels).map(Family::Counter),
        Kind::Gauge => GaugeVec::new(opts, def.labels).map(Family::Gauge),
        Kind::Histogram(buckets) => HistogramVec::new(
            HistogramOpts::from(opts).buckets(buckets.to_vec()),
            def.labels,
        )
        .map(Family::Histogram),
    };
    built.expect("the catalogue's definitions are valid")
}

impl Sink for PrometheusSink {
    fn add(&self, def: &Def, labels: &[&str], value: u64) {
        if let Some(Family::Counter(c)) = self.families.get(def.name) {
            c.with_label_values(labels).inc_by(value);
        }
    }

    fn set(&self, def: &Def, labels: &[&str], value: f64) {
        if let Some(Family::Gauge(g)) = self.families.get(def.name) {
            g.with_label_values(labels).set(value);
        }
    }

    fn observe(&self, def: &Def, labels: &[&str], value: f64) {
        if let Some(Family::Histogram(h)) = self.families.get(def.name) {
            h.with_label_values(labels).observe(value);
        }
    }
}

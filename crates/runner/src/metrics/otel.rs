//! The OpenTelemetry sink: the catalogue's metrics as instruments of the global meter
//! provider. Without an exporter (no `OTEL_EXPORTER_OTLP_ENDPOINT`: the CLI installs none)
//! the global provider is a no-op and recording costs next to nothing. Names drop
//! Prometheus' `_total` suffix of counters. Exporting is the CLI's (`cli/telemetry.rs`).

use std::collections::HashMap;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram};

use super::Sink;
use super::catalogue::{ALL, Def, Kind};

enum Instrument {
    Counter(Counter<u64>),
    Gauge(Gauge<f64>),
    Histogram(Histogram<f64>),
}

/// The catalogue's metrics on the global meter `elt`.
pub(crate) struct OtelSink {
    instruments: HashMap<&'static str, Instrument>,
}

impl OtelSink {
    pub(crate) fn new() -> Self {
        let meter = opentelemetry::global::meter("elt");
        let instruments = ALL
            .iter()
            .map(|def| {
                let name = def.name.strip_suffix("_total").unwrap_or(def.name);
                let instrument = match def.kind {
                    Kind::Counter => Instrument::Counter(
                        meter.u64_counter(name).with_description(def.help).build(),
                    ),
                    Kind::Gauge => {
                        Instrument::Gauge(meter.f64_gauge(name).with_description(def.help).build())
                    }
                    Kind::Histogram(buckets) => Instrument::Histogram(
                        meter
                            .f64_histogram(name)
                            .with_description(def.help)
                            .with_unit("s")
                            .with_boundaries(buckets.to_vec())
                            .build(),
                    ),
                };
                (def.name, instrument)
            })
            .collect();
        Self { instruments }
    }
}

fn attributes(def: &Def, labels: &[&str]) -> Vec<KeyValue> {
    def.labels
        .iter()
        .zip(labels)
        .map(|(key, value)| KeyValue::new(*key, (*value).to_owned()))
        .collect()
}

impl Sink for OtelSink {
    fn add(&self, def: &Def, labels: &[&str], value: u64) {
        if let Some(Instrument::Counter(c)) = self.instruments.get(def.name) {
            c.add(value, &attributes(def, labels));
        }
    }

    fn set(&self, def: &Def, labels: &[&str], value: f64) {
        if let Some(Instrument::Gauge(g)) = self.instruments.get(def.name) {
            g.record(value, &attributes(def, labels));
        }
    }

    fn observe(&self, def: &Def, labels: &[&str], value: f64) {
        if let Some(Instrument::Histogram(h)) = self.instruments.get(def.name) {
            h.record(value, &attributes(def, labels));
        }
    }
}

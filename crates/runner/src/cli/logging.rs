//! Log lines on stderr, for people (`--log-format human`) or for log collectors
//! (`--log-format json`: one JSON object per line).
//!
//! A JSON line carries `timestamp` (UTC, RFC 3339), `level`, `target`, `message`, the
//! event's own fields, and the fields of every span it happened in, flattened: `connection`
//! and `run_id` from the sync, `stream` from the stream. With OTLP export on
//! (`telemetry.rs`), the same spans also become OpenTelemetry spans. What it does not do:
//! choose what is logged (the engine and connectors do) or print results (those go to
//! stdout).

use std::io::{IsTerminal, Write};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use super::args::LogFormat;

/// Installs the logger. Human logs show warnings by default (`-v` info, `-vv` debug);
/// JSON logs start at info, since collectors filter. `RUST_LOG` overrides both. With
/// `telemetry`, spans also go to OpenTelemetry, at info whatever the log level.
pub fn init(verbose: u8, format: LogFormat, telemetry: Option<&super::telemetry::Telemetry>) {
    let level = match (verbose, format) {
        (0, LogFormat::Human) => "warn",
        (0 | 1, _) => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let lines = match format {
        LogFormat::Human => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .boxed(),
        LogFormat::Json => JsonLines.boxed(),
    };
    tracing_subscriber::registry()
        .with(lines.with_filter(filter))
        .with(telemetry.map(super::telemetry::Telemetry::layer))
        .init();
}

/// Writes each event as one JSON line on stderr.
struct JsonLines;

/// The recorded fields of a span, kept in its extensions.
struct SpanFields(Map<String, Value>);

impl<S> Layer<S> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        attrs.record(&mut Fields(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id)
            && let Some(SpanFields(fields)) = span.extensions_mut().get_mut::<SpanFields>()
        {
            values.record(&mut Fields(fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .into(),
        );
        line.insert("level".into(), meta.level().as_str().to_lowercase().into());
        line.insert("target".into(), meta.target().into());
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                    line.extend(fields.clone());
                }
            }
        }
        event.record(&mut Fields(&mut line));
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        // One write per line, so lines of concurrent threads do not interleave.
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

/// Records fields into a JSON object, keeping numbers and booleans typed.
struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().into(), format!("{value:#}").into());
    }
}

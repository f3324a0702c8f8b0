//! OpenTelemetry export over OTLP/HTTP (protobuf), on when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`) is
//! set: a trace per run (the `sync` span, with `stream` spans and their `commit` spans
//! under it) and the metrics of `elt_runner::metrics`, every 60 s
//! (`OTEL_METRIC_EXPORT_INTERVAL`, ms) and at exit. The exporters read the standard
//! `OTEL_*` variables themselves (endpoint, headers, timeout); requests go through our
//! reqwest client on the command's Tokio runtime.
//!
//! What it does not do: logs over OTLP (they stay on stderr), or gRPC.

use std::time::Duration;

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{MetricExporter, SpanExporter, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// The variables that turn OTLP export on.
const ENDPOINT_VARIABLES: [&str; 3] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
];

/// Whether the environment turns OTLP export on.
pub fn exporting() -> bool {
    ENDPOINT_VARIABLES
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// The installed exporters; [`Telemetry::shutdown`] sends what is left.
pub struct Telemetry {
    tracer: SdkTracerProvider,
    meter: SdkMeterProvider,
}

/// Installs OTLP export when the environment asks for it (the global meter provider, and
/// a tracer for [`Telemetry::layer`]); None when no endpoint is set.
pub fn from_env(runtime: &tokio::runtime::Handle) -> anyhow::Result<Option<Telemetry>> {
    if !exporting() {
        return Ok(None);
    }
    let client = || OnRuntime {
        client: reqwest::Client::new(),
        runtime: runtime.clone(),
    };
    // `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` are read by the builder; the
    // service is `elt` unless they name it.
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("elt");
    }
    let resource = resource.build();
    let spans = SpanExporter::builder()
        .with_http()
        .with_http_client(client())
        .build()
        .context("OTEL_EXPORTER_OTLP_ENDPOINT: cannot build the OTLP trace exporter")?;
    let metrics = MetricExporter::builder()
        .with_http()
        .with_http_client(client())
        .build()
        .context("OTEL_EXPORTER_OTLP_ENDPOINT: cannot build the OTLP metric exporter")?;
    let tracer = SdkTracerProvider::builder()
        .with_batch_exporter(spans)
        .with_resource(resource.clone())
        .build();
    let meter = SdkMeterProvider::builder()
        .with_periodic_exporter(metrics)
        .with_resource(resource)
        .build();
    opentelemetry::global::set_meter_provider(meter.clone());
    Ok(Some(Telemetry { tracer, meter }))
}

impl Telemetry {
    /// tracing's spans (info and above, whatever the log level) as OpenTelemetry spans.
    pub fn layer<S>(&self) -> impl Layer<S> + 'static
    where
        S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.tracer.tracer("elt"))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    }

    /// Exports what is still buffered (the last run's spans and metrics) and stops; call
    /// outside the runtime's tasks, before the runtime shuts down.
    pub fn shutdown(self) {
        if let Err(e) = self.tracer.shutdown_with_timeout(Duration::from_secs(10)) {
            eprintln!("elt: could not send the last traces to OTEL_EXPORTER_OTLP_ENDPOINT: {e}");
        }
        if let Err(e) = self.meter.shutdown_with_timeout(Duration::from_secs(10)) {
            eprintln!("elt: could not send the last metrics to OTEL_EXPORTER_OTLP_ENDPOINT: {e}");
        }
    }
}

/// The exporters' HTTP client: reqwest, run on the command's Tokio runtime (the SDK
/// exports from threads of its own, outside any runtime).
#[derive(Debug)]
struct OnRuntime {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let (status, headers, body) = self
            .runtime
            .spawn(async move {
                let response = client.execute(request).await?;
                let (status, headers) = (response.status(), response.headers().clone());
                Ok::<_, reqwest::Error>((status, headers, response.bytes().await?))
            })
            .await?
            // The endpoint may carry credentials: errors name no URL.
            .map_err(reqwest::Error::without_url)?;
        let mut response = Response::builder().status(status);
        if let Some(h) = response.headers_mut() {
            *h = headers;
        }
        Ok(response.body(body)?)
    }
}

//! `elt ui`: a local web page of the project's connections, served by the elt binary (and
//! the `/metrics` endpoint of `elt sync --follow --metrics-listen`).
//!
//! Bound to 127.0.0.1 by default; any other address needs `--listen` and then every
//! request carries the token printed at start (`?token=` once, then a cookie, or
//! `Authorization: Bearer`). On a loopback address only `localhost`/loopback `Host`
//! headers are served (a DNS-rebinding page cannot read it). It is read-only except "sync
//! now" and "replay", POSTs that must come from the page itself: a same-origin `Origin`
//! (or `Sec-Fetch-Site: same-origin`) and the page's anti-forgery token, else 403.
//!
//! Pages read through `data.rs`; the stylesheet is built into the binary; nothing is
//! fetched from elsewhere. What it does not do: edit the project, or show secrets (run
//! errors are stored redacted; configs are never shown).

mod actions;
mod data;
mod guard;
mod layout;
mod pages;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use elt_runner::{Metrics, Project};

use super::exit;

/// What every handler shares.
#[derive(Clone)]
struct App {
    /// The project file, loaded anew by each request.
    config: PathBuf,
    metrics: Metrics,
    /// The anti-forgery token of this process's forms.
    csrf: Arc<str>,
    /// The access token, when bound to a non-loopback address.
    token: Option<Arc<str>>,
    /// Where the server listens (`Host` headers it accepts on loopback).
    addr: SocketAddr,
    /// Connections with a "sync now" in flight.
    syncing: Arc<Mutex<HashSet<String>>>,
    /// A message per connection for its next page (the outcome of an action).
    flash: Arc<Mutex<HashMap<String, String>>>,
}

/// A random token (128 bits, hex).
fn random_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Serves the UI for the project file `config` (checked now) on `listen` until Ctrl-C or
/// SIGTERM.
pub async fn serve(config: &Path, listen: SocketAddr) -> anyhow::Result<i32> {
    Project::load(config)?;
    let listener = bind(listen, "--listen/--port").await?;
    let addr = listener.local_addr()?;
    let token = (!addr.ip().is_loopback()).then(random_token);
    let app = App {
        config: config.to_owned(),
        metrics: Metrics::new(),
        csrf: random_token().into(),
        token: token.clone().map(Into::into),
        addr,
        syncing: Default::default(),
        flash: Default::default(),
    };
    let router = Router::new()
        .route("/", get(actions::overview))
        .route("/connections/{name}", get(actions::connection))
        .route("/connections/{name}/tests", get(actions::tests))
        .route(
            "/connections/{name}/dead-letters",
            get(actions::dead_letters),
        )
        .route("/connections/{name}/plan", get(actions::plan))
        .route("/connections/{name}/sync", post(actions::sync_now))
        .route(
            "/connections/{name}/dead-letters/replay",
            post(actions::replay),
        )
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            guard::guard,
        ))
        .with_state(app);
    match token {
        Some(token) => println!("elt ui: http://{addr}/?token={token}"),
        None => println!("elt ui: http://{addr}/"),
    }
    axum::serve(listener, router)
        .with_graceful_shutdown(stopped())
        .await?;
    Ok(exit::SUCCESS)
}

/// Serves only `/metrics` of `metrics` on `listener` (for `elt sync --follow`), until the
/// process ends.
pub fn serve_metrics(listener: tokio::net::TcpListener, metrics: Metrics) {
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move { prometheus_response(&metrics) }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "the /metrics endpoint stopped");
        }
    });
}

/// Binds `addr`, or says which option to change.
pub async fn bind(addr: SocketAddr, option: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        elt_core::Error::config(format!(
            "{option}: cannot listen on {addr}: {e} (another process may use the port: choose \
             another)"
        ))
        .into()
    })
}

async fn metrics(State(app): State<App>) -> impl IntoResponse {
    prometheus_response(&app.metrics)
}

fn prometheus_response(metrics: &Metrics) -> impl IntoResponse + use<> {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            elt_runner::metrics::CONTENT_TYPE,
        )],
        metrics.prometheus_text(),
    )
}

/// Resolves on Ctrl-C or SIGTERM.
async fn stopped() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => return std::future::pending().await,
        };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

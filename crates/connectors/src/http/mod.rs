//! The `http` source: REST APIs described by a declarative manifest, no code.
//!
//! What it reads: the streams of a manifest (`manifest.rs`; shipped ones in `specs/http/`,
//! or a file of your own): a path and parameters each, records found by a JSON pointer,
//! a primary key and cursor, a paginator (offset, page number, cursor token, next URL,
//! `Link` header), a declared JSON Schema or one inferred from the first page, and child
//! streams that make one request chain per parent record. Records become Arrow batches
//! through arrow-json; objects and arrays are JSON columns, and fields the schema does not
//! name land in the `_extra` JSON column rather than being dropped (`crate::json_rows`).
//!
//! How it reads and checkpoints: page by page, a checkpoint after each (`read.rs`); the
//! credentials, host rules, rate limit, retries and size cap of every request are the
//! client's (`client.rs`, `auth.rs`).
//!
//! Limits: GET requests with JSON bodies only; one level of parent and child; a child
//! stream re-reads every parent record each sync and checkpoints only at its end; it
//! cannot reconcile hard deletes. A record with a value whose type does not fit its column
//! goes to `_elt_dead_letter` with the reason.

mod auth;
mod client;
mod config;
mod floor;
mod hosts;
mod manifest;
mod paginate;
mod printable;
mod read;
mod records;

use async_trait::async_trait;
use elt_core::arrow::datatypes::Field;
use elt_core::{
    Catalog, ConfiguredStream, Emitter, Error, Result, Source, SourceFactory, StreamDescriptor,
    StreamState,
};
use tokio::sync::OnceCell;

use crate::json_rows;
use client::Client;
pub use config::HttpConfig;
use manifest::Manifest;

/// Registers the `http` source type.
pub fn factory() -> SourceFactory {
    SourceFactory::new(
        "http",
        "REST APIs described by a declarative manifest (specs/http/, or your own file)",
        |config: HttpConfig| {
            let manifest = load(&config)?;
            Ok(Box::new(HttpSource {
                config,
                manifest,
                client: OnceCell::new(),
            }))
        },
    )
}

/// Reads and checks the manifest (a local file at most; no network).
fn load(config: &HttpConfig) -> Result<Manifest> {
    let (text, origin) = match (&config.manifest, &config.manifest_path) {
        (Some(name), _) => (
            manifest::shipped(name)
                .ok_or_else(|| Error::config(format!("`manifest`: no shipped manifest {name:?}")))?
                .to_owned(),
            name.clone(),
        ),
        (None, Some(path)) => (
            std::fs::read_to_string(path)
                .map_err(|e| Error::config(format!("`manifest_path`: cannot read {path}: {e}")))?,
            path.clone(),
        ),
        (None, None) => return Err(Error::config("`manifest` or `manifest_path` is required")),
    };
    Manifest::parse(&text, &origin, &config.vars)
}

/// The `http` source.
pub struct HttpSource {
    config: HttpConfig,
    manifest: Manifest,
    client: OnceCell<Client>,
}

impl HttpSource {
    /// The client, made on first use (that is when secrets are resolved).
    async fn client(&self) -> Result<&Client> {
        self.client
            .get_or_try_init(|| async { Client::new(&self.config, &self.manifest) })
            .await
    }

    /// The fields of `spec`: declared, else inferred from its first page.
    async fn fields(&self, spec: &manifest::StreamSpec) -> Result<Vec<Field>> {
        if let Some(schema) = &spec.schema {
            return Ok(json_rows::declared(schema));
        }
        let client = self.client().await?;
        let mut vars = self.config.vars.clone();
        if let Some(parent) = &spec.parent {
            let parent_spec = self.manifest.stream(&parent.stream)?;
            let url = paginate::first_url(client.base(), parent_spec, &vars, None)?;
            let page = client.get_json(url).await?;
            let first = records::extract(&page.body, &parent_spec.records)
                .map_err(Error::data)?
                .into_iter()
                .find_map(|r| r.get(&parent.field).cloned());
            let Some(value) = first else {
                return Ok(Vec::new());
            };
            let text = value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned);
            vars.insert(parent.var.clone(), text);
        }
        let url = paginate::first_url(client.base(), spec, &vars, None)?;
        let page = client.get_json(url).await?;
        let sample = records::extract(&page.body, &spec.records).map_err(Error::data)?;
        Ok(json_rows::inferred(&sample))
    }
}

#[async_trait]
impl Source for HttpSource {
    async fn check(&self) -> Result<()> {
        let client = self.client().await?;
        let spec = self
            .manifest
            .streams
            .iter()
            .find(|s| s.parent.is_none())
            .ok_or_else(|| Error::config("the manifest has no stream without a parent"))?;
        let url = paginate::first_url(client.base(), spec, &self.config.vars, None)?;
        client.get_json_once(url).await.map(drop)
    }

    async fn discover(&self) -> Result<Catalog> {
        let mut fields = Vec::new();
        for spec in &self.manifest.streams {
            let inferring = |e: Error| {
                Error::new(
                    e.kind(),
                    format!("inferring the schema from the first page: {}", e.message()),
                )
                .in_stream(&spec.name)
            };
            fields.push(self.fields(spec).await.map_err(inferring)?);
        }
        let streams = self
            .manifest
            .streams
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let child_key = spec.parent.as_ref().map(|parent| {
                    let parent_at = self
                        .manifest
                        .streams
                        .iter()
                        .position(|s| s.name == parent.stream);
                    parent_at
                        .and_then(|p| fields[p].iter().find(|f| f.name() == &parent.field))
                        .map_or_else(
                            || {
                                Field::new(
                                    &parent.var,
                                    elt_core::arrow::datatypes::DataType::Utf8,
                                    true,
                                )
                            },
                            |f| f.as_ref().clone().with_name(&parent.var),
                        )
                });
                StreamDescriptor {
                    name: spec.name.clone(),
                    schema: json_rows::schema(fields[i].clone(), child_key),
                    primary_key: spec.primary_key.clone(),
                    cursor_candidates: spec.cursor.iter().cloned().collect(),
                    append_only: false,
                    delete_marker: None,
                }
            })
            .collect();
        Ok(Catalog { streams })
    }

    async fn read(
        &self,
        stream: &ConfiguredStream,
        state: Option<StreamState>,
        out: &mut Emitter,
    ) -> Result<()> {
        let client = self.client().await?;
        read::read(client, &self.manifest, &self.config, stream, state, out).await
    }
}

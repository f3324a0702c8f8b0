//! `elt.toml`: loading and validating a project without any I/O beyond reading the file.
//!
//! Unknown keys are rejected everywhere; messages name the key path (such as
//! `connections.demo.streams[0].write`) and what was expected. Each source and destination
//! table is handed to its connector's factory, which parses its own options strictly and
//! builds the connector without connecting. A relative `path` or `*_path` option of a
//! source or destination is taken relative to the directory of `elt.toml`, so cron and
//! orchestrators can run elt from anywhere.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use elt_core::{Destination, Error, OnDelete, Result, Source, SyncMode, WriteMode};
use serde::Deserialize;

/// The default project file name.
pub const DEFAULT_CONFIG: &str = "elt.toml";

/// A loaded and validated project.
pub struct Project {
    /// Where the project file is.
    pub path: PathBuf,
    /// The connections, by name.
    pub connections: BTreeMap<String, Connection>,
    sources: BTreeMap<String, Box<dyn Source>>,
    destinations: BTreeMap<String, Box<dyn Destination>>,
    secrets: Vec<(String, elt_core::Secret)>,
}

/// A connection as configured: which source feeds which destination, and how.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// The name of a `[sources.NAME]` table.
    pub source: String,
    /// The name of a `[destinations.NAME]` table.
    pub destination: String,
    /// The schema (DuckDB, PostgreSQL) the raw tables go into.
    #[serde(default = "default_dataset")]
    pub dataset: String,
    /// The streams to sync and how; every stream the source offers, with defaults, when
    /// omitted.
    #[serde(default)]
    pub streams: Option<Vec<StreamConfig>>,
    /// Batches buffered between source and destination, 1 to 1024 (backpressure: memory
    /// stays bounded by this many batches).
    #[serde(default = "default_channel_batches")]
    pub channel_batches: usize,
    /// Retries of a stream after a transient error, with exponential backoff, resuming from
    /// the last committed checkpoint.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Data tests of the raw tables (`[[connections.NAME.tests]]`), run by `elt test`.
    #[serde(default)]
    pub tests: Vec<crate::datatests::StreamTests>,
    /// Run the data tests after every sync; a failing test makes the run fail.
    #[serde(default)]
    pub test_after_sync: bool,
    /// What a sync does when a stream's schema no longer matches its raw table, for streams
    /// that do not set their own.
    #[serde(default)]
    pub schema_contract: SchemaContract,
}

/// What a sync does when a stream's schema no longer matches its raw table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaContract {
    /// Add the new columns (nullable); a column whose type changed fails the stream.
    #[default]
    Evolve,
    /// Fail the stream on any change (a new, removed or retyped column) before reading
    /// anything: its data and state stay as they were.
    Freeze,
    /// Keep the table as it is: a row with a value in a new or retyped column goes to
    /// `_elt_dead_letter`, the others are loaded without that column.
    DiscardRow,
    /// Keep the table as it is: load every row, without the values of new or retyped
    /// columns.
    DiscardValue,
}

impl SchemaContract {
    /// The name used in `elt.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Evolve => "evolve",
            Self::Freeze => "freeze",
            Self::DiscardRow => "discard_row",
            Self::DiscardValue => "discard_value",
        }
    }
}

impl StreamConfig {
    /// Reads and checks the JSON Schema file, relative to `dir`; `at` names the option.
    fn load_json_schema(&mut self, dir: &Path, at: &str) -> Result<()> {
        let Some(path) = &self.json_schema_path else {
            return Ok(());
        };
        let path = dir.join(path);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::config(format!("{at}: cannot read {}: {e}", path.display())))?;
        let schema: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::config(format!("{at}: {} is not JSON: {e}", path.display())))?;
        jsonschema::validator_for(&schema).map_err(|e| {
            Error::config(format!(
                "{at}: {} is not a valid JSON Schema: {e}",
                path.display()
            ))
        })?;
        self.json_schema = Some(schema);
        Ok(())
    }
}

impl Connection {
    /// The configuration of stream `name`, when the connection lists it.
    pub fn stream_config(&self, name: &str) -> Option<&StreamConfig> {
        self.streams.iter().flatten().find(|s| s.name == name)
    }

    /// The schema contract of stream `name`: its own, else the connection's.
    pub fn contract_of(&self, name: &str) -> SchemaContract {
        self.streams
            .iter()
            .flatten()
            .find(|s| s.name == name)
            .and_then(|s| s.schema_contract)
            .unwrap_or(self.schema_contract)
    }
}

/// How one stream of a connection is synced.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// The stream's name in the source.
    pub name: String,
    /// `incremental` or `full_refresh`; incremental when the stream has a cursor.
    #[serde(default)]
    pub sync: Option<SyncMode>,
    /// `merge`, `append`, `overwrite` or `history`; merge for incremental streams with a
    /// primary key.
    #[serde(default)]
    pub write: Option<WriteMode>,
    /// The cursor column; the source's first candidate (such as `updated_at`) by default.
    #[serde(default)]
    pub cursor: Option<String>,
    /// The primary key, overriding the discovered one.
    #[serde(default)]
    pub primary_key: Option<Vec<String>>,
    /// `evolve`, `freeze`, `discard_row` or `discard_value`: what a sync does when the
    /// schema changed; the connection's `schema_contract` when unset.
    #[serde(default)]
    pub schema_contract: Option<SchemaContract>,
    /// A JSON Schema file every record must pass (relative to `elt.toml`); failing records
    /// go to `_elt_dead_letter` with the reasons.
    #[serde(default)]
    pub json_schema_path: Option<String>,
    /// The JSON Schema read from `json_schema_path` when the project loads.
    #[serde(skip)]
    pub json_schema: Option<serde_json::Value>,
    /// The raw table's name; the normalized stream name by default.
    #[serde(default)]
    pub table: Option<String>,
    /// A column marking rows deleted in the source (deleted when not NULL and not false),
    /// such as `deleted_at` or `is_deleted`; merge and history only.
    #[serde(default)]
    pub soft_delete: Option<String>,
    /// What a merge does with a deleted row: `mark` (set `_elt_deleted_at`, the default)
    /// or `remove`.
    #[serde(default)]
    pub on_delete: Option<OnDelete>,
    /// Look for rows deleted in the source (hard deletes) by comparing primary keys, at
    /// least once every this many runs (1: every run); merge and history only. `elt sync
    /// --reconcile-deletes` does it on demand.
    #[serde(default)]
    pub reconcile_deletes_every: Option<u32>,
}

fn default_dataset() -> String {
    "raw".to_owned()
}
fn default_channel_batches() -> usize {
    4
}
fn default_max_retries() -> u32 {
    3
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFile {
    #[serde(default)]
    sources: BTreeMap<String, toml::Table>,
    #[serde(default)]
    destinations: BTreeMap<String, toml::Table>,
    #[serde(default)]
    connections: BTreeMap<String, Connection>,
}

impl Project {
    /// Reads and validates the project file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                " (create one with `elt init`, or pass --config PATH)"
            } else {
                ""
            };
            Error::config(format!("cannot read {}{hint}: {e}", path.display()))
        })?;
        let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
        Self::parse(&text, path, &dir)
    }

    /// Validates project text; `dir` anchors relative `path` options.
    pub fn parse(text: &str, path: &Path, dir: &Path) -> Result<Self> {
        let shown = path.display();
        let line_of = |e: &toml::de::Error| {
            e.span()
                .map(|span| format!(":{}", text[..span.start].matches('\n').count() + 1))
                .unwrap_or_default()
        };
        let document = toml::Deserializer::parse(text).map_err(|e| {
            Error::config(format!("{shown}{}: {}", line_of(&e), one_line(e.message())))
        })?;
        let mut file: ProjectFile = serde_path_to_error::deserialize(document).map_err(|e| {
            let at = e.path().to_string();
            let inner = e.into_inner();
            Error::config(format!(
                "{shown}{}: `{at}`: {}",
                line_of(&inner),
                one_line(inner.message())
            ))
        })?;
        let mut secrets = Vec::new();
        let sources = build_section(
            &shown,
            "sources",
            file.sources,
            dir,
            &mut secrets,
            crate::registry::source_kinds(),
            |kind| {
                let factory = crate::registry::source(kind)?;
                Some((factory.spec(), |options: &serde_json::Value| {
                    factory.build(options)
                }))
            },
        )?;
        let destinations = build_section(
            &shown,
            "destinations",
            file.destinations,
            dir,
            &mut secrets,
            crate::registry::destination_kinds(),
            |kind| {
                let factory = crate::registry::destination(kind)?;
                Some((factory.spec(), |options: &serde_json::Value| {
                    factory.build(options)
                }))
            },
        )?;
        for (name, c) in &mut file.connections {
            let at = format!("{shown}: `connections.{name}");
            for (i, stream) in c.streams.iter_mut().flatten().enumerate() {
                stream.load_json_schema(dir, &format!("{at}.streams[{i}].json_schema_path`"))?;
            }
            if !sources.contains_key(&c.source) {
                return Err(Error::config(format!(
                    "{at}.source`: no source named {:?}; defined: {}",
                    c.source,
                    names(&sources)
                )));
            }
            if !destinations.contains_key(&c.destination) {
                return Err(Error::config(format!(
                    "{at}.destination`: no destination named {:?}; defined: {}",
                    c.destination,
                    names(&destinations)
                )));
            }
            if c.dataset.is_empty() {
                return Err(Error::config(format!("{at}.dataset`: must not be empty")));
            }
            // Far below what the channel could hold, and each batch is memory.
            if !(1..=1024).contains(&c.channel_batches) {
                return Err(Error::config(format!(
                    "{at}.channel_batches` is {}; expected 1 to 1024",
                    c.channel_batches
                )));
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            connections: file.connections,
            sources,
            destinations,
            secrets,
        })
    }

    /// The connection called `name`, with its source and destination.
    pub fn connection(&self, name: &str) -> Result<(&Connection, &dyn Source, &dyn Destination)> {
        let connection = self.connections.get(name).ok_or_else(|| {
            Error::config(format!(
                "no connection named {name:?} in {}; defined: {}",
                self.path.display(),
                names(&self.connections)
            ))
        })?;
        Ok((
            connection,
            self.sources[&connection.source].as_ref(),
            self.destinations[&connection.destination].as_ref(),
        ))
    }

    /// Checks that every environment variable a secret references is set (without
    /// resolving or printing any value).
    pub fn check_environment(&self) -> Result<()> {
        for (at, secret) in &self.secrets {
            let missing = secret.missing_vars().map_err(|e| {
                Error::config(format!("{}: `{at}`: {}", self.path.display(), e.message()))
            })?;
            if let Some(missing) = missing.first() {
                return Err(Error::config(format!(
                    "{}: `{at}` references environment variable {missing}, which is not set",
                    self.path.display()
                )));
            }
        }
        Ok(())
    }

    /// Checks, without I/O, what each connector decides from its resolved secrets: the URL's
    /// scheme, the TLS mode (`prefer` with a password is refused). The error names the
    /// connector.
    pub fn check_endpoints(&self) -> Result<()> {
        let sources = self
            .sources
            .iter()
            .map(|(n, s)| ("sources", n, s.endpoint()));
        let destinations = self
            .destinations
            .iter()
            .map(|(n, d)| ("destinations", n, d.endpoint()));
        for (section, name, endpoint) in sources.chain(destinations) {
            endpoint.map_err(|e| within(&self.path.display(), section, name, e))?;
        }
        Ok(())
    }

    /// Numbers of sources, destinations and connections.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.sources.len(),
            self.destinations.len(),
            self.connections.len(),
        )
    }
}

/// Builds every connector of one section (`sources` or `destinations`): its `type`, its
/// options checked by the factory that `find` returns for that type, its secrets noted.
fn build_section<T, B>(
    shown: &impl std::fmt::Display,
    section: &str,
    tables: BTreeMap<String, toml::Table>,
    dir: &Path,
    secrets: &mut Vec<(String, elt_core::Secret)>,
    known: Vec<&str>,
    find: impl Fn(&str) -> Option<(serde_json::Value, B)>,
) -> Result<BTreeMap<String, T>>
where
    B: Fn(&serde_json::Value) -> Result<T>,
{
    let mut built = BTreeMap::new();
    for (name, table) in tables {
        let (kind, options) = split_type(shown, section, &name, table, dir)?;
        let (spec, build) =
            find(&kind).ok_or_else(|| unknown_type(shown, section, &name, &kind, known.clone()))?;
        crate::spec_secrets::collect_secrets(
            &spec,
            &options,
            &format!("{section}.{name}"),
            secrets,
        );
        let connector = build(&options).map_err(|e| within(shown, section, &name, e))?;
        built.insert(name, connector);
    }
    Ok(built)
}

fn names<V>(map: &BTreeMap<String, V>) -> String {
    if map.is_empty() {
        "none".to_owned()
    } else {
        map.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn within(shown: &impl std::fmt::Display, section: &str, name: &str, err: Error) -> Error {
    let message = err.message().trim_start_matches('`');
    let joined = if err.message().starts_with('`') {
        format!("`{section}.{name}.{message}")
    } else {
        format!("`{section}.{name}`: {message}")
    };
    Error::new(err.kind(), format!("{shown}: {joined}"))
}

fn unknown_type(
    shown: &impl std::fmt::Display,
    section: &str,
    name: &str,
    kind: &str,
    known: Vec<&str>,
) -> Error {
    Error::config(format!(
        "{shown}: `{section}.{name}.type`: unknown type {kind:?}; known types: {}",
        known.join(", ")
    ))
}

/// Takes `type` out of a connector table, converts the rest to JSON and anchors a relative
/// `path` (or `*_path`, such as `manifest_path`) at the project directory.
fn split_type(
    shown: &impl std::fmt::Display,
    section: &str,
    name: &str,
    mut table: toml::Table,
    dir: &Path,
) -> Result<(String, serde_json::Value)> {
    let kind = match table.remove("type") {
        Some(toml::Value::String(kind)) => kind,
        Some(other) => {
            return Err(Error::config(format!(
                "{shown}: `{section}.{name}.type`: expected a string, found {}",
                other.type_str()
            )));
        }
        None => {
            return Err(Error::config(format!(
                "{shown}: `{section}.{name}`: missing `type`"
            )));
        }
    };
    for (key, value) in table.iter_mut() {
        if let toml::Value::String(p) = value
            && (key == "path" || key.ends_with("_path"))
            && Path::new(p.as_str()).is_relative()
            && !dir.as_os_str().is_empty()
        {
            *p = dir.join(&*p).to_string_lossy().into_owned();
        }
    }
    let options = serde_json::to_value(table)
        .map_err(|e| Error::config(format!("{shown}: `{section}.{name}`: {e}")))?;
    Ok((kind, options))
}

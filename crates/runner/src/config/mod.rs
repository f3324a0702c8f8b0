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

use elt_core::{Destination, Error, Result, Source};
use serde::Deserialize;

mod connection;
mod expand;
mod sections;

pub use connection::{ColumnSelection, Connection, SchemaContract, StreamConfig};
use sections::{build_section, names, one_line, within};

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFile {
    /// The salt of hashed columns (`hash` on a stream): a secret, such as
    /// `"${ELT_HASH_SALT}"`.
    #[serde(default)]
    hash_salt: Option<elt_core::Secret>,
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
        let at_path = |e: serde_path_to_error::Error<toml::de::Error>| {
            let at = e.path().to_string();
            let inner = e.into_inner();
            Error::config(format!(
                "{shown}{}: `{at}`: {}",
                line_of(&inner),
                one_line(inner.message())
            ))
        };
        // Read as written (errors with line numbers) unless a connection names a variable.
        let mut file: ProjectFile = match expand::expanded_connections(text) {
            None => serde_path_to_error::deserialize(document).map_err(at_path)?,
            Some(expanded) => {
                let expanded =
                    expanded.map_err(|e| Error::config(format!("{shown}: {}", e.message())))?;
                serde_path_to_error::deserialize(toml::Value::Table(expanded)).map_err(at_path)?
            }
        };
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
        if let Some(salt) = &file.hash_salt {
            secrets.push(("hash_salt".to_owned(), salt.clone()));
        }
        for (name, c) in &mut file.connections {
            c.hash_salt = file.hash_salt.clone();
            c.name = name.clone();
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

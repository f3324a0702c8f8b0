//! The `ndjson` destination, the example of docs/writing-a-destination.md: one
//! newline-delimited JSON file per stream in `path/dataset/`, each line one record as exact
//! JSON (`elt_core::record`: decimals as strings, times ISO 8601 in UTC) plus `_elt_run_id`;
//! dead letters in `_elt_dead_letter.ndjson`. `_elt_state.json` holds each stream's state
//! and each file's committed length: a commit flushes the files, then replaces it atomically
//! (write, sync, rename), and a load first cuts each file back to its committed length, so
//! a crash or a kill at any instant leaves the old lines with the old state or the new ones
//! with the new state. `_elt.lock` keeps one writer per dataset directory.
//!
//! Limits: write mode `append` only; no run log, readable dead letters or SQL, so `elt
//! runs`, `elt dead-letter list`, data tests, schema contracts other than `evolve` and
//! delete reconciliation say so and stop.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use elt_core::arrow::record_batch::RecordBatch;
use elt_core::{
    ConfiguredStream, ConnectorConfig, DeadLetter, Destination, DestinationFactory,
    DestinationSession, Error, Message, Result, RunInfo, StateMap, StreamState, WriteMode,
    WriteSummary,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::driver::{CommitPolicy, StreamWriter, drive};

/// A directory of newline-delimited JSON files: the config, and the destination.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NdjsonConfig {
    /// The directory; created when missing. A relative path is relative to `elt.toml`.
    pub path: String,
    /// Commit at a checkpoint once this many rows are uncommitted.
    #[serde(default = "default_commit_rows")]
    pub commit_rows: u64,
}

fn default_commit_rows() -> u64 {
    100_000
}

impl ConnectorConfig for NdjsonConfig {
    fn validate(&self) -> Result<()> {
        if self.path.trim().is_empty() {
            return Err(Error::config("`path` must name a directory"));
        }
        if self.commit_rows == 0 {
            return Err(Error::config("`commit_rows` must be at least 1"));
        }
        Ok(())
    }
}

/// Registers the `ndjson` destination type.
pub fn factory() -> DestinationFactory {
    DestinationFactory::new(
        "ndjson",
        "Newline-delimited JSON files, one per stream, committed exactly once",
        |config: NdjsonConfig| Ok(Box::new(config)),
    )
}

/// A file-system error, with the path and what was being done.
fn io_error(doing: &str, path: &Path, e: std::io::Error) -> Error {
    Error::config(format!("{doing} {}: {e}", path.display()))
}

#[async_trait]
impl Destination for NdjsonConfig {
    fn endpoint(&self) -> Result<Option<String>> {
        Ok(Some(self.path.clone()))
    }

    async fn check(&self) -> Result<()> {
        let probe = Path::new(&self.path).join(".elt_check");
        let written =
            std::fs::create_dir_all(&self.path).and_then(|()| std::fs::write(&probe, b""));
        (written.and_then(|()| std::fs::remove_file(&probe)))
            .map_err(|e| io_error("cannot write", &probe, e))
    }

    async fn open(&self, connection: &str, dataset: &str) -> Result<Box<dyn DestinationSession>> {
        let dir = Path::new(&self.path).join(dataset);
        std::fs::create_dir_all(&dir).map_err(|e| io_error("cannot create", &dir, e))?;
        let lock_path = dir.join("_elt.lock");
        let lock = File::create(&lock_path).map_err(|e| io_error("cannot open", &lock_path, e))?;
        if lock.try_lock().is_err() {
            return Err(Error::locked(format!(
                "another run is writing {}; wait for it or pass --wait-for-lock SECS",
                dir.display()
            )));
        }
        let store = Store::load(&dir)?;
        Ok(Box::new(NdjsonSession {
            dir,
            connection: connection.to_owned(),
            policy: CommitPolicy {
                commit_rows: self.commit_rows,
                commit_interval: Duration::from_secs(60),
            },
            store,
            _lock: lock,
        }))
    }
}

/// What `_elt_state.json` holds: committed file lengths, and states by connection.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Store {
    files: BTreeMap<String, u64>,
    states: BTreeMap<String, BTreeMap<String, Value>>,
}

impl Store {
    /// The states of `connection`'s streams.
    fn of(&mut self, connection: &str) -> &mut BTreeMap<String, Value> {
        self.states.entry(connection.to_owned()).or_default()
    }

    fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("_elt_state.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::permanent(format!("{} is damaged: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(io_error("cannot read", &path, e)),
        }
    }

    /// Replaces the file atomically: a crash leaves the old one or the new one.
    fn save(&self, dir: &Path) -> Result<()> {
        let (path, temporary) = (dir.join("_elt_state.json"), dir.join("_elt_state.json.new"));
        let text = serde_json::to_vec_pretty(self).map_err(|e| Error::bug(e.to_string()))?;
        let mut file =
            File::create(&temporary).map_err(|e| io_error("cannot write", &temporary, e))?;
        file.write_all(&text)
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::rename(&temporary, &path))
            .and_then(|()| File::open(dir)?.sync_all())
            .map_err(|e| io_error("cannot commit", &path, e))
    }
}

struct NdjsonSession {
    dir: PathBuf,
    connection: String,
    policy: CommitPolicy,
    store: Store,
    _lock: File,
}

#[async_trait]
impl DestinationSession for NdjsonSession {
    async fn state(&mut self) -> Result<StateMap> {
        let states = self.store.states.get(&self.connection).cloned();
        let parse = |(stream, state): (String, Value)| {
            Ok((stream, StreamState::from_json(&state.to_string())?))
        };
        states.unwrap_or_default().into_iter().map(parse).collect()
    }

    async fn write(
        &mut self,
        run: &RunInfo,
        stream: &ConfiguredStream,
        messages: mpsc::Receiver<Message>,
    ) -> (WriteSummary, Result<()>) {
        if stream.write_mode != WriteMode::Append {
            let name = stream.name();
            let only = format!("stream {name}: ndjson only appends; set `write = \"append\"`");
            return (WriteSummary::default(), Err(Error::config(only)));
        }
        let policy = self.policy;
        let mut writer = NdjsonWriter {
            session: self,
            run,
            stream,
            files: BTreeMap::new(),
            state: None,
        };
        drive(&mut writer, stream, policy, messages).await
    }

    async fn reset_state(&mut self, stream: Option<&str>) -> Result<usize> {
        let states = self.store.of(&self.connection);
        let removed = match stream {
            Some(name) => usize::from(states.remove(name).is_some()),
            None => std::mem::take(states).len(),
        };
        self.store.save(&self.dir)?;
        Ok(removed)
    }
}

/// One stream's load: the files it appended to since the last commit, and its state.
struct NdjsonWriter<'a> {
    session: &'a mut NdjsonSession,
    run: &'a RunInfo,
    stream: &'a ConfiguredStream,
    /// Open files by name, each with its uncommitted length.
    files: BTreeMap<String, (File, u64)>,
    state: Option<StreamState>,
}

impl NdjsonWriter<'_> {
    /// Appends `lines` to file `name`, opened at its committed length on first use.
    fn append(&mut self, name: &str, lines: &[Value]) -> Result<()> {
        let path = self.session.dir.join(name);
        if !self.files.contains_key(name) {
            let committed = self.session.store.files.get(name).copied().unwrap_or(0);
            let file = OpenOptions::new().create(true).append(true).open(&path);
            let file = file
                .and_then(|f| f.set_len(committed).map(|()| f))
                .map_err(|e| io_error("cannot open", &path, e))?;
            self.files.insert(name.to_owned(), (file, committed));
        }
        let mut text = Vec::new();
        for line in lines {
            serde_json::to_writer(&mut text, line).map_err(|e| Error::bug(e.to_string()))?;
            text.push(b'\n');
        }
        let (file, length) = self.files.get_mut(name).expect("opened above");
        *length += text.len() as u64;
        file.write_all(&text)
            .map_err(|e| io_error("cannot write", &path, e))
    }
}

#[async_trait]
impl StreamWriter for NdjsonWriter<'_> {
    async fn stage(&mut self, batch: RecordBatch) -> Result<u64> {
        let mut records = elt_core::record::encode(&batch)?;
        for record in &mut records {
            record["_elt_run_id"] = json!(self.run.run_id);
        }
        self.append(&format!("{}.ndjson", self.stream.table), &records)?;
        Ok(records.len() as u64)
    }

    async fn write_dead_letters(&mut self, dead: &[DeadLetter], replayed: &[String]) -> Result<()> {
        if !replayed.is_empty() {
            return Err(Error::config("ndjson cannot replay dead letters"));
        }
        let (run, stream) = (&self.run.run_id, self.stream.name());
        let lines: Vec<Value> = dead
            .iter()
            .map(|d| {
                let record = serde_json::from_str(&d.record).unwrap_or(json!(d.record));
                json!({ "run_id": run, "stream": stream, "reason": d.reason, "record": record })
            })
            .collect();
        self.append("_elt_dead_letter.ndjson", &lines)
    }

    async fn write_state(&mut self, state: &StreamState) -> Result<()> {
        self.state = Some(state.clone());
        Ok(())
    }

    /// Flushes every file to disk, then records their lengths and the state in one
    /// atomic replacement of `_elt_state.json`.
    async fn commit(&mut self) -> Result<()> {
        let mut store = self.session.store.clone();
        for (name, (file, length)) in &self.files {
            let path = self.session.dir.join(name);
            file.sync_data()
                .map_err(|e| io_error("cannot flush", &path, e))?;
            store.files.insert(name.clone(), *length);
        }
        if let Some(state) = self.state.take() {
            let states = store.of(&self.session.connection);
            states.insert(self.stream.name().to_owned(), json!(state));
        }
        elt_core::failpoint::hit("ndjson.before_commit");
        store.save(&self.session.dir)?;
        self.session.store = store;
        Ok(())
    }

    /// Cuts every file back to its committed length.
    async fn rollback(&mut self) -> Result<()> {
        self.state = None;
        for (name, (file, length)) in &mut self.files {
            let committed = self.session.store.files.get(name).copied().unwrap_or(0);
            let path = self.session.dir.join(name);
            file.set_len(committed)
                .map_err(|e| io_error("cannot roll back", &path, e))?;
            *length = committed;
        }
        Ok(())
    }
}

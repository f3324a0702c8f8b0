//! Reading one stream: pages in order, records filtered past the watermark, a batch and a
//! checkpoint after every page.
//!
//! State: `cursor` and `key` are the watermark, the keyset position `(cursor, primary
//! key)` of the newest record of the last complete sync; only the final checkpoint of a
//! sync, after a complete pass, moves it. A rerun never resumes at a saved page: records
//! that change between a kill and the rerun move in the list, and a page position would
//! skip the ones that slid back. Instead:
//! - a stream whose manifest says `sorted_by_cursor` checkpoints `extra.resume` after
//!   every page (`from`: the newest committed cursor; `seen`: the keys committed at it, up
//!   to 1,000; `newest`: the newest position), and a rerun asks again from the first page
//!   for records from `from` on, inclusive, skipping only the `seen` keys, so records that
//!   share that cursor across a page boundary are neither lost nor repeated (past 1,000
//!   they are all read again, and the merge absorbs them);
//! - any other stream keeps its watermark in mid-sync checkpoints, and a rerun reads its
//!   window again from the first page (the merge absorbs what the killed run loaded).
//!
//! Records at or before the watermark are dropped on our side too (the APIs' `since`
//! parameters are inclusive), so a rerun of a finished sync reads nothing new;
//! `lookback_secs` widens that window instead.
//!
//! A record with a value that does not fit the stream's schema goes to the dead-letter
//! table with the reason; it moves the watermark like any record read.
//!
//! A child stream reads its parent's records (every page, not incremental) and makes a
//! request chain per parent; an incremental one checkpoints only at its end, so a rerun
//! reads it again whole.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use elt_core::batch::{FlushPolicy, JsonBatcher};
use elt_core::{ConfiguredStream, Emitter, Error, Result, StreamState, SyncMode};
use serde_json::{Value, json};

use super::client::Client;
use super::config::HttpConfig;
use super::floor::{
    Floor, MAX_SEEN, Position, compare, compare_position, lookback, position_json, position_of,
};
use super::manifest::{Manifest, StreamSpec};
use super::paginate::{Pager, first_url};
use crate::json_rows::Normalizer;

/// Reads `stream` into `out`.
pub async fn read(
    client: &Client,
    manifest: &Manifest,
    config: &HttpConfig,
    stream: &ConfiguredStream,
    state: Option<StreamState>,
    out: &mut Emitter,
) -> Result<()> {
    let spec = manifest.stream(stream.name())?;
    let incremental = stream.sync_mode == SyncMode::Incremental && spec.cursor.is_some();
    let saved = state.filter(|_| incremental);
    let watermark = saved.as_ref().and_then(|s| {
        Some(Position {
            cursor: s.cursor.clone()?,
            key: s.key.clone().unwrap_or_default(),
        })
    });
    // Only a sorted stream resumes (`from` is new; a `newest` alone is an older state's).
    let resume = saved
        .as_ref()
        .filter(|_| spec.sorted_by_cursor)
        .and_then(|s| s.extra.get("resume"));
    let resume_from = resume
        .and_then(|r| r.get("from").or_else(|| r["newest"].get("cursor")))
        .filter(|v| !v.is_null())
        .cloned();
    // The keys the killed run committed at that cursor (absent when there were too many).
    let seen: Option<Vec<Vec<Value>>> = resume
        .and_then(|r| r.get("seen")?.as_array())
        .map(|keys| keys.iter().filter_map(|k| k.as_array().cloned()).collect());
    let floor = match (resume_from, &watermark, &config.start) {
        _ if !incremental => Floor::All,
        (Some(from), _, _) => Floor::Resume {
            from,
            seen: seen.as_ref().map(|keys| {
                keys.iter()
                    .map(|k| Value::Array(k.clone()).to_string())
                    .collect()
            }),
        },
        (None, Some(w), _) if config.lookback_secs > 0 => {
            Floor::From(Value::String(lookback(&w.cursor, config.lookback_secs)))
        }
        (None, Some(w), _) => Floor::After(w.clone()),
        (None, None, Some(start)) => Floor::From(Value::String(start.clone())),
        (None, None, None) => Floor::All,
    };
    let mut reader = Reader {
        client,
        config,
        spec,
        stream,
        incremental,
        base: saved.clone().map(without_resume),
        watermark,
        floor,
        newest: resume.and_then(|r| position_of(&r["newest"])),
        // What the killed run committed at its newest cursor stays seen.
        at_newest: seen.unwrap_or_default(),
        normalizer: Normalizer::new(out.schema().clone(), "the manifest's schema"),
        batch_rows: config.batch_rows,
        left_out: stream.left_out_columns(),
    };
    let result = match &spec.parent {
        Some(_) => reader.children(manifest, out).await,
        None => reader.pages(out).await,
    };
    result.map_err(|e| e.in_stream(stream.name()))?;
    let last = reader.newest.clone().or(reader.watermark.clone());
    match last {
        Some(p) => out.checkpoint(StreamState::at(p.cursor, p.key)).await,
        None if !incremental => out.checkpoint(StreamState::empty()).await,
        None => Ok(()),
    }
}

struct Reader<'a> {
    client: &'a Client,
    config: &'a HttpConfig,
    spec: &'a StreamSpec,
    stream: &'a ConfiguredStream,
    incremental: bool,
    /// The saved state without its resume point: what a mid-sync checkpoint keeps.
    base: Option<StreamState>,
    watermark: Option<Position>,
    floor: Floor,
    newest: Option<Position>,
    /// The keys of the records read at the newest cursor (up to one past [`MAX_SEEN`]).
    at_newest: Vec<Vec<Value>>,
    normalizer: Normalizer,
    batch_rows: usize,
    /// The fields of the columns the stream leaves out (`columns`).
    left_out: Vec<String>,
}

impl Reader<'_> {
    /// `record` without the fields of the columns the stream leaves out (`columns`), so
    /// their values are neither checked nor kept, not even in a dead letter.
    fn without_left_out(&self, mut record: Value) -> Value {
        if let Value::Object(fields) = &mut record {
            for name in &self.left_out {
                fields.remove(name);
            }
        }
        record
    }

    /// The value of the cursor parameter (the API's filters are inclusive).
    fn since(&self) -> Option<String> {
        self.floor.since()
    }

    /// Whether an incremental read keeps a record at `position`.
    fn keeps(&self, position: &Position) -> bool {
        self.floor.keeps(position)
    }

    /// Moves the newest position to `p` when it is newer, keeping the keys of the records
    /// read at the newest cursor (a resume point's `seen`).
    fn advance(&mut self, p: Position) {
        let order = self
            .newest
            .as_ref()
            .map_or(Ordering::Greater, |n| compare(&p.cursor, &n.cursor));
        match order {
            Ordering::Greater => {
                self.at_newest = vec![p.key.clone()];
                self.newest = Some(p);
            }
            Ordering::Equal => {
                if self.at_newest.len() <= MAX_SEEN {
                    self.at_newest.push(p.key.clone());
                }
                if self
                    .newest
                    .as_ref()
                    .is_some_and(|n| compare_position(&p, n) == Ordering::Greater)
                {
                    self.newest = Some(p);
                }
            }
            Ordering::Less => {}
        }
    }

    /// The checkpoint after a page that is not the last: a sorted stream's resume point,
    /// else the saved watermark unchanged (a full refresh: an empty state).
    fn mid_checkpoint(&self) -> StreamState {
        if !self.incremental {
            return StreamState::empty();
        }
        let mut state = self.base.clone().unwrap_or_else(StreamState::empty);
        if self.spec.sorted_by_cursor
            && let Some(newest) = &self.newest
        {
            let mut resume = json!({ "from": newest.cursor, "newest": position_json(newest) });
            if self.at_newest.len() <= MAX_SEEN {
                resume["seen"] = Value::Array(
                    self.at_newest
                        .iter()
                        .map(|k| Value::Array(k.clone()))
                        .collect(),
                );
            }
            state.extra.insert("resume".into(), resume);
        }
        state
    }

    fn position(&self, record: &Value) -> Option<Position> {
        let cursor = record.get(self.spec.cursor.as_deref()?)?.clone();
        if cursor.is_null() {
            return None;
        }
        let key = self
            .stream
            .primary_key
            .iter()
            .map(|k| record.get(k).cloned().unwrap_or(Value::Null))
            .collect();
        Some(Position { cursor, key })
    }

    /// Loads one page's records: rows that fit the schema go on, records with a value that
    /// does not fit go to the dead-letter table with the reason.
    async fn load(
        &mut self,
        records: Vec<Value>,
        added: &[(&str, &Value)],
        out: &mut Emitter,
    ) -> Result<()> {
        let mut batcher =
            JsonBatcher::new(out.schema().clone(), FlushPolicy::rows(self.batch_rows))?;
        let mut rows = Vec::with_capacity(records.len());
        let mut dead = Vec::new();
        let mut nulls = 0;
        for record in records {
            let position = self.position(&record);
            match &position {
                Some(p) if !self.keeps(p) => continue,
                None if self.incremental => nulls += 1,
                _ => {}
            }
            // Dead letters move the watermark too: they were read, and are kept.
            if let Some(p) = position {
                self.advance(p);
            }
            match self.normalizer.row(self.without_left_out(record), added) {
                Ok(row) => rows.push(row),
                Err(letter) => dead.push(letter),
            }
        }
        if nulls > 0 {
            out.note(format!(
                "{nulls} records had no {} (the cursor); they were loaded but cannot move the watermark",
                self.spec.cursor.as_deref().unwrap_or("")
            ));
        }
        out.dead_letters(dead).await?;
        for batch in batcher.push_values(&rows)? {
            out.batch(batch).await?;
        }
        if let Some(batch) = batcher.flush()? {
            out.batch(batch).await?;
        }
        Ok(())
    }

    /// A top-level stream: one request chain from the first page, a checkpoint after
    /// every page.
    async fn pages(&mut self, out: &mut Emitter) -> Result<()> {
        let first = first_url(
            self.client.base(),
            self.spec,
            &self.config.vars,
            self.since().as_deref(),
        )?;
        let mut pager = Pager::new(self.spec, first);
        while let Some(records) = pager.fetch(self.client).await? {
            self.load(records, &[], out).await?;
            if pager.pending().is_none() {
                break;
            }
            out.checkpoint(self.mid_checkpoint()).await?;
        }
        Ok(())
    }

    /// A child stream: the parent's records, then a request chain per parent record.
    async fn children(&mut self, manifest: &Manifest, out: &mut Emitter) -> Result<()> {
        let parent = self
            .spec
            .parent
            .as_ref()
            .ok_or_else(|| Error::bug("no parent"))?;
        let parent_spec = manifest.stream(&parent.stream)?;
        let mut keys = Vec::new();
        let first = first_url(self.client.base(), parent_spec, &self.config.vars, None)?;
        let mut pager = Pager::new(parent_spec, first);
        while let Some(records) = pager.fetch(self.client).await? {
            for record in records {
                match record.get(&parent.field) {
                    Some(value) if !value.is_null() => keys.push(value.clone()),
                    _ => {
                        return Err(Error::data(format!(
                            "a record of parent stream {} has no {} to fill {{{}}}",
                            parent.stream, parent.field, parent.var
                        )));
                    }
                }
            }
        }
        let since = self.since();
        for key in keys {
            let mut vars: BTreeMap<String, String> = self.config.vars.clone();
            let text = match &key {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            vars.insert(parent.var.clone(), text);
            let first = first_url(self.client.base(), self.spec, &vars, since.as_deref())?;
            let mut pager = Pager::new(self.spec, first);
            while let Some(records) = pager.fetch(self.client).await? {
                self.load(records, &[(parent.var.as_str(), &key)], out)
                    .await?;
            }
            if !self.incremental {
                out.checkpoint(StreamState::empty()).await?;
            }
        }
        Ok(())
    }
}

fn without_resume(mut state: StreamState) -> StreamState {
    state.extra.remove("resume");
    state
}

//! Reading one stream: pages in order, records filtered past the watermark, a batch and a
//! checkpoint after every page.
//!
//! State: `cursor` and `key` are the watermark, the keyset position `(cursor, primary
//! key)` of the newest record of the last complete sync. Mid-sync checkpoints keep that
//! watermark and add `extra.resume`: the next page's URL and the newest position seen so
//! far; a rerun after a failure continues from that page, and the final checkpoint of a
//! sync moves the watermark and drops `resume`. Records at or before the watermark are
//! dropped on our side too (the APIs' `since` parameters are inclusive), so a rerun of a
//! finished sync reads nothing new; `lookback_secs` widens that window instead.
//!
//! A record with a value that does not fit the stream's schema goes to the dead-letter
//! table with the reason; it moves the watermark like any record read.
//!
//! A child stream reads its parent's records (every page, not incremental) and makes a
//! request chain per parent; it checkpoints only at its end.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use elt_core::batch::{FlushPolicy, JsonBatcher};
use elt_core::{ConfiguredStream, Emitter, Error, Result, StreamState, SyncMode};
use reqwest::Url;
use serde_json::{Value, json};

use super::client::Client;
use super::config::HttpConfig;
use super::manifest::{Manifest, StreamSpec};
use super::paginate::{Pager, first_url};
use super::records::Normalizer;

/// A keyset position: a record's cursor and primary key.
#[derive(Debug, Clone)]
struct Position {
    cursor: Value,
    key: Vec<Value>,
}

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
    let mut reader = Reader {
        client,
        config,
        spec,
        stream,
        incremental,
        watermark,
        newest: None,
        normalizer: Normalizer::new(out.schema().clone()),
        batch_rows: config.batch_rows,
    };
    if let Some(resume) = saved.as_ref().and_then(|s| s.extra.get("resume")) {
        reader.newest = position_of(&resume["newest"]);
    }
    let result = match &spec.parent {
        Some(_) => reader.children(manifest, out).await,
        None => reader.pages(saved.as_ref(), out).await,
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
    watermark: Option<Position>,
    newest: Option<Position>,
    normalizer: Normalizer,
    batch_rows: usize,
}

impl Reader<'_> {
    /// The value of the cursor parameter: the watermark (less `lookback_secs`), else
    /// `start`.
    fn since(&self) -> Option<String> {
        if !self.incremental {
            return None;
        }
        match &self.watermark {
            Some(w) => Some(lookback(&w.cursor, self.config.lookback_secs)),
            None => self.config.start.clone(),
        }
    }

    /// Whether an incremental read keeps a record at `position`.
    fn keeps(&self, position: &Position) -> bool {
        if !self.incremental {
            return true;
        }
        match (&self.watermark, &self.config.start) {
            (Some(w), _) if self.config.lookback_secs > 0 => {
                let from = Value::String(lookback(&w.cursor, self.config.lookback_secs));
                compare(&position.cursor, &from) != Ordering::Less
            }
            (Some(w), _) => compare_position(position, w) == Ordering::Greater,
            (None, Some(start)) => {
                compare(&position.cursor, &Value::String(start.clone())) != Ordering::Less
            }
            (None, None) => true,
        }
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
            if let Some(p) = position
                && self
                    .newest
                    .as_ref()
                    .is_none_or(|n| compare_position(&p, n) == Ordering::Greater)
            {
                self.newest = Some(p);
            }
            match self.normalizer.row(record, added) {
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

    /// A top-level stream: one request chain, resumable at every page.
    async fn pages(&mut self, saved: Option<&StreamState>, out: &mut Emitter) -> Result<()> {
        let resume = saved
            .and_then(|s| s.extra.get("resume"))
            .and_then(|r| r["url"].as_str())
            .map(|u| {
                Url::parse(u).map_err(|e| {
                    Error::config(format!("the saved page URL is not a URL ({e}); reset the stream with `elt state reset`"))
                })
            })
            .transpose()?;
        let first = match resume {
            Some(url) => {
                self.client.check_target(&url, "the saved page")?;
                url
            }
            None => first_url(
                self.client.base(),
                self.spec,
                &self.config.vars,
                self.since().as_deref(),
            )?,
        };
        let mut pager = Pager::new(self.spec, first);
        while let Some(records) = pager.fetch(self.client).await? {
            self.load(records, &[], out).await?;
            let Some(next) = pager.pending() else {
                break;
            };
            let checkpoint = if self.incremental {
                let mut state = saved.cloned().unwrap_or_else(StreamState::empty);
                state.extra.insert(
                    "resume".into(),
                    json!({ "url": next.as_str(), "newest": self.newest.as_ref().map(position_json) }),
                );
                state
            } else {
                StreamState::empty()
            };
            out.checkpoint(checkpoint).await?;
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

fn position_json(p: &Position) -> Value {
    json!({ "cursor": p.cursor, "key": p.key })
}

fn position_of(value: &Value) -> Option<Position> {
    Some(Position {
        cursor: value.get("cursor").filter(|c| !c.is_null())?.clone(),
        key: value["key"].as_array().cloned().unwrap_or_default(),
    })
}

/// `cursor` less `secs` seconds when it is an RFC 3339 time; itself otherwise.
fn lookback(cursor: &Value, secs: u64) -> String {
    let text = match cursor {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if secs == 0 {
        return text;
    }
    match chrono::DateTime::parse_from_rfc3339(&text) {
        Ok(t) => chrono::Duration::try_seconds(secs as i64)
            .and_then(|d| t.to_utc().checked_sub_signed(d))
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        Err(_) => text,
    }
}

/// Orders two cursor or key values: instants when both are RFC 3339 times, numbers when
/// both are numbers, text otherwise.
fn compare(a: &Value, b: &Value) -> Ordering {
    if let (Value::Number(x), Value::Number(y)) = (a, b) {
        return match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => x
                .as_f64()
                .partial_cmp(&y.as_f64())
                .unwrap_or(Ordering::Equal),
        };
    }
    if let (Value::String(x), Value::String(y)) = (a, b) {
        if let (Ok(x), Ok(y)) = (
            chrono::DateTime::parse_from_rfc3339(x),
            chrono::DateTime::parse_from_rfc3339(y),
        ) {
            return x.cmp(&y);
        }
        return x.cmp(y);
    }
    a.to_string().cmp(&b.to_string())
}

fn compare_position(a: &Position, b: &Position) -> Ordering {
    compare(&a.cursor, &b.cursor).then_with(|| {
        a.key
            .iter()
            .zip(&b.key)
            .map(|(x, y)| compare(x, y))
            .find(|o| *o != Ordering::Equal)
            .unwrap_or(Ordering::Equal)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_by_time_then_key() {
        let p = |c: &str, k: i64| Position {
            cursor: json!(c),
            key: vec![json!(k)],
        };
        assert_eq!(
            compare_position(
                &p("2024-01-01T00:00:00Z", 2),
                &p("2024-01-01T01:00:00+01:00", 1)
            ),
            Ordering::Greater
        );
        assert_eq!(
            compare_position(&p("2024-01-01T00:00:01Z", 1), &p("2024-01-01T00:00:00Z", 9)),
            Ordering::Greater
        );
        assert_eq!(compare(&json!(10), &json!(9)), Ordering::Greater);
        assert_eq!(
            lookback(&json!("2024-01-01T00:00:00Z"), 60),
            "2023-12-31T23:59:00Z"
        );
    }
}

//! The pages of `elt ui`, as HTML from what `data.rs` read: the overview (every
//! connection's streams and their freshness), a connection's runs (charts, last errors,
//! state and watermarks), its data tests over time, its dead letters, its schema plan.
//! Every value is escaped; no page reads anything itself.

use elt_core::capability::{RecordedTest, StoredDeadLetter};
use elt_core::{Result, RunRecord, RunStatus, StateMap};
use elt_runner::plan::StreamPlan;

use super::data::Freshness;
use super::layout::{self, Bar, ago, bars, button, error, esc, number, page, segment, strip, time};

/// The overview: per connection, each stream's last run and freshness.
pub fn overview(connections: &[(String, Result<Vec<Freshness>>)], now_us: i64) -> String {
    let mut body = String::from(
        "<table id=\"streams\"><tr><th>connection</th><th>stream</th><th>last run</th>\
         <th>last success</th><th>freshness</th><th>rows loaded (last run)</th><th>watermark</th></tr>",
    );
    let mut failures = String::new();
    for (connection, streams) in connections {
        let link = format!(
            "<a href=\"/connections/{}\">{}</a>",
            segment(connection),
            esc(connection)
        );
        let streams = match streams {
            Ok(streams) => streams,
            Err(e) => {
                failures.push_str(&error(&format!("connection {connection}"), e));
                continue;
            }
        };
        if streams.is_empty() {
            body.push_str(&format!(
                "<tr><td>{link}</td><td colspan=\"6\" class=\"muted\">no runs recorded yet</td></tr>"
            ));
        }
        for f in streams {
            let (since, class) = match f.last_success_us {
                Some(us) => {
                    let secs = (now_us - us).max(0) as f64 / 1e6;
                    let class = match f.limit_hours {
                        Some(h) if secs > h * 3600.0 => "stale",
                        Some(_) => "fresh",
                        None => "unknown",
                    };
                    (format!("{} ago", ago(secs)), class)
                }
                None => ("never".to_owned(), "stale"),
            };
            let limit = f
                .limit_hours
                .map(|h| format!(" (limit {h} h)"))
                .unwrap_or_default();
            body.push_str(&format!(
                "<tr data-connection=\"{c}\" data-stream=\"{s}\"><td>{link}</td><td>{s}</td>\
                 <td class=\"status {st}\">{st}</td><td>{when}</td><td class=\"{class}\">{since}{limit}</td>\
                 <td class=\"num rows-loaded\">{rows}</td><td><code>{wm}</code></td></tr>",
                c = esc(connection),
                s = esc(&f.stream),
                st = f.last.status.as_str(),
                when = f.last_success_us.map(time).unwrap_or_default(),
                rows = number(f.last.rows_loaded as f64),
                wm = esc(f.last.watermark_after.as_deref().unwrap_or("-")),
            ));
        }
    }
    body.push_str("</table>");
    body.push_str(&failures);
    page("Connections", None, &body)
}

/// The runs of one run id (its streams), in the order `runs` lists them (newest first).
fn by_run(runs: &[RunRecord]) -> Vec<(&str, Vec<&RunRecord>)> {
    let mut out: Vec<(&str, Vec<&RunRecord>)> = Vec::new();
    for r in runs {
        match out.last_mut() {
            Some((id, streams)) if *id == r.run_id => streams.push(r),
            _ => out.push((&r.run_id, vec![r])),
        }
    }
    out
}

/// The worst status of a run's streams, as a chart class.
fn run_class(streams: &[&RunRecord]) -> &'static str {
    let has = |s: RunStatus| streams.iter().any(|r| r.status == s);
    match () {
        _ if has(RunStatus::Failed) => "failed",
        _ if has(RunStatus::Abandoned) => "abandoned",
        _ if has(RunStatus::Running) => "running",
        _ => "ok",
    }
}

/// A connection's runs: charts, the last error of each failing stream, runs, state.
pub fn connection(
    name: &str,
    runs: &Result<Vec<RunRecord>>,
    state: &Result<StateMap>,
    csrf: &str,
    flash: Option<&str>,
) -> String {
    let mut body = layout::flash(flash);
    let base = format!("/connections/{}", segment(name));
    body.push_str(&button(&format!("{base}/sync"), csrf, "Sync now", &[]));
    match runs {
        Err(e) => body.push_str(&error("the runs", e)),
        Ok(runs) => body.push_str(&run_sections(runs)),
    }
    body.push_str("<h2>State and watermarks</h2>");
    match state {
        Err(e) => body.push_str(&error("the state", e)),
        Ok(states) if states.is_empty() => body.push_str("<p class=\"muted\">no saved state</p>"),
        Ok(states) => {
            body.push_str(
                "<table id=\"state\"><tr><th>stream</th><th>watermark</th><th>state</th></tr>",
            );
            for (stream, s) in states {
                body.push_str(&format!(
                    "<tr><td>{}</td><td><code>{}</code></td><td><pre>{}</pre></td></tr>",
                    esc(stream),
                    esc(s.watermark().as_deref().unwrap_or("-")),
                    esc(&s.to_json())
                ));
            }
            body.push_str("</table>");
        }
    }
    page(&format!("Connection {name}"), Some(name), &body)
}

fn run_sections(runs: &[RunRecord]) -> String {
    let mut body = String::new();
    let grouped = by_run(runs);
    let chart: Vec<&(&str, Vec<&RunRecord>)> = grouped.iter().rev().collect();
    let rows: Vec<Bar> = chart
        .iter()
        .map(|(id, streams)| {
            let loaded: u64 = streams.iter().map(|r| r.rows_loaded).sum();
            Bar {
                value: loaded as f64,
                label: format!("run {id}: {loaded} rows loaded"),
                class: run_class(streams),
            }
        })
        .collect();
    let durations: Vec<Bar> = chart
        .iter()
        .map(|(id, streams)| {
            let start = streams.iter().map(|r| r.started_at_us).min().unwrap_or(0);
            let end = streams
                .iter()
                .filter_map(|r| r.ended_at_us)
                .max()
                .unwrap_or(start);
            let secs = (end - start).max(0) as f64 / 1e6;
            Bar {
                value: secs,
                label: format!("run {id}: {secs:.2} s"),
                class: run_class(streams),
            }
        })
        .collect();
    body.push_str(&bars("Rows loaded per run", "rows", &rows));
    body.push_str(&bars("Duration per run", "s", &durations));
    // The last error of each stream whose newest run failed.
    let mut seen = Vec::new();
    let mut errors = String::new();
    for r in runs {
        if seen.contains(&r.stream.as_str()) {
            continue;
        }
        seen.push(r.stream.as_str());
        if let (RunStatus::Failed | RunStatus::Abandoned, Some(e)) = (r.status, &r.error) {
            errors.push_str(&format!(
                "<div class=\"last-error\" data-stream=\"{s}\"><h3>{s} (run {id}, {when})</h3>\
                 <p class=\"error\">{e}</p></div>",
                s = esc(&r.stream),
                id = esc(&r.run_id),
                when = time(r.started_at_us),
                e = esc(e)
            ));
        }
    }
    if !errors.is_empty() {
        body.push_str("<h2>Failing streams</h2>");
        body.push_str(&errors);
    }
    body.push_str(
        "<h2>Runs</h2><table id=\"runs\"><tr><th>run</th><th>stream</th><th>status</th>\
         <th>started</th><th>seconds</th><th>read</th><th>loaded</th><th>watermark</th><th>error</th></tr>",
    );
    if runs.is_empty() {
        body.push_str("<tr><td colspan=\"9\" class=\"muted\">no runs recorded yet</td></tr>");
    }
    for r in runs {
        let secs = r
            .ended_at_us
            .map(|end| format!("{:.2}", (end - r.started_at_us).max(0) as f64 / 1e6))
            .unwrap_or_default();
        body.push_str(&format!(
            "<tr data-run=\"{id}\" data-stream=\"{s}\"><td><code>{id}</code></td><td>{s}</td>\
             <td class=\"status {st}\">{st}</td><td>{when}</td><td class=\"num\">{secs}</td>\
             <td class=\"num rows-read\">{read}</td><td class=\"num rows-loaded\">{loaded}</td>\
             <td><code>{wm}</code></td><td>{e}</td></tr>",
            id = esc(&r.run_id),
            s = esc(&r.stream),
            st = r.status.as_str(),
            when = time(r.started_at_us),
            read = r.rows_read,
            loaded = r.rows_loaded,
            wm = esc(r.watermark_after.as_deref().unwrap_or("-")),
            e = esc(r.error.as_deref().unwrap_or("")),
        ));
    }
    body.push_str("</table>");
    body
}

/// A connection's data test results: a strip per test (oldest first), then the newest.
pub fn tests(name: &str, results: &Result<Vec<RecordedTest>>) -> String {
    let title = format!("Tests of {name}");
    let results = match results {
        Err(e) => return page(&title, Some(name), &error("the test results", e)),
        Ok(results) => results,
    };
    let mut body = String::from("<h2>Over time</h2>");
    if results.is_empty() {
        body.push_str("<p class=\"muted\">no data test results recorded yet (`elt test`, or `test_after_sync`)</p>");
    }
    let mut keys: Vec<(&str, &str)> = results
        .iter()
        .map(|t| (t.result.stream.as_str(), t.result.test.as_str()))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    body.push_str("<table id=\"test-history\"><tr><th>stream</th><th>test</th><th>results, oldest first</th></tr>");
    for (stream, test) in keys {
        let history: Vec<(bool, String)> = results
            .iter()
            .rev()
            .filter(|t| t.result.stream == stream && t.result.test == test)
            .map(|t| {
                (
                    t.result.passed,
                    format!("{} run {}", time(t.tested_at_us), t.run_id),
                )
            })
            .collect();
        body.push_str(&format!(
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            esc(stream),
            esc(test),
            strip(&history)
        ));
    }
    body.push_str(
        "</table><h2>Newest results</h2><table id=\"tests\"><tr><th>tested</th><th>stream</th>\
         <th>test</th><th>severity</th><th>result</th><th>failing rows</th><th>observed</th><th>detail</th></tr>",
    );
    for t in results {
        let r = &t.result;
        let result = if r.passed { "passed" } else { "failed" };
        let class = if r.passed { "succeeded" } else { "failed" };
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td>\
             <td class=\"status {class}\">{result}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            time(t.tested_at_us),
            esc(&r.stream),
            esc(&r.test),
            esc(&r.severity),
            r.failing_rows,
            r.observed.map(number).unwrap_or_default(),
            esc(r.detail.as_deref().unwrap_or(""))
        ));
    }
    body.push_str("</table>");
    page(&title, Some(name), &body)
}

/// A connection's dead letters with a replay button per stream.
pub fn dead_letters(
    name: &str,
    letters: &Result<Vec<StoredDeadLetter>>,
    csrf: &str,
    flash: Option<&str>,
) -> String {
    let mut body = layout::flash(flash);
    let letters = match letters {
        Err(e) => {
            body.push_str(&error("the dead letters", e));
            return page(&format!("Dead letters of {name}"), Some(name), &body);
        }
        Ok(letters) => letters,
    };
    if letters.is_empty() {
        body.push_str("<p class=\"muted\">no dead letters</p>");
    }
    let mut streams: Vec<&str> = letters.iter().map(|d| d.stream.as_str()).collect();
    streams.sort_unstable();
    streams.dedup();
    let action = format!("/connections/{}/dead-letters/replay", segment(name));
    for stream in streams {
        let count = letters.iter().filter(|d| d.stream == stream).count();
        body.push_str(&format!("<p>{}: {count} shown ", esc(stream)));
        body.push_str(&button(
            &action,
            csrf,
            &format!("Replay {stream}"),
            &[("stream", stream)],
        ));
        body.push_str("</p>");
    }
    body.push_str(
        "<table id=\"dead-letters\"><tr><th>dead at</th><th>stream</th><th>run</th><th>reason</th><th>record</th></tr>",
    );
    for d in letters {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td class=\"reason\">{}</td><td><pre>{}</pre></td></tr>",
            esc(&d.dead_at),
            esc(&d.stream),
            esc(&d.run_id),
            esc(&d.reason),
            esc(&d.record)
        ));
    }
    body.push_str("</table>");
    page(&format!("Dead letters of {name}"), Some(name), &body)
}

/// The schema changes the next sync would make (`elt plan`).
pub fn plan(name: &str, plans: &Result<Vec<StreamPlan>>) -> String {
    let title = format!("Schema plan of {name}");
    let plans = match plans {
        Err(e) => return page(&title, Some(name), &error("the plan", e)),
        Ok(plans) => plans,
    };
    let mut body = String::from(
        "<table id=\"plan\"><tr><th>stream</th><th>table</th><th>modes</th><th>contract</th><th>changes</th></tr>",
    );
    for p in plans {
        let changes: String = if p.changes.is_empty() {
            "<span class=\"muted\">no schema change</span>".to_owned()
        } else {
            p.changes
                .iter()
                .map(|c| format!("<div>{}: {}</div>", esc(&c.description), esc(c.action)))
                .collect()
        };
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}/{}</td><td>{}</td><td>{changes}</td></tr>",
            esc(&p.stream),
            esc(&p.table),
            esc(&p.sync_mode),
            esc(&p.write_mode),
            esc(p.schema_contract)
        ));
    }
    body.push_str("</table>");
    page(&title, Some(name), &body)
}

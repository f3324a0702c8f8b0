//! The handlers of `elt ui`'s routes: each page reads its data (`data.rs`) and renders it
//! (`pages.rs`); "sync now" starts a sync in this process and "replay" replays a stream's
//! dead letters, both after the form's anti-forgery token matched, then redirect back
//! with the outcome. Each request loads the project file anew, so edits to it (or to a
//! stream's JSON Schema) count without a restart. An unknown connection is a 404.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use elt_runner::Project;

use super::guard::Refusal;
use super::layout::{self, esc, segment};
use super::{App, data, pages};

/// The fields of an action's form.
#[derive(Deserialize)]
pub struct ActionForm {
    csrf: String,
    #[serde(default)]
    stream: Option<String>,
}

/// The project as its file says now, knowing connection `name` when given.
fn project(app: &App, name: Option<&str>) -> Result<Project, Refusal> {
    let project = Project::load(&app.config).map_err(|e| {
        let what = format!("the project file {}", app.config.display());
        Refusal(StatusCode::INTERNAL_SERVER_ERROR, layout::error(&what, &e))
    })?;
    match name {
        Some(name) if !project.connections.contains_key(name) => Err(Refusal(
            StatusCode::NOT_FOUND,
            format!("<p class=\"error\">no connection named {}</p>", esc(name)),
        )),
        _ => Ok(project),
    }
}

fn take_flash(app: &App, name: &str) -> Option<String> {
    app.flash.lock().ok()?.remove(name)
}

fn set_flash(app: &App, name: &str, message: String) {
    if let Ok(mut flash) = app.flash.lock() {
        flash.insert(name.to_owned(), message);
    }
}

pub async fn overview(State(app): State<App>) -> Result<Response, Refusal> {
    let project = std::sync::Arc::new(project(&app, None)?);
    // Every connection's destination at once: one that does not answer holds the page for
    // its own connect timeout, not for the sum of them.
    let mut reads = tokio::task::JoinSet::new();
    for (index, name) in project.connections.keys().cloned().enumerate() {
        let project = project.clone();
        reads.spawn(async move {
            let streams = data::runs(&project, &name)
                .await
                .map(|runs| data::freshness(&project, &name, &runs));
            (index, name, streams)
        });
    }
    let mut connections = Vec::new();
    while let Some(read) = reads.join_next().await {
        match read {
            Ok(read) => connections.push(read),
            Err(e) => {
                let error = elt_core::Error::bug(format!("a page's read stopped: {e}"));
                return Err(Refusal(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    layout::error("the runs", &error),
                ));
            }
        }
    }
    connections.sort_by_key(|(index, _, _)| *index);
    let connections: Vec<_> = connections
        .into_iter()
        .map(|(_, name, streams)| (name, streams))
        .collect();
    let now = chrono::Utc::now().timestamp_micros();
    Ok(Html(pages::overview(&connections, now)).into_response())
}

pub async fn connection(
    State(app): State<App>,
    Path(name): Path<String>,
) -> Result<Response, Refusal> {
    let project = project(&app, Some(&name))?;
    let runs = data::runs(&project, &name).await;
    let state = data::state(&project, &name).await;
    let flash = take_flash(&app, &name);
    let page = pages::connection(&name, &runs, &state, &app.csrf, flash.as_deref());
    Ok(Html(page).into_response())
}

pub async fn tests(State(app): State<App>, Path(name): Path<String>) -> Result<Response, Refusal> {
    let project = project(&app, Some(&name))?;
    Ok(Html(pages::tests(&name, &data::tests(&project, &name).await)).into_response())
}

pub async fn dead_letters(
    State(app): State<App>,
    Path(name): Path<String>,
) -> Result<Response, Refusal> {
    let project = project(&app, Some(&name))?;
    let letters = data::dead_letters(&project, &name).await;
    let flash = take_flash(&app, &name);
    let page = pages::dead_letters(&name, &letters, &app.csrf, flash.as_deref());
    Ok(Html(page).into_response())
}

pub async fn plan(State(app): State<App>, Path(name): Path<String>) -> Result<Response, Refusal> {
    let project = project(&app, Some(&name))?;
    Ok(Html(pages::plan(&name, &data::plan(&project, &name).await)).into_response())
}

/// Refuses a form without this process's anti-forgery token.
fn check_form(app: &App, form: &ActionForm) -> Result<(), Refusal> {
    if super::guard::same(&form.csrf, &app.csrf) {
        return Ok(());
    }
    Err(Refusal(
        StatusCode::FORBIDDEN,
        "<p class=\"error\">the form's anti-forgery token does not match: reload the page</p>"
            .to_owned(),
    ))
}

/// Starts a sync of the connection in this process; the page shows it when it records.
pub async fn sync_now(
    State(app): State<App>,
    Path(name): Path<String>,
    Form(form): Form<ActionForm>,
) -> Result<Response, Refusal> {
    let project = project(&app, Some(&name))?;
    check_form(&app, &form)?;
    let back = Redirect::to(&format!("/connections/{}", segment(&name))).into_response();
    let started = app.syncing.lock().is_ok_and(|mut s| s.insert(name.clone()));
    if !started {
        set_flash(&app, &name, "a sync started here is still running".into());
        return Ok(back);
    }
    set_flash(
        &app,
        &name,
        "sync started; its runs appear below as it records them".into(),
    );
    tokio::spawn(async move {
        let options = elt_runner::SyncOptions {
            metrics: Some(app.metrics.clone()),
            ..Default::default()
        };
        let message = match elt_runner::sync(&project, &name, &options).await {
            Ok(report) => format!("run {} {}", report.run_id, report.status.as_str()),
            Err(e) => format!("the sync could not run: {e:#}"),
        };
        set_flash(&app, &name, message);
        if let Ok(mut syncing) = app.syncing.lock() {
            syncing.remove(&name);
        }
    });
    Ok(back)
}

/// Replays the dead letters of the form's stream (all streams without one).
pub async fn replay(
    State(app): State<App>,
    Path(name): Path<String>,
    Form(form): Form<ActionForm>,
) -> Result<Response, Refusal> {
    let project = project(&app, Some(&name))?;
    check_form(&app, &form)?;
    let stream = form.stream.as_deref().filter(|s| !s.is_empty());
    let message = match elt_runner::replay::replay(&project, &name, stream).await {
        Ok(outcomes) if outcomes.is_empty() => "no dead letters to replay".to_owned(),
        Ok(outcomes) => outcomes
            .iter()
            .map(|o| {
                format!(
                    "{}: {} replayed, {} superseded by newer rows, {} still failing",
                    o.stream, o.replayed, o.superseded, o.still_failing
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        Err(e) => format!("the replay failed: {e:#}"),
    };
    set_flash(&app, &name, message);
    Ok(Redirect::to(&format!("/connections/{}/dead-letters", segment(&name))).into_response())
}

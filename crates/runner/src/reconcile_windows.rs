//! `elt reconcile`: compares each window of a backfill plan between source and destination
//! by a row count and an order-independent checksum (`elt_core::window_digest`), each side
//! computed in its own database, names the windows that differ, and with `repair` loads
//! exactly those windows again (each an `elt backfill run --force` of one window), then
//! compares them once more.
//!
//! The two sides are read one after the other, not in one snapshot: rows that change in
//! between show up as a difference, and a repair of that window settles it. What it does
//! not do: compare columns the digest cannot (it names them), or look at rows outside the
//! plan's range.

use elt_core::window_digest::{WindowDigest, digest_columns};
use elt_core::windows::Window;
use elt_core::{ConfiguredStream, Error, Result, WriteMode};
use serde::Serialize;

use crate::backfill::{Plan, WindowRun};
use crate::config::Project;
use crate::engine::SyncOptions;

/// One window on both sides.
#[derive(Debug, Clone, Serialize)]
pub struct WindowCheck {
    /// Its index in the plan.
    pub index: usize,
    /// The window.
    #[serde(flatten)]
    pub window: Window,
    /// The source's rows in it.
    pub source: WindowDigest,
    /// The destination's live rows in it.
    pub destination: WindowDigest,
    /// Whether the two differ.
    pub differs: bool,
}

/// What a repair did.
#[derive(Debug, Serialize)]
pub struct Repair {
    /// The sync of each differing window.
    pub runs: Vec<WindowRun>,
    /// Rows the repair read from the source, all windows together.
    pub source_rows_read: u64,
    /// The repaired windows compared again.
    pub after: Vec<WindowCheck>,
}

/// A reconciliation of one stream over a plan's windows.
#[derive(Debug, Serialize)]
pub struct Reconciliation {
    /// The stream.
    pub stream: String,
    /// The columns the checksums cover.
    pub compared: Vec<String>,
    /// The columns they cannot cover (floats, JSON, binary, hashed, ...).
    pub left_out: Vec<String>,
    /// Every window of the plan.
    pub windows: Vec<WindowCheck>,
    /// The indexes of the windows that differ.
    pub differing: Vec<usize>,
    /// With `repair`, what it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair: Option<Repair>,
}

impl Reconciliation {
    /// Whether source and destination agree now (after the repair, if there was one).
    pub fn agrees(&self) -> bool {
        match &self.repair {
            Some(repair) => repair.after.iter().all(|c| !c.differs),
            None => self.differing.is_empty(),
        }
    }
}

/// Compares `indexes` of `plan`'s windows on both sides.
async fn compare(
    project: &Project,
    plan: &Plan,
    stream: &ConfiguredStream,
    indexes: &[usize],
) -> Result<Vec<WindowCheck>> {
    let connection = plan.connection.as_str();
    let (columns, _) = digest_columns(stream);
    let windows: Vec<Window> = indexes.iter().map(|&i| plan.windows[i].clone()).collect();
    let (config, source, destination) = project.connection(connection)?;
    let at_source = source
        .window_digests(stream, &columns, &windows)
        .await?
        .ok_or_else(|| {
            Error::config(format!(
                "source {:?} cannot digest windows; `elt reconcile` needs a postgres source",
                config.source
            ))
        })?;
    // Read-only, and closed before any repair opens the destination to write.
    let mut session = destination.open_reader(connection, &config.dataset).await?;
    let log = session.windows().ok_or_else(|| {
        Error::config(format!(
            "the destination of connection {connection} cannot digest windows"
        ))
    })?;
    let at_destination = log.digests(stream, &columns, &windows).await?;
    Ok(indexes
        .iter()
        .zip(windows)
        .zip(at_source.into_iter().zip(at_destination))
        .map(|((&index, window), (source, destination))| WindowCheck {
            index,
            window,
            differs: source != destination,
            source,
            destination,
        })
        .collect())
}

/// Reconciles `plan`'s windows; with `repair`, reloads the differing ones (with the sync
/// `options`: lock waiting, progress) and compares them again.
pub async fn reconcile(
    project: &Project,
    plan: &Plan,
    repair: bool,
    options: &SyncOptions,
) -> Result<Reconciliation> {
    let stream = crate::backfill::configured(project, &plan.connection, &plan.stream).await?;
    if stream.deletes.soft_delete_column.is_some()
        || !matches!(stream.write_mode, WriteMode::Append | WriteMode::Merge)
    {
        let soft = match stream.deletes.soft_delete_column {
            Some(_) => " with a soft-delete column",
            None => "",
        };
        return Err(Error::config(format!(
            "stream {}: `elt reconcile` compares append and merge streams without a \
             soft-delete column; this one is {}{soft}",
            stream.name(),
            stream.write_mode
        )));
    }
    let (compared, left_out) = digest_columns(&stream);
    let all: Vec<usize> = (0..plan.windows.len()).collect();
    let windows = compare(project, plan, &stream, &all).await?;
    let differing: Vec<usize> = windows
        .iter()
        .filter(|c| c.differs)
        .map(|c| c.index)
        .collect();
    let repair = match repair && !differing.is_empty() {
        false => None,
        true => {
            let mut runs = Vec::new();
            for &index in &differing {
                runs.extend(
                    crate::backfill::run(project, plan, index..=index, true, options).await?,
                );
            }
            let source_rows_read = runs
                .iter()
                .flat_map(|r| r.report.iter())
                .flat_map(|r| r.streams.iter())
                .map(|s| s.rows_read)
                .sum();
            let after = compare(project, plan, &stream, &differing).await?;
            Some(Repair {
                runs,
                source_rows_read,
                after,
            })
        }
    };
    Ok(Reconciliation {
        stream: plan.stream.clone(),
        compared: compared.into_iter().map(|c| c.name).collect(),
        left_out,
        windows,
        differing,
        repair,
    })
}

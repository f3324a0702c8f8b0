//! The session `elt runs`, `elt state show` and `elt dead-letter list` read through
//! (`elt_runner::read::bookkeeping`), with its note on stderr when it reads what a running
//! sync published. Nothing else.

use elt_core::DestinationSession;
use elt_runner::Project;

/// Opens `connection`'s destination to read its bookkeeping, saying so when it reads a
/// running sync's published snapshot.
pub async fn bookkeeping(
    project: &Project,
    connection: &str,
) -> elt_core::Result<Box<dyn DestinationSession>> {
    let reading = elt_runner::read::bookkeeping(project, connection).await?;
    if let Some(note) = &reading.note {
        eprintln!("elt: {note}");
    }
    Ok(reading.session)
}

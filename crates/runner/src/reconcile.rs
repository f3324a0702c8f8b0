//! Hard-delete detection for database sources without change data capture: compares the
//! primary keys of a source table with the live keys of its raw table and marks the keys the
//! source lost as deleted.
//!
//! How: the destination cuts a key range into `PARTS` ranges of about equal size (at keys it
//! samples); both sides digest each range at the same time (a count and a hash sum,
//! computed in the database); only ranges whose digests differ are cut again, until a range
//! holds at most `LEAF` destination keys, whose keys both sides then list. An unchanged table
//! costs one pass over the source's primary-key index and returns `PARTS` small rows; a few
//! deletions cost a few more passes over ever smaller ranges. Keys the source has and the destination lacks
//! (rows inserted since the sync) are left to the next sync.
//!
//! Not here: the SQL (each connector's), and when to run it (the engine).

use std::collections::HashSet;
use std::time::Instant;

use elt_core::capability::KeyDigests;
use elt_core::reconcile::{Key, KeyRange, check_key_types};
use elt_core::{ConfiguredStream, Result, RunInfo, Source};

/// Ranges a differing range is cut into.
const PARTS: usize = 16;
/// Ranges with at most this many destination keys are compared key by key.
const LEAF: u64 = 2_000;

/// What one reconciliation did.
#[derive(Debug, Clone, Default)]
pub struct Reconciled {
    /// Key ranges digested on each side.
    pub ranges_digested: u64,
    /// Keys the source listed (from ranges that differed, or small tables).
    pub source_keys_listed: u64,
    /// Rows of the raw table marked deleted (or removed, or closed).
    pub rows_deleted: u64,
    /// Wall seconds.
    pub secs: f64,
}

/// Reconciles `stream` and marks what the source no longer has.
pub async fn reconcile(
    source: &dyn Source,
    session: &mut dyn KeyDigests,
    run: &RunInfo,
    stream: &ConfiguredStream,
) -> Result<Reconciled> {
    let started = Instant::now();
    check_key_types(stream)?;
    let mut done = Reconciled::default();
    let mut pending = vec![KeyRange::default()];
    let mut deleted: Vec<Key> = Vec::new();
    while let Some(range) = pending.pop() {
        let (count, cuts) = session.split_range(stream, &range, PARTS).await?;
        if count == 0 {
            continue;
        }
        // Both sides work at once: each spends most of its time hashing keys.
        if count <= LEAF || cuts.is_empty() {
            let (theirs, ours) = tokio::join!(
                source.keys_in_range(stream, &range),
                session.keys_in_range(stream, &range)
            );
            let theirs: HashSet<Key> = theirs?.into_iter().collect();
            done.source_keys_listed += theirs.len() as u64;
            deleted.extend(ours?.into_iter().filter(|k| !theirs.contains(k)));
            continue;
        }
        let ranges = cut(&range, cuts);
        let (ours, theirs) = tokio::join!(
            session.key_digests(stream, &ranges),
            source.key_digests(stream, &ranges)
        );
        let (ours, theirs) = (ours?, theirs?);
        done.ranges_digested += ranges.len() as u64;
        for ((range, ours), theirs) in ranges.into_iter().zip(ours).zip(theirs) {
            if ours != theirs {
                pending.push(range);
            }
        }
    }
    done.rows_deleted = session.finish_reconcile(run, stream, deleted).await?;
    done.secs = started.elapsed().as_secs_f64();
    Ok(done)
}

/// The ranges between consecutive cut points of `range`.
fn cut(range: &KeyRange, cuts: Vec<Key>) -> Vec<KeyRange> {
    let mut bounds: Vec<Option<Key>> = vec![range.from.clone()];
    bounds.extend(cuts.into_iter().map(Some));
    bounds.push(range.to.clone());
    bounds
        .windows(2)
        .map(|w| KeyRange {
            from: w[0].clone(),
            to: w[1].clone(),
        })
        .collect()
}

/// The destination's key digests, for reconciling deletes.
pub(crate) fn key_digests(
    session: &mut dyn elt_core::DestinationSession,
) -> Result<&mut dyn elt_core::capability::KeyDigests> {
    session.key_digests().ok_or_else(|| {
        elt_core::capability::missing(
            "digests of its keys",
            "reconciling deletes (`reconcile_deletes_every`, `--reconcile-deletes`)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_make_adjacent_ranges_covering_the_whole() {
        let key = |k: &str| Some(vec![k.to_owned()]);
        let range = KeyRange {
            from: key("a"),
            to: None,
        };
        let ranges = cut(&range, vec![vec!["m".into()], vec!["t".into()]]);
        assert_eq!(
            ranges,
            [
                KeyRange {
                    from: key("a"),
                    to: key("m")
                },
                KeyRange {
                    from: key("m"),
                    to: key("t")
                },
                KeyRange {
                    from: key("t"),
                    to: None
                },
            ]
        );
    }
}

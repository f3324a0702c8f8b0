//! Distinct-value estimates for column profiles, sketched on the Arrow batches of a stream
//! as they go to the destination (a [`BatchObserver`] that hands them to a thread of its
//! own, beside the load), so the profile query after the load need not estimate them: in
//! DuckDB 1.5 that was 60% of its time. Each column gets a HyperLogLog++ sketch
//! (`cardinality-estimator`: exact up to 128 values, about 1% off for many); NULLs are not
//! counted. A sketch ignores values it has seen, so rows re-sent by a retried attempt
//! change nothing.
//!
//! What it does not do: count what a merge later collapses (a key sent twice in one run
//! counts both values), or sketch JSON, lists and structs (no portable equality).

use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use cardinality_estimator::CardinalityEstimator;
use elt_core::BatchObserver;
use elt_core::arrow::array::{Array, AsArray, RecordBatch};
use elt_core::arrow::datatypes::{DataType, Field};
use elt_core::catalog::is_json_field;

/// One sketch: precision 14 (16,384 registers, about 0.8% standard error), fed hashes.
type Sketch = CardinalityEstimator<[u8], wyhash::WyHash, 14, 6>;

/// The sketches of one stream's columns, kept by a thread of their own.
pub struct DistinctSketches {
    state: Mutex<State>,
}

/// Each column's name and sketch.
type Columns = Vec<(String, Sketch)>;

enum State {
    /// Batches go to the sketching thread.
    Sketching {
        batches: SyncSender<RecordBatch>,
        worker: JoinHandle<Columns>,
    },
    /// The thread finished: each column's estimate (none when the thread failed).
    Done(Vec<(String, u64)>),
}

/// Batches waiting for the sketching thread; a full queue makes the source wait.
const QUEUED_BATCHES: usize = 4;

impl DistinctSketches {
    /// Sketches for the `fields` whose values can be hashed, on a new thread.
    pub fn for_fields<'a>(fields: impl IntoIterator<Item = &'a Field>) -> Arc<Self> {
        let mut columns: Columns = fields
            .into_iter()
            .filter(|f| hashable(f))
            .map(|f| (f.name().clone(), Sketch::new()))
            .collect();
        let (batches, receiver) = sync_channel::<RecordBatch>(QUEUED_BATCHES);
        let worker = std::thread::spawn(move || {
            for batch in receiver {
                for (name, sketch) in columns.iter_mut() {
                    if let Some(values) = batch.column_by_name(name) {
                        add(sketch, values.as_ref());
                    }
                }
            }
            columns
        });
        Arc::new(Self {
            state: Mutex::new(State::Sketching { batches, worker }),
        })
    }

    /// The estimated number of distinct non-NULL values of `column`, if it was sketched.
    /// The first call ends the sketching: batches observed after it are not counted.
    pub fn estimate(&self, column: &str) -> Option<u64> {
        let mut state = self.state.lock().ok()?;
        if let State::Sketching { .. } = &*state {
            let State::Sketching { batches, worker } =
                std::mem::replace(&mut *state, State::Done(Vec::new()))
            else {
                return None;
            };
            drop(batches);
            let columns = worker.join().unwrap_or_default();
            *state = State::Done(
                columns
                    .iter()
                    .map(|(name, sketch)| (name.clone(), sketch.estimate() as u64))
                    .collect(),
            );
        }
        let State::Done(estimates) = &*state else {
            return None;
        };
        estimates
            .iter()
            .find(|(name, _)| name == column)
            .map(|(_, estimate)| *estimate)
    }
}

impl BatchObserver for DistinctSketches {
    /// Queues the batch (its arrays are shared, not copied) for the sketching thread.
    fn observe(&self, batch: &RecordBatch) {
        if let Ok(state) = self.state.lock()
            && let State::Sketching { batches, .. } = &*state
        {
            let _ = batches.send(batch.clone());
        }
    }
}

fn hashable(field: &Field) -> bool {
    !is_json_field(field)
        && (field.data_type().is_primitive()
            || matches!(
                field.data_type(),
                DataType::Boolean
                    | DataType::Utf8
                    | DataType::LargeUtf8
                    | DataType::Utf8View
                    | DataType::Binary
                    | DataType::LargeBinary
                    | DataType::FixedSizeBinary(_)
            ))
}

/// Adds the non-NULL values of `values` to `sketch`: fixed-width values as their bytes,
/// text and binary as theirs, each hashed once with wyhash.
fn add(sketch: &mut Sketch, values: &dyn Array) {
    let mut insert = |bytes: &[u8]| sketch.insert_hash(wyhash::wyhash(bytes, 0));
    match values.data_type() {
        DataType::Boolean => {
            let bools = values.as_boolean();
            each(values, |row| insert(&[u8::from(bools.value(row))]));
        }
        DataType::Utf8 => {
            let text = values.as_string::<i32>();
            each(values, |row| insert(text.value(row).as_bytes()));
        }
        DataType::LargeUtf8 => {
            let text = values.as_string::<i64>();
            each(values, |row| insert(text.value(row).as_bytes()));
        }
        DataType::Utf8View => {
            let text = values.as_string_view();
            each(values, |row| insert(text.value(row).as_bytes()));
        }
        DataType::Binary => {
            let bytes = values.as_binary::<i32>();
            each(values, |row| insert(bytes.value(row)));
        }
        DataType::LargeBinary => {
            let bytes = values.as_binary::<i64>();
            each(values, |row| insert(bytes.value(row)));
        }
        DataType::FixedSizeBinary(_) => {
            let bytes = values.as_fixed_size_binary();
            each(values, |row| insert(bytes.value(row)));
        }
        t => {
            let Some(width) = t.primitive_width() else {
                return;
            };
            let data = values.to_data();
            let offset = data.offset() * width;
            let bytes = &data.buffers()[0].as_slice()[offset..offset + values.len() * width];
            each(values, |row| insert(&bytes[row * width..(row + 1) * width]));
        }
    }
}

/// Calls `visit` with every non-NULL row of `values`.
fn each(values: &dyn Array, mut visit: impl FnMut(usize)) {
    match values.nulls() {
        Some(nulls) if nulls.null_count() > 0 => nulls.valid_indices().for_each(visit),
        _ => (0..values.len()).for_each(&mut visit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use elt_core::arrow::array::{ArrayRef, Decimal128Array, Int64Array, StringArray};
    use elt_core::arrow::datatypes::Schema;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).unwrap()
    }

    #[test]
    fn small_counts_are_exact_and_nulls_and_repeats_do_not_count() {
        let b = batch(vec![
            (
                "id",
                Arc::new(Int64Array::from(vec![Some(1), Some(2), None, Some(2)])) as ArrayRef,
            ),
            (
                "name",
                Arc::new(StringArray::from(vec![
                    Some("a"),
                    None,
                    Some("é"),
                    Some("a"),
                ])),
            ),
        ]);
        let sketches = DistinctSketches::for_fields(b.schema().fields().iter().map(|f| f.as_ref()));
        sketches.observe(&b);
        sketches.observe(&b.slice(1, 3));
        assert_eq!(sketches.estimate("id"), Some(2));
        assert_eq!(sketches.estimate("name"), Some(2));
        assert_eq!(sketches.estimate("missing"), None);
    }

    #[test]
    fn large_counts_are_within_two_percent() {
        let n = 200_000_i64;
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
        let cents: ArrayRef = Arc::new(
            Decimal128Array::from_iter_values((0..n).map(|i| i128::from(i % 50_000)))
                .with_precision_and_scale(12, 2)
                .unwrap(),
        );
        let b = batch(vec![("id", ids), ("price", cents)]);
        let schema: Arc<Schema> = b.schema();
        let sketches = DistinctSketches::for_fields(schema.fields().iter().map(|f| f.as_ref()));
        for offset in (0..n as usize).step_by(65_536) {
            let rows = 65_536.min(n as usize - offset);
            sketches.observe(&b.slice(offset, rows));
        }
        let off = |column: &str, truth: f64| {
            (sketches.estimate(column).unwrap() as f64 - truth).abs() / truth
        };
        assert!(off("id", n as f64) < 0.02, "{:?}", sketches.estimate("id"));
        assert!(
            off("price", 50_000.0) < 0.02,
            "{:?}",
            sketches.estimate("price")
        );
    }
}

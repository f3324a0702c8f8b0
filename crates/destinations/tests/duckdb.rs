//! The DuckDB destination against real database files: write modes, state in the same
//! transaction as the data, rollback when the source stops, type mapping and locking.

use std::sync::Arc;

use duckdb::Connection;
use elt_core::arrow::array::{
    ArrayRef, Decimal128Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use elt_core::arrow::datatypes::{DataType, Field, TimeUnit};
use elt_core::arrow::record_batch::RecordBatch;
use elt_core::catalog::{json_field, schema};
use elt_core::{
    ConfiguredStream, Destination, ErrorKind, Message, RunInfo, StreamDescriptor, StreamState,
    SyncMode, WriteMode,
};
use elt_destinations::duckdb::{DuckDbConfig, DuckDbDestination};

fn stream(write_mode: WriteMode) -> ConfiguredStream {
    let fields = vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("amount", DataType::Decimal128(12, 2), true),
        json_field("doc", true),
        Field::new(
            "updated_at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
    ];
    let descriptor = StreamDescriptor {
        name: "items".into(),
        schema: schema(fields),
        primary_key: vec!["id".into()],
        cursor_candidates: vec!["updated_at".into()],
        append_only: false,
        delete_marker: None,
    };
    ConfiguredStream {
        sync_mode: SyncMode::Incremental,
        write_mode,
        ..ConfiguredStream::with_defaults(descriptor)
    }
}

/// Rows as (id, name, updated_at micros).
fn batch(s: &ConfiguredStream, rows: &[(Option<i64>, &str, i64)]) -> RecordBatch {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.0))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(
            Decimal128Array::from_iter_values(rows.iter().map(|r| r.2 as i128 * 100 + 1))
                .with_precision_and_scale(12, 2)
                .unwrap(),
        ),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| format!(r#"{{"k":{},"s":"ü"}}"#, r.2)),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.2))
                .with_timezone("UTC"),
        ),
    ];
    RecordBatch::try_new(s.schema().clone(), columns).unwrap()
}

struct Db {
    _dir: tempfile::TempDir,
    path: String,
    destination: DuckDbDestination,
}

fn db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.duckdb").to_string_lossy().into_owned();
    let destination = DuckDbDestination::new(DuckDbConfig {
        path: path.clone(),
        memory_limit: None,
        threads: Some(1),
        commit_rows: 1,
        commit_interval_secs: 60,
    });
    Db {
        _dir: dir,
        path,
        destination,
    }
}

fn run(id: &str) -> RunInfo {
    RunInfo {
        run_id: id.into(),
        connection: "c".into(),
        started_at_us: 1_700_000_000_000_000,
    }
}

/// Sends `messages` through a session and returns the summary's rows loaded.
async fn load(db: &Db, s: &ConfiguredStream, messages: Vec<Message>) -> elt_core::Result<u64> {
    load_in(
        db,
        &run("01a21392-0000-7000-8000-000000000001"),
        s,
        messages,
    )
    .await
}

/// [`load`] as run `run`.
async fn load_in(
    db: &Db,
    run: &RunInfo,
    s: &ConfiguredStream,
    messages: Vec<Message>,
) -> elt_core::Result<u64> {
    let mut session = db.destination.open("c", "raw").await?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let sender = tokio::spawn(async move {
        for m in messages {
            tx.send(m).await.unwrap();
        }
    });
    let (summary, result) = session.write(run, s, rx).await;
    sender.await.unwrap();
    result.map(|()| summary.rows_loaded)
}

fn query(db: &Db, sql: &str) -> Vec<String> {
    let conn = Connection::open(&db.path).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn state(cursor: i64) -> Message {
    Message::Checkpoint(StreamState::at(cursor.into(), vec![]))
}

#[tokio::test(flavor = "multi_thread")]
async fn merge_keeps_one_row_per_key_with_the_highest_cursor() {
    let db = db();
    let s = stream(WriteMode::Merge);
    let first = batch(
        &s,
        &[(Some(1), "a", 10), (Some(2), "b", 10), (Some(1), "a2", 20)],
    );
    assert_eq!(
        load(
            &db,
            &s,
            vec![Message::Batch(first), state(20), Message::Complete]
        )
        .await
        .unwrap(),
        2
    );
    // An older version of 2 loses; a newer version of 1 wins; 3 is new.
    let second = batch(
        &s,
        &[
            (Some(2), "b-old", 5),
            (Some(1), "a3", 30),
            (Some(3), "c", 30),
        ],
    );
    assert_eq!(
        load(
            &db,
            &s,
            vec![Message::Batch(second), state(30), Message::Complete]
        )
        .await
        .unwrap(),
        2
    );
    let rows = query(
        &db,
        "SELECT id || ':' || name || ':' || amount || ':' || (doc->>'s') FROM raw.items ORDER BY id",
    );
    assert_eq!(rows, ["1:a3:30.01:ü", "2:b:10.01:ü", "3:c:30.01:ü"]);
    let types = query(
        &db,
        "SELECT data_type FROM duckdb_columns() WHERE table_name = 'items' ORDER BY column_index",
    );
    assert_eq!(
        types,
        [
            "BIGINT",
            "VARCHAR",
            "DECIMAL(12,2)",
            "JSON",
            "TIMESTAMP WITH TIME ZONE",
            "TIMESTAMP WITH TIME ZONE",
            "UUID",
            "TIMESTAMP WITH TIME ZONE"
        ]
    );
    assert_eq!(
        query(&db, "SELECT state FROM raw._elt_state"),
        [r#"{"v":1,"cursor":30,"key":[]}"#]
    );
}

/// A first merge appends straight into the empty table and commits at every checkpoint
/// here: keys that repeat across commits (newer and older cursors, with a later batch
/// repeating itself) still end as one row per key, and a NULL key in a later commit fails
/// that commit only.
#[tokio::test(flavor = "multi_thread")]
async fn a_first_merge_resolves_keys_repeated_across_commits() {
    let db = db();
    let s = stream(WriteMode::Merge);
    let messages = vec![
        Message::Batch(batch(&s, &[(Some(1), "a", 10), (Some(2), "b", 10)])),
        state(10),
        Message::Batch(batch(&s, &[(Some(3), "c", 11), (Some(1), "a-new", 20)])),
        state(20),
        Message::Batch(batch(
            &s,
            &[
                (Some(2), "b-old", 5),
                (Some(4), "d", 21),
                (Some(4), "d2", 22),
            ],
        )),
        state(22),
        // Only a repeat across commits: the other checks find nothing in this batch.
        Message::Batch(batch(&s, &[(Some(3), "c-new", 23), (Some(6), "f", 23)])),
        state(23),
        Message::Batch(batch(&s, &[(Some(5), "e", 24), (None, "null", 24)])),
        state(24),
        Message::Complete,
    ];
    let err = load(&db, &s, messages).await.unwrap_err();
    assert!(err.to_string().contains("NULL in the primary key"), "{err}");
    let rows = query(&db, "SELECT id || ':' || name FROM raw.items ORDER BY id");
    assert_eq!(rows, ["1:a-new", "2:b", "3:c-new", "4:d2", "6:f"]);
    assert_eq!(
        query(&db, "SELECT state FROM raw._elt_state"),
        [r#"{"v":1,"cursor":23,"key":[]}"#]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn merge_refuses_null_keys_and_commits_nothing() {
    let db = db();
    let s = stream(WriteMode::Merge);
    let bad = batch(&s, &[(Some(1), "a", 10), (None, "x", 11)]);
    let err = load(
        &db,
        &s,
        vec![Message::Batch(bad), state(11), Message::Complete],
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Data);
    assert!(err.to_string().contains("NULL in the primary key"), "{err}");
    assert_eq!(query(&db, "SELECT count(*)::VARCHAR FROM raw.items"), ["0"]);
    assert!(query(&db, "SELECT state FROM raw._elt_state").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_that_stops_keeps_only_committed_checkpoints() {
    let db = db();
    let s = stream(WriteMode::Append);
    let messages = vec![
        Message::Batch(batch(&s, &[(Some(1), "a", 1)])),
        state(1),
        Message::Batch(batch(&s, &[(Some(2), "b", 2)])),
        // No checkpoint and no Complete: the source failed here.
    ];
    assert_eq!(load(&db, &s, messages).await.unwrap(), 1);
    assert_eq!(query(&db, "SELECT id::VARCHAR FROM raw.items"), ["1"]);
    assert_eq!(
        query(&db, "SELECT state->>'cursor' FROM raw._elt_state"),
        ["1"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn overwrite_swaps_only_at_completion() {
    let db = db();
    let s = stream(WriteMode::Overwrite);
    let full = |ids: &[i64]| {
        batch(
            &s,
            &ids.iter().map(|&i| (Some(i), "x", i)).collect::<Vec<_>>(),
        )
    };
    load(
        &db,
        &s,
        vec![
            Message::Batch(full(&[1, 2, 3])),
            state(3),
            Message::Complete,
        ],
    )
    .await
    .unwrap();
    // A second full load that dies after a checkpoint leaves the first table whole.
    load(&db, &s, vec![Message::Batch(full(&[7])), state(7)])
        .await
        .unwrap();
    assert_eq!(
        query(
            &db,
            "SELECT string_agg(id::VARCHAR, ',' ORDER BY id) FROM raw.items"
        ),
        ["1,2,3"]
    );
    assert_eq!(
        query(&db, "SELECT state->>'cursor' FROM raw._elt_state"),
        ["3"]
    );
    load(
        &db,
        &s,
        vec![Message::Batch(full(&[8, 9])), state(9), Message::Complete],
    )
    .await
    .unwrap();
    assert_eq!(
        query(
            &db,
            "SELECT string_agg(id::VARCHAR, ',' ORDER BY id) FROM raw.items"
        ),
        ["8,9"]
    );
    assert!(
        query(
            &db,
            "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '_elt_new%'"
        )
        .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn new_columns_are_added_and_changed_types_refused() {
    let db = db();
    let s = stream(WriteMode::Append);
    load(
        &db,
        &s,
        vec![
            Message::Batch(batch(&s, &[(Some(1), "a", 1)])),
            Message::Complete,
        ],
    )
    .await
    .unwrap();
    let conn = Connection::open(&db.path).unwrap();
    conn.execute_batch(
        "ALTER TABLE raw.items DROP COLUMN name; ALTER TABLE raw.items ALTER amount TYPE DOUBLE",
    )
    .unwrap();
    drop(conn);
    let err = load(
        &db,
        &s,
        vec![
            Message::Batch(batch(&s, &[(Some(2), "b", 2)])),
            Message::Complete,
        ],
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("column amount is DOUBLE"), "{err}");
    assert_eq!(
        query(
            &db,
            "SELECT count(*)::VARCHAR FROM duckdb_columns() WHERE table_name = 'items' AND column_name = 'name'"
        ),
        ["1"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_writer_gets_a_lock_error() {
    let db = db();
    let _first = db.destination.open("c", "raw").await.unwrap();
    // DuckDB's lock is per process; a second process is what matters, so open from a child.
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "second_writer_child", "--nocapture"])
        .env("ELT_TEST_DB", &db.path)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&status.stdout);
    assert!(out.contains("LOCKED: the DuckDB file"), "{out}");
    assert!(
        out.contains(&format!("PID {}", std::process::id())),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn second_writer_child() {
    let Ok(path) = std::env::var("ELT_TEST_DB") else {
        return;
    };
    let destination = DuckDbDestination::new(DuckDbConfig {
        path,
        memory_limit: None,
        threads: None,
        commit_rows: 1,
        commit_interval_secs: 60,
    });
    match destination.open("c", "raw").await {
        Err(e) if e.kind() == ErrorKind::Locked => println!("LOCKED: {e}"),
        Err(e) => println!("OTHER: {e:#}"),
        Ok(_) => println!("OPENED"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn history_keeps_one_version_per_change_and_reloads_are_idempotent() {
    let db = db();
    let s = stream(WriteMode::History);
    let run_a = run("01a21392-0000-7000-8000-00000000000a");
    let run_b = RunInfo {
        run_id: "01a21392-0000-7000-8000-00000000000b".into(),
        started_at_us: run_a.started_at_us + 1_000_000,
        ..run_a.clone()
    };
    let versions = || {
        query(
            &db,
            "SELECT id || ':' || name || ':' || epoch_us(_elt_valid_from) || ':' ||
                    coalesce(epoch_us(_elt_valid_to)::VARCHAR, '-') || ':' || _elt_is_current
             FROM raw.items ORDER BY id, _elt_valid_from",
        )
    };
    // Run A sees key 1 twice (a later checkpoint changes it): one version per run.
    let messages = vec![
        Message::Batch(batch(&s, &[(Some(1), "a", 10), (Some(2), "b", 10)])),
        state(10),
        Message::Batch(batch(&s, &[(Some(1), "a2", 20)])),
        state(20),
        Message::Complete,
    ];
    load_in(&db, &run_a, &s, messages).await.unwrap();
    let a = run_a.started_at_us;
    let b = run_b.started_at_us;
    let after_a = vec![format!("1:a2:{a}:-:true"), format!("2:b:{a}:-:true")];
    assert_eq!(versions(), after_a);
    // Run B: key 1 changed, key 2 re-read unchanged, key 3 new.
    let messages = || {
        vec![
            Message::Batch(batch(
                &s,
                &[(Some(1), "a3", 30), (Some(2), "b", 10), (Some(3), "c", 30)],
            )),
            state(30),
            Message::Complete,
        ]
    };
    load_in(&db, &run_b, &s, messages()).await.unwrap();
    let after_b = vec![
        format!("1:a2:{a}:{b}:false"),
        format!("1:a3:{b}:-:true"),
        format!("2:b:{a}:-:true"),
        format!("3:c:{b}:-:true"),
    ];
    assert_eq!(versions(), after_b);
    // The same run loading the same rows again (a retry) changes nothing; a later run
    // re-reading them (a lookback) neither.
    load_in(&db, &run_b, &s, messages()).await.unwrap();
    assert_eq!(versions(), after_b);
    let run_c = RunInfo {
        started_at_us: b + 1_000_000,
        ..run_b.clone()
    };
    load_in(&db, &run_c, &s, messages()).await.unwrap();
    assert_eq!(versions(), after_b);
    // An older row (lower cursor than the current version) is not a change.
    let stale = vec![
        Message::Batch(batch(&s, &[(Some(1), "a-old", 5)])),
        state(30),
        Message::Complete,
    ];
    load_in(&db, &run_c, &s, stale).await.unwrap();
    assert_eq!(versions(), after_b);
    // A merge table cannot be written as history, nor a history table as merge.
    let merge = stream(WriteMode::Merge);
    let err = load(&db, &merge, vec![Message::Complete])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.message().contains("holds versions"), "{err}");
}

//! The kafka source against a real broker: every (partition, offset) of a topic exactly
//! once with the values produced, nothing on a rerun; tombstones in merge mode; messages
//! that cannot be decoded land in `_elt_dead_letter` with their partition and offset.

use crate::kafka_common::{Message, fresh_topic, kafka_project, produce};

/// Messages in the big test (`ELT_TEST_KAFKA_MESSAGES`, default 1,000,000).
fn message_count() -> usize {
    std::env::var("ELT_TEST_KAFKA_MESSAGES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000)
}

/// The JSON value of message `i`: integers, a float, unicode text, a NULL now and then, a
/// nested object.
fn value(i: usize) -> String {
    let name = match i % 7 {
        0 => "null".to_owned(),
        _ => format!("\"n{i} Zoë 東京 \\\"q\\\"\""),
    };
    format!(
        "{{\"id\":{i},\"name\":{name},\"amount\":{}.25,\"big\":{},\"meta\":{{\"k\":{}}}}}",
        i % 1000,
        i64::MAX - i as i64,
        i % 3
    )
}

/// What DuckDB should hold for message `i`, rendered as the test query renders it.
fn expected_row(partition: i32, offset: usize, i: usize) -> String {
    let name = match i % 7 {
        0 => "-".to_owned(),
        _ => format!("n{i} Zoë 東京 \"q\""),
    };
    format!(
        "{partition}|{offset}|k{i}|{i}|{name}|{}.25|{}|{{\"k\":{}}}",
        i % 1000,
        i64::MAX - i as i64,
        i % 3
    )
}

#[test]
fn a_topic_syncs_every_message_exactly_once_and_a_rerun_loads_nothing() {
    let n = message_count();
    let topic = fresh_topic("exact", 3);
    let messages: Vec<Message> = (0..n)
        .map(|i| ((i % 3) as i32, Some(format!("k{i}")), Some(value(i))))
        .collect();
    produce(&topic, &messages);
    let project = kafka_project(&topic, "batch_rows = 20000", "");
    let first = project.elt(&["sync", "--connection", "k", "--json"]).expect_code(0);
    let summary = first.json();
    assert_eq!(summary["streams"][0]["rows_loaded"], n as u64, "{summary}");

    let table = crate::kafka_common::table(&topic);
    let rows = project.query(&format!(
        "SELECT _elt_partition || '|' || _elt_offset || '|' || _elt_key || '|' || id || '|' || \
         coalesce(name, '-') || '|' || amount || '|' || big || '|' || meta::VARCHAR \
         FROM raw.{table} ORDER BY _elt_partition, _elt_offset"
    ));
    let mut expected = Vec::with_capacity(n);
    for partition in 0..3 {
        let ids = (0..n).filter(|i| i % 3 == partition);
        for (offset, i) in ids.enumerate() {
            expected.push(expected_row(partition as i32, offset, i));
        }
    }
    assert_eq!(rows.len(), n, "every message once");
    if let Some(at) = rows.iter().zip(&expected).position(|(a, b)| a != b) {
        panic!("row {at}: loaded {:?}, produced {:?}", rows[at], expected[at]);
    }
    let again = project.elt(&["sync", "--connection", "k", "--json"]).expect_code(0).json();
    assert_eq!(again["streams"][0]["rows_read"], 0, "{again}");
    assert_eq!(again["streams"][0]["rows_loaded"], 0, "{again}");
}

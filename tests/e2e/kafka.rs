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
    let first = project
        .elt(&["sync", "--connection", "k", "--json"])
        .expect_code(0);
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
        panic!(
            "row {at}: loaded {:?}, produced {:?}",
            rows[at], expected[at]
        );
    }
    let again = project
        .elt(&["sync", "--connection", "k", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(again["streams"][0]["rows_read"], 0, "{again}");
    assert_eq!(again["streams"][0]["rows_loaded"], 0, "{again}");
}

#[test]
fn merge_keeps_the_latest_value_per_key_tombstones_delete_and_bad_messages_are_dead_letters() {
    let topic = fresh_topic("merge", 2);
    let mut messages: Vec<Message> = Vec::new();
    let mut latest: std::collections::BTreeMap<String, Option<String>> = Default::default();
    for round in 0..5 {
        for k in 0..200 {
            let key = format!("k{k}");
            let partition = k % 2;
            // Every 7th key is deleted in round 2, every 11th in round 4 (some come back in
            // round 3 after their tombstone).
            let value = match (round, k % 7, k % 11) {
                (2, 0, _) | (4, _, 0) => None,
                _ => Some(format!(
                    "{{\"id\":{k},\"v\":{round},\"label\":\"r{round} ✓\"}}"
                )),
            };
            latest.insert(key.clone(), value.clone());
            messages.push((partition, Some(key), value));
        }
    }
    // Messages that cannot be rows: not JSON, not an object, a value of the wrong type,
    // and no key in a stream merged by key.
    let bad = [
        (0, Some("bad0"), "not json"),
        (1, Some("bad1"), "[1,2]"),
        (0, Some("bad2"), "{\"id\":\"seven\",\"v\":1}"),
        (1, None, "{\"id\":1,\"v\":1}"),
    ];
    for (partition, key, value) in bad {
        messages.push((partition, key.map(str::to_owned), Some(value.to_owned())));
    }
    produce(&topic, &messages);
    let streams = format!("[[connections.k.streams]]\nname = \"{topic}\"\nwrite = \"merge\"\n");
    let project = kafka_project(&topic, "batch_rows = 150", &streams);
    let run = project
        .elt(&["sync", "--connection", "k", "--json"])
        .expect_code(0);
    let summary = run.json();
    let stream = &summary["streams"][0];
    assert_eq!(stream["write_mode"], "merge", "{summary}");
    assert_eq!(stream["rows_read"], messages.len() as u64, "{summary}");
    assert_eq!(stream["rows_dead_lettered"], 4, "{summary}");

    let table = crate::kafka_common::table(&topic);
    let mut live = project.query(&format!(
        "SELECT _elt_key || '|' || id || '|' || v || '|' || label FROM raw.{table} \
         WHERE _elt_deleted_at IS NULL"
    ));
    live.sort();
    let mut expected: Vec<String> = latest
        .iter()
        .filter_map(|(key, value)| {
            let v: serde_json::Value = serde_json::from_str(value.as_ref()?).unwrap();
            Some(format!(
                "{key}|{}|{}|{}",
                v["id"],
                v["v"],
                v["label"].as_str().unwrap()
            ))
        })
        .collect();
    expected.sort();
    assert_eq!(live, expected);
    let deleted = latest.values().filter(|v| v.is_none()).count();
    let marked = project.query(&format!(
        "SELECT count(*)::VARCHAR FROM raw.{table} WHERE _elt_deleted_at IS NOT NULL"
    ));
    assert_eq!(marked, [deleted.to_string()]);

    let letters = project.query("SELECT reason FROM raw._elt_dead_letter ORDER BY reason");
    assert_eq!(letters.len(), 4, "{letters:?}");
    for why in [
        "field id: a string",
        "not JSON",
        "not an object",
        "has no key",
    ] {
        assert!(
            letters.iter().any(|l| l.contains(why)),
            "a dead letter should say {why}: {letters:?}"
        );
    }
    for letter in &letters {
        assert!(letter.starts_with("partition "), "{letter}");
        assert!(letter.contains(", offset "), "{letter}");
    }
    let records =
        project.query("SELECT record FROM raw._elt_dead_letter WHERE reason LIKE '%not JSON%'");
    assert!(
        records[0].contains("\"_elt_raw_value\":\"not json\""),
        "{records:?}"
    );
    assert!(records[0].contains("\"_elt_partition\":0"), "{records:?}");
    // A rerun changes nothing.
    let again = project
        .elt(&["sync", "--connection", "k", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(again["streams"][0]["rows_read"], 0, "{again}");
}

//! `elt sync --follow` over a topic while a producer keeps writing, the follower killed
//! (SIGKILL) at 20 random moments: after the producer stops and a last sync, the table
//! holds every produced message exactly once; SIGTERM stops a follower cleanly.

use std::process::Child;
use std::time::{Duration, Instant};

use crate::common::{Project, Random, terminate};
use crate::kafka_common::{client, fresh_topic, kafka_project, produce_to, record};
use crate::pg::block_on;

const MESSAGES: u64 = 60_000;
const CHUNK: u64 = 600;

fn follow(project: &Project) -> Child {
    project
        .command(&[
            "sync",
            "--connection",
            "k",
            "--follow",
            "--follow-interval",
            "0",
            "--quiet",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start elt sync --follow")
}

#[test]
fn twenty_kills_while_a_producer_writes_end_with_every_message_once() {
    let topic = fresh_topic("follow", 3);
    let source = "batch_rows = 700";
    let project = kafka_project(&topic, source, "");
    // Commits often, so that kills land between and inside them.
    let toml = std::fs::read_to_string(project.dir().join("elt.toml")).expect("read");
    project.write_config(&toml.replace(
        "path = \"data/demo.duckdb\"",
        "path = \"data/demo.duckdb\"\ncommit_rows = 1500",
    ));
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as u64
        | 1;
    println!("seed {seed}");
    let producer = std::thread::spawn({
        let topic = topic.clone();
        move || {
            let started = Instant::now();
            block_on(async {
                let client = client().await;
                for chunk in 0..MESSAGES / CHUNK {
                    for partition in 0..3 {
                        let records = (chunk * CHUNK..(chunk + 1) * CHUNK)
                            .filter(|i| i % 3 == partition)
                            .map(|i| {
                                let value = format!("{{\"id\":{i},\"text\":\"m{i}\"}}");
                                record(Some(&format!("k{i}")), Some(&value), i as i64)
                            })
                            .collect();
                        produce_to(&client, &topic, partition as i32, records).await;
                    }
                    tokio::time::sleep(Duration::from_millis(60)).await;
                }
            });
            println!("producer: {MESSAGES} messages in {:?}", started.elapsed());
        }
    });
    let mut random = Random(seed);
    for _ in 0..20 {
        let mut child = follow(&project);
        std::thread::sleep(Duration::from_millis(150 + random.below(400)));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
    }
    producer.join().expect("producer");
    let runs = project.query(
        "SELECT status || ':' || count(DISTINCT run_id) FROM raw._elt_runs GROUP BY status ORDER BY 1",
    );
    println!("runs by status: {runs:?}");

    // The last follower catches up and stops on SIGTERM after its last commit.
    let mut last = follow(&project);
    std::thread::sleep(Duration::from_secs(3));
    let exit = terminate(&mut last);
    assert_eq!(exit.code(), Some(0), "a clean stop");
    project
        .elt(&["sync", "--connection", "k", "--quiet"])
        .expect_code(0);

    let table = crate::kafka_common::table(&topic);
    let summary = project.query(&format!(
        "SELECT count(*) || '|' || count(DISTINCT (_elt_partition, _elt_offset)) || '|' || \
         count(DISTINCT id) || '|' || min(id) || '|' || max(id) FROM raw.{table}"
    ));
    assert_eq!(
        summary,
        [format!(
            "{MESSAGES}|{MESSAGES}|{MESSAGES}|0|{}",
            MESSAGES - 1
        )],
        "seed {seed}: every message once"
    );
    // Each value where it was produced: id i went to partition i % 3 at offset i / 3.
    let misplaced = project.query(&format!(
        "SELECT count(*)::VARCHAR FROM raw.{table} WHERE _elt_partition <> id % 3 \
         OR _elt_offset <> id // 3 OR text <> 'm' || id OR _elt_key <> 'k' || id"
    ));
    assert_eq!(misplaced, ["0"], "seed {seed}: values as produced");
}

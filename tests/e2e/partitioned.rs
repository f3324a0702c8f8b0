//! Time-partitioned PostgreSQL tables (`partition_by`): three month windows loaded at
//! once create their day partitions beside each other's open loads; a plain sync creates
//! them as its batches need them; reprocessing February as a backfill window replaces
//! exactly February's partitions, and ten SIGKILLs at random moments of that replace leave
//! either the old or the new February, never a mix or a gap. Also the refusals: a merge
//! whose key lacks the partition column, a destination that does not partition.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::backfill::{over, pg_rows_where, run_window, seed_events};
use crate::common::{Project, Random};
use crate::pg::{execute, fresh_database, query};

/// The source's rows: `ELT_PARTITION_ROWS`, 30,000 by default.
fn total() -> u64 {
    std::env::var("ELT_PARTITION_ROWS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(30_000)
}

/// `public.events`: [`total`] rows over 2024-01-01 to 2024-03-31 (91 days), some at
/// midnight, with NULLs and unicode; each note ends in its version, ` v0`.
fn seed(name: &str) -> String {
    seed_events(name, total(), 91, " v0")
}

fn project(source: &str, destination: &str, stream: &str) -> Project {
    Project::new(&format!(
        r#"
[sources.pg]
type = "postgres"
url = "{source}"
batch_rows = 500

{destination}

[connections.bf]
source = "pg"
destination = "dest"
dataset = "raw"
streams = [{{ name = "public.events", sync = "incremental", cursor = "at", table = "events", {stream} }}]
"#
    ))
}

const FEBRUARY: &str = "at >= '2024-02-01 00:00:00+00' AND at < '2024-03-01 00:00:00+00'";

/// The stderr of a sync that the config refuses (exit 2).
fn refused_config(project: &Project) -> String {
    project
        .elt(&["sync", "--connection", "bf"])
        .expect_code(2)
        .stderr()
}

/// Each partition of raw.events with its relfilenode (a TRUNCATE gives a new one).
fn partitions(dest: &str) -> BTreeMap<String, String> {
    query(
        dest,
        "SELECT c.relname || '=' || c.relfilenode FROM pg_inherits i
           JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'raw.events'::regclass ORDER BY 1",
    )
    .into_iter()
    .map(|line| {
        let (name, node) = line.split_once('=').unwrap();
        (name.to_owned(), node.to_owned())
    })
    .collect()
}

/// The distinct versions of the notes of February in `table`.
fn february_versions(url: &str, table: &str) -> Vec<String> {
    query(
        url,
        &format!(
            "SELECT DISTINCT substring(note FROM ' (v[0-9]+)$') FROM {table}
             WHERE {FEBRUARY} AND note IS NOT NULL ORDER BY 1"
        ),
    )
}

#[test]
fn reprocessing_a_month_replaces_exactly_its_partitions_and_survives_ten_kills() {
    let source = seed("part_src");
    let dest = fresh_database("part_dst");
    // Leases of 1 s: a killed worker's lease runs out by the next attempt.
    let destination =
        format!("[destinations.dest]\ntype = \"postgres\"\nurl = \"{dest}\"\nlease_secs = 1\n");
    let granularity = r#"write = "append", partition_by = { column = "at", granularity = "day" }"#;
    let project = project(&source, &destination, granularity);
    let plan = project
        .elt(
            &[
                &over("plan", ("2024-01-01", "2024-04-01"), "month")[..],
                &["--json"],
            ]
            .concat(),
        )
        .expect_code(0);
    let plan_path = project.dir().join("plan.json");
    std::fs::write(&plan_path, plan.stdout()).unwrap();
    let plan = plan_path.to_str().unwrap();
    // The three months load at once: each attaches its partitions while the others' load
    // transactions are open (an ATTACH does not wait for them).
    let started = Instant::now();
    std::thread::scope(|scope| {
        for month in ["0", "1", "2"] {
            let project = &project;
            scope.spawn(move || {
                let run = [&run_window(plan, month)[..], &["--quiet"]].concat();
                project.elt(&run).expect_code(0);
            });
        }
    });
    println!("three months at once: {:?}", started.elapsed());
    let before = partitions(&dest);
    assert_eq!(before.len(), 91, "{before:?}");
    assert!(before.contains_key("events__p20240229"), "{before:?}");
    assert_eq!(
        pg_rows_where(&dest, "raw.events", "true"),
        pg_rows_where(&source, "events", "true")
    );
    let kind = query(
        &dest,
        "SELECT relkind::text FROM pg_class WHERE oid = 'raw.events'::regclass",
    );
    assert_eq!(kind, ["p"]);
    let options = ["--force", "--quiet", "--wait-for-lock", "60"];
    let february = [&run_window(plan, "1")[..], &options].concat();
    // How long one replace of February takes, unkilled: the range the kills fall in.
    let started = Instant::now();
    project.elt(&february).expect_code(0);
    let one_run = started.elapsed();
    let outside = format!("NOT ({FEBRUARY})");
    let untouched = pg_rows_where(&dest, "raw.events", &outside);

    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("seed {seed}; one replace of February takes {one_run:?}");
    let mut random = Random(seed);
    let (mut committed, mut killed_mid_run) = (0, 0);
    for version in 1..=10 {
        execute(
            &source,
            &format!(
                "UPDATE events SET note = regexp_replace(note, ' v[0-9]+$', ' v{version}') \
                 WHERE {FEBRUARY}"
            ),
        );
        let mut child = project.command(&february).spawn().expect("start elt");
        let wait = Duration::from_millis(random.below(one_run.as_millis() as u64 + 1));
        std::thread::sleep(wait);
        if child.try_wait().expect("poll").is_none() {
            killed_mid_run += 1;
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        // The killed worker's lease runs out before the next one starts.
        std::thread::sleep(Duration::from_millis(1_100));
        // Either the old February or the new one, whole: never a mix, never a gap.
        let seen = february_versions(&dest, "raw.events");
        let expected = |v: u32| -> Vec<String> {
            pg_rows_where(&source, "events", FEBRUARY)
                .into_iter()
                .map(|r| r.replace(&format!(" v{version}"), &format!(" v{v}")))
                .collect()
        };
        let now = pg_rows_where(&dest, "raw.events", FEBRUARY);
        if seen == [format!("v{version}")] {
            committed = version;
        }
        assert_eq!(
            now,
            expected(committed),
            "after the kill at {wait:?} of version {version}, February is {seen:?}"
        );
        assert_eq!(pg_rows_where(&dest, "raw.events", &outside), untouched);
    }
    println!("{killed_mid_run} of 10 kills landed while the replace ran");
    project.elt(&february).expect_code(0);
    assert_eq!(
        pg_rows_where(&dest, "raw.events", "true"),
        pg_rows_where(&source, "events", "true")
    );
    // February's 29 partitions were replaced; January's and March's are the same files.
    let after = partitions(&dest);
    assert_eq!(after.len(), 91);
    for (name, node) in &after {
        let replaced = name.starts_with("events__p202402");
        assert_eq!(before[name] != *node, replaced, "{name}");
    }
    // Every February row is from the run that recorded the window, loaded once.
    let from_run = query(
        &dest,
        &format!(
            "SELECT count(*)::text FROM raw.events e JOIN raw._elt_windows w
               ON w.window_from = '2024-02-01T00:00:00.000000Z'
             WHERE e._elt_run_id::text = w.run_id AND e.{FEBRUARY}"
        ),
    );
    assert_eq!(
        from_run,
        [pg_rows_where(&source, "events", FEBRUARY).len().to_string()]
    );
}

#[test]
fn monthly_partitions_merge_by_a_key_that_holds_the_partition_column() {
    let source = seed("part_merge_src");
    let dest = fresh_database("part_merge_dst");
    let destination = format!("[destinations.dest]\ntype = \"postgres\"\nurl = \"{dest}\"\n");
    let refused = project(
        &source,
        &destination,
        r#"write = "merge", partition_by = { column = "at", granularity = "month" }"#,
    );
    let error = refused_config(&refused);
    assert!(
        error.contains("`partition_by`") && error.contains("add at to `primary_key`"),
        "{error}"
    );
    let project = project(
        &source,
        &destination,
        r#"write = "merge", primary_key = ["id", "at"], partition_by = { column = "at", granularity = "month" }"#,
    );
    project
        .elt(&["sync", "--connection", "bf", "--quiet"])
        .expect_code(0);
    execute(
        &source,
        "UPDATE events SET note = 'changed', at = '2024-03-31 23:59:59+00' WHERE id % 1000 = 0",
    );
    project
        .elt(&["sync", "--connection", "bf", "--quiet"])
        .expect_code(0);
    let names: Vec<String> = partitions(&dest).into_keys().collect();
    assert_eq!(
        names,
        ["events__p202401", "events__p202402", "events__p202403"]
    );
    // A moved partition column makes a new key (id, at): the old row stays, as the key says.
    assert_eq!(
        query(&dest, "SELECT count(*)::text FROM raw.events"),
        [(total() + total() / 1000).to_string()]
    );
    assert_eq!(
        query(
            &dest,
            "SELECT count(*)::text FROM raw.events__p202403 WHERE note = 'changed'"
        ),
        [(total() / 1000).to_string()]
    );
    // A full refresh empties and refills the partitioned table in one transaction.
    project
        .elt(&["sync", "--connection", "bf", "--full-refresh", "--quiet"])
        .expect_code(0);
    assert_eq!(
        pg_rows_where(&dest, "raw.events", "true"),
        pg_rows_where(&source, "events", "true")
    );
    assert_eq!(partitions(&dest).len(), 3);
}

#[test]
fn a_destination_that_does_not_partition_refuses_partition_by_before_reading() {
    let source = seed("part_duck_src");
    let destination = "[destinations.dest]\ntype = \"duckdb\"\npath = \"bf.duckdb\"\n";
    let project = project(
        &source,
        destination,
        r#"write = "append", partition_by = { column = "at", granularity = "week" }"#,
    );
    let error = refused_config(&project);
    assert!(
        error.contains("partition_by") && error.contains("week"),
        "{error}"
    );
    project.write_config(
        &std::fs::read_to_string(project.dir().join("elt.toml"))
            .unwrap()
            .replace("week", "day"),
    );
    // Refused before a row is read: the stream fails, nothing is created.
    let run = project.elt(&["sync", "--connection", "bf"]).expect_code(1);
    let error = run.stdout();
    assert!(run.stdout().contains(" 0 rows read"), "{error}");
    assert!(
        error.contains("`partition_by` needs a destination that partitions tables"),
        "{error}"
    );
}

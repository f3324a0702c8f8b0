//! The conformance kit (`elt_core::testkit`) against each source: `sample` and `calendar`
//! in memory, `http` against a local test server, `kafka` against a fresh topic on the test
//! broker (`ELT_TEST_KAFKA`, default 127.0.0.1:9092: `scripts/kafka.sh start`), `postgres`
//! and `mysql` against a fresh database on the local servers
//! (`ELT_TEST_PG_URL`, default `postgres://postgres@127.0.0.1:5432/test`;
//! `ELT_TEST_MYSQL_URL`, default `mysql://root@127.0.0.1:3306/test`).

use elt_core::testkit::http::{Reply, TestServer};
use elt_core::testkit::{ConfigCases, SourceKit, fresh_pg_database};
use serde_json::json;
use sqlx::{Connection, Executor, MySqlConnection, PgConnection};

fn factory(kind: &str) -> elt_core::SourceFactory {
    elt_connectors::sources()
        .into_iter()
        .find(|f| f.kind == kind)
        .expect("registered")
}

#[tokio::test(flavor = "multi_thread")]
async fn sample_passes_the_kit() {
    let kit = SourceKit {
        factory: factory("sample"),
        cases: ConfigCases {
            config: json!({ "customers": 300, "products": 50, "orders": 2000, "batch_rows": 250 }),
            bad_options: vec![("batch_rows", json!(0)), ("orders", json!("many"))],
            unreachable: None,
            secrets: vec![],
        },
        streams: vec![],
    };
    for check in kit.run().await {
        println!("sample: {check}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn calendar_passes_the_kit() {
    let kit = SourceKit {
        factory: factory("calendar"),
        cases: ConfigCases {
            config: json!({ "from": "2023-12-25", "to": "2024-03-01", "batch_rows": 7 }),
            bad_options: vec![
                ("from", json!("yesterday")),
                ("to", json!("2023-01-01")),
                ("batch_rows", json!(0)),
            ],
            unreachable: None,
            secrets: vec![],
        },
        streams: vec![],
    };
    for check in kit.run().await {
        println!("calendar: {check}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_passes_the_kit() {
    let url = fresh_pg_database("elt_kit_source").await;
    let mut db = PgConnection::connect(&url).await.unwrap();
    db.execute(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text, updated_at timestamptz NOT NULL);
         -- Ten rows share each timestamp, so checkpoints fall inside groups of equal cursors.
         INSERT INTO items SELECT g, 'item ' || g, timestamptz '2024-01-01' + (g / 10) * interval '1 s'
           FROM generate_series(1, 5000) g;
         CREATE TABLE events (code text, at timestamptz);
         INSERT INTO events SELECT 'e' || g, now() FROM generate_series(1, 100) g;",
    )
    .await
    .unwrap();
    let kit = SourceKit {
        factory: factory("postgres"),
        cases: ConfigCases {
            config: json!({ "url": url, "batch_rows": 333 }),
            bad_options: vec![
                ("batch_rows", json!(0)),
                ("schemas", json!([])),
                ("connect_timeout_secs", json!(0)),
                ("tls", json!("sometimes")),
            ],
            unreachable: Some(json!({
                "url": "postgres://elt:kit-secret-pw@127.0.0.1:1/elt_kit_source",
                "connect_timeout_secs": 2
            })),
            secrets: vec!["kit-secret-pw".into()],
        },
        streams: vec!["public.items".into(), "public.events".into()],
    };
    for check in kit.run().await {
        println!("postgres: {check}");
    }
}

/// A new, empty MySQL database `name` on the test server; returns its URL. (The tests
/// fill tables from MariaDB's `seq_1_to_N` tables.)
async fn fresh_mysql_database(name: &str) -> String {
    let admin = std::env::var("ELT_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into());
    let mut conn = MySqlConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("MySQL at {admin} is not reachable: {e}"));
    let sql = format!("DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}`");
    conn.execute(sql.as_str())
        .await
        .expect("recreate the database");
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}

#[tokio::test(flavor = "multi_thread")]
async fn mysql_passes_the_kit() {
    let url = fresh_mysql_database("elt_kit_source").await;
    let mut db = MySqlConnection::connect(&url).await.unwrap();
    db.execute(
        "CREATE TABLE items (id bigint PRIMARY KEY, name varchar(50), updated_at datetime(6) NOT NULL);
         -- Ten rows share each timestamp, so checkpoints fall inside groups of equal cursors.
         INSERT INTO items SELECT seq, CONCAT('item ', seq),
           TIMESTAMP '2024-01-01 00:00:00' + INTERVAL (seq DIV 10) SECOND FROM seq_1_to_5000;
         CREATE TABLE events (code varchar(10), at timestamp(3) NULL);
         INSERT INTO events SELECT CONCAT('e', seq), NOW(3) FROM seq_1_to_100;",
    )
    .await
    .unwrap();
    let kit = SourceKit {
        factory: factory("mysql"),
        cases: ConfigCases {
            config: json!({ "url": url, "batch_rows": 333 }),
            bad_options: vec![
                ("batch_rows", json!(0)),
                ("databases", json!([""])),
                ("connect_timeout_secs", json!(0)),
                ("stall_timeout_secs", json!(0)),
                ("tls", json!("sometimes")),
            ],
            unreachable: Some(json!({
                "url": "mysql://elt:kit-secret-pw@127.0.0.1:1/elt_kit_source",
                "connect_timeout_secs": 2
            })),
            secrets: vec!["kit-secret-pw".into()],
        },
        streams: vec![
            "elt_kit_source.items".into(),
            "elt_kit_source.events".into(),
        ],
    };
    for check in kit.run().await {
        println!("mysql: {check}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn http_passes_the_kit() {
    // 500 records, five to a timestamp, 40 to a page, filtered by `since` like a real API.
    let records: Vec<serde_json::Value> = (1..=500)
        .map(|i| json!({ "id": i, "name": format!("item {i}"), "updated_at": format!("2024-01-01T00:{:02}:{:02}Z", i / 5 / 60, i / 5 % 60) }))
        .collect();
    let server = TestServer::start(move |request, _| {
        if request.header("authorization") != Some("Bearer kit-secret-token") {
            return Reply::status(401, json!({ "message": "no" }));
        }
        let since = request.param("since").unwrap_or_default();
        let kept: Vec<_> = records
            .iter()
            .filter(|r| r["updated_at"].as_str().unwrap() >= since.as_str())
            .collect();
        let page: usize = request
            .param("page")
            .and_then(|p| p.parse().ok())
            .unwrap_or(1);
        let next = (page * 40 < kept.len()).then(|| page + 1);
        Reply::json(
            json!({ "items": kept.iter().skip((page - 1) * 40).take(40).collect::<Vec<_>>(), "next_page": next }),
        )
    });
    let manifest = std::env::temp_dir().join(format!("elt-kit-http-{}.toml", std::process::id()));
    std::fs::write(
        &manifest,
        r#"
[[streams]]
name = "items"
path = "/items"
records = "/items"
primary_key = ["id"]
cursor = "updated_at"
cursor_param = "since"
# Sorted, so that a read resumes from its checkpoint exactly (unsorted ones read the
# window again, which the kit would count as repeats).
sorted_by_cursor = true
paginator = { type = "cursor_token", path = "/next_page", param = "page" }
"#,
    )
    .unwrap();
    let kit = SourceKit {
        factory: factory("http"),
        cases: ConfigCases {
            config: json!({
                "manifest_path": manifest, "base_url": server.url(), "allow_insecure": true,
                "auth": { "kind": "bearer", "token": "kit-secret-token" }
            }),
            bad_options: vec![
                ("batch_rows", json!(0)),
                ("manifest", json!("no-such-api")),
                ("requests_per_second", json!(0)),
                ("auth", json!({ "kind": "api_key", "key": "k" })),
            ],
            unreachable: Some(json!({
                "manifest_path": manifest, "base_url": "http://127.0.0.1:1", "allow_insecure": true,
                "timeout_secs": 2, "auth": { "kind": "bearer", "token": "kit-secret-token" }
            })),
            secrets: vec!["kit-secret-token".into()],
        },
        streams: vec![],
    };
    for check in kit.run().await {
        println!("http: {check}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_passes_the_kit() {
    use elt_kafka::rskafka::client::ClientBuilder;
    use elt_kafka::rskafka::client::partition::{Compression, UnknownTopicHandling};
    use elt_kafka::rskafka::record::Record;

    let broker = std::env::var("ELT_TEST_KAFKA").unwrap_or_else(|_| "127.0.0.1:9092".to_owned());
    let client = ClientBuilder::new(vec![broker.clone()])
        .build()
        .await
        .unwrap_or_else(|e| {
            panic!("no Kafka broker at {broker} ({e}); run scripts/kafka.sh start")
        });
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = format!("elt_kit_{nanos}");
    elt_kafka::ensure_topic(&client, &topic, 3, 1)
        .await
        .unwrap();
    for partition in 0..3 {
        let records: Vec<Record> = (0..1500)
            .map(|i| Record {
                key: Some(format!("p{partition}-{i}").into_bytes()),
                value: Some(format!("{{\"i\":{i},\"p\":{partition}}}").into_bytes()),
                headers: Default::default(),
                timestamp: elt_kafka::rskafka::chrono::Utc::now(),
            })
            .collect();
        let writer = client
            .partition_client(topic.as_str(), partition, UnknownTopicHandling::Retry)
            .await
            .unwrap();
        // Several produce requests: batches of a fetch end at their boundaries.
        for chunk in records.chunks(250) {
            writer
                .produce(chunk.to_vec(), Compression::NoCompression)
                .await
                .unwrap();
        }
    }
    let kit = SourceKit {
        factory: factory("kafka"),
        cases: ConfigCases {
            config: json!({ "bootstrap_servers": [broker], "topics": [topic], "batch_rows": 333 }),
            bad_options: vec![
                ("batch_rows", json!(0)),
                ("format", json!("xml")),
                ("bootstrap_servers", json!(["no-port"])),
                ("topic_pattern", json!("(")),
            ],
            unreachable: Some(json!({
                "bootstrap_servers": ["127.0.0.1:1"],
                "topics": ["x"],
                "timeout_secs": 2,
                "sasl": { "mechanism": "scram-sha-256", "username": "elt", "password": "kit-secret-pw" }
            })),
            secrets: vec!["kit-secret-pw".into()],
        },
        streams: vec![],
    };
    for check in kit.run().await {
        println!("kafka: {check}");
    }
}

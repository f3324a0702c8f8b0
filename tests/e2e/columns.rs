//! Column selection (`columns = { include | exclude }`): a PostgreSQL column the stream
//! leaves out is never named in the source's query (the reading role may not even select
//! it), and is absent from the raw table and from dead letters; key, cursor and
//! soft-delete columns cannot be left out.

use crate::common::{Project, query, sample_toml};
use crate::pg::{execute, fresh_database};

#[test]
fn an_excluded_postgres_column_is_never_selected() {
    let url = fresh_database("elt_columns");
    execute(
        &url,
        "CREATE TABLE people (id bigint PRIMARY KEY, name text, email text,
                              updated_at timestamptz NOT NULL);
         INSERT INTO people SELECT i, 'name ' || i, 'user' || i || '@example.com',
                                   '2024-01-01'::timestamptz + i * interval '1 minute'
         FROM generate_series(1, 500) i;
         DROP ROLE IF EXISTS elt_columns_reader;
         CREATE ROLE elt_columns_reader LOGIN;
         GRANT SELECT (id, name, updated_at) ON people TO elt_columns_reader;",
    );
    // The role may read every column but `email`: any query naming it fails.
    let reader = url.replacen("postgres@", "elt_columns_reader@", 1);
    let streams = r#"streams = [{ name = "public.people", columns = { exclude = ["email"] } }]"#;
    let project = Project::new(&crate::pg::project_toml(&reader, "", streams));
    let plan = project.elt(&["plan", "--connection", "pg"]).expect_code(0);
    assert!(
        plan.stdout().contains("leaving out email"),
        "{}",
        plan.stdout()
    );
    let discover = project
        .elt(&["discover", "--connection", "pg"])
        .expect_code(0);
    let email = discover
        .stdout()
        .lines()
        .find(|l| l.trim_start().starts_with("email"))
        .map(str::to_owned);
    assert!(
        email
            .as_deref()
            .is_some_and(|l| l.ends_with("[left out by `columns`]")),
        "{}",
        discover.stdout()
    );
    let summary = project
        .elt(&["sync", "--connection", "pg", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(
        crate::common::stream(&summary, "public.people")["rows_loaded"],
        500
    );
    let columns = project.query(
        "SELECT string_agg(column_name, ',' ORDER BY column_index) FROM duckdb_columns()
         WHERE table_name = 'public_people' AND NOT starts_with(column_name, '_elt')",
    );
    assert_eq!(columns, ["id,name,updated_at"]);
    // An incremental rerun reads only changes, still without the column.
    execute(
        &url,
        "UPDATE people SET name = 'renamed', updated_at = now() WHERE id = 7",
    );
    let summary = project
        .elt(&["sync", "--connection", "pg", "--json"])
        .expect_code(0)
        .json();
    assert_eq!(
        crate::common::stream(&summary, "public.people")["rows_read"],
        1
    );
    // Without the selection the same role fails on the column it may not read.
    project.write_config(&crate::pg::project_toml(
        &reader,
        "",
        r#"streams = [{ name = "public.people" }]"#,
    ));
    let denied = project.elt(&["sync", "--connection", "pg", "--full-refresh"]);
    let output = format!("{}{}", denied.stdout(), denied.stderr());
    assert_ne!(denied.code(), 0, "{output}");
    assert!(output.contains("permission denied"), "{output}");
}

#[test]
fn selected_columns_reach_the_table_and_dead_letters_and_keys_stay() {
    // Orders whose status is "placed" fail the JSON Schema and become dead letters.
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("orders.schema.json");
    std::fs::write(
        &schema,
        r#"{ "properties": { "status": { "not": { "const": "placed" } } } }"#,
    )
    .unwrap();
    let streams = format!(
        r#"streams = [{{ name = "orders", columns = {{ exclude = ["note", "shipping"] }}, json_schema_path = "{}" }}]"#,
        schema.display()
    );
    let project = Project::new(&format!("{}{streams}\n", sample_toml(2_000, 500, 0)));
    let summary = project
        .elt(&["sync", "--connection", "demo", "--json"])
        .expect_code(0)
        .json();
    let orders = crate::common::stream(&summary, "orders");
    assert!(
        orders["rows_dead_lettered"].as_u64().unwrap() > 0,
        "{orders}"
    );
    let columns = project.column_types("orders", &["note", "shipping", "status"]);
    assert_eq!(columns, "status VARCHAR");
    let records = query(
        &project.db(),
        "SELECT string_agg(record::VARCHAR, '\n') FROM raw._elt_dead_letter",
    );
    assert!(records[0].contains("\"status\""), "{records:?}");
    assert!(
        !records[0].contains("\"note\"") && !records[0].contains("\"shipping\""),
        "{records:?}"
    );
    // Leaving out the key or the cursor is refused by name.
    for column in ["id", "updated_at"] {
        let streams =
            format!(r#"streams = [{{ name = "orders", columns = {{ exclude = ["{column}"] }} }}]"#);
        project.write_config(&format!("{}{streams}\n", sample_toml(2_000, 500, 0)));
        let stderr = project
            .elt(&["sync", "--connection", "demo"])
            .expect_code(2)
            .stderr();
        assert!(
            stderr.contains(&format!("leaves out \"{column}\"")),
            "{stderr}"
        );
    }
    let streams = r#"streams = [{ name = "orders", columns = { include = ["id", "updated_at", "status"] } }]"#;
    project.write_config(&format!("{}{streams}\n", sample_toml(2_000, 500, 0)));
    project
        .elt(&["sync", "--connection", "demo", "--full-refresh"])
        .expect_code(0);
    let kept = project.query(
        "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM duckdb_columns()
         WHERE table_name = 'orders' AND NOT starts_with(column_name, '_elt')",
    );
    assert_eq!(kept, ["id,status,updated_at"]);
}

#[test]
fn an_http_field_left_out_is_neither_checked_nor_kept() {
    use elt_core::testkit::http::{Reply, TestServer};
    use serde_json::json;
    let server = TestServer::start(|_, _| {
        Reply::json(json!([
            { "id": 1, "code": 5, "name": "a" },
            // A code that does not fit its column: ignored, since the column is left out.
            { "id": 2, "code": "secret-code-2", "name": "b" },
            // A key that does not fit: a dead letter, without the code.
            { "id": "three", "code": "secret-code-3", "name": "c" },
        ]))
    });
    let manifest = r#"
[[streams]]
name = "people"
path = "/people"
primary_key = ["id"]
schema = { type = "object", properties = { id = { type = "integer" }, code = { type = "integer" }, name = { type = "string" } } }
"#;
    let project = crate::http::project(&server, manifest, "");
    let config = std::fs::read_to_string(project.dir().join("elt.toml")).unwrap();
    project.write_config(&format!(
        "{config}streams = [{{ name = \"people\", columns = {{ exclude = [\"code\"] }} }}]\n"
    ));
    let summary = project
        .elt(&["sync", "--connection", "api", "--json"])
        .expect_code(0)
        .json();
    let people = crate::common::stream(&summary, "people");
    assert_eq!(
        (
            people["rows_loaded"].as_u64(),
            people["rows_dead_lettered"].as_u64()
        ),
        (Some(2), Some(1)),
        "{people}"
    );
    let letters = project.query("SELECT record::VARCHAR FROM raw._elt_dead_letter");
    assert_eq!(letters.len(), 1);
    assert!(
        letters[0].contains("three") && !letters[0].contains("secret-code"),
        "{letters:?}"
    );
    assert_eq!(
        project.column_types("people", &["id", "code", "name"]),
        "id BIGINT, name VARCHAR"
    );
}

#[test]
fn hashed_columns_are_salted_sha256_in_the_table_and_in_dead_letters() {
    let url = fresh_database("elt_hashing");
    execute(
        &url,
        "CREATE TABLE people (id bigint PRIMARY KEY, email text, name text,
                              updated_at timestamptz NOT NULL);
         INSERT INTO people SELECT i, CASE WHEN i % 10 <> 0 THEN 'user' || i || '@example.com' END,
                                   'name ' || i, '2024-01-01'::timestamptz + i * interval '1 minute'
         FROM generate_series(1, 300) i;",
    );
    let streams = r#"streams = [{ name = "public.people", hash = ["email", "id"] }]"#;
    let toml = format!(
        "hash_salt = \"${{ELT_T_SALT}}\"\n{}",
        crate::pg::project_toml(&url, "", streams)
    );
    let project = Project::new(&toml);
    let sync = |project: &Project| {
        project.elt_with_env(
            &["sync", "--connection", "pg", "--json"],
            &[("ELT_T_SALT", "pepper-7")],
        )
    };
    let plan = project.elt_with_env(
        &["plan", "--connection", "pg"],
        &[("ELT_T_SALT", "pepper-7")],
    );
    assert!(
        plan.stdout()
            .contains("hash: email, id (each value becomes the hex SHA-256"),
        "{}",
        plan.stdout()
    );
    let discover = project
        .elt_with_env(
            &["discover", "--connection", "pg", "--json"],
            &[("ELT_T_SALT", "pepper-7")],
        )
        .expect_code(0)
        .json();
    let marks: Vec<String> = discover["streams"][0]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{}:{}:{}", c["name"], c["hashed"], c["left_out"]))
        .collect();
    assert_eq!(
        marks,
        [
            "\"id\":true:false",
            "\"email\":true:false",
            "\"name\":false:false",
            "\"updated_at\":false:false"
        ]
    );
    let summary = sync(&project).expect_code(0).json();
    assert_eq!(
        crate::common::stream(&summary, "public.people")["rows_loaded"],
        300
    );
    // PostgreSQL computes what every value must have become.
    let expected = crate::pg::query(
        &url,
        "SELECT encode(sha256(convert_to('pepper-7' || id::text, 'UTF8')), 'hex') || ' ' ||
                coalesce(encode(sha256(convert_to('pepper-7' || email, 'UTF8')), 'hex'), 'NULL')
         FROM people ORDER BY 1",
    );
    let loaded = project
        .query("SELECT id || ' ' || coalesce(email, 'NULL') FROM raw.public_people ORDER BY 1");
    assert_eq!(loaded, expected);
    assert_eq!(
        loaded.iter().filter(|l| l.ends_with("NULL")).count(),
        30,
        "NULL stays NULL"
    );
    // An incremental merge by the hashed key updates the same row.
    execute(
        &url,
        "UPDATE people SET name = 'renamed', updated_at = now() WHERE id = 5",
    );
    sync(&project).expect_code(0);
    let renamed =
        project.query("SELECT count(*)::VARCHAR FROM raw.public_people WHERE name = 'renamed'");
    assert_eq!(renamed, ["1"]);
    assert_eq!(
        project.query("SELECT count(*)::VARCHAR FROM raw.public_people"),
        ["300"]
    );
    // Without the salt the sync stops before reading; the cursor cannot be hashed.
    let stderr = project.elt(&["sync", "--connection", "pg"]).stderr();
    assert!(stderr.contains("ELT_T_SALT"), "{stderr}");
    let cursor = toml.replace(r#"hash = ["email", "id"]"#, r#"hash = ["updated_at"]"#);
    project.write_config(&cursor);
    let stderr = sync(&project).expect_code(2).stderr();
    assert!(stderr.contains("cannot be hashed"), "{stderr}");
}

#[test]
fn a_dead_letter_keeps_only_the_digest_of_a_hashed_field() {
    use elt_core::testkit::http::{Reply, TestServer};
    use serde_json::json;
    let server = TestServer::start(|_, _| {
        Reply::json(json!([
            { "id": 1, "email": "kept@example.com" },
            { "id": "bad", "email": "leaked@example.com" },
        ]))
    });
    let manifest = r#"
[[streams]]
name = "people"
path = "/people"
primary_key = ["id"]
schema = { type = "object", properties = { id = { type = "integer" }, email = { type = "string" } } }
"#;
    let project = crate::http::project(&server, manifest, "");
    let config = std::fs::read_to_string(project.dir().join("elt.toml")).unwrap();
    project.write_config(&format!(
        "hash_salt = \"s\"\n{config}streams = [{{ name = \"people\", hash = [\"email\"] }}]\n"
    ));
    project.elt(&["sync", "--connection", "api"]).expect_code(0);
    let letters = project.query("SELECT record::VARCHAR FROM raw._elt_dead_letter");
    assert_eq!(letters.len(), 1);
    let digest = |text: &str| elt_core::hashing::Hasher::new(vec![], "s").digest(text);
    assert!(
        letters[0].contains(&digest("leaked@example.com")),
        "{letters:?}"
    );
    assert!(!letters[0].contains("leaked@example.com\""), "{letters:?}");
    let emails = project.query("SELECT email FROM raw.people");
    assert_eq!(emails, [digest("kept@example.com")]);
}

#[test]
fn data_test_samples_and_run_records_hold_only_digests_of_hashed_columns() {
    let toml = format!(
        "hash_salt = \"s\"\n{}streams = [{{ name = \"customers\", hash = [\"email\"] }}]\n\n\
         [[connections.demo.tests]]\nstream = \"customers\"\naccepted_values = {{ email = [\"nobody\"] }}\n",
        sample_toml(200, 100, 0)
    );
    let project = Project::new(&toml);
    project
        .elt(&["sync", "--connection", "demo"])
        .expect_code(0);
    let run = project
        .elt(&["test", "--connection", "demo", "--json"])
        .expect_code(1)
        .json();
    let samples = run["tests"][0]["samples"].as_array().unwrap().clone();
    assert!(!samples.is_empty(), "{run:#}");
    for sample in &samples {
        let text = sample.as_str().unwrap();
        assert!(
            text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit()),
            "a digest, not an address: {text}"
        );
    }
    let rows_with = |pattern: &str| {
        project.query(&format!(
            "SELECT count(*)::VARCHAR FROM raw._elt_runs r WHERE CAST(r AS VARCHAR) LIKE '%{pattern}%'"
        ))
    };
    assert_ne!(
        rows_with("customers"),
        ["0"],
        "the run log names the stream"
    );
    assert_eq!(rows_with("@"), ["0"], "no address in the run log");
}

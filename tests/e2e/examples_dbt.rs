//! examples/dbt works as written: on a demo project made by `elt init`, synced at two
//! generations of the sample data (so some customers have two versions), the committed
//! `sources.yml` files equal what `elt dbt-sources` generates, and `dbt build` (dbt-duckdb,
//! in the Python environment of scripts/python-envs.sh) builds the staging view and the
//! star schema with every dbt test passing: `dim_customers` has one current version per
//! customer and validity ranges that do not overlap, `fct_orders` has a surrogate key into
//! every dimension. A planted overlap makes the range test fail.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common::{Project, query};
use crate::examples::{assert_success, demo_project, examples, python_env};

/// The connections the dbt project reads, and the file each one's sources go to.
const SOURCES: [(&str, &str); 3] = [
    ("demo", "sources.yml"),
    ("demo_history", "demo_history_sources.yml"),
    ("demo_dates", "demo_dates_sources.yml"),
];

/// Copies a directory tree, without dbt's `target` and `logs`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" || name == "logs" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

fn sync_all(project: &Project) {
    for (connection, _) in SOURCES {
        project
            .elt(&["sync", "--connection", connection, "--quiet"])
            .expect_code(0);
    }
}

/// Regenerates each connection's sources file in `staging` and checks the committed one.
fn check_generated_sources(project: &Project, staging: &Path) {
    for (connection, file) in SOURCES {
        let path = staging.join(file);
        std::fs::remove_file(&path).unwrap();
        project
            .elt(&[
                "dbt-sources",
                "--connection",
                connection,
                "--output",
                path.to_str().unwrap(),
            ])
            .expect_code(0);
        let generated = std::fs::read_to_string(&path).unwrap();
        let committed =
            std::fs::read_to_string(examples().join("dbt/models/staging").join(file)).unwrap();
        assert_eq!(
            generated, committed,
            "examples/dbt/models/staging/{file} is stale: regenerate it with \
             `elt dbt-sources --connection {connection} -o examples/dbt/models/staging/{file}`"
        );
    }
}

#[test]
fn dbt_builds_the_star_schema_on_generated_sources() {
    let project = demo_project();
    sync_all(&project);
    // Generation 1 updates about 1% of the customers: they get a second version.
    let config = std::fs::read_to_string(project.dir().join("elt.toml")).unwrap();
    assert!(config.contains("\ngeneration = 0\n"));
    project.write_config(&config.replace("\ngeneration = 0\n", "\ngeneration = 1\n"));
    sync_all(&project);
    let dbt_dir = project.dir().join("dbt");
    copy_tree(&examples().join("dbt"), &dbt_dir);
    check_generated_sources(&project, &dbt_dir.join("models/staging"));
    let Some(bin) = python_env("dbt") else {
        return;
    };
    let dbt = |args: &[&str]| -> Output {
        Command::new(bin.join("dbt"))
            .args(args)
            .arg("--no-use-colors")
            .current_dir(&dbt_dir)
            .env("ELT_DUCKDB_PATH", project.db())
            .env("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
            .stdin(Stdio::null())
            .output()
            .expect("run dbt")
    };
    let build = dbt(&["build"]);
    assert_success(&build, "dbt build");
    let out = String::from_utf8_lossy(&build.stdout);
    assert!(out.contains("ERROR=0"), "{out}");
    for test in [
        // Generated from the raw tables and the connection's own data tests.
        "source_unique_demo_orders_id",
        "source_accepted_values_demo_orders_status",
        "source_relationships_demo_orders_customer_id",
        "source_not_null_demo_orders_placed_at",
        "source_unique_demo_dates_dates_date",
        // The star schema's.
        "dim_customers_validity_ranges_do_not_overlap",
        "dim_customers_have_one_current_version",
        "relationships_fct_orders_customer_sk",
        "relationships_fct_orders_placed_date_key",
    ] {
        assert!(out.contains(test), "{test} ran: {out}");
    }
    let db = project.db();
    let one = |sql: &str| query(&db, sql).remove(0);
    assert_eq!(
        one("SELECT count(*)::VARCHAR FROM main_staging.stg_orders"),
        "20200"
    );
    // Some customers changed: more versions than customers, one current each.
    let versions = one(
        "SELECT count(*) || ':' || count(DISTINCT customer_id) || ':' \
         || count(*) FILTER (WHERE is_current) || ':' || max(version) \
         FROM main_marts.dim_customers",
    );
    let parts: Vec<u64> = versions.split(':').map(|p| p.parse().unwrap()).collect();
    assert!(
        parts[0] > parts[1] && parts[1] == parts[2] && parts[3] == 2,
        "{versions}"
    );
    // Every order found its customer's version, product and day.
    assert_eq!(
        one(
            "SELECT count(*) || ':' || count(customer_sk) || ':' || count(product_sk) \
             || ':' || count(placed_date_key) FROM main_marts.fct_orders"
        ),
        "20200:20200:20200:20200"
    );

    // A planted overlap: the range test fails and names it.
    let conn = duckdb::Connection::open(&db).unwrap();
    conn.execute_batch(
        "UPDATE main_marts.dim_customers SET valid_to = TIMESTAMPTZ '9999-12-31 00:00:00+00'
         WHERE version = 1 AND customer_id = (
           SELECT min(customer_id) FROM main_marts.dim_customers WHERE version = 2)",
    )
    .unwrap();
    drop(conn);
    let overlap = dbt(&[
        "test",
        "--select",
        "dim_customers_validity_ranges_do_not_overlap",
    ]);
    let out = String::from_utf8_lossy(&overlap.stdout);
    assert!(
        !overlap.status.success() && out.contains("Got 1 result"),
        "{out}"
    );

    // Freshness reads the cursor: the demo's rows are dated 2024, so they are stale.
    let freshness = dbt(&["source", "freshness"]);
    let out = String::from_utf8_lossy(&freshness.stdout);
    assert!(
        !freshness.status.success() && out.contains("ERROR STALE"),
        "{out}"
    );
}

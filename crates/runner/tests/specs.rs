//! The JSON Schemas under `specs/` are generated from the code (connector config structs,
//! the `--json` summary); this test fails when they drift. `make specs` (ELT_BLESS=1)
//! rewrites them.

use std::path::PathBuf;

/// Compares (or, with ELT_BLESS, writes) `specs/{path}.json`.
fn check(path: &str, spec: serde_json::Value) -> Option<String> {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../specs/{path}.json"));
    let generated = serde_json::to_string_pretty(&spec).unwrap() + "\n";
    if std::env::var_os("ELT_BLESS").is_some() {
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, &generated).unwrap();
        return None;
    }
    let stored = std::fs::read_to_string(&file).unwrap_or_default();
    (stored != generated).then(|| format!("{} is out of date", file.display()))
}

#[test]
fn specs_match_the_code() {
    let mut stale = Vec::new();
    for (kind, _) in elt_runner::registry::sources() {
        let spec = elt_runner::registry::source(kind).unwrap().spec();
        stale.extend(check(&format!("sources/{kind}"), spec));
    }
    for (kind, _) in elt_runner::registry::destinations() {
        let spec = elt_runner::registry::destination(kind).unwrap().spec();
        stale.extend(check(&format!("destinations/{kind}"), spec));
    }
    stale.extend(check(
        "sync-summary.schema",
        elt_runner::report::summary_schema(),
    ));
    assert!(stale.is_empty(), "{}; run `make specs`", stale.join("; "));
}

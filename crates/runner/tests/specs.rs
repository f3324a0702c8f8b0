//! The connector specs under `specs/` are generated from the config structs; this test
//! fails when they drift. `make specs` (ELT_BLESS=1) rewrites them.

use std::path::PathBuf;

fn check(role: &str, kind: &str, spec: serde_json::Value) -> Option<String> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../specs/{role}/{kind}.json"));
    let generated = serde_json::to_string_pretty(&spec).unwrap() + "\n";
    if std::env::var_os("ELT_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        return None;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    (stored != generated).then(|| format!("{} is out of date", path.display()))
}

#[test]
fn specs_match_the_config_structs() {
    let mut stale = Vec::new();
    for (kind, _) in elt_runner::registry::sources() {
        stale.extend(check(
            "sources",
            kind,
            elt_runner::registry::source(kind).unwrap().spec(),
        ));
    }
    for (kind, _) in elt_runner::registry::destinations() {
        stale.extend(check(
            "destinations",
            kind,
            elt_runner::registry::destination(kind).unwrap().spec(),
        ));
    }
    assert!(stale.is_empty(), "{}; run `make specs`", stale.join("; "));
}

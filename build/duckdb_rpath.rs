//! Shared build script of the crates whose binaries or tests link DuckDB.
//!
//! With the prebuilt library (`DUCKDB_LIB_DIR`, set in `.cargo/config.toml`), the binaries
//! get an rpath to it so they run without `LD_LIBRARY_PATH`. With the `bundled` feature
//! DuckDB is linked statically and this does nothing.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    if std::env::var_os("CARGO_FEATURE_BUNDLED").is_some() {
        return;
    }
    let Ok(dir) = std::env::var("DUCKDB_LIB_DIR") else {
        return;
    };
    if !Path::new(&dir).join("libduckdb.so").exists() {
        panic!(
            "libduckdb.so is missing from {dir}: run scripts/fetch-duckdb.sh (the Makefile does), \
             or build with --features bundled"
        );
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
}

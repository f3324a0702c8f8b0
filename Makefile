# The two commands of the README, and the pieces they need.
# DuckDB comes prebuilt (scripts/fetch-duckdb.sh); `cargo build --features elt-runner/bundled`
# compiles it from source instead.

.PHONY: demo test duckdb python-envs test-services specs bench

duckdb:
	@./scripts/fetch-duckdb.sh

## Sync the demo connection of ./elt.toml (sample data into data/demo.duckdb).
demo: duckdb
	cargo run --quiet --bin elt -- sync --connection demo

## Python environments for the Airflow, Dagster and dbt examples' tests (reused when present).
python-envs:
	@./scripts/python-envs.sh

## Programs the tests start themselves (sshd, a Kafka broker), installed when missing.
test-services:
	@./scripts/test-services.sh

## Run every test (PostgreSQL and MariaDB must be running; .ci/run starts them).
test: duckdb python-envs test-services
	cargo test --workspace

## Regenerate the connector specs under specs/ after changing a config struct.
specs: duckdb
	ELT_BLESS=1 cargo test --quiet -p elt-runner --test specs

## Benchmark against the binary COPY floor on the local PostgreSQL (ROWS=1000000 by default;
## LINEITEM=6000000 adds the TPC-H lineitem-shaped table; CDC=1000000 adds single-row
## updates replayed by change data capture, which needs wal_level = logical; KAFKA=1000000
## adds a topic of JSON messages into DuckDB, on the broker of scripts/kafka.sh).
ROWS ?= 1000000
LINEITEM ?= 0
CDC ?= 0
KAFKA ?= 0
bench: duckdb
	cargo run --release --quiet -p elt-bench -- --rows $(ROWS) --lineitem-rows $(LINEITEM) --cdc-updates $(CDC) --kafka-messages $(KAFKA)

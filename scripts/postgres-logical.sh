#!/usr/bin/env bash
# Gives the local PostgreSQL (ELT_TEST_PG_URL, default the machine's server) what change
# data capture needs: `wal_level = logical` and room for the tests' replication slots and
# WAL senders. Changes the settings with ALTER SYSTEM and restarts the cluster once, only
# when one is short, and only a local Debian cluster (pg_ctlcluster); otherwise it prints
# the SQL to run and goes on, and the cdc tests fail with the same advice.
set -euo pipefail

url="${ELT_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
setting() { psql "$url" -XAtqc "SHOW $1"; }

wanted_slots=64
if [[ $(setting wal_level) == logical && $(setting max_replication_slots) -ge $wanted_slots \
      && $(setting max_wal_senders) -ge 10 ]]; then
  exit 0
fi
fix="ALTER SYSTEM SET wal_level = logical; ALTER SYSTEM SET max_replication_slots = $wanted_slots; ALTER SYSTEM SET max_wal_senders = 16;"
version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1 || true)
if [[ -z $version ]] || ! command -v pg_ctlcluster >/dev/null; then
  echo "postgres-logical: the cdc tests need: $fix and a restart of the server" >&2
  exit 0
fi
echo "postgres-logical: setting wal_level = logical and max_replication_slots = $wanted_slots, restarting PostgreSQL $version"
psql "$url" -XAtqc "ALTER SYSTEM SET wal_level = logical" \
  -c "ALTER SYSTEM SET max_replication_slots = $wanted_slots" -c "ALTER SYSTEM SET max_wal_senders = 16"
pg_ctlcluster --skip-systemctl-redirect "$version" main restart
for _ in $(seq 1 60); do
  pg_isready -h 127.0.0.1 -p 5432 -q && exit 0
  sleep 1
done
echo "postgres-logical: PostgreSQL did not come back after the restart" >&2
exit 1

#!/usr/bin/env bash
# Places a prebuilt libduckdb.so under .duckdb/lib so that the workspace links DuckDB in
# seconds instead of compiling its C++ for 20+ minutes (see docs/ARCHITECTURE.md, "Building").
# The library comes from the npm package of DuckDB's official Node bindings, fetched with the
# ordinary npm client; its version must match the `duckdb` crate pin in Cargo.toml.
# Idempotent: does nothing when the right version is already there.
set -euo pipefail

version="1.5.6-r.1"
package="@duckdb/node-bindings-linux-x64"
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.duckdb/lib"

if [ -f "$dest/libduckdb.so" ] && [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$version" ]; then
  exit 0
fi
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) echo "fetch-duckdb: no prebuilt DuckDB for $(uname -s)-$(uname -m); build with: cargo build --features bundled" >&2
     exit 1 ;;
esac
command -v npm >/dev/null || { echo "fetch-duckdb: npm is needed to fetch the prebuilt DuckDB (or build with --features bundled)" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$package@$version" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work" package/libduckdb.so
mkdir -p "$dest"
mv "$work/package/libduckdb.so" "$dest/libduckdb.so"
echo "$version" > "$dest/VERSION"
echo "fetch-duckdb: DuckDB $version ready in $dest" >&2

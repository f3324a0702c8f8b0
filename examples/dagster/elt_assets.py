"""Dagster assets for elt: one asset per stream of a connection, materialized by one
`elt sync --json` run; each asset's materialization carries the stream's numbers from the
summary (rows read and loaded, watermark, duration, run id).

Copy this file into your code location and add a `elt_connection_assets(...)` call per
connection. Selecting some of a connection's assets syncs only those streams (`--streams`).
A run fails when elt exits non-zero; the streams that committed are still materialized
(exit 4, partial). elt resumes from its own committed state, so retries are safe.

Environment: ELT_BIN (default: elt on PATH), ELT_PROJECT_DIR (the directory of elt.toml,
default /opt/elt).
"""

import json
import os
import subprocess

import dagster as dg

EXIT_CODES = {1: "failed", 2: "configuration error", 3: "lock held", 4: "partially failed"}


def elt_connection_assets(
    connection: str,
    streams: list[str],
    tables: dict[str, str] | None = None,
    wait_for_lock_secs: int = 600,
) -> dg.AssetsDefinition:
    """The assets of `connection`, one per stream, keyed `elt/<connection>/<stream>`.

    `tables` maps a stream to its raw table when the connection renames it."""
    tables = tables or {}

    @dg.multi_asset(
        name=f"elt_{connection}",
        specs=[
            dg.AssetSpec(
                key=["elt", connection, stream],
                description=f"Raw table {tables.get(stream, stream)} loaded by elt "
                f"(connection {connection}, stream {stream}).",
                group_name="elt_raw",
                kinds={"elt"},
                skippable=True,
            )
            for stream in streams
        ],
        can_subset=True,
    )
    def sync(context: dg.AssetExecutionContext):
        selected = [key.path[-1] for key in context.selected_asset_keys]
        command = [
            os.environ.get("ELT_BIN", "elt"),
            "sync",
            "--connection",
            connection,
            "--json",
            "--log-format",
            "json",
            "--wait-for-lock",
            str(wait_for_lock_secs),
        ]
        if sorted(selected) != sorted(streams):
            command += ["--streams", ",".join(selected)]
        proc = subprocess.run(
            command,
            cwd=os.environ.get("ELT_PROJECT_DIR", "/opt/elt"),
            capture_output=True,
            text=True,
            check=False,
        )
        for line in proc.stderr.splitlines():
            context.log.info(line)  # elt's JSON log lines
        summary = json.loads(proc.stdout) if proc.stdout.strip() else {"streams": []}
        failed = []
        for s in summary["streams"]:
            if s["status"] != "succeeded":
                failed.append(f"{s['stream']}: {s['error']}")
                continue
            yield dg.MaterializeResult(
                asset_key=["elt", connection, s["stream"]],
                metadata={
                    "run_id": summary["run_id"],
                    "table": s["table"],
                    "mode": f"{s['sync_mode']}/{s['write_mode']}",
                    "rows_read": s["rows_read"],
                    "rows_loaded": s["rows_loaded"],
                    "watermark_before": s["watermark_before"] or "",
                    "watermark_after": s["watermark_after"] or "",
                    "duration_secs": dg.MetadataValue.float(s["duration_secs"]),
                },
            )
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] if proc.stderr.strip() else []
            raise dg.Failure(
                description=f"elt sync --connection {connection} exited with "
                f"{proc.returncode} ({EXIT_CODES.get(proc.returncode, 'unknown')}): "
                + ("; ".join(failed) or " ".join(tail))
            )

    return sync


demo_assets = elt_connection_assets("demo", ["customers", "products", "orders"])

defs = dg.Definitions(assets=[demo_assets])

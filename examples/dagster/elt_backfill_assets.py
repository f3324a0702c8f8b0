"""Dagster assets for an elt backfill: one daily partition per backfill window. Each
partition's materialization runs `elt backfill run` for that day alone (a one-window plan
whose window is the partition's day), so a Dagster backfill over a range of partitions is
an elt backfill over those windows; the materialization carries the window's rows.

Copy this file into your code location and edit the partitions' start and end. Windows that
are done already are skipped, so rematerializing a partition loads nothing unless forced
(`force=True` in the run config). Into PostgreSQL, partitions load side by side under
per-window leases; into a DuckDB file they queue on its lock (`--wait-for-lock`).

Environment: ELT_BIN (default: elt on PATH), ELT_PROJECT_DIR (the directory of elt.toml,
default /opt/elt).
"""

import json
import os
import subprocess
from datetime import date, timedelta

import dagster as dg

EXIT_CODES = {1: "failed", 2: "configuration error", 3: "lock held"}


class WindowConfig(dg.Config):
    """Run config of one partition's load."""

    force: bool = False


def elt_backfill_asset(
    connection: str,
    stream: str,
    partitions: dg.DailyPartitionsDefinition,
    wait_for_lock_secs: int = 600,
) -> dg.AssetsDefinition:
    """The asset `elt/<connection>/<stream>/backfill`, one partition per UTC day."""

    @dg.asset(
        key=["elt", connection, stream.replace(".", "_"), "backfill"],
        partitions_def=partitions,
        group_name="elt_backfill",
        kinds={"elt"},
        description=f"Stream {stream} of connection {connection}, backfilled a day a window.",
    )
    def window(context: dg.AssetExecutionContext, config: WindowConfig):
        day = date.fromisoformat(context.partition_key)
        command = [
            os.environ.get("ELT_BIN", "elt"),
            "backfill", "run", "--connection", connection, "--stream", stream,
            "--from", day.isoformat(), "--to", (day + timedelta(days=1)).isoformat(),
            "--by", "day", "--window", "0",
            "--json", "--quiet", "--log-format", "json",
            "--wait-for-lock", str(wait_for_lock_secs),
        ]  # fmt: skip
        if config.force:
            command.append("--force")
        proc = subprocess.run(
            command,
            cwd=os.environ.get("ELT_PROJECT_DIR", "/opt/elt"),
            capture_output=True,
            text=True,
            check=False,
        )
        for line in proc.stderr.splitlines():
            context.log.info(line)  # elt's JSON log lines
        if proc.returncode != 0:
            raise dg.Failure(
                description=f"elt backfill run ({stream} {day}) exited with "
                f"{proc.returncode} ({EXIT_CODES.get(proc.returncode, 'unknown')}): "
                f"{proc.stdout[-2000:]}"
            )
        (run,) = json.loads(proc.stdout)
        report = run["report"]
        return dg.MaterializeResult(
            metadata={
                "window": f"[{run['from']}, {run['to']})",
                "skipped": report is None,
                "run_id": report["run_id"] if report else "",
                "rows_loaded": report["streams"][0]["rows_loaded"] if report else 0,
            }
        )

    return window


events_backfill = elt_backfill_asset(
    "bf",
    "public.events",
    dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-11"),
)

defs = dg.Definitions(assets=[events_backfill])

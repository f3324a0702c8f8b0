"""Airflow DAG that runs `elt sync`: one task per connection, or one per stream.

Copy this file into your DAGs folder and edit CONNECTIONS. Each task runs the `elt` binary
with `--json`, writes elt's JSON log lines into the task log, and returns the parsed summary,
so it lands in XCom (`return_value`) for downstream tasks: run id, status, and per stream the
rows read and loaded and the watermark before and after (shape: specs/sync-summary.schema.json).

A task fails when elt exits non-zero: 1 failed, 2 configuration, 3 lock held after
--wait-for-lock, 4 partial (some streams failed; the others committed and their summary is
in the error message). elt resumes from its own committed state, so Airflow retries are safe.

Environment: ELT_BIN (default: elt on PATH), ELT_PROJECT_DIR (the directory of elt.toml,
default /opt/elt).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import datetime, timedelta

try:  # Airflow 3
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task
from airflow.exceptions import AirflowException

ELT_BIN = os.environ.get("ELT_BIN", "elt")
PROJECT_DIR = os.environ.get("ELT_PROJECT_DIR", "/opt/elt")

# Connection name -> None for one task syncing every stream of the connection, or a list of
# streams for one task per stream. Stream tasks of one connection run one after another: a
# DuckDB file takes one writer at a time (--wait-for-lock covers a manual run in between).
CONNECTIONS: dict[str, list[str] | None] = {"demo": None}

EXIT_CODES = {1: "failed", 2: "configuration error", 3: "lock held", 4: "partially failed"}


def run_elt_sync(
    connection: str,
    streams: list[str] | None = None,
    project_dir: str = PROJECT_DIR,
    elt_bin: str = ELT_BIN,
    wait_for_lock_secs: int = 600,
) -> dict:
    """Runs `elt sync --connection CONNECTION --json`; returns the summary or raises."""
    command = [
        elt_bin,
        "sync",
        "--connection",
        connection,
        "--json",
        "--log-format",
        "json",
        "--wait-for-lock",
        str(wait_for_lock_secs),
    ]
    if streams:
        command += ["--streams", ",".join(streams)]
    proc = subprocess.run(command, cwd=project_dir, capture_output=True, text=True, check=False)
    for line in proc.stderr.splitlines():
        print(line)  # elt's JSON log lines, into the task log
    summary = json.loads(proc.stdout) if proc.stdout.strip() else None
    if proc.returncode != 0:
        failed = [
            f"{s['stream']}: {s['error']}"
            for s in (summary or {}).get("streams", [])
            if s["status"] != "succeeded"
        ]
        last_log = proc.stderr.strip().splitlines()[-1:] if proc.stderr.strip() else []
        raise AirflowException(
            f"elt sync --connection {connection} exited with {proc.returncode} "
            f"({EXIT_CODES.get(proc.returncode, 'unknown')}): "
            + ("; ".join(failed) or " ".join(last_log))
        )
    return summary


def task_id(*parts: str) -> str:
    """An Airflow task id from connection and stream names."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", "sync_" + "__".join(parts))


@dag(
    dag_id="elt_sync",
    schedule="@hourly",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["elt"],
)
def elt_sync():
    for connection, streams in CONNECTIONS.items():
        if streams is None:
            task(task_id=task_id(connection))(run_elt_sync)(connection)
            continue
        previous = None
        for stream in streams:
            current = task(task_id=task_id(connection, stream))(run_elt_sync)(connection, [stream])
            if previous is not None:
                previous >> current
            previous = current


elt_sync_dag = elt_sync()

"""Airflow DAG that backfills one stream in windows with dynamic task mapping: a `plan` task
runs `elt backfill plan --json`, and `load_window` is mapped over its windows, one task
instance per window running `elt backfill run --window K --json` (see docs/backfills.md).

Copy this file beside elt_dag.py into your DAGs folder, edit BACKFILL and trigger the DAG by
hand. Windows that are done already are skipped, so clearing and rerunning the DAG (or a
retry of one window) loads only what is missing. `max_active_tis_per_dag` bounds how many
windows load at once: into PostgreSQL they load side by side under per-window leases; into
a DuckDB file they queue on its lock (`--wait-for-lock`).

Environment: ELT_BIN (default: elt on PATH), ELT_PROJECT_DIR (the directory of elt.toml,
default /opt/elt).
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timedelta

try:  # Airflow 3
    from airflow.sdk import dag, task
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task
from airflow.exceptions import AirflowException

ELT_BIN = os.environ.get("ELT_BIN", "elt")
PROJECT_DIR = os.environ.get("ELT_PROJECT_DIR", "/opt/elt")

# The stream to backfill and how to cut it: `--by` is day, week, month or N-rows. A
# calendar plan is the same for every worker; the DAG passes each one its window's index.
BACKFILL = {
    "connection": "pg_to_duck",
    "stream": "public.orders",
    "from": "2024-01-01",
    "to": "2024-02-01",
    "by": "day",
}

EXIT_CODES = {1: "failed", 2: "configuration error", 3: "lock held"}


def run_elt(arguments: list[str], project_dir: str = PROJECT_DIR) -> dict | list:
    """Runs `elt ARGUMENTS` (which print JSON); returns the parsed output or raises."""
    proc = subprocess.run(
        [ELT_BIN, *arguments, "--log-format", "json"],
        cwd=project_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    for line in proc.stderr.splitlines():
        print(line)  # elt's JSON log lines, into the task log
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] if proc.stderr.strip() else []
        raise AirflowException(
            f"elt {' '.join(arguments[:2])} exited with {proc.returncode} "
            f"({EXIT_CODES.get(proc.returncode, 'unknown')}): {proc.stdout[-2000:]} {' '.join(tail)}"
        )
    return json.loads(proc.stdout)


def plan_arguments(backfill: dict) -> list[str]:
    """The arguments that name the plan: connection, stream and cut."""
    return [
        "--connection", backfill["connection"], "--stream", backfill["stream"],
        "--from", backfill["from"], "--to", backfill["to"], "--by", backfill["by"],
    ]  # fmt: skip


def plan_windows(backfill: dict = BACKFILL) -> list[int]:
    """The plan's window indexes, which `load_window` is mapped over."""
    plan = run_elt(["backfill", "plan", *plan_arguments(backfill), "--json"])
    return list(range(len(plan["windows"])))


def load_window(index: int, backfill: dict = BACKFILL) -> dict:
    """Loads window `index`; returns what became of it (its sync summary, or none when it
    was done already)."""
    command = ["backfill", "run", *plan_arguments(backfill), "--window", str(index)]
    (run,) = run_elt([*command, "--json", "--quiet", "--wait-for-lock", "600"])
    return run


@dag(
    dag_id="elt_backfill",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    tags=["elt", "backfill"],
)
def elt_backfill():
    windows = task(task_id="plan")(plan_windows)()
    task(task_id="load_window", max_active_tis_per_dag=4)(load_window).expand(index=windows)


elt_backfill_dag = elt_backfill()

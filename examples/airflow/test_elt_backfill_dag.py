"""Checks the backfill DAG: it imports, maps `load_window` over the windows of `plan`, and
its tasks run a real 10-window backfill (ELT_BIN, in ELT_PROJECT_DIR, whose elt.toml has
connection `bf` reading public.events from PostgreSQL), four windows at a time as
`max_active_tis_per_dag` allows; a second run skips every window. Run by
tests/e2e/examples_backfill.rs."""

import importlib.util
import os
import pathlib
import tempfile
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-"))
here = pathlib.Path(__file__).parent
spec = importlib.util.spec_from_file_location("elt_backfill_dag", here / "elt_backfill_dag.py")
elt_backfill_dag = importlib.util.module_from_spec(spec)
spec.loader.exec_module(elt_backfill_dag)

dag = elt_backfill_dag.elt_backfill_dag
assert dag.dag_id == "elt_backfill", dag.dag_id
assert sorted(dag.task_ids) == ["load_window", "plan"], dag.task_ids
mapped = dag.get_task("load_window")
assert "Mapped" in type(mapped).__name__, type(mapped)
assert [t.task_id for t in mapped.upstream_list] == ["plan"]
assert mapped.max_active_tis_per_dag == 4

backfill = {
    "connection": "bf",
    "stream": "public.events",
    "from": "2024-01-01",
    "to": "2024-01-11",
    "by": "day",
}
indexes = elt_backfill_dag.plan_windows(backfill)
assert indexes == list(range(10)), indexes
with ThreadPoolExecutor(max_workers=mapped.max_active_tis_per_dag) as pool:
    runs = list(pool.map(lambda i: elt_backfill_dag.load_window(i, backfill), indexes))
for index, run in zip(indexes, runs):
    assert run["index"] == index, run
    assert run["report"]["status"] == "succeeded", run
again = elt_backfill_dag.load_window(3, backfill)
assert again["report"] is None, "a done window is skipped"
rows = sum(r["report"]["streams"][0]["rows_loaded"] for r in runs)
print(f"airflow backfill example ok: {len(runs)} windows, {rows} rows")

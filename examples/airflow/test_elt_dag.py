"""Checks the example DAG: it imports, has the expected tasks, and its task runs a real
`elt sync` (ELT_BIN, in ELT_PROJECT_DIR, whose elt.toml has the demo connection) and returns
the summary that Airflow would push to XCom. Run by tests/e2e/examples.rs."""

import importlib.util
import os
import pathlib
import tempfile

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-"))
here = pathlib.Path(__file__).parent
spec = importlib.util.spec_from_file_location("elt_dag", here / "elt_dag.py")
elt_dag = importlib.util.module_from_spec(spec)
spec.loader.exec_module(elt_dag)
from airflow.exceptions import AirflowException  # noqa: E402

dag = elt_dag.elt_sync_dag
assert dag.dag_id == "elt_sync", dag.dag_id
assert sorted(dag.task_ids) == ["sync_demo"], dag.task_ids

# The task as the DAG wired it: its callable with its bound arguments.
operator = dag.get_task("sync_demo")
summary = operator.python_callable(*operator.op_args, **operator.op_kwargs)
assert summary["status"] == "succeeded", summary
assert summary["version"] == 1
streams = {s["stream"]: s for s in summary["streams"]}
assert sorted(streams) == ["customers", "orders", "products"], streams
assert all(s["rows_loaded"] == s["rows_read"] > 0 for s in streams.values()), streams

# Per-stream tasks run one after another.
elt_dag.CONNECTIONS = {"demo": ["customers", "orders"]}
per_stream = elt_dag.elt_sync()
assert sorted(per_stream.task_ids) == ["sync_demo__customers", "sync_demo__orders"]
orders = per_stream.get_task("sync_demo__orders")
assert [t.task_id for t in orders.upstream_list] == ["sync_demo__customers"]
again = orders.python_callable(*orders.op_args, **orders.op_kwargs)
assert [s["stream"] for s in again["streams"]] == ["orders"], again
assert again["streams"][0]["rows_read"] == 0, "incremental: nothing new"

# A failure is an AirflowException naming the exit code.
try:
    elt_dag.run_elt_sync("no_such_connection")
except AirflowException as e:
    assert "exited with 2 (configuration error)" in str(e), e
    assert "no_such_connection" in str(e), e
else:
    raise AssertionError("an unknown connection must fail the task")

print(f"airflow example ok: run {summary['run_id']}")

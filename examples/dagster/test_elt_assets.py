"""Checks the example assets: materializing them runs a real `elt sync` (ELT_BIN, in
ELT_PROJECT_DIR, whose elt.toml has the demo connection) and records each stream's numbers
as materialization metadata; a subset syncs only its streams; a failing sync fails the run.
Run by tests/e2e/examples.rs."""

import importlib.util
import pathlib

import dagster as dg

here = pathlib.Path(__file__).parent
spec = importlib.util.spec_from_file_location("elt_assets", here / "elt_assets.py")
elt_assets = importlib.util.module_from_spec(spec)
spec.loader.exec_module(elt_assets)

defs = elt_assets.defs
keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
assert keys == {"elt/demo/customers", "elt/demo/products", "elt/demo/orders"}, keys


def metadata(result, stream):
    found = [
        m.metadata
        for m in result.asset_materializations_for_node("elt_demo")
        if m.asset_key == dg.AssetKey(["elt", "demo", stream])
    ]
    assert len(found) == 1, (stream, found)
    return {k: v.value for k, v in found[0].items()}


instance = dg.DagsterInstance.ephemeral()
result = dg.materialize([elt_assets.demo_assets], instance=instance)
assert result.success
for stream in ["customers", "products", "orders"]:
    m = metadata(result, stream)
    assert m["rows_loaded"] == m["rows_read"] > 0, m
    assert m["mode"] == "incremental/merge", m
    assert m["watermark_after"].startswith("20"), m

subset = dg.materialize(
    [elt_assets.demo_assets],
    instance=instance,
    selection=[dg.AssetKey(["elt", "demo", "orders"])],
)
assert subset.success
assert len(subset.asset_materializations_for_node("elt_demo")) == 1
assert metadata(subset, "orders")["rows_read"] == 0, "incremental: nothing new"

broken = elt_assets.elt_connection_assets("no_such_connection", ["orders"])
failed = dg.materialize([broken], instance=instance, raise_on_error=False)
assert not failed.success
failure = str(failed.get_step_failure_events()[0].event_specific_data.error)
assert "exited with 2 (configuration error)" in failure, failure

print("dagster example ok")

"""Checks the backfill asset: its 10 daily partitions are 10 windows, materializing each
runs a real `elt backfill run` (ELT_BIN, in ELT_PROJECT_DIR, whose elt.toml has connection
`bf` reading public.events from PostgreSQL) and records the window's rows; materializing a
done partition again skips it. Run by tests/e2e/examples_backfill.rs."""

import importlib.util
import pathlib

import dagster as dg

here = pathlib.Path(__file__).parent
spec = importlib.util.spec_from_file_location("elt_backfill_assets", here / "elt_backfill_assets.py")
elt_backfill_assets = importlib.util.module_from_spec(spec)
spec.loader.exec_module(elt_backfill_assets)

asset = elt_backfill_assets.events_backfill
keys = asset.partitions_def.get_partition_keys()
assert len(keys) == 10 and keys[0] == "2024-01-01" and keys[-1] == "2024-01-10", keys

instance = dg.DagsterInstance.ephemeral()
rows = 0
for key in keys:
    result = dg.materialize([asset], partition_key=key, instance=instance)
    assert result.success, key
    (materialization,) = result.asset_materializations_for_node(asset.op.name)
    meta = {k: v.value for k, v in materialization.metadata.items()}
    assert meta["window"] == f"[{key}T00:00:00.000000Z, " + meta["window"].split(", ")[1], meta
    assert not meta["skipped"], meta
    rows += meta["rows_loaded"]
again = dg.materialize([asset], partition_key=keys[4], instance=instance)
(skipped,) = again.asset_materializations_for_node(asset.op.name)
assert skipped.metadata["skipped"].value is True, skipped.metadata
print(f"dagster backfill example ok: {len(keys)} windows, {rows} rows")

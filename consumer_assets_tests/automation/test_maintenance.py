"""The table maintenance job through a real Dagster run: compaction, then vacuum within the retention."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pyarrow as pa

from consumer_assets.automation.maintenance import MaintenanceConfig, table_maintenance
from consumer_assets.resources.storage import storage_resources
from consumer_assets.storage.filesystem import resolve
from consumer_assets.storage.tables import TableStore
from consumer_assets.storage.writes import TableWrite, write_dates

SCHEMA = pa.schema([pa.field("id", pa.int64())])


def test_maintenance_compacts_then_vacuums_past_the_retention(local_root: str) -> None:
    store = TableStore.at(local_root)
    write_dates(
        store, "things", {"2026-01-01": [pa.table({"id": pa.array([i], pa.int64())}) for i in range(5)]}, schema=SCHEMA
    )
    TableWrite(store, "things", SCHEMA).write_file(pa.table({"id": pa.array([99], pa.int64())}), {"date": "2026-01-01"})
    folder = Path(resolve(local_root).root) / "things" / "date=2026-01-01"

    def run(retention_days: float) -> dg.ExecuteInProcessResult:
        config = dg.RunConfig(ops={"maintain_tables": MaintenanceConfig(retention_days=retention_days)})
        result = table_maintenance.execute_in_process(
            run_config=config, resources={"storage": storage_resources(local_root)["storage"]}
        )
        assert result.success
        return result

    kept = run(7)  # everything is younger than a week: compacted, nothing deleted
    assert len(store.files("things", ["2026-01-01"])) == 1 and len(list(folder.glob("*.parquet"))) == 7
    (observed,) = [e.asset_observation_data.asset_observation for e in kept.get_asset_observation_events()]
    assert observed.metadata["files_compacted"].value == 5 and observed.metadata["files_vacuumed"].value == 0
    run(0)
    assert len(list(folder.glob("*.parquet"))) == 1
    assert sorted(store.read("things", ["2026-01-01"])["id"].to_pylist()) == [0, 1, 2, 3, 4]

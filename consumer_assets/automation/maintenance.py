"""Table upkeep: compact small files, then vacuum files that no version within the retention references."""

import datetime as dt

import dagster as dg
from pydantic import Field

from consumer_assets.resources.storage import Storage
from consumer_assets.storage.tables import DEFAULT_RETENTION


class MaintenanceConfig(dg.Config):
    retention_days: float = Field(
        default=DEFAULT_RETENTION.days,
        description="Versions younger than this stay readable (time travel); older unreferenced files are deleted. "
        "Also how long a dead write's files stay before they go.",
    )
    compact: bool = Field(default=True, description="Merge each partition's small files into bigger ones first.")


@dg.op
def maintain_tables(context: dg.OpExecutionContext, config: MaintenanceConfig, storage: Storage) -> None:
    """Compact and vacuum every Delta table under the storage root."""
    tables = storage.tables()
    retention = dt.timedelta(days=config.retention_days)
    for table in tables.tables():
        compacted = tables.compact(table) if config.compact else {}
        removed = tables.vacuum(table, retention)
        context.log.info(
            f"{table}: compacted {compacted.get('numFilesRemoved', 0)} files into {compacted.get('numFilesAdded', 0)}, "
            f"vacuumed {len(removed)} unreferenced files older than {retention}"
        )
        context.log_event(
            dg.AssetObservation(
                dg.AssetKey(table),
                metadata={
                    "files_compacted": compacted.get("numFilesRemoved", 0),
                    "files_vacuumed": len(removed),
                    "table_version": tables.version(table),
                },
            )
        )


@dg.job(description="Compact and vacuum every table (retention: 7 days by default).")
def table_maintenance() -> None:
    maintain_tables()


table_maintenance_schedule = dg.ScheduleDefinition(
    job=table_maintenance, cron_schedule="0 3 * * 0", default_status=dg.DefaultScheduleStatus.STOPPED
)

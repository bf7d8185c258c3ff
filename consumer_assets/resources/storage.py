"""Storage as Dagster resources: the root of every Delta table and model artifact, and the IO manager that loads them.

Assets commit their own outputs through `Storage` (one Delta commit for all the partitions of a
run) and report the commit per partition with `table_metadata`: an IO manager's `handle_output`
can attach metadata only to the whole output, not to each partition of a range run, and a commit
done there would hide from the asset what it wrote. Inputs load through `DeltaIOManager`, as the
consuming asset's annotation asks: a pyarrow Dataset (streaming, column projection), a Table, or
the files themselves (`TableFiles`) for Spark.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.dataset as ds
from pydantic import Field, PrivateAttr

from consumer_assets.histories import lineage
from consumer_assets.partitions import partition_day
from consumer_assets.resources.s3 import S3Config
from consumer_assets.settings import STORAGE_ENV, data_dir, storage_uri
from consumer_assets.storage.artifacts import ArtifactStore
from consumer_assets.storage.filesystem import Location, resolve
from consumer_assets.storage.tables import Commit, PartitionNotFoundError, TableFiles, TableStore


def table_name(asset_key: dg.AssetKey) -> str:
    return "/".join(asset_key.path)


class Storage(dg.ConfigurableResource):
    """The storage root (`file://...` or `s3://bucket/prefix`): Delta tables and model artifacts."""

    root: str | None = Field(
        default=None, description=f"Storage root URI; default ${STORAGE_ENV}, else file://<cwd>/data/storage."
    )
    staging_dir: str | None = Field(
        default=None,
        description="Local folder where a run keeps copies of remote files it reads or writes through this "
        "machine; default <data dir>/staging. Each run's folder is removed when its write ends.",
    )
    s3: S3Config = Field(
        default_factory=S3Config, description="Where S3 is, for the tables and the model artifacts alike."
    )
    _location: Location | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Resolved once when the run builds the resource: every table and artifact of the run then
        # uses the same root and S3 settings, whatever the environment does later.
        self._location = self._resolve()

    def _resolve(self) -> Location:
        return resolve(storage_uri(self.root), self.s3.settings())

    def location(self) -> Location:
        """The root with its S3 settings: the run's, or (outside a run) resolved now."""
        return self._location if self._location is not None else self._resolve()

    def tables(self) -> TableStore:
        return TableStore(self.location())

    def staging(self, run_id: str) -> Path:
        """The run's own staging folder (storage.writes.StagedWrite removes it)."""
        return Path(self.staging_dir or data_dir() / "staging").resolve() / run_id

    def artifacts(self) -> ArtifactStore:
        return ArtifactStore(self.location())


def table_metadata(commit: Commit, key: str, schema: pa.Schema) -> dict[str, Any]:
    """What the catalog shows for one partition of a commit: version, rows, files, schema, where."""
    stats = commit.partitions[key]
    return {
        "dagster/row_count": stats.rows,
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(field.name, str(field.type)) for field in schema]
        ),
        "table_version": commit.version,
        "stored_files": stats.files,
        "table_uri": dg.MetadataValue.path(commit.uri),
    }


class DeltaIOManager(dg.ConfigurableIOManager):
    """Loads exactly the upstream partitions of Delta tables; assets commit their outputs through Storage.

    An input annotated `pyarrow.dataset.Dataset` gets a dataset over the committed files of those
    partitions (stream it with `to_batches(columns=...)`), `pa.Table` the rows read into memory,
    and `TableFiles` the files themselves, for engines that read Parquet on their own (Spark).
    """

    storage: Storage

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is not None:
            raise TypeError(
                f"{context.asset_key.to_user_string()} returned a {type(obj).__name__}: assets commit their "
                "tables through the `storage` resource and return a MaterializeResult"
            )

    def load_input(self, context: dg.InputContext) -> ds.Dataset | pa.Table | TableFiles:
        tables = self.storage.tables()
        table = table_name(context.asset_key)
        if not context.has_asset_partitions:
            raise TypeError(f"{table} is not partitioned: every table asset has daily partitions")
        keys = list(context.asset_partition_keys)
        if table == lineage.HISTORIES_TABLE:
            # Never a day built on data re-delivered since: the automation recomputes it first.
            stale = lineage.stale_days(tables, [partition_day(k) for k in keys if k in tables.dates(table)])
            if stale:
                reasons = "; ".join(f"{day}: {why}" for day, why in stale.items())
                raise dg.Failure(
                    f"consumer_histories of {', '.join(str(d) for d in stale)} are stale ({reasons}). "
                    "Re-materialize them (the automation does, in day order) before reading them.",
                    allow_retries=False,
                )
        wanted = context.dagster_type.typing_type
        try:
            if wanted is TableFiles:
                return TableFiles(tables, table, tables.files(table, keys))
            dataset = tables.dataset(table, keys)
        except PartitionNotFoundError as exc:
            # Not an outage: retrying cannot make a missing upstream partition appear.
            raise dg.Failure(str(exc), allow_retries=False) from exc
        if wanted is pa.Table:
            return dataset.to_table()
        return dataset


def storage_resources(root: str | None = None) -> dict[str, Any]:
    """The storage resource and the IO manager on it, as Definitions (and tests) bind them."""
    storage = Storage(root=root)
    return {"storage": storage, "io_manager": DeltaIOManager(storage=storage)}

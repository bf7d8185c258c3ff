"""The IO manager that persists every asset as Parquet under one root URI (file:// or s3://)."""

from collections.abc import Mapping
from typing import Any

import dagster as dg
import pyarrow as pa
from pydantic import Field

from consumer_assets.settings import STORAGE_ENV, storage_uri
from consumer_assets.storage.files import PartitionFiles
from consumer_assets.storage.filesystem import resolve
from consumer_assets.storage.store import DatasetStore, Manifest


def dataset_name(asset_key: dg.AssetKey) -> str:
    return "/".join(asset_key.path)


class ParquetIOManager(dg.ConfigurableIOManager):
    """Parquet in a hive layout (`<root>/<asset>/date=YYYY-MM-DD/`), each partition committed by a manifest.

    An asset returns a pyarrow Table (one file), a list of Tables (one file each, in order) or
    ParquetFiles written elsewhere (copied in); a run over several partitions returns a mapping
    partition key -> that. An input annotated `pa.Table` gets the upstream partitions concatenated
    in order; one annotated `PartitionFiles` gets their file paths, for Spark to read.
    """

    root: str | None = Field(
        default=None,
        description=f"Storage root URI; default ${STORAGE_ENV}, else file://<cwd>/data/storage.",
    )

    def store(self) -> DatasetStore:
        return DatasetStore(resolve(storage_uri(self.root)))

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        store = self.store()
        dataset = dataset_name(context.asset_key)
        metadata = {"run_id": context.run_id}
        if not context.has_asset_partitions:
            manifests = {None: store.write(dataset, None, obj, metadata=metadata)}
        else:
            keys = list(context.asset_partition_keys)
            if isinstance(obj, Mapping):
                if sorted(obj) != sorted(keys):
                    raise ValueError(
                        f"{dataset}: the run covers partitions {keys} but the asset returned {sorted(obj)}"
                    )
                by_key: Mapping[str, Any] = obj
            elif len(keys) == 1:
                by_key = {keys[0]: obj}
            else:
                raise TypeError(
                    f"{dataset}: a run over {len(keys)} partitions must return a mapping partition key -> data"
                )
            manifests = {key: store.write(dataset, key, value, metadata=metadata) for key, value in by_key.items()}
        context.add_output_metadata(self._metadata(store, dataset, manifests))

    @staticmethod
    def _metadata(store: DatasetStore, dataset: str, manifests: Mapping[str | None, Manifest]) -> dict:
        # Output metadata is shared by every partition of a run, so per-partition figures only
        # when the run wrote one partition; a range run reports its totals under other names.
        if len(manifests) == 1:
            (partition, manifest), *_ = manifests.items()
            return {
                "storage_uri": dg.MetadataValue.path(store.partition_uri(dataset, partition)),
                "stored_rows": dg.MetadataValue.int(manifest.rows),
                "stored_files": dg.MetadataValue.int(len(manifest.files)),
                "write_id": dg.MetadataValue.text(manifest.write_id),
            }
        return {
            "storage_uri": dg.MetadataValue.path(store.location.child(dataset).uri),
            "partitions_in_run": dg.MetadataValue.int(len(manifests)),
            "rows_in_run": dg.MetadataValue.int(sum(m.rows for m in manifests.values())),
        }

    def load_input(self, context: dg.InputContext) -> pa.Table | PartitionFiles:
        store = self.store()
        dataset = dataset_name(context.asset_key)
        keys: list[str | None] = list(context.asset_partition_keys) if context.has_asset_partitions else [None]
        if context.dagster_type.typing_type is PartitionFiles:
            # For engines that read Parquet themselves: the files, not their contents.
            return PartitionFiles(store, dataset, [k for k in keys if k is not None])
        return store.read(dataset, keys)

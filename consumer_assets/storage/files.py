"""Parquet files as values: ones written outside the store to commit into it, and committed ones to read."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.fs as pafs

if TYPE_CHECKING:
    from consumer_assets.storage.store import DatasetStore


def partition_folder(partition: str | None) -> str:
    """The hive folder of a daily partition key; unpartitioned datasets live at the dataset root."""
    return f"date={partition}" if partition is not None else ""


@dataclass(frozen=True)
class ParquetFiles:
    """Parquet files written outside the store (a folder URI and file names), to be committed into it."""

    uri: str
    names: list[str]


@dataclass(frozen=True)
class PartitionFiles:
    """The committed files of upstream partitions, for engines that read Parquet themselves (Spark)."""

    store: DatasetStore
    dataset: str
    partitions: list[str]

    def uris(self) -> dict[str, list[str]]:
        """partition -> its files as URIs (file:///..., s3://...), for executors that reach the store."""
        return {p: self.store.uris(self.dataset, p) for p in self.partitions}

    def local_paths(self, staging_dir: Path) -> dict[str, list[str]]:
        """partition -> its files as local paths; files of a remote store are copied under `staging_dir`."""
        if self.store.location.is_local:
            return {p: self.store.files(self.dataset, p) for p in self.partitions}
        local = pafs.LocalFileSystem()
        paths: dict[str, list[str]] = {}
        for partition in self.partitions:
            folder = staging_dir / self.dataset / partition_folder(partition)
            folder.mkdir(parents=True, exist_ok=True)
            paths[partition] = []
            for source in self.store.files(self.dataset, partition):
                target = folder / source.rsplit("/", 1)[-1]
                pafs.copy_files(source, str(target), self.store.fs, local)
                paths[partition].append(str(target))
        return paths

"""Parquet datasets in a hive layout, one folder per partition, committed by a manifest written last.

Layout under a root (local folder or S3 prefix)::

    <root>/<dataset>/date=YYYY-MM-DD/part-<write_id>-00000.parquet
    <root>/<dataset>/date=YYYY-MM-DD/_manifest.json      # the commit: lists the files of this version

A write stages its files under `<root>/<dataset>/_staging/<write_id>/` (hidden from `date=*/` globs and
from Hive/Spark/pyarrow discovery, which skip `_`-prefixed paths), moves them into the partition
folder under new, unique names, then writes the manifest (an atomic rename locally, an atomic PUT on
S3) and finally deletes the files of the version it replaced. A crash at any point before the
manifest leaves the previous manifest pointing at the previous files, untouched, so readers that go
through the manifest (this module) always see one complete version; the next write of the partition
removes the leftovers. Plain glob readers (DuckDB, Spark, Athena) see exactly one version except for
the moments of a commit.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from consumer_assets.storage.filesystem import Location

MANIFEST = "_manifest.json"
STAGING = "_staging"
FORMAT_VERSION = 1


class PartitionNotFoundError(FileNotFoundError):
    """A partition was asked for that has no committed version (no manifest)."""


@dataclass(frozen=True)
class Manifest:
    """What one committed version of a partition holds."""

    dataset: str
    partition: str | None
    write_id: str
    written_at: str
    rows: int
    files: list[dict[str, Any]]
    schema: list[dict[str, str]]
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        body = {"format": FORMAT_VERSION, **self.__dict__}
        return json.dumps(body, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        body = json.loads(data)
        body.pop("format", None)
        return cls(**body)


def partition_folder(partition: str | None) -> str:
    """The hive folder of a daily partition key; unpartitioned datasets live at the dataset root."""
    return f"date={partition}" if partition is not None else ""


class DatasetStore:
    """Reads and atomically writes partitions of Parquet datasets under one root location."""

    def __init__(self, location: Location, *, compression: str = "zstd") -> None:
        self.location = location
        self.compression = compression

    @property
    def fs(self) -> pafs.FileSystem:
        return self.location.fs

    def partition_path(self, dataset: str, partition: str | None) -> str:
        return self.location.path(dataset, partition_folder(partition))

    def partition_uri(self, dataset: str, partition: str | None) -> str:
        return self.location.child(dataset, partition_folder(partition)).uri

    # -- reading -----------------------------------------------------------------------------

    def manifest(self, dataset: str, partition: str | None) -> Manifest | None:
        path = f"{self.partition_path(dataset, partition)}/{MANIFEST}"
        try:
            with self.fs.open_input_stream(path) as stream:
                return Manifest.from_json(stream.read())
        except FileNotFoundError:
            return None

    def require_manifest(self, dataset: str, partition: str | None) -> Manifest:
        manifest = self.manifest(dataset, partition)
        if manifest is None:
            where = self.partition_uri(dataset, partition)
            what = f"partition {partition} of {dataset}" if partition else dataset
            raise PartitionNotFoundError(f"{what} has not been materialized: no {MANIFEST} in {where}")
        return manifest

    def files(self, dataset: str, partition: str | None) -> list[str]:
        """Filesystem paths of the committed files of a partition, in write order."""
        manifest = self.require_manifest(dataset, partition)
        folder = self.partition_path(dataset, partition)
        return [f"{folder}/{f['name']}" for f in manifest.files]

    def read(
        self,
        dataset: str,
        partitions: Sequence[str | None] = (None,),
        *,
        columns: Sequence[str] | None = None,
    ) -> pa.Table:
        """One table holding the given partitions in order, read through their manifests."""
        paths = [p for partition in partitions for p in self.files(dataset, partition)]
        tables = [pq.read_table(p, filesystem=self.fs, columns=columns) for p in paths]
        return pa.concat_tables(tables)

    # -- writing -----------------------------------------------------------------------------

    def write(
        self,
        dataset: str,
        partition: str | None,
        data: pa.Table | Iterable[pa.Table],
        *,
        metadata: dict[str, Any] | None = None,
    ) -> Manifest:
        """Replace a partition atomically with `data`: a table, or tables written one file each."""
        parts = [data] if isinstance(data, pa.Table) else list(data)
        if not parts:
            raise ValueError(f"nothing to write for {dataset} {partition}: give at least one table")
        schema = parts[0].schema
        for part in parts[1:]:
            if not part.schema.equals(schema):
                raise ValueError(f"parts of {dataset} {partition} disagree on schema: {schema} != {part.schema}")

        write_id = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        staging = self.location.path(dataset, STAGING, write_id)
        folder = self.partition_path(dataset, partition)
        self.fs.create_dir(staging, recursive=True)
        self.fs.create_dir(folder, recursive=True)

        files = []
        for i, part in enumerate(parts):
            name = f"part-{write_id}-{i:05d}.parquet"
            with self.fs.open_output_stream(f"{staging}/{name}") as sink:
                pq.write_table(part, sink, compression=self.compression)
            files.append({"name": name, "rows": part.num_rows})
        for f in files:
            self._move(f"{staging}/{f['name']}", f"{folder}/{f['name']}")

        manifest = Manifest(
            dataset=dataset,
            partition=partition,
            write_id=write_id,
            written_at=dt.datetime.now(dt.UTC).isoformat(),
            rows=sum(f["rows"] for f in files),
            files=files,
            schema=[{"name": f.name, "type": str(f.type)} for f in schema],
            metadata=metadata or {},
        )
        self._commit(folder, manifest)
        self._remove_superseded(folder, keep={f["name"] for f in files})
        self.fs.delete_dir(staging)
        return manifest

    def _move(self, src: str, dest: str) -> None:
        # Local: an atomic rename. S3: a server-side copy then a delete of the source.
        self.fs.move(src, dest)

    def _commit(self, folder: str, manifest: Manifest) -> None:
        target = f"{folder}/{MANIFEST}"
        if self.location.is_local:
            # rename(2) replaces the old manifest atomically; a reader sees the old or the new one.
            tmp = f"{folder}/.{MANIFEST}.{manifest.write_id}"
            with self.fs.open_output_stream(tmp) as sink:
                sink.write(manifest.to_json())
            self.fs.move(tmp, target)
        else:
            # An S3 PUT is atomic: readers get the previous object until the new one is complete.
            with self.fs.open_output_stream(target) as sink:
                sink.write(manifest.to_json())

    def _remove_superseded(self, folder: str, keep: set[str]) -> None:
        selector = pafs.FileSelector(folder, recursive=False)
        for info in self.fs.get_file_info(selector):
            if info.type == pafs.FileType.File and info.base_name not in keep | {MANIFEST}:
                self.fs.delete_file(info.path)

    def partitions(self, dataset: str) -> list[str]:
        """Partition keys of a dataset that have a committed version, sorted."""
        selector = pafs.FileSelector(self.location.path(dataset), allow_not_found=True)
        keys = []
        for info in self.fs.get_file_info(selector):
            if info.type == pafs.FileType.Directory and info.base_name.startswith("date="):
                key = info.base_name.removeprefix("date=")
                if self.fs.get_file_info(f"{info.path}/{MANIFEST}").type == pafs.FileType.File:
                    keys.append(key)
        return sorted(keys)

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
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from consumer_assets.storage.filesystem import Location, resolve

MANIFEST = "_manifest.json"
STAGING = "_staging"
STAGING_TTL = dt.timedelta(days=1)
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ParquetFiles:
    """Parquet files written outside the store (a folder URI and file names), to be committed into it."""

    uri: str
    names: list[str]


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

    def uris(self, dataset: str, partition: str | None) -> list[str]:
        """The committed files of a partition as URIs (file:///... or s3://...), in write order."""
        manifest = self.require_manifest(dataset, partition)
        folder = self.location.child(dataset, partition_folder(partition))
        return [folder.child(f["name"]).uri for f in manifest.files]

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
        data: pa.Table | Iterable[pa.Table] | ParquetFiles,
        *,
        metadata: dict[str, Any] | None = None,
    ) -> Manifest:
        """Replace a partition atomically with `data`.

        `data` is a table (one file), tables (one file each, in order), or ParquetFiles already
        written elsewhere (say by Spark executors), which are copied in, in order.
        """
        write_id = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        staging = self.location.path(dataset, STAGING, write_id)
        self.fs.create_dir(staging, recursive=True)
        if isinstance(data, ParquetFiles):
            staged = self._stage_files(data, staging)
        else:
            staged = self._stage_tables([data] if isinstance(data, pa.Table) else list(data), staging)
        if not staged:
            raise ValueError(f"nothing to write for {dataset} {partition}: give at least one table or file")
        schema = staged[0][1]
        for _, other, _ in staged[1:]:
            if not other.equals(schema):
                raise ValueError(f"parts of {dataset} {partition} disagree on schema: {schema} != {other}")

        folder = self.partition_path(dataset, partition)
        self.fs.create_dir(folder, recursive=True)
        files = []
        for i, (path, _, rows) in enumerate(staged):
            name = f"part-{write_id}-{i:05d}.parquet"
            self._move(path, f"{folder}/{name}")
            files.append({"name": name, "rows": rows})

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
        self._sweep_staging(dataset)
        return manifest

    def _sweep_staging(self, dataset: str) -> None:
        """Delete what writers that died before their commit left in the staging area.

        Only folders older than STAGING_TTL (their write id starts with its UTC start time), so a
        concurrent write of another partition of the dataset is never disturbed.
        """
        cutoff = f"{dt.datetime.now(dt.UTC) - STAGING_TTL:%Y%m%dT%H%M%S}"
        selector = pafs.FileSelector(self.location.path(dataset, STAGING), allow_not_found=True)
        for info in self.fs.get_file_info(selector):
            if info.type == pafs.FileType.Directory and info.base_name < cutoff:
                self.fs.delete_dir(info.path)

    def _stage_tables(self, tables: list[pa.Table], staging: str) -> list[tuple[str, pa.Schema, int]]:
        staged = []
        for i, table in enumerate(tables):
            path = f"{staging}/{i:05d}.parquet"
            with self.fs.open_output_stream(path) as sink:
                pq.write_table(table, sink, compression=self.compression)
            staged.append((path, table.schema, table.num_rows))
        return staged

    def _stage_files(self, files: ParquetFiles, staging: str) -> list[tuple[str, pa.Schema, int]]:
        source = resolve(files.uri)
        staged = []
        for i, name in enumerate(files.names):
            path = f"{staging}/{i:05d}.parquet"
            meta = pq.read_metadata(source.path(name), filesystem=source.fs)
            pafs.copy_files(source.path(name), path, source.fs, self.fs)
            staged.append((path, meta.schema.to_arrow_schema(), meta.num_rows))
        return staged

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

"""Parquet datasets in a hive layout, one folder per partition, committed by a manifest written last.

Layout under a root (local folder or S3 prefix)::

    <root>/<dataset>/date=YYYY-MM-DD/part-<write_id>-00000.parquet
    <root>/<dataset>/date=YYYY-MM-DD/_manifest.json      # the commit: lists the files of this version

A write stages its files under `<root>/<dataset>/_staging/<write_id>/` (hidden from `date=*/` globs and
from Hive/Spark/pyarrow discovery, which skip `_`-prefixed paths), moves them into the partition
folder under new, unique names, then writes the manifest (an atomic rename locally, an atomic PUT on
S3) and finally deletes the files of the version it replaced. A crash at any point before the
manifest leaves the previous manifest pointing at the previous files, untouched, so readers that go
through the manifest (this module) always see one complete version; later writes of the partition
remove the leftovers once they are ORPHAN_TTL old. Plain glob readers (DuckDB, Spark, Athena) see
exactly one version except during a commit and, after a crash mid-move, until a later write sweeps
the strays: readers
outside this code that must never see a stray file read the files `_manifest.json` lists.

Writes of one partition should not overlap (Dagster runs one materialization of a partition at a
time); if they do, the later commit fails with ConcurrentWriteError instead of corrupting it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from consumer_assets.storage.files import ParquetFiles, partition_folder
from consumer_assets.storage.filesystem import Location, resolve

MANIFEST = "_manifest.json"
STAGING = "_staging"
STAGING_TTL = dt.timedelta(days=1)
# Files in a partition folder that no manifest lists are a dead write's leftovers after this long.
ORPHAN_TTL = dt.timedelta(minutes=10)
FORMAT_VERSION = 1


class ConcurrentWriteError(RuntimeError):
    """Another write committed the same partition while this one was in progress."""


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


class DatasetStore:
    """Reads and atomically writes partitions of Parquet datasets under one root location."""

    def __init__(self, location: Location, *, compression: str = "zstd", orphan_ttl: dt.timedelta = ORPHAN_TTL) -> None:
        self.location = location
        self.compression = compression
        self.orphan_ttl = orphan_ttl

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
        try:
            return pa.concat_tables(tables)
        except pa.ArrowInvalid as exc:
            raise ValueError(f"partitions {list(partitions)} of {dataset} disagree on schema: {exc}") from exc

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
        previous = self.manifest(dataset, partition)
        staging = self.location.path(dataset, STAGING, write_id)
        folder = self.partition_path(dataset, partition)
        self.fs.create_dir(staging, recursive=True)
        moved: list[str] = []
        try:
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

            self.fs.create_dir(folder, recursive=True)
            files = []
            for i, (path, _, rows) in enumerate(staged):
                name = f"part-{write_id}-{i:05d}.parquet"
                self._move(path, f"{folder}/{name}")
                moved.append(f"{folder}/{name}")
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
            # Optimistic concurrency: commit only over the version this write started from.
            self._require_unchanged(dataset, partition, previous, write_id)
            self._commit(folder, manifest)
            moved = []
        finally:
            # A failed write removes what it moved in; its staging folder goes either way.
            for path in moved:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.delete_file(path)
            self.fs.delete_dir(staging)
        # Another writer may have committed in the same instant: only the winner cleans up.
        self._require_unchanged(dataset, partition, manifest, write_id)
        self._remove_superseded(folder, previous, keep={f["name"] for f in files})
        self._sweep_staging(dataset)
        return manifest

    def _require_unchanged(self, dataset: str, partition: str | None, expected: Manifest | None, write_id: str) -> None:
        current = self.manifest(dataset, partition)
        if (current and current.write_id) != (expected and expected.write_id):
            raise ConcurrentWriteError(
                f"{self.partition_uri(dataset, partition)} was replaced by write "
                f"{current.write_id if current else '(deleted)'} while write {write_id} was in progress; "
                "run one write of a partition at a time"
            )

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

    def _remove_superseded(self, folder: str, replaced: Manifest | None, keep: set[str]) -> None:
        """Delete the files of the version this write replaced, and strays of writes that died.

        A stray (a file no manifest lists) is deleted only once its write id is older than
        `orphan_ttl`: a younger one may belong to a write still in flight, whose commit check will
        then fail on its own rather than have its files pulled from under it.
        """
        superseded = {f["name"] for f in replaced.files} if replaced else set()
        cutoff = f"{dt.datetime.now(dt.UTC) - self.orphan_ttl:%Y%m%dT%H%M%S}"
        for info in self.fs.get_file_info(pafs.FileSelector(folder)):
            name = info.base_name
            if info.type != pafs.FileType.File or name in keep or name == MANIFEST:
                continue
            # part-<write id>-NNNNN.parquet, the write id starting with its UTC start time
            if name in superseded or not name.startswith("part-") or name[5:20] <= cutoff:
                with contextlib.suppress(FileNotFoundError):  # another cleanup got there first
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

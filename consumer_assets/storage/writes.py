"""Writing Delta tables: where data files go, how one file is written, and one write of whole dates.

Parquet files are first written into the table's folder (by this process, its threads, or Spark
executors) under `date=D/.../part-<write id>-<n>.parquet`; a Delta reader ignores them until a
commit adds them to the log. Then one commit replaces the given dates: it removes every file of
those dates and adds the new ones, atomically (S3 conditional writes or a local rename, no lock
service). A run that dies before the commit leaves the previous version current; its files are
unreferenced and `TableStore.vacuum` removes them once older than the retention. Each commit
carries one Delta application transaction (`txn`) per replaced date, so two writers of the same
date conflict even when the date was empty before; writers of different dates both commit.
Executors call `write_parquet` and `atomic_output`: module-level functions, pickled by reference.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import AddAction, CommitProperties

from consumer_assets.storage.filesystem import Location, resolve
from consumer_assets.storage.tables import (
    DATE,
    PARTITION_TYPES,
    PROFILE_BUCKET,
    Commit,
    ConcurrentWriteError,
    DataFile,
    PartitionStats,
    TableFiles,
    TableStore,
    date_key,
    date_transactions,
)

COMPRESSION = "zstd"


# -- layout ------------------------------------------------------------------------------------
def partition_path(partition: Mapping[str, Any]) -> str:
    """The hive folder of a partition, e.g. `date=2026-10-01/profile_bucket=3`."""
    return "/".join(f"{name}={value}" for name, value in partition.items())


def part_path(partition: Mapping[str, Any], write_id: str, number: int, out_dir: str = "") -> str:
    """`[<out_dir>/]<partition folder>/part-<write_id>-<number as 5 digits>.parquet`.

    A writer that gives each file a number of its own (a Spark task its task number) names the
    same file when it is retried, so the retry replaces it instead of adding a second one.
    """
    relative = f"{partition_path(partition)}/part-{write_id}-{number:05d}.parquet"
    return f"{out_dir.rstrip('/')}/{relative}" if out_dir else relative


# -- one file, whole or not at all -------------------------------------------------------------
@contextmanager
def atomic_output(uri: str | Location) -> Iterator[tuple[pafs.FileSystem, str]]:
    """(filesystem, path) to write one file at; it appears at `uri` when the block ends without error.

    On a local disk: a hidden name beside the target (readers skip ".*"), renamed over it at the
    end. On an object store: a local temporary file, uploaded whole at the end (an upload streamed
    while computing would publish a short file if that failed). An earlier file at `uri` (a
    retried task's) is replaced; nothing is left behind.
    """
    target = resolve(uri)
    parent = target.root.rsplit("/", 1)[0]
    if target.is_local:
        target.fs.create_dir(parent, recursive=True)
        temp, fs = f"{parent}/.{uuid.uuid4().hex}.tmp", target.fs
    else:
        handle, temp = tempfile.mkstemp(suffix=".parquet")
        os.close(handle)
        fs = pafs.LocalFileSystem()
    try:
        yield fs, temp
        if target.is_local:
            target.fs.move(temp, target.root)
        else:
            pafs.copy_files(temp, target.root, fs, target.fs)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def write_parquet(table: pa.Table, uri: str | Location, **options: Any) -> None:
    """Write `table` as one Parquet file at `uri`, whole or not at all (`options`: pq.write_table's)."""
    target = resolve(uri)
    if target.is_local:
        with atomic_output(target) as (fs, path):
            pq.write_table(table, path, filesystem=fs, **options)
    else:  # the table is in memory already: its file is built there too, then sent in one upload
        buffer = pa.BufferOutputStream()
        pq.write_table(table, buffer, **options)
        with target.fs.open_output_stream(target.root) as out:
            out.write(buffer.getvalue())


# -- one write of a table ----------------------------------------------------------------------
class TableWrite:
    """One write of a table: Parquet files added to its folder, then one commit that replaces whole dates.

    The table's version is read when the write begins; the commit fails with ConcurrentWriteError
    if another write committed one of the same dates since, so of two overlapping writes of a
    date only the first to commit wins. Files are written straight into the table's folder under
    names unique to this write: until the commit no Delta reader sees them.
    """

    def __init__(self, store: TableStore, table: str, schema: pa.Schema, partition_by: Sequence[str] = (DATE,)) -> None:
        self.store, self.table, self.schema, self.partition_by = store, table, schema, tuple(partition_by)
        self.id = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        full = pa.schema([*schema, *(pa.field(c, PARTITION_TYPES[c]) for c in self.partition_by)])
        self._delta = store.create_or_open(table, full, list(self.partition_by))
        self._full_schema = full
        self.files: list[DataFile] = []
        self._numbers = itertools.count()  # file names, taken once each, also by threads writing side by side
        self._lock = threading.Lock()

    @property
    def uri(self) -> str:
        """The table's folder, where executors may write files for `adopt_file`."""
        return self.store.uri(self.table)

    def _relative(self, partition: Mapping[str, Any]) -> str:
        with self._lock:
            number = next(self._numbers)
        return part_path(partition, self.id, number)

    def _add(self, relative: str, partition: Mapping[str, Any]) -> DataFile:
        location = self.store.location
        path = location.path(self.table, relative)
        rows = pq.read_metadata(path, filesystem=location.fs).num_rows
        size = location.fs.get_file_info(path).size
        data_file = DataFile(relative, {k: str(v) for k, v in partition.items()}, rows, size)
        with self._lock:
            self.files.append(data_file)
        return data_file

    def write_file(
        self, data: pa.Table, partition: Mapping[str, Any], *, dictionary: Sequence[str] | None = None
    ) -> DataFile:
        """Write one Parquet file of `partition` (the partition columns live in its path, not inside).

        `dictionary`: the only columns to dictionary-encode (default: all); for columns of nearly
        unique values (ids) a dictionary costs time and bytes for nothing. Threads may write
        files of one write side by side.
        """
        relative = self._relative(partition)
        write_parquet(
            data.select(self.schema.names).cast(self.schema),
            self.store.location.child(self.table, relative),
            compression=COMPRESSION,
            use_dictionary=True if dictionary is None else list(dictionary),
        )
        return self._add(relative, partition)

    def adopt_file(self, uri: str, partition: Mapping[str, Any]) -> DataFile:
        """A Parquet file written elsewhere (by Spark executors): used in place if it is inside the
        table's folder, else copied in."""
        location = self.store.location
        source = resolve(uri, location.s3)
        table_root = location.path(self.table).rstrip("/") + "/"
        if source.fs.type_name == location.fs.type_name and source.root.startswith(table_root):
            return self._add(source.root.removeprefix(table_root), partition)
        relative = self._relative(partition)
        target = location.path(self.table, relative)
        if location.is_local:
            location.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        pafs.copy_files(source.root, target, source.fs, location.fs)
        return self._add(relative, partition)

    def commit(
        self,
        dates: Sequence[dt.date | str],
        metadata: Mapping[str, Any] | None = None,
        companion: Commit | None = None,
        records: Mapping[str, int] | None = None,
    ) -> Commit:
        """Replace exactly `dates` with this write's files in one commit, naming the `companion` commit of
        the same dates if given (storage.companions) and keeping the application transactions `records`
        (app id -> version); returns the new version. Raises ConcurrentWriteError when another write
        committed one of these dates since this one began: nothing of it is visible."""
        keys = sorted({date_key(d) for d in dates})
        if not keys:
            raise ValueError(f"a commit to {self.table} must name at least one date")
        stray = [f.path for f in self.files if f.partition.get(DATE) not in keys]
        if stray:
            raise ValueError(f"files {stray[:3]} of {self.table} are outside the dates {keys} being replaced")
        now = int(time.time() * 1000)
        commit_id = uuid.uuid4().hex
        actions = [
            AddAction(f.path, f.size, dict(f.partition), now, True, json.dumps({"numRecords": f.rows}))
            for f in self.files
        ]
        properties = CommitProperties(
            custom_metadata={"consumer_assets": json.dumps({**(metadata or {}), "commit_id": commit_id}, default=str)},
            app_transactions=date_transactions(self.table, keys, now, companion, records),
        )
        try:
            self._delta.create_write_transaction(
                actions,
                "overwrite",
                self._full_schema,
                partition_by=list(self.partition_by),
                partition_filters=[(DATE, "in", keys)],
                commit_properties=properties,
            )
        except CommitFailedError as exc:
            raise ConcurrentWriteError(
                f"another write committed {self.table} for {', '.join(keys)} after write {self.id} began; "
                f"write {self.id} was not committed and the other one is current. Run one write of a "
                f"partition at a time. ({exc})"
            ) from exc
        stats = {key: PartitionStats(0, 0) for key in keys}
        for f in self.files:
            before = stats[f.partition[DATE]]
            stats[f.partition[DATE]] = PartitionStats(before.rows + f.rows, before.files + 1)
        return Commit(self.table, self.uri, _committed_version(self._delta, commit_id), stats, now)


def write_dates(
    store: TableStore,
    table: str,
    data: Mapping[str, pa.Table | Iterable[pa.Table]],
    *,
    schema: pa.Schema,
    metadata: Mapping[str, Any] | None = None,
) -> Commit:
    """Write and commit small tables in one go: date key -> its data (a table, or one per file)."""
    write = TableWrite(store, table, schema)
    for key, parts in data.items():
        for part in [parts] if isinstance(parts, pa.Table) else list(parts):
            write.write_file(part, {DATE: key})
    return write.commit(list(data), metadata)


def _committed_version(delta: DeltaTable, commit_id: str) -> int:
    # create_write_transaction returns no version, and writers of other dates may have committed
    # since: find this write's commit by its id.
    delta.update_incremental()
    for entry in delta.history(limit=100):
        if json.loads(entry.get("consumer_assets") or "{}").get("commit_id") == commit_id:
            return int(entry["version"])
    raise RuntimeError(f"commit {commit_id} of {delta.table_uri} is not among its last 100 versions")


# -- files written elsewhere ---------------------------------------------------------------------
class StagedWrite:
    """A write whose files are made elsewhere (Spark executors, worker threads) from upstream files.

    The writers read the upstream files (`inputs`: date -> profile bucket -> paths) where they
    are if they reach the storage, else copies on this machine's disk; they write into `out_dir`,
    the table's own folder if they reach it (local storage always counts), else the staging
    folder. `adopt` then takes their files in and `commit` makes them visible, all at once. Use it
    as a context manager: the staging folder is removed when the block ends, failed or not.
    """

    def __init__(self, write: TableWrite, inputs: TableFiles, staging: Path, *, reaches_storage: bool) -> None:
        if write.partition_by != (DATE, PROFILE_BUCKET):
            raise ValueError(f"a staged write is partitioned by ({DATE}, {PROFILE_BUCKET}), not {write.partition_by}")
        self.write, self.staging = write, staging
        self._upstream, self._reaches_storage = inputs, reaches_storage
        direct = reaches_storage or write.store.location.is_local
        self.out_dir = write.uri if direct else (staging / "outputs").as_uri()
        self.inputs: dict[str, dict[int, list[str]]] = {}

    def __enter__(self) -> StagedWrite:
        files = self._upstream
        try:
            paths = files.uris() if self._reaches_storage else files.local_paths(self.staging / "inputs")
        except BaseException:  # the block never runs, so __exit__ would not clean up
            shutil.rmtree(self.staging, ignore_errors=True)
            raise
        for data_file, path in zip(files.files, paths, strict=True):
            by_bucket = self.inputs.setdefault(data_file.partition[DATE], {})
            by_bucket.setdefault(int(data_file.partition[PROFILE_BUCKET]), []).append(path)
        return self

    def __exit__(self, *exc_info: object) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    def adopt(self, date: dt.date | str, files: Iterable[tuple[str, int]]) -> list[DataFile]:
        """Take in the files the writers made for `date`, each given as (path or URI, profile bucket)."""
        key = date_key(date)
        return [self.write.adopt_file(path, {DATE: key, PROFILE_BUCKET: bucket}) for path, bucket in files]

    def commit(self, dates: Sequence[dt.date | str], metadata: Mapping[str, Any] | None = None) -> Commit:
        """Replace exactly `dates` with the adopted files, in one commit (TableWrite.commit)."""
        return self.write.commit(dates, metadata)

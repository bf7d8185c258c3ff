"""One write of a Delta table (TableStore.begin): files added to its folder, then one commit of whole dates."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError
from deltalake.transaction import AddAction, CommitProperties, Transaction

from consumer_assets.storage.filesystem import resolve
from consumer_assets.storage.tables import (
    COMPRESSION,
    DATE,
    PARTITION_TYPES,
    Commit,
    ConcurrentWriteError,
    DataFile,
    PartitionStats,
    TableStore,
    date_key,
    partition_path,
)


class TableWrite:
    """One write of a table: Parquet files added to its folder, then one commit that replaces whole dates.

    The table's version is read when the write begins; the commit fails with ConcurrentWriteError
    if another write committed one of the same dates since, so of two overlapping writes of a
    date only the first to commit wins. Files are written straight into the table's folder under
    names unique to this write: until the commit no Delta reader sees them.
    """

    def __init__(self, store: TableStore, table: str, schema: pa.Schema, partition_by: tuple[str, ...]) -> None:
        self.store, self.table, self.schema, self.partition_by = store, table, schema, partition_by
        self.id = f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        full = pa.schema([*schema, *(pa.field(c, PARTITION_TYPES[c]) for c in partition_by)])
        self._delta = store._open_or_create(table, full, list(partition_by))
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
        return f"{partition_path(partition)}/part-{self.id}-{number:05d}.parquet"

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
        location = self.store.location
        relative = self._relative(partition)
        path = location.path(self.table, relative)
        if location.is_local:
            location.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        pq.write_table(
            data.select(self.schema.names).cast(self.schema),
            path,
            filesystem=location.fs,
            compression=COMPRESSION,
            use_dictionary=True if dictionary is None else list(dictionary),
        )
        return self._add(relative, partition)

    def adopt_file(self, uri: str, partition: Mapping[str, Any]) -> DataFile:
        """A Parquet file written elsewhere (by Spark executors): used in place if it is inside the
        table's folder, else copied in."""
        location = self.store.location
        source = resolve(uri)
        table_root = location.path(self.table).rstrip("/") + "/"
        if source.fs.type_name == location.fs.type_name and source.root.startswith(table_root):
            return self._add(source.root.removeprefix(table_root), partition)
        relative = self._relative(partition)
        target = location.path(self.table, relative)
        if location.is_local:
            location.fs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        pafs.copy_files(source.root, target, source.fs, location.fs)
        return self._add(relative, partition)

    def commit(self, dates: Sequence[dt.date | str], metadata: Mapping[str, Any] | None = None) -> Commit:
        """Replace exactly `dates` with this write's files, in one commit; returns the new version.

        Raises ConcurrentWriteError when another write committed one of these dates since this one
        began; nothing of this write is then visible.
        """
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
            # One application transaction per date: concurrent writers of a date conflict on it,
            # even where the date held nothing before (an overwrite alone would let both add).
            app_transactions=[Transaction(app_id=f"{self.table}/{DATE}={key}", version=now) for key in keys],
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
        return Commit(self.table, self.uri, _committed_version(self._delta, commit_id), stats)


def _committed_version(delta: DeltaTable, commit_id: str) -> int:
    # create_write_transaction returns no version, and writers of other dates may have committed
    # since: find this write's commit by its id.
    delta.update_incremental()
    for entry in delta.history(limit=100):
        if json.loads(entry.get("consumer_assets") or "{}").get("commit_id") == commit_id:
            return int(entry["version"])
    raise RuntimeError(f"commit {commit_id} of {delta.table_uri} is not among its last 100 versions")

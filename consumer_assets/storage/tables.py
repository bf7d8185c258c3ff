"""Delta Lake tables under one root: `<root>/<table>/`, partitioned by `date` (and optionally more columns).

The store locates, creates, reads and maintains tables; writing them is `writes.TableWrite`'s.
A companion table (raw_events_quarantine) is read through its table of record (`companions`).
Reads resolve the current (or an earlier) version's files with delta-rs and read them with
pyarrow's own filesystems: going through delta-rs' Python filesystem made about 1 process in 20
abort at exit.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from deltalake.transaction import Transaction

from consumer_assets.storage import companions
from consumer_assets.storage.companions import COMPANIONS
from consumer_assets.storage.filesystem import Location, resolve

if TYPE_CHECKING:
    from consumer_assets.storage.s3 import S3Settings

DATE = "date"
PROFILE_BUCKET = "profile_bucket"
# How the event-sized tables (raw_events, consumer_histories, predictions) are partitioned: a Spark
# task or a scoring thread reads one profile bucket's files of a day.
BUCKETED = (DATE, PROFILE_BUCKET)
# Types of the partition columns a table may use; values are stored as strings in the paths and log.
PARTITION_TYPES: dict[str, pa.DataType] = {DATE: pa.date32(), PROFILE_BUCKET: pa.int32()}
DEFAULT_RETENTION = dt.timedelta(days=7)


class ConcurrentWriteError(RuntimeError):
    """Another writer committed the same partition while this write was in progress."""


class PartitionNotFoundError(FileNotFoundError):
    """A partition was asked for that no commit of the table holds."""


@dataclass(frozen=True)
class DataFile:
    """One Parquet file in a table's folder: its path relative to the table root and what it holds."""

    path: str
    partition: Mapping[str, str]
    rows: int
    size: int


@dataclass(frozen=True)
class PartitionStats:
    rows: int
    files: int


@dataclass(frozen=True)
class Commit:
    """What one commit did: the table version it created and, per replaced date, rows and files."""

    table: str
    uri: str
    version: int
    partitions: dict[str, PartitionStats] = field(default_factory=dict)
    transaction: int = 0  # the version of the commit's application transaction of each date


@dataclass(frozen=True)
class TableFiles:
    """The committed files of some partitions of a table, for engines that read Parquet themselves (Spark)."""

    store: TableStore
    table: str
    files: list[DataFile]

    def uris(self) -> list[str]:
        """Each file as a URI (file:///..., s3://...), for executors that reach the storage."""
        return [self.store.file_uri(self.table, f) for f in self.files]

    def local_paths(self, staging_dir: Path) -> list[str]:
        """Each file as a local path; the files of a remote store are copied under `staging_dir` first."""
        location = self.store.location
        if location.is_local:
            return [location.path(self.table, f.path) for f in self.files]
        local = pafs.LocalFileSystem()
        paths = []
        for f in self.files:
            target = staging_dir / self.table / f.path
            target.parent.mkdir(parents=True, exist_ok=True)
            pafs.copy_files(location.path(self.table, f.path), str(target), location.fs, local)
            paths.append(str(target))
        return paths


def date_key(value: dt.date | str) -> str:
    return value.isoformat() if isinstance(value, dt.date) else dt.date.fromisoformat(value).isoformat()


def date_transaction(table: str, key: str) -> str:
    """The id of the application transaction that a commit of `table` records for date `key`."""
    return f"{table}/{DATE}={key}"


def date_transactions(
    table: str, keys: Sequence[str], stamp: int, companion: Commit | None, records: Mapping[str, int] | None = None
) -> list[Transaction]:
    """A commit's application transactions: one per date, versioned `stamp`, so that concurrent
    writers of a date conflict on it even where it held nothing before (an overwrite alone would
    let both add); `records`, other transactions the writer keeps (app id -> version); in a table
    of record, also the `companion` commit its dates go with."""
    own = [Transaction(app_id=date_transaction(table, key), version=stamp) for key in keys]
    own += [Transaction(app_id=app, version=version) for app, version in (records or {}).items()]
    if companion is None:
        return own
    if sorted(companion.partitions) != list(keys):
        raise ValueError(f"{companion.table} committed {sorted(companion.partitions)}, not {list(keys)}")
    named = [date_transaction(companion.table, key) for key in keys]
    return own + companions.naming(named, companion.transaction, companion.version)


class TableStore:
    """Locates, creates, reads and maintains the Delta tables under one root location."""

    def __init__(self, location: Location) -> None:
        self.location = location

    @classmethod
    def at(cls, uri: str, s3: S3Settings | None = None) -> TableStore:
        return cls(resolve(uri, s3))

    # -- locations ---------------------------------------------------------------------------

    def uri(self, table: str) -> str:
        return self.location.child(table).uri

    def _delta(self, table: str, version: int | None = None) -> DeltaTable:
        try:
            delta = DeltaTable(self.uri(table), storage_options=self.location.storage_options())
        except TableNotFoundError:
            raise PartitionNotFoundError(
                f"table {table} has no commit yet: no Delta log at {self.uri(table)}"
            ) from None
        if version is not None:
            delta.load_as_version(version)
        return delta

    def exists(self, table: str) -> bool:
        return DeltaTable.is_deltatable(self.uri(table), storage_options=self.location.storage_options())

    # -- creating ----------------------------------------------------------------------------

    def create_or_open(self, table: str, schema: pa.Schema, partition_by: list[str]) -> DeltaTable:
        """The table to write, created with `schema` if it has no commit yet; a different schema is refused."""
        options = self.location.storage_options()
        if not self.exists(table):
            # Two first writers may race to create the table; "ignore" lets the second one use it.
            DeltaTable.create(
                self.uri(table), schema, mode="ignore", partition_by=partition_by, storage_options=options
            )
        delta = DeltaTable(self.uri(table), storage_options=options)
        current = pa.schema(delta.schema().to_arrow())
        if current.names != schema.names:
            raise ValueError(
                f"table {table} has columns {current.names}; this write has {schema.names}. "
                "A schema change needs a fresh table: re-materialize into a new storage root"
            )
        return delta

    # -- reading -----------------------------------------------------------------------------

    def files(
        self, table: str, dates: Sequence[dt.date | str], *, version: int | None = None, held_only: bool = False
    ) -> list[DataFile]:
        """The committed files of `dates` (at `version`, default the current one), in path order; a
        companion table's current files of a date are those its table of record names (`companions`).
        A date the table does not hold raises PartitionNotFoundError, or with `held_only` has no files."""
        keys = sorted({date_key(d) for d in dates})
        if version is None and table in COMPANIONS:
            named = companions.locate(
                self._delta(COMPANIONS[table]),
                current := self._delta(table),
                {k: date_transaction(table, k) for k in keys},
            )
            if named.unnamed and not held_only:
                raise PartitionNotFoundError(
                    f"table {table} holds no data for {', '.join(named.unnamed)} that a commit of "
                    f"{COMPANIONS[table]} names: materialize those partitions first"
                )
            found = self._files(current, table, named.current, None, held_only) if named.current else []
            for at, group in named.earlier.items():
                found += self._files(self._delta(table, at), table, group, at, held_only)
            return sorted(found, key=lambda f: (f.partition[DATE], f.path))
        return self._files(self._delta(table, version), table, keys, version, held_only)

    def companion_version(self, table: str, date: dt.date | str, *, record_version: int | None = None) -> int:
        """The version of companion `table` whose rows of `date` go with its table of record at
        `record_version` (default the current one)."""
        app = companions.version_id(date_transaction(table, date_key(date)))
        named = self._delta(COMPANIONS[table], record_version).transaction_version(app)
        if named is None:
            raise PartitionNotFoundError(f"no commit of {COMPANIONS[table]} names a {table} of {date_key(date)}")
        return named

    def _files(
        self, delta: DeltaTable, table: str, keys: Sequence[str], version: int | None, held_only: bool = False
    ) -> list[DataFile]:
        actions = pa.table(delta.get_add_actions(flatten=True))
        column = f"partition.{DATE}"
        if column in actions.column_names:  # only the rows of `keys` become Python objects, not the other dates'
            held = pc.is_in(actions[column].cast(pa.string()), value_set=pa.array(keys, pa.string()))
            actions = actions.filter(held)
        partition_columns = [c for c in actions.column_names if c.startswith("partition.")]
        found = []
        for row in actions.to_pylist():
            partition = {c.removeprefix("partition."): _as_text(row[c]) for c in partition_columns}
            found.append(DataFile(row["path"], partition, int(row.get("num_records") or 0), row["size_bytes"]))
        missing = sorted(set(keys) - {f.partition[DATE] for f in found})
        if missing and not held_only:
            at = "current" if version is None else version
            raise PartitionNotFoundError(
                f"table {table} holds no data for {', '.join(missing)} (version {at}): "
                "materialize those partitions first"
            )
        return sorted(found, key=lambda f: (f.partition[DATE], f.path))

    def file_uri(self, table: str, data_file: DataFile) -> str:
        return self.location.child(table, data_file.path).uri

    def dataset(self, table: str, dates: Sequence[dt.date | str], *, version: int | None = None) -> ds.Dataset:
        """A pyarrow Dataset over exactly the committed files of `dates`, partition columns included."""
        files = self.files(table, dates, version=version)
        names = list(files[0].partition) if files else [DATE]
        partitioning = ds.partitioning(pa.schema([pa.field(n, PARTITION_TYPES[n]) for n in names]), flavor="hive")
        return ds.dataset(
            [self.location.path(table, f.path) for f in files],
            filesystem=self.location.fs,
            format="parquet",
            partitioning=partitioning,
            partition_base_dir=self.location.path(table),
        )

    def read(
        self,
        table: str,
        dates: Sequence[dt.date | str],
        *,
        columns: Sequence[str] | None = None,
        version: int | None = None,
    ) -> pa.Table:
        """The committed rows of `dates` as one table, in date then file order."""
        dataset = self.dataset(table, dates, version=version)
        return dataset.to_table(columns=list(columns) if columns is not None else None)

    def read_each(
        self, table: str, dates: Sequence[dt.date | str], columns: Sequence[str], schema: pa.Schema | None = None
    ) -> dict[str, pa.Table]:
        """The current rows of each of `dates` the table holds (the others left out), with only `columns`
        (no partition column): one look at the log, and no file of another date, nor another column, read.
        `schema` may read a column as a type Parquet converts to (strings as binary: no UTF-8 check)."""
        files = self.files(table, dates, held_only=True)
        by_date: dict[str, list[str]] = {}
        for f in files:
            by_date.setdefault(f.partition[DATE], []).append(self.location.path(table, f.path))
        return {
            key: ds.dataset(paths, schema=schema, filesystem=self.location.fs, format="parquet").to_table(
                columns=list(columns)
            )
            for key, paths in by_date.items()
        }

    def dates(self, table: str) -> list[str]:
        """The dates the current version holds (a companion's: that its table of record names), sorted."""
        if table in COMPANIONS:
            named = self.dates(COMPANIONS[table])
            record = self._delta(COMPANIONS[table]) if named else None
            return [d for d in named if record and record.transaction_version(date_transaction(table, d)) is not None]
        if not self.exists(table):
            return []
        actions = pa.table(self._delta(table).get_add_actions(flatten=True))
        return sorted({_as_text(v) for v in actions.column(f"partition.{DATE}").to_pylist()})

    def stamps(self, table: str, app_ids: Sequence[str]) -> dict[str, int | None]:
        """The versions of these application transactions in the table's current version (None where
        it has none; a date's is the stamp of the commit that last replaced it, `date_transaction`)."""
        if not app_ids:
            return {}
        if not self.exists(table):
            return dict.fromkeys(app_ids)
        delta = self._delta(table)
        return {app: delta.transaction_version(app) for app in app_ids}

    def version(self, table: str) -> int:
        return self._delta(table).version()

    def history(self, table: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The table's commits, newest first, with the metadata each write recorded."""
        entries = self._delta(table).history(limit)
        for entry in entries:
            entry["consumer_assets"] = json.loads(entry.get("consumer_assets") or "{}")
        return entries

    # -- upkeep ------------------------------------------------------------------------------

    def vacuum(self, table: str, retention: dt.timedelta = DEFAULT_RETENTION) -> list[str]:
        """Delete files no version within `retention` references (dead writes' files included)."""
        return self._delta(table).vacuum(
            retention_hours=int(retention.total_seconds() // 3600),
            dry_run=False,
            enforce_retention_duration=False,
            full=True,
        )

    def compact(self, table: str) -> dict[str, Any]:
        """Merge small files of each partition into bigger ones (a new version; old files stay for vacuum)."""
        return self._delta(table).optimize.compact()

    def tables(self) -> list[str]:
        """The tables under the root."""
        selector = pafs.FileSelector(self.location.root, allow_not_found=True)
        return sorted(
            info.base_name
            for info in self.location.fs.get_file_info(selector)
            if info.type == pafs.FileType.Directory and self.exists(info.base_name)
        )


def _as_text(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value)

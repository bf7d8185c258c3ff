"""Training histories that stream: read from their files in record batches, a pass at a time.

A `HistoryStream` is the parts of a histories table (its Parquet files, or slices of a table in
memory) and which of their rows it holds: the training cut-off days, and salted profile-hash
cuts (the validation split, the early-stopping profiles, the cap's sample per day). Between
passes it holds nothing but the buyers of the label windows; a pass decodes the parts again,
keeps its rows, labels them and converts them to SequenceData a chunk at a time, so memory is a
chunk's, however many histories the table holds.

In shuffled order (training), each pass opens the parts in a new random order, INTERLEAVE at a
time, and takes READ_ROWS rows from each in turn: a chunk of SHUFFLE_ROWS mixes the rows of
several files, so several cut-off days and profile buckets, and length_batches then shuffles
the chunk's rows and batches them by length. Rows within a file are in profile-id order, which
says nothing about a profile, so that is shuffling enough (bench_train.py measures it against
shuffling everything in memory). In stored order (evaluation), parts are read one after the
other. A stream never holds a profile's rows in one role and not another: every cut is by the
profile's hash.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from consumer_assets.histories.schema import HISTORIES_SCHEMA
from consumer_assets.ml.training.data import SequenceData
from consumer_assets.ml.training.labels import BUYERS_SCHEMA, day_thresholds, hash_slots, slots_below, with_labels
from consumer_assets.storage.tables import DATE

EPOCH = dt.date(1970, 1, 1)
# Histories converted and shuffled together: the memory of a pass (about 3 KB a history of the
# default 180-day horizon as SequenceData), and how far rows travel when shuffled.
SHUFFLE_ROWS = 32_768
# Parts read side by side when shuffling, and rows read from each in turn.
INTERLEAVE = 8
READ_ROWS = 1_024
# Rows of a table in memory per part: slices, shuffled like files.
TABLE_PART_ROWS = 4_096
# Read buffer per column of a file: a histories file's one row group is read page by page, not whole.
READ_BUFFER = 1 << 18


@dataclass(frozen=True)
class FilePart:
    """One histories file of one cut-off day (the table's `date` partition)."""

    filesystem: pafs.FileSystem
    path: str
    day: dt.date

    def batches(self, columns: Sequence[str], cutoff_column: str) -> Iterator[pa.RecordBatch]:
        stored = [c for c in columns if c != cutoff_column]
        with self.filesystem.open_input_file(self.path) as source:
            reader = pq.ParquetFile(source, pre_buffer=False, buffer_size=READ_BUFFER)
            for batch in reader.iter_batches(batch_size=READ_ROWS, columns=stored, use_threads=False):
                if cutoff_column in columns:
                    day = pa.repeat(pa.scalar(self.day, pa.date32()), batch.num_rows)
                    batch = batch.append_column(cutoff_column, day)
                yield batch.select(list(columns))


@dataclass(frozen=True)
class TablePart:
    """Rows of a table in memory."""

    table: pa.Table

    def batches(self, columns: Sequence[str], cutoff_column: str) -> Iterator[pa.RecordBatch]:
        yield from self.table.select(list(columns)).to_batches(max_chunksize=READ_ROWS)


Part = FilePart | TablePart


@dataclass(frozen=True)
class Cut:
    """Rows by the salted hash of their profile: those below `shares` (a share, or one per cut-off
    day in days since the epoch, days not named kept whole) or, with held=False, the others."""

    salt: str
    shares: float | Mapping[int, float]
    held: bool = True

    def mask(self, profile_ids: pa.Array, days: np.ndarray) -> np.ndarray:
        slots = hash_slots(profile_ids, self.salt)
        below = slots_below(self.shares) if isinstance(self.shares, float) else day_thresholds(days, dict(self.shares))
        inside = slots < below
        return inside if self.held else ~inside


def parts_of(histories: ds.Dataset | pa.Table, cutoff_column: str = DATE) -> tuple[Part, ...]:
    """The parts of a histories dataset (its files, with the cut-off day of their partition) or table."""
    if isinstance(histories, pa.Table):
        n = histories.num_rows
        return tuple(TablePart(histories.slice(i, TABLE_PART_ROWS)) for i in range(0, n, TABLE_PART_ROWS))
    if not isinstance(histories, ds.FileSystemDataset):
        raise TypeError(f"histories must be a pyarrow table or file dataset, got {type(histories).__name__}")
    parts = []
    for fragment in histories.get_fragments():
        keys = ds.get_partition_keys(fragment.partition_expression)
        if cutoff_column not in keys:
            raise ValueError(f"{fragment.path}: no {cutoff_column!r} partition to take the cut-off day from")
        day = keys[cutoff_column]
        parts.append(FilePart(fragment.filesystem, fragment.path, day if isinstance(day, dt.date) else _date(day)))
    return tuple(parts)


def _date(value: object) -> dt.date:
    return dt.date.fromisoformat(str(value))


@dataclass(frozen=True)
class HistoryStream:
    """Labelled histories of some cut-off days read from their parts, filtered by profile-hash cuts."""

    parts: tuple[Part, ...]
    buyers: pa.Table = field(repr=False)  # labels.BUYERS_SCHEMA: who ordered after which cut-off
    days: frozenset[int] | None = None  # cut-off days kept (days since the epoch); None: every day
    cuts: tuple[Cut, ...] = ()
    cutoff_column: str = DATE

    @classmethod
    def of(
        cls,
        histories: ds.Dataset | pa.Table,
        buyers: pa.Table | None = None,
        days: Sequence[dt.date] | None = None,
        cutoff_column: str = DATE,
    ) -> HistoryStream:
        """HISTORIES_SCHEMA rows with their cut-off day in `cutoff_column`, labelled by `buyers`."""
        return cls(
            parts_of(histories, cutoff_column),
            buyers if buyers is not None else BUYERS_SCHEMA.empty_table(),
            frozenset((d - EPOCH).days for d in days) if days is not None else None,
            cutoff_column=cutoff_column,
        )

    def held_out(self, share: float, salt: str) -> tuple[HistoryStream, HistoryStream]:
        """(the rest, the held-out profiles): `share` of the profiles by the hash salted with `salt`."""
        held = Cut(salt, float(share))
        return replace(self, cuts=(*self.cuts, replace(held, held=False))), replace(self, cuts=(*self.cuts, held))

    def sampled(self, shares: Mapping[int, float], salt: str) -> HistoryStream:
        """The rows kept when each day in `shares` keeps that share of its profiles (others whole)."""
        return replace(self, cuts=(*self.cuts, Cut(salt, dict(shares)))) if shares else self

    def mask(self, batch: pa.RecordBatch) -> np.ndarray:
        """Which rows of a batch (with profile_id and the cut-off column) this stream holds."""
        days = pc.cast(pc.cast(batch.column(self.cutoff_column), pa.date32()), pa.int32()).to_numpy(
            zero_copy_only=False
        )
        keep = np.ones(batch.num_rows, dtype=bool) if self.days is None else np.isin(days, list(self.days))
        ids = batch.column("profile_id")
        for cut in self.cuts:
            keep &= cut.mask(ids, days)
        return keep

    @functools.cached_property
    def _tally(self) -> tuple[dict[int, int], int]:
        """(rows per cut-off day in days since the epoch, positive rows): one pass over ids and days alone."""
        counts: dict[int, int] = {}
        positives = 0
        narrow = self._read(["profile_id", self.cutoff_column], shuffled=None)
        for batch in with_labels(narrow, self.buyers, cutoff_column=self.cutoff_column):
            days = pc.cast(pc.cast(batch.column(self.cutoff_column), pa.date32()), pa.int32()).to_numpy()
            for day, n in zip(*np.unique(days, return_counts=True), strict=True):
                counts[int(day)] = counts.get(int(day), 0) + int(n)
            positives += int(pc.sum(batch.column("label")).as_py() or 0)
        return dict(sorted(counts.items())), positives

    @property
    def rows_per_day(self) -> dict[int, int]:
        """Rows held per cut-off day (days since the epoch)."""
        return self._tally[0]

    @property
    def positives(self) -> int:
        """Rows whose profile ordered in the 7 days after their cut-off."""
        return self._tally[1]

    def __len__(self) -> int:
        return sum(self.rows_per_day.values())

    def chunks(self, rng: np.random.Generator | None = None, rows: int | None = None) -> Iterator[SequenceData]:
        """The rows as labelled SequenceData of about `rows` rows each (default SHUFFLE_ROWS): in
        stored order, or shuffled by `rng` (parts in random order, INTERLEAVE read side by side)."""
        rows = rows or SHUFFLE_ROWS
        pending: list[pa.RecordBatch] = []
        held = 0
        for batch in self._read([*HISTORIES_SCHEMA.names, self.cutoff_column], shuffled=rng):
            pending.append(batch)
            held += batch.num_rows
            if held >= rows:
                yield self._labelled(pending)
                pending, held = [], 0
        if pending:
            yield self._labelled(pending)

    def _labelled(self, batches: list[pa.RecordBatch]) -> SequenceData:
        labelled = with_labels(batches, self.buyers, cutoff_column=self.cutoff_column)
        return SequenceData.from_batches(labelled, cutoff_column=self.cutoff_column)

    def _read(self, columns: list[str], shuffled: np.random.Generator | None) -> Iterator[pa.RecordBatch]:
        """This stream's rows of every part, in `columns` (which include profile_id and the cut-off day)."""
        order = shuffled.permutation(len(self.parts)) if shuffled is not None else range(len(self.parts))
        waiting = deque(self.parts[i] for i in order)
        width = INTERLEAVE if shuffled is not None else 1
        reading: deque[Iterator[pa.RecordBatch]] = deque()
        while reading or waiting:
            while waiting and len(reading) < width:
                reading.append(waiting.popleft().batches(columns, self.cutoff_column))
            source = reading.popleft()
            batch = next(source, None)
            if batch is None:
                continue
            reading.append(source)
            keep = self.mask(batch)
            if keep.all():
                yield batch
            elif keep.any():
                yield batch.filter(pa.array(keep))

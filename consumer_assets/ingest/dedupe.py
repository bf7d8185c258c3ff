"""De-duplication by event id: against the ids kept on earlier days, and within the day.

Within a day the first occurrence (in file, then line order) is kept. An event whose id was kept
on an earlier day is quarantined wherever it occurs. A duplicate's quarantine row carries its raw
line; files are streamed, so a file keeps the raw lines only of rows that may repeat an earlier
id of the same file (`RepeatFilter`), and the few others are read again from the landing zone.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from consumer_assets.events.bucketing import as_string_array
from consumer_assets.events.schema import QUARANTINE_SCHEMA, RAW_EVENTS_SCHEMA
from consumer_assets.ingest.validate import CHECKED_SCHEMA

RAW_LINES_SCHEMA = pa.schema([QUARANTINE_SCHEMA.field("line_number"), QUARANTINE_SCHEMA.field("raw_line")])
# The earlier days' kept ids, as the caller passes them.
EARLIER_IDS_SCHEMA = pa.schema([pa.field("event_id", pa.string()), pa.field("date", pa.date32())])
_SLOTS = 1 << 24  # fingerprint >> 40: 16 MB of flags
_LOW_SLOTS = 1 << 20  # fingerprint & (2**20 - 1), bits independent of the slot's: 1 MB, fits a core's cache


@dataclass(frozen=True)
class CheckedSource:
    """One file of the day after validation, with the raw lines of the kept rows that may be repeats."""

    name: str
    events: pa.Table  # CHECKED_SCHEMA, in line order
    maybe_repeats: pa.Table  # RAW_LINES_SCHEMA, ascending line numbers
    lines: int
    fingerprints: np.ndarray  # of the events' ids (`fingerprint`)


class RepeatFilter:
    """Which kept rows of a file's next block may repeat an id seen before in the file.

    A bitmap of 2**24 bits (2 MB) over a fingerprint of each id: a match may be a collision
    (about one in 60 rows of a file of 250,000 events), never a miss, so the raw lines kept for
    a file are a small superset of its repeats' lines.
    """

    def __init__(self) -> None:
        self._bits = np.zeros(1 << 21, np.uint8)

    def flag(self, fingerprints: np.ndarray) -> np.ndarray:
        """Which of these ids (by `fingerprint`) may have occurred before, in earlier blocks or this one."""
        slot = fingerprints >> np.uint64(40)
        byte, bit = slot >> np.uint64(3), np.left_shift(np.uint8(1), (slot & np.uint64(7)).astype(np.uint8))
        flagged = (self._bits[byte] & bit) != 0
        ordered = np.sort(slot)
        again = ordered[1:][ordered[1:] == ordered[:-1]]
        if len(again):  # repeats within the block itself
            flagged |= np.isin(slot, again)
        np.bitwise_or.at(self._bits, byte, bit)
        return flagged


class EarlierIds:
    """The ids kept on earlier days, made ready for looking up a day's ids among them.

    `parts` are (day, ids) in their order of precedence: an id kept on several of these days is
    reported as kept on the last of them. The fingerprints and the table of their slots are made
    here, so a caller can make them on another thread while the day's files are parsed.
    """

    def __init__(self, parts: Sequence[tuple[str, pa.Array | pa.ChunkedArray]]) -> None:
        chunks = [
            as_string_array(c).cast(pa.string())
            for _, ids in parts
            for c in (ids.chunks if isinstance(ids, pa.ChunkedArray) else [ids])
        ]
        self.ids = pa.chunked_array(chunks, pa.string())
        self.days = [day for day, _ in parts]
        self.day_of = np.repeat(np.arange(len(parts), dtype=np.int32), [len(ids) for _, ids in parts])
        self.fingerprints = np.concatenate([np.zeros(0, np.uint64), *(fingerprint(c) for c in chunks)])
        self.slots = np.zeros(_SLOTS, bool)
        self.slots[self.fingerprints >> np.uint64(40)] = True

    @classmethod
    def from_table(cls, table: pa.Table) -> EarlierIds:
        """From a table of EARLIER_IDS_SCHEMA (date may also be a string), in its row order."""
        ids, days = as_string_array(table["event_id"]), as_string_array(table["date"].cast(pa.string()))
        if not len(days):
            return cls([])
        starts = np.flatnonzero(np.r_[True, np.asarray(pc.not_equal(days[1:], days[:-1]))])
        ends = np.r_[starts[1:], len(days)]
        return cls([(days[int(a)].as_py(), ids[int(a) : int(b)]) for a, b in zip(starts, ends, strict=True)])

    def __len__(self) -> int:
        return len(self.ids)

    def day_index(self, ids: pa.Array, fingerprints: np.ndarray) -> np.ndarray:
        """For each of `ids` (with their `fingerprint`s), the index in `days` of the last day that kept it, else -1.

        Equal ids have equal fingerprints, so only ids whose fingerprint is among the earlier ones are
        compared as strings (the repeats, and the rare collision). Finding those costs little: only the
        ids whose fingerprint's slot is taken (about one in 12 at two days of 800k ids) are looked up,
        among the earlier fingerprints that share a second, independent slot with one of them.
        """
        day = np.full(len(ids), -1, np.int64)
        maybe = np.flatnonzero(self.slots[fingerprints >> np.uint64(40)])
        if not len(maybe):
            return day
        low = np.uint64(_LOW_SLOTS - 1)
        near = np.zeros(_LOW_SLOTS, bool)
        near[fingerprints[maybe] & low] = True
        rows = np.flatnonzero(near[self.fingerprints & low])
        same = np.asarray(pc.is_in(fingerprints[maybe], value_set=pa.array(self.fingerprints[rows])))
        maybe = maybe[same]
        if not len(maybe):
            return day
        rows = rows[np.asarray(pc.is_in(self.fingerprints[rows], value_set=pa.array(fingerprints[maybe])))]
        last_first = np.arange(len(rows))[::-1]  # the last day first: index_in finds the first occurrence
        candidates = _take_ascending(self.ids, rows).take(pa.array(last_first)).cast(ids.type)
        found = pc.index_in(ids.take(pa.array(maybe)), value_set=candidates)
        hit = np.asarray(found.is_valid())
        day[maybe[hit]] = self.day_of[rows[last_first[found.drop_null().to_numpy()]]]
        return day


def _take_ascending(values: pa.ChunkedArray, rows: np.ndarray) -> pa.Array:
    """values.take(rows) for ascending rows, chunk by chunk: ChunkedArray.take copies all the chunks into one first."""
    ends = np.cumsum([len(c) for c in values.chunks], dtype=np.int64)
    cuts = np.r_[0, np.searchsorted(rows, ends)]
    pieces = [
        chunk.take(pa.array(rows[cuts[k] : cuts[k + 1]] - (ends[k] - len(chunk))))
        for k, chunk in enumerate(values.chunks)
        if cuts[k + 1] > cuts[k]
    ]
    return pa.concat_arrays(pieces) if pieces else pa.array([], values.type)


def fingerprint(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A 64-bit hash of each string from its length and its first and last 8 bytes (0 for null).

    Equal strings have equal fingerprints; strings that differ only in the middle collide, which
    a filter can afford. Ids of one length (the usual case) are read as a matrix, without a copy.
    """
    arr = as_string_array(values)
    n = len(arr)
    offset_type = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(arr.buffers()[1], offset_type)[arr.offset : arr.offset + n + 1].astype(np.int64)
    data = arr.buffers()[2]
    chars = np.frombuffer(data, np.uint8) if data is not None and data.size else np.zeros(1, np.uint8)
    lengths = np.diff(offsets)
    if n and lengths[0] >= 8 and lengths[0] % 8 == 0 and (lengths == lengths[0]).all():
        words = chars[offsets[0] : offsets[-1]].view(np.uint64).reshape(n, int(lengths[0]) // 8)
        head, tail = words[:, :1], words[:, -1:]  # 8 bytes as one word: no copy at all
    elif n and lengths[0] >= 8 and (lengths == lengths[0]).all():
        matrix = chars[offsets[0] : offsets[-1]].reshape(n, int(lengths[0]))
        head, tail = matrix[:, :8], matrix[:, -8:]
    else:  # bytes at positions clipped to each string, so a neighbour's bytes never count
        last = np.maximum(offsets[1:] - 1, offsets[:-1])[:, None]
        head = chars[np.clip(offsets[:-1, None] + np.arange(8), offsets[:-1, None], last)]
        tail = chars[np.clip(offsets[1:, None] - 8 + np.arange(8), offsets[:-1, None], last)]
        head[lengths == 0] = 0
        tail[lengths == 0] = 0
    with np.errstate(over="ignore"):
        mixed = _words(head) * np.uint64(0x9E3779B97F4A7C15)
        mixed ^= _words(tail) * np.uint64(0xC2B2AE3D27D4EB4F)
        mixed ^= lengths.astype(np.uint64) * np.uint64(0x165667B19E3779F9)
        mixed ^= mixed >> np.uint64(29)
        mixed *= np.uint64(0xBF58476D1CE4E5B9)
    if arr.null_count:
        mixed[np.asarray(arr.is_null())] = 0
    return mixed


def _words(columns: np.ndarray) -> np.ndarray:
    """Each row's 8 bytes (or one uint64) as a little-endian uint64."""
    if columns.dtype == np.uint64:
        return columns[:, 0]
    return np.ascontiguousarray(columns).view(np.uint64)[:, 0]


def dedupe(
    sources: list[CheckedSource],
    earlier_ids: EarlierIds | pa.Table | None = None,
    reread: Callable[[int, np.ndarray], list[bytes]] | None = None,
) -> tuple[pa.Table, pa.Table]:
    """Keep the first occurrence of each id not kept on an earlier day: (kept events, quarantined repeats).

    `earlier_ids` are the ids kept on earlier days, or a table of them (EARLIER_IDS_SCHEMA; date may also
    be a string).
    `reread(source index, line numbers)` returns raw lines that the sources did not keep.
    """
    events = pa.concat_tables([CHECKED_SCHEMA.empty_table(), *(s.events for s in sources)])
    source_of = np.repeat(np.arange(len(sources)), [s.events.num_rows for s in sources])
    ids = as_string_array(events["event_id"])
    fingerprints = np.concatenate([np.zeros(0, np.uint64), *(s.fingerprints for s in sources)])
    first_row = _first_rows(ids, fingerprints)
    rows = np.arange(len(ids))
    repeat = first_row != rows
    if isinstance(earlier_ids, pa.Table):
        earlier_ids = EarlierIds.from_table(earlier_ids)
    day_of_row = np.full(len(ids), -1)
    if earlier_ids is not None and len(earlier_ids):
        day_of_row = earlier_ids.day_index(ids, fingerprints)
    earlier = day_of_row[first_row] >= 0
    dropped = np.flatnonzero(repeat | earlier)
    dropped_ids, kept_row = ids.take(pa.array(dropped)), first_row[dropped]
    detail = pc.binary_join_element_wise(
        "event_id ",
        dropped_ids,
        " already kept from ",
        pa.array([s.name for s in sources], pa.string()).take(source_of[kept_row]),
        " line ",
        events["line_number"].take(kept_row).cast(pa.string()),
        "",
    )
    if earlier.any():
        on = pa.array(earlier_ids.days, pa.string()).take(pa.array(np.maximum(day_of_row[kept_row], 0)))
        before = pc.binary_join_element_wise("event_id ", dropped_ids, " already kept on ", on, "")
        detail = pc.if_else(pa.array(earlier[dropped]), before, detail)
    repeated = pa.table(
        {
            "source_file": pa.array([s.name for s in sources], pa.string()).take(source_of[dropped]),
            "line_number": events["line_number"].take(dropped),
            "reason": pa.array(["duplicate_event_id"] * len(dropped), pa.string()),
            "detail": detail,
            "raw_line": _raw_lines(sources, source_of[dropped], events["line_number"].take(dropped), reread),
        },
        schema=QUARANTINE_SCHEMA,
    )
    kept = _filter(events, ~(repeat | earlier)) if len(dropped) else events
    return kept.select(RAW_EVENTS_SCHEMA.names).cast(RAW_EVENTS_SCHEMA), repeated


def _filter(table: pa.Table, keep: np.ndarray) -> pa.Table:
    """table.filter(keep), a column per thread: copying the strings is the cost; Arrow does it without the GIL."""
    mask = pa.array(keep)
    with ThreadPoolExecutor(min(table.num_columns, os.cpu_count() or 1)) as pool:
        columns = list(pool.map(lambda column: column.filter(mask), table.columns))
    return pa.Table.from_arrays(columns, schema=table.schema)


def _first_rows(ids: pa.Array, fingerprints: np.ndarray) -> np.ndarray:
    """For each row, the row where its id occurs first."""
    first_row = np.arange(len(ids))
    # Only ids whose fingerprint occurs twice can repeat: compare those exactly (few, or none).
    ordered = np.sort(fingerprints)
    shared = ordered[1:][ordered[1:] == ordered[:-1]]
    if len(shared):
        maybe = np.flatnonzero(np.isin(fingerprints, shared))
        codes = pc.dictionary_encode(ids.take(pa.array(maybe))).indices.to_numpy(zero_copy_only=False)
        first_row[maybe] = maybe[np.unique(codes, return_index=True)[1]][codes]
    return first_row


def _raw_lines(
    sources: list[CheckedSource],
    source_of: np.ndarray,
    line_numbers: pa.ChunkedArray,
    reread: Callable[[int, np.ndarray], list[bytes]] | None,
) -> pa.Array:
    numbers = line_numbers.to_numpy()
    raw: list[bytes] = [b""] * len(numbers)
    for k in np.unique(source_of).tolist():
        rows = np.flatnonzero(source_of == k)
        kept = sources[k].maybe_repeats
        found = dict(zip(kept["line_number"].to_pylist(), kept["raw_line"].to_pylist(), strict=True))
        missing = [n for n in numbers[rows].tolist() if n not in found]
        if missing:
            if reread is None:
                raise ValueError(f"{sources[k].name}: raw lines {missing[:5]} are needed but were not kept")
            found.update(zip(missing, reread(k, np.array(missing)), strict=True))
        for row, number in zip(rows.tolist(), numbers[rows].tolist(), strict=True):
            raw[row] = found[number]
    return pa.array(raw, pa.binary())

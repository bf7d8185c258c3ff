"""De-duplication by event id: against the ids kept on earlier days, and within the day.

Within a day the first occurrence (in file, then line order) is kept. An event whose id was kept
on an earlier day is quarantined wherever it occurs. A duplicate's quarantine row carries its raw
line; files are streamed, so a file keeps the raw lines only of rows that may repeat an earlier
id of the same file (`RepeatFilter`), and the few others are read again from the landing zone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from consumer_assets.events.bucketing import crc32
from consumer_assets.events.schema import QUARANTINE_SCHEMA, RAW_EVENTS_SCHEMA
from consumer_assets.ingest.validate import CHECKED_SCHEMA, ValidatedDay

RAW_LINES_SCHEMA = pa.schema([QUARANTINE_SCHEMA.field("line_number"), QUARANTINE_SCHEMA.field("raw_line")])
# The earlier days' kept ids, as the caller passes them.
EARLIER_IDS_SCHEMA = pa.schema([pa.field("event_id", pa.string()), pa.field("date", pa.date32())])


@dataclass(frozen=True)
class CheckedSource:
    """One file of the day after validation, with the raw lines of the kept rows that may be repeats."""

    name: str
    events: pa.Table  # CHECKED_SCHEMA, in line order
    quarantine: pa.Table  # QUARANTINE_SCHEMA, in line order
    maybe_repeats: pa.Table  # RAW_LINES_SCHEMA, ascending line numbers
    lines: int


class RepeatFilter:
    """Which kept rows of a file's next block may repeat an id seen before in the file.

    A bitmap of 2**24 bits (2 MB) over the ids' CRC-32: a match may be a collision (about one in
    60 rows of a file of 250,000 events), never a miss, so the raw lines kept for a file are a
    small superset of its repeats' lines.
    """

    def __init__(self) -> None:
        self._bits = np.zeros(1 << 21, np.uint8)

    def flag(self, event_ids: pa.ChunkedArray | pa.Array) -> np.ndarray:
        slot = crc32(event_ids) >> np.uint32(8)
        byte, bit = slot >> np.uint32(3), np.left_shift(np.uint8(1), (slot & np.uint32(7)).astype(np.uint8))
        flagged = (self._bits[byte] & bit) != 0
        ordered = np.sort(slot)
        again = ordered[1:][ordered[1:] == ordered[:-1]]
        if len(again):  # repeats within the block itself
            flagged |= np.isin(slot, again)
        np.bitwise_or.at(self._bits, byte, bit)
        return flagged


def dedupe(
    sources: list[CheckedSource],
    earlier_ids: pa.Table | None = None,
    reread: Callable[[int, np.ndarray], list[bytes]] | None = None,
) -> ValidatedDay:
    """Keep the first occurrence of each id not kept on an earlier day; quarantine the rest after the bad lines.

    `earlier_ids` has columns event_id and date (EARLIER_IDS_SCHEMA; date may also be a string).
    `reread(source index, line numbers)` returns raw lines that the sources did not keep.
    """
    events = pa.concat_tables([CHECKED_SCHEMA.empty_table(), *(s.events for s in sources)]).combine_chunks()
    source_of = np.repeat(np.arange(len(sources)), [s.events.num_rows for s in sources])
    encoded = pc.dictionary_encode(events["event_id"]).combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    first_at = np.unique(codes, return_index=True)[1]  # row of each distinct id's first occurrence
    repeat = np.ones(len(codes), bool)
    repeat[first_at] = False
    earlier = np.zeros(len(codes), bool)
    if earlier_ids is not None and earlier_ids.num_rows:
        at = pc.index_in(encoded.dictionary, value_set=earlier_ids["event_id"])
        earlier = np.asarray(at.is_valid())[codes]
        earlier_day = earlier_ids["date"].cast(pa.string()).take(at)
    dropped = np.flatnonzero(repeat | earlier)
    ids = events["event_id"].take(dropped)
    kept_row = first_at[codes[dropped]]
    detail = pc.binary_join_element_wise(
        "event_id ",
        ids,
        " already kept from ",
        pa.array([s.name for s in sources], pa.string()).take(source_of[kept_row]),
        " line ",
        events["line_number"].take(kept_row).cast(pa.string()),
        "",
    )
    if earlier.any():
        before = pc.binary_join_element_wise(
            "event_id ", ids, " already kept on ", earlier_day.take(codes[dropped]), ""
        )
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
    quarantine = pa.concat_tables([QUARANTINE_SCHEMA.empty_table(), *(s.quarantine for s in sources), repeated])
    kept = events.filter(pa.array(~(repeat | earlier))).select(RAW_EVENTS_SCHEMA.names).cast(RAW_EVENTS_SCHEMA)
    counts = pc.value_counts(quarantine["reason"]).to_pylist()
    return ValidatedDay(kept, quarantine, {c["values"]: c["counts"] for c in counts})


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

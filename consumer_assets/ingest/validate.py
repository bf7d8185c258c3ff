"""Validate landed lines against the event contract: every line is kept or quarantined with a reason.

Rules, in the order they are checked (the first that fails is the reason):
`invalid_utf8`, `invalid_json`, `not_an_object`, `missing_field` (a required field absent or
null), `wrong_type`, `unknown_event_type`, `missing_field` again for an article event without
article_id, `invalid_timestamp` (unparseable or without a time zone), `timestamp_outside_day`,
`invalid_value` (a negative or non-finite price), `duplicate_event_id` (an event id already kept
earlier this day: the first occurrence, in file then line order, is kept).
"""

from __future__ import annotations

import datetime as dt
import gc
import math
from dataclasses import dataclass

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from consumer_assets.events.schema import (
    ACTION_INDEX,
    ARTICLE_EVENT_TYPES,
    QUARANTINE_SCHEMA,
    RAW_EVENTS_SCHEMA,
    REQUIRED_FIELDS,
)

REASONS: tuple[str, ...] = (
    "invalid_utf8",
    "invalid_json",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "unknown_event_type",
    "invalid_timestamp",
    "timestamp_outside_day",
    "invalid_value",
    "duplicate_event_id",
)
_STRING_FIELDS = (
    "event_id",
    "profile_id",
    "session_id",
    "ts",
    "event_type",
    "article_id",
    "brand_id",
    "category",
)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)


# A checked file's valid events: raw_events plus where each came from, for de-duplication.
CHECKED_SCHEMA = pa.schema(
    [*RAW_EVENTS_SCHEMA, *(QUARANTINE_SCHEMA.field(name) for name in ("source_file", "line_number", "raw_line"))]
)


@dataclass(frozen=True)
class CheckedFile:
    """One landed file after validation: its valid events (with their line) and its rejected lines."""

    events: pa.Table  # CHECKED_SCHEMA
    quarantine: pa.Table  # QUARANTINE_SCHEMA


@dataclass(frozen=True)
class ValidatedDay:
    """The outcome of validating one landed day: kept events, quarantined lines, counts by reason."""

    events: pa.Table
    quarantine: pa.Table
    reasons: dict[str, int]

    @property
    def landed(self) -> int:
        return self.events.num_rows + self.quarantine.num_rows


def check_lines(day: dt.date, source: str, lines: list[bytes]) -> CheckedFile:
    """Validate each line of one file on its own (duplicates across lines are `dedupe`'s business)."""
    # The loop allocates millions of acyclic objects (dicts, tuples, strings); the cyclic garbage
    # collector would scan them again and again for nothing, which halves the throughput.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _check_lines(day, source, lines)
    finally:
        if collecting:
            gc.enable()


def _check_lines(day: dt.date, source: str, lines: list[bytes]) -> CheckedFile:
    start_ms = (dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) - _EPOCH) // _MS
    end_ms = start_ms + 86_400_000
    kept: list[tuple] = []
    kept_lines: list[int] = []
    rejected: list[tuple[int, str, str]] = []
    loads, fromiso = orjson.loads, dt.datetime.fromisoformat
    for number, raw in enumerate(lines, start=1):
        # Fast path: one conjunction of every rule; any failure is explained by explain().
        try:
            obj = loads(raw)
            get = obj.get
            event_id, ts_text, event_type = get("event_id"), get("ts"), get("event_type")
            article_id, price = get("article_id"), get("price")
            record = (
                event_id,
                get("profile_id"),
                get("session_id"),
                (fromiso(ts_text) - _EPOCH) // _MS,
                event_type,
                article_id,
                get("brand_id"),
                get("category"),
                price,
            )
        except Exception:
            record = None
        if (
            record is not None
            and type(event_id) is str
            and type(record[1]) is str
            and type(record[2]) is str
            and start_ms <= record[3] < end_ms
            and type(event_type) is str
            and event_type in ACTION_INDEX
            and (article_id is None or type(article_id) is str)
            and (article_id is not None or event_type not in ARTICLE_EVENT_TYPES)
            and (record[6] is None or type(record[6]) is str)
            and (record[7] is None or type(record[7]) is str)
            and (price is None or (type(price) in (float, int) and 0 <= price < math.inf))
        ):
            kept.append(record)
            kept_lines.append(number)
        else:
            rejected.append((number, *explain(raw, day, start_ms, end_ms)))

    columns = list(zip(*kept, strict=True)) or [()] * len(RAW_EVENTS_SCHEMA)
    origin = [[source] * len(kept_lines), kept_lines, [lines[n - 1] for n in kept_lines]]
    events = pa.Table.from_arrays(
        [pa.array(col, type=f.type) for col, f in zip([*columns, *origin], CHECKED_SCHEMA, strict=True)],
        schema=CHECKED_SCHEMA,
    )
    numbers, reasons, details = zip(*rejected, strict=True) if rejected else ((), (), ())
    quarantine = pa.table(
        {
            "source_file": pa.array([source] * len(numbers), pa.string()),
            "line_number": pa.array(numbers, pa.int64()),
            "reason": pa.array(reasons, pa.string()),
            "detail": pa.array(details, pa.string()),
            "raw_line": pa.array([lines[n - 1] for n in numbers], pa.binary()),
        },
        schema=QUARANTINE_SCHEMA,
    )
    return CheckedFile(events, quarantine)


def dedupe(files: list[CheckedFile]) -> ValidatedDay:
    """Keep the first occurrence of each event id (in file, then line order); quarantine the rest."""
    events = pa.concat_tables([CHECKED_SCHEMA.empty_table(), *(f.events for f in files)])
    ids = pc.dictionary_encode(events["event_id"]).combine_chunks().indices.to_numpy(zero_copy_only=False)
    first = np.zeros(len(ids), dtype=bool)
    first[np.unique(ids, return_index=True)[1]] = True
    duplicates = events.filter(pa.array(~first))
    repeated = pa.table(
        {
            "source_file": duplicates["source_file"],
            "line_number": duplicates["line_number"],
            "reason": pa.repeat("duplicate_event_id", duplicates.num_rows).cast(pa.string()),
            "detail": pc.binary_join_element_wise("event_id ", duplicates["event_id"], " already kept", ""),
            "raw_line": duplicates["raw_line"],
        },
        schema=QUARANTINE_SCHEMA,
    )
    quarantine = pa.concat_tables([*(f.quarantine for f in files), repeated])
    kept = events.filter(pa.array(first)).select(RAW_EVENTS_SCHEMA.names).cast(RAW_EVENTS_SCHEMA)
    counts = pc.value_counts(quarantine["reason"]).to_pylist()
    return ValidatedDay(kept, quarantine, {c["values"]: c["counts"] for c in counts})


def explain(raw: bytes, day: dt.date, start_ms: int, end_ms: int) -> tuple[str, str]:
    """The first rule a line breaks, and where; called only for lines the fast path rejected."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # orjson also rejects invalid UTF-8; tell the two apart for the quarantine reason.
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            return "invalid_utf8", f"byte {bad.start}: {bad.reason}"
        return "invalid_json", str(exc)
    if type(obj) is not dict:
        return "not_an_object", f"a JSON {type(obj).__name__}, expected an object"
    for name in REQUIRED_FIELDS:
        if obj.get(name) is None:
            return "missing_field", f"no {name}"
    for name in _STRING_FIELDS:
        value = obj.get(name)
        if value is not None and type(value) is not str:
            return "wrong_type", f"{name} is a {type(value).__name__}, expected a string"
    price = obj.get("price")
    if price is not None and type(price) not in (int, float):
        return "wrong_type", f"price is a {type(price).__name__}, expected a number"
    event_type = obj["event_type"]
    if event_type not in ACTION_INDEX:
        return "unknown_event_type", f"event_type {event_type[:64]!r}"
    if event_type in ARTICLE_EVENT_TYPES and obj.get("article_id") is None:
        return "missing_field", f"no article_id for a {event_type} event"
    try:
        ts = dt.datetime.fromisoformat(obj["ts"])
    except ValueError:
        return "invalid_timestamp", f"ts {obj['ts'][:64]!r} is not ISO-8601"
    if ts.tzinfo is None:
        return "invalid_timestamp", f"ts {obj['ts'][:64]!r} has no time zone"
    ts_ms = (ts - _EPOCH) // _MS
    if not start_ms <= ts_ms < end_ms:
        return "timestamp_outside_day", f"ts {obj['ts']} is not on {day}"
    if price is not None and not (math.isfinite(price) and price >= 0):
        return "invalid_value", f"price {price} is negative or not finite"
    raise AssertionError(f"validation rules disagree on line {raw[:200]!r}")

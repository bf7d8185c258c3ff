"""Validate landed lines against the event contract, one line at a time: the definition of every rule.

Rules, in the order they are checked (the first that fails is the reason):
`line_too_long` (longer than the landing's max_line_bytes: read cut to its first bytes, see lines),
`invalid_utf8`, `invalid_json`, `not_an_object`, `missing_field` (a required field absent or
null), `wrong_type`, `missing_field` again for an empty event_id or profile_id,
`unknown_event_type`, `missing_field` once more for an article event without article_id,
`invalid_timestamp` (unparseable or without a time zone), `timestamp_outside_day`,
`invalid_value` (a negative or non-finite price), `duplicate_event_id` (an event id already kept:
on an earlier day, or earlier this day, in file then line order; see dedupe).

The vectorised path (fastpath) keeps exactly the lines this module keeps and hands every other
line back to `check_lines`, so the quarantine reasons and details are defined here only.
"""

from __future__ import annotations

import datetime as dt
import gc
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from consumer_assets.events.schema import (
    ACTION_INDEX,
    ARTICLE_EVENT_TYPES,
    NON_EMPTY_FIELDS,
    QUARANTINE_SCHEMA,
    RAW_EVENTS_SCHEMA,
    REQUIRED_FIELDS,
)
from consumer_assets.ingest.listing import SkippedFile

REASONS: tuple[str, ...] = (
    "line_too_long",
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


# Valid events of a file (or a block of it): raw_events plus the line each came from.
CHECKED_SCHEMA = pa.schema([*RAW_EVENTS_SCHEMA, QUARANTINE_SCHEMA.field("line_number")])
_NO_QUARANTINE = QUARANTINE_SCHEMA.empty_table()


@dataclass(frozen=True)
class CheckedFile:
    """Lines of one file after validation: valid events (with their line) and rejected lines, both in line order."""

    events: pa.Table  # CHECKED_SCHEMA
    quarantine: pa.Table  # QUARANTINE_SCHEMA


@dataclass(frozen=True)
class ValidatedDay:
    """The outcome of validating one landed day: kept events, quarantined lines, counts by reason."""

    events: pa.Table
    quarantined: int  # lines
    reasons: dict[str, int]
    # The quarantined lines, where they were kept in memory; empty where they were written in
    # batches as they came (see quarantine.QuarantineBatches).
    quarantine: pa.Table
    files: tuple[str, ...] = ()  # the files read, relative to the day folder
    skipped: tuple[SkippedFile, ...] = ()  # every other file of the day folder but its marker, and why

    @property
    def landed(self) -> int:
        return self.events.num_rows + self.quarantined


def day_bounds_ms(day: dt.date) -> tuple[int, int]:
    """The day as [start, end) in ms since the epoch, UTC."""
    start_ms = (dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) - _EPOCH) // _MS
    return start_ms, start_ms + 86_400_000


def check_lines(
    day: dt.date,
    source: str,
    lines: Sequence[bytes],
    numbers: Sequence[int] | None = None,
    too_long: Mapping[int, int] | None = None,
) -> CheckedFile:
    """Validate each line of `source` on its own (duplicates across lines are `dedupe`'s business).

    `numbers` are the lines' numbers in the file (1-based, ascending); default 1, 2, ...
    `too_long` maps the numbers of lines read cut to their first bytes to their full length.
    """
    # The loop allocates many acyclic objects (dicts, tuples, strings); the cyclic garbage
    # collector would scan them again and again for nothing, which halves the throughput.
    collecting = gc.isenabled()
    gc.disable()
    try:
        numbers = range(1, len(lines) + 1) if numbers is None else numbers
        return _check_lines(day_bounds_ms(day), f"on {day}", lines, numbers, too_long or {}).as_tables(source)
    finally:
        if collecting:
            gc.enable()


def check_between(objects: Sequence[Any], start_ms: int, end_ms: int, where: Callable[[], str]) -> CheckedLines:
    """`check_lines` for lines parsed already (the scoring service's posted events: each a line's
    JSON value) that may lie anywhere in [start_ms, end_ms) instead of on one day, as Python values;
    `where()` words that span (asked only when a line is rejected: the service formats no instants
    for valid requests) in a `timestamp_outside_day` detail. A rejected line's raw text is its value
    as JSON again."""
    return _check_lines((start_ms, end_ms), where, objects, range(1, len(objects) + 1), {}, _as_parsed)


def _as_parsed(value: Any) -> Any:
    return value


def events_table(records: Sequence[tuple], numbers: Sequence[int] | None = None) -> pa.Table:
    """Kept records (RAW_EVENTS_SCHEMA's fields in order) as raw_events rows; with their line
    `numbers`, as CHECKED_SCHEMA rows."""
    schema = RAW_EVENTS_SCHEMA if numbers is None else CHECKED_SCHEMA
    columns = list(zip(*records, strict=True)) or [()] * len(RAW_EVENTS_SCHEMA)
    if numbers is not None:
        columns.append(numbers)
    return pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)], schema=schema)


@dataclass(frozen=True)
class CheckedLines:
    """Lines after validation as Python values, in line order: the kept records (RAW_EVENTS_SCHEMA's
    fields in order) with their line numbers, and the rejected lines as (number, reason, detail, raw)."""

    records: list[tuple]
    numbers: list[int]
    rejected: list[tuple[int, str, str, bytes]]

    def as_tables(self, source: str) -> CheckedFile:
        """The events and quarantine tables of lines read from `source`."""
        events = events_table(self.records, self.numbers)
        if not self.rejected:
            return CheckedFile(events, _NO_QUARANTINE)
        rejected_lines, reasons, details, raws = zip(*self.rejected, strict=True)
        quarantine = pa.table(
            {
                "source_file": pa.array([source] * len(rejected_lines), pa.string()),
                "line_number": pa.array(rejected_lines, pa.int64()),
                "reason": pa.array(reasons, pa.string()),
                "detail": pa.array(details, pa.string()),
                "raw_line": pa.array(raws, pa.binary()),
            },
            schema=QUARANTINE_SCHEMA,
        )
        return CheckedFile(events, quarantine)


def _check_lines(
    bounds: tuple[int, int],
    where: str | Callable[[], str],
    lines: Sequence[Any],
    numbers: Sequence[int],
    too_long: Mapping[int, int],
    loads: Callable[[Any], Any] = orjson.loads,
) -> CheckedLines:
    """The lines checked; `loads` parses one (a line given parsed already: the identity)."""
    start_ms, end_ms = bounds
    kept: list[tuple] = []
    kept_lines: list[int] = []
    rejected: list[tuple[int, str, str, bytes]] = []
    fromiso = dt.datetime.fromisoformat
    for number, raw in zip(numbers, lines, strict=True):
        if too_long and number in too_long:
            detail = f"{too_long[number]} bytes, over max_line_bytes; raw_line holds its first {len(raw)}"
            rejected.append((number, "line_too_long", detail, raw))
            continue
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
                # orjson gives ints up to 2**64 as int: the float they round to, as a JSON reader gives.
                price if price is None else float(price),
            )
        except Exception:
            record = None
        if (
            record is not None
            and type(event_id) is str
            and type(record[1]) is str
            and event_id
            and record[1]
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
            span = where if isinstance(where, str) else where()
            raw = raw if isinstance(raw, bytes) else orjson.dumps(raw)
            rejected.append((number, *explain(raw, span, start_ms, end_ms), raw))

    return CheckedLines(kept, kept_lines, rejected)


def explain(raw: bytes, where: str, start_ms: int, end_ms: int) -> tuple[str, str]:
    """The first rule a line breaks, and where; called only for lines the fast path rejected.
    `where` words the span [start_ms, end_ms) the timestamps must lie in ("on 2026-10-30")."""
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
    for name in NON_EMPTY_FIELDS:
        if not obj[name]:
            return "missing_field", f"{name} is empty"
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
        return "timestamp_outside_day", f"ts {obj['ts']} is not {where}"
    if price is not None and not (math.isfinite(price) and price >= 0):
        return "invalid_value", f"price {price} is negative or not finite"
    raise AssertionError(f"validation rules disagree on line {raw[:200]!r}")

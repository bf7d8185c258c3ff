"""Validate a block of landed lines vectorised: Arrow's JSON reader and numpy instead of a loop per line.

The result is exactly `validate.check_lines`' on the same lines. That holds by construction:
this path keeps only lines it can prove valid under the per-line rules, with the values the
per-line rules would give, and hands every other line to `check_lines`, which keeps or
quarantines it (and is the one definition of the reasons). Where Arrow's reader is laxer than
the per-line JSON parser (orjson), the line is handed over before Arrow sees it:
- lines that do not start with `{` and end with `}`: not an object, or never one Arrow can map
  back to its line (Arrow skips blank lines, reads `{..} {..}` as two rows);
- invalid UTF-8 (Arrow does not check fields it ignores);
- `NaN` or `Inf` anywhere (Arrow reads them as numbers, JSON has no such literals);
- nesting deeper than orjson's limit (1024), which Arrow does not have;
- lines over the line limit, read cut to their first bytes (`line_too_long`): no parser ever sees
  a line longer than the limit, so Arrow's and orjson's memory is bounded by the block.
Arrow is stricter than the per-line rules on types: a number where a string is expected fails the
whole parse (never converts silently), so a failed parse splits the block until the failing
line is found; that line goes to `check_lines`, the rest is parsed again.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from consumer_assets.events.schema import (
    ACTION_TYPES,
    ARTICLE_EVENT_TYPES,
    NON_EMPTY_FIELDS,
    QUARANTINE_SCHEMA,
    RAW_EVENTS_SCHEMA,
    REQUIRED_FIELDS,
)
from consumer_assets.ingest.lines import LineBlock
from consumer_assets.ingest.timestamps import iso_ms
from consumer_assets.ingest.validate import CHECKED_SCHEMA, CheckedFile, check_lines, day_bounds_ms

# The landing fields as Arrow reads them: ts stays a string, parsed by iso_ms.
PARSE_SCHEMA = pa.schema([pa.field(f.name, pa.string() if f.name == "ts" else f.type) for f in RAW_EVENTS_SCHEMA])
_PARSE = pj.ParseOptions(explicit_schema=PARSE_SCHEMA, unexpected_field_behavior="ignore")
_FAILED_ROW = re.compile(r" in row (\d+)")
_ACTIONS = pa.array(ACTION_TYPES)
_ARTICLE_ACTIONS = pa.array(sorted(ARTICLE_EVENT_TYPES))
# After a parse fails at row r, the rest is parsed in pieces that double from about r lines:
# failures cost little where they are sparse, nothing where there are none. Where they are dense
# (a failed parse per _DENSE_GAP lines or more), the remaining lines go line by line, which is
# cheaper than the parses it would take to find each failure.
_FIRST_PIECE = 64
_PER_LINE_BELOW = 8
_DENSE_FAILURES = 4
_DENSE_GAP = 400
_DEPTH_SAFE_LENGTH = 2048  # a line this short cannot nest 1024 deep
_MAX_BRACKETS = 512


@dataclass
class ParseStats:
    """Failed parses per line tried, over the blocks of one file: dense failures send a file line by line."""

    lines: int = 0
    failures: int = 0

    @property
    def dense(self) -> bool:
        return self.failures >= _DENSE_FAILURES and self.failures * _DENSE_GAP > self.lines


def check_block(day: dt.date, source: str, block: LineBlock, stats: ParseStats | None = None) -> CheckedFile:
    """Validate the block's lines; the same outcome as `check_lines(day, source, block.lines(), ...)`.

    `stats` carries the parse failures of the file's earlier blocks (see ParseStats).
    """
    data, ends = block.data, block.ends
    starts = np.r_[0, ends[:-1] + 1]
    handed = ~_parseable(data, starts, ends)
    if block.too_long:
        handed[list(block.too_long)] = True
    good = np.flatnonzero(~handed)
    parsed, rows_of, failed = _parse_lines(
        _blanked(data, starts, ends, handed), starts, ends, good, stats or ParseStats()
    )
    handed[failed] = True
    table = pa.concat_tables([PARSE_SCHEMA.empty_table(), *parsed])
    lines = np.concatenate([np.zeros(0, np.int64), *rows_of])
    ts_ms, passed = _passes(table, *day_bounds_ms(day))
    handed[lines[~passed]] = True
    if not passed.all():
        table, ts_ms, lines = table.filter(passed), ts_ms[passed], lines[passed]
    kept = _events(table, ts_ms, lines + block.first_line)
    if not handed.any():
        return CheckedFile(kept, QUARANTINE_SCHEMA.empty_table())
    at = np.flatnonzero(handed)
    raw = [data[s:e] for s, e in zip(starts[at].tolist(), ends[at].tolist(), strict=True)]
    slow = check_lines(day, source, raw, (at + block.first_line).tolist(), block.too_long_lines())
    events = pa.concat_tables([kept, slow.events])
    order = np.argsort(np.asarray(events["line_number"]), kind="stable")
    return CheckedFile(events.take(order), slow.quarantine)


def _parseable(data: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Lines that Arrow reads exactly as orjson would, if it reads them at all."""
    chars = np.frombuffer(data, np.uint8)
    lengths = ends - starts
    last = chars[np.maximum(ends - 1, 0)]
    closed = (last == ord("}")) | ((last == ord("\r")) & (chars[np.maximum(ends - 2, 0)] == ord("}")))
    ok = (lengths >= 2) & (chars[np.minimum(starts, len(chars) - 1)] == ord("{")) & closed
    if not _valid_utf8(data):
        # Only lines with a non-ASCII byte can be the invalid ones.
        ok[np.unique(np.searchsorted(ends, np.flatnonzero(chars >= 0x80)))] = False
    for literal in (b"NaN", b"Inf"):
        if data.find(literal[:1]) >= 0 and data.find(literal) >= 0:
            found = np.array([m.start() for m in re.finditer(re.escape(literal), data)], np.int64)
            ok[np.searchsorted(ends, found)] = False
    for line in np.flatnonzero(lengths >= _DEPTH_SAFE_LENGTH).tolist():
        text = data[starts[line] : ends[line]]
        if text.count(b"[") + text.count(b"{") >= _MAX_BRACKETS:
            ok[line] = False
    return ok


def _valid_utf8(data: bytes) -> bool:
    offsets = pa.array([0, len(data)], pa.int64()).buffers()[1]
    whole = pa.Array.from_buffers(pa.large_binary(), 1, [None, offsets, pa.py_buffer(data)])
    try:
        whole.cast(pa.large_string())  # Arrow's (SIMD) UTF-8 check of the whole block at once
    except pa.ArrowInvalid:
        return False
    return True


def _blanked(data: bytes, starts: np.ndarray, ends: np.ndarray, handed: np.ndarray) -> pa.Buffer:
    """The block with the lines Arrow must not see turned into spaces (Arrow skips blank lines)."""
    if not handed.any():
        return pa.py_buffer(data)
    chars = np.frombuffer(data, np.uint8).copy()
    for s, e in zip(starts[handed].tolist(), ends[handed].tolist(), strict=True):
        chars[s:e] = ord(" ")
    return pa.py_buffer(chars)


def _parse_lines(
    buffer: pa.Buffer, starts: np.ndarray, ends: np.ndarray, good: np.ndarray, stats: ParseStats
) -> tuple[list[pa.Table], list[np.ndarray], list[int]]:
    """Arrow tables of the good lines (each with the lines of its rows), and the lines left to `check_lines`."""
    tables: list[pa.Table] = []
    rows_of: list[np.ndarray] = []
    failed: list[int] = []
    todo = [(0, len(good))]  # ranges of `good`; any order, rows carry their line
    while todo:
        a, b = todo.pop()
        if b - a < _PER_LINE_BELOW:
            failed += good[a:b].tolist()
            continue
        if stats.dense:
            failed += np.concatenate([good[x:y] for x, y in [(a, b), *todo]]).tolist()
            break
        lo, hi = int(starts[good[a]]), int(ends[good[b - 1]]) + 1
        try:
            reader = pj.open_json(
                pa.BufferReader(buffer.slice(lo, hi - lo)),
                read_options=pj.ReadOptions(use_threads=False, block_size=hi - lo + 1),
                parse_options=_PARSE,
            )
            table = reader.read_all()
        except ValueError as exc:  # ArrowInvalid, or a UnicodeDecodeError of its message
            found = _FAILED_ROW.search(str(exc)) if isinstance(exc, pa.ArrowInvalid) else None
            row = int(found.group(1)) if found else -1
        else:
            if table.num_rows == b - a:  # one row per line: rows map to lines exactly
                tables.append(table)
                rows_of.append(good[a:b])
                stats.lines += b - a
                continue
            row = -1
        stats.failures += 1
        if 0 <= row < b - a:
            failed.append(int(good[a + row]))
            stats.lines += 1
            todo.append((a, a + row))
            todo += reversed(_growing(a + row + 1, b, max(_FIRST_PIECE, row)))
        elif b - a > _FIRST_PIECE:  # no usable row number: find the failure in pieces that grow from a
            todo += reversed(_growing(a, b, _FIRST_PIECE))
        else:
            mid = (a + b) // 2
            todo += [(mid, b), (a, mid)]
    return tables, rows_of, failed


def _growing(a: int, b: int, size: int) -> list[tuple[int, int]]:
    """[a, b) in pieces that double from `size`."""
    pieces = []
    while a < b:
        pieces.append((a, min(b, a + size)))
        a, size = a + size, size * 2
    return pieces


def _passes(table: pa.Table, start_ms: int, end_ms: int) -> tuple[np.ndarray, np.ndarray]:
    """Epoch ms of ts, and which rows pass every rule as parsed (the rest go line by line)."""
    ts_ms, ok = iso_ms(table["ts"])
    ok &= (ts_ms >= start_ms) & (ts_ms < end_ms)
    for name in REQUIRED_FIELDS:
        if table[name].null_count:
            ok &= np.asarray(table[name].is_valid())
    for name in NON_EMPTY_FIELDS:
        ok &= np.asarray(pc.binary_length(table[name]).fill_null(0)) > 0
    event_type = table["event_type"]
    ok &= np.asarray(pc.is_in(event_type, value_set=_ACTIONS).fill_null(False))
    if table["article_id"].null_count:
        article = np.asarray(pc.is_in(event_type, value_set=_ARTICLE_ACTIONS).fill_null(False))
        ok &= ~article | np.asarray(table["article_id"].is_valid())
    price = np.asarray(table["price"].fill_null(1.0))
    # A NaN fails both comparisons; -0.0 may have been `-0` (an int, kept as 0.0) or `-0.0`.
    ok &= (price >= 0) & (price < np.inf) & ~((price == 0) & np.signbit(price))
    return ts_ms, ok


def _events(table: pa.Table, ts_ms: np.ndarray, line_numbers: np.ndarray) -> pa.Table:
    columns = [
        pa.array(ts_ms, CHECKED_SCHEMA.field("ts").type) if name == "ts" else table[name]
        for name in RAW_EVENTS_SCHEMA.names
    ]
    return pa.Table.from_arrays([*columns, pa.array(line_numbers, pa.int64())], schema=CHECKED_SCHEMA)

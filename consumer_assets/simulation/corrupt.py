"""Realistic bad records in the landing zone, each failing validation for exactly one reason.

A share `rate` of the landed lines is bad. Eight kinds replace a clean line by a broken version of
it (that event is lost); `duplicate` adds an exact copy of a clean line a little later in the day
(a tracker retry), so it adds a line. With E clean events and C corrupted lines of which d are
duplicates, records = E + d and a consumer that keeps valid first-seen events keeps E - (C - d) =
records - C. Each broken line fails exactly one check of this order, and passes all checks before
it: UTF-8 -> JSON -> required fields -> field types -> known event type -> parseable ts -> ts in
the day -> first time this event_id was seen. Article fields stay consistent with the event type.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from consumer_assets.events.schema import REQUIRED_FIELDS

CORRUPTION_KINDS: tuple[str, ...] = (
    "truncated",
    "invalid_json",
    "missing_field",
    "wrong_type",
    "unknown_event_type",
    "timestamp_outside_day",
    "invalid_timestamp",
    "duplicate",
    "invalid_utf8",
)
_DUPLICATE = CORRUPTION_KINDS.index("duplicate")
# Event types a buggy or newer tracker might send.
UNKNOWN_EVENT_TYPES = ("page_ping", "add_to_bag", "app_open", "checkout_complete", "scroll_depth")
_BAD_UTF8 = (b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\x80")


@dataclass
class LandedLines:
    lines: pa.LargeBinaryArray  # every landed line, in file order, each ending in a newline
    corruptions: dict[str, int]  # kind -> number of lines of that kind


def _dumps(record: dict[str, object]) -> bytes:
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()


def _truncated(line: str, v: int, u: float) -> bytes:
    body = line[:-1]
    # Cut before the closing brace: an object that never closes is never valid JSON.
    return (body[: 1 + int(u * (len(body) - 2))] + "\n").encode()


def _invalid_json(line: str, v: int, u: float) -> bytes:
    body = line[:-1]
    if v % 4 == 0:
        body = body.replace('"event_id":"', '"event_id":', 1)
    elif v % 4 == 1:
        body += ("}", ",", " x", "]")[v // 4 % 4]
    elif v % 4 == 2:
        at = body.index('"session_id":"') + 18
        body = body[:at] + '"' + body[at:]
    else:
        body = body.replace('"ts":', "'ts':", 1)
    return (body + "\n").encode()


def _missing_field(line: str, v: int, u: float) -> bytes:
    record = json.loads(line)
    del record[REQUIRED_FIELDS[v % len(REQUIRED_FIELDS)]]
    return _dumps(record)


def _wrong_type(line: str, v: int, u: float) -> bytes:
    record = json.loads(line)
    if v % 3 == 0 and record["price"] is not None:
        record["price"] = f"{record['price']:.2f}".replace(".", ",")  # "12,99": a locale-formatted price
    elif v % 3 == 2:
        record["session_id"] = int(record["session_id"], 16)
    else:
        record["profile_id"] = int(record["profile_id"], 16)
    return _dumps(record)


def _unknown_event_type(line: str, v: int, u: float) -> bytes:
    record = json.loads(line)
    record["event_type"] = UNKNOWN_EVENT_TYPES[v % len(UNKNOWN_EVENT_TYPES)]
    return _dumps(record)


def _timestamp_outside_day(line: str, v: int, u: float) -> bytes:
    record = json.loads(line)
    ts = dt.datetime.fromisoformat(str(record["ts"]).replace("Z", "+00:00"))
    shifted = ts + dt.timedelta(days=(1 + v % 3) * (1 if v // 3 % 2 else -1))
    record["ts"] = f"{shifted:%Y-%m-%dT%H:%M:%S}.{shifted.microsecond // 1000:03d}Z"
    return _dumps(record)


def _invalid_timestamp(line: str, v: int, u: float) -> bytes:
    record = json.loads(line)
    ts = str(record["ts"])
    record["ts"] = (
        f"{ts[:11]}{25 + v // 5 % 5}{ts[13:]}",  # hour 25-29
        f"{ts[:5]}13{ts[7:]}",  # month 13
        f"{ts[:8]}32{ts[10:]}",  # day 32
        "Invalid Date",  # what JavaScript's Date prints for garbage
        "undefined",
    )[v % 5]
    return _dumps(record)


def _invalid_utf8(line: str, v: int, u: float) -> bytes:
    raw = line.encode()
    at = raw.index(b'"session_id":"') + 18
    return raw[:at] + _BAD_UTF8[v % len(_BAD_UTF8)] + raw[at:]


_BREAKERS: dict[str, Callable[[str, int, float], bytes]] = {
    "truncated": _truncated,
    "invalid_json": _invalid_json,
    "missing_field": _missing_field,
    "wrong_type": _wrong_type,
    "unknown_event_type": _unknown_event_type,
    "timestamp_outside_day": _timestamp_outside_day,
    "invalid_timestamp": _invalid_timestamp,
    "invalid_utf8": _invalid_utf8,
}


def corrupt_lines(clean: pa.LargeStringArray, rate: float, rng: np.random.Generator) -> LandedLines:
    """The landed lines of a day whose clean lines are `clean`, with a share `rate` of bad lines."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"corruption rate must be in [0, 1), got {rate}")
    lines = clean.cast(pa.large_binary())
    n_clean, k = len(clean), len(CORRUPTION_KINDS)
    # Duplicates add lines, so aim at rate * records with records = n_clean + duplicates.
    total = min(round(rate * n_clean / (1.0 - rate / k)), n_clean)
    per_kind = np.full(k, total // k)
    per_kind[rng.permutation(k)[: total % k]] += 1
    counts = dict(zip(CORRUPTION_KINDS, per_kind.tolist(), strict=True))
    if total == 0:
        return LandedLines(lines, counts)
    n_dup = int(per_kind[_DUPLICATE])
    chosen = rng.permutation(n_clean)[:total]
    replaced, dup_source = np.sort(chosen[: total - n_dup]), chosen[total - n_dup :]
    kinds = np.delete(np.arange(k), _DUPLICATE)
    kind_of = rng.permutation(np.repeat(kinds, np.delete(per_kind, _DUPLICATE)))
    variant, share = rng.integers(0, 1 << 30, len(replaced)), rng.random(len(replaced))
    texts = clean.take(pa.array(replaced)).to_pylist()
    broken = [
        _BREAKERS[CORRUPTION_KINDS[kd]](text, v, u)
        for text, kd, v, u in zip(texts, kind_of.tolist(), variant.tolist(), share.tolist(), strict=True)
    ]
    # A retry lands shortly after the original: the first copy seen is always the clean original.
    dup_at = np.minimum(dup_source + rng.integers(1, 200, n_dup), n_clean - 1)
    keys = np.concatenate([2 * np.arange(n_clean), 2 * dup_at + 1])
    order = np.argsort(keys, kind="stable")
    source = np.concatenate([np.arange(n_clean), dup_source])[order]
    position = np.empty(len(order), np.int64)
    position[order] = np.arange(len(order))
    mask = np.zeros(len(order), bool)
    mask[position[replaced]] = True
    landed = pc.replace_with_mask(lines.take(pa.array(source)), mask, pa.array(broken, pa.large_binary()))
    return LandedLines(landed, counts)

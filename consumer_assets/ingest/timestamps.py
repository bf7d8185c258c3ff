"""Vectorised parsing of the usual ISO-8601 timestamps, with numpy over the string buffer.

Only the canonical forms are recognised: `YYYY-MM-DDTHH:MM:SS`, optionally `.fff` or `.ffffff`,
then `Z` or `+HH:MM`/`-HH:MM`. For those, the result is exactly what Python's
`datetime.fromisoformat` gives (floored to milliseconds), including its range checks (month,
day of month with leap years, hour, minute, second, offset under 24 hours). A string in any other
form is reported as not recognised, not as invalid: the caller hands it to the per-line rules,
which accept the rest of ISO-8601 that Python does.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

# Each recognised form by its length: (fraction digits, zone is "Z").
_FORMS = {20: (0, True), 24: (3, True), 27: (6, True), 25: (0, False), 29: (3, False), 32: (6, False)}
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)


def _template(fraction: int, zulu: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per character of a form, the lowest byte allowed and the width of the range above it."""
    lo = "0000-00-00T00:00:00" + ("." + "0" * fraction if fraction else "") + ("Z" if zulu else "+00:00")
    hi = "9999-99-99T99:99:99" + ("." + "9" * fraction if fraction else "") + ("Z" if zulu else "-99:99")
    low = np.frombuffer(lo.encode(), np.uint8)
    return low, np.frombuffer(hi.encode(), np.uint8) - low


_TEMPLATES = {length: _template(*form) for length, form in _FORMS.items()}


def _number(chars: np.ndarray, first: int, digits: int) -> np.ndarray:
    value = chars[:, first].astype(np.int32) - 0x30
    for k in range(first + 1, first + digits):
        value = value * 10 + (chars[:, k].astype(np.int32) - 0x30)
    return value


def _all_false(flags: np.ndarray) -> np.ndarray:
    """Per row of a boolean matrix, whether no flag is set (eight flags at a time where the width allows)."""
    if flags.shape[1] % 8:
        return ~flags.any(axis=1)
    words = np.ascontiguousarray(flags).view(np.uint64)
    any_set = words[:, 0].copy()
    for k in range(1, words.shape[1]):
        any_set |= words[:, k]
    return any_set == 0


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm), year >= 1."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _dates(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Days since 1970-01-01 of the dates, and whether each is a real date."""
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    ok = (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    return _days_from_civil(year.astype(np.int64), month.astype(np.int64), day.astype(np.int64)), ok


def _parse(chars: np.ndarray, fraction: int, zulu: bool) -> tuple[np.ndarray, np.ndarray]:
    """Epoch ms and validity of rows of equal-length strings as a (rows, length) uint8 matrix."""
    low, width = _TEMPLATES[chars.shape[1]]
    ok = _all_false((chars - low) > width)  # every character in its range (bytes below wrap around)
    year, month, day = _number(chars, 0, 4), _number(chars, 5, 2), _number(chars, 8, 2)
    # Most rows share one date (the day being ingested): work out dates once, and for the others.
    date = (year * 100 + month) * 100 + day
    common = date == date[0]
    other = np.flatnonzero(~common)
    days_0, valid_0 = _dates(year[:1], month[:1], day[:1])
    days = np.full(len(date), days_0[0], np.int64)
    if not valid_0[0]:
        ok &= ~common
    if len(other):
        days[other], valid = _dates(year[other], month[other], day[other])
        ok[other] &= valid
    hour, minute, second = _number(chars, 11, 2), _number(chars, 14, 2), _number(chars, 17, 2)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    in_day = ((hour * 60 + minute) * 60 + second) * 1000  # below 2**31: int32 suffices
    if fraction:
        in_day += _number(chars, 20, 3)  # Python keeps microseconds; the floor to ms drops the rest
    if not zulu:
        zone = 20 + fraction if fraction else 19
        sign = chars[:, zone]
        hours, minutes = _number(chars, zone + 1, 2), _number(chars, zone + 4, 2)
        ok &= (sign != ord(",")) & (hours <= 23) & (minutes <= 59)  # the range + to - takes in a comma
        in_day -= np.where(sign == ord("-"), -1, 1) * (hours * 60 + minutes) * 60_000
    return days * 86_400_000 + in_day, ok


def iso_ms(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Milliseconds since the epoch (int64) and a mask of the strings recognised (and valid) as above."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], pa.string())
    n = len(values)
    ms = np.zeros(n, np.int64)
    recognised = np.zeros(n, bool)
    if n == values.null_count:
        return ms, recognised
    offset_type = np.int64 if pa.types.is_large_string(values.type) else np.int32
    offsets = np.frombuffer(values.buffers()[1], offset_type)[values.offset : values.offset + n + 1].astype(np.int64)
    data = np.frombuffer(values.buffers()[2], np.uint8)
    lengths = np.diff(offsets)
    for length, (fraction, zulu) in _FORMS.items():
        if length == lengths[0] and (lengths == length).all():
            # The usual case, one form throughout: the strings are a matrix over the buffer, no copy.
            rows = slice(None)
            chars = data[offsets[0] : offsets[-1]].reshape(n, length)
        else:
            rows = np.flatnonzero(lengths == length)
            if not len(rows):
                continue
            chars = data[offsets[rows, None] + np.arange(length)]
        ms[rows], recognised[rows] = _parse(chars, fraction, zulu)
    if values.null_count:
        recognised &= np.asarray(values.is_valid())
    return ms, recognised

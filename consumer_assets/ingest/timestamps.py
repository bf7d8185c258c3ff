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
_DATE_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
_SEPARATORS = [4, 7, 10, 13, 16]
_SEPARATOR_BYTES = np.frombuffer(b"--T::", np.uint8)
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)


def _digits(columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Digit values of uint8 characters (int64), and whether every one in a row is a digit."""
    values = columns - np.uint8(0x30)  # wraps around below '0', so one comparison checks both ends
    return values.astype(np.int64), (values <= 9).all(axis=1)


def _number(values: np.ndarray) -> np.ndarray:
    result = values[:, 0]
    for k in range(1, values.shape[1]):
        result = result * 10 + values[:, k]
    return result


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm), year >= 1."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _parse(chars: np.ndarray, fraction: int, zulu: bool) -> tuple[np.ndarray, np.ndarray]:
    """Epoch ms and validity of rows of equal-length strings as a (rows, length) uint8 matrix."""
    digits, ok = _digits(chars[:, _DATE_DIGITS])
    ok &= (chars[:, _SEPARATORS] == _SEPARATOR_BYTES).all(axis=1)
    year, month, day = _number(digits[:, 0:4]), _number(digits[:, 4:6]), _number(digits[:, 6:8])
    hour, minute, second = _number(digits[:, 8:10]), _number(digits[:, 10:12]), _number(digits[:, 12:14])
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    ok &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    ok &= (hour <= 23) & (minute <= 59) & (second <= 59)
    ms = (((_days_from_civil(year, month, day) * 24 + hour) * 60 + minute) * 60 + second) * 1000
    zone = 19
    if fraction:
        ok &= chars[:, 19] == ord(".")
        frac, frac_ok = _digits(chars[:, 20 : 20 + fraction])
        ok &= frac_ok
        ms += _number(frac[:, :3])  # Python keeps microseconds; the floor to ms drops the rest
        zone = 20 + fraction
    if zulu:
        ok &= chars[:, zone] == ord("Z")
        return ms, ok
    sign = chars[:, zone]
    offset, offset_ok = _digits(chars[:, [zone + 1, zone + 2, zone + 4, zone + 5]])
    hours, minutes = _number(offset[:, 0:2]), _number(offset[:, 2:4])
    ok &= ((sign == ord("+")) | (sign == ord("-"))) & (chars[:, zone + 3] == ord(":")) & offset_ok
    ok &= (hours <= 23) & (minutes <= 59)
    return ms - np.where(sign == ord("-"), -1, 1) * (hours * 60 + minutes) * 60_000, ok


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

"""From event arrays to the contract: anonymous hex ids, ISO timestamps, JSON Lines and Arrow tables.

Lines are assembled by Arrow string kernels from precomputed fragments (one JSON fragment per
event type and per article), so no record ever goes through json.dumps. Fixed-width fields
(ids, timestamps) are written as bytes by numpy and wrapped as Arrow arrays without copying.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from consumer_assets.events.schema import ACTION_TYPES, RAW_EVENTS_SCHEMA
from consumer_assets.simulation.catalog import Catalog
from consumer_assets.simulation.events import DayEvents

_HEX = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), np.uint16)
_EPOCH = dt.date(1970, 1, 1)
_TYPE_FRAGMENTS = pa.array([f'","event_type":"{name}",' for name in ACTION_TYPES], pa.large_string())
_TYPE_NAMES = pa.array(ACTION_TYPES, pa.string())


def mix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer: a bijection of uint64, so distinct inputs give distinct ids."""
    z = x.astype(np.uint64)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def make_ids(day: int, index: np.ndarray, key: int) -> np.ndarray:
    """Ids unique per (day, index) for a given key: the high word is the day, the low word the index."""
    packed = (np.uint64(day) << np.uint64(32)) | index.astype(np.uint64)
    return mix64(packed ^ np.uint64(key))


def hex16(values: np.ndarray, large: bool = True) -> pa.Array:
    """uint64 values as 16 lowercase hex characters."""
    n = len(values)
    data = _HEX[values.astype(">u8").view(np.uint8).reshape(n, 8)].tobytes()
    offsets = np.arange(0, 16 * (n + 1), 16, dtype=np.int64 if large else np.int32)
    kind = pa.large_string() if large else pa.string()
    return pa.Array.from_buffers(kind, n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def iso_timestamps(date: dt.date, ms: np.ndarray) -> pa.LargeStringArray:
    """Milliseconds since midnight of `date` as "YYYY-MM-DDTHH:MM:SS.mmmZ"."""
    n = len(ms)
    out = np.empty((n, 24), np.uint8)
    out[:] = np.frombuffer(f"{date.isoformat()}T00:00:00.000Z".encode(), np.uint8)
    ms = ms.astype(np.int64)
    for col, value, width in (
        (11, ms // 3_600_000, 2),
        (14, ms // 60_000 % 60, 2),
        (17, ms // 1000 % 60, 2),
        (20, ms % 1000, 3),
    ):
        for d in range(width):
            out[:, col + d] = 48 + value // 10 ** (width - 1 - d) % 10
    offsets = np.arange(0, 24 * (n + 1), 24, dtype=np.int64)
    return pa.Array.from_buffers(pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(out)])


class DayRenderer:
    """One simulated day's events, ready to render; ids depend only on (seed keys, day, position)."""

    def __init__(
        self,
        events: DayEvents,
        day: int,
        date: dt.date,
        keys: tuple[int, int],
        profile_ids: pa.LargeStringArray,
        catalog: Catalog,
    ) -> None:
        # Later days only append articles, so the live catalog still describes this day's ones.
        self.events, self.date, self.profile_ids, self.catalog = events, date, profile_ids, catalog
        self.event_ids = make_ids(day, np.arange(len(events)), keys[0])
        self.session_ids = make_ids(day, events.session, keys[1])

    def __len__(self) -> int:
        return len(self.events)

    def json_lines(self) -> pa.LargeStringArray:
        """One JSON object per event with exactly the landing fields, each line ending in a newline."""
        ev, fragments = self.events, self.catalog.fragments()
        article_frag = pc.take(fragments, np.where(ev.article < 0, len(fragments) - 1, ev.article))

        def s(text: str) -> pa.Scalar:
            return pa.scalar(text, pa.large_string())

        return pc.binary_join_element_wise(
            s('{"event_id":"'),
            hex16(self.event_ids),
            s('","profile_id":"'),
            pc.take(self.profile_ids, ev.profile),
            s('","session_id":"'),
            hex16(self.session_ids),
            s('","ts":"'),
            iso_timestamps(self.date, ev.ms),
            pc.take(_TYPE_FRAGMENTS, ev.event_type),
            article_frag,
            s("}\n"),
            s(""),
        )

    def table(self) -> pa.Table:
        """The same events as a RAW_EVENTS_SCHEMA table."""
        ev = self.events
        midnight_ms = (self.date - _EPOCH).days * 86_400_000
        ts = pa.array(midnight_ms + ev.ms, pa.int64()).cast(RAW_EVENTS_SCHEMA.field("ts").type)
        article = pa.array(ev.article, mask=ev.article < 0)
        article_id, brand_id, category, price = (pc.take(col, article) for col in self.catalog.columns())
        columns = [
            hex16(self.event_ids, large=False),
            pc.take(self.profile_ids, ev.profile).cast(pa.string()),
            hex16(self.session_ids, large=False),
            ts,
            pc.take(_TYPE_NAMES, ev.event_type),
            article_id,
            brand_id,
            category,
            price,
        ]
        return pa.Table.from_arrays(columns, schema=RAW_EVENTS_SCHEMA)

"""A day's histories state held in memory, and a profile's row found in it without scanning.

The state is read once, a profile bucket at a time (histories.tasks.read_state, which checks each
file's horizon and bucket), and kept as that bucket's `State`: flat numpy arrays, the profiles sorted
by id. A profile's bucket is crc32(id) % buckets, as raw_events and the state are laid out; in its
bucket the row is found by binary search over the ids as one fixed-width byte array (a few bytes per
profile, no Python object per profile), so a lookup costs O(log n) comparisons and the memory is the
state's own arrays.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from consumer_assets.events.bucketing import profile_bucket
from consumer_assets.histories.schema import state_horizon
from consumer_assets.histories.state import State
from consumer_assets.histories.tasks import read_state
from consumer_assets.storage.tables import PROFILE_BUCKET, TableStore

STATE_TABLE = "consumer_histories_state"


def fixed_width(ids: pa.Array) -> np.ndarray:
    """UTF-8 strings as a numpy bytes array (dtype S<longest>), built from Arrow's buffers in one pass.

    Its order is the bytes' order, which is Arrow's sort order of the strings (ids hold no NUL)."""
    ids = ids.cast(pa.large_string()) if len(ids) else ids
    if not len(ids):
        return np.zeros(0, "S1")
    offsets = np.frombuffer(ids.buffers()[1], np.int64, len(ids) + 1, ids.offset * 8)
    data = np.frombuffer(ids.buffers()[2], np.uint8)
    lengths = np.diff(offsets)
    width = max(int(lengths.max()), 1)
    matrix = np.zeros((len(ids), width), np.uint8)
    rows = np.repeat(np.arange(len(ids)), lengths)
    cols = np.arange(int(offsets[-1] - offsets[0])) - np.repeat(offsets[:-1] - offsets[0], lengths)
    matrix[rows, cols] = data[offsets[0] : offsets[-1]]
    return matrix.view(f"S{width}").ravel()


@dataclass(frozen=True)
class BucketIndex:
    state: State
    ids: np.ndarray  # fixed_width(state.profile_ids)

    def row(self, profile_id: bytes) -> int | None:
        if len(profile_id) > self.ids.dtype.itemsize:
            return None
        at = int(np.searchsorted(self.ids, profile_id))
        return at if at < len(self.ids) and self.ids[at] == profile_id else None


@dataclass(frozen=True)
class StateIndex:
    """The state of `day`, per profile bucket, and each profile's row."""

    day: dt.date
    horizon_days: int
    buckets: tuple[BucketIndex, ...]

    @property
    def profiles(self) -> int:
        return sum(len(b.state) for b in self.buckets)

    @property
    def nbytes(self) -> int:
        """Bytes held: the state's arrays and the id index."""
        total = 0
        for b in self.buckets:
            s = b.state
            arrays = [s.event_offsets, s.day_offsets, b.ids, *s.events.values(), *s.days.values()]
            total += sum(a.nbytes for a in arrays) + s.profile_ids.nbytes
        return total

    def profile(self, profile_id: str) -> State:
        """The profile's state row as a one-profile State; an empty State if the state does not hold it."""
        bucket = self.buckets[int(profile_bucket(pa.array([profile_id]), len(self.buckets))[0])]
        row = bucket.row(profile_id.encode())
        if row is None:
            return State.empty(self.day, self.horizon_days)
        return bucket.state.take(np.array([row], np.int64))


def load_state(store: TableStore, day: dt.date) -> StateIndex:
    """The committed state of `day` (the version consumer_histories names), read bucket by bucket."""
    files = store.files(STATE_TABLE, [day])
    by_bucket: dict[int, list[str]] = {}
    for f in files:
        by_bucket.setdefault(int(f.partition[PROFILE_BUCKET]), []).append(store.file_uri(STATE_TABLE, f))
    buckets = max(by_bucket) + 1
    if sorted(by_bucket) != list(range(buckets)):
        missing = sorted(set(range(buckets)) - set(by_bucket))
        raise ValueError(f"the state of {day} under {store.uri(STATE_TABLE)} lacks profile buckets {missing}")
    first = files[0]
    location = store.location
    horizon_days = state_horizon(pq.read_schema(location.path(STATE_TABLE, first.path), filesystem=location.fs))
    if horizon_days is None:
        raise ValueError(f"{store.file_uri(STATE_TABLE, first)} records no horizon: no state file of this version")
    indexes = []
    for b in range(buckets):
        state = read_state([(uri, buckets) for uri in by_bucket[b]], day, horizon_days, b, buckets)
        indexes.append(BucketIndex(state, fixed_width(state.profile_ids)))
    return StateIndex(day, horizon_days, tuple(indexes))

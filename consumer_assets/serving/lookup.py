"""A day's histories state, compact and memory-mapped, and profiles' rows found in it without scanning.

The committed state of a day is read once, a profile bucket at a time (histories.tasks.read_state,
which checks each file's horizon and bucket), and written to a local cache folder as plain numpy
files: per bucket the profile ids as one sorted fixed-width byte array, the list offsets, and each
event and day field in the narrowest integer type its values need (bucket ids of 2**14 fit 16 bits).
Every load of that state, the first included, maps those files read-only (numpy memmap): the
resident memory is the pages requests touch, shared through the page cache by all the service's
processes, and a restart or another worker process starts in about a second instead of reading
Parquet again. A cache folder is named by the storage, the day and the state files the day
commits, so a re-committed day is never served from an old cache; one process builds it while
the others wait for it (a file lock).

A profile's bucket is crc32(id) % buckets, as raw_events and the state are laid out; in its bucket
the row is found by binary search over the ids: O(log n) comparisons, no Python object per profile.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from consumer_assets.histories.schema import state_horizon
from consumer_assets.histories.state import DAY_FIELDS, EVENT_FIELDS, FIELD_DTYPES, State
from consumer_assets.histories.tasks import read_state
from consumer_assets.storage.tables import PROFILE_BUCKET, TableStore

STATE_TABLE = "consumer_histories_state"
# Bumped when the cache's files change meaning: older caches are then built anew.
CACHE_FORMAT = 1
# Cached states kept per storage: the one served and the ones before (a swap maps the new one
# while requests still read the old).
CACHES_KEPT = 3
_META = "state.json"


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


def narrowest(values: np.ndarray) -> np.ndarray:
    """Integers in the smallest type that holds each of them (floats as they are): what the cache stores."""
    if not np.issubdtype(values.dtype, np.integer) or not len(values):
        return values
    return values.astype(np.result_type(np.min_scalar_type(values.min()), np.min_scalar_type(values.max())))


@dataclass(frozen=True)
class Bucket:
    """One profile bucket of the state: sorted ids, and each profile's events and active days."""

    ids: np.ndarray  # fixed_width(profile ids), sorted
    event_offsets: np.ndarray
    events: dict[str, np.ndarray]
    day_offsets: np.ndarray
    days: dict[str, np.ndarray]

    def row(self, profile_id: bytes) -> int | None:
        if len(profile_id) > self.ids.dtype.itemsize:
            return None
        at = int(np.searchsorted(self.ids, profile_id))
        return at if at < len(self.ids) and self.ids[at] == profile_id else None

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True)
        arrays = {"ids": self.ids, "event_offsets": self.event_offsets, "day_offsets": self.day_offsets}
        for name, values in {**arrays, **self.events, **self.days}.items():
            np.save(folder / f"{name}.npy", narrowest(values), allow_pickle=False)

    @classmethod
    def mapped(cls, folder: Path) -> Bucket:
        def load(name: str) -> np.ndarray:
            # A plain ndarray over the mapping: slicing a numpy memmap costs a Python call per slice.
            return np.asarray(np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False))

        return cls(
            load("ids"),
            load("event_offsets"),
            {k: load(k) for k in EVENT_FIELDS},
            load("day_offsets"),
            {k: load(k) for k in DAY_FIELDS},
        )


@dataclass(frozen=True)
class StateIndex:
    """The state of `day`, per profile bucket, mapped from its cache `folder`."""

    day: dt.date
    horizon_days: int
    profiles: int
    folder: Path
    buckets: tuple[Bucket, ...]

    @property
    def nbytes(self) -> int:
        """Bytes of the cache files mapped (what the whole state takes once every page was read)."""
        return sum(f.stat().st_size for f in self.folder.rglob("*.npy"))

    def rows(self, profile_ids: Sequence[str]) -> State:
        """The state rows of those of `profile_ids` the state holds, sorted by id, as one State."""
        found = []
        for profile_id in sorted(set(profile_ids)):
            key = profile_id.encode()
            bucket = self.buckets[zlib.crc32(key) % len(self.buckets)]
            row = bucket.row(key)
            if row is not None:
                found.append((profile_id, bucket, row))
        if not found:
            return State.empty(self.day, self.horizon_days)

        def lists(offsets: str, fields: tuple[str, ...], values: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            spans = [(b, int(getattr(b, offsets)[r]), int(getattr(b, offsets)[r + 1])) for _, b, r in found]
            out = np.zeros(len(spans) + 1, np.int64)
            np.cumsum([end - start for _, start, end in spans], out=out[1:])
            flat = {
                k: np.concatenate([getattr(b, values)[k][start:end] for b, start, end in spans]).astype(FIELD_DTYPES[k])
                for k in fields
            }
            return out, flat

        event_offsets, events = lists("event_offsets", EVENT_FIELDS, "events")
        day_offsets, days = lists("day_offsets", DAY_FIELDS, "days")
        ids = pa.array([profile_id for profile_id, _, _ in found], pa.string())
        return State(self.day, self.horizon_days, ids, event_offsets, events, day_offsets, days)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def load_state(store: TableStore, day: dt.date, cache: Path) -> StateIndex:
    """The committed state of `day` (the version consumer_histories names), mapped from its cache under
    `cache`, which is built first if no process built it yet."""
    files = store.files(STATE_TABLE, [day])
    uris = sorted(store.file_uri(STATE_TABLE, f) for f in files)
    of_storage = cache / _digest(store.uri(STATE_TABLE))
    folder = of_storage / f"{day}-{_digest(str(CACHE_FORMAT), *uris)}"
    with _locked(of_storage / ".lock"):
        if not (folder / _META).exists():
            _build(store, day, files, folder)
            for old in sorted(p for p in of_storage.iterdir() if p.is_dir())[:-CACHES_KEPT]:
                if old != folder:
                    shutil.rmtree(old, ignore_errors=True)  # a process still mapping it keeps its pages
    meta = json.loads((folder / _META).read_text())
    buckets = tuple(Bucket.mapped(folder / f"bucket-{b}") for b in range(meta["buckets"]))
    return StateIndex(day, meta["horizon_days"], meta["profiles"], folder, buckets)


def _build(store: TableStore, day: dt.date, files: list, folder: Path) -> None:
    """Read the state of `day` bucket by bucket into the cache `folder` (written beside it, then renamed)."""
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
    partial = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    profiles = 0
    for b in range(buckets):
        state = read_state([(uri, buckets) for uri in by_bucket[b]], day, horizon_days, b, buckets)
        profiles += len(state)
        ids = fixed_width(state.profile_ids)
        Bucket(ids, state.event_offsets, state.events, state.day_offsets, state.days).save(partial / f"bucket-{b}")
        del state, ids
        pa.default_memory_pool().release_unused()
    meta = {"day": str(day), "horizon_days": horizon_days, "buckets": buckets, "profiles": profiles}
    (partial / _META).write_text(json.dumps(meta))
    os.replace(partial, folder)

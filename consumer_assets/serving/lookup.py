"""A day's histories state in a compact local cache, and profiles' rows read from it without scanning.

The committed state of a day is read once, a profile bucket at a time (histories.tasks.read_state,
which checks each file's horizon and bucket), and written to a local cache folder: per bucket the
profile ids as one sorted fixed-width byte array and the list offsets (numpy files, memory-mapped),
and the profiles' events and active days as packed fixed-width records (EVENT_RECORD, DAY_RECORD:
bucket ids in the 16 or 8 bits their hash spaces need), one profile's after another. A lookup maps
the id to its row by binary search over the ids (O(log n), no Python object per profile) and reads
the row's records with one positioned read (pread) per file. So the process holds the ids and offsets
(about 40 bytes a profile); the records stay in the kernel's page cache, shared by all the service's
processes and given back under memory pressure, and a restart or another worker process starts
without reading Parquet again. A cache folder is named by the storage, the day and the state files
the day commits, so a re-committed day is never served from an old cache; one process builds it
while the others wait for it (a file lock). A profile's bucket is crc32(id) % buckets, as raw_events
and the state are laid out.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import io
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

from consumer_assets.histories.schema import ARTICLE_BUCKETS, BRAND_BUCKETS, CATEGORY_BUCKETS, state_horizon
from consumer_assets.histories.state import FIELD_DTYPES, State
from consumer_assets.histories.tasks import read_state
from consumer_assets.storage.tables import PROFILE_BUCKET, TableStore

STATE_TABLE = "consumer_histories_state"
# Bumped when the cache's files change meaning: older caches are then built anew.
CACHE_FORMAT = 2
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


# The records of the cache: each field in the fewest bytes its values need (little-endian, packed).
EVENT_RECORD = np.dtype(
    [("ts", "<i8"), ("event_type", "i1"), ("article_bucket", "<u2"), ("brand_bucket", "<u2"),
     ("category_bucket", "u1"), ("log_price", "<f4")]
)  # fmt: skip
DAY_RECORD = np.dtype([("day", "<i4"), ("day_events", "<i4"), ("day_orders", "<i4"), ("day_returns", "<i4")])
assert ARTICLE_BUCKETS <= 2**16 and BRAND_BUCKETS <= 2**16 and CATEGORY_BUCKETS <= 2**8, "widen EVENT_RECORD"


@dataclass(frozen=True)
class Bucket:
    """One profile bucket of the state: sorted ids, list offsets, and the records file of each list."""

    ids: np.ndarray  # fixed_width(profile ids), sorted
    event_offsets: np.ndarray
    day_offsets: np.ndarray
    events: io.FileIO  # EVENT_RECORD per event, by profile
    days: io.FileIO  # DAY_RECORD per active day, by profile

    def row(self, profile_id: bytes) -> int | None:
        if len(profile_id) > self.ids.dtype.itemsize:
            return None
        at = int(np.searchsorted(self.ids, np.array(profile_id, self.ids.dtype)))
        return at if at < len(self.ids) and self.ids[at] == profile_id else None

    def records(self, row: int) -> tuple[bytes, bytes]:
        """The row's event and day records, as bytes."""
        e0, e1 = int(self.event_offsets[row]), int(self.event_offsets[row + 1])
        d0, d1 = int(self.day_offsets[row]), int(self.day_offsets[row + 1])
        events = os.pread(self.events.fileno(), (e1 - e0) * EVENT_RECORD.itemsize, e0 * EVENT_RECORD.itemsize)
        days = os.pread(self.days.fileno(), (d1 - d0) * DAY_RECORD.itemsize, d0 * DAY_RECORD.itemsize)
        return events, days

    @staticmethod
    def save(folder: Path, state: State) -> None:
        folder.mkdir(parents=True)
        np.save(folder / "ids.npy", fixed_width(state.profile_ids), allow_pickle=False)
        np.save(folder / "event_offsets.npy", state.event_offsets, allow_pickle=False)
        np.save(folder / "day_offsets.npy", state.day_offsets, allow_pickle=False)
        for name, record, fields in (("events", EVENT_RECORD, state.events), ("days", DAY_RECORD, state.days)):
            values = np.zeros(len(next(iter(fields.values()))), record)
            for field in record.names:
                values[field] = fields[field]
                if not np.array_equal(values[field], fields[field]):
                    raise ValueError(f"state field {field} holds values beyond the cache's {record[field]}")
            values.tofile(folder / f"{name}.bin")

    @classmethod
    def opened(cls, folder: Path) -> Bucket:
        def mapped(name: str) -> np.ndarray:
            # A plain ndarray over the mapping: slicing a numpy memmap costs a Python call per slice.
            return np.asarray(np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False))

        events, days = (io.FileIO(folder / f"{name}.bin") for name in ("events", "days"))
        return cls(mapped("ids"), mapped("event_offsets"), mapped("day_offsets"), events, days)


@dataclass(frozen=True)
class StateIndex:
    """The state of `day`, per profile bucket, read from its cache `folder`."""

    day: dt.date
    horizon_days: int
    profiles: int
    folder: Path
    buckets: tuple[Bucket, ...]
    built: bool = False  # whether this load built the cache (else another load had)

    @property
    def nbytes(self) -> int:
        """Bytes of the cache's files."""
        return sum(f.stat().st_size for f in self.folder.rglob("*") if f.is_file())

    def rows(self, profile_ids: Sequence[str]) -> State:
        """The state rows of those of `profile_ids` the state holds, sorted by id, as one State."""
        found, events, days = [], [], []
        for profile_id in sorted(set(profile_ids)):
            key = profile_id.encode()
            bucket = self.buckets[zlib.crc32(key) % len(self.buckets)]
            row = bucket.row(key)
            if row is not None:
                found.append(profile_id)
                event_records, day_records = bucket.records(row)
                events.append(event_records)
                days.append(day_records)
        if not found:
            return State.empty(self.day, self.horizon_days)

        def lists(blocks: list[bytes], record: np.dtype) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            offsets = np.zeros(len(blocks) + 1, np.int64)
            np.cumsum([len(b) // record.itemsize for b in blocks], out=offsets[1:])
            values = np.frombuffer(b"".join(blocks), record)
            return offsets, {k: values[k].astype(FIELD_DTYPES[k]) for k in record.names}

        event_offsets, event_fields = lists(events, EVENT_RECORD)
        day_offsets, day_fields = lists(days, DAY_RECORD)
        ids = pa.array(found, pa.string())
        return State(self.day, self.horizon_days, ids, event_offsets, event_fields, day_offsets, day_fields)


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
        built = not (folder / _META).exists()
        if built:
            _build(store, day, files, folder)
            for old in sorted(p for p in of_storage.iterdir() if p.is_dir())[:-CACHES_KEPT]:
                if old != folder:
                    shutil.rmtree(old, ignore_errors=True)  # a process still mapping it keeps its pages
    meta = json.loads((folder / _META).read_text())
    buckets = tuple(Bucket.opened(folder / f"bucket-{b}") for b in range(meta["buckets"]))
    return StateIndex(day, meta["horizon_days"], meta["profiles"], folder, buckets, built)


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
        Bucket.save(partial / f"bucket-{b}", state)
        del state
        pa.default_memory_pool().release_unused()
    meta = {"day": str(day), "horizon_days": horizon_days, "buckets": buckets, "profiles": profiles}
    (partial / _META).write_text(json.dumps(meta))
    os.replace(partial, folder)

"""The duplicate look-back: ids kept on earlier days are found exactly, and reading them costs the
look-back days' event_id column alone, however long the table's history."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pytest

from consumer_assets.assets.raw_events import RAW_EVENTS, earlier_ids
from consumer_assets.events.schema import RAW_EVENTS_SCHEMA
from consumer_assets.ingest.dedupe import EarlierIds, fingerprint
from consumer_assets.storage.filesystem import Location
from consumer_assets.storage.tables import BUCKETED, TableStore
from consumer_assets.storage.writes import TableWrite

DAY = dt.date(2026, 3, 20)
BUCKETS = 3


def test_the_day_of_each_id_is_the_last_earlier_day_that_kept_it() -> None:
    rng = random.Random(7)
    # Ids of one length (read as a matrix), of mixed lengths, and ids alike in fingerprint (same length,
    # same first and last 8 bytes) that differ in the middle.
    pool = [f"{rng.getrandbits(64):016x}" for _ in range(3000)]
    pool += [f"id-{n}" for n in range(300)] + [f"aaaaaaaa-{n:03d}-bbbbbbbb" for n in range(300)]
    days = [(f"2026-03-{d:02d}", rng.sample(pool, 1200)) for d in (19, 17, 18)]  # not in date order
    earlier = EarlierIds([(name, pa.array(ids)) for name, ids in days])
    today = rng.sample(pool, 2000) + [f"new-{n}" for n in range(200)]
    rng.shuffle(today)
    last_day = {i: k for k, (_, ids) in enumerate(days) for i in ids}  # a later part overrides an earlier one
    expected = [last_day.get(i, -1) for i in today]

    found = earlier.day_index(pa.array(today), fingerprint(pa.array(today)))
    assert found.tolist() == expected
    assert len(set(fingerprint(pa.array(pool[-300:])).tolist())) == 1  # the alike ids do collide
    assert (found >= 0).sum() > 1000 and (found == -1).sum() > 200  # both outcomes are tested
    # A table in the same row order says the same.
    table = pa.table({"event_id": [i for _, ids in days for i in ids], "date": [n for n, ids in days for _ in ids]})
    assert EarlierIds.from_table(table).day_index(pa.array(today), fingerprint(pa.array(today))).tolist() == expected
    assert earlier.days == ["2026-03-19", "2026-03-17", "2026-03-18"]


class Recording(pafs.FileSystemHandler):
    """The local filesystem, recording each file opened for reading and the bytes read from it."""

    def __init__(self) -> None:
        self.local = pafs.LocalFileSystem()
        self.read: dict[str, int] = {}

    def open_input_file(self, path: str) -> pa.NativeFile:
        return pa.PythonFile(_Counting(self.local.open_input_file(path), path, self.read), mode="r")

    def open_input_stream(self, path: str) -> pa.NativeFile:
        return self.open_input_file(path)

    # The rest as the local filesystem does it.
    def get_type_name(self) -> str:
        return "recording"

    def equals(self, other: object) -> bool:
        return self is other

    def get_file_info(self, paths: list[str]) -> list[pafs.FileInfo]:
        return self.local.get_file_info(paths)

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        return self.local.get_file_info(selector)

    def normalize_path(self, path: str) -> str:
        return self.local.normalize_path(path)

    def create_dir(self, path: str, recursive: bool) -> None:
        self.local.create_dir(path, recursive=recursive)

    def delete_dir(self, path: str) -> None:
        self.local.delete_dir(path)

    def delete_dir_contents(self, path: str, missing_dir_ok: bool = False) -> None:
        self.local.delete_dir_contents(path, missing_dir_ok=missing_dir_ok)

    def delete_root_dir_contents(self) -> None:
        raise NotImplementedError

    def delete_file(self, path: str) -> None:
        self.local.delete_file(path)

    def move(self, src: str, dest: str) -> None:
        self.local.move(src, dest)

    def copy_file(self, src: str, dest: str) -> None:
        self.local.copy_file(src, dest)

    def open_output_stream(self, path: str, metadata: dict | None = None) -> pa.NativeFile:
        return self.local.open_output_stream(path, metadata=metadata)

    def open_append_stream(self, path: str, metadata: dict | None = None) -> pa.NativeFile:
        return self.local.open_append_stream(path, metadata=metadata)


class _Counting:
    """A readable file that adds the bytes read from it to `read[path]`."""

    def __init__(self, file: pa.NativeFile, path: str, read: dict[str, int]) -> None:
        self.file, self.path, self.counts = file, path, read
        self.counts.setdefault(path, 0)
        self.closed = False

    def read(self, nbytes: int = -1) -> bytes:
        data = self.file.read(nbytes)
        self.counts[self.path] += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.file.seek(offset, whence)

    def tell(self) -> int:
        return self.file.tell()

    def size(self) -> int:
        return self.file.size()

    def close(self) -> None:
        self.file.close()
        self.closed = True


def shop(root: Path, history_days: int) -> TableStore:
    """raw_events with `history_days` days before DAY, one commit a day (as daily runs make them).

    A day's events are the same however long the history. The two days before DAY (the look-back
    ones) are big enough that Parquet reads a file's footer (its last 64 KB) and its event_id column
    alone, far less than the whole file; the other days are small (only their files count).
    """
    store = TableStore.at(root.as_uri())
    for back in range(history_days, 0, -1):
        day = DAY - dt.timedelta(days=back)
        rng = np.random.default_rng(day.toordinal())
        n = BUCKETS * (10_000 if back <= 2 else 100)
        hex16 = [f"{x:016x}" for x in rng.integers(0, 2**63, 9 * n)]
        ts = pa.array(np.full(n, (day - dt.date(1970, 1, 1)).days * 86_400_000, np.int64))
        events = pa.table(
            {
                "event_id": hex16[:n],
                # Wide, random columns: the event_id column is a small part of each file.
                "profile_id": ["".join(hex16[n + 4 * k : n + 4 * k + 4]) for k in range(n)],
                "session_id": ["".join(hex16[5 * n + 4 * k : 5 * n + 4 * k + 4]) for k in range(n)],
                "ts": ts.cast(pa.timestamp("ms", tz="UTC")),
                "event_type": ["product_view"] * n,
                "article_id": [f"a{x}" for x in rng.integers(0, 10**12, n)],
                "brand_id": ["b1"] * n,
                "category": ["dresses"] * n,
                "price": rng.random(n),
            },
            schema=RAW_EVENTS_SCHEMA,
        )
        write = TableWrite(store, RAW_EVENTS.path[-1], RAW_EVENTS_SCHEMA, BUCKETED)
        size = n // BUCKETS
        for bucket in range(BUCKETS):
            part = events.slice(bucket * size, size)
            write.write_file(part, {"date": day.isoformat(), "profile_bucket": bucket}, dictionary=())
        write.commit([day])
    return store


def recorded(store: TableStore, lookback: int) -> tuple[EarlierIds | None, dict[str, int]]:
    """earlier_ids of DAY on `store`, read through a filesystem that records what is read."""
    handler = Recording()
    location = Location(pafs.PyFileSystem(handler), store.location.root, store.location.uri)
    return earlier_ids(TableStore(location), DAY.isoformat(), lookback, {}), handler.read


def dates_of(paths: dict[str, int]) -> list[str]:
    return sorted(
        {part.removeprefix("date=") for path in paths for part in path.split("/") if part.startswith("date=")}
    )


@pytest.mark.parametrize("lookback", [1, 2])
def test_the_look_back_reads_only_its_days_event_ids_however_long_the_history(tmp_path: Path, lookback: int) -> None:
    short, long = shop(tmp_path / "short", lookback + 1), shop(tmp_path / "long", 12)
    (short_ids, short_read), (long_ids, long_read) = recorded(short, lookback), recorded(long, lookback)
    look_back = [(DAY - dt.timedelta(days=n)).isoformat() for n in range(lookback, 0, -1)]

    # Only the look-back days' files are opened, each once: no other day's, however many the table holds.
    assert dates_of(short_read) == dates_of(long_read) == look_back
    assert len(short_read) == len(long_read) == BUCKETS * lookback
    # Of each file only the footer and the event_id column: a small part of its bytes.
    for path, read in long_read.items():
        assert read < 0.3 * Path(path).stat().st_size, path
    # The same bytes whether the table holds lookback + 1 days or 12.
    assert sum(short_read.values()) == sum(long_read.values())
    assert short_ids is not None and long_ids is not None
    assert short_ids.days == long_ids.days == look_back
    assert short_ids.ids.equals(long_ids.ids) and len(long_ids) == 30_000 * lookback
    # And it is what a plain read of those days holds.
    plain = long.read(RAW_EVENTS.path[-1], look_back, columns=["event_id"])["event_id"]
    assert long_ids.ids.to_pylist() == plain.to_pylist()


def test_the_look_back_of_a_table_with_none_of_its_days_reads_nothing(tmp_path: Path) -> None:
    store = shop(tmp_path, 5)
    handler = Recording()
    location = Location(pafs.PyFileSystem(handler), store.location.root, store.location.uri)
    assert earlier_ids(TableStore(location), (DAY + dt.timedelta(days=10)).isoformat(), 2, {}) is None
    assert handler.read == {}
    assert earlier_ids(TableStore.at((tmp_path / "empty").as_uri()), DAY.isoformat(), 2, {}) is None

"""A companion table (the quarantine) is read through its table of record (raw_events), on both storages."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from consumer_assets.storage.companions import COMPANIONS
from consumer_assets.storage.tables import Commit, PartitionNotFoundError, TableStore
from consumer_assets.storage.writes import TableWrite

RECORD, COMPANION = "raw_events", "raw_events_quarantine"
SCHEMA = pa.schema([pa.field("run", pa.int32())])
D1, D2 = "2026-01-01", "2026-01-02"


def write(store: TableStore, table: str, run: int, rows: dict[str, int]) -> TableWrite:
    """A write of `rows` rows per date, each row naming the run that wrote it (not committed)."""
    written = TableWrite(store, table, SCHEMA)
    for key, n in rows.items():
        written.write_file(pa.table({"run": pa.array([run] * n, pa.int32())}), {"date": key})
    return written


def run_pair(store: TableStore, run: int, rows: dict[str, int], *, dies_between: bool = False) -> Commit:
    """What raw_events does: the companion committed first, then the table of record naming it."""
    record, companion = write(store, RECORD, run, rows), write(store, COMPANION, run, rows)
    quarantined = companion.commit(list(rows))
    if not dies_between:
        record.commit(list(rows), companion=quarantined)
    return quarantined


def runs(store: TableStore, dates: list[str]) -> dict[str, list[int]]:
    """Per date, the runs whose companion rows a reader gets."""
    got = store.read(COMPANION, dates)
    return {key: sorted({r["run"] for r in got.to_pylist() if str(r["date"]) == key}) for key in dates}


def test_the_companion_reads_as_named_after_a_death_between_commits(storage_root: str) -> None:
    assert COMPANIONS[COMPANION] == RECORD
    store = TableStore.at(storage_root)
    first = run_pair(store, 1, {D1: 3, D2: 4})
    assert runs(store, [D1, D2]) == {D1: [1], D2: [1]} and store.dates(COMPANION) == [D1, D2]
    assert store.companion_version(COMPANION, D1) == first.version

    orphan = run_pair(store, 2, {D2: 9}, dies_between=True)
    assert store.read(COMPANION, [D2], version=orphan.version).num_rows == 9  # the newest version ...
    assert runs(store, [D1, D2]) == {D1: [1], D2: [1]}  # ... is not what readers get
    assert store.read(COMPANION, [D2]).num_rows == 4

    third = run_pair(store, 3, {D2: 5})  # the day run again, to the end
    assert runs(store, [D1, D2]) == {D1: [1], D2: [3]}
    # The pair as raw_events was before: the version named then.
    before = store.version(RECORD) - 1
    assert store.companion_version(COMPANION, D2, record_version=before) == first.version
    assert store.companion_version(COMPANION, D2) == third.version


def test_a_date_no_record_names_is_not_the_companions(storage_root: str) -> None:
    store = TableStore.at(storage_root)
    run_pair(store, 1, {D1: 3})
    run_pair(store, 2, {D2: 4}, dies_between=True)  # the first run of D2 died before raw_events
    assert store.dates(COMPANION) == [D1]
    with pytest.raises(PartitionNotFoundError, match=rf"holds no data for {D2} that a commit of raw_events names"):
        store.read(COMPANION, [D1, D2])
    with pytest.raises(PartitionNotFoundError, match=f"no commit of raw_events names a raw_events_quarantine of {D2}"):
        store.companion_version(COMPANION, D2)


def test_named_dates_stay_readable_after_compaction_and_vacuum(local_root: str) -> None:
    store = TableStore.at(local_root)
    for run in (1, 2, 3):  # many small files of one date, each run replacing the last
        record, companion = write(store, RECORD, run, {D1: 2}), write(store, COMPANION, run, {D1: 2})
        for _ in range(3):
            companion.write_file(pa.table({"run": pa.array([run], pa.int32())}), {"date": D1})
        record.commit([D1], companion=companion.commit([D1]))
    store.compact(COMPANION)
    store.vacuum(COMPANION, retention=dt.timedelta(0))
    # Only the compacted file is left: the named version's own files are gone, its rows are not.
    assert len(store.files(COMPANION, [D1])) == 1
    assert runs(store, [D1]) == {D1: [3]} and store.read(COMPANION, [D1]).num_rows == 5


def test_a_record_names_exactly_the_dates_of_its_companion_commit(local_root: str) -> None:
    store = TableStore.at(local_root)
    quarantined = write(store, COMPANION, 1, {D1: 1}).commit([D1])
    named = r"raw_events_quarantine committed \['2026-01-01'\], not \['2026-01-01', '2026-01-02'\]"
    with pytest.raises(ValueError, match=named):
        write(store, RECORD, 1, {D1: 1, D2: 1}).commit([D1, D2], companion=quarantined)

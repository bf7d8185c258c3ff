"""Delta tables and the artifact store, on local disk and on a real S3-compatible server, read back independently."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from consumer_assets.storage.artifacts import ArtifactIntegrityError, ArtifactStore, RecordLog
from consumer_assets.storage.filesystem import resolve
from consumer_assets.storage.tables import ConcurrentWriteError, PartitionNotFoundError, TableStore
from consumer_assets.storage.writes import TableWrite, write_dates
from consumer_assets_tests.support.services import wait_until

SCHEMA = pa.schema([pa.field("id", pa.int64()), pa.field("version", pa.int32())])


def table(version: int, rows: int = 50) -> pa.Table:
    return pa.table({"id": pa.array(range(rows), pa.int64()), "version": pa.array([version] * rows, pa.int32())})


def test_commit_replaces_exactly_its_dates_and_keeps_history(storage_root: str) -> None:
    store = TableStore.at(storage_root)
    first = write_dates(
        store, "things", {"2026-01-01": table(1, 30), "2026-01-02": [table(1, 20), table(1, 5)]}, schema=SCHEMA
    )
    assert first.partitions["2026-01-02"].rows == 25 and first.partitions["2026-01-02"].files == 2
    second = write_dates(store, "things", {"2026-01-02": table(2, 10)}, schema=SCHEMA, metadata={"run_id": "r2"})
    assert second.version == first.version + 1

    now = store.read("things", ["2026-01-01", "2026-01-02"])
    assert now.group_by(["date", "version"]).aggregate([("id", "count")]).sort_by("date").to_pylist() == [
        {"date": dt.date(2026, 1, 1), "version": 1, "id_count": 30},
        {"date": dt.date(2026, 1, 2), "version": 2, "id_count": 10},
    ]
    # Time travel: the version before the second commit still reads as it was.
    before = store.read("things", ["2026-01-02"], version=first.version)
    assert before.num_rows == 25 and set(before["version"].to_pylist()) == {1}
    assert store.history("things")[0]["consumer_assets"]["run_id"] == "r2"
    assert store.dates("things") == ["2026-01-01", "2026-01-02"]


def test_independent_readers_see_exactly_the_committed_rows(storage_root: str) -> None:
    store = TableStore.at(storage_root)
    write_dates(store, "things", {"2026-01-01": table(1, 7), "2026-01-02": table(2, 3)}, schema=SCHEMA)
    write_dates(store, "things", {"2026-01-02": table(3, 4)}, schema=SCHEMA)
    # An uncommitted write's file in the folder (a run that died before its commit): invisible.
    dead = TableWrite(store, "things", SCHEMA)
    dead.write_file(table(9, 100), {"date": "2026-01-02"})

    expected = [(dt.date(2026, 1, 1), 1, 7), (dt.date(2026, 1, 2), 3, 4)]
    delta = DeltaTable(store.uri("things"), storage_options=store.location.storage_options()).to_pyarrow_table()
    counted = delta.group_by(["date", "version"]).aggregate([("id", "count")]).sort_by("date")
    assert [tuple(r.values()) for r in counted.to_pylist()] == expected
    dataset = store.dataset("things", ["2026-01-01", "2026-01-02"])  # noqa: F841  (DuckDB reads it by name)
    rows = duckdb.sql("select date, version, count(*) from dataset group by all order by date").fetchall()
    assert rows == expected


def test_missing_date_and_missing_table_name_what_is_missing(storage_root: str) -> None:
    store = TableStore.at(storage_root)
    with pytest.raises(PartitionNotFoundError, match=r"table things has no commit yet: no Delta log at .*things"):
        store.read("things", ["2026-01-01"])
    write_dates(store, "things", {"2026-01-01": table(1)}, schema=SCHEMA)
    with pytest.raises(PartitionNotFoundError, match=r"table things holds no data for 2026-01-09 \(version current\)"):
        store.read("things", ["2026-01-01", "2026-01-09"])
    with pytest.raises(PartitionNotFoundError, match=r"holds no data for 2026-01-01 \(version 0\)"):
        store.files("things", ["2026-01-01"], version=0)  # the empty table as created, before the first commit


def test_overlapping_writes_of_one_date_one_wins(storage_root: str) -> None:
    store = TableStore.at(storage_root)
    write_dates(store, "things", {"2026-01-01": table(0, 3)}, schema=SCHEMA)
    for date in ("2026-01-01", "2026-01-05"):  # a date that held data, and one that held none
        slow, fast = TableWrite(store, "things", SCHEMA), TableWrite(store, "things", SCHEMA)
        slow.write_file(table(1), {"date": date})
        fast.write_file(table(2, 20), {"date": date})
        fast.commit([date])
        with pytest.raises(ConcurrentWriteError, match=rf"another write committed things for {date} after write"):
            slow.commit([date])
        got = store.read("things", [date])
        assert got.num_rows == 20 and set(got["version"].to_pylist()) == {2}


def test_overlapping_writes_of_different_dates_both_commit(storage_root: str) -> None:
    store = TableStore.at(storage_root)
    writes = [TableWrite(store, "things", SCHEMA) for _ in range(3)]
    for n, write in enumerate(writes):
        write.write_file(table(n, 10 + n), {"date": f"2026-02-0{n + 1}"})
    versions = [write.commit([f"2026-02-0{n + 1}"]).version for n, write in enumerate(writes)]
    assert len(set(versions)) == 3
    got = store.read("things", ["2026-02-01", "2026-02-02", "2026-02-03"])
    assert got.num_rows == 10 + 11 + 12


def test_a_schema_change_is_refused(local_root: str) -> None:
    store = TableStore.at(local_root)
    write_dates(store, "things", {"2026-01-01": table(1)}, schema=SCHEMA)
    other = pa.schema([pa.field("id", pa.int64()), pa.field("name", pa.string())])
    with pytest.raises(ValueError, match=r"table things has columns \['id', 'version', 'date'\]"):
        TableWrite(store, "things", other)


def test_vacuum_removes_dead_and_superseded_files_and_compact_merges(local_root: str) -> None:
    store = TableStore.at(local_root)
    write_dates(store, "things", {"2026-01-01": [table(1, 5) for _ in range(4)]}, schema=SCHEMA)
    dead = TableWrite(store, "things", SCHEMA)
    dead.write_file(table(9), {"date": "2026-01-01"})
    compacted = store.compact("things")
    assert compacted["numFilesRemoved"] == 4 and compacted["numFilesAdded"] == 1
    assert len(store.files("things", ["2026-01-01"])) == 1

    folder = Path(resolve(local_root).root) / "things" / "date=2026-01-01"
    assert len(list(folder.glob("*.parquet"))) == 6  # 4 compacted away + 1 dead + 1 current
    assert store.vacuum("things", retention=dt.timedelta(days=7)) == []  # all younger than the retention
    removed = store.vacuum("things", retention=dt.timedelta(0))
    assert len(removed) == 5 and len(list(folder.glob("*.parquet"))) == 1
    assert store.read("things", ["2026-01-01"]).num_rows == 20


WRITER = textwrap.dedent(
    """
    import sys
    import pyarrow as pa
    from consumer_assets.storage.tables import TableStore
    from consumer_assets.storage.writes import TableWrite

    root, mode = sys.argv[1], sys.argv[2]
    schema = pa.schema([pa.field("id", pa.int64()), pa.field("version", pa.int32())])
    store = TableStore.at(root)
    n = 1
    while True:
        write = TableWrite(store, "things", schema)
        for part in range(4):
            write.write_file(
                pa.table({"id": pa.array(range(1000), pa.int64()), "version": pa.array([n] * 1000, pa.int32())}),
                {"date": "2026-01-01"},
            )
        if mode == "hold":  # killed with its files written, before the commit
            print("written", flush=True)
            sys.stdin.read()
        write.commit(["2026-01-01"])
        print(f"committed {n}", flush=True)
        n += 1
    """
)


@pytest.mark.slow
def test_sigkill_before_and_during_commits_leaves_one_complete_version(storage_root: str, tmp_path: Path) -> None:
    store = TableStore.at(storage_root)
    write_dates(store, "things", {"2026-01-01": table(0, 4000)}, schema=SCHEMA)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)

    def run(mode: str, until: str) -> None:
        proc = subprocess.Popen(
            [sys.executable, str(script), storage_root, mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        wait_until(lambda: until in proc.stdout.readline(), 120, f"the writer to print {until!r}")
        proc.send_signal(signal.SIGKILL)  # wherever it is: writing files, committing, or holding
        proc.wait(timeout=30)

    run("hold", "written")  # files written, no commit
    got = store.read("things", ["2026-01-01"])
    assert got.num_rows == 4000 and set(got["version"].to_pylist()) == {0}
    run("loop", "committed 3")  # killed mid-loop: somewhere in a write or a commit
    got = store.read("things", ["2026-01-01"])
    # Exactly one complete version: 4 files of 1000 rows of one write.
    assert got.num_rows == 4000 and len(set(got["version"].to_pylist())) == 1 and got["version"][0].as_py() >= 3


CHILD = textwrap.dedent(
    """
    import sys
    import pyarrow as pa
    from consumer_assets.storage.tables import TableStore
    from consumer_assets.storage.writes import write_dates

    store = TableStore.at(sys.argv[1])
    schema = pa.schema([pa.field("id", pa.int64())])
    day = f"2026-01-{int(sys.argv[2]) + 1:02d}"
    write_dates(store, "t", {day: pa.table({"id": pa.array([1, 2, 3], pa.int64())})}, schema=schema)
    assert store.read("t", [day]).num_rows == 3
    """
)


@pytest.mark.slow
def test_read_and_write_paths_exit_cleanly_in_fresh_processes(local_root: str, tmp_path: Path) -> None:
    # Reading through delta-rs' Python filesystem made about 1 process in 20 abort at exit (SIGABRT).
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    codes = [
        subprocess.run([sys.executable, str(script), local_root, str(n)], check=False).returncode for n in range(20)
    ]
    assert codes == [0] * 20


# ---------------------------------------------------------------- artifacts


def test_artifacts_publish_versions_and_verify_checksums(storage_root: str) -> None:
    location = resolve(storage_root)
    artifacts = ArtifactStore(location)
    files = {"model.safetensors": b"\x00weights" * 100, "config.json": b'{"hidden": 8}'}
    first = artifacts.put("model", "2026-01-01", files, {"auc": 0.8})
    second = artifacts.put("model", "2026-01-01", {**files, "config.json": b'{"hidden": 16}'}, {"auc": 0.81})
    assert (first.number, second.number) == (1, 2)
    latest = artifacts.latest("model", "2026-01-01")
    assert latest == second and latest.metadata == {"auc": 0.81}
    assert artifacts.load(latest)["config.json"] == b'{"hidden": 16}'
    assert artifacts.load(artifacts.get("model", "2026-01-01", 1)) == files
    assert artifacts.latest("model", "2026-01-02") is None

    # One changed byte in a stored file is refused on load.
    path = location.path("model", "date=2026-01-01", second.folder, "model.safetensors")
    with location.fs.open_output_stream(path) as out:
        out.write(b"\x01weights" + b"\x00weights" * 99)
    with pytest.raises(ArtifactIntegrityError, match=r"model.safetensors has sha256 .* recorded"):
        artifacts.load(second)


def test_a_record_number_is_taken_once(storage_root: str) -> None:
    location = resolve(storage_root).child("approvals")
    first, second = RecordLog(location), RecordLog(location)
    assert first.append({"who": "a"}) == 1
    numbers = second.numbers
    second.numbers = lambda: numbers()[:0]  # a writer that has not seen record 1 yet tries to take it
    with pytest.raises(ConcurrentWriteError, match="record 1 was created by another writer"):
        second.append({"who": "b"})
    assert [r["who"] for r in RecordLog(location).records()] == ["a"]
    assert first.read(1)["number"] == 1


def test_artifact_pointers_through_the_storage_resource_s3_settings(s3_root: str, s3_endpoint: str) -> None:
    from consumer_assets.resources.storage import Storage
    from consumer_assets.storage.s3 import S3Settings

    artifacts = Storage(root=s3_root).artifacts()  # pointers through the client of the tables' own settings
    assert artifacts.location.s3 == S3Settings(endpoint_url=s3_endpoint, region="us-east-1")
    version = artifacts.put("model", "2026-01-01", {"config.json": b"{}"}, {})
    again = Storage(root=s3_root).artifacts()
    assert again.latest("model", "2026-01-01") == version and again.load(version) == {"config.json": b"{}"}

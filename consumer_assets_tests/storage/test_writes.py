"""The write path: where data files go, one file written whole or not at all, staged writes of files made elsewhere."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from consumer_assets.storage.filesystem import Location, resolve
from consumer_assets.storage.tables import DataFile, PartitionNotFoundError, TableFiles, TableStore
from consumer_assets.storage.writes import StagedWrite, TableWrite, atomic_output, part_path, write_parquet

SCHEMA = pa.schema([pa.field("id", pa.int64()), pa.field("source", pa.string())])
PARTITIONING = ("date", "profile_bucket")
D1, D2 = "2026-03-01", "2026-03-02"


def rows(source: str, n: int) -> pa.Table:
    return pa.table({"id": pa.array(range(n), pa.int64()), "source": pa.array([source] * n)})


def files_under(location: Location) -> list[str]:
    listed = location.fs.get_file_info(pafs.FileSelector(location.root, recursive=True, allow_not_found=True))
    return sorted(i.path.removeprefix(location.root.rstrip("/") + "/") for i in listed if i.type == pafs.FileType.File)


def test_part_path_is_the_hive_layout_of_every_table() -> None:
    partition = {"date": dt.date(2026, 3, 1), "profile_bucket": 3}
    assert part_path(partition, "w1", 7) == "date=2026-03-01/profile_bucket=3/part-w1-00007.parquet"
    assert part_path({"date": D2}, "w2", 0, "s3://b/t/") == "s3://b/t/date=2026-03-02/part-w2-00000.parquet"


def test_a_file_appears_whole_or_not_at_all_and_a_rewrite_replaces_it(
    storage_root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_temp = tmp_path / "temp"
    local_temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(local_temp))  # where an object store's file is built
    folder = resolve(storage_root).child("t")
    target = folder.child(part_path({"date": D1}, "w", 0))
    write_parquet(rows("first", 5), target.uri)

    with pytest.raises(RuntimeError, match="died mid-file"), atomic_output(target.uri) as (fs, path):
        with pq.ParquetWriter(path, SCHEMA, filesystem=fs) as writer:
            writer.write_table(rows("second", 3))
        # Written out, not yet in place: readers of the target still get the earlier file.
        assert pq.read_table(target.root, filesystem=target.fs)["source"][0].as_py() == "first"
        raise RuntimeError("died mid-file")
    assert pq.read_table(target.root, filesystem=target.fs)["source"].to_pylist() == ["first"] * 5
    assert files_under(folder) == [part_path({"date": D1}, "w", 0)] and not list(local_temp.iterdir())

    write_parquet(rows("retry", 4), target.uri)  # a retried task: the same name, the file replaced
    assert pq.read_table(target.root, filesystem=target.fs)["source"].to_pylist() == ["retry"] * 4
    assert files_under(folder) == [part_path({"date": D1}, "w", 0)] and not list(local_temp.iterdir())


def upstream(store: TableStore) -> TableFiles:
    """A committed table of two dates x two profile buckets, one file each, as executors read them."""
    write = TableWrite(store, "up", SCHEMA, PARTITIONING)
    for date in (D1, D2):
        for bucket in (0, 1):
            write.write_file(rows(f"{date}/{bucket}", 10 + bucket), {"date": date, "profile_bucket": bucket})
    write.commit([D1, D2])
    return TableFiles(store, "up", store.files("up", [D1, D2]))


def make_files(inputs: Mapping[str, Mapping[int, list[str]]], out_dir: str, write_id: str) -> dict[str, list]:
    """What executors do: read each bucket's input files where they are given, write one file into out_dir."""
    written: dict[str, list] = {}
    for date, by_bucket in inputs.items():
        for bucket, paths in by_bucket.items():
            source = resolve(paths[0])
            data = pa.concat_tables(pq.read_table(resolve(p).root, filesystem=source.fs) for p in paths)
            path = part_path({"date": date, "profile_bucket": bucket}, write_id, bucket, out_dir)
            write_parquet(data, path)
            written.setdefault(date, []).append((path, bucket))
    return written


@pytest.mark.parametrize("reaches_storage", [True, False], ids=["executors-reach-storage", "through-this-disk"])
def test_a_staged_write_adopts_files_and_shows_them_only_once_committed(
    storage_root: str, reaches_storage: bool, tmp_path: Path
) -> None:
    store = TableStore.at(storage_root)
    inputs = upstream(store)
    before = TableWrite(store, "down", SCHEMA, PARTITIONING)
    before.write_file(rows("earlier", 3), {"date": D1, "profile_bucket": 0})
    before.commit([D1])
    through_disk = not reaches_storage and not store.location.is_local
    staging = tmp_path / "staging" / "run-1"

    write = TableWrite(store, "down", SCHEMA, PARTITIONING)
    with StagedWrite(write, inputs, staging, reaches_storage=reaches_storage) as staged:
        assert {d: sorted(b) for d, b in staged.inputs.items()} == {D1: [0, 1], D2: [0, 1]}
        given = [p for by_bucket in staged.inputs.values() for paths in by_bucket.values() for p in paths]
        if through_disk:  # copies on this machine, and the outputs beside them
            assert all(Path(p).is_relative_to(staging / "inputs") for p in given)
            assert staged.out_dir == (staging / "outputs").as_uri()
        else:  # the files where they are, and the outputs straight into the table's folder
            assert [resolve(p).root for p in given] == [store.location.path("up", f.path) for f in inputs.files]
            assert staged.out_dir == write.uri
        written = make_files(staged.inputs, staged.out_dir, write.id)
        adopted = [f for date in (D1, D2) for f in staged.adopt(date, written[date])]
        in_folder = files_under(store.location.child("down"))
        assert all(f.path in in_folder and f.path.startswith(f"date={f.partition['date']}/") for f in adopted)
        assert sorted((f.partition["date"], f.partition["profile_bucket"], f.rows) for f in adopted) == [
            (D1, "0", 10), (D1, "1", 11), (D2, "0", 10), (D2, "1", 11)
        ]  # fmt: skip
        # Written and adopted, not committed: readers still see the previous version only.
        assert store.read("down", [D1])["source"].to_pylist() == ["earlier"] * 3
        with pytest.raises(PartitionNotFoundError, match=f"holds no data for {D2}"):
            store.read("down", [D2])
        commit = staged.commit([D1, D2], {"run_id": "run-1"})

    assert not staging.exists()
    assert {d: (s.rows, s.files) for d, s in commit.partitions.items()} == {D1: (21, 2), D2: (21, 2)}
    got = store.read("down", [D1, D2])
    assert sorted(set(zip(got["date"].to_pylist(), got["source"].to_pylist(), strict=True))) == [
        (dt.date(2026, 3, 1), f"{D1}/0"), (dt.date(2026, 3, 1), f"{D1}/1"),
        (dt.date(2026, 3, 2), f"{D2}/0"), (dt.date(2026, 3, 2), f"{D2}/1"),
    ]  # fmt: skip


def test_a_failed_staged_write_commits_nothing_and_leaves_no_staging(s3_root: str, tmp_path: Path) -> None:
    store = TableStore.at(s3_root)
    inputs = upstream(store)
    staging = tmp_path / "staging" / "run-2"
    write = TableWrite(store, "down", SCHEMA, PARTITIONING)
    with (
        pytest.raises(RuntimeError, match="an executor died"),
        StagedWrite(write, inputs, staging, reaches_storage=False) as staged,
    ):
        written = make_files(staged.inputs, staged.out_dir, write.id)
        staged.adopt(D1, written[D1])
        assert (staging / "inputs").is_dir() and (staging / "outputs").is_dir()
        raise RuntimeError("an executor died")
    assert not staging.exists()
    with pytest.raises(PartitionNotFoundError, match="holds no data for 2026-03-01"):
        store.files("down", [D1])

    # Also when copying the inputs in fails, before the block runs.
    missing = TableFiles(store, "up", [DataFile("date=2026-03-01/profile_bucket=0/gone.parquet", {}, 0, 0)])
    with pytest.raises(OSError), StagedWrite(write, missing, staging, reaches_storage=False):
        pass
    assert not staging.exists()


def test_a_staged_write_is_one_of_date_and_profile_bucket_partitions(local_root: str, tmp_path: Path) -> None:
    store = TableStore.at(local_root)
    write = TableWrite(store, "by_date", SCHEMA)
    with pytest.raises(ValueError, match=r"partitioned by \(date, profile_bucket\), not \('date',\)"):
        StagedWrite(write, upstream(store), tmp_path / "staging", reaches_storage=True)

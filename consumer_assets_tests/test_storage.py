"""The partition store on local disk and on a real S3-compatible server, read back independently."""

from __future__ import annotations

import datetime as dt
import io
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from consumer_assets.storage.filesystem import resolve
from consumer_assets.storage.store import (
    MANIFEST,
    STAGING,
    ConcurrentWriteError,
    DatasetStore,
    Manifest,
    PartitionNotFoundError,
)

from .conftest import s3_client


def table(version: int, rows: int = 50) -> pa.Table:
    return pa.table({"id": pa.array(range(rows), pa.int64()), "version": pa.array([version] * rows, pa.int32())})


def test_write_read_round_trip_and_replace(storage_root: str) -> None:
    store = DatasetStore(resolve(storage_root))
    first = store.write("things", "2026-01-02", [table(1, 30), table(1, 20)])
    assert first.rows == 50 and len(first.files) == 2
    assert store.read("things", ["2026-01-02"]).equals(pa.concat_tables([table(1, 30), table(1, 20)]))

    second = store.write("things", "2026-01-02", table(2, 10))
    assert store.read("things", ["2026-01-02"]).equals(table(2, 10))
    # The superseded files are gone, not just unlisted.
    names = {info.base_name for info in store.fs.get_file_info(_selector(store, "things", "2026-01-02"))}
    assert names == {MANIFEST, second.files[0]["name"]}
    assert store.partitions("things") == ["2026-01-02"]


def test_window_reads_partitions_in_order(local_root: str) -> None:
    store = DatasetStore(resolve(local_root))
    for day, version in (("2026-01-03", 3), ("2026-01-01", 1), ("2026-01-02", 2)):
        store.write("things", day, table(version, 5))
    window = store.read("things", ["2026-01-01", "2026-01-02", "2026-01-03"])
    assert window["version"].to_pylist() == [1] * 5 + [2] * 5 + [3] * 5


def test_missing_partition_names_the_path(storage_root: str) -> None:
    store = DatasetStore(resolve(storage_root))
    with pytest.raises(PartitionNotFoundError, match=r"partition 2026-01-09 of things .*date=2026-01-09"):
        store.read("things", ["2026-01-09"])


def test_local_layout_is_readable_by_duckdb(local_root: str) -> None:
    store = DatasetStore(resolve(local_root))
    store.write("things", "2026-01-01", table(1, 7))
    store.write("things", "2026-01-02", table(2, 3))
    root = Path(resolve(local_root).root)
    rows = duckdb.sql(
        f"select date::varchar as d, version, count(*) as n from read_parquet('{root}/things/*/*.parquet', "
        "hive_partitioning = true) group by all order by d"
    ).fetchall()
    assert rows == [("2026-01-01", 1, 7), ("2026-01-02", 2, 3)]


def test_s3_layout_is_readable_by_an_independent_client(s3_root: str) -> None:
    store = DatasetStore(resolve(s3_root))
    store.write("things", "2026-01-05", [table(5, 4), table(5, 6)])
    bucket, prefix = s3_root.removeprefix("s3://").split("/", 1)
    client = s3_client()
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"])
    folder = f"{prefix}/things/date=2026-01-05/"
    data_keys = [k for k in keys if k.startswith(folder) and k.endswith(".parquet")]
    assert f"{folder}{MANIFEST}" in keys and len(data_keys) == 2
    manifest = json.loads(client.get_object(Bucket=bucket, Key=f"{folder}{MANIFEST}")["Body"].read())
    assert manifest["rows"] == 10 and [folder + f["name"] for f in manifest["files"]] == data_keys
    tables = [pq.read_table(io.BytesIO(client.get_object(Bucket=bucket, Key=k)["Body"].read())) for k in data_keys]
    assert pa.concat_tables(tables)["version"].to_pylist() == [5] * 10
    # Nothing is left in the staging area after a commit.
    assert not [k for k in keys if "/_staging/" in k and not k.endswith("/")]


# A writer that SIGKILLs itself at a chosen moment of the commit protocol, like a crashed worker.
KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import pyarrow as pa
    from consumer_assets.storage.filesystem import resolve
    from consumer_assets.storage import store as store_module

    root, stage = sys.argv[1], sys.argv[2]
    store = store_module.DatasetStore(resolve(root))
    real_move, real_commit = store._move, store._commit
    moves = []

    def move(src, dest):
        if stage == "staging":
            os.kill(os.getpid(), signal.SIGKILL)  # every part staged, none moved
        real_move(src, dest)
        moves.append(dest)
        if stage == "moving" and len(moves) == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # some parts in the partition folder, no manifest

    store._move = move
    parts = [pa.table({"id": pa.array(range(i * 100, i * 100 + 100), pa.int64()),
                       "version": pa.array([2] * 100, pa.int32())}) for i in range(4)]
    store.write("things", "2026-01-02", parts)
    """
)


@pytest.mark.parametrize("stage", ["staging", "moving"])
def test_write_killed_midway_leaves_previous_version_intact(storage_root: str, stage: str) -> None:
    store = DatasetStore(resolve(storage_root))
    store.write("things", "2026-01-02", table(1))
    before = store.manifest("things", "2026-01-02")

    killed = subprocess.run([sys.executable, "-c", KILLER, storage_root, stage], capture_output=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()

    assert store.manifest("things", "2026-01-02") == before
    assert store.read("things", ["2026-01-02"]).equals(table(1))

    # The next write commits cleanly and sweeps the dead writer's leftovers from the partition
    # (at once here; by default only once they are ORPHAN_TTL old, see the overtaken-write test).
    store = DatasetStore(resolve(storage_root), orphan_ttl=dt.timedelta(0))
    after = store.write("things", "2026-01-02", table(3, 5))
    names = {info.base_name for info in store.fs.get_file_info(_selector(store, "things", "2026-01-02"))}
    assert names == {MANIFEST, after.files[0]["name"]}
    assert store.read("things", ["2026-01-02"]).equals(table(3, 5))
    # The dead writer's staging folder is young: it stays until it is older than a day.
    assert len(_staging_folders(store)) == 1


def test_old_staging_folders_are_swept(local_root: str) -> None:
    store = DatasetStore(resolve(local_root))
    for write_id in ("20200101T000000-deadbeef", "29990101T000000-cafecafe"):  # long dead; far future
        store.fs.create_dir(store.location.path("things", STAGING, write_id, "x"), recursive=True)
    store.write("things", "2026-01-01", table(1))
    assert _staging_folders(store) == ["29990101T000000-cafecafe"]


def _staging_folders(store: DatasetStore) -> list[str]:
    import pyarrow.fs as pafs

    selector = pafs.FileSelector(store.location.path("things", STAGING), allow_not_found=True)
    return sorted(i.base_name for i in store.fs.get_file_info(selector) if i.type == pafs.FileType.Directory)


def test_parts_must_share_a_schema(local_root: str) -> None:
    store = DatasetStore(resolve(local_root))
    with pytest.raises(ValueError, match="disagree on schema"):
        store.write("things", "2026-01-01", [table(1), pa.table({"other": [1]})])
    assert store.manifest("things", "2026-01-01") is None


def test_uri_resolution() -> None:
    assert resolve("/tmp/x/../y").uri == "file:///tmp/y"
    assert resolve(resolve("/tmp/date=2026-01-01").uri).root == "/tmp/date=2026-01-01"
    with pytest.raises(ValueError, match="names no bucket"):
        resolve("s3:///prefix")
    with pytest.raises(ValueError, match="unsupported storage URI"):
        resolve("gs://bucket/x")


def _selector(store: DatasetStore, dataset: str, partition: str):
    import pyarrow.fs as pafs

    return pafs.FileSelector(store.partition_path(dataset, partition))


def test_a_write_overtaken_by_another_fails_and_leaves_the_winner_intact(storage_root: str) -> None:
    slow, fast = DatasetStore(resolve(storage_root)), DatasetStore(resolve(storage_root))
    slow.write("things", "2026-01-02", table(1))
    real_check = slow._require_unchanged

    def another_write_lands_first(*args: object) -> None:
        if fast.manifest("things", "2026-01-02").rows != 7:
            fast.write("things", "2026-01-02", table(2, 7))  # while `slow` has moved its files in
        real_check(*args)

    slow._require_unchanged = another_write_lands_first  # type: ignore[method-assign]
    with pytest.raises(ConcurrentWriteError, match=r"date=2026-01-02 was replaced by write .* while write"):
        slow.write("things", "2026-01-02", table(3, 9))
    assert fast.read("things", ["2026-01-02"]).equals(table(2, 7))
    names = {info.base_name for info in fast.fs.get_file_info(_selector(fast, "things", "2026-01-02"))}
    assert names == {MANIFEST, *(f["name"] for f in fast.manifest("things", "2026-01-02").files)}


def test_writes_racing_to_commit_leave_a_readable_partition(storage_root: str) -> None:
    slow, fast = DatasetStore(resolve(storage_root)), DatasetStore(resolve(storage_root))
    slow.write("things", "2026-01-02", table(1))
    real_commit = slow._commit

    def commit_right_after_another(folder: str, manifest: Manifest) -> None:
        fast.write("things", "2026-01-02", table(2, 7))  # between `slow`'s last check and its commit
        real_commit(folder, manifest)

    # The instant no check can see: both writers pass their checks, the later commit wins.
    slow._require_unchanged = lambda *args: None  # type: ignore[method-assign]
    slow._commit = commit_right_after_another  # type: ignore[method-assign]
    slow.write("things", "2026-01-02", table(3, 9))
    assert slow.read("things", ["2026-01-02"]).equals(table(3, 9))  # no file of the winner was deleted

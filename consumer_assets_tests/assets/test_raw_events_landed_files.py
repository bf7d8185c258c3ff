"""raw_events through real Dagster runs: links refused, every file not ingested named, the landed-files check."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from consumer_assets.assets.raw_events import raw_events
from consumer_assets.events.landing import MARKER, day_folder
from consumer_assets.resources.landing import LandingZone
from consumer_assets.resources.storage import storage_resources
from consumer_assets.storage.tables import TableStore
from consumer_assets_tests.support.factories import DAY, event, land, line

CHECK = "landed_files_all_ingested"


def resources(storage: str, landing: str) -> dict:
    return {**storage_resources(storage), "landing": LandingZone(uri=landing, workers=1)}


def lines(first: int, n: int) -> list[bytes]:
    return [line(event(k, ts=f"{DAY}T12:00:00.000Z")) for k in range(first, first + n)]


def materialize(storage: str, landing: str) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_events], resources=resources(storage, landing), partition_key=str(DAY), raise_on_error=False
    )


def test_a_symlink_out_of_the_landing_zone_fails_the_run_and_nothing_is_read(tmp_path: Path) -> None:
    landing, storage = tmp_path / "landing", (tmp_path / "storage").as_uri()
    land(landing, {"a.jsonl": lines(0, 3)}, marker="empty")
    os.symlink("/etc/passwd", landing / day_folder(DAY) / "x.jsonl")
    os.symlink(".", landing / day_folder(DAY) / "loop")
    result = materialize(storage, landing.as_uri())
    assert not result.success
    error = str(result.failure_data_for_node("raw_events").error)
    assert "date=2026-03-04/loop is a symbolic link (to .)" in error and "(and 1 more like it)" in error
    store = TableStore.at(storage)
    assert store.dates("raw_events") == [] and store.dates("raw_events_quarantine") == []


def test_files_left_out_are_named_in_the_metadata_and_fail_the_check(storage_root: str) -> None:
    landing, storage = f"{storage_root}/landing", f"{storage_root}/storage"
    land(landing, {"a.jsonl.gz": lines(0, 10)})  # the JSON marker names a.jsonl.gz only
    strays = {"late.jsonl.gz": lines(10, 5), "hour=1/b.JSONL": lines(20, 2), "manifest.csv": b"file,rows\n"}
    land(landing, {**strays, "_temporary/0/part-0.jsonl": lines(30, 1)}, marker=None)
    result = materialize(storage, landing)
    assert result.success
    (meta,) = [
        m.metadata for m in result.asset_materializations_for_node("raw_events") if m.asset_key.path == ["raw_events"]
    ]
    assert (meta["kept"].value, meta["files_ingested"].value, meta["files_not_ingested"].value) == (10, 1, 3)
    assert meta["bookkeeping_files"].value == 1
    assert meta["not_ingested"].value == {
        "hour=1/b.JSONL": f"not listed in {MARKER}",
        "late.jsonl.gz": f"not listed in {MARKER}",
        "manifest.csv": f"not listed in {MARKER}",
    }
    check = {e.check_name: e for e in result.get_asset_check_evaluations()}[CHECK]
    assert check.passed is False and check.severity == dg.AssetCheckSeverity.WARN
    assert "2 files that look like data not ingested: hour=1/b.JSONL (not listed in _SUCCESS)" in check.description
    assert check.metadata["data_files_left_out"].value == 2

    land(landing, {"a.jsonl.gz": lines(0, 10), **strays})  # the producer's marker now names them all
    result = materialize(storage, landing)
    check = {e.check_name: e for e in result.get_asset_check_evaluations()}[CHECK]
    assert check.passed and check.description == "all 3 data files ingested"
    assert TableStore.at(storage).read("raw_events", [DAY]).num_rows == 17


def test_a_json_marker_listing_no_file_beside_data_fails_the_run(tmp_path: Path) -> None:
    landing, storage = tmp_path / "landing", (tmp_path / "storage").as_uri()
    land(landing, {"a.jsonl.gz": lines(0, 500), "b.jsonl.gz": lines(500, 500), MARKER: b'{"files": {}}'}, marker=None)
    result = materialize(storage, landing.as_uri())
    assert not result.success
    error = str(result.failure_data_for_node("raw_events").error)
    assert "ingests no file, yet holds 2 that look like data: a.jsonl.gz (not listed in _SUCCESS), b.jsonl.gz" in error
    assert TableStore.at(storage).dates("raw_events") == []


def test_a_day_of_files_named_unlike_data_fails_the_run(tmp_path: Path) -> None:
    landing, storage = tmp_path / "landing", (tmp_path / "storage").as_uri()
    land(landing, {"a.ndjson": lines(0, 5), "b.jsonl.bz2": b"BZh9"}, marker="empty")
    result = materialize(storage, landing.as_uri())
    assert not result.success
    assert "a.ndjson (not named *.jsonl.gz, *.json.gz, *.jsonl or *.json)" in str(
        result.failure_data_for_node("raw_events").error
    )

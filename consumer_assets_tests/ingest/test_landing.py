"""Landing days as different producers deliver them: marker kinds, folder layouts, no marker and a quiet period."""

from __future__ import annotations

import datetime as dt
import gzip
import os
from pathlib import Path

import pytest

from consumer_assets.automation.sensors import landing_requests
from consumer_assets.events.landing import DATED_FOLDERS, MARKER, day_folder
from consumer_assets.ingest.delivery import completed_at
from consumer_assets.ingest.ingest import ingest_day
from consumer_assets.ingest.landing import LandingDayError, LandingRules, open_day
from consumer_assets.partitions import last_partition_key
from consumer_assets.resources.landing import LandingZone
from consumer_assets_tests.support.factories import DAY, event, land, line

QUIET = LandingRules(require_marker=False, quiet_minutes=30)
AFTER_DAY = dt.datetime(2026, 3, 5, 6, 0, tzinfo=dt.UTC)  # the morning after DAY


NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)  # pinned: the partitions' last day is 06-14


def lines(*numbers: int) -> list[bytes]:
    return [line(event(n)) for n in numbers]


def hadoop_day() -> dict[str, list[bytes] | bytes]:
    """What a Spark or Hadoop job leaves: part files in hour folders, an empty marker and its bookkeeping."""
    return {
        "hour=9/part-00000.jsonl.gz": lines(0, 1),
        "hour=13/part-00000.json.gz": lines(2),
        "hour=13/part-00001.jsonl": lines(3, 4),  # uncompressed
        "hour=23/part-00000.json": [],  # a file of zero lines
        "hour=23/part-00001.jsonl.gz": b"",  # an empty object, not even a gzip header
        "hour=13/_temporary/0/part-00002.jsonl.gz": lines(90),  # a task attempt that never committed
        "hour=13/.part-00001.jsonl.crc": b"\x00crc",
        "_committed_123": b"{}",
        "manifest.csv": b"file,rows\n",
        "README.txt": b"not data",
    }


def test_an_empty_marker_means_every_data_file_at_any_depth(tmp_path: Path) -> None:
    uri = land(tmp_path, hadoop_day(), marker="empty")
    landed = open_day(uri, DAY)
    # Hour folders in time order (9 before 13), bookkeeping and other names left out.
    assert [f.name for f in landed.files] == [
        "hour=9/part-00000.jsonl.gz",
        "hour=13/part-00000.json.gz",
        "hour=13/part-00001.jsonl",
        "hour=23/part-00000.json",
        "hour=23/part-00001.jsonl.gz",
    ]
    assert landed.marker == "empty" and "manifest.csv" in {s.name for s in landed.skipped}
    day = ingest_day(uri, DAY)
    assert sorted(day.events["event_id"].to_pylist()) == [f"{n:016x}" for n in range(5)]
    assert day.quarantine.num_rows == 0


def test_year_month_day_folders(tmp_path: Path) -> None:
    uri = land(tmp_path, {"13/events.jsonl.gz": lines(1, 2), "14/events.jsonl.gz": lines(3)}, layout=DATED_FOLDERS)
    assert (tmp_path / "2026" / "03" / "04" / MARKER).is_file()
    day = ingest_day(uri, DAY, rules=LandingRules(layout=DATED_FOLDERS))
    assert day.events.num_rows == 3
    with pytest.raises(LandingDayError, match=r"landing day 2026-03-04 is missing: no folder .*/date=2026-03-04"):
        ingest_day(uri, DAY)  # the default layout looks elsewhere
    with pytest.raises(ValueError, match=r"unknown landing folder layout 'YYYYMMDD'; expected one of"):
        LandingRules(layout="YYYYMMDD")


def test_a_json_marker_still_lists_and_counts_the_files(tmp_path: Path) -> None:
    uri = land(tmp_path, {"hour=13/a.jsonl.gz": lines(1, 2), "b.jsonl": lines(3), "stray.jsonl": b"{}\n"})
    landed = open_day(uri, DAY)
    assert [f.name for f in landed.files] == ["b.jsonl", "hour=13/a.jsonl.gz"] and landed.marker == "json"
    assert "stray.jsonl" in {s.name for s in landed.skipped}  # delivered but not listed: not part of the day
    assert ingest_day(uri, DAY).events.num_rows == 3
    (tmp_path / day_folder(DAY) / "b.jsonl").write_bytes(b"\n".join(lines(3, 4)) + b"\n")
    with pytest.raises(LandingDayError, match=r"date=2026-03-04/b.jsonl holds 2 lines but _SUCCESS promises 1"):
        ingest_day(uri, DAY)
    (tmp_path / day_folder(DAY) / MARKER).write_text("not json")
    with pytest.raises(LandingDayError, match=r"date=2026-03-04/_SUCCESS is neither empty nor valid JSON"):
        open_day(uri, DAY)
    (tmp_path / day_folder(DAY) / MARKER).write_text('{"files": {"_temporary/x.jsonl": 1}}')
    with pytest.raises(LandingDayError, match=r"lists .*_temporary/x.jsonl, which is missing"):
        open_day(uri, DAY)


def test_a_broken_gzip_file_names_its_path(tmp_path: Path) -> None:
    uri = land(tmp_path, {"a.jsonl.gz": gzip.compress(b"\n".join(lines(1, 2)))[:-12]}, marker="empty")
    with pytest.raises(LandingDayError, match=r"date=2026-03-04/a.jsonl.gz cannot be read as gzip-compressed text"):
        ingest_day(uri, DAY)


def _age(where: Path, until: dt.datetime) -> None:
    """Set the mtime of a file, or of every file in a folder, to `until`: as if the producer stopped then."""
    for path in [where] if where.is_file() else where.rglob("*"):
        os.utime(path, ns=(path.stat().st_atime_ns, int(until.timestamp() * 1e9)))


def test_without_a_marker_a_day_is_complete_after_a_quiet_period(tmp_path: Path) -> None:
    uri = land(tmp_path, {"hour=22/a.jsonl.gz": lines(1), "hour=23/b.jsonl.gz": lines(2)}, marker=None)
    folder = tmp_path / day_folder(DAY)
    _age(folder, dt.datetime(2026, 3, 5, 0, 10, tzinfo=dt.UTC))
    with pytest.raises(LandingDayError, match=r"date=2026-03-04 has no _SUCCESS marker yet"):
        open_day(uri, DAY)  # a marker is required unless the rules say otherwise
    early = dt.datetime(2026, 3, 5, 0, 20, tzinfo=dt.UTC)
    with pytest.raises(LandingDayError, match=r"complete only 30 minutes after it ends, at 2026-03-05T00:30Z"):
        open_day(uri, DAY, QUIET, now=early)
    with pytest.raises(LandingDayError, match=r"hour=23/b.jsonl.gz was modified at 2026-03-05T00:10:00Z, less than 30"):
        open_day(uri, DAY, QUIET, now=dt.datetime(2026, 3, 5, 0, 35, tzinfo=dt.UTC))
    assert completed_at(uri, DAY, QUIET, now=dt.datetime(2026, 3, 5, 0, 35, tzinfo=dt.UTC)) is None
    day = ingest_day(uri, DAY, rules=QUIET, now=AFTER_DAY)
    assert day.events.num_rows == 2
    first = completed_at(uri, DAY, QUIET, now=AFTER_DAY)
    # A late file (the producer re-delivers) restarts the quiet period and changes the completion time.
    land(tmp_path, {"hour=23/c.jsonl.gz": lines(3)}, marker=None)
    _age(folder / "hour=23" / "c.jsonl.gz", dt.datetime(2026, 3, 5, 5, 50, tzinfo=dt.UTC))
    assert completed_at(uri, DAY, QUIET, now=AFTER_DAY) is None
    later = AFTER_DAY + dt.timedelta(minutes=30)
    assert completed_at(uri, DAY, QUIET, now=later) > first
    assert ingest_day(uri, DAY, rules=QUIET, now=later).events.num_rows == 3


def test_without_a_marker_a_task_still_writing_keeps_the_day_open(tmp_path: Path) -> None:
    uri = land(tmp_path, {"a.jsonl.gz": lines(1), "_temporary/attempt/b.jsonl.gz": lines(2)}, marker=None)
    folder = tmp_path / day_folder(DAY)
    _age(folder, dt.datetime(2026, 3, 5, 0, 0, tzinfo=dt.UTC))
    _age(folder / "_temporary", AFTER_DAY - dt.timedelta(minutes=5))
    with pytest.raises(LandingDayError, match=r"_temporary/attempt/b.jsonl.gz was modified at"):
        open_day(uri, DAY, QUIET, now=AFTER_DAY)


def test_a_marker_completes_a_day_even_when_none_is_required(tmp_path: Path) -> None:
    uri = land(tmp_path, {"a.jsonl.gz": lines(1)}, marker="empty")
    landed = open_day(uri, DAY, QUIET, now=dt.datetime(2026, 3, 4, 12, tzinfo=dt.UTC))  # before the day ended
    assert landed.marker == "empty"
    assert landed.completed_at == (tmp_path / day_folder(DAY) / MARKER).stat().st_mtime_ns


@pytest.mark.slow
def test_on_s3_an_empty_marker_dated_folders_and_no_marker(s3_root: str) -> None:
    landing = f"{s3_root}/landing"
    land(landing, hadoop_day(), marker="empty", layout=DATED_FOLDERS)
    rules = LandingRules(layout=DATED_FOLDERS)
    day = ingest_day(landing, DAY, rules=rules)
    assert sorted(day.events["event_id"].to_pylist()) == [f"{n:016x}" for n in range(5)]
    zone = LandingZone(uri=landing, layout=DATED_FOLDERS)
    assert zone.day_uri(DAY) == f"{landing}/2026/03/04" and zone.completed_at(DAY) is not None

    other = DAY + dt.timedelta(days=1)
    land(landing, {"hour=01/a.jsonl.gz": [line(event(7, ts=f"{other}T01:00:00Z"))]}, day=other, marker=None)
    quiet = LandingRules(require_marker=False, quiet_minutes=30)
    with pytest.raises(LandingDayError, match=rf"{landing}/{day_folder(other)} has no _SUCCESS marker and .*hour=01/a"):
        open_day(landing, other, quiet, now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=29))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=31)
    assert ingest_day(landing, other, rules=quiet, now=later).events.num_rows == 1
    assert completed_at(landing, other, quiet, now=later) is not None


def _sensor_keys(zone: LandingZone) -> dict[str, str]:
    result = landing_requests(zone, NOW)
    return {r.partition_key: r.run_key for r in result.run_requests or []}


def test_the_sensor_sees_dated_folders_and_empty_markers(tmp_path: Path) -> None:
    last = dt.date.fromisoformat(last_partition_key(NOW))
    land(tmp_path, {"a.jsonl.gz": lines(1)}, day=last, marker="empty", layout=DATED_FOLDERS)
    land(tmp_path, {"a.jsonl.gz": lines(2)}, day=last - dt.timedelta(days=1), layout=DATED_FOLDERS, marker=None)
    keys = _sensor_keys(LandingZone(uri=tmp_path.as_uri(), layout=DATED_FOLDERS))
    assert list(keys) == [str(last)]
    assert not _sensor_keys(LandingZone(uri=tmp_path.as_uri()))  # nothing under date=... folders


def test_the_sensor_without_markers_waits_for_quiet_and_sees_redelivery(tmp_path: Path) -> None:
    last = dt.date.fromisoformat(last_partition_key(NOW))
    done, busy = last - dt.timedelta(days=2), last - dt.timedelta(days=1)
    for day in (done, busy):
        land(tmp_path, {"a.jsonl.gz": [line(event(1, ts=f"{day}T01:00:00Z"))]}, day=day, marker=None)
    _age(tmp_path / day_folder(done), dt.datetime.combine(busy, dt.time(1), tzinfo=dt.UTC))
    zone = LandingZone(uri=tmp_path.as_uri(), require_marker=False, quiet_minutes=60)
    keys = _sensor_keys(zone)
    assert list(keys) == [str(done)]  # `busy` was written just now: not quiet yet
    _age(tmp_path / day_folder(done), dt.datetime.combine(busy, dt.time(2), tzinfo=dt.UTC))  # re-delivered
    assert _sensor_keys(zone)[str(done)] != keys[str(done)]


def test_the_resource_config_maps_onto_the_rules(tmp_path: Path) -> None:
    zone = LandingZone(uri=tmp_path.as_uri(), layout=DATED_FOLDERS, require_marker=False, quiet_minutes=5)
    assert zone.rules() == LandingRules(DATED_FOLDERS, require_marker=False, quiet_minutes=5)
    assert zone.day_uri(DAY).endswith("/2026/03/04")
    with pytest.raises(ValueError, match="layout"):
        LandingZone(uri=tmp_path.as_uri(), layout="YYYYMMDD")

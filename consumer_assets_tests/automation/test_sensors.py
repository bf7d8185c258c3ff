"""The landing sensor: one run request per complete landing day and delivery, against a pinned clock."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import dagster as dg

from consumer_assets.automation.sensors import landing_requests, landing_sensor
from consumer_assets.partitions import last_partition_key
from consumer_assets.resources.landing import LandingZone
from consumer_assets.windows import LANDING_LOOKBACK
from consumer_assets_tests.support.factories import event, land, line

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)  # pinned: the partitions' last day is 06-14


def test_landing_sensor_requests_each_complete_recent_day_once(tmp_path: Path) -> None:
    last = dt.date.fromisoformat(last_partition_key(NOW))
    complete = [last, last - dt.timedelta(days=2)]
    for day in complete:
        land(tmp_path, {"e.jsonl.gz": [line(event(1, ts=f"{day}T01:00:00Z"))]}, day=day)
    land(tmp_path, {"e.jsonl.gz": [line(event(2))]}, day=last - dt.timedelta(days=1), marker=False)
    land(tmp_path, {"e.jsonl.gz": [line(event(3))]}, day=last - dt.timedelta(days=len(LANDING_LOOKBACK) + 1))

    zone = LandingZone(uri=tmp_path.as_uri())
    # The same clock for the test and the sensor's partitions, so the test holds across midnight.
    result = landing_requests(zone, NOW)
    requests = {r.partition_key: r.run_key for r in result.run_requests}
    assert sorted(requests) == sorted(str(day) for day in complete)
    assert all(key.startswith(f"landed-{day}-") for day, key in requests.items())

    # The same days again: the same run keys, so Dagster runs nothing twice ...
    again = landing_requests(zone, NOW)
    assert {r.partition_key: r.run_key for r in again.run_requests} == requests
    # ... until the shop delivers a day anew, with a new marker.
    marker = tmp_path / f"date={last}" / "_SUCCESS"
    os.utime(marker, ns=(marker.stat().st_atime_ns, marker.stat().st_mtime_ns + 1_000_000_000))
    redelivered = {r.partition_key: r.run_key for r in landing_requests(zone, NOW).run_requests}
    assert redelivered[str(last)] != requests[str(last)]
    assert redelivered[str(complete[1])] == requests[str(complete[1])]


def test_landing_sensor_skips_when_nothing_landed(tmp_path: Path) -> None:
    context = dg.build_sensor_context(resources={"landing": LandingZone(uri=tmp_path.as_uri())})
    result = landing_sensor(context)
    assert not result.run_requests and "no complete landing day" in result.skip_reason.skip_message


def test_a_file_arriving_after_the_marker_is_a_new_delivery(tmp_path: Path) -> None:
    last = dt.date.fromisoformat(last_partition_key(NOW))
    land(tmp_path, {"_SUCCESS": b'{"files": {}}'}, day=last, marker=None)  # an empty day, so far
    zone = LandingZone(uri=tmp_path.as_uri())
    first = {r.partition_key: r.run_key for r in landing_requests(zone, NOW).run_requests}
    assert list(first) == [str(last)]
    assert {r.partition_key: r.run_key for r in landing_requests(zone, NOW).run_requests} == first
    # The marker stays as it was; the file is new, so is the run key (and the run fails, naming it).
    land(tmp_path, {"late.jsonl.gz": [line(event(1, ts=f"{last}T01:00:00Z"))]}, day=last, marker=None)
    second = {r.partition_key: r.run_key for r in landing_requests(zone, NOW).run_requests}
    assert second[str(last)] != first[str(last)]
    # A file rewritten in place, same name and size, is another delivery too.
    late = tmp_path / f"date={last}" / "late.jsonl.gz"
    os.utime(late, ns=(late.stat().st_atime_ns, late.stat().st_mtime_ns + 1_000_000_000))
    assert {r.partition_key: r.run_key for r in landing_requests(zone, NOW).run_requests} != second

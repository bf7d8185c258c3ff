"""Faults a production run meets: the S3 endpoint down, and the process killed mid-materialization."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pyarrow.compute as pc
import pytest

from consumer_assets.assets.raw_events import raw_events
from consumer_assets.automation.jobs import RANGE_END, RANGE_START
from consumer_assets.resources.landing import LandingZone
from consumer_assets.resources.storage import storage_resources
from consumer_assets.simulation import simulate_to_landing
from consumer_assets.storage.tables import TableStore
from consumer_assets_tests.support.services import free_port, wait_until

pytestmark = pytest.mark.slow
DAY = dt.date(2026, 4, 2)


def resources(storage: str, landing: str) -> dict:
    return {**storage_resources(storage), "landing": LandingZone(uri=landing, workers=1)}


def test_s3_down_is_retried_with_backoff_then_fails_clearly_leaving_the_partition(
    s3_root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = (tmp_path / "landing").as_uri()
    (first,) = simulate_to_landing(landing, DAY, 1, profiles=300, seed=1)
    assert dg.materialize([raw_events], resources=resources(s3_root, landing), partition_key=str(DAY)).success
    store = TableStore.at(s3_root)
    version, rows = store.version("raw_events"), store.read("raw_events", [DAY]).num_rows

    simulate_to_landing_again = list(simulate_to_landing(landing, DAY, 1, profiles=400, seed=2))
    assert simulate_to_landing_again[0].records != first.records
    with monkeypatch.context() as down:
        down.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
        failed = dg.materialize(
            [raw_events], resources=resources(s3_root, landing), partition_key=str(DAY), raise_on_error=False
        )
    assert not failed.success
    retried = [e for e in failed.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert len(retried) == 3  # the asset's retry policy, with its backoff, before giving up
    error = str(failed.failure_data_for_node("raw_events").error)
    assert "127.0.0.1" in error and ("S3" in error or "s3" in error)
    # The endpoint back: the previous version is still the current one, whole.
    assert store.version("raw_events") == version and store.read("raw_events", [DAY]).num_rows == rows


RUN = textwrap.dedent(
    """
    import sys
    import dagster as dg
    from consumer_assets.assets.raw_events import raw_events
    from consumer_assets.resources.landing import LandingZone
    from consumer_assets.resources.storage import storage_resources

    storage, landing, first, last = sys.argv[1:5]
    dg.materialize(
        [raw_events],
        resources={**storage_resources(storage), "landing": LandingZone(uri=landing, workers=1)},
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )
    """
)


def test_a_run_killed_mid_materialization_reruns_to_success_with_nothing_duplicated(tmp_path: Path) -> None:
    landing, storage = (tmp_path / "landing").as_uri(), (tmp_path / "storage").as_uri()
    days = [DAY + dt.timedelta(days=n) for n in range(4)]
    landed = {s.date: s for s in simulate_to_landing(landing, DAY, len(days), profiles=3000, seed=4, corrupt=0.01)}
    script = tmp_path / "run.py"
    script.write_text(RUN)
    folder = tmp_path / "storage" / "raw_events" / f"date={days[0]}"
    run = subprocess.Popen([sys.executable, str(script), storage, landing, str(days[0]), str(days[-1])])
    # Killed once the first day's files are written, while later days are still being ingested.
    wait_until(lambda: folder.exists() and any(folder.rglob("*.parquet")), 180, "the run to write its first files")
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    store = TableStore.at(storage)
    assert store.dates("raw_events") == []  # nothing of the killed run is visible

    rerun = dg.materialize(
        [raw_events],
        resources=resources(storage, landing),
        tags={RANGE_START: str(days[0]), RANGE_END: str(days[-1])},
    )
    assert rerun.success
    for day in days:
        kept = store.read("raw_events", [day])
        quarantined = store.read("raw_events_quarantine", [day])
        assert kept.num_rows + quarantined.num_rows == landed[day].records
        assert pc.count_distinct(kept["event_id"]).as_py() == kept.num_rows  # nothing kept twice

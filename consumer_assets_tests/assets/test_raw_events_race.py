"""Two real Dagster runs of one raw_events day racing: the loser changes nothing any reader sees."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from deltalake import DeltaTable

from consumer_assets.assets.raw_events import raw_events
from consumer_assets.storage.tables import Commit, TableStore
from consumer_assets.storage.writes import TableWrite
from consumer_assets_tests.assets.test_raw_events import land_day, resources

DAY = dt.date(2026, 3, 4)
WAIT_S = 180  # a safety net for a broken hook: the order of events is set by the events below, never by time


def test_the_loser_of_two_racing_runs_changes_nothing_readers_see(
    storage_root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / "landing"
    land_day(landing, DAY, n=300, bad=4)  # the delivery the first run ingests
    winner_quarantined, loser_quarantined, winner_done = threading.Event(), threading.Event(), threading.Event()
    commit = TableWrite.commit

    def paused_commit(self: TableWrite, dates: Sequence[dt.date | str], *args: Any, **kwargs: Any) -> Commit:
        done = commit(self, dates, *args, **kwargs)
        if self.table == "raw_events_quarantine":  # the pause between a run's two commits
            runner = threading.current_thread().name
            if runner == "winner":
                winner_quarantined.set()
                assert loser_quarantined.wait(WAIT_S), "the second run never committed its quarantine"
            elif runner == "loser":
                loser_quarantined.set()
                assert winner_done.wait(WAIT_S), "the first run never finished"
        return done

    monkeypatch.setattr(TableWrite, "commit", paused_commit)
    results: dict[str, dg.ExecuteInProcessResult] = {}
    instances = {name: dg.DagsterInstance.ephemeral() for name in ("winner", "loser")}

    def run(name: str) -> None:
        results[name] = dg.materialize(
            [raw_events],
            instance=instances[name],
            resources=resources(storage_root, landing.as_uri()),
            partition_key=str(DAY),
            raise_on_error=False,
        )

    winner = threading.Thread(target=run, args=("winner",), name="winner")
    loser = threading.Thread(target=run, args=("loser",), name="loser")
    winner.start()
    assert winner_quarantined.wait(WAIT_S)
    # The shop re-delivers the day while the first run sits between its commits: the second run
    # ingests the new delivery, commits its quarantine, and pauses before its raw_events commit.
    land_day(landing, DAY, n=250, bad=10)
    loser.start()
    winner.join()  # meanwhile the first run committed raw_events and finished
    winner_done.set()
    loser.join()

    won, lost = results["winner"], results["loser"]
    assert won.success and not lost.success
    assert "ConcurrentWriteError" in str(lost.failure_data_for_node("raw_events").error)
    # What the loser's run recorded (the result object leaves out what a failed step logged).
    recorded = instances["loser"].all_logs(lost.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    assert recorded == []  # neither raw_events nor its quarantine
    assert instances["winner"].all_logs(won.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)

    store = TableStore.at(storage_root)
    meta = {m.asset_key.path[-1]: m.metadata for m in won.asset_materializations_for_node("raw_events")}
    landed, kept, quarantined = (meta["raw_events"][k].value for k in ("landed", "kept", "quarantined"))
    assert (landed, kept, quarantined) == (304, 300, 4)
    # The losing run's quarantine is the table's newest version ...
    newest = store.read("raw_events_quarantine", [DAY], version=store.version("raw_events_quarantine"))
    assert newest.num_rows == 10
    # ... yet every reader gets the pair of record: the winner's events and its quarantine.
    assert store.read("raw_events", [DAY]).num_rows == kept
    assert store.read("raw_events_quarantine", [DAY]).num_rows == quarantined
    assert store.dates("raw_events_quarantine") == [str(DAY)]
    assert external_quarantine(store, str(DAY)).num_rows == quarantined
    assert meta["raw_events_quarantine"]["table_version"].value == meta["raw_events"]["quarantine_version"].value


def external_quarantine(store: TableStore, day: str) -> Any:
    """The quarantine of a day as README tells readers without this code to find it (deltalake only)."""
    options: Mapping[str, str] = store.location.storage_options()
    raw = DeltaTable(store.uri("raw_events"), storage_options=options)
    quarantine = DeltaTable(store.uri("raw_events_quarantine"), storage_options=options)
    app = f"raw_events_quarantine/date={day}"
    if quarantine.transaction_version(app) != raw.transaction_version(app):
        quarantine.load_as_version(raw.transaction_version(f"{app}/version"))
    return quarantine.to_pyarrow_table(filters=[("date", "=", dt.date.fromisoformat(day))])

"""raw_events through real Dagster runs, on local disk and on the S3 server: outputs, metadata, checks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pyarrow.compute as pc

from consumer_assets.assets.raw_events import RawEventsConfig, raw_events
from consumer_assets.automation.jobs import RANGE_END, RANGE_START
from consumer_assets.events.bucketing import NUM_PROFILE_BUCKETS
from consumer_assets.events.schema import QUARANTINE_SCHEMA, RAW_EVENTS_SCHEMA
from consumer_assets.resources.landing import LandingZone
from consumer_assets.resources.storage import storage_resources
from consumer_assets.simulation import simulate_to_landing
from consumer_assets.storage.tables import TableStore
from consumer_assets_tests.support.factories import event, land, line


def resources(storage: str, landing: str) -> dict:
    return {**storage_resources(storage), "landing": LandingZone(uri=landing, workers=1)}


def read(store: TableStore, table: str, day: dt.date):
    """The rows of one committed day, without the partition columns (they live in the paths)."""
    return store.read(table, [day]).drop_columns(["date", "profile_bucket"][: 2 if table == "raw_events" else 1])


def land_day(root: Path, day: dt.date, n: int, bad: int = 0) -> None:
    ts = f"{day}T12:00:00.000Z"
    good = [line(event(day.toordinal() * 10_000 + i, ts=ts, profile_id=f"p{i % 13}")) for i in range(n)]
    land(root, {"events-0000.jsonl.gz": good + [b"{not json"] * bad}, day=day)


def evaluations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_one_day_on_both_storages(storage_root: str, tmp_path: Path) -> None:
    day = dt.date(2026, 3, 4)
    land_day(tmp_path / "landing", day, n=300, bad=4)
    result = dg.materialize(
        [raw_events], resources=resources(storage_root, (tmp_path / "landing").as_uri()), partition_key=str(day)
    )
    assert result.success

    store = TableStore.at(storage_root)
    events = read(store, "raw_events", day)
    assert events.num_rows == 300 and events.schema == RAW_EVENTS_SCHEMA
    assert len(store.files("raw_events", [day])) == NUM_PROFILE_BUCKETS
    quarantine = read(store, "raw_events_quarantine", day)
    assert quarantine.schema == QUARANTINE_SCHEMA
    assert quarantine["reason"].to_pylist() == ["invalid_json"] * 4

    by_asset = {m.asset_key.path[-1]: m.metadata for m in result.asset_materializations_for_node("raw_events")}
    meta = by_asset["raw_events"]
    assert (meta["landed"].value, meta["kept"].value, meta["quarantined"].value) == (304, 300, 4)
    assert meta["profiles"].value == 13 and meta["event_type_counts"].value == {"product_view": 300}
    assert meta["dagster/row_count"].value == 300 and meta["stored_files"].value == NUM_PROFILE_BUCKETS
    # raw_events' commit names the quarantine version it goes with.
    assert meta["quarantine_version"].value == store.version("raw_events_quarantine")
    assert store.history("raw_events")[0]["consumer_assets"]["quarantine_version"] == meta["quarantine_version"].value
    assert by_asset["raw_events_quarantine"]["reason_invalid_json"].value == 4

    checks = evaluations(result)
    assert set(checks) == {
        "row_count_vs_trailing_days",
        "quarantined_share",
        "event_type_mix",
        "landed_files_all_ingested",
    }
    assert all(c.severity == dg.AssetCheckSeverity.WARN for c in checks.values())
    assert checks["quarantined_share"].passed is False  # 4/304 is above the 1% limit
    assert checks["row_count_vs_trailing_days"].passed  # nothing to compare with yet


def test_range_as_one_run_and_checks_against_trailing_days(tmp_path: Path) -> None:
    landing, storage = tmp_path / "landing", (tmp_path / "storage").as_uri()
    days = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(5)]
    for day in days[:4]:
        land_day(landing, day, n=200, bad=10 if day == days[1] else 0)  # the second day: 10/210 quarantined
    land_day(landing, days[4], n=40)  # a collapse in volume on the last day
    instance = dg.DagsterInstance.ephemeral()
    job = dg.Definitions(
        assets=[raw_events],
        jobs=[dg.define_asset_job("all")],
        resources=resources(storage, landing.as_uri()),
    ).resolve_job_def("all")

    first = job.execute_in_process(instance=instance, tags={RANGE_START: str(days[0]), RANGE_END: str(days[3])})
    assert first.success and len(first.get_asset_materialization_events()) == 2 * 4
    # Each day's own result, with its partition (what the UI shows on that day), and one summary per check.
    logged = [
        e.event_specific_data for e in first.all_events if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    per_day = {(e.check_name, e.partition): e for e in logged if e.partition is not None}
    assert set(per_day) == {(name, str(d)) for name in evaluations(first) for d in days[:4]}
    assert len(per_day) == len([e for e in logged if e.partition is not None])  # one each, no repeats
    share = {day: e.passed for (name, day), e in per_day.items() if name == "quarantined_share"}
    assert share == {str(d): d != days[1] for d in days[:4]}
    assert per_day[("quarantined_share", str(days[1]))].metadata["partition"].value == str(days[1])
    # Each day's result targets that day's materialization of the run: without it the day's check
    # status is not current, and the UI lists the day as missing.
    latest = {
        str(d): instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("raw_events"), asset_partitions=[str(d)]), limit=1
        ).records[0]
        for d in days[:4]
    }
    for (_, day), evaluation in per_day.items():
        target = evaluation.target_materialization_data
        assert target is not None and (target.storage_id, target.run_id) == (latest[day].storage_id, first.run_id)
    summary = evaluations(first)["quarantined_share"]
    assert summary.passed is False and f"failing: {days[1]}" in (summary.description or "")
    assert evaluations(first)["row_count_vs_trailing_days"].passed
    store = TableStore.at(storage)
    assert store.dates("raw_events") == [str(d) for d in days[:4]]
    kept = {m.partition: m.metadata["kept"].value for m in _materializations(first, "raw_events")}
    assert kept == {str(d): 200 for d in days[:4]}
    # Each day's line says how far the range is (days done, rows landed, rate).
    said = [e.user_message for e in instance.all_logs(first.run_id) if "days done" in e.user_message]
    assert said[1].startswith(f"{days[1]}: kept 200 of 210 landed records (ingestion: 2/4 days done, 410 rows, ")

    # A later single-day run compares with the trailing days recorded by the earlier run.
    last = job.execute_in_process(instance=instance, partition_key=str(days[4]))
    check = evaluations(last)["row_count_vs_trailing_days"]
    assert check.passed is False and check.metadata["trailing_median"].value == 200.0
    assert check.metadata["trailing_days"].value == 4


def test_missing_landing_day_fails_and_writes_nothing(tmp_path: Path) -> None:
    storage = (tmp_path / "storage").as_uri()
    result = dg.materialize(
        [raw_events],
        resources=resources(storage, (tmp_path / "landing").as_uri()),
        partition_key="2026-03-04",
        raise_on_error=False,
    )
    assert not result.success
    failure = result.failure_data_for_node("raw_events")
    assert "landing day 2026-03-04 is missing" in str(failure.error) and "landing/date=2026-03-04" in str(failure.error)
    assert TableStore.at(storage).dates("raw_events") == []


def test_rematerializing_replaces_the_partition(tmp_path: Path) -> None:
    landing, storage = tmp_path / "landing", (tmp_path / "storage").as_uri()
    day = dt.date(2026, 3, 4)
    land_day(landing, day, n=50)
    dg.materialize([raw_events], resources=resources(storage, landing.as_uri()), partition_key=str(day))
    land_day(landing, day, n=70)  # the shop re-delivered the day
    dg.materialize([raw_events], resources=resources(storage, landing.as_uri()), partition_key=str(day))
    store = TableStore.at(storage)
    assert store.read("raw_events", [day]).num_rows == 70
    assert len(store.files("raw_events", [day])) == NUM_PROFILE_BUCKETS
    # The first delivery stays readable as the previous version until vacuumed.
    assert store.read("raw_events", [day], version=store.version("raw_events") - 1).num_rows == 50


def _materializations(result: dg.ExecuteInProcessResult, asset: str) -> list[dg.AssetMaterialization]:
    return [m for m in result.asset_materializations_for_node("raw_events") if m.asset_key == dg.AssetKey(asset)]


def test_quarantine_share_passes_below_the_limit(tmp_path: Path) -> None:
    day = dt.date(2026, 3, 4)
    land_day(tmp_path / "landing", day, n=300, bad=2)  # 0.66% of the landed records
    result = dg.materialize(
        [raw_events],
        resources=resources((tmp_path / "s").as_uri(), (tmp_path / "landing").as_uri()),
        partition_key=str(day),
    )
    assert evaluations(result)["quarantined_share"].passed


# What each kind of corruption the simulator injects must be quarantined as.
REASON_OF_KIND = {
    "truncated": "invalid_json",
    "invalid_json": "invalid_json",
    "missing_field": "missing_field",
    "wrong_type": "wrong_type",
    "unknown_event_type": "unknown_event_type",
    "invalid_timestamp": "invalid_timestamp",
    "timestamp_outside_day": "timestamp_outside_day",
    "duplicate": "duplicate_event_id",
    "invalid_utf8": "invalid_utf8",
}


def test_corrupt_corpus_reconciles_exactly(storage_root: str) -> None:
    # Landing zone and storage both on the flavour under test: a local folder, or S3 prefixes.
    day, landing, storage_root = dt.date(2026, 3, 4), f"{storage_root}/landing", f"{storage_root}/storage"
    (summary,) = simulate_to_landing(landing, day, 1, profiles=3000, seed=11, corrupt=0.05)
    result = dg.materialize([raw_events], resources=resources(storage_root, landing), partition_key=str(day))
    assert result.success

    expected: dict[str, int] = {}
    for kind, count in summary.corruptions.items():
        expected[REASON_OF_KIND[kind]] = expected.get(REASON_OF_KIND[kind], 0) + count
    expected = {reason: n for reason, n in expected.items() if n}
    assert set(summary.corruptions) == set(REASON_OF_KIND)
    assert sum(expected.values()) > 50  # the corpus really is dirty

    store = TableStore.at(storage_root)
    kept = read(store, "raw_events", day)
    quarantine = read(store, "raw_events_quarantine", day)
    got = {row["values"]: row["counts"] for row in pc.value_counts(quarantine["reason"]).to_pylist()}
    assert got == expected
    assert kept.num_rows + quarantine.num_rows == summary.records
    assert kept.num_rows == summary.records - sum(summary.corruptions.values())
    assert pc.count_distinct(kept["event_id"]).as_py() == kept.num_rows
    meta = {m.asset_key.path[-1]: m.metadata for m in result.asset_materializations_for_node("raw_events")}
    assert meta["raw_events_quarantine"]["reason_duplicate_event_id"].value == summary.corruptions["duplicate"]
    assert evaluations(result)["quarantined_share"].passed is False  # 5% corrupt is far above the 1% limit


def test_a_range_with_a_missing_day_writes_no_day(tmp_path: Path) -> None:
    landing, storage = tmp_path / "landing", (tmp_path / "storage").as_uri()
    land_day(landing, dt.date(2026, 3, 1), n=20)
    land_day(landing, dt.date(2026, 3, 3), n=20)  # 03-02 never landed
    result = dg.materialize(
        [raw_events],
        resources=resources(storage, landing.as_uri()),
        tags={RANGE_START: "2026-03-01", RANGE_END: "2026-03-03"},
        raise_on_error=False,
    )
    assert not result.success
    assert "landing day 2026-03-02 is missing" in str(result.failure_data_for_node("raw_events").error)
    store = TableStore.at(storage)
    assert store.dates("raw_events") == [] and store.dates("raw_events_quarantine") == []


def test_a_range_that_fails_midway_commits_no_day_of_either_table(storage_root: str, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    days = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(3)]
    for day in days:
        land_day(landing, day, n=30, bad=1)
    store = TableStore.at(storage_root)
    first = dg.materialize(
        [raw_events], resources=resources(storage_root, landing.as_uri()), partition_key=str(days[0])
    )
    assert first.success
    versions = (store.version("raw_events"), store.version("raw_events_quarantine"))
    for day in days:
        land_day(landing, day, n=40)
    # The last day's marker promises more lines than its file holds: found only when that day is read,
    # after the first two days' files were written.
    marker = landing / f"date={days[2]}" / "_SUCCESS"
    marker.write_text(marker.read_text().replace('"records": 40', '"records": 41').replace(": 40}", ": 41}"))
    failed = dg.materialize(
        [raw_events],
        resources=resources(storage_root, landing.as_uri()),
        tags={RANGE_START: str(days[0]), RANGE_END: str(days[2])},
        raise_on_error=False,
    )
    assert not failed.success
    assert "holds 40 lines but _SUCCESS promises 41" in str(failed.failure_data_for_node("raw_events").error)
    assert (store.version("raw_events"), store.version("raw_events_quarantine")) == versions
    assert store.dates("raw_events") == [str(days[0])] == store.dates("raw_events_quarantine")
    assert read(store, "raw_events", days[0]).num_rows == 30  # the previous version, untouched


def test_an_event_resent_on_a_later_day_is_quarantined_in_one_run_and_across_runs(tmp_path: Path) -> None:
    landing, storage = tmp_path / "landing", (tmp_path / "storage").as_uri()
    days = [dt.date(2026, 3, 1) + dt.timedelta(days=i) for i in range(4)]
    resent = line(event(1, ts=f"{days[0]}T23:59:00.000Z"))
    for i, day in enumerate(days):
        own = [line(event(100 * (i + 1) + n, ts=f"{day}T12:00:00.000Z")) for n in range(5)]
        # Day 0 keeps event 1; days 1 and 3 get it again (re-sent across midnight, with their timestamp).
        again = [line(event(1, ts=f"{day}T00:00:01.000Z"))] if i in (1, 3) else []
        land(landing, {"events-0000.jsonl.gz": ([*own, resent] if i == 0 else own + again)}, day=day)
    store = TableStore.at(storage)

    one_run = dg.materialize(
        [raw_events],
        resources=resources(storage, landing.as_uri()),
        tags={RANGE_START: str(days[0]), RANGE_END: str(days[2])},
    )
    assert one_run.success
    quarantine = read(store, "raw_events_quarantine", days[1])
    assert quarantine["reason"].to_pylist() == ["duplicate_event_id"]
    assert f"already kept on {days[0]}" in quarantine["detail"][0].as_py()
    assert read(store, "raw_events", days[1]).num_rows == 5

    # Day 3 in a run of its own: day 1 (2 days back) never kept it, day 0 is 3 days back: kept ...
    dg.materialize([raw_events], resources=resources(storage, landing.as_uri()), partition_key=str(days[3]))
    assert read(store, "raw_events", days[3]).num_rows == 6
    # ... unless the lookback reaches day 0.
    config = dg.RunConfig(ops={"raw_events": RawEventsConfig(duplicate_lookback_days=3)})
    dg.materialize(
        [raw_events], resources=resources(storage, landing.as_uri()), partition_key=str(days[3]), run_config=config
    )
    assert read(store, "raw_events", days[3]).num_rows == 5
    assert read(store, "raw_events_quarantine", days[3])["reason"].to_pylist() == ["duplicate_event_id"]


def test_bad_lines_are_written_in_bounded_batches_and_a_long_line_is_cut(tmp_path: Path) -> None:
    day = dt.date(2026, 3, 4)
    good = [line(event(n, ts=f"{day}T12:00:00.000Z")) for n in range(30)]
    land(tmp_path / "landing", {"e.jsonl.gz": good + [b"{not json"] * 249 + [b"[" * 5000]}, day=day)
    storage = (tmp_path / "storage").as_uri()
    zone = LandingZone(uri=(tmp_path / "landing").as_uri(), workers=1, max_line_bytes=1024)
    result = dg.materialize(
        [raw_events],
        resources={**storage_resources(storage), "landing": zone},
        partition_key=str(day),
        run_config=dg.RunConfig(ops={"raw_events": RawEventsConfig(quarantine_batch_rows=100)}),
    )
    store = TableStore.at(storage)
    assert len(store.files("raw_events_quarantine", [day])) == 3
    quarantine = read(store, "raw_events_quarantine", day)
    assert quarantine.num_rows == 250 and quarantine["raw_line"][249].as_py() == b"[" * 1024
    by_asset = {m.asset_key.path[-1]: m.metadata for m in result.asset_materializations_for_node("raw_events")}
    assert [by_asset["raw_events"][k].value for k in ("landed", "kept", "quarantined")] == [280, 30, 250]
    counts = by_asset["raw_events_quarantine"]
    assert (counts["reason_invalid_json"].value, counts["reason_line_too_long"].value) == (249, 1)

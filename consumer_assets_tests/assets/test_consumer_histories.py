"""consumer_histories through real Dagster runs and a real SparkSession: local mode, a standalone
cluster on loopback, single-run backfills, S3 storage, all checked against the DuckDB oracle."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from consumer_assets.assets import progress
from consumer_assets.assets.consumer_histories import HistoriesConfig, consumer_histories
from consumer_assets.assets.raw_events import raw_events
from consumer_assets.automation.jobs import RANGE_END, RANGE_START
from consumer_assets.automation.sensors import stale_histories_requests
from consumer_assets.histories import HISTORIES_SCHEMA, NUM_PROFILE_BUCKETS
from consumer_assets.histories.lineage import stale_days
from consumer_assets.partitions import daily_partitions
from consumer_assets.resources.landing import LandingZone
from consumer_assets.resources.spark import SparkResource
from consumer_assets.resources.storage import storage_resources
from consumer_assets.simulation import simulate_to_landing
from consumer_assets.storage.tables import TableStore
from consumer_assets.windows import horizon
from consumer_assets_testing.oracle import oracle_histories
from consumer_assets_tests.support.histories import assert_same_histories
from consumer_assets_tests.support.services import S3_CREDENTIALS, wait_until
from consumer_assets_tests.support.spark_cluster import standalone_cluster

pytestmark = pytest.mark.slow

FIRST = dt.date(2026, 2, 1)
DAYS = 31
LAST = FIRST + dt.timedelta(days=DAYS - 1)
# A horizon shorter than the month, so that the last days' histories drop the shop's first days.
H = 29


@dataclass(frozen=True)
class Landed:
    landing: str
    storage: str
    instance: dg.DagsterInstance


def ingest_all(landing: str, storage: str, instance: dg.DagsterInstance) -> None:
    result = dg.materialize(
        [raw_events],
        resources={**storage_resources(storage), "landing": LandingZone(uri=landing)},
        instance=instance,
        tags={RANGE_START: str(FIRST), RANGE_END: str(LAST)},
    )
    assert result.success


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> Landed:
    """A month of a small shop, landed and ingested into raw_events on local disk."""
    root = tmp_path_factory.mktemp("shop")
    landing, storage = (root / "landing").as_uri(), (root / "storage").as_uri()
    for _ in simulate_to_landing(landing, FIRST, DAYS, profiles=1500, seed=5, corrupt=0.001):
        pass
    instance = dg.DagsterInstance.ephemeral()
    ingest_all(landing, storage, instance)
    return Landed(landing, storage, instance)


def histories_run(
    storage: str,
    spark: SparkResource,
    instance: dg.DagsterInstance,
    first: dt.date,
    last: dt.date,
    task_buckets: int = NUM_PROFILE_BUCKETS,
    rebuild: bool = False,
) -> dg.ExecuteInProcessResult:
    tags = {RANGE_START: str(first), RANGE_END: str(last)}
    config = HistoriesConfig(task_buckets=task_buckets, horizon_days=H, rebuild=rebuild)
    return dg.materialize(
        [consumer_histories, raw_events],
        selection=[consumer_histories],
        resources={**storage_resources(storage), "spark": spark, "landing": LandingZone()},
        instance=instance,
        tags=tags,
        run_config=dg.RunConfig(ops={"consumer_histories": config}),
    )


def materialized(result: dg.ExecuteInProcessResult, asset: str = "consumer_histories") -> list:
    """The materializations of `asset` in a run (consumer_histories also reports its state)."""
    return [m for m in result.asset_materializations_for_node("consumer_histories") if m.asset_key.path[-1] == asset]


def oracle_for(storage: str, day: dt.date) -> pa.Table:
    store = TableStore.at(storage)
    files = store.files("raw_events", [d for d in horizon(H).days(day) if d >= FIRST])
    return oracle_histories([store.location.path("raw_events", f.path) for f in files], day, horizon_days=H)


def read_day(storage: str, day: dt.date) -> pa.Table:
    return TableStore.at(storage).read("consumer_histories", [day]).drop_columns(["date", "profile_bucket"])


def version(storage: str) -> int:
    return TableStore.at(storage).version("consumer_histories")


def test_built_then_continued_days_match_the_oracle_and_report(landed: Landed) -> None:
    spark = SparkResource(master="local[2]")
    start = LAST - dt.timedelta(days=3)
    # The first day has no state before it: built from the raw events of its horizon (reaching the shop's first day).
    built = histories_run(landed.storage, spark, landed.instance, start, start)
    assert built.success
    # The next days continue it, one run for the range.
    continued = histories_run(landed.storage, spark, landed.instance, start + dt.timedelta(days=1), LAST)
    assert continued.success
    for day in [start + dt.timedelta(days=k) for k in range(4)]:
        table = read_day(landed.storage, day)
        assert table.schema.equals(HISTORIES_SCHEMA) and table.num_rows > 100
        assert_same_histories(table, oracle_for(landed.storage, day))

    (meta,) = [m.metadata for m in materialized(built)]
    assert meta["built_from"].value == "raw_events of the horizon"
    assert meta["horizon_days"].value == H
    table = read_day(landed.storage, LAST)
    metas = {m.partition: m.metadata for m in materialized(continued)}
    meta = metas[str(LAST)]
    assert meta["built_from"].value == f"state of {LAST - dt.timedelta(days=1)}"
    assert meta["profiles"].value == table.num_rows
    assert meta["state_profiles"].value >= table.num_rows
    assert meta["length_max"].value <= 200 and meta["length_p50"].value <= meta["length_p90"].value
    assert meta["truncated"].value == sum(
        w > n for w, n in zip(table["n_window_events"].to_pylist(), table["n_events"].to_pylist(), strict=True)
    )
    assert meta["events_read"].value > meta["history_events"].value >= 15 * table.num_rows
    assert meta["spark_master"].value == "local[2]"
    checks = {e.check_name: e for e in continued.get_asset_check_evaluations()}
    assert set(checks) == {"profile_count_vs_trailing_days", "sequence_length_drift"}
    # The state is reported beside the histories, per day, with the version that goes with them.
    states = {m.partition: m.metadata for m in materialized(continued, "consumer_histories_state")}
    assert sorted(states) == sorted(metas)
    assert states[str(LAST)]["table_version"].value == meta["state_version"].value
    assert states[str(LAST)]["profiles"].value == meta["state_profiles"].value
    assert str(LAST) in TableStore.at(landed.storage).dates("consumer_histories_state")


def test_backfill_as_one_run_equals_per_partition_runs(
    landed: Landed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = LAST - dt.timedelta(days=2)
    spark = SparkResource(master="local[2]")
    monkeypatch.setattr(progress, "PROGRESS_SECONDS", 0.1)  # instead of every 30 s
    # The one run also splits each window into twice as many Spark tasks as there are profile buckets.
    one_run = histories_run(landed.storage, spark, landed.instance, first, LAST, task_buckets=16)
    assert one_run.success
    # While the Spark job runs, its progress is logged: tasks done of its 16.
    said = [e.user_message for e in landed.instance.all_logs(one_run.run_id)]
    ticks = [m for m in said if m.startswith("Spark job over 3 day(s): ")]
    assert any(re.fullmatch(r"Spark job over 3 day\(s\): \d+/16 tasks done after \d+ s", m) for m in ticks), said
    assert len(TableStore.at(landed.storage).files("consumer_histories", [LAST])) == 16
    days = materialized(one_run)
    assert sorted(m.partition for m in days) == [str(first + dt.timedelta(days=i)) for i in range(3)]
    assert {m.metadata["days_in_spark_job"].value for m in days} == {3}  # one Spark job for the range
    backfilled = {d: read_day(landed.storage, d) for d in (first, LAST)}

    # The same days, one run each, into another storage root (raw_events copied over by re-ingesting).
    other = (tmp_path / "storage").as_uri()
    ingest_all(landed.landing, other, dg.DagsterInstance.ephemeral())
    for day in (first, LAST):
        assert histories_run(other, spark, dg.DagsterInstance.ephemeral(), day, day).success
        assert_same_histories(read_day(other, day), backfilled[day])


def test_standalone_cluster_gives_the_same_histories(landed: Landed, tmp_path: Path) -> None:
    local = histories_run(landed.storage, SparkResource(master="local[2]"), landed.instance, LAST, LAST)
    assert local.success
    expected = read_day(landed.storage, LAST)
    before = version(landed.storage)
    with standalone_cluster(tmp_path / "spark") as master:
        spark = SparkResource(master=master, spark_config={"spark.executor.memory": "1g"})
        on_cluster = histories_run(landed.storage, spark, landed.instance, LAST, LAST)
        assert on_cluster.success
        (meta,) = [m.metadata for m in materialized(on_cluster)]
        assert meta["spark_master"].value == master
    assert version(landed.storage) > before  # the cluster's run committed a new version
    assert_same_histories(read_day(landed.storage, LAST), expected)


def test_a_worker_lost_mid_job_is_survived(landed: Landed, tmp_path: Path) -> None:
    # Two one-core workers; one goes away (its whole process group, executors included) while the
    # job runs: Spark reschedules its tasks on the other, and the run commits the right histories.
    processes: list[subprocess.Popen] = []
    with standalone_cluster(tmp_path / "spark", cores=1, workers=2, worker_processes=processes) as master:
        spark = SparkResource(master=master, spark_config={"spark.executor.memory": "1g"})
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(histories_run, landed.storage, spark, landed.instance, LAST, LAST, 16)
            # An executor of the second worker has started work: its app folder appears.
            wait_until(
                lambda: any((tmp_path / "spark" / "work1").glob("app-*/*/stderr")), 180, "an executor on worker 1"
            )
            os.killpg(processes[1].pid, signal.SIGKILL)
            result = running.result(timeout=600)
    assert result.success
    assert_same_histories(read_day(landed.storage, LAST), oracle_for(landed.storage, LAST))


def test_on_s3_storage_staged_and_direct(landed: Landed, s3_root: str, tmp_path: Path) -> None:
    ingest_all(landed.landing, s3_root, dg.DagsterInstance.ephemeral())
    # Staged: the driver copies the window to local disk and commits the output to S3.
    staged = histories_run(s3_root, SparkResource(master="local[2]"), dg.DagsterInstance.ephemeral(), LAST, LAST)
    assert staged.success
    table = read_day(s3_root, LAST)
    assert_same_histories(table, oracle_for(landed.storage, LAST))
    before = version(s3_root)
    # Direct: executors read s3:// themselves (pyarrow on the executor) and write into the table's folder.
    # Executors get their S3 settings from their own environment, here set through Spark.
    executor_env = {f"spark.executorEnv.{k}": os.environ[k] for k in (*S3_CREDENTIALS, "AWS_ENDPOINT_URL")}
    direct = SparkResource(master="local[2]", reads_storage=True, spark_config=executor_env)
    assert histories_run(s3_root, direct, dg.DagsterInstance.ephemeral(), LAST, LAST).success
    assert version(s3_root) > before
    assert_same_histories(read_day(s3_root, LAST), table)


def test_missing_upstream_day_fails_naming_it(landed: Landed, tmp_path: Path) -> None:
    storage = (tmp_path / "storage").as_uri()
    result = dg.materialize(
        [raw_events],
        resources={**storage_resources(storage), "landing": LandingZone(uri=landed.landing)},
        partition_key=str(LAST),
    )
    assert result.success
    # A gap: LAST-2 was never ingested, and LAST is built from its horizon.
    gap = LAST - dt.timedelta(days=2)
    assert dg.materialize(
        [raw_events],
        resources={**storage_resources(storage), "landing": LandingZone(uri=landed.landing)},
        partition_key=str(LAST - dt.timedelta(days=3)),
    ).success
    failed = dg.materialize(
        [consumer_histories, raw_events],
        selection=[consumer_histories],
        resources={
            **storage_resources(storage),
            "spark": SparkResource(master="local[1]"),
            "landing": LandingZone(uri=landed.landing),
        },
        partition_key=str(LAST),
        raise_on_error=False,
    )
    assert not failed.success
    message = str(failed.failure_data_for_node("consumer_histories").error)
    assert f"table raw_events holds no data for {gap}, {LAST - dt.timedelta(days=1)}" in message


def test_a_redelivered_day_is_never_continued_nor_read(landed: Landed, tmp_path: Path) -> None:
    storage = (tmp_path / "storage").as_uri()
    instance = dg.DagsterInstance.ephemeral()
    ingest_all(landed.landing, storage, instance)
    spark = SparkResource(master="local[2]")
    d0 = LAST - dt.timedelta(days=2)
    chain = [d0 - dt.timedelta(days=1), d0, d0 + dt.timedelta(days=1), LAST]
    assert histories_run(storage, spark, instance, chain[0], LAST).success
    store = TableStore.at(storage)
    assert stale_days(store, chain) == {}

    # The shop re-delivers d0: raw_events[d0] is ingested again, and every state from d0 on is stale.
    redelivered = dg.materialize(
        [raw_events],
        resources={**storage_resources(storage), "landing": LandingZone(uri=landed.landing)},
        instance=instance,
        partition_key=str(d0),
    )
    assert redelivered.success
    stale = stale_days(store, chain)
    assert sorted(stale) == chain[1:]
    assert "raw_events of the day" in stale[d0]
    # The automation conditions see this one (raw_events[d0] changed): the stale-histories sensor leaves it.
    assert not stale_histories_requests(store).run_requests
    assert f"continues the histories of {d0}" in stale[LAST]
    # No reader gets them: the IO manager refuses stale histories to training and scoring.
    io_manager = storage_resources(storage)["io_manager"]
    context = dg.build_input_context(
        asset_key=dg.AssetKey("consumer_histories"),
        partition_key=str(LAST),
        asset_partitions_def=daily_partitions,
    )
    with pytest.raises(dg.Failure, match=f"consumer_histories of {LAST} are stale .*continues the histories of {d0}"):
        io_manager.load_input(context)

    # LAST computed now, before the automation reached it, is built from its horizon: not from LAST-1's stale state.
    alone = histories_run(storage, spark, instance, LAST, LAST)
    assert alone.success
    (meta,) = [m.metadata for m in materialized(alone)]
    assert meta["built_from"].value == "raw_events of the horizon"
    assert_same_histories(read_day(storage, LAST), oracle_for(storage, LAST))
    # The chain recomputed in day order: nothing is stale any more.
    assert histories_run(storage, spark, instance, d0, LAST - dt.timedelta(days=1)).success
    assert stale_days(store, chain) == {}

    # An older day of the first day's horizon is re-delivered: no Dagster dependency shows it, the sensor
    # requests the first day through the latest as one range run, and that run makes everything current.
    older = chain[0] - dt.timedelta(days=5)
    assert dg.materialize(
        [raw_events],
        resources={**storage_resources(storage), "landing": LandingZone(uri=landed.landing)},
        instance=instance,
        partition_key=str(older),
    ).success
    assert sorted(stale_days(store, chain)) == chain
    (request,) = stale_histories_requests(store).run_requests
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == (str(chain[0]), str(LAST))
    assert histories_run(storage, spark, instance, chain[0], LAST).success
    assert stale_days(store, chain) == {} and not stale_histories_requests(store).run_requests

"""The histories job on a real SparkSession: the same rows as the oracle, no shuffle, Spark's crc32, written days
and states, each day from the state files of the day before."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyspark.sql import SparkSession

from consumer_assets.histories import (
    HISTORIES_SCHEMA,
    MAX_EVENTS,
    plan_tasks,
    profile_bucket,
    profile_bucket_sql,
    write_histories,
)
from consumer_assets.histories.output import WRITTEN_SCHEMA, write_task
from consumer_assets.histories.spark import _map_tasks
from consumer_assets.storage.writes import part_path
from consumer_assets.windows import ELIGIBILITY_DAYS
from consumer_assets_testing.oracle import oracle_histories
from consumer_assets_tests.support.histories import (
    D,
    assert_same_histories,
    every_file,
)
from consumer_assets_tests.support.history_states import (
    OldShop,
    assert_same_state,
    by_bucket,
    oracle_state,
    outputs,
    read_files,
)

# ---------------------------------------------------------------- Spark


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    session = (
        SparkSession.builder.master("local[2]")
        .appName("consumer_assets_tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )
    # Python workers must run this interpreter, where consumer_assets and pyarrow are installed
    # (what SparkResource does, without touching the process environment).
    session.sparkContext.pythonExec = sys.executable
    yield session
    session.stop()


@pytest.mark.slow
def test_spark_crc32_gives_the_same_profile_buckets(spark: SparkSession) -> None:
    ids = ["p0", "pé", "", "3f2a-77", *(f"profile-{i}" for i in range(50))]
    rows = spark.createDataFrame([(i,) for i in ids], "profile_id string").selectExpr(profile_bucket_sql())
    assert [r[0] for r in rows.collect()] == profile_bucket(pa.array(ids)).tolist()


@pytest.mark.slow
def test_write_histories_gives_every_day_a_readable_partition(
    spark: SparkSession, layout: dict, tmp_path: Path
) -> None:
    quiet = D - dt.timedelta(days=70)  # no events in its horizon
    out = outputs(tmp_path / "out", "w2")
    # A file of another (committed) write in the same folder is left alone.
    other = Path(part_path({"date": D, "profile_bucket": 0}, "committed", 0, out.histories_dir))
    other.parent.mkdir(parents=True)
    other.write_bytes(b"a committed file of an earlier write")
    tasks = plan_tasks(layout, [D], ELIGIBILITY_DAYS)
    # One Spark task per bucket task: no shuffle.
    plan = _map_tasks(spark, tasks, lambda task: write_task(task, out), WRITTEN_SCHEMA)
    assert "Exchange" not in plan._jdf.queryExecution().executedPlan().toString()
    summaries = write_histories(spark, tasks, out) | write_histories(
        spark, plan_tasks(layout, [quiet], ELIGIBILITY_DAYS), out
    )
    assert sorted(summaries) == [quiet, D] and other.read_bytes().startswith(b"a committed")

    today = summaries[D]
    written = read_files(path for path, _ in today.files)
    assert written.schema.equals(HISTORIES_SCHEMA) and len(today.files) == 4
    assert all(Path(path).name == f"part-w2-{b:05d}.parquet" for path, b in today.files)
    expected = oracle_histories(every_file(layout), D, horizon_days=ELIGIBILITY_DAYS)
    assert_same_histories(written, expected)
    lengths = expected["n_events"].to_numpy()
    assert (today.profiles, today.events, today.max_length) == (len(lengths), lengths.sum(), MAX_EVENTS)
    assert today.truncated == pc.sum(pc.greater(expected["n_window_events"], expected["n_events"])).as_py()
    for q in (0.5, 0.9):
        assert today.length_quantile(q) == np.percentile(lengths, q * 100, method="lower")
    # Every event in the horizon counts, those of profiles under MIN_EVENTS too ("fourteen").
    assert today.window_events > today.events
    state = read_files(path for path, _ in today.state_files)
    assert (today.state_profiles, today.state_events) == (
        state.num_rows,
        pc.sum(pc.list_value_length(state["ts"])).as_py(),
    )
    assert today.state_profiles > today.profiles

    empty = read_files(path for path, _ in summaries[quiet].files)
    assert empty.num_rows == 0 and empty.schema.equals(HISTORIES_SCHEMA)
    assert summaries[quiet].profiles == summaries[quiet].length_quantile(0.5) == 0
    assert read_files(path for path, _ in summaries[quiet].state_files).num_rows == 0


@pytest.mark.slow
def test_spark_keeps_the_histories_day_by_day_from_its_state_files(
    spark: SparkSession, shop: OldShop, tmp_path: Path
) -> None:
    h = shop.horizon_days
    out = outputs(tmp_path, "w")
    # C and C+1 in one job (built from the horizon, then a day on); C+2 (no raw_events) and C+3 in a second
    # job from the state files C+1 left, in 16 tasks.
    written = write_histories(spark, plan_tasks(shop.files, shop.days[:2], h), out)
    state_files = by_bucket(written[shop.day(1)].state_files)
    later = plan_tasks(shop.files, shop.days[2:4], h, state_files, task_buckets=16)
    assert len(later) == 16 and not any(task.built for task in later)
    written |= write_histories(spark, later, out)
    for day in shop.days[:4]:
        histories = read_files(path for path, _ in written[day].files)
        assert_same_histories(histories, oracle_histories([shop.everything], day, horizon_days=h))
        state = read_files(path for path, _ in written[day].state_files)
        assert_same_state(state, oracle_state([shop.everything], day, h))
        assert written[day].state_profiles == state.num_rows > written[day].profiles > 50
    # A state of another horizon stops the job, saying which task and why.
    with pytest.raises(Exception, match=rf"bucket \d/8 .*is a state of a {h}-day horizon, not {h + 1}"):
        write_histories(spark, plan_tasks(shop.files, [shop.day(2)], h + 1, state_files), outputs(tmp_path, "x"))

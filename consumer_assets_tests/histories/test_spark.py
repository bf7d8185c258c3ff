"""The histories job on a real SparkSession: the same rows as the oracle, no shuffle, Spark's crc32, written days."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from consumer_assets.histories import (
    HISTORIES_SCHEMA,
    MAX_EVENTS,
    histories_dataframe,
    profile_bucket,
    profile_bucket_sql,
    write_histories,
)
from consumer_assets.storage.writes import part_path
from consumer_assets_testing.oracle import oracle_histories
from consumer_assets_tests.support.histories import (
    D,
    assert_same_histories,
    every_file,
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
def test_spark_matches_oracle_without_a_shuffle(spark: SparkSession, layout: dict) -> None:
    cutoffs = [D, D - dt.timedelta(days=1), D - dt.timedelta(days=2)]
    df = histories_dataframe(spark, layout, cutoffs, cutoffs_per_task=2)
    assert "Exchange" not in df._jdf.queryExecution().executedPlan().toString()
    table = df.toArrow()
    for day in cutoffs:
        rows = table.filter(pc.equal(table["cutoff_date"], pa.scalar(day, pa.date32()))).drop(["cutoff_date"])
        assert_same_histories(rows.cast(HISTORIES_SCHEMA), oracle_histories(every_file(layout), day))


@pytest.mark.slow
def test_spark_crc32_gives_the_same_profile_buckets(spark: SparkSession) -> None:
    ids = ["p0", "pé", "", "3f2a-77", *(f"profile-{i}" for i in range(50))]
    rows = spark.createDataFrame([(i,) for i in ids], "profile_id string").selectExpr(profile_bucket_sql())
    assert [r[0] for r in rows.collect()] == profile_bucket(pa.array(ids)).tolist()


@pytest.mark.slow
def test_write_histories_gives_every_day_a_readable_partition(
    spark: SparkSession, layout: dict, tmp_path: Path
) -> None:
    quiet = D - dt.timedelta(days=70)  # no events in its window
    out = str(tmp_path / "out")
    # A file of another (committed) write in the same folder is left alone.
    other = Path(part_path({"date": D, "profile_bucket": 0}, "committed", 0, out))
    other.parent.mkdir(parents=True)
    other.write_bytes(b"a committed file of an earlier write")
    summaries = write_histories(spark, layout, [D, quiet], out, "w2")
    assert sorted(summaries) == [quiet, D] and other.read_bytes().startswith(b"a committed")

    today = summaries[D]
    written = pa.concat_tables(pq.read_table(path) for path, _ in today.files)
    assert written.schema.equals(HISTORIES_SCHEMA) and len(today.files) == 4
    assert all(Path(path).name == f"part-w2-{b:05d}.parquet" for path, b in today.files)
    expected = oracle_histories(every_file(layout), D)
    assert_same_histories(written, expected)
    lengths = expected["n_events"].to_numpy()
    assert (today.profiles, today.events, today.max_length) == (len(lengths), lengths.sum(), MAX_EVENTS)
    assert today.truncated == pc.sum(pc.greater(expected["n_window_events"], expected["n_events"])).as_py()
    for q in (0.5, 0.9):
        assert today.length_quantile(q) == np.percentile(lengths, q * 100, method="lower")
    # Every event in the window counts, those of profiles under MIN_EVENTS too ("fourteen").
    assert today.window_events > today.events

    empty = pa.concat_tables(pq.read_table(path) for path, _ in summaries[quiet].files)
    assert empty.num_rows == 0 and empty.schema.equals(HISTORIES_SCHEMA)
    assert summaries[quiet].profiles == summaries[quiet].length_quantile(0.5) == 0

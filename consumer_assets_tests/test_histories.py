"""consumer_histories: the numpy encoder and the Spark job, row for row against a DuckDB oracle."""

from __future__ import annotations

import datetime as dt
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from consumer_assets.events.schema import ACTION_INDEX, ACTION_TYPES, RAW_EVENTS_SCHEMA
from consumer_assets.histories import (
    HISTORIES_BY_CUTOFF_SCHEMA,
    HISTORIES_SCHEMA,
    MAX_EVENTS,
    MIN_EVENTS,
    consumer_histories,
    crc32,
    encode_histories,
    hash_bucket,
    partition_dir,
    plan_tasks,
    profile_bucket,
    profile_bucket_sql,
    run_task,
    write_histories,
)
from consumer_assets.histories.output import summarize, write_task
from consumer_assets.histories.reader import read_events
from consumer_assets.storage.filesystem import resolve
from consumer_assets_tests.histories_oracle import list_histories_sql, oracle_histories

D = dt.date(2024, 3, 13)  # a Wednesday: its cut-off, D+1 00:00 UTC, is a Thursday
EPOCH = dt.date(1970, 1, 1)
DAY_MS = 86_400_000
EMPTY_DAYS = {
    D - dt.timedelta(days=5): "missing",
    D - dt.timedelta(days=6): "no rows",
    D - dt.timedelta(days=7): "None",
}


def ms(day: dt.date, hours: float = 0.0) -> int:
    return (day - EPOCH).days * DAY_MS + round(hours * 3_600_000)


def day_of(ts_ms: int) -> dt.date:
    return EPOCH + dt.timedelta(days=ts_ms // DAY_MS)


# ---------------------------------------------------------------- synthetic raw events


def event_table(rows: list[dict[str, object]]) -> pa.Table:
    defaults = {"session_id": "s", "event_type": "product_view", "article_id": "a1", "brand_id": "b1"}
    defaults |= {"category": "shoes", "price": 49.9}
    full = [defaults | row for row in rows]
    columns = {name: [r.get(name) for r in full] for name in RAW_EVENTS_SCHEMA.names}
    columns["ts"] = pa.array(columns["ts"], pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
    return pa.table(columns, schema=RAW_EVENTS_SCHEMA)


def edge_rows() -> list[dict[str, object]]:
    """Hand-built profiles, one per edge of the definition."""
    rows: list[dict[str, object]] = []
    day = D - dt.timedelta(days=3)
    # Equal timestamps: event ids decide ("e10" < "e2" < "e9" as strings), even against file order:
    # "e-1" sorts first but sits in the next day's file (a late arrival).
    for i in range(20):
        rows.append({"profile_id": "ties", "event_id": f"e{i}", "ts": ms(day, 12 + i // 4)})
        rows[-1]["event_type"] = ACTION_TYPES[i % len(ACTION_TYPES)]
    late = {"event_id": "e-1", "event_type": "login", "stored": day + dt.timedelta(days=1)}
    rows.append({"profile_id": "ties", "ts": ms(day, 12), **late})
    rows.append({"profile_id": "ties", "event_id": "e00", "ts": ms(day, 12), "event_type": "order"})
    # The threshold counts events in the window only: 14 inside (+5 before) is out, 15 is in.
    rows += [{"profile_id": "fourteen", "event_id": f"f{i}", "ts": ms(D, -i - 0.5)} for i in range(14)]
    rows += [{"profile_id": "fourteen", "event_id": f"g{i}", "ts": ms(D - dt.timedelta(days=30))} for i in range(5)]
    rows += [{"profile_id": "fifteen", "event_id": f"f{i:02d}", "ts": ms(D, -3 * i - 1)} for i in range(15)]
    # Longer than MAX_EVENTS: the newest 200 stay.
    for i in range(250):
        t = ms(D - dt.timedelta(days=27), 1.5 * i)
        rows.append({"profile_id": "long", "event_id": f"l{i:03d}", "ts": t, "event_type": ACTION_TYPES[i % 19]})
    # Window edges: D+1 00:00:00.000 is out, D 00:00 in, D-27 00:00 in, a millisecond before out;
    # the two outside sit in files the window reads, so only the timestamp filter removes them.
    first = D - dt.timedelta(days=27)
    edges = [(ms(D + dt.timedelta(days=1)), D), (ms(D), None), (ms(first), None), (ms(first) - 1, first)]
    for i, (t, stored) in enumerate(edges):
        rows.append({"profile_id": "midnight", "event_id": f"m{i}", "ts": t, "stored": stored})
    rows += [
        {"profile_id": "midnight", "event_id": f"n{i:02d}", "ts": ms(D - dt.timedelta(days=9), i)} for i in range(13)
    ]
    # The last event a millisecond before the cut-off: its hour of day stays below 24.
    rows += [
        {"profile_id": "late", "event_id": f"t{i:02d}", "ts": ms(D + dt.timedelta(days=1)) - 1 - i} for i in range(15)
    ]
    # Empty-string ids name nothing, like null ones.
    for i in range(15):
        rows.append({"profile_id": "empty-ids", "event_id": f"x{i:02d}", "ts": ms(D - dt.timedelta(days=1), i)})
        rows[-1] |= {"article_id": "" if i % 3 else f"a{i}", "brand_id": "", "category": "" if i % 2 else None}
    # Only events older than the window.
    rows += [{"profile_id": "old", "event_id": f"o{i}", "ts": ms(D - dt.timedelta(days=40), i)} for i in range(30)]
    # Events without an article, and non-ASCII ids (UTF-8 hashing).
    for i in range(16):
        rows.append({"profile_id": "nulls-ü", "event_id": f"u{i:02d}", "ts": ms(D - dt.timedelta(days=2), i)})
        if i % 2:
            rows[-1] |= {"event_type": "search", "article_id": None, "brand_id": None, "category": None}
            rows[-1]["price"] = None
        else:
            rows[-1] |= {"article_id": f"jäcke-{i}", "brand_id": "märke", "price": -1.0 if i == 4 else 19.5}
    return rows


def random_rows(seed: int, profiles: int = 300) -> list[dict[str, object]]:
    """Many profiles around the thresholds, minute-resolution timestamps (ties), nulls."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, object]] = []
    lo, hi = ms(D - dt.timedelta(days=32)), ms(D + dt.timedelta(days=2))
    for p in range(profiles):
        n = int(rng.choice([rng.integers(5, 40), rng.integers(180, 240)], p=[0.85, 0.15]))
        # Minute resolution: equal timestamps within a profile happen.
        for j, ts in enumerate(rng.integers(lo // 60_000, hi // 60_000, n) * 60_000):
            article = int(rng.integers(0, 50))
            rows.append(
                {
                    "profile_id": f"r{p:04d}",
                    "event_id": f"{rng.integers(0, 10**6):06d}-{p}-{j}",
                    "ts": int(ts),
                    "event_type": ACTION_TYPES[int(rng.integers(0, len(ACTION_TYPES)))],
                    "article_id": None if article < 15 else f"art{article}",
                    "brand_id": None if article < 15 else f"brand{article % 7}",
                    "category": None if article < 10 else f"cat{article % 5}",
                    "price": None if article < 20 else float(rng.gamma(2.0, 30.0)),
                }
            )
    return rows


def write_layout(rows: list[dict[str, object]], root: Path, buckets_of: dict[dt.date, int]) -> dict:
    """raw_events in the bucketed layout: per day, file b holds profile_bucket b, sorted."""
    stored = [r.pop("stored", None) or day_of(int(r["ts"])) for r in rows]
    table = event_table(rows).append_column("stored", pa.array(stored, pa.date32()))
    files: dict[dt.date, list[list[str]]] = {}
    for day, buckets in buckets_of.items():
        of_day = table.filter(pc.equal(table["stored"], pa.scalar(day, pa.date32()))).drop(["stored"])
        if EMPTY_DAYS.get(day) == "missing":
            continue
        if EMPTY_DAYS.get(day) == "None":
            files[day] = [[] for _ in range(buckets)]
            continue
        if EMPTY_DAYS.get(day) == "no rows":
            of_day = of_day.slice(0, 0)
        bucket = profile_bucket(of_day["profile_id"], buckets)
        files[day] = []
        for b in range(buckets):
            part = of_day.filter(pa.array(bucket == b))
            part = part.sort_by([("profile_id", "ascending"), ("ts", "ascending"), ("event_id", "ascending")])
            # A bucket may be several files (a table compacted or appended to): split odd buckets in two.
            halves = [part.slice(0, part.num_rows // 2), part.slice(part.num_rows // 2)] if b % 2 else [part]
            files[day].append([])
            for n, half in enumerate(halves):
                path = root / f"date={day}" / f"bucket-{b}-{n}.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(half, path)
                files[day][-1].append(str(path))
    return files


DAYS = [D - dt.timedelta(days=k) for k in range(-2, 45)]


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> dict[dt.date, list[list[str]]]:
    """Four buckets, except older days written with two: the layout grew without a rewrite."""
    root = tmp_path_factory.mktemp("raw_events")
    return write_layout(
        edge_rows() + random_rows(3), root, {day: 2 if day < D - dt.timedelta(days=10) else 4 for day in DAYS}
    )


def every_file(files: dict[dt.date, list[list[str]]]) -> list[str]:
    return [p for buckets in files.values() for paths in buckets for p in paths]


def assert_same_histories(actual: pa.Table, expected: pa.Table) -> None:
    actual, expected = actual.sort_by("profile_id"), expected.sort_by("profile_id")
    assert actual.schema.equals(HISTORIES_SCHEMA)
    assert actual["profile_id"].to_pylist() == expected["profile_id"].to_pylist()
    for name in HISTORIES_SCHEMA.names[1:]:
        got, want = actual[name].combine_chunks(), expected[name].combine_chunks()
        if pa.types.is_list(got.type):
            assert pc.list_value_length(got).equals(pc.list_value_length(want)), name
            got, want = pc.list_flatten(got), pc.list_flatten(want)
        if pa.types.is_floating(got.type):
            # Same formula, two math libraries: allow the last float32 digit to differ.
            np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-6, atol=1e-6, err_msg=name)
        else:
            assert got.equals(want), name


def local_histories(files: dict, cutoffs: list[dt.date], per_task: int = 7) -> dict[dt.date, pa.Table]:
    """The Spark job's tasks, run in this process."""
    batches = [b for task in plan_tasks(files, cutoffs, per_task) for b in run_task(task)]
    table = pa.Table.from_batches(batches, schema=HISTORIES_BY_CUTOFF_SCHEMA)
    result = {}
    for day in cutoffs:
        rows = table.filter(pc.equal(table["cutoff_date"], pa.scalar(day, pa.date32())))
        result[day] = rows.drop(["cutoff_date"])
    return result


# ---------------------------------------------------------------- hashing


def test_crc32_is_zlibs_and_buckets_are_in_range() -> None:
    values = ["", "a", "p000123", "jäcke 👟", None, "x" * 300, *(f"id-{i}" for i in range(100))]
    want = [0 if v is None else zlib.crc32(v.encode()) for v in values]
    assert crc32(pa.array(values)).tolist() == want
    assert crc32(pa.array(values, pa.large_string())).tolist() == want
    assert crc32(pa.chunked_array([values[:3], values[3:]])).tolist() == want
    assert crc32(pa.array(values).slice(4, 10)).tolist() == want[4:14]

    ids = [v for v in values if v is not None]
    assert profile_bucket(pa.array(ids), 8).tolist() == [zlib.crc32(v.encode()) % 8 for v in ids]
    buckets = hash_bucket(pa.array(values), 64)
    # Bucket 0 is "no id": null and the empty string alike; every real id hashes to 1..63.
    assert buckets[values.index(None)] == buckets[values.index("")] == 0
    assert all(1 <= b < 64 for v, b in zip(values, buckets, strict=True) if v)
    want = [0 if not v else 1 + zlib.crc32(v.encode()) % 63 for v in values]
    assert buckets.tolist() == want
    assert hash_bucket(pa.array([None, "", None], pa.string()), 64).tolist() == [0, 0, 0]
    assert hash_bucket(pa.chunked_array([["", "a"], ["", None]]).dictionary_encode(), 64).tolist()[::2] == [0, 0]


# ---------------------------------------------------------------- the encoder without Spark


def test_encoder_matches_oracle_for_each_cutoff(layout: dict) -> None:
    cutoffs = [D - dt.timedelta(days=k) for k in (0, 1, 4, 9)]
    by_task = local_histories(layout, cutoffs, per_task=3)
    # The encoder alone, given every event (it must apply each window itself, not rely on the reader).
    everything = pa.concat_tables([pq.read_table(path) for path in every_file(layout)])
    alone = dict(encode_histories(everything, cutoffs))
    for day in cutoffs:
        expected = oracle_histories(every_file(layout), day)
        assert expected.num_rows > 100
        assert_same_histories(by_task[day], expected)
        assert_same_histories(alone[day], expected)


def test_benchmarks_duckdb_query_is_the_oracles(layout: dict) -> None:
    # The benchmark compares Spark with list_histories_sql; it must compute the same thing.
    for day in (D, D - dt.timedelta(days=4)):
        fast = oracle_histories(every_file(layout), day, list_histories_sql)
        assert_same_histories(fast, oracle_histories(every_file(layout), day))


def test_edges_as_defined(layout: dict) -> None:
    rows = {r["profile_id"]: r for r in local_histories(layout, [D])[D].to_pylist()}
    assert "fourteen" not in rows and "old" not in rows
    assert rows["fifteen"]["n_events"] == MIN_EVENTS
    assert (rows["long"]["n_events"], rows["long"]["n_window_events"]) == (MAX_EVENTS, 250)
    # The newest 200 of 250: the kept ones are l050..l249, in time order.
    assert rows["long"]["event_type"][:3] == [ACTION_INDEX[ACTION_TYPES[i % 19]] for i in (50, 51, 52)]
    # Cut: the first kept event's previous one (l049, 1.5 h earlier) is known, so its real gap.
    assert rows["long"]["log_dt"][0] == pytest.approx(np.log1p(1.5 * 3600), rel=1e-6)
    assert rows["long"]["log_dt"][1] == pytest.approx(np.log1p(1.5 * 3600), rel=1e-6)
    # Not cut: nothing before the first event in the window, so 0.
    assert rows["fifteen"]["log_dt"][0] == 0.0 and rows["ties"]["log_dt"][0] == 0.0
    # The six events at 12:00 in event id order: e-1, e0, e00, e1, e2, e3.
    names = ("login", "home_view", "order", "search", "category_view", "product_view")
    assert rows["ties"]["event_type"][:6] == [ACTION_INDEX[n] for n in names]
    assert rows["ties"]["log_dt"][1:6] == [0.0] * 5
    midnight = rows["midnight"]
    assert midnight["n_events"] == 15
    assert midnight["hours_since_last_event"] == 24.0 and midnight["last_event_hour"] == 0.0
    assert {r["cutoff_weekday"] for r in rows.values()} == {3}
    late = rows["late"]
    assert 23.99 < late["last_event_hour"] < 24.0 and late["hours_since_last_event"] < 1e-6
    empty = rows["empty-ids"]
    assert empty["brand_bucket"] == [0] * 15 and empty["category_bucket"] == [0] * 15
    assert [b == 0 for b in empty["article_bucket"]] == [bool(i % 3) for i in range(15)]
    nulls = rows["nulls-ü"]
    assert nulls["article_bucket"][1::2] == [0] * 8 and nulls["log_price"][1::2] == [0.0] * 8
    assert all(b > 0 for b in nulls["article_bucket"][::2]) and nulls["log_price"][4] == 0.0


def test_unknown_event_type_stops_the_run() -> None:
    rows = [{"profile_id": "p", "event_id": f"e{i}", "ts": ms(D), "event_type": "teleport"} for i in range(20)]
    with pytest.raises(ValueError, match="teleport"):
        list(encode_histories(event_table(rows), [D]))


def test_plan_reads_each_window_once_per_bucket(layout: dict) -> None:
    tasks = plan_tasks(layout, [D, D - dt.timedelta(days=1), D - dt.timedelta(days=2)], cutoffs_per_task=2)
    assert [(t.bucket, len(t.cutoffs)) for t in tasks] == [(b, 2) for b in range(4)] + [(b, 1) for b in range(4)]
    # The 29 days D-29..D-1, less the day missing and the day without files (the empty files count).
    assert len(tasks[0].files) == 29 - 2
    assert len(tasks[1].files) == 2 * (29 - 2)  # bucket 1 is two files a day
    with pytest.raises(ValueError, match="divide"):
        plan_tasks({D: [["a"], ["b"], ["c"]], D - dt.timedelta(days=1): [["a"], ["b"]]}, [D])


@pytest.mark.slow
def test_tasks_read_and_write_s3(layout: dict, s3_root: str) -> None:
    # On a cluster that reads the store itself, tasks get s3:// URIs and write there too.
    store = resolve(s3_root)
    remote: dict[dt.date, list[list[str]]] = {}
    for day, buckets in layout.items():
        remote[day] = []
        for paths in buckets:
            remote[day].append([])
            for path in paths:
                name = f"raw_events/{day}/{Path(path).name}"
                with store.fs.open_output_stream(store.path(name)) as out:
                    out.write(Path(path).read_bytes())
                remote[day][-1].append(f"{s3_root}/{name}")
    out_dir = f"{s3_root}/histories"
    tasks = plan_tasks(remote, [D])
    written = [row for task in tasks for b in write_task(task, out_dir, "w1") for row in b.to_pylist()]
    summary = summarize(written)[D]
    assert all(path.startswith(f"{out_dir}/date={D}/profile_bucket=") for path, _ in summary.files)
    assert [bucket for _, bucket in summary.files] == [0, 1, 2, 3]
    table = pa.concat_tables(pq.read_table(path[len("s3://") :], filesystem=store.fs) for path, _ in summary.files)
    assert_same_histories(table, oracle_histories(every_file(layout), D))


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
    df = consumer_histories(spark, layout, cutoffs, cutoffs_per_task=2)
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
    other = Path(partition_dir(out, D, 0)) / "part-committed-00000.parquet"
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


def test_a_file_in_the_wrong_bucket_position_is_refused(tmp_path: Path) -> None:
    ids = [f"p{i}" for i in range(40)]
    buckets = profile_bucket(pa.array(ids), 2)
    rows = [{"event_id": f"e{i}", "profile_id": p, "ts": ms(D, 1)} for i, p in enumerate(ids) if buckets[i] == 1]
    path = tmp_path / "bucket-1-data.parquet"
    pq.write_table(event_table(rows), path)
    # Listed as the day's file of bucket 0: the data says otherwise.
    with pytest.raises(ValueError, match=r"should hold only profiles of bucket 0 of 2"):
        read_events([(str(path), 2)], ms(D - dt.timedelta(days=1)), ms(D + dt.timedelta(days=1)), 0, 2)
    assert read_events([(str(path), 2)], ms(D - dt.timedelta(days=1)), ms(D + dt.timedelta(days=1)), 1, 2).num_rows

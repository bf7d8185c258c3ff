"""The histories without Spark: hashing, each cut-off against the DuckDB oracle, edges, task planning, S3."""

from __future__ import annotations

import datetime as dt
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from consumer_assets.events.schema import ACTION_INDEX, ACTION_TYPES
from consumer_assets.histories import (
    MAX_EVENTS,
    MIN_EVENTS,
    crc32,
    encode_histories,
    hash_bucket,
    plan_tasks,
    profile_bucket,
)
from consumer_assets.histories.reader import read_events
from consumer_assets.histories.schema import state_horizon
from consumer_assets.histories.tasks import BUILD_CHUNK_DAYS
from consumer_assets.storage.filesystem import resolve
from consumer_assets.windows import ELIGIBILITY_DAYS, HORIZON_DAYS
from consumer_assets_testing.oracle import list_histories_sql, oracle_histories
from consumer_assets_tests.support.histories import (
    D,
    assert_same_histories,
    event_table,
    every_file,
    local_histories,
    ms,
    write_layout,
)
from consumer_assets_tests.support.history_states import (
    assert_same_state,
    by_bucket,
    oracle_state,
    outputs,
    read_files,
    write_days,
)

# ---------------------------------------------------------------- hashing


def test_crc32_is_zlibs_and_buckets_are_in_range() -> None:
    # More than SMALL values: the vectorised path (a few are hashed one zlib call each).
    values = ["", "a", "p000123", "jäcke 👟", None, "x" * 300, *(f"id-{i}" for i in range(700))]
    want = [0 if v is None else zlib.crc32(v.encode()) for v in values]
    assert crc32(pa.array(values)).tolist() == want
    assert crc32(pa.array(values, pa.large_string())).tolist() == want
    assert crc32(pa.chunked_array([values[:3], values[3:]])).tolist() == want
    assert crc32(pa.array(values).slice(4, 60)).tolist() == want[4:64]
    assert crc32(pa.array(values).slice(4, 10)).tolist() == want[4:14]  # a few: one zlib call each

    ids = [v for v in values if v is not None]
    assert profile_bucket(pa.array(ids), 8).tolist() == [zlib.crc32(v.encode()) % 8 for v in ids]
    buckets = hash_bucket(pa.array(values), 64)
    # Bucket 0 is "no id": null and the empty string alike; every real id hashes to 1..63.
    assert buckets[values.index(None)] == buckets[values.index("")] == 0
    assert all(1 <= b < 64 for v, b in zip(values, buckets, strict=True) if v)
    want = [0 if not v else 1 + zlib.crc32(v.encode()) % 63 for v in values]
    assert buckets.tolist() == want
    assert hash_bucket(pa.array(values[:8]), 64).tolist() == want[:8]  # a few: one zlib call each
    assert hash_bucket(pa.array([None, "", None], pa.string()), 64).tolist() == [0, 0, 0]
    assert hash_bucket(pa.chunked_array([["", "a"], ["", None]]).dictionary_encode(), 64).tolist()[::2] == [0, 0]


# ---------------------------------------------------------------- the encoder without Spark


@pytest.mark.parametrize("horizon_days", [ELIGIBILITY_DAYS, HORIZON_DAYS])
def test_encoder_matches_oracle_for_each_cutoff(layout: dict, horizon_days: int) -> None:
    # 28 days: the horizon is the eligibility days; 180: a shop younger than its horizon, every day it has.
    cutoffs = [D - dt.timedelta(days=k) for k in (0, 1, 4, 9)]
    by_task = local_histories(layout, cutoffs, horizon_days)
    # The encoder alone, given every event (it must apply each window itself, not rely on the reader).
    everything = pa.concat_tables([pq.read_table(path) for path in every_file(layout)])
    alone = dict(encode_histories(everything, cutoffs, horizon_days))
    for day in cutoffs:
        expected = oracle_histories(every_file(layout), day, horizon_days=horizon_days)
        assert expected.num_rows > 100
        assert_same_histories(by_task[day], expected)
        assert_same_histories(alone[day], expected)


@pytest.mark.parametrize("horizon_days", [ELIGIBILITY_DAYS, 35])
def test_benchmarks_duckdb_query_is_the_oracles(layout: dict, horizon_days: int) -> None:
    # The benchmark compares Spark with list_histories_sql; it must compute the same thing.
    for day in (D, D - dt.timedelta(days=4)):
        fast = oracle_histories(every_file(layout), day, list_histories_sql, horizon_days)
        assert_same_histories(fast, oracle_histories(every_file(layout), day, horizon_days=horizon_days))


@pytest.mark.parametrize("horizon_days", [ELIGIBILITY_DAYS, 35])
def test_edges_as_defined(layout: dict, horizon_days: int) -> None:
    rows = {r["profile_id"]: r for r in local_histories(layout, [D], horizon_days)[D].to_pylist()}
    longer = horizon_days > ELIGIBILITY_DAYS
    # "fourteen" has 5 more events 30 days back: in a longer horizon, but eligibility counts 28 days.
    assert "fourteen" not in rows and "old" not in rows
    assert rows["fifteen"]["n_events"] == MIN_EVENTS
    assert (rows["long"]["n_events"], rows["long"]["n_window_events"]) == (MAX_EVENTS, 250)
    # The newest 200 of 250: the kept ones are l050..l249, in time order.
    assert rows["long"]["event_type"][:3] == [ACTION_INDEX[ACTION_TYPES[i % 19]] for i in (50, 51, 52)]
    # Cut: the first kept event's previous one (l049, 1.5 h earlier) is known, so its real gap.
    assert rows["long"]["log_dt"][0] == pytest.approx(np.log1p(1.5 * 3600), rel=1e-6)
    assert rows["long"]["log_dt"][1] == pytest.approx(np.log1p(1.5 * 3600), rel=1e-6)
    # Not cut: nothing before the first event in the horizon, so 0.
    assert rows["fifteen"]["log_dt"][0] == 0.0 and rows["ties"]["log_dt"][0] == 0.0
    # The six events at 12:00 in event id order: e-1, e0, e00, e1, e2, e3 (the file has e-1, e00 last).
    names = ("login", "home_view", "order", "search", "category_view", "product_view")
    assert rows["ties"]["event_type"][:6] == [ACTION_INDEX[n] for n in names]
    assert rows["ties"]["log_dt"][1:6] == [0.0] * 5
    assert (rows["ties"]["n_orders"], rows["ties"]["days_since_last_order"]) == (2, 3)
    midnight = rows["midnight"]
    # D 00:00 and D-27 00:00 are in; D-27 less a millisecond is in a longer horizon only, never eligible.
    assert (midnight["n_events"], midnight["n_recent_events"]) == (15 + longer, 15)
    assert midnight["days_since_first_event"] == 27 + longer and midnight["active_days"] == 3 + longer
    assert midnight["hours_since_last_event"] == 24.0 and midnight["last_event_hour"] == 0.0
    assert {r["cutoff_weekday"] for r in rows.values()} == {3}
    late = rows["late"]
    assert 23.99 < late["last_event_hour"] < 24.0 and late["hours_since_last_event"] < 1e-6
    assert late["days_since_last_order"] is None and late["n_returns"] == 0
    empty = rows["empty-ids"]
    assert empty["brand_bucket"] == [0] * 15 and empty["category_bucket"] == [0] * 15
    assert [b == 0 for b in empty["article_bucket"]] == [bool(i % 3) for i in range(15)]
    nulls = rows["nulls-ü"]
    assert nulls["article_bucket"][1::2] == [0] * 8 and nulls["log_price"][1::2] == [0.0] * 8
    assert all(b > 0 for b in nulls["article_bucket"][::2]) and nulls["log_price"][4] == 0.0


def test_unknown_event_type_stops_the_run(tmp_path: Path) -> None:
    rows = [{"profile_id": "p", "event_id": f"e{i}", "ts": ms(D)} for i in range(20)]
    rows[7]["event_type"] = "teleport"
    with pytest.raises(ValueError, match="teleport"):
        list(encode_histories(event_table(rows), [D]))
    # The same from files, day by day: a task stops on the day that brings it.
    files = write_layout(rows, tmp_path, {D - dt.timedelta(days=1): 1, D: 1}, empty={})
    with pytest.raises(ValueError, match="teleport"):
        local_histories(files, [D - dt.timedelta(days=1), D], ELIGIBILITY_DAYS)


def test_plan_builds_from_the_horizon_or_continues_a_state(layout: dict) -> None:
    days = [D - dt.timedelta(days=2), D - dt.timedelta(days=1), D]
    built = plan_tasks(layout, days, ELIGIBILITY_DAYS)
    assert [(t.bucket, t.buckets, t.cutoffs, t.built) for t in built] == [(b, 4, tuple(days), True) for b in range(4)]
    # The 27 days D-29..D-3 before the first cut-off, in chunks, then one step a cut-off day.
    before = [d for d in sorted(layout) if days[0] - dt.timedelta(days=27) <= d < days[0]]
    chunks = [before[i : i + BUILD_CHUNK_DAYS] for i in range(0, len(before), BUILD_CHUNK_DAYS)]
    assert [s.day for s in built[0].steps] == [c[-1] for c in chunks] + days
    # D-29..D less the day missing and the day without files (empty files count): a file a day, two for bucket 1.
    assert len(built[0].files) == 30 - 2 and len(built[1].files) == 2 * (30 - 2)
    # From the state of the day before: one step a day, reading that day's files only.
    state_files = [[f"state-{b}.parquet"] for b in range(4)]
    continued = plan_tasks(layout, days, ELIGIBILITY_DAYS, state_files)
    assert all(not t.built and t.state_files == ((f"state-{t.bucket}.parquet", 4),) for t in continued)
    assert [s.day for s in continued[1].steps] == days
    assert [s.files for s in continued[1].steps] == [tuple((p, 4) for p in layout[d][1]) for d in days]
    with pytest.raises(ValueError, match="divide"):
        plan_tasks({D: [["a"], ["b"], ["c"]], D - dt.timedelta(days=1): [["a"], ["b"]]}, [D], ELIGIBILITY_DAYS)
    with pytest.raises(ValueError, match="divide"):
        plan_tasks(layout, [D], ELIGIBILITY_DAYS, [["s"]] * 3)
    with pytest.raises(ValueError, match="consecutive"):
        plan_tasks(layout, [D, D - dt.timedelta(days=2)], ELIGIBILITY_DAYS)
    with pytest.raises(ValueError, match="no cut-off"):
        plan_tasks(layout, [], ELIGIBILITY_DAYS)
    with pytest.raises(ValueError, match="outside"):
        plan_tasks(layout, [D], ELIGIBILITY_DAYS - 1)


@pytest.mark.slow
def test_tasks_read_and_write_s3(layout: dict, s3_root: str) -> None:
    # On a cluster that reads the store itself, tasks get s3:// URIs and write there too.
    store = resolve(s3_root)
    remote: list[list[str]] = []
    for paths in layout[D]:
        remote.append([])
        for path in paths:
            name = f"raw_events/{D}/{Path(path).name}"
            with store.fs.open_output_stream(store.path(name)) as out:
                out.write(Path(path).read_bytes())
            remote[-1].append(f"{s3_root}/{name}")
    out = outputs(s3_root, "w1")
    # D-1 built from the local files of its horizon, D from the state files D-1 left on S3 and D's raw_events there.
    before = write_days(layout, [D - dt.timedelta(days=1)], ELIGIBILITY_DAYS, out)[D - dt.timedelta(days=1)]
    summary = write_days({D: remote}, [D], ELIGIBILITY_DAYS, out, by_bucket(before.state_files))[D]
    assert all(path.startswith(f"{s3_root}/histories/date={D}/profile_bucket=") for path, _ in summary.files)
    assert all(path.startswith(f"{s3_root}/state/date={D}/profile_bucket=") for path, _ in summary.state_files)
    assert [bucket for _, bucket in summary.files] == [0, 1, 2, 3]

    def read(paths: tuple[tuple[str, int], ...]) -> pa.Table:
        return read_files((path[len("s3://") :] for path, _ in paths), store.fs)

    assert_same_histories(read(summary.files), oracle_histories(every_file(layout), D, horizon_days=ELIGIBILITY_DAYS))
    state = read(summary.state_files)
    assert state_horizon(state.schema) == ELIGIBILITY_DAYS
    assert_same_state(state, oracle_state(every_file(layout), D, ELIGIBILITY_DAYS))


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

"""Shared by the histories tests of the state: a shop older than the horizon, the state's own oracle, runs.

The shop is the simulator's profiles plus hand-built ones, each crossing one edge of the state
on the days checked (histories_shop_profiles). The state oracle computes a day's state straight
from every event of its horizon in DuckDB SQL, as histories_sql does the histories.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from consumer_assets.events.bucketing import NUM_PROFILE_BUCKETS
from consumer_assets.events.schema import ACTION_INDEX, ACTION_TYPES, RAW_EVENTS_SCHEMA
from consumer_assets.histories import STATE_SCHEMA, Outputs, WrittenDay, plan_tasks
from consumer_assets.histories.output import summarize_written, write_task
from consumer_assets.histories.schema import ARTICLE_BUCKETS, BRAND_BUCKETS, CATEGORY_BUCKETS, STATE_EVENTS
from consumer_assets.simulation import ShopSimulator
from consumer_assets_testing.oracle import connect, crc_bucket_sql
from consumer_assets_tests.support.histories import DAY_MS, event_table, ms, write_events

# The days checked: C+0 .. C+6 of the shop's first checked day C. C+0 is built from the horizon,
# the others follow day by day; three have no events, each in one of the empty forms.
CHECKED_DAYS = 7
EMPTY_OFFSETS = {2: "missing", 4: "no rows", 6: "None"}


@dataclass(frozen=True)
class OldShop:
    """raw_events of a shop older than its horizon, from before C+0's horizon to after the last day checked."""

    horizon_days: int
    days: list[dt.date]  # the days checked, C+0 first
    files: dict[dt.date, list[list[str]]]
    events: pa.Table  # every event of `files`
    everything: str  # one Parquet file of `events`: what the oracles read (faster than many small files)

    def day(self, offset: int) -> dt.date:
        return self.days[0] + dt.timedelta(days=offset)


def shop_profiles(c: dt.date, horizon_days: int) -> list[dict[str, object]]:
    """Hand-built profiles around the first day checked, C (offsets in days from C)."""
    h = horizon_days
    rows: list[dict[str, object]] = []

    def at(k: int, hours: float = 0.0) -> int:
        return ms(c + dt.timedelta(days=k), hours)

    def add(profile: str, times: Iterable[int], event_type: str = "product_view") -> None:
        start = sum(r["profile_id"] == profile for r in rows)
        for i, t in enumerate(times, start):
            rows.append({"profile_id": profile, "event_id": f"{profile}-{i:04d}", "ts": t, "event_type": event_type})

    # In the state on C and C+1 (its day is their horizon's first), gone on C+2, a day without events.
    add("h-leaver", (at(2 - h, 1 + i) for i in range(20)))
    # 201 events in C's horizon, the oldest at its first instant (one more a millisecond before, out of
    # it): cut to 200 with its real first gap on C; on C+1 the oldest leaves, 200 uncut.
    add("h-cut201", [at(1 - h) - 1, at(1 - h)])
    add("h-cut201", (at(-20 + i // 20, 1 + (i % 20) * 0.5) for i in range(200)))
    # Far more events than the state keeps, every day with events.
    busy = [k for k in range(-30, CHECKED_DAYS + 1) if k not in EMPTY_OFFSETS]
    add("h-heavy", (at(k, 0.5 + 1.5 * i) for k in busy for i in range(12)))
    # 14 events in the eligibility days on C, in the state but no history; the 15th on C+1.
    add("h-sleeper", (at(-3, i) for i in range(14)))
    add("h-sleeper", [at(1, 8)])
    # 15 events on C-27, the first eligibility day of C: a history on C, none on C+1, still in the state.
    add("h-fading", (at(-27, 1 + i) for i in range(15)))
    # An order on C's first horizon day and a return later: days since each, until the order leaves.
    add("h-buyer", [at(1 - h, 10)], "order")
    add("h-buyer", [at(-25, 10)], "return")
    add("h-buyer", (at(-2, i) for i in range(15)))
    # Equal timestamps in shuffled event-id order: ids decide.
    tied = [{"profile_id": "h-ties", "event_id": f"t{i}", "ts": at(-1, 12)} for i in (7, 12, 3, 0, 10, 5)]
    rows += [r | {"event_type": ACTION_TYPES[i]} for i, r in enumerate(tied)]
    add("h-ties", (at(-1, 13 + i) for i in range(14)))
    # New on C+5.
    add("h-newcomer", (at(5, i) for i in range(16)))
    return rows


def old_shop(root: Path, horizon_days: int, profiles: int = 300, seed: int = 11) -> OldShop:
    """A shop older than `horizon_days`: simulated from 12 days before C's horizon to C+7, plus shop_profiles."""
    c = dt.date(2024, 9, 2) + dt.timedelta(days=horizon_days)
    start, end = c - dt.timedelta(days=horizon_days + 12), c + dt.timedelta(days=CHECKED_DAYS)
    sim = ShopSimulator(profiles, seed, start)
    simulated = []
    while sim.day < end:
        simulated.append(sim.step().cast(RAW_EVENTS_SCHEMA))
    events = pa.concat_tables([*simulated, event_table(shop_profiles(c, horizon_days))])
    empty = {c + dt.timedelta(days=k): kind for k, kind in EMPTY_OFFSETS.items()}
    # An outage: the empty days lose their simulated events too.
    day = pc.cast(pc.cast(events["ts"], pa.timestamp("ms")), pa.date32())
    events = events.filter(pc.invert(pc.is_in(day, pa.array(list(empty), pa.date32()))))
    # Older days kept the layout of a smaller shop (2 buckets); it grew to the storage's 8.
    grown = c - dt.timedelta(days=10)
    days = [start + dt.timedelta(days=k) for k in range((end - start).days + 1)]
    buckets_of = {d: 2 if d < grown else NUM_PROFILE_BUCKETS for d in days}
    # Odd buckets in two files on the newer days only: the older ones are read by every task that builds.
    files = write_events(events, root, {d: n for d, n in buckets_of.items() if n == 2}, empty, split=False)
    files |= write_events(events, root, {d: n for d, n in buckets_of.items() if n > 2}, empty)
    everything = root / "every-event.parquet"
    pq.write_table(events, everything)
    checked = [c + dt.timedelta(days=k) for k in range(CHECKED_DAYS)]
    return OldShop(horizon_days, checked, dict(sorted(files.items())), events, str(everything))


# ---------------------------------------------------------------- the state's oracle


def oracle_state(paths: Sequence[str], day: dt.date, horizon_days: int) -> pa.Table:
    """The state as of the end of `day` in STATE_SCHEMA, by profile_id: per profile with an event in the
    horizon its newest STATE_EVENTS events there and its counts per active day, from every event."""
    hi = ms(day + dt.timedelta(days=1))
    lo = hi - horizon_days * DAY_MS
    files = ", ".join(f"'{p}'" for p in paths)
    actions = ", ".join(f"('{name}', {i})" for i, name in enumerate(ACTION_TYPES))
    order = "ORDER BY t, event_id"
    query = f"""
    WITH ev AS (
        SELECT profile_id, event_id, epoch_ms(ts) AS t, a.idx AS ty, article_id, brand_id, category, price,
            (epoch_ms(ts) // {DAY_MS})::INTEGER AS d
        FROM read_parquet([{files}]) JOIN (VALUES {actions}) a(name, idx) ON event_type = a.name
        WHERE epoch_ms(ts) >= {lo} AND epoch_ms(ts) < {hi}
    ),
    newest AS (
        SELECT *, row_number() OVER (PARTITION BY profile_id ORDER BY t DESC, event_id DESC) AS from_end FROM ev
    ),
    kept AS (
        SELECT profile_id, list(t {order}) AS ts, list(ty {order}) AS event_type,
            list({crc_bucket_sql("article_id", ARTICLE_BUCKETS)} {order}) AS article_bucket,
            list({crc_bucket_sql("brand_id", BRAND_BUCKETS)} {order}) AS brand_bucket,
            list({crc_bucket_sql("category", CATEGORY_BUCKETS)} {order}) AS category_bucket,
            list(ln(1 + greatest(coalesce(price, 0.0), 0.0))::FLOAT {order}) AS log_price
        FROM newest WHERE from_end <= {STATE_EVENTS} GROUP BY profile_id
    ),
    per_day AS (
        SELECT profile_id, d, count(*) AS n,
            count(*) FILTER (WHERE ty = {ACTION_INDEX["order"]}) AS o,
            count(*) FILTER (WHERE ty = {ACTION_INDEX["return"]}) AS r
        FROM ev GROUP BY profile_id, d
    ),
    days AS (
        SELECT profile_id, list(d ORDER BY d) AS day, list(n ORDER BY d) AS day_events,
            list(o ORDER BY d) AS day_orders, list(r ORDER BY d) AS day_returns
        FROM per_day GROUP BY profile_id
    )
    SELECT * FROM kept JOIN days USING (profile_id) ORDER BY profile_id
    """
    if not paths:
        return STATE_SCHEMA.empty_table()
    con = connect()
    try:
        return con.sql(query).to_arrow_table().select(STATE_SCHEMA.names).cast(STATE_SCHEMA)
    finally:
        con.close()


def assert_same_state(actual: pa.Table, expected: pa.Table) -> None:
    """Two states hold the same profiles, events and day counts (log_price to float32 rounding)."""
    actual = actual.cast(STATE_SCHEMA).sort_by("profile_id").combine_chunks()
    expected = expected.cast(STATE_SCHEMA).sort_by("profile_id").combine_chunks()
    assert actual["profile_id"].to_pylist() == expected["profile_id"].to_pylist()
    for name in STATE_SCHEMA.names[1:]:
        got, want = actual[name].chunk(0), expected[name].chunk(0)
        assert pc.list_value_length(got).equals(pc.list_value_length(want)), name
        got, want = pc.list_flatten(got), pc.list_flatten(want)
        if name == "log_price":
            np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-6, atol=1e-6, err_msg=name)
        else:
            assert got.equals(want), name


# ---------------------------------------------------------------- runs that write files


def outputs(root: Path | str, write_id: str) -> Outputs:
    return Outputs(f"{root}/histories", write_id, f"{root}/state", write_id)


def write_days(
    files: dict,
    cutoffs: list[dt.date],
    horizon_days: int,
    out: Outputs,
    state_files: list[list[str]] | None = None,
    task_buckets: int = 1,
) -> dict[dt.date, WrittenDay]:
    """The Spark job's write, run in this process: histories and state files of each cut-off day."""
    tasks = plan_tasks(files, cutoffs, horizon_days, state_files, task_buckets)
    return summarize_written(row for task in tasks for batch in write_task(task, out) for row in batch.to_pylist())


def by_bucket(written: Iterable[tuple[str, int]]) -> list[list[str]]:
    """(path, profile bucket) pairs as plan_tasks takes them: per bucket its paths. A day's layout is
    as many buckets as it has partitions: every task writes a file, empty or not."""
    pairs = list(written)
    buckets: list[list[str]] = [[] for _ in range(max(b for _, b in pairs) + 1)]
    for path, bucket in pairs:
        buckets[bucket].append(path)
    return buckets


def read_files(paths: Iterable[str], filesystem: object = None) -> pa.Table:
    return pa.concat_tables(pq.read_table(path, filesystem=filesystem) for path in paths)

"""Shared by the histories tests: synthetic raw events with edge cases, their bucketed layout, comparisons."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from consumer_assets.events.schema import ACTION_TYPES, RAW_EVENTS_SCHEMA
from consumer_assets.histories import HISTORIES_SCHEMA, State, encode, plan_tasks, profile_bucket
from consumer_assets.windows import HORIZON_DAYS

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


# ---------------------------------------------------------------- synthetic raw events


def event_table(rows: list[dict[str, object]]) -> pa.Table:
    defaults = {"session_id": "s", "event_type": "product_view", "article_id": "a1", "brand_id": "b1"}
    defaults |= {"category": "shoes", "price": 49.9}
    full = [defaults | row for row in rows]
    columns = {name: [r.get(name) for r in full] for name in RAW_EVENTS_SCHEMA.names}
    columns["ts"] = pa.array(columns["ts"], pa.int64()).cast(pa.timestamp("ms", tz="UTC"))
    return pa.table(columns, schema=RAW_EVENTS_SCHEMA)


def edge_rows() -> list[dict[str, object]]:
    """Hand-built profiles, one per edge of the definition. Each event sits in the file of its own
    day, as raw_events guarantees (ingest quarantines an event of another day)."""
    rows: list[dict[str, object]] = []
    day = D - dt.timedelta(days=3)
    # Equal timestamps: event ids decide ("e10" < "e2" < "e9" as strings), even against file order:
    # "e-1" and "e00" sort first but come last in the day's file (write_layout keeps row order for ties).
    for i in range(20):
        rows.append({"profile_id": "ties", "event_id": f"e{i}", "ts": ms(day, 12 + i // 4)})
        rows[-1]["event_type"] = ACTION_TYPES[i % len(ACTION_TYPES)]
    rows.append({"profile_id": "ties", "event_id": "e-1", "ts": ms(day, 12), "event_type": "login"})
    rows.append({"profile_id": "ties", "event_id": "e00", "ts": ms(day, 12), "event_type": "order"})
    # The threshold counts events of the eligibility days only: 14 inside (+5 before) is out, 15 is in.
    rows += [{"profile_id": "fourteen", "event_id": f"f{i}", "ts": ms(D, -i - 0.5)} for i in range(14)]
    rows += [{"profile_id": "fourteen", "event_id": f"g{i}", "ts": ms(D - dt.timedelta(days=30))} for i in range(5)]
    rows += [{"profile_id": "fifteen", "event_id": f"f{i:02d}", "ts": ms(D, -3 * i - 1)} for i in range(15)]
    # Longer than MAX_EVENTS: the newest 200 stay.
    for i in range(250):
        t = ms(D - dt.timedelta(days=27), 1.5 * i)
        rows.append({"profile_id": "long", "event_id": f"l{i:03d}", "ts": t, "event_type": ACTION_TYPES[i % 19]})
    # Window edges: D+1 00:00:00.000 is out, D 00:00 in, D-27 00:00 in, a millisecond before it out
    # of the eligibility days (and of a 28-day horizon, in a longer one).
    first = D - dt.timedelta(days=27)
    for i, t in enumerate([ms(D + dt.timedelta(days=1)), ms(D), ms(first), ms(first) - 1]):
        rows.append({"profile_id": "midnight", "event_id": f"m{i}", "ts": t})
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
    # Only events older than the eligibility days.
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


def write_layout(
    rows: list[dict[str, object]], root: Path, buckets_of: dict[dt.date, int], empty: dict[dt.date, str] = EMPTY_DAYS
) -> dict[dt.date, list[list[str]]]:
    """raw_events in the bucketed layout (write_events) from hand-built rows."""
    return write_events(event_table(rows), root, buckets_of, empty)


def write_events(
    table: pa.Table,
    root: Path,
    buckets_of: dict[dt.date, int],
    empty: dict[dt.date, str] = EMPTY_DAYS,
    split: bool = True,
) -> dict[dt.date, list[list[str]]]:
    """raw_events in the bucketed layout: per day of `buckets_of`, file b holds profile_bucket b, by
    (profile_id, ts), equal timestamps in row order; with `split` odd buckets are two files. `empty`
    days have no events: "missing" no entry at all, "None" no files, "no rows" empty files."""
    day_of_row = pc.cast(pc.cast(table["ts"], pa.timestamp("ms")), pa.date32())
    table = table.append_column("row", pa.array(np.arange(table.num_rows)))
    files: dict[dt.date, list[list[str]]] = {}
    for day, buckets in buckets_of.items():
        of_day = table.filter(pc.equal(day_of_row, pa.scalar(day, pa.date32())))
        if empty.get(day) == "missing":
            continue
        if empty.get(day) == "None":
            files[day] = [[] for _ in range(buckets)]
            continue
        if empty.get(day) == "no rows":
            of_day = of_day.slice(0, 0)
        bucket = profile_bucket(of_day["profile_id"], buckets)
        files[day] = []
        for b in range(buckets):
            part = of_day.filter(pa.array(bucket == b))
            part = part.sort_by([("profile_id", "ascending"), ("ts", "ascending"), ("row", "ascending")])
            part = part.drop(["row"])
            # A bucket may be several files (a table compacted or appended to): split odd buckets in two.
            halves = [part.slice(0, part.num_rows // 2), part.slice(part.num_rows // 2)] if split and b % 2 else [part]
            files[day].append([])
            for n, half in enumerate(halves):
                path = root / f"date={day}" / f"bucket-{b}-{n}.parquet"
                path.parent.mkdir(parents=True, exist_ok=True)
                pq.write_table(half, path)
                files[day][-1].append(str(path))
    return files


DAYS = [D - dt.timedelta(days=k) for k in range(-2, 45)]


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


def consecutive_runs(days: list[dt.date]) -> list[list[dt.date]]:
    """Sorted days split where they skip a day: one plan_tasks per run."""
    runs: list[list[dt.date]] = []
    for day in sorted(set(days)):
        if runs and day - runs[-1][-1] == dt.timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    return runs


def local_states(
    files: dict,
    cutoffs: list[dt.date],
    horizon_days: int = HORIZON_DAYS,
    state_files: list | None = None,
    task_buckets: int = 1,
) -> dict[dt.date, list[State]]:
    """The Spark job's tasks, run in this process: each cut-off day's states, one per task bucket
    (cut-offs that skip days are planned apart, each run built from the horizon unless `state_files`)."""
    states: dict[dt.date, list[State]] = {day: [] for day in cutoffs}
    for run in consecutive_runs(cutoffs):
        for task in plan_tasks(files, run, horizon_days, state_files, task_buckets):
            for state in task.states():
                states[state.day].append(state)
    return states


def local_histories(
    files: dict,
    cutoffs: list[dt.date],
    horizon_days: int = HORIZON_DAYS,
    state_files: list | None = None,
    task_buckets: int = 1,
) -> dict[dt.date, pa.Table]:
    """The histories of each cut-off day, as the Spark job's tasks encode them (local_states)."""
    states = local_states(files, cutoffs, horizon_days, state_files, task_buckets)
    return {day: pa.concat_tables([encode(s) for s in of_day]) for day, of_day in states.items()}


def state_table(states: list[State]) -> pa.Table:
    """The states of a day's task buckets as one STATE_SCHEMA table, by profile_id."""
    return pa.concat_tables([s.to_table() for s in states]).sort_by("profile_id")

"""Histories kept day by day on a shop older than the horizon: each day from the day before's state files plus
one day of raw events equals the oracle over the whole horizon, and the path built from the horizon."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from consumer_assets.events.schema import ACTION_INDEX, ACTION_TYPES
from consumer_assets.histories import (
    MAX_EVENTS,
    MIN_EVENTS,
    STATE_SCHEMA,
    State,
    WrittenDay,
    advance,
    cutoff_ms,
    encode,
    encode_histories,
    plan_tasks,
    sort_events,
)
from consumer_assets.histories.encode import between
from consumer_assets.histories.schema import STATE_EVENTS
from consumer_assets_testing.oracle import oracle_histories
from consumer_assets_tests.support.histories import (
    assert_same_histories,
    event_table,
    local_states,
    ms,
    state_table,
)
from consumer_assets_tests.support.history_states import (
    OldShop,
    assert_same_state,
    by_bucket,
    oracle_state,
    outputs,
    read_files,
    write_days,
)


def raw_paths(shop: OldShop, day: dt.date) -> set[str]:
    return {p for paths in shop.files.get(day, []) for p in paths}


def chain_from_state_files(
    shop: OldShop, root: Path, days: list[dt.date], task_buckets: list[int] | None = None
) -> dict[dt.date, WrittenDay]:
    """Write the first day built from the horizon, then each next day from the state files written the
    day before, each day with its `task_buckets` (1: as many as the layout has)."""
    task_buckets = task_buckets or [1] * len(days)
    out = outputs(root, "w")
    written = write_days(shop.files, days[:1], shop.horizon_days, out, task_buckets=task_buckets[0])
    for before, day, buckets in zip(days[:-1], days[1:], task_buckets[1:], strict=True):
        state_files = by_bucket(written[before].state_files)
        tasks = plan_tasks(shop.files, [day], shop.horizon_days, state_files, buckets)
        # Never the horizon again: the day before's state and the day's own raw events, nothing else.
        assert not any(task.built for task in tasks)
        read = {path for task in tasks for path, _ in task.files}
        assert read == {p for paths in state_files for p in paths} | raw_paths(shop, day)
        written |= write_days(shop.files, [day], shop.horizon_days, out, state_files, buckets)
    return written


@pytest.mark.parametrize(("which", "checked"), [("shop", 7), ("shop_default_horizon", 5)])
def test_day_by_day_from_state_files_is_the_oracle_and_the_built_path(
    which: str, checked: int, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    shop: OldShop = request.getfixturevalue(which)
    h, days = shop.horizon_days, shop.days[:checked]
    written = chain_from_state_files(shop, tmp_path, days)
    # Built from the horizon anew on the last day checked (a day without events) and, with the short horizon,
    # on C+2 (a day without even a raw_events entry).
    built = local_states(shop.files, [days[-1]] if h > 100 else [shop.day(2), days[-1]], h)
    truncated = 0
    for day in days:
        histories = read_files(path for path, _ in written[day].files)
        expected = oracle_histories([shop.everything], day, horizon_days=h)
        assert expected.num_rows > 50
        assert_same_histories(histories, expected)
        truncated += pc.sum(pc.greater(expected["n_window_events"], expected["n_events"])).as_py()
        state = read_files(path for path, _ in written[day].state_files)
        assert_same_state(state, oracle_state([shop.everything], day, h))
        # Profiles without a history today are in the state all the same.
        assert state.num_rows > expected.num_rows
        if day in built:
            # Both paths: the same state, bit for bit, so the same histories.
            assert state.cast(STATE_SCHEMA).sort_by("profile_id").equals(state_table(built[day]))
            from_horizon = pa.concat_tables(encode(s) for s in built[day]).sort_by("profile_id")
            assert histories.sort_by("profile_id").equals(from_horizon)
    assert truncated > len(days)


def test_the_state_keeps_the_horizon_and_the_newest_events(shop: OldShop) -> None:
    h, c = shop.horizon_days, shop.days[0]
    # In memory: built on C, advanced a day at a time.
    states = {day: state_table(s) for day, s in local_states(shop.files, shop.days, h).items()}
    histories = {day: encode(State.from_table(t, day, h)) for day, t in states.items()}
    alone = dict(encode_histories(shop.events, shop.days, h))

    def row(table: pa.Table, profile: str) -> dict | None:
        found = table.filter(pc.equal(table["profile_id"], profile)).to_pylist()
        return found[0] if found else None

    for k, day in enumerate(shop.days):
        assert_same_state(states[day], oracle_state([shop.everything], day, h))
        assert_same_histories(histories[day], oracle_histories([shop.everything], day, horizon_days=h))
        assert histories[day].equals(alone[day])
        # Every state row keeps at most STATE_EVENTS events, all within the horizon, and an active day there.
        lengths = pc.list_value_length(states[day]["ts"]).to_numpy()
        assert lengths.max() == STATE_EVENTS and lengths.min() >= 1
        assert pc.min(pc.list_flatten(states[day]["ts"])).as_py() >= ms(day - dt.timedelta(days=h - 1))
        # The leaver's only day is the first of C+1's horizon: gone on C+2, a day without any events.
        assert (row(states[day], "h-leaver") is not None) == (k <= 1)
        assert row(histories[day], "h-leaver") is None
        assert (row(states[day], "h-newcomer") is not None) == (k >= 5)

    heavy = row(states[c], "h-heavy")
    all_heavy = shop.events.filter(pc.equal(shop.events["profile_id"], "h-heavy"))
    in_horizon = [t for t in sorted(all_heavy["ts"].cast(pa.int64()).to_pylist()) if t < cutoff_ms(c)]
    assert heavy["ts"] == in_horizon[-STATE_EVENTS:] and len(in_horizon) > STATE_EVENTS + 100
    assert (row(histories[c], "h-heavy")["n_events"], row(histories[c], "h-heavy")["n_window_events"]) == (
        MAX_EVENTS,
        len(in_horizon),
    )

    # 201 events on C, the oldest at the horizon's first instant: cut, with the real gap before the first kept.
    cut_c, cut_next = row(histories[c], "h-cut201"), row(histories[shop.day(1)], "h-cut201")
    assert (cut_c["n_events"], cut_c["n_window_events"]) == (MAX_EVENTS, MAX_EVENTS + 1)
    gap_s = (ms(c - dt.timedelta(days=20), 1) - ms(c - dt.timedelta(days=h - 1))) / 1000
    assert cut_c["log_dt"][0] == pytest.approx(np.log1p(gap_s), rel=1e-6)
    assert row(states[c], "h-cut201")["ts"][0] == ms(c - dt.timedelta(days=h - 1))
    # A day later the oldest has left the horizon: 200 events, not cut, no gap before the first.
    assert (cut_next["n_events"], cut_next["n_window_events"], cut_next["log_dt"][0]) == (MAX_EVENTS, MAX_EVENTS, 0.0)
    assert cut_next["log_dt"][1:] == cut_c["log_dt"][1:]

    # Not eligible on C with 14 events, but kept: eligible on C+1 with its 15th.
    assert row(histories[c], "h-sleeper") is None and len(row(states[c], "h-sleeper")["ts"]) == MIN_EVENTS - 1
    assert row(histories[shop.day(1)], "h-sleeper")["n_recent_events"] == MIN_EVENTS
    # Eligible on C by its events of C-27; not on C+1, when they are past the eligibility days, yet kept.
    assert row(histories[c], "h-fading")["n_recent_events"] == MIN_EVENTS
    assert row(histories[shop.day(1)], "h-fading") is None and row(states[shop.day(1)], "h-fading") is not None

    # The order of C's first horizon day counts on C, and is gone with it on C+1.
    buyer_c, buyer_next = row(histories[c], "h-buyer"), row(histories[shop.day(1)], "h-buyer")
    assert (buyer_c["n_orders"], buyer_c["days_since_last_order"], buyer_c["days_since_last_return"]) == (1, h - 1, 25)
    assert (buyer_c["days_since_first_event"], buyer_c["active_days"]) == (h - 1, 3)
    assert (buyer_next["n_orders"], buyer_next["days_since_last_order"], buyer_next["days_since_last_return"]) == (
        0,
        None,
        26,
    )
    assert (buyer_next["days_since_first_event"], buyer_next["active_days"]) == (26, 2)

    # Equal timestamps: event ids decide ("t0" < "t10" < "t12" < "t3" < "t5" < "t7"), not the file order.
    ties = row(histories[c], "h-ties")
    names = [ACTION_TYPES[i] for i in (3, 4, 1, 2, 5, 0)]
    assert ties["event_type"][:6] == [ACTION_INDEX[n] for n in names]


def test_a_state_of_another_horizon_is_refused(shop: OldShop, tmp_path: Path) -> None:
    h, c = shop.horizon_days, shop.days[0]
    written = write_days(shop.files, [c], h, outputs(tmp_path, "w"))
    state_files = by_bucket(written[c].state_files)
    for other in (h + 1, 180):
        tasks = plan_tasks(shop.files, [shop.day(1)], other, state_files)
        with pytest.raises(ValueError, match=rf"is a state of a {h}-day horizon, not {other}"):
            next(tasks[0].states())
    # A state file recording no horizon at all is refused too.
    path = state_files[3][0]
    pq.write_table(pq.read_table(path).cast(STATE_SCHEMA), path)
    tasks = plan_tasks(shop.files, [shop.day(1)], h, state_files)
    with pytest.raises(ValueError, match="records no horizon"):
        next(tasks[3].states())
    assert len(list(tasks[2].states())) == 1


def test_a_state_file_in_the_wrong_bucket_position_is_refused(shop: OldShop, tmp_path: Path) -> None:
    h, c = shop.horizon_days, shop.days[0]
    state_files = by_bucket(write_days(shop.files, [c], h, outputs(tmp_path, "w"))[c].state_files)
    # Bucket 1's state listed as bucket 0's: continuing it would mix profiles of two tasks.
    swapped = [state_files[1], state_files[0], *state_files[2:]]
    with pytest.raises(ValueError, match=r"should hold only profiles of bucket 0 of 8"):
        next(plan_tasks(shop.files, [shop.day(1)], h, swapped)[0].states())


def test_finer_task_buckets_give_the_same_rows(shop: OldShop, tmp_path: Path) -> None:
    h = shop.horizon_days
    # Built by 16 tasks (the layout has 8 buckets), then 8 from 16's state, 32 from 8's, 8 from 32's, 16 from 8's.
    task_buckets = [16, 1, 32, 1, 16]
    days = shop.days[: len(task_buckets)]
    written = chain_from_state_files(shop, tmp_path, days, task_buckets)
    for day, buckets in zip(days, task_buckets, strict=True):
        assert len(written[day].files) == len(written[day].state_files) == max(buckets, 8)
        assert {bucket for _, bucket in written[day].state_files} == set(range(8))
        expected = oracle_histories([shop.everything], day, horizon_days=h)
        assert_same_histories(read_files(path for path, _ in written[day].files), expected)
        assert_same_state(
            read_files(path for path, _ in written[day].state_files), oracle_state([shop.everything], day, h)
        )


# ---------------------------------------------------------------- advance


def day_events(profile: str, times: list[int]) -> pa.Table:
    return event_table([{"profile_id": profile, "event_id": f"e{i}", "ts": t} for i, t in enumerate(times)])


def test_advance_refuses_events_outside_its_days() -> None:
    day = dt.date(2024, 5, 1)
    state = State.empty(day, 40)
    following = day + dt.timedelta(days=1)
    with pytest.raises(ValueError, match="back to"):
        advance(state, sort_events(day_events("p", [])), day - dt.timedelta(days=1))
    # The last millisecond of the state's own day, and the first of the day after the target: refused.
    for ts in (cutoff_ms(day) - 1, cutoff_ms(following)):
        with pytest.raises(ValueError, match="must lie after 2024-05-01, up to 2024-05-02"):
            advance(state, sort_events(day_events("p", [cutoff_ms(day), ts])), following)
    # The first and the last millisecond of the target day are its own.
    edges = advance(state, sort_events(day_events("p", [cutoff_ms(day), cutoff_ms(following) - 1])), following)
    assert (edges.day, edges.n_events, edges.days["day_events"].tolist()) == (following, 2, [2])


def test_advance_over_several_days_is_advancing_day_by_day(shop: OldShop) -> None:
    h, c = shop.horizon_days, shop.days[0]
    events = sort_events(shop.events)
    start = State.empty(c - dt.timedelta(days=h), h)
    built = advance(start, between(events, cutoff_ms(start.day), cutoff_ms(c)), c)
    stepped = built
    for day in shop.days[1:]:
        stepped = advance(stepped, between(events, cutoff_ms(stepped.day), cutoff_ms(day)), day)
    last = shop.days[-1]
    at_once = advance(built, between(events, cutoff_ms(c), cutoff_ms(last)), last)
    assert at_once.to_table().equals(stepped.to_table()) and len(at_once) > 100
    assert encode(at_once).equals(encode(stepped))
    # With no events, days only age a state: its profiles leave one by one, and with the horizon all are gone.
    nothing = between(events, 0, 0)
    aged = advance(at_once, nothing, last + dt.timedelta(days=h - 2))
    assert 0 < len(aged) < len(at_once)
    assert len(advance(aged, nothing, last + dt.timedelta(days=h))) == 0

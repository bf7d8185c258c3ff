"""The histories state of a day, how the next day's events advance it, and the histories it holds.

A day's state (schema.STATE_SCHEMA) keeps, per profile with an event in the horizon, its newest
STATE_EVENTS events there and its event, order and return counts per active day. That is all a
history as of the day needs, and all the next day needs:

- the newest MAX_EVENTS events of a horizon are among the newest STATE_EVENTS of the day before's
  horizon plus the new day's events (a horizon loses its oldest day and gains the new one, and
  a profile's events only ever arrive after the ones it has), and the one event beyond them is
  the gap before a truncated history's first event;
- the counts of the horizon, of the eligibility days, and the first and last active days come
  from the day counts, which lose the days that leave the horizon.

So `advance(state, events of the next days)` gives exactly the state built from the whole horizon
(`advance` from an empty state over the horizon's days), and `encode` turns any
state into the histories of its day (`encode_arrays`: the same as numpy arrays). Plain numpy and
pyarrow over flat arrays with offsets (histories.lists), one profile bucket at a time
(histories.tasks); nothing here knows of files or Spark.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from consumer_assets.events.schema import ACTION_INDEX
from consumer_assets.histories.encode import EncodedHistories, SortedEvents, between, cutoff_features, sort_events
from consumer_assets.histories.lists import gather, gather_both, per_row, row_of, tails, union_of
from consumer_assets.histories.schema import (
    MAX_EVENTS,
    MIN_EVENTS,
    MS_PER_DAY,
    STATE_EVENTS,
    STATE_SCHEMA,
    cutoff_ms,
    epoch_day,
)
from consumer_assets.windows import ELIGIBILITY, HORIZON_DAYS, horizon

EVENT_FIELDS = ("ts", "event_type", "article_bucket", "brand_bucket", "category_bucket", "log_price")
DAY_FIELDS = ("day", "day_events", "day_orders", "day_returns")
# The type of each event and day field in memory.
FIELD_DTYPES = {
    "ts": np.int64,
    "event_type": np.int8,
    "article_bucket": np.int32,
    "brand_bucket": np.int32,
    "category_bucket": np.int32,
    "log_price": np.float32,
    **dict.fromkeys(DAY_FIELDS, np.int32),
}
_ORDER, _RETURN = ACTION_INDEX["order"], ACTION_INDEX["return"]


@dataclass(frozen=True)
class State:
    """The state as of the end of `day`: profiles sorted by id, per-profile events and active days
    as flat arrays (`events[name]`, `days[name]`) cut by `event_offsets` and `day_offsets`."""

    day: dt.date
    horizon_days: int
    profile_ids: pa.Array
    event_offsets: np.ndarray
    events: dict[str, np.ndarray]
    day_offsets: np.ndarray
    days: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.profile_ids)

    @property
    def n_events(self) -> int:
        return int(self.event_offsets[-1])

    @classmethod
    def empty(cls, day: dt.date, horizon_days: int) -> State:
        return cls(
            day,
            horizon_days,
            pa.array([], pa.string()),
            np.zeros(1, np.int64),
            {k: np.zeros(0, FIELD_DTYPES[k]) for k in EVENT_FIELDS},
            np.zeros(1, np.int64),
            {k: np.zeros(0, FIELD_DTYPES[k]) for k in DAY_FIELDS},
        )

    def to_table(self) -> pa.Table:
        """The state in STATE_SCHEMA."""
        ev, dy = pa.array(self.event_offsets.astype(np.int32)), pa.array(self.day_offsets.astype(np.int32))
        columns = {"profile_id": self.profile_ids}
        columns |= {k: pa.ListArray.from_arrays(ev, pa.array(self.events[k])) for k in EVENT_FIELDS}
        columns |= {k: pa.ListArray.from_arrays(dy, pa.array(self.days[k])) for k in DAY_FIELDS}
        return pa.Table.from_pydict(columns, schema=STATE_SCHEMA)

    @classmethod
    def from_table(cls, table: pa.Table, day: dt.date, horizon_days: int) -> State:
        """A state read back (rows sorted by profile_id, as written); checks the lists line up."""
        table = table.select(STATE_SCHEMA.names).cast(STATE_SCHEMA).combine_chunks()
        if not len(table):
            return cls.empty(day, horizon_days)
        ids = table["profile_id"].chunk(0)
        if ids.null_count or (len(ids) > 1 and not pc.all(pc.less(ids[:-1], ids[1:])).as_py()):
            raise ValueError("a state's profile ids must be unique, non-null and sorted")

        def parts(names: tuple[str, ...]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            first = table[names[0]].chunk(0)
            offsets = first.offsets.to_numpy().astype(np.int64)
            values = {}
            for name in names:
                column = table[name].chunk(0)
                if column.null_count or not np.array_equal(column.offsets.to_numpy(), first.offsets.to_numpy()):
                    raise ValueError(f"state column {name} does not line up with {names[0]}")
                values[name] = column.values.to_numpy(zero_copy_only=False)[offsets[0] : offsets[-1]]
            return offsets - offsets[0], values

        event_offsets, events = parts(EVENT_FIELDS)
        day_offsets, days = parts(DAY_FIELDS)
        if np.any(np.diff(event_offsets) > STATE_EVENTS) or np.any(np.diff(day_offsets) == 0):
            raise ValueError(f"a state row holds more than {STATE_EVENTS} events, or no active day")
        return cls(day, horizon_days, ids, event_offsets, events, day_offsets, days)

    def take(self, rows: np.ndarray) -> State:
        """The profiles at positions `rows` (sorted), e.g. one finer bucket of them."""
        ev_idx, ev_off = gather(self.event_offsets, rows)
        dy_idx, dy_off = gather(self.day_offsets, rows)
        return dataclasses.replace(
            self,
            profile_ids=self.profile_ids.take(pa.array(rows)),
            event_offsets=ev_off,
            events={k: v[ev_idx] for k, v in self.events.items()},
            day_offsets=dy_off,
            days={k: v[dy_idx] for k, v in self.days.items()},
        )


def _new_profiles(events: SortedEvents) -> tuple[pa.Array, np.ndarray, dict[str, np.ndarray], np.ndarray, dict]:
    """The new events per profile: ids, event offsets and fields, day offsets and day counts."""
    rank = events.rank
    n = len(rank)
    starts = np.flatnonzero(np.r_[True, rank[1:] != rank[:-1]]) if n else np.zeros(0, np.int64)
    ids = events.profile_ids.take(pa.array(rank[starts])) if n else pa.array([], pa.string())
    event_offsets = np.r_[starts, n].astype(np.int64)
    fields = {k: np.asarray(getattr(events, k), FIELD_DTYPES[k]) for k in EVENT_FIELDS}
    # Active days: runs of equal (profile, day) in the (profile, ts) order.
    day = (events.ts // MS_PER_DAY).astype(np.int32)
    run_starts = np.flatnonzero(np.r_[True, (rank[1:] != rank[:-1]) | (day[1:] != day[:-1])]) if n else starts
    bounds = np.r_[run_starts, n]
    counts = np.diff(bounds)
    cum_orders = np.r_[0, np.cumsum(events.event_type == _ORDER)]
    cum_returns = np.r_[0, np.cumsum(events.event_type == _RETURN)]
    days = {
        "day": day[run_starts],
        "day_events": counts.astype(np.int32),
        "day_orders": np.diff(cum_orders[bounds]).astype(np.int32),
        "day_returns": np.diff(cum_returns[bounds]).astype(np.int32),
    }
    # Day runs per profile: a profile's runs start at its first event.
    day_offsets = np.searchsorted(run_starts, event_offsets).astype(np.int64)
    return ids, event_offsets, fields, day_offsets, days


def advance(state: State, events: SortedEvents, day: dt.date) -> State:
    """The state as of the end of `day` from the state of an earlier day and every event after it up
    to the end of `day` (sorted, as sort_events gives them)."""
    if day < state.day:
        raise ValueError(f"cannot advance a state of {state.day} back to {day}")
    if len(events) and (events.ts.min() < cutoff_ms(state.day) or events.ts.max() >= cutoff_ms(day)):
        raise ValueError(f"events to advance a state of {state.day} to {day} must lie after {state.day}, up to {day}")
    ids, ev_off_b, ev_b, dy_off_b, dy_b = _new_profiles(events)

    union, pos_a, pos_b = union_of(state.profile_ids, ids)
    n = len(union)

    # Keep what is in the horizon of `day`: the newest STATE_EVENTS events, the active days. A row's
    # lists in the state are older than its new ones and sorted, so what leaves is a prefix of each.
    first_day = horizon(state.horizon_days).first(day)
    lo_ms, lo_day = cutoff_ms(first_day) - MS_PER_DAY, epoch_day(first_day)
    rows_ev_a = per_row(n, pos_a, state.event_offsets, state.events["ts"] < lo_ms)
    rows_ev_b = per_row(n, pos_b, ev_off_b, ev_b["ts"] < lo_ms)
    rows_dy_a = per_row(n, pos_a, state.day_offsets, state.days["day"] < lo_day)
    rows_dy_b = per_row(n, pos_b, dy_off_b, dy_b["day"] < lo_day)
    # A profile with no day left in the horizon has no event left either: it leaves the state.
    alive = np.flatnonzero(rows_dy_a[1] + rows_dy_b[1] - rows_dy_a[2] - rows_dy_b[2] > 0)
    ev_off, ev_source = tails(rows_ev_a, rows_ev_b, alive, len(state.events["ts"]), STATE_EVENTS)
    dy_off, dy_source = tails(rows_dy_a, rows_dy_b, alive, len(state.days["day"]))
    return State(
        day,
        state.horizon_days,
        union if len(alive) == n else union.take(pa.array(alive)),
        ev_off,
        gather_both(state.events, ev_b, ev_source),
        dy_off,
        gather_both(state.days, dy_b, dy_source),
    )


def encode(state: State, at_ms: int | np.ndarray | None = None) -> pa.Table:
    """The histories as of the state's day, in HISTORIES_SCHEMA, one row per eligible profile, by id;
    predicting at `at_ms` (epoch ms, within the day's last 24 hours; one for all profiles, or one per
    row of the state) instead of at its cut-off."""
    return encode_arrays(state, at_ms).table()


def encode_arrays(state: State, at_ms: int | np.ndarray | None = None) -> EncodedHistories:
    """encode's histories as numpy arrays, before they become a table."""
    day = state.day
    day_row = row_of(state.day_offsets)
    n = len(state)
    per_day = state.days
    recent = per_day["day"] >= epoch_day(ELIGIBILITY.first(day))
    n_recent = np.bincount(day_row[recent], weights=per_day["day_events"][recent], minlength=n).astype(np.int64)
    eligible = np.flatnonzero(n_recent >= MIN_EVENTS)
    n_recent = n_recent[eligible]
    if isinstance(at_ms, np.ndarray):
        at_ms = at_ms[eligible]
    # The newest MAX_EVENTS events of each eligible profile, gathered once from the state's arrays.
    counts = np.diff(state.event_offsets)[eligible]  # <= STATE_EVENTS
    lengths = np.minimum(counts, MAX_EVENTS)
    offsets = np.zeros(len(eligible) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ends = state.event_offsets[1:][eligible]
    rows = np.arange(offsets[-1], dtype=np.int64) + np.repeat(ends - lengths - offsets[:-1], lengths)
    ts = state.events["ts"][rows]
    gap_ms = np.diff(ts, prepend=ts[:1]) if len(ts) else ts
    # A truncated history's first event has the real gap to the newest event cut off; else none.
    firsts = offsets[:-1]
    cut = counts > lengths
    gap_ms[firsts] = np.where(cut, ts[firsts] - state.events["ts"][np.maximum(ends - lengths - 1, 0)], 0)

    today = epoch_day(day)

    def total(name: str) -> np.ndarray:
        return np.bincount(day_row, weights=per_day[name], minlength=n)[eligible].astype(np.int32)

    nulls: dict[str, np.ndarray] = {}

    def days_since_last(name: str, column: str) -> np.ndarray:
        last = np.full(n, -1, np.int64)
        has = per_day[name] > 0
        np.maximum.at(last, day_row[has], per_day["day"][has].astype(np.int64))
        last = last[eligible]
        nulls[column] = last < 0
        return (today - last).astype(np.int32)

    columns = {
        "n_events": lengths.astype(np.int32),
        "n_window_events": total("day_events"),
        **cutoff_features(offsets, ts, gap_ms, {k: state.events[k][rows] for k in EVENT_FIELDS[1:]}, day, at_ms),
        "n_recent_events": n_recent.astype(np.int32),
        "active_days": np.diff(state.day_offsets)[eligible].astype(np.int32),
        "days_since_first_event": (today - per_day["day"][state.day_offsets[:-1][eligible]]).astype(np.int32),
        "n_orders": total("day_orders"),
        "n_returns": total("day_returns"),
        "days_since_last_order": days_since_last("day_orders", "days_since_last_order"),
        "days_since_last_return": days_since_last("day_returns", "days_since_last_return"),
    }
    return EncodedHistories(state.profile_ids.take(pa.array(eligible)), offsets, columns, nulls)


def encode_histories(
    events: pa.Table, cutoffs: Iterable[dt.date], horizon_days: int = HORIZON_DAYS
) -> Iterator[tuple[dt.date, pa.Table]]:
    """The histories as of each cut-off day from a table of raw events (all of one set of profiles,
    covering the first cut-off's horizon through the last cut-off): built once, then advanced."""
    days = sorted(set(cutoffs))
    if not days:
        return
    events_sorted = sort_events(events)
    first = horizon(horizon_days).first(days[0])
    state = State.empty(first - dt.timedelta(days=1), horizon_days)
    for day in days:
        state = advance(state, between(events_sorted, cutoff_ms(state.day), cutoff_ms(day)), day)
        yield day, encode(state)

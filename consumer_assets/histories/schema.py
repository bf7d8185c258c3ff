"""What a consumer history is: the paper's input definition as named constants and an Arrow schema.

A history is computed "as of" a cut-off day D: the cut-off is the instant D+1 00:00 UTC
(exclusive). A profile has one if it has at least MIN_EVENTS events in the days windows.ELIGIBILITY
of D (D-27 .. D); the history is then its last MAX_EVENTS events of the horizon, the H days up to D
(windows.horizon, H = 180 by default), plus a few summaries of the whole horizon.

The state (STATE_SCHEMA) is what day D+1 continues from: every profile with an event in the
horizon, its newest MAX_EVENTS + 1 events there and its event counts per active day.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from consumer_assets.windows import Window

MAX_EVENTS = 200
# Counted in the whole window, before truncation to MAX_EVENTS.
MIN_EVENTS = 15

# Sizes of the id hash spaces, bucket 0 included (reserved for "no id": null or empty). Changing
# one changes every encoded history, so a trained model records the sizes it was trained with.
ARTICLE_BUCKETS = 2**14
BRAND_BUCKETS = 2**10
CATEGORY_BUCKETS = 2**6

MS_PER_DAY = 86_400_000
MS_PER_HOUR = 3_600_000

# The day a row was computed for: the partition key. Files written per day keep it in the path
# (`.../cutoff_date=YYYY-MM-DD/`), like raw_events' date, so HISTORIES_SCHEMA leaves it out.
CUTOFF_COLUMN = "cutoff_date"

# Sequence columns hold one value per event, oldest first; all lists of a row have n_events items.
SEQUENCE_COLUMNS: tuple[str, ...] = (
    "event_type",
    "log_dt",
    "article_bucket",
    "brand_bucket",
    "category_bucket",
    "log_price",
)

# One row per profile, as stored for one cut-off day.
HISTORIES_SCHEMA = pa.schema(
    [
        pa.field("profile_id", pa.string()),
        # Length of the sequences (<= MAX_EVENTS).
        pa.field("n_events", pa.int32()),
        # Events in the horizon before truncation; > n_events means the history was cut.
        pa.field("n_window_events", pa.int32()),
        # Index into events.schema.ACTION_TYPES.
        pa.field("event_type", pa.list_(pa.int8())),
        # log1p(seconds since the previous event in the window): for the first event of a
        # truncated history that is the newest event cut off; 0 for the first event of the window.
        pa.field("log_dt", pa.list_(pa.float32())),
        pa.field("article_bucket", pa.list_(pa.int32())),
        pa.field("brand_bucket", pa.list_(pa.int32())),
        pa.field("category_bucket", pa.list_(pa.int32())),
        # log1p(price); 0 where the event has no price (or an invalid negative one).
        pa.field("log_price", pa.list_(pa.float32())),
        # Non-sequence inputs, all about the prediction moment (the cut-off):
        pa.field("hours_since_last_event", pa.float32()),
        # Weekday of the cut-off instant D+1 00:00 UTC, Monday = 0: the first day predicted.
        pa.field("cutoff_weekday", pa.int8()),
        # UTC hour of day of the last event, fractional (14.5 = 14:30), in [0, 24).
        pa.field("last_event_hour", pa.float32()),
        # Summaries of the whole horizon, which the last MAX_EVENTS events may not reach back over
        # (days count from D: 0 = on day D itself):
        # events in the eligibility days (D-27 .. D): at least MIN_EVENTS;
        pa.field("n_recent_events", pa.int32()),
        # days with at least one event;
        pa.field("active_days", pa.int32()),
        # days since the first active day;
        pa.field("days_since_first_event", pa.int32()),
        # orders and returns (events of those types);
        pa.field("n_orders", pa.int32()),
        pa.field("n_returns", pa.int32()),
        # days since the last day with an order, a return: null when there was none.
        pa.field("days_since_last_order", pa.int32()),
        pa.field("days_since_last_return", pa.int32()),
    ]
)

# The state of day D, one row per profile with an event in the horizon of D, by profile_id. Lists
# are oldest first; the event lists have the same length (<= MAX_EVENTS + 1: the extra event gives
# a truncated history's first gap), and so do the day lists.
STATE_SCHEMA = pa.schema(
    [
        pa.field("profile_id", pa.string()),
        pa.field("ts", pa.list_(pa.int64())),  # epoch milliseconds
        pa.field("event_type", pa.list_(pa.int8())),
        pa.field("article_bucket", pa.list_(pa.int32())),
        pa.field("brand_bucket", pa.list_(pa.int32())),
        pa.field("category_bucket", pa.list_(pa.int32())),
        pa.field("log_price", pa.list_(pa.float32())),
        pa.field("day", pa.list_(pa.int32())),  # days since 1970-01-01 with at least one event
        pa.field("day_events", pa.list_(pa.int32())),
        pa.field("day_orders", pa.list_(pa.int32())),
        pa.field("day_returns", pa.list_(pa.int32())),
    ]
)
STATE_EVENTS = MAX_EVENTS + 1


def cutoff_ms(day: dt.date) -> int:
    """The cut-off of day D in epoch milliseconds: D+1 00:00 UTC, excluded from the window."""
    return epoch_day(day) * MS_PER_DAY + MS_PER_DAY


def epoch_day(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def window_ms(window: Window, day: dt.date) -> tuple[int, int]:
    """[start, end) in epoch ms of `window`'s days of day D: 00:00 UTC of the first to the cut-off of the last."""
    return cutoff_ms(window.first(day)) - MS_PER_DAY, cutoff_ms(window.last(day))


def state_schema(horizon_days: int) -> pa.Schema:
    """STATE_SCHEMA recording the horizon its rows keep, as state files are written: a state of
    another horizon is never continued."""
    return STATE_SCHEMA.with_metadata({b"horizon_days": str(horizon_days).encode()})


def state_horizon(schema: pa.Schema) -> int | None:
    """The horizon a state file's schema records, None if it records none."""
    value = (schema.metadata or {}).get(b"horizon_days")
    return int(value) if value else None


def cutoff_weekday(day: dt.date) -> int:
    """Weekday (Monday = 0) of the cut-off instant of day D, i.e. of D+1."""
    return (day + dt.timedelta(days=1)).weekday()

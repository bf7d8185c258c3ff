"""What a consumer history is: the paper's input definition as named constants and an Arrow schema.

A history is computed "as of" a cut-off day D: the cut-off is the instant D+1 00:00 UTC
(exclusive), the window the days windows.HISTORY of D (D-27 .. D). The model reads the last
MAX_EVENTS events of each profile with at least MIN_EVENTS events in that window.
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
        # Events in the window before truncation; > n_events means the history was cut.
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
    ]
)

# What the Spark job returns: the rows of several cut-off days, each tagged with its day.
HISTORIES_BY_CUTOFF_SCHEMA = pa.schema([pa.field(CUTOFF_COLUMN, pa.date32()), *HISTORIES_SCHEMA])


def cutoff_ms(day: dt.date) -> int:
    """The cut-off of day D in epoch milliseconds: D+1 00:00 UTC, excluded from the window."""
    return (day - dt.date(1970, 1, 1)).days * MS_PER_DAY + MS_PER_DAY


def window_ms(window: Window, day: dt.date) -> tuple[int, int]:
    """[start, end) in epoch ms of `window`'s days of day D: 00:00 UTC of the first to the cut-off of the last."""
    return cutoff_ms(window.first(day)) - MS_PER_DAY, cutoff_ms(window.last(day))


def cutoff_weekday(day: dt.date) -> int:
    """Weekday (Monday = 0) of the cut-off instant of day D, i.e. of D+1."""
    return (day + dt.timedelta(days=1)).weekday()

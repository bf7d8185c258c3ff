"""Consumer histories: the paper's model input, kept day by day from raw_events without a shuffle.

Plain functions, no Dagster: `bucketing` (id hashing; the raw_events profile buckets it reads
are defined with the event contract, in events.bucketing), `schema` (the definition as
constants), `encode` (raw events as numpy arrays, one bucket), `state` (a day's state, advancing
it, the histories it holds), `lists` (the flat lists with offsets the state keeps), `tasks` (the
unit of work), `output` (writing on executors), `spark` (the job).
"""

from __future__ import annotations

from consumer_assets.events.bucketing import NUM_PROFILE_BUCKETS, crc32, profile_bucket, profile_bucket_sql
from consumer_assets.histories.bucketing import hash_bucket
from consumer_assets.histories.encode import sort_events
from consumer_assets.histories.output import Outputs, WrittenDay
from consumer_assets.histories.schema import (
    ARTICLE_BUCKETS,
    BRAND_BUCKETS,
    CATEGORY_BUCKETS,
    CUTOFF_COLUMN,
    HISTORIES_SCHEMA,
    MAX_EVENTS,
    MIN_EVENTS,
    SEQUENCE_COLUMNS,
    STATE_SCHEMA,
    cutoff_ms,
    window_ms,
)
from consumer_assets.histories.spark import spark_schema, tasks_done, write_histories
from consumer_assets.histories.state import State, advance, encode, encode_histories
from consumer_assets.histories.tasks import BucketTask, DayFiles, plan_tasks

__all__ = [
    "ARTICLE_BUCKETS",
    "BRAND_BUCKETS",
    "CATEGORY_BUCKETS",
    "CUTOFF_COLUMN",
    "HISTORIES_SCHEMA",
    "MAX_EVENTS",
    "MIN_EVENTS",
    "NUM_PROFILE_BUCKETS",
    "SEQUENCE_COLUMNS",
    "STATE_SCHEMA",
    "BucketTask",
    "DayFiles",
    "Outputs",
    "State",
    "WrittenDay",
    "advance",
    "crc32",
    "cutoff_ms",
    "encode",
    "encode_histories",
    "hash_bucket",
    "plan_tasks",
    "profile_bucket",
    "profile_bucket_sql",
    "sort_events",
    "spark_schema",
    "tasks_done",
    "window_ms",
    "write_histories",
]

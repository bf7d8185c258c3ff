"""Consumer histories: the paper's model input, aggregated from raw_events without a shuffle.

Plain functions, no Dagster: `bucketing` (id hashing; the raw_events profile buckets it reads
are defined with the event contract, in events.bucketing), `schema` (the definition as
constants), `encode` (numpy/pyarrow, one bucket), `tasks` (the unit of work), `output` (writing
on executors), `spark` (the job).
"""

from __future__ import annotations

from consumer_assets.events.bucketing import NUM_PROFILE_BUCKETS, crc32, profile_bucket, profile_bucket_sql
from consumer_assets.histories.bucketing import hash_bucket
from consumer_assets.histories.encode import encode_cutoff, encode_histories, sort_events
from consumer_assets.histories.output import WrittenDay
from consumer_assets.histories.schema import (
    ARTICLE_BUCKETS,
    BRAND_BUCKETS,
    CATEGORY_BUCKETS,
    CUTOFF_COLUMN,
    HISTORIES_BY_CUTOFF_SCHEMA,
    HISTORIES_SCHEMA,
    MAX_EVENTS,
    MIN_EVENTS,
    SEQUENCE_COLUMNS,
    cutoff_ms,
    window_ms,
)
from consumer_assets.histories.spark import histories_dataframe, spark_schema, write_histories
from consumer_assets.histories.tasks import CUTOFFS_PER_TASK, BucketTask, DayFiles, plan_tasks, run_task

__all__ = [
    "ARTICLE_BUCKETS",
    "BRAND_BUCKETS",
    "CATEGORY_BUCKETS",
    "CUTOFFS_PER_TASK",
    "CUTOFF_COLUMN",
    "HISTORIES_BY_CUTOFF_SCHEMA",
    "HISTORIES_SCHEMA",
    "MAX_EVENTS",
    "MIN_EVENTS",
    "NUM_PROFILE_BUCKETS",
    "SEQUENCE_COLUMNS",
    "BucketTask",
    "DayFiles",
    "WrittenDay",
    "crc32",
    "cutoff_ms",
    "encode_cutoff",
    "encode_histories",
    "hash_bucket",
    "histories_dataframe",
    "plan_tasks",
    "profile_bucket",
    "profile_bucket_sql",
    "run_task",
    "sort_events",
    "spark_schema",
    "window_ms",
    "write_histories",
]

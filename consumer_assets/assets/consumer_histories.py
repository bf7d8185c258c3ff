"""consumer_histories: per profile, the last <= 200 events of the 28 days up to D, encoded for the model.

Spark executors write each (day, profile bucket) file straight into the Delta table's folder when
they can reach it (local storage on the same machine, or `reads_storage` on a cluster with S3
access), else onto the driver's disk, from where the driver copies them in; then the driver
commits every day of the run in one Delta commit (storage.writes.StagedWrite).
"""

import datetime as dt
import time
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from pydantic import Field

from consumer_assets.assets.conditions import after_upstream_updates
from consumer_assets.assets.declare import daily_asset, daily_checks
from consumer_assets.assets.raw_events import RAW_EVENTS
from consumer_assets.assets.trailing import check_result, trailing_metadata
from consumer_assets.histories import HISTORIES_SCHEMA, NUM_PROFILE_BUCKETS, write_histories
from consumer_assets.histories.output import WrittenDay
from consumer_assets.histories.tasks import DayFiles
from consumer_assets.ml.monitoring import quality
from consumer_assets.partitions import partition_day, window_keys, window_mapping
from consumer_assets.resources.spark import SparkResource
from consumer_assets.resources.storage import Storage, table_metadata
from consumer_assets.storage.tables import BUCKETED, TableFiles
from consumer_assets.storage.writes import StagedWrite, TableWrite
from consumer_assets.windows import HISTORY, TRAILING

HISTORIES = dg.AssetKey("consumer_histories")
PROFILE_COUNT, LENGTH_DRIFT = "profile_count_vs_trailing_days", "sequence_length_drift"
HISTORIES_CHECKS = {
    PROFILE_COUNT: quality.describe_row_count("profiles with a history"),
    LENGTH_DRIFT: quality.describe_length_drift(),
}

# histories[D] reads raw_events[D-27..D]; the first days read the part of it that exists.
WINDOW = window_mapping(HISTORY, missing_ok=True)


class HistoriesConfig(dg.Config):
    """How the Spark job splits its work."""

    task_buckets: int = Field(
        default=NUM_PROFILE_BUCKETS,
        description=f"Spark tasks per window: a multiple of raw_events' {NUM_PROFILE_BUCKETS} profile buckets. "
        "More tasks spread a bigger shop over more executors, each holding less of the window in memory.",
    )


def day_files(inputs: Mapping[str, Mapping[int, list[str]]]) -> DayFiles:
    """Per day, the files of each profile bucket (index = bucket), from date -> profile bucket -> paths."""
    days: dict[dt.date, list[list[str]]] = {}
    for key, by_bucket in inputs.items():
        days[partition_day(key)] = buckets = [[] for _ in range(NUM_PROFILE_BUCKETS)]
        for bucket, paths in by_bucket.items():
            buckets[bucket] = paths  # a bucket beyond the layout fails here instead of being left out
    return days


@daily_asset(
    single_run=True,
    key=HISTORIES,
    ins={"raw_events": dg.AssetIn(key=RAW_EVENTS, partition_mapping=WINDOW)},
    check_specs=daily_checks(HISTORIES, HISTORIES_CHECKS),
    group_name="features",
    automation_condition=after_upstream_updates(),
    metadata={"window_days": len(HISTORY)},
)
def consumer_histories(
    context: dg.AssetExecutionContext,
    config: HistoriesConfig,
    spark: SparkResource,
    storage: Storage,
    raw_events: TableFiles,
) -> Iterator[Any]:
    """Per profile: the last <= 200 events of the 28 days up to D, encoded for the LSTM (PySpark)."""
    keys = context.partition_keys
    write = TableWrite(storage.tables(), HISTORIES.path[-1], HISTORIES_SCHEMA, BUCKETED)
    staging = storage.staging(context.run.run_id)
    with StagedWrite(write, raw_events, staging, reaches_storage=spark.reads_storage) as staged:
        days = day_files(staged.inputs)
        started = time.perf_counter()
        written = write_histories(
            spark.spark_session,
            days,
            [partition_day(k) for k in keys],
            staged.out_dir,
            write.id,
            task_buckets=config.task_buckets,
        )
        spark_seconds = time.perf_counter() - started
        context.log.info(f"Spark wrote histories of {len(keys)} day(s) in {spark_seconds:.1f}s")
        for key in keys:
            staged.adopt(key, written[partition_day(key)].files)
        commit = staged.commit(keys, {"run_id": context.run.run_id})

    for key in keys:
        day = written[partition_day(key)]
        context.add_asset_metadata(
            {
                **day_figures(day),
                "window_days_present": sum(d in days for d in HISTORY.days(day.day)),
                # One Spark job computes every day of the run: its wall time, and how many days it covered.
                "spark_seconds": round(spark_seconds, 3),
                "days_in_spark_job": len(keys),
                "spark_master": spark.spark_session.sparkContext.master,
                **table_metadata(commit, key, HISTORIES_SCHEMA),
            },
            partition_key=key,
        )
    yield dg.MaterializeResult()
    yield from histories_checks(context, [written[partition_day(k)] for k in keys])


def day_figures(day: WrittenDay) -> dict[str, Any]:
    return {
        "profiles": day.profiles,
        "events_read": day.window_events,
        "history_events": day.events,
        "length_p50": day.length_quantile(0.5),
        "length_p90": day.length_quantile(0.9),
        "length_max": day.max_length,
        "truncated": day.truncated,
    }


def histories_checks(context: dg.AssetExecutionContext, days: list[WrittenDay]) -> Iterator[dg.AssetCheckResult]:
    """Profile counts and sequence lengths of each day against its trailing days (earlier days of the run included)."""
    fields = ("profiles", "length_p50", "length_p90")
    first = days[0].day.isoformat()
    trailing = trailing_metadata(context.instance, HISTORIES, first, fields)
    outcomes: dict[str, list[tuple[str, quality.Outcome]]] = {name: [] for name in HISTORIES_CHECKS}
    for day in days:
        key, figures = day.day.isoformat(), day_figures(day)
        lengths = {"length_p50": figures["length_p50"], "length_p90": figures["length_p90"]}
        before = [trailing[k] for k in window_keys(TRAILING, key) if k in trailing]
        outcomes[PROFILE_COUNT].append(
            (key, quality.row_count(day.profiles, [b["profiles"] for b in before], "profiles"))
        )
        outcomes[LENGTH_DRIFT].append((key, quality.length_drift(lengths, before)))
        trailing[key] = {"profiles": day.profiles, **lengths}
    for name, results in outcomes.items():
        yield check_result(HISTORIES, name, results)

"""consumer_histories: per profile, the last <= 200 events of the 28 days up to D, encoded for the model."""

import contextlib
import shutil
import time
from collections.abc import Iterator
from typing import Any

import dagster as dg
from pydantic import Field

from consumer_assets import quality
from consumer_assets.assets.raw_events import RAW_EVENTS
from consumer_assets.assets.trailing import check_result, trailing_metadata
from consumer_assets.histories import NUM_PROFILE_BUCKETS, WINDOW_DAYS, window_days, write_histories
from consumer_assets.partitions import daily_partitions, partition_day, trailing_keys
from consumer_assets.resources.spark import SparkResource
from consumer_assets.settings import data_dir
from consumer_assets.storage.files import ParquetFiles, PartitionFiles
from consumer_assets.storage.filesystem import resolve
from consumer_assets.storage.lazy import LazyPartitions

HISTORIES = dg.AssetKey("consumer_histories")
PROFILE_COUNT, LENGTH_DRIFT = "profile_count_vs_trailing_days", "sequence_length_drift"
CHECKS = {
    PROFILE_COUNT: "Profiles with a history within 0.5-2x of the median of the 7 trailing days.",
    LENGTH_DRIFT: "Sequence-length p50 and p90 within 25% of their trailing medians.",
}

# histories[D] reads raw_events[D-27..D]; days before the first partition simply do not exist.
WINDOW = dg.TimeWindowPartitionMapping(
    start_offset=-(WINDOW_DAYS - 1), end_offset=0, allow_nonexistent_upstream_partitions=True
)


class HistoriesConfig(dg.Config):
    """How the Spark job splits its work."""

    task_buckets: int = Field(
        default=NUM_PROFILE_BUCKETS,
        description=f"Spark tasks per window: a multiple of raw_events' {NUM_PROFILE_BUCKETS} profile buckets. "
        "More tasks spread a bigger shop over more executors, each holding less of the window in memory.",
    )


@dg.asset(
    partitions_def=daily_partitions,
    ins={"raw_events": dg.AssetIn(key=RAW_EVENTS, partition_mapping=WINDOW)},
    check_specs=[dg.AssetCheckSpec(name, asset=HISTORIES, description=doc) for name, doc in CHECKS.items()],
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="features",
    metadata={"window_days": WINDOW_DAYS},
)
def consumer_histories(
    context: dg.AssetExecutionContext, config: HistoriesConfig, spark: SparkResource, raw_events: PartitionFiles
) -> Iterator[Any]:
    """Per profile: the last <= 200 events of the 28 days up to D, encoded for the LSTM (PySpark)."""
    keys = context.partition_keys
    run_id = context.run.run_id
    # Inputs: read where they are, or copied to the driver's disk; outputs: wherever executors write.
    local_staging = data_dir() / "staging" / run_id
    inputs = local_staging / "inputs"
    outputs = resolve(spark.staging(run_id))
    try:
        paths = raw_events.uris() if spark.reads_storage else raw_events.local_paths(inputs)
        days = {partition_day(k): v for k, v in paths.items()}
        started = time.perf_counter()
        written = write_histories(
            spark.spark_session,
            days,
            [partition_day(k) for k in keys],
            outputs.child("consumer_histories").uri,
            task_buckets=config.task_buckets,
        )
        spark_seconds = time.perf_counter() - started
        context.log.info(f"Spark wrote histories of {len(keys)} day(s) in {spark_seconds:.1f}s")

        trailing = trailing_metadata(
            context.instance, HISTORIES, keys[0], quality.TRAILING_DAYS, ("profiles", "length_p50", "length_p90")
        )
        outcomes: dict[str, list[tuple[str, quality.Outcome]]] = {name: [] for name in CHECKS}

        def commit(key: str) -> ParquetFiles:
            day = written[partition_day(key)]
            lengths = {"length_p50": day.length_quantile(0.5), "length_p90": day.length_quantile(0.9)}
            context.add_asset_metadata(
                {
                    "profiles": day.profiles,
                    "events_read": day.window_events,
                    "history_events": day.events,
                    **lengths,
                    "length_max": day.max_length,
                    "truncated": day.truncated,
                    "window_days_present": sum(d in days for d in window_days(partition_day(key))),
                    # One Spark job computes every day of the run: its wall time, and how many days it covered.
                    "spark_seconds": round(spark_seconds, 3),
                    "days_in_spark_job": len(keys),
                    "spark_master": spark.spark_session.sparkContext.master,
                },
                partition_key=key,
            )
            before = [trailing[k] for k in trailing_keys(key, quality.TRAILING_DAYS) if k in trailing]
            profile_check = quality.row_count(day.profiles, [b["profiles"] for b in before], "profiles")
            outcomes[PROFILE_COUNT].append((key, profile_check))
            outcomes[LENGTH_DRIFT].append((key, quality.length_drift(lengths, before)))
            trailing[key] = {"profiles": day.profiles, **lengths}
            return ParquetFiles(resolve(day.path).uri, [f.rsplit("/", 1)[-1] for f in day.files])

        yield dg.Output(LazyPartitions(keys, commit))
        for name, results in outcomes.items():
            yield check_result(HISTORIES, name, results)
    finally:
        # By now the IO manager has copied every day into the store (or the run failed).
        shutil.rmtree(local_staging, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            outputs.fs.delete_dir(outputs.root)

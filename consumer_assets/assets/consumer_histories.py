"""consumer_histories: per profile, the last <= 200 events of the horizon (180 days) up to D, encoded for the model.

Day D continues the state of D-1 (consumer_histories_state, written beside it) with raw_events[D];
a day without a current state of D-1 to continue (the first day, a gap, a state of another
horizon or one built on a re-delivered day since, or on request) is built from the raw_events of
its horizon. A range run goes through its days in order in one Spark job, a task per profile
bucket carrying its state from day to day. Executors write the files straight into the Delta
tables' folders when they can reach them (local storage on the same machine, or `reads_storage`
on a cluster with S3 access), else onto the driver's disk, from where the driver copies them in;
then the driver commits the state, and last the histories, which name the state commit they go
with (storage.companions) and record what each day read (histories.lineage).
"""

import datetime as dt
import time
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
import pyarrow.parquet as pq
from pydantic import Field

from consumer_assets.assets.conditions import after_upstream_updates
from consumer_assets.assets.declare import daily_checks, self_dependent_daily_asset
from consumer_assets.assets.progress import reporting
from consumer_assets.assets.raw_events import RAW_EVENTS
from consumer_assets.assets.trailing import check_result, trailing_metadata
from consumer_assets.histories import (
    HISTORIES_SCHEMA,
    NUM_PROFILE_BUCKETS,
    STATE_SCHEMA,
    Outputs,
    tasks_done,
    write_histories,
)
from consumer_assets.histories.lineage import Built, Stamps, records, stale_days
from consumer_assets.histories.output import WrittenDay
from consumer_assets.histories.schema import state_horizon
from consumer_assets.histories.tasks import DayFiles, plan_tasks
from consumer_assets.ml.monitoring import quality
from consumer_assets.partitions import daily_partitions, partition_day, window_keys, window_mapping
from consumer_assets.resources.spark import SparkResource
from consumer_assets.resources.storage import Storage, table_metadata
from consumer_assets.storage.tables import BUCKETED, PROFILE_BUCKET, TableFiles, TableStore
from consumer_assets.storage.writes import StagedWrite, TableWrite
from consumer_assets.windows import ELIGIBILITY_DAYS, HORIZON_DAYS, MAX_HORIZON_DAYS, PREVIOUS_DAY, TRAILING, horizon

HISTORIES = dg.AssetKey("consumer_histories")
STATE = dg.AssetKey("consumer_histories_state")
PROFILE_COUNT, LENGTH_DRIFT = "profile_count_vs_trailing_days", "sequence_length_drift"
HISTORIES_CHECKS = {
    PROFILE_COUNT: quality.describe_row_count("profiles with a history"),
    LENGTH_DRIFT: quality.describe_length_drift(),
}

consumer_histories_state = dg.AssetSpec(
    STATE,
    partitions_def=daily_partitions,
    group_name="features",
    description="What the next day continues from: every profile with an event in the horizon, its newest "
    "201 events there and its counts per active day. Written by consumer_histories in the same run; the "
    "version that goes with consumer_histories is the one its commit names.",
)


class HistoriesConfig(dg.Config):
    """The horizon, and how the Spark job splits its work."""

    horizon_days: int = Field(
        default=HORIZON_DAYS,
        ge=ELIGIBILITY_DAYS,
        le=MAX_HORIZON_DAYS,
        description="Days a history reaches back over (the eligibility window is 28 days whatever it is). "
        "A change builds the next day from the raw events of its horizon, then continues from there.",
    )
    rebuild: bool = Field(
        default=False,
        description="Build the first day of the run from the raw events of its horizon instead of continuing "
        "the state of the day before (the result is the same; this reads the whole horizon).",
    )
    task_buckets: int = Field(
        default=NUM_PROFILE_BUCKETS,
        description=f"Spark tasks: a multiple of raw_events' {NUM_PROFILE_BUCKETS} profile buckets. More tasks "
        "spread a bigger shop over more executors, each holding a smaller part of the state in memory.",
    )


def day_files(inputs: Mapping[str, Mapping[int, list[str]]]) -> DayFiles:
    """Per day, the files of each profile bucket (index = bucket), from date -> profile bucket -> paths."""
    days: dict[dt.date, list[list[str]]] = {}
    for key, by_bucket in inputs.items():
        days[partition_day(key)] = buckets = [[] for _ in range(NUM_PROFILE_BUCKETS)]
        for bucket, paths in by_bucket.items():
            buckets[bucket] = paths  # a bucket beyond the layout fails here instead of being left out
    return days


def continuable(tables: TableStore, day: dt.date, horizon_days: int) -> str | None:
    """Why the state of `day` cannot be continued with the next day's events, or None if it can."""
    key = day.isoformat()
    if key not in tables.dates(STATE.path[-1]):
        return f"there is no state of {key}"
    stale = stale_days(tables, [day])
    if stale:
        return f"the state of {key} is stale: {stale[day]}"
    files = tables.files(STATE.path[-1], [key])
    buckets = {int(f.partition[PROFILE_BUCKET]) for f in files}
    if buckets != set(range(max(buckets) + 1)):
        return f"the state of {key} lacks the files of profile buckets {sorted(set(range(max(buckets) + 1)) - buckets)}"
    location = tables.location
    kept = state_horizon(pq.read_schema(location.path(STATE.path[-1], files[0].path), filesystem=location.fs))
    if kept != horizon_days:
        return f"the state of {key} keeps a {kept}-day horizon, not {horizon_days}"
    return None


def raw_days(tables: TableStore, days: list[dt.date], first: Built) -> list[dt.date]:
    """The raw_events days a run reads: its own days, and for a day built anew its horizon from the
    shop's first day on (a younger shop has fewer days; a day missing after it fails the read)."""
    stored = tables.dates(RAW_EVENTS.path[-1])
    since = partition_day(stored[0]) if stored else days[0]
    before = [] if first.continued else [d for d in horizon(first.horizon_days).days(days[0]) if d >= since]
    return sorted({*before, *days})


@self_dependent_daily_asset(
    spec=dg.AssetSpec(
        HISTORIES,
        deps=[
            dg.AssetDep(RAW_EVENTS),
            # The state of the day before: lineage shows it, and a backfill goes in day order.
            dg.AssetDep(HISTORIES, partition_mapping=window_mapping(PREVIOUS_DAY, missing_ok=True)),
        ],
        group_name="features",
        # The day before may be missing (the first day, a gap): that day is built from its horizon.
        automation_condition=after_upstream_updates(missing_ok=HISTORIES),
        metadata={"eligibility_days": ELIGIBILITY_DAYS},
    ),
    check_specs=daily_checks(HISTORIES, HISTORIES_CHECKS),
)
def consumer_histories(
    context: dg.AssetExecutionContext, config: HistoriesConfig, spark: SparkResource, storage: Storage
) -> Iterator[Any]:
    """Per profile: the last <= 200 events of the horizon up to D, encoded for the LSTM (PySpark, from D-1's state)."""
    keys = context.partition_keys
    days = [partition_day(k) for k in keys]
    tables = storage.tables()
    previous = PREVIOUS_DAY.first(days[0])
    why = "a rebuild was asked for" if config.rebuild else continuable(tables, previous, config.horizon_days)
    continued = why is None
    if not continued:
        context.log.info(f"building {keys[0]} from the raw events of its horizon: {why}")
    built = [Built(day, config.horizon_days, continued or i > 0) for i, day in enumerate(days)]
    # Stamps first, files second (histories.lineage.records).
    recorded = records(Stamps(tables), built)
    raw = TableFiles(tables, RAW_EVENTS.path[-1], tables.files(RAW_EVENTS.path[-1], raw_days(tables, days, built[0])))
    state_in = TableFiles(
        tables, STATE.path[-1], tables.files(STATE.path[-1], [previous.isoformat()]) if continued else []
    )

    write = TableWrite(tables, HISTORIES.path[-1], HISTORIES_SCHEMA, BUCKETED)
    state_write = TableWrite(tables, STATE.path[-1], STATE_SCHEMA, BUCKETED)
    staging = storage.staging(context.run.run_id)
    reach = spark.reads_storage
    with (
        StagedWrite(write, raw, staging / "histories", reaches_storage=reach) as staged,
        StagedWrite(state_write, state_in, staging / "state", reaches_storage=reach) as state_staged,
    ):
        state_files = None
        if continued:
            by_bucket = state_staged.inputs.get(previous.isoformat(), {})
            state_files = [by_bucket[b] for b in range(max(by_bucket) + 1)]
        tasks = plan_tasks(day_files(staged.inputs), days, config.horizon_days, state_files, config.task_buckets)
        started = time.perf_counter()
        outputs = Outputs(staged.out_dir, write.id, state_staged.out_dir, state_write.id)
        session = spark.spark_session
        with reporting(context.log.info, lambda: f"Spark job over {len(keys)} day(s): {tasks_done(session)}"):
            written = write_histories(session, tasks, outputs)
        spark_seconds = time.perf_counter() - started
        context.log.info(f"Spark wrote histories of {len(keys)} day(s) in {spark_seconds:.1f}s")
        for key in keys:
            staged.adopt(key, written[partition_day(key)].files)
            state_staged.adopt(key, written[partition_day(key)].state_files)
        run = {"run_id": context.run.run_id, "horizon_days": config.horizon_days}
        state_commit = state_write.commit(keys, run)
        commit = write.commit(keys, {**run, "state_version": state_commit.version}, state_commit, recorded)

    for key, how in zip(keys, built, strict=True):
        day = written[partition_day(key)]
        context.add_asset_metadata(
            {
                **day_figures(day),
                "horizon_days": config.horizon_days,
                "built_from": f"state of {how.previous}" if how.continued else "raw_events of the horizon",
                "state_profiles": day.state_profiles,
                "state_events": day.state_events,
                "state_version": state_commit.version,
                # One Spark job computes every day of the run: its wall time, and how many days it covered.
                "spark_seconds": round(spark_seconds, 3),
                "days_in_spark_job": len(keys),
                "spark_master": spark.spark_session.sparkContext.master,
                **table_metadata(commit, key, HISTORIES_SCHEMA),
            },
            partition_key=key,
        )
    # Reported only now: until consumer_histories names it, no reader gets this run's state.
    for key in keys:
        metadata = {
            "profiles": written[partition_day(key)].state_profiles,
            **table_metadata(state_commit, key, STATE_SCHEMA),
        }
        context.log_event(dg.AssetMaterialization(STATE, partition=key, metadata=metadata))
    yield dg.MaterializeResult(asset_key=HISTORIES)
    selected = context.selected_asset_check_keys
    for result in histories_checks(context, [written[partition_day(k)] for k in keys]):
        if dg.AssetCheckKey(HISTORIES, result.check_name) in selected:
            yield result


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
        yield check_result(context, HISTORIES, name, results)

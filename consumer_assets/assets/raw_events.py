"""raw_events: the validated, de-duplicated tracking events of a day, and the quarantine of the rest.

One run ingests its days one at a time (one day in memory), writing each day's files into the two
tables' folders, then commits the quarantine and, last, raw_events, each in one Delta commit for
all its days. raw_events is the table of record: its commit names the quarantine commit of each
day it goes with, and readers get a day's quarantine through that name (storage.companions), so a
run that dies between the two commits, or loses a race with another run of its days, changes
nothing that readers see, and reports no materialization of either asset.
"""

import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from consumer_assets.assets.declare import daily_asset, daily_checks
from consumer_assets.assets.progress import DaysDone, reporting
from consumer_assets.assets.trailing import check_result, trailing_metadata
from consumer_assets.events.bucketing import NUM_PROFILE_BUCKETS
from consumer_assets.events.schema import QUARANTINE_SCHEMA, RAW_EVENTS_SCHEMA
from consumer_assets.ingest.dedupe import EarlierIds
from consumer_assets.ingest.layout import DICTIONARY_COLUMNS, write_bucketed
from consumer_assets.ingest.listing import BOOKKEEPING
from consumer_assets.ingest.quarantine import QUARANTINE_BATCH_ROWS, QuarantineBatches
from consumer_assets.ingest.validate import REASONS, ValidatedDay
from consumer_assets.ml.monitoring import quality
from consumer_assets.partitions import daily_partitions, partition_day, window_keys
from consumer_assets.resources.landing import LandingZone
from consumer_assets.resources.storage import Storage, table_metadata
from consumer_assets.storage.tables import BUCKETED, DATE, TableStore
from consumer_assets.storage.writes import TableWrite
from consumer_assets.windows import DUPLICATE_LOOKBACK_DAYS, TRAILING, Window

RAW_EVENTS = dg.AssetKey("raw_events")
QUARANTINE = dg.AssetKey("raw_events_quarantine")

ROW_COUNT, QUARANTINED_SHARE, EVENT_TYPE_MIX = "row_count_vs_trailing_days", "quarantined_share", "event_type_mix"
LANDED_FILES = "landed_files_all_ingested"
RAW_EVENTS_CHECKS = {
    ROW_COUNT: quality.describe_row_count("kept events"),
    QUARANTINED_SHARE: quality.describe_quarantined_share(),
    EVENT_TYPE_MIX: quality.describe_event_type_mix(),
    LANDED_FILES: quality.describe_landed_files(),
}
# Files not ingested beyond this many are counted, not named: a folder of strays must not bloat the event log.
MAX_NAMED_FILES = 1000

raw_events_quarantine = dg.AssetSpec(
    QUARANTINE,
    partitions_def=daily_partitions,
    group_name="ingestion",
    description="Every landed line of the day that failed validation: raw line, file, line number, reason. "
    "Written by raw_events in the same run; the version that goes with raw_events is the one its commit names.",
)


@dataclass(frozen=True)
class IngestedDay:
    """What one day's ingestion wrote (uncommitted) and the figures its metadata and checks report."""

    key: str
    figures: dict[str, Any]
    reasons: dict[str, int]
    type_counts: dict[str, int]
    left_out: dict[str, str]  # files that look like data but were not ingested -> why


class RawEventsConfig(dg.Config):
    duplicate_lookback_days: int = Field(
        default=DUPLICATE_LOOKBACK_DAYS,
        ge=0,
        description="An event id already kept on one of this many previous days is quarantined as a duplicate "
        "(at-least-once delivery re-sends events across midnight).",
    )
    quarantine_batch_rows: int = Field(
        default=QUARANTINE_BATCH_ROWS,
        ge=1,
        description="Quarantined lines are written as they come, a file per this many rows (or 64 MB): a day of "
        "nothing but bad lines never sits in memory whole.",
    )


# How the look-back reads the event ids: as bytes (they were checked as UTF-8 when they were kept).
_ID_BYTES = pa.schema([pa.field("event_id", pa.binary())])


def earlier_ids(tables: TableStore, key: str, lookback: int, in_run: dict[str, pa.Array]) -> EarlierIds | None:
    """The event ids kept on the `lookback` days before `key`: earlier days of this run (not committed
    yet) from memory, the others from raw_events as committed (only their files, only the event_id column)."""
    days = [day.isoformat() for day in reversed(Window.before(lookback).days(partition_day(key)))]  # newest first
    parts = [(d, in_run[d]) for d in days if d in in_run]
    committed = [d for d in days if d not in in_run]
    if committed and tables.exists(RAW_EVENTS.path[-1]):
        read = tables.read_each(RAW_EVENTS.path[-1], committed, ["event_id"], schema=_ID_BYTES)
        parts += [
            (d, pa.chunked_array([c.view(pa.string()) for c in t["event_id"].chunks], pa.string()))
            for d, t in read.items()
        ]
    return EarlierIds(parts) if parts else None


def ingest(
    landing: LandingZone,
    key: str,
    earlier: EarlierIds | Callable[[], EarlierIds | None] | None,
    events_write: TableWrite,
    quarantine_write: TableWrite,
    quarantine_batch_rows: int = QUARANTINE_BATCH_ROWS,
) -> tuple[IngestedDay, pa.Array]:
    """Validate one landed day and write (not commit) its events, one file per profile bucket, and quarantine,
    a file per batch of quarantined lines, written as they come.

    `earlier` (the ids kept on the look-back days) may be a function: it is called while the day is parsed.
    Returns the day's figures and its kept event ids (for the next days' duplicate check).
    """
    started = time.perf_counter()
    quarantine = QuarantineBatches(lambda batch: quarantine_write.write_file(batch, {DATE: key}), quarantine_batch_rows)
    day: ValidatedDay = landing.ingest(partition_day(key), earlier_ids=earlier, quarantine=quarantine)
    seconds = time.perf_counter() - started
    events = day.events

    def write(bucket: int, part: pa.Table) -> None:
        events_write.write_file(part, {DATE: key, "profile_bucket": bucket}, dictionary=DICTIONARY_COLUMNS)

    write_bucketed(events, write, NUM_PROFILE_BUCKETS)
    type_counts = dict(sorted(_value_counts(events["event_type"]).items()))
    figures = {
        "landed": day.landed,
        "kept": events.num_rows,
        "quarantined": day.quarantined,
        "profiles": pc.count_distinct(events["profile_id"]).as_py() if events.num_rows else 0,
        "event_type_counts": type_counts,
        "ingest_seconds": round(seconds, 3),
        "events_per_second": round(day.landed / seconds) if seconds else 0,
        "landing_uri": dg.MetadataValue.path(landing.day_uri(partition_day(key))),
        **landed_files_metadata(day),
    }
    reasons = {reason: day.reasons.get(reason, 0) for reason in REASONS}
    left_out = {s.name: s.reason for s in day.skipped if s.looks_like_data}
    return IngestedDay(key, figures, reasons, type_counts, left_out), events["event_id"].combine_chunks()


def landed_files_metadata(day: ValidatedDay) -> dict[str, Any]:
    """The files read, and every other file of the day folder with why it was not (bookkeeping only counted)."""
    other = [s for s in day.skipped if s.reason != BOOKKEEPING]
    named = sorted(other, key=lambda s: not s.looks_like_data)[:MAX_NAMED_FILES]  # those that look like data first
    return {
        "files_ingested": len(day.files),
        "files_not_ingested": len(other),
        "bookkeeping_files": len(day.skipped) - len(other),
        "not_ingested": dg.MetadataValue.json({s.name: s.reason for s in named}),
    }


@daily_asset(
    single_run=True,
    key=RAW_EVENTS,
    description="Validated, de-duplicated tracking events of the day (Delta, partitioned by date and profile bucket).",
    check_specs=daily_checks(RAW_EVENTS, RAW_EVENTS_CHECKS),
    group_name="ingestion",
    metadata={
        "layout": f"profile_bucket = crc32(profile_id) % {NUM_PROFILE_BUCKETS}, files sorted by profile and time"
    },
)
def raw_events(
    context: dg.AssetExecutionContext, config: RawEventsConfig, landing: LandingZone, storage: Storage
) -> Iterator[Any]:
    """Validate each landed day: keep good events (de-duplicated by id), quarantine the rest with a reason."""
    keys = context.partition_keys
    # Fail before writing anything if any day of the range has not landed completely.
    for key in keys:
        landing.require_complete(partition_day(key))
    tables = storage.tables()
    events_write = TableWrite(tables, RAW_EVENTS.path[-1], RAW_EVENTS_SCHEMA, BUCKETED)
    quarantine_write = TableWrite(tables, QUARANTINE.path[-1], QUARANTINE_SCHEMA)
    days, kept_ids = [], {}
    done = DaysDone("ingestion", len(keys))
    with reporting(context.log.info, lambda: str(done)):
        for key in keys:
            earlier = functools.partial(earlier_ids, tables, key, config.duplicate_lookback_days, dict(kept_ids))
            day, kept_ids[key] = ingest(
                landing, key, earlier, events_write, quarantine_write, config.quarantine_batch_rows
            )
            # Only the lookback window's ids stay in memory.
            lookback = config.duplicate_lookback_days
            kept_ids = dict(list(kept_ids.items())[-lookback:]) if lookback else {}
            done.add(day.figures["landed"])
            context.log.info(f"{key}: kept {day.figures['kept']} of {day.figures['landed']} landed records ({done})")
            days.append(day)

    run = {"run_id": context.run.run_id, "partitions": keys}
    quarantine = quarantine_write.commit(keys, run)
    events = events_write.commit(keys, {**run, "quarantine_version": quarantine.version}, companion=quarantine)
    # Reported only now: until raw_events names it, no reader gets this run's quarantine.
    for day in days:
        context.log_event(
            dg.AssetMaterialization(
                QUARANTINE,
                partition=day.key,
                metadata={
                    "quarantined": day.figures["quarantined"],
                    **{f"reason_{r}": n for r, n in day.reasons.items()},
                    **table_metadata(quarantine, day.key, QUARANTINE_SCHEMA),
                },
            )
        )
    for day in days:
        context.add_asset_metadata(
            {
                **day.figures,
                **table_metadata(events, day.key, RAW_EVENTS_SCHEMA),
                "quarantine_version": quarantine.version,
            },
            partition_key=day.key,
        )
    yield dg.MaterializeResult()
    yield from raw_events_checks(context, days)


def raw_events_checks(context: dg.AssetExecutionContext, days: list[IngestedDay]) -> Iterator[dg.AssetCheckResult]:
    """The data-quality rules over each day against its trailing days (earlier days of the run included)."""
    history = {
        key: {"kept": found["kept"], "types": found["event_type_counts"]}
        for key, found in trailing_metadata(
            context.instance, RAW_EVENTS, days[0].key, ("kept", "event_type_counts")
        ).items()
    }
    outcomes: dict[str, list[tuple[str, quality.Outcome]]] = {name: [] for name in RAW_EVENTS_CHECKS}
    for day in days:
        kept, quarantined = day.figures["kept"], day.figures["quarantined"]
        before = [history[k] for k in window_keys(TRAILING, day.key) if k in history]
        outcomes[ROW_COUNT].append((day.key, quality.row_count(kept, [h["kept"] for h in before])))
        outcomes[QUARANTINED_SHARE].append((day.key, quality.quarantined_share(kept, quarantined)))
        outcomes[EVENT_TYPE_MIX].append(
            (day.key, quality.event_type_mix(day.type_counts, [h["types"] for h in before]))
        )
        outcomes[LANDED_FILES].append((day.key, quality.landed_files(day.figures["files_ingested"], day.left_out)))
        history[day.key] = {"kept": kept, "types": day.type_counts}
    for name, results in outcomes.items():
        yield check_result(context, RAW_EVENTS, name, results)


def _value_counts(column: pa.ChunkedArray) -> dict[str, int]:
    return {row["values"]: row["counts"] for row in pc.value_counts(column).to_pylist()}

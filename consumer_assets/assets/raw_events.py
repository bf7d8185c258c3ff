"""raw_events: the validated, de-duplicated tracking events of a day, and the quarantine of the rest."""

import time
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from consumer_assets import quality
from consumer_assets.assets.trailing import check_result, trailing_metadata
from consumer_assets.events.bucketing import NUM_PROFILE_BUCKETS
from consumer_assets.ingest.layout import bucketed
from consumer_assets.ingest.validate import REASONS
from consumer_assets.partitions import daily_partitions, partition_day, trailing_keys
from consumer_assets.resources.landing import LandingZone
from consumer_assets.storage.lazy import LazyPartitions

RAW_EVENTS = dg.AssetKey("raw_events")
QUARANTINE = dg.AssetKey("raw_events_quarantine")

ROW_COUNT, QUARANTINED_SHARE, EVENT_TYPE_MIX = "row_count_vs_trailing_days", "quarantined_share", "event_type_mix"
CHECKS = {
    ROW_COUNT: "Kept events within 0.5-2x of the median of the 7 trailing days.",
    QUARANTINED_SHARE: "At most 1% of the landed records quarantined.",
    EVENT_TYPE_MIX: "Event-type shares within 0.1 (total variation) of the trailing days.",
}


@dg.multi_asset(
    outs={
        "raw_events": dg.AssetOut(
            description="Validated, de-duplicated tracking events of the day; one Parquet file per profile bucket.",
            metadata={"layout": f"{NUM_PROFILE_BUCKETS} files per day, file b = profiles with crc32(id) % n == b"},
        ),
        "raw_events_quarantine": dg.AssetOut(
            description="Every landed line of the day that failed validation: raw line, file, line number, reason."
        ),
    },
    partitions_def=daily_partitions,
    check_specs=[dg.AssetCheckSpec(name, asset=RAW_EVENTS, description=doc) for name, doc in CHECKS.items()],
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="ingestion",
)
def raw_events(context: dg.AssetExecutionContext, landing: LandingZone) -> Iterator[Any]:
    """Validate each landed day: keep good events (de-duplicated by id), quarantine the rest with a reason."""
    keys = context.partition_keys
    history = {
        key: {"kept": found["kept"], "types": found["event_type_counts"]}
        for key, found in trailing_metadata(
            context.instance, RAW_EVENTS, keys[0], quality.TRAILING_DAYS, ("kept", "event_type_counts")
        ).items()
    }
    quarantined: dict[str, pa.Table] = {}
    outcomes: dict[str, list[tuple[str, quality.Outcome]]] = {name: [] for name in CHECKS}

    def ingest(key: str) -> list[pa.Table]:
        started = time.perf_counter()
        day = landing.ingest(partition_day(key))
        events, seconds = day.events, time.perf_counter() - started
        type_counts = dict(sorted(_value_counts(events["event_type"]).items()))
        reasons = {reason: day.reasons.get(reason, 0) for reason in REASONS}
        context.add_asset_metadata(
            {
                "landed": day.landed,
                "kept": events.num_rows,
                "quarantined": day.quarantine.num_rows,
                "profiles": pc.count_distinct(events["profile_id"]).as_py() if events.num_rows else 0,
                "event_type_counts": type_counts,
                "ingest_seconds": round(seconds, 3),
                "events_per_second": round(day.landed / seconds) if seconds else 0,
                "landing_uri": dg.MetadataValue.path(f"{landing.resolved_uri()}/date={key}"),
            },
            asset_key=RAW_EVENTS,
            partition_key=key,
        )
        context.add_asset_metadata(
            {"quarantined": day.quarantine.num_rows, **{f"reason_{r}": n for r, n in reasons.items()}},
            asset_key=QUARANTINE,
            partition_key=key,
        )
        quarantined[key] = day.quarantine
        before = [history[k] for k in trailing_keys(key, quality.TRAILING_DAYS) if k in history]
        outcomes[ROW_COUNT].append((key, quality.row_count(events.num_rows, [h["kept"] for h in before])))
        outcomes[QUARANTINED_SHARE].append((key, quality.quarantined_share(events.num_rows, day.quarantine.num_rows)))
        outcomes[EVENT_TYPE_MIX].append((key, quality.event_type_mix(type_counts, [h["types"] for h in before])))
        history[key] = {"kept": events.num_rows, "types": type_counts}
        context.log.info(f"{key}: kept {events.num_rows} of {day.landed} landed records in {seconds:.1f}s")
        return bucketed(events)

    # Fail before writing anything if any day of the range has not landed completely.
    for key in keys:
        landing.require_complete(partition_day(key))
    # The IO manager writes one day at a time as it reads this mapping, so only one day is in
    # memory; each day's quarantine is kept (it is small) and written by the second output.
    yield dg.Output(LazyPartitions(keys, ingest), output_name="raw_events")
    yield dg.Output(quarantined, output_name="raw_events_quarantine")
    for name, results in outcomes.items():
        yield check_result(RAW_EVENTS, name, results)


def _value_counts(column: pa.ChunkedArray) -> dict[str, int]:
    return {row["values"]: row["counts"] for row in pc.value_counts(column).to_pylist()}

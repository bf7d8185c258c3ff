"""Sensors: a day whose landing folder is complete becomes a run of that partition; stale histories
that no automation condition sees are recomputed."""

import datetime as dt
import hashlib
import json

import dagster as dg

from consumer_assets.assets.consumer_histories import HISTORIES
from consumer_assets.automation.jobs import RANGE_END, RANGE_START, histories_job, ingest_job
from consumer_assets.histories import lineage
from consumer_assets.partitions import daily_partitions, last_partition_key, partition_day
from consumer_assets.resources.landing import LandingZone
from consumer_assets.resources.storage import Storage
from consumer_assets.storage.tables import TableStore
from consumer_assets.windows import LANDING_LOOKBACK


@dg.sensor(job=ingest_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED)
def landing_sensor(context: dg.SensorEvaluationContext, landing: LandingZone) -> dg.SensorResult:
    """Request the daily run of each recent day whose landing folder is complete (marked, or quiet long enough)."""
    return landing_requests(landing, dt.datetime.now(dt.UTC))


def landing_requests(landing: LandingZone, now: dt.datetime) -> dg.SensorResult:
    """What the sensor requests at `now`: a run of each complete day of LANDING_LOOKBACK (up to the last partition)."""
    last_key = last_partition_key(now)
    if last_key is None:
        return dg.SensorResult(skip_reason="no daily partition exists yet")
    last = dt.date.fromisoformat(last_key)
    days = LANDING_LOOKBACK.days(last)
    first = dt.date.fromisoformat(daily_partitions.get_first_partition_key() or last_key)
    deliveries = {day: landing.delivery(day, now) for day in days if day >= first}
    complete = {day: token for day, token in deliveries.items() if token is not None}
    if not complete:
        return dg.SensorResult(skip_reason=f"no complete landing day in {days[0]}..{days[-1]}")
    # The run key names the day and its delivery (the names, sizes and mtimes of its files and
    # marker): a day already requested is not run again, but a day the shop delivers anew is, and
    # so is a day a file arrives in after its marker.
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=f"landed-{day.isoformat()}-{token}", partition_key=day.isoformat())
            for day, token in complete.items()
        ]
    )


@dg.sensor(job=histories_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED)
def stale_histories_sensor(context: dg.SensorEvaluationContext, storage: Storage) -> dg.SensorResult:
    """Recompute, in one run in day order, the histories from the oldest stale day that the automation
    conditions do not bring up to the latest day."""
    return stale_histories_requests(storage.tables())


def stale_histories_requests(tables: TableStore) -> dg.SensorResult:
    """What the stale-histories sensor requests for the histories `tables` hold.

    The automation conditions recompute a day whose own raw_events day was re-delivered, and every
    later day after it. A day built from its horizon (the first day, one after a gap) also goes stale
    when an older raw_events day of its horizon changes, which no Dagster dependency shows: this
    requests that day through the latest, one range run, keyed by what is stale so it runs once.
    """
    keys = tables.dates(HISTORIES.path[-1])
    if not keys:
        return dg.SensorResult(skip_reason="no consumer_histories yet")
    stale = lineage.stale_days(tables, [partition_day(k) for k in keys])
    roots = sorted(day for day, why in stale.items() if lineage.HORIZON_CHANGED in why and "continues" not in why)
    if not roots:
        return dg.SensorResult(skip_reason=f"no histories day built from a changed horizon ({len(stale)} stale)")
    first, last = roots[0].isoformat(), keys[-1]
    digest = hashlib.sha256(json.dumps({d.isoformat(): w for d, w in sorted(stale.items())}).encode()).hexdigest()
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"stale-{first}-{digest[:16]}", tags={RANGE_START: first, RANGE_END: last})]
    )

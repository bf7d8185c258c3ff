"""The landing sensor: a day whose landing folder is complete becomes a run of that partition."""

import datetime as dt

import dagster as dg

from consumer_assets.automation.jobs import ingest_job
from consumer_assets.partitions import daily_partitions, last_partition_key
from consumer_assets.resources.landing import LandingZone
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

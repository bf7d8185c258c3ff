"""The main job as one command: simulate days of the shop into the landing zone, then materialize them.

This is what `consumer-assets run` does for a new user: no cloud account and no service to start.
Runs are recorded in the project's one Dagster instance (settings.dagster_home: $DAGSTER_HOME, else
data/dagster_home), the one `make dev` shows afterwards.
"""

import datetime as dt
from collections.abc import Callable

import dagster as dg

from consumer_assets.assets.consumer_histories import HISTORIES
from consumer_assets.assets.raw_events import RAW_EVENTS
from consumer_assets.automation.jobs import RANGE_END, RANGE_START
from consumer_assets.histories import WINDOW_DAYS
from consumer_assets.partitions import daily_partitions
from consumer_assets.settings import dagster_home, landing_uri
from consumer_assets.simulation import simulate_to_landing


def run_days(
    start: dt.date,
    days: int,
    *,
    profiles: int,
    seed: int,
    corrupt: float,
    echo: Callable[[str], None] = print,
) -> list[dg.ExecuteInProcessResult]:
    """Simulate `days` days from `start` into the landing zone, then run the daily job over them.

    One run ingests every day into raw_events; a second computes consumer_histories for the days
    whose whole WINDOW_DAYS window was simulated (none if fewer days were asked for).
    """
    from consumer_assets.definitions import defs

    last = start + dt.timedelta(days=days - 1)
    first_key, last_key = daily_partitions.get_first_partition_key(), daily_partitions.get_last_partition_key()
    if first_key is None or last_key is None or start.isoformat() < first_key or last.isoformat() > last_key:
        raise ValueError(f"days {start}..{last} fall outside the daily partitions {first_key}..{last_key}")

    landing = landing_uri()
    echo(f"simulating {days} days x {profiles} profiles into {landing}")
    for summary in simulate_to_landing(landing, start, days, profiles=profiles, seed=seed, corrupt=corrupt):
        echo(f"  landed {summary.date}: {summary.records} records in {summary.seconds:.1f}s")

    instance = dg.DagsterInstance.from_config(str(dagster_home()))
    job = defs.resolve_job_def("daily_job")
    stages = [([RAW_EVENTS], start)]
    if days >= WINDOW_DAYS:
        stages.append(([HISTORIES], start + dt.timedelta(days=WINDOW_DAYS - 1)))
    else:
        echo(f"consumer_histories needs {WINDOW_DAYS} days of events; simulate more days to compute it")
    results = []
    for assets, first in stages:
        names = ", ".join(a.to_user_string() for a in assets)
        echo(f"materializing {names} for {first}..{last} in one run (instance: {instance.root_directory})")
        result = job.execute_in_process(
            instance=instance,
            asset_selection=assets,
            tags={RANGE_START: first.isoformat(), RANGE_END: last.isoformat()},
            raise_on_error=False,
        )
        results.append(result)
        if not result.success:
            break
    return results

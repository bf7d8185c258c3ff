"""The main job as one command: simulate days of the shop into the landing zone, then materialize them.

This is what `consumer-assets run` does for a new user: no cloud account and no service to start.
Runs are recorded in the Dagster instance of $DAGSTER_HOME when it is set (so `dagster dev` shows
them afterwards), else in a throw-away one.
"""

import datetime as dt
import os
from collections.abc import Callable

import dagster as dg

from consumer_assets.automation.jobs import RANGE_END, RANGE_START
from consumer_assets.partitions import daily_partitions
from consumer_assets.settings import landing_uri
from consumer_assets.simulation import simulate_to_landing


def run_days(
    start: dt.date,
    days: int,
    *,
    profiles: int,
    seed: int,
    corrupt: float,
    echo: Callable[[str], None] = print,
) -> dg.ExecuteInProcessResult:
    """Simulate `days` days from `start` into the landing zone, then run the daily job over them in one run."""
    from consumer_assets.definitions import defs

    last = start + dt.timedelta(days=days - 1)
    first_key, last_key = daily_partitions.get_first_partition_key(), daily_partitions.get_last_partition_key()
    if first_key is None or last_key is None or start.isoformat() < first_key or last.isoformat() > last_key:
        raise ValueError(f"days {start}..{last} fall outside the daily partitions {first_key}..{last_key}")

    landing = landing_uri()
    echo(f"simulating {days} days x {profiles} profiles into {landing}")
    for summary in simulate_to_landing(landing, start, days, profiles=profiles, seed=seed, corrupt=corrupt):
        echo(f"  landed {summary.date}: {summary.records} records in {summary.seconds:.1f}s")

    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    echo(f"materializing {start}..{last} in one run (Dagster instance: {instance.root_directory or 'ephemeral'})")
    result = defs.resolve_job_def("daily_job").execute_in_process(
        instance=instance,
        tags={RANGE_START: start.isoformat(), RANGE_END: last.isoformat()},
        raise_on_error=False,
    )
    return result

"""The main job as one command: simulate days of the shop into the landing zone, then materialize them.

This is what `consumer-assets run` does for a new user: no cloud account and no service to start.
Runs are recorded in the project's one Dagster instance (settings.dagster_home: $DAGSTER_HOME, else
data/dagster_home), the one `make dev` shows afterwards.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg

from consumer_assets.automation.jobs import RANGE_END, RANGE_START
from consumer_assets.partitions import daily_partitions
from consumer_assets.settings import dagster_home, landing_uri
from consumer_assets.simulation import simulate_to_landing
from consumer_assets.windows import CHAIN, ELIGIBILITY

# Days of events the whole chain needs up to its last day: a full histories window for the oldest
# training cut-off, which lies the label week and the other training days before the day trained.
CHAIN_DAYS = len(CHAIN)


@dataclass(frozen=True)
class Stage:
    job: str
    first: dt.date
    what: str


def stages_for(start: dt.date, last: dt.date) -> list[Stage]:
    """The runs of the main job: ingest every day; histories where their window is complete; then,
    if the period is long enough, train on its last day, and score that day."""
    days = (last - start).days + 1
    stages = [Stage("daily_job", start, "raw_events")]
    if days >= len(ELIGIBILITY):
        stages.append(Stage("daily_job", start + dt.timedelta(days=len(ELIGIBILITY) - 1), "consumer_histories"))
    if days >= CHAIN_DAYS:
        stages += [Stage("training_job", last, "trained_lstm_model"), Stage("predictions_job", last, "predictions")]
    return stages


def run_days(
    defs: dg.Definitions,
    start: dt.date,
    days: int,
    *,
    profiles: int,
    seed: int,
    corrupt: float,
    echo: Callable[[str], None] = print,
) -> list[dg.ExecuteInProcessResult]:
    """Simulate `days` days from `start` into the landing zone, then run the chain of `defs` over them (stages_for)."""
    last = start + dt.timedelta(days=days - 1)
    first_key, last_key = daily_partitions.get_first_partition_key(), daily_partitions.get_last_partition_key()
    if first_key is None or last_key is None or start.isoformat() < first_key or last.isoformat() > last_key:
        raise ValueError(f"days {start}..{last} fall outside the daily partitions {first_key}..{last_key}")

    landing = landing_uri()
    echo(f"simulating {days} days x {profiles} profiles into {landing}")
    for summary in simulate_to_landing(landing, start, days, profiles=profiles, seed=seed, corrupt=corrupt):
        echo(f"  landed {summary.date}: {summary.records} records in {summary.seconds:.1f}s")

    stages = stages_for(start, last)
    if days < CHAIN_DAYS:
        echo(
            f"training needs {CHAIN_DAYS} days of events (the histories window, the label week and the training "
            "days); simulate more days to train and predict"
        )
    results = []
    with dg.DagsterInstance.from_config(str(dagster_home())) as instance:
        for stage in stages:
            echo(f"materializing {stage.what} for {stage.first}..{last} (instance: {instance.root_directory})")
            # A range of days runs as one run; a single day as a plain partition run.
            days_of_run: dict = (
                {"tags": {RANGE_START: stage.first.isoformat(), RANGE_END: last.isoformat()}}
                if stage.first < last
                else {"partition_key": last.isoformat()}
            )
            result = defs.resolve_job_def(stage.job).execute_in_process(
                instance=instance, asset_selection=[dg.AssetKey(stage.what)], raise_on_error=False, **days_of_run
            )
            results.append(result)
            if not result.success:
                break
    return results

"""The main job as one command: simulate days of the shop into the landing zone, then materialize them.

This is what `consumer-assets run` does for a new user: no cloud account and no service to start.
Runs are recorded in the project's one Dagster instance (settings.dagster_home: $DAGSTER_HOME, else
data/dagster_home), the one `make dev` shows afterwards. Each run is told in one line (report.py);
its full event log stays in the instance, and, unless verbose, what Dagster, Spark and the libraries
print goes to a log file instead of the terminal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from consumer_assets.automation.jobs import RANGE_END, RANGE_START
from consumer_assets.automation.report import StepReport, step_report
from consumer_assets.partitions import daily_partitions
from consumer_assets.settings import dagster_home, landing_uri
from consumer_assets.simulation import simulate_to_landing
from consumer_assets.windows import CHAIN, ELIGIBILITY, LABELS, STORY

# Days of events the whole chain needs up to the day it trains and scores (windows.CHAIN), and
# with the week after it, whose orders judge that day's predictions (windows.STORY).
CHAIN_DAYS, STORY_DAYS = len(CHAIN), len(STORY)


@dataclass(frozen=True)
class Stage:
    job: str
    first: dt.date
    last: dt.date
    what: str

    def days(self) -> list[str]:
        return [(self.first + dt.timedelta(days=k)).isoformat() for k in range((self.last - self.first).days + 1)]


def scored_day(start: dt.date, last: dt.date) -> dt.date | None:
    """The day the main job trains on and scores: the latest whose following week has landed too, else
    the last day if the chain fits; None for a period too short to train."""
    days = (last - start).days + 1
    if days >= STORY_DAYS:
        return last - dt.timedelta(days=LABELS.end)
    return last if days >= CHAIN_DAYS else None


def stages_for(start: dt.date, last: dt.date) -> list[Stage]:
    """The runs of the main job: ingest every day; histories where their window is complete, up to the
    scored day; then train on the scored day and score it; judge it once its following week has landed."""
    days = (last - start).days + 1
    stages = [Stage("daily_job", start, last, "raw_events")]
    scored = scored_day(start, last)
    if days >= len(ELIGIBILITY):
        first = start + dt.timedelta(days=len(ELIGIBILITY) - 1)
        stages.append(Stage("daily_job", first, scored or last, "consumer_histories"))
    if scored is not None:
        stages += [
            Stage("training_job", scored, scored, "trained_lstm_model"),
            Stage("predictions_job", scored, scored, "predictions"),
        ]
        if scored + dt.timedelta(days=LABELS.end) <= last:
            stages.append(Stage("quality_job", scored, scored, "prediction_quality"))
    return stages


@contextlib.contextmanager
def output_to(log: Path | None) -> Iterator[None]:
    """Send everything written to standard error, by Python and by child processes and the JVM that
    start meanwhile (they inherit file descriptor 2), to `log`; None leaves it on the terminal."""
    if log is None:
        yield
        return
    log.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(log, "a", buffering=1) as file, contextlib.redirect_stderr(file):
        os.dup2(file.fileno(), 2)
        try:
            yield
        finally:
            file.flush()
            os.dup2(saved, 2)
            os.close(saved)


def run_days(
    defs: dg.Definitions,
    start: dt.date,
    days: int,
    *,
    profiles: int,
    seed: int,
    corrupt: float,
    echo: Callable[[str], None] = print,
    on_start: Callable[[Stage], None] = lambda stage: None,
    log: Path | None = None,
) -> Iterator[StepReport]:
    """Simulate `days` days from `start` into the landing zone, then run the chain of `defs` over them
    (stages_for), yielding each run's report; stops after a run that fails. With `log`, standard error
    goes there (output_to) and the simulation is told in one line instead of one per day."""
    last = start + dt.timedelta(days=days - 1)
    first_key, last_key = daily_partitions.get_first_partition_key(), daily_partitions.get_last_partition_key()
    if first_key is None or last_key is None or start.isoformat() < first_key or last.isoformat() > last_key:
        raise ValueError(f"days {start}..{last} fall outside the daily partitions {first_key}..{last_key}")

    landing = landing_uri()
    began, records = time.monotonic(), 0
    for summary in simulate_to_landing(landing, start, days, profiles=profiles, seed=seed, corrupt=corrupt):
        records += summary.records
        if log is None:
            echo(f"  landed {summary.date}: {summary.records} records in {summary.seconds:.1f}s")
    echo(
        f"simulated {start}..{last} ({days} days) of {profiles:,} profiles: {records:,} records into {landing} "
        f"in {time.monotonic() - began:.0f} s"
    )
    stages = stages_for(start, last)
    if scored_day(start, last) is None:
        echo(
            f"training needs {CHAIN_DAYS} days of events (the histories window, the label week and the training "
            "days); simulate more days to train and predict"
        )
    with output_to(log), dg.DagsterInstance.from_config(str(dagster_home())) as instance:
        for stage in stages:
            on_start(stage)
            # A range of days runs as one run; a single day as a plain partition run.
            days_of_run: dict = (
                {"tags": {RANGE_START: stage.first.isoformat(), RANGE_END: stage.last.isoformat()}}
                if stage.first < stage.last
                else {"partition_key": stage.last.isoformat()}
            )
            began = time.monotonic()
            result = defs.resolve_job_def(stage.job).execute_in_process(
                instance=instance, asset_selection=[dg.AssetKey(stage.what)], raise_on_error=False, **days_of_run
            )
            report = step_report(stage.what, stage.days(), time.monotonic() - began, result)
            yield report
            if not report.success:
                return

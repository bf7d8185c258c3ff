"""Training on its own schedule: every day (by default at 06:00 UTC) the model of the last finished day.

The schedule follows the daily partitions: each tick trains the partition of the day before it,
whose labels' last day has landed by then. Change TRAINING_HOUR, or set TRAINING_WEEKDAY (0 = Sunday)
to train weekly.
"""

import dagster as dg

from consumer_assets.automation.jobs import training_job

TRAINING_HOUR = 6
TRAINING_WEEKDAY: int | None = None  # None: every day

training_schedule = dg.build_schedule_from_partitioned_job(
    training_job,
    name="training_schedule",
    hour_of_day=TRAINING_HOUR,
    minute_of_hour=0,
    day_of_week=TRAINING_WEEKDAY,
    description="Train, validate and (if its blocking checks pass) approve the model of the last finished day.",
)

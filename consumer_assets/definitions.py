"""The one Definitions object of the code location.

Resources read their settings when a run starts (CONSUMER_ASSETS_STORAGE, CONSUMER_ASSETS_LANDING,
the standard AWS variables; CONSUMER_ASSETS_ALERT_WEBHOOK when an alert sensor ticks), so one
definition serves local development and production.
"""

import dagster as dg

from consumer_assets.assets.consumer_histories import consumer_histories, consumer_histories_state
from consumer_assets.assets.prediction_quality import prediction_quality
from consumer_assets.assets.predictions import predictions
from consumer_assets.assets.raw_events import raw_events, raw_events_quarantine
from consumer_assets.assets.trained_lstm_model import trained_lstm_model
from consumer_assets.automation.alerts import blocking_check_alert, run_failure_alert
from consumer_assets.automation.jobs import (
    daily_job,
    histories_job,
    ingest_job,
    predictions_job,
    quality_job,
    training_job,
)
from consumer_assets.automation.maintenance import table_maintenance, table_maintenance_schedule
from consumer_assets.automation.schedules import training_schedule
from consumer_assets.automation.sensors import landing_sensor, stale_histories_sensor
from consumer_assets.resources.alerts import AlertWebhook
from consumer_assets.resources.landing import LandingZone
from consumer_assets.resources.spark import SparkResource
from consumer_assets.resources.storage import storage_resources

defs = dg.Definitions(
    assets=[
        raw_events,
        raw_events_quarantine,
        consumer_histories,
        consumer_histories_state,
        trained_lstm_model,
        predictions,
        prediction_quality,
    ],
    jobs=[ingest_job, daily_job, histories_job, training_job, predictions_job, quality_job, table_maintenance],
    schedules=[training_schedule, table_maintenance_schedule],
    sensors=[landing_sensor, stale_histories_sensor, run_failure_alert, blocking_check_alert],
    resources={**storage_resources(), "landing": LandingZone(), "spark": SparkResource(), "alerts": AlertWebhook()},
)

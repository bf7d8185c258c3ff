"""Jobs: the daily data chain, training, and scoring each run apart, so one never runs inside another."""

import dagster as dg

from consumer_assets.assets.consumer_histories import HISTORIES
from consumer_assets.assets.prediction_quality import QUALITY
from consumer_assets.assets.predictions import PREDICTIONS
from consumer_assets.assets.raw_events import RAW_EVENTS
from consumer_assets.assets.trained_lstm_model import MODEL

# Run tags that make one run cover a range of partitions (what a single-run backfill sets).
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets(RAW_EVENTS),
    description="Ingest landed day(s) into raw_events (what the landing sensor requests; automation does the rest).",
)
daily_job = dg.define_asset_job(
    "daily_job",
    selection=dg.AssetSelection.assets(RAW_EVENTS, HISTORIES),
    description="Ingest the landed day(s) into raw_events and compute their consumer_histories "
    "(a range of days runs as one run).",
)
histories_job = dg.define_asset_job(
    "histories_job",
    selection=dg.AssetSelection.assets(HISTORIES),
    description="Recompute consumer_histories of a range of days, in day order (what the stale-histories "
    "sensor requests).",
)
training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.assets(MODEL),
    description="Train, validate and (if every blocking check passes) approve the day's model.",
)
predictions_job = dg.define_asset_job(
    "predictions_job",
    selection=dg.AssetSelection.assets(PREDICTIONS),
    description="Score the day's histories with the approved model in force.",
)
quality_job = dg.define_asset_job(
    "quality_job",
    selection=dg.AssetSelection.assets(QUALITY),
    description="Judge the predictions of a day whose following week has landed.",
)

"""The order model: a single-layer LSTM over event histories, its data, training, scoring and checks.

Plain PyTorch, scikit-learn and numpy, no Dagster: `config` (hyperparameters and the input
encoding a model is tied to), `labels` (targets from raw_events and the profile split), `data`
(histories as columnar arrays, batched by length), `model`, `train`, `score`, `artifact`
(safetensors + JSON), `baseline` (the legacy logistic regression), `metrics`, `evaluate`
(validation reports and the comparisons that gate a model), `daily` (the day's training in one
call, for the asset), `simulated` (data sets from the shop simulator, for tests and benchmarks), `explain` (the events
that moved a prediction most), `drift` (population stability of inputs and scores), `predictions` (scored, explained and
summarized prediction batches), `predict_files` (a profile bucket's histories files to one predictions file, buckets
side by side in this process) and `spark_scoring` (the same, one Spark task per bucket).
"""

from __future__ import annotations

from consumer_assets.ml.artifact import EncodingMismatchError, ModelArtifact
from consumer_assets.ml.baseline import LogisticBaseline, baseline_features
from consumer_assets.ml.config import Encoding, LstmConfig
from consumer_assets.ml.daily import TrainingOutcome, label_days, train_daily, training_cutoffs
from consumer_assets.ml.data import SequenceData
from consumer_assets.ml.evaluate import Comparison, compare_models, validation_metrics, validation_report
from consumer_assets.ml.labels import LABEL_DAYS, order_profiles, validation_mask, with_labels
from consumer_assets.ml.model import EventLstm
from consumer_assets.ml.predictions import PREDICTIONS_SCHEMA, PredictionSummary, predict_histories
from consumer_assets.ml.score import SCORES_SCHEMA, predict, score
from consumer_assets.ml.train import EpochStats, TrainResult, train

__all__ = [
    "LABEL_DAYS",
    "PREDICTIONS_SCHEMA",
    "SCORES_SCHEMA",
    "Comparison",
    "Encoding",
    "EncodingMismatchError",
    "EpochStats",
    "EventLstm",
    "LogisticBaseline",
    "LstmConfig",
    "ModelArtifact",
    "PredictionSummary",
    "SequenceData",
    "TrainResult",
    "TrainingOutcome",
    "baseline_features",
    "compare_models",
    "label_days",
    "order_profiles",
    "predict",
    "predict_histories",
    "score",
    "train",
    "train_daily",
    "training_cutoffs",
    "validation_mask",
    "validation_metrics",
    "validation_report",
    "with_labels",
]

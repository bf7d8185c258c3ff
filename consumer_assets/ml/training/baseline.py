"""The legacy baseline: logistic regression on hand-crafted features of the same histories.

The features are what years of feature engineering would start from: per action type, how many
events in the last 1, 7 and 28 days and in the whole history (its last <= 200 events of the
horizon), and how long since the last one; the horizon's summaries the history carries (events,
active days, first seen, orders and returns, days since the last order and return, with an
indicator where there was none); and the moment of the prediction (weekday of the cut-off, hour
of the last event, time since it). Counts and recencies enter as logs (optionally also as
indicator bins of recency, the way a logistic model handles effects that are strong at first and
flatten out). Every feature comes from the history itself, so the baseline and the LSTM see
exactly the same information.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from consumer_assets.events.schema import ACTION_TYPES
from consumer_assets.ml.model.inputs import NULL, NULLABLE_SUMMARIES, SUMMARY_COLUMNS
from consumer_assets.ml.training.data import Histories, SequenceData
from consumer_assets.ml.training.labels import SAMPLE_SALT
from consumer_assets.windows import ELIGIBILITY_DAYS, HORIZON_DAYS

# Counts per action type over the last day, week, eligibility window and the whole history.
COUNT_WINDOWS_HOURS = (24.0, 7 * 24.0, ELIGIBILITY_DAYS * 24.0, np.inf)
# Recency bins per action type (hours): an event of the type in the last hour, day, 3 days, ...
RECENCY_BINS_HOURS = (1.0, 24.0, 3 * 24.0, 7 * 24.0, 14 * 24.0, 28 * 24.0, 90 * 24.0)
# The recency of a type the history has no event of (its whole-history count of 0 says so too).
NO_EVENT_HOURS = HORIZON_DAYS * 24.0
N_TYPES = len(ACTION_TYPES)
# Histories the baseline is fitted on at most: beyond a couple of hundred thousand rows its 290
# coefficients do not move, and the features (float32, 1.2 KB a history) stay within 250 MB.
MAX_ROWS = 200_000


def _window_name(hours: float) -> str:
    return "history" if np.isinf(hours) else f"{int(hours)}h"


def feature_names(bins: bool = True, action_types: tuple[str, ...] = ACTION_TYPES) -> list[str]:
    """Names of baseline_features' columns, in order."""
    names = [f"log_count_{_window_name(w)}_{t}" for w in COUNT_WINDOWS_HOURS for t in action_types]
    names += [f"log_hours_since_{t}" for t in action_types]
    if bins:
        names += [f"{t}_within_{int(edge)}h" for edge in RECENCY_BINS_HOURS for t in action_types]
    names += [f"log_{name}" for name in SUMMARY_COLUMNS] + [f"no_{name}" for name in NULLABLE_SUMMARIES]
    names += [f"weekday_{d}" for d in range(7)] + [f"last_hour_{4 * b:02d}_{4 * b + 4:02d}" for b in range(6)]
    return [*names, "last_hour_sin", "last_hour_cos", "log_hours_since_last_event"]


def baseline_features(data: SequenceData, n_types: int = N_TYPES, bins: bool = True) -> np.ndarray:
    """(histories, features) float64: counts per type and window, recency per type, the horizon's
    summaries, the prediction moment."""
    n = len(data)
    row = np.repeat(np.arange(n), data.lengths)
    age = data.age_hours()
    kind = data.event_type
    columns: list[np.ndarray] = []
    for window in COUNT_WINDOWS_HOURS:
        inside = age < window
        counts = np.bincount(row[inside] * n_types + kind[inside], minlength=n * n_types).reshape(n, n_types)
        columns.append(np.log1p(counts))
    recency = np.full(n * n_types, NO_EVENT_HOURS)
    np.minimum.at(recency, row * n_types + kind, age)
    recency = recency.reshape(n, n_types)
    columns.append(np.log1p(recency))
    if bins:
        columns += [(recency < edge).astype(np.float64) for edge in RECENCY_BINS_HOURS]
    summary = data.summary.astype(np.float64)
    null = data.summary == NULL
    # A null (no order or return in the horizon) enters as 0 beside its indicator.
    columns.append(np.where(null, 0.0, np.log1p(np.maximum(summary, 0.0))))
    columns.append(null[:, [SUMMARY_COLUMNS.index(name) for name in NULLABLE_SUMMARIES]].astype(np.float64))
    weekday = np.zeros((n, 7))
    weekday[np.arange(n), data.weekday.astype(np.int64)] = 1.0
    angle = data.hour.astype(np.float64) * (2 * np.pi / 24)
    hour_bins = np.zeros((n, 6))
    hour_bins[np.arange(n), np.minimum(data.hour.astype(np.int64) // 4, 5)] = 1.0
    since = data.hours_since.astype(np.float64)
    moment = [weekday, hour_bins, np.sin(angle)[:, None], np.cos(angle)[:, None], np.log1p(since)[:, None]]
    return np.hstack(columns + moment)


@dataclass
class LogisticBaseline:
    """Standardised features, L2-regularised logistic regression (lbfgs).

    The defaults did best on held-out training profiles of the simulator over a 180-day horizon
    (C in 0.0001..10, with and without the recency bins, bench/quality_bar.py on seeds other than
    the reported one): strong regularisation, with the bins.
    """

    c: float = 0.001
    bins: bool = True
    max_iter: int = 1000
    n_types: int = N_TYPES
    pipeline: Pipeline | None = field(default=None, repr=False)

    def fit(self, data: Histories) -> LogisticBaseline:
        """Fit on labelled histories, in memory or streamed: the features of at most MAX_ROWS of them
        (a sample by the profile hash when there are more), computed a chunk at a time."""
        source = data
        if len(data) > MAX_ROWS:
            source = data.held_out(MAX_ROWS / len(data), SAMPLE_SALT)[1]
        features, labels = [], []
        for chunk in source.chunks():
            if chunk.label is None:
                raise ValueError("the baseline needs labelled histories")
            features.append(baseline_features(chunk, self.n_types, self.bins).astype(np.float32))
            labels.append(chunk.label.astype(np.int64))
        self.pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=self.c, max_iter=self.max_iter))
        self.pipeline.fit(np.concatenate(features), np.concatenate(labels))
        return self

    def predict(self, data: SequenceData) -> np.ndarray:
        if self.pipeline is None:
            raise ValueError("fit the baseline first")
        features = baseline_features(data, self.n_types, self.bins).astype(np.float32)
        return self.pipeline.predict_proba(features)[:, 1].astype(np.float64)

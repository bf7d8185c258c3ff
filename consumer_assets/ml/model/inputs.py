"""The model's inputs besides the embedded ids: how each stored column enters, centred and scaled.

Per event, CONTINUOUS (the gaps, the price, the age at the prediction moment); per history, the
static inputs joined at the output layer (the moment's and the horizon's SUMMARIES). Training,
scoring and the baseline compute them from here; the network sizes its layers by them. Changing
any of them changes what a trained model's weights mean: that is INPUT_VERSION (model.config).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Continuous inputs per event, each centred and scaled to about unit range: (x - centre) / scale.
CONTINUOUS = (("log_dt", 5.0, 4.0), ("log_price", 3.0, 2.0), ("log_age_hours", 4.0, 2.0))
N_CONTINUOUS = len(CONTINUOUS)
# Inputs about the prediction moment and the long past, joined at the output layer: log hours
# since the last event, the cut-off weekday (one-hot, 7), the last event's hour of day on the
# circle (2), then the horizon's summaries (SUMMARIES).
HOURS_SINCE_CENTRE, HOURS_SINCE_SCALE = 3.0, 2.0
# The stored per-row summaries of the whole horizon (HISTORIES_SCHEMA), each entering as
# (log1p(x) - centre) / scale; a nullable one (no order, no return in the horizon) enters as 0
# plus an indicator that it is null, so "never" is its own learned effect rather than a made-up
# number of days (which would depend on the horizon). Part of INPUT_VERSION, like CONTINUOUS.
SUMMARIES = (
    ("n_window_events", 5.0, 1.5),
    ("n_recent_events", 4.0, 1.0),
    ("active_days", 3.0, 1.0),
    ("days_since_first_event", 4.0, 1.0),
    ("n_orders", 1.0, 1.0),
    ("n_returns", 0.5, 1.0),
    ("days_since_last_order", 3.5, 1.5),
    ("days_since_last_return", 3.5, 1.5),
)
SUMMARY_COLUMNS = tuple(name for name, _, _ in SUMMARIES)
NULLABLE_SUMMARIES = ("days_since_last_order", "days_since_last_return")
MOMENT_STATIC = 1 + 7 + 2
N_STATIC = MOMENT_STATIC + len(SUMMARIES) + len(NULLABLE_SUMMARIES)
# Summaries are stored as int32 per row; a null as -1 (a count or a number of days is never negative).
NULL = -1


def static_names() -> list[str]:
    """What each of the N_STATIC inputs is, in order (the summaries by their column names)."""
    moment = ["log_hours_since_last_event", *(f"weekday_{d}" for d in range(7)), "last_hour_sin", "last_hour_cos"]
    return [*moment, *SUMMARY_COLUMNS, *(f"no_{name}" for name in NULLABLE_SUMMARIES)]


def static_inputs(hours_since: np.ndarray, weekday: np.ndarray, hour: np.ndarray, summary: np.ndarray) -> np.ndarray:
    """The (rows, N_STATIC) float32 static inputs of rows' moment and summaries (summary_matrix)."""
    static = np.zeros((len(hours_since), N_STATIC), dtype=np.float32)
    static[:, 0] = (np.log1p(np.maximum(hours_since, 0.0)) - HOURS_SINCE_CENTRE) / HOURS_SINCE_SCALE
    if len(weekday) and (weekday.min() < 0 or weekday.max() > 6):
        raise ValueError("cutoff_weekday must be in 0..6")
    static[np.arange(len(weekday)), 1 + weekday.astype(np.int64)] = 1.0
    angle = hour.astype(np.float64) * (2 * np.pi / 24)
    static[:, 8], static[:, 9] = np.sin(angle), np.cos(angle)
    for j, (name, centre, scale) in enumerate(SUMMARIES):
        x = summary[:, j]
        null = x == NULL
        static[:, MOMENT_STATIC + j] = np.where(null, 0.0, (np.log1p(np.maximum(x, 0)) - centre) / scale)
        if name in NULLABLE_SUMMARIES:
            static[:, MOMENT_STATIC + len(SUMMARIES) + NULLABLE_SUMMARIES.index(name)] = null
    return static


def summary_matrix(batch: pa.RecordBatch) -> np.ndarray:
    """(rows, len(SUMMARY_COLUMNS)) int32, nulls as NULL; only NULLABLE_SUMMARIES may be null."""

    def values(name: str) -> tuple[np.ndarray, bool]:
        column = batch.column(name)
        if not column.null_count:
            return column.to_numpy(zero_copy_only=False), False
        return pc.fill_null(column, NULL).to_numpy(zero_copy_only=False), True

    return _stacked(batch.num_rows, values)


def summary_of(columns: Mapping[str, np.ndarray], nulls: Mapping[str, np.ndarray]) -> np.ndarray:
    """summary_matrix of the columns as numpy arrays; `nulls` marks a column's null values."""

    def values(name: str) -> tuple[np.ndarray, bool]:
        null = nulls.get(name)
        if null is None or not null.any():
            return columns[name], False
        return np.where(null, NULL, columns[name]), True

    return _stacked(len(columns[SUMMARY_COLUMNS[0]]), values)


def _stacked(rows: int, values: Callable[[str], tuple[np.ndarray, bool]]) -> np.ndarray:
    out = np.empty((rows, len(SUMMARY_COLUMNS)), np.int32)
    for j, name in enumerate(SUMMARY_COLUMNS):
        column, had_nulls = values(name)
        if had_nulls and name not in NULLABLE_SUMMARIES:
            raise ValueError(f"{name} has nulls")
        column = column.astype(np.int32)
        if len(column) and column.min() < (NULL if name in NULLABLE_SUMMARIES else 0):
            raise ValueError(f"{name} has negative values")
        out[:, j] = column
    return out

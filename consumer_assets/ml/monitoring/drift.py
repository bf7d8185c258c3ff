"""Drift of inputs and scores: population stability index (PSI) of a day against the trailing days.

A day is reduced to a small Summary: per feature, counts in fixed fine bins (FEATURES, unchanged
within a SUMMARY_VERSION) plus a last bin for missing values (NaN, unknown categories). Summaries
are built batch by batch, so memory does not grow with the number of profiles; they add up
(pooling days is adding counts); as JSON (`to_dict`) a day is a few kB. The check of day D reads
the trailing days' summaries, never their data.

PSI = sum_b (c_b - r_b) ln(c_b / r_b) over the shares r of the reference (the trailing days pooled)
and c of the day. Bins: for a numeric feature, QUANTILE_BINS quantile bins of the reference, made by
merging consecutive fine bins until each holds 1/QUANTILE_BINS of the reference mass (a fine bin
with more, such as a point mass at 0, stays one bin; the outer bins reach -inf and +inf); missing
values stay a bin of their own. A categorical feature compares category by category. Shares of
empty bins are raised to EPSILON so the logarithm is finite. Reading, the usual rule of thumb:
below PSI_STABLE stable, up to PSI_MAJOR a moderate shift, above it a major one; checks warn
above PSI_WARN.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from consumer_assets.events.schema import ACTION_TYPES
from consumer_assets.histories.schema import MAX_EVENTS
from consumer_assets.ml.training.sequences import hours_before_cutoff, list_parts
from consumer_assets.windows import MAX_HORIZON_DAYS

# 2: the horizon's summaries are features, hours since the last event binned up to the longest horizon.
SUMMARY_VERSION = 2
QUANTILE_BINS = 10
EPSILON = 1e-4
PSI_STABLE = 0.1
PSI_MAJOR = 0.25
PSI_WARN = 0.2


def _count_edges(hi: int, n: int) -> np.ndarray:
    """Bins for counts 0..hi: unit bins where counts are small, geometric above."""
    return np.r_[-0.5, np.unique(np.round(np.geomspace(1, hi + 1, n))) - 0.5]


# Fine bin edges per feature (values outside fall into the outer bins), or the number of categories.
FEATURES: dict[str, dict[str, np.ndarray | int]] = {
    "histories": {
        "n_events": _count_edges(MAX_EVENTS, 64),
        # Events in the horizon (all of them, not only the <= MAX_EVENTS the history holds).
        "n_window_events": _count_edges(5000, 80),
        # Up to the longest horizon a history may be built over (an eligible profile's last event
        # lies in the 28 eligibility days; the bins do not rely on it).
        "hours_since_last_event": np.expm1(np.linspace(0.0, np.log1p(MAX_HORIZON_DAYS * 24.0), 97)),
        # Events of the cut-off day itself (the last 24 hours of the history): today's activity.
        "events_on_day": _count_edges(MAX_EVENTS, 48),
        "last_event_hour": np.linspace(0.0, 24.0, 49),
        "log_dt_mean": np.linspace(0.0, 15.0, 76),
        "log_price_mean": np.linspace(0.0, 7.5, 76),  # over the events with a price
        "event_type": len(ACTION_TYPES),  # every event of every history: the mix of event types
        "last_event_type": len(ACTION_TYPES),
        # The horizon's summaries, which the model reads beside the sequence (days count from the
        # cut-off day; a profile without an order or a return in the horizon is 'missing').
        "n_recent_events": _count_edges(2000, 64),
        "active_days": _count_edges(MAX_HORIZON_DAYS, 64),
        "days_since_first_event": _count_edges(MAX_HORIZON_DAYS, 64),
        "n_orders": _count_edges(200, 32),
        "n_returns": _count_edges(200, 32),
        "days_since_last_order": _count_edges(MAX_HORIZON_DAYS, 64),
        "days_since_last_return": _count_edges(MAX_HORIZON_DAYS, 64),
    },
    "scores": {"score": 1.0 / (1.0 + np.exp(-np.linspace(-10.0, 10.0, 201)))},
}


# HISTORIES_SCHEMA's summaries of the whole horizon, binned as they are (nulls: the missing bin).
HORIZON_SUMMARIES = (
    "n_recent_events",
    "active_days",
    "days_since_first_event",
    "n_orders",
    "n_returns",
    "days_since_last_order",
    "days_since_last_return",
)


def _n_bins(spec: np.ndarray | int) -> int:
    return spec if isinstance(spec, int) else len(spec) - 1


@dataclass(frozen=True, eq=False)
class Summary:
    """Fine-bin counts per feature of one day (or of pooled days); the last bin of each is 'missing'."""

    kind: str  # "histories" or "scores"
    n: int  # rows (profiles) summarized
    counts: dict[str, np.ndarray]

    @classmethod
    def empty(cls, kind: str) -> Summary:
        return cls(kind, 0, {name: np.zeros(_n_bins(s) + 1, np.int64) for name, s in FEATURES[kind].items()})

    def __add__(self, other: Summary) -> Summary:
        if other.kind != self.kind:
            raise ValueError(f"cannot pool a {other.kind} summary with a {self.kind} one")
        return Summary(self.kind, self.n + other.n, {k: v + other.counts[k] for k, v in self.counts.items()})

    def to_dict(self) -> dict[str, object]:
        """JSON-able: for Dagster metadata or a row of a small table."""
        counts = {k: v.tolist() for k, v in self.counts.items()}
        return {"version": SUMMARY_VERSION, "kind": self.kind, "n": self.n, "counts": counts}

    @staticmethod
    def comparable(data: dict) -> bool:
        """Whether `data` (a to_dict) has this SUMMARY_VERSION's bins: summaries of another version,
        recorded before the features or their bins changed, cannot be pooled with today's."""
        return data.get("version") == SUMMARY_VERSION

    @classmethod
    def from_dict(cls, data: dict) -> Summary:
        if data.get("version") != SUMMARY_VERSION or data.get("kind") not in FEATURES:
            raise ValueError(f"not a version {SUMMARY_VERSION} summary: {str(data)[:80]}")
        out = cls(data["kind"], int(data["n"]), {k: np.asarray(v, np.int64) for k, v in data["counts"].items()})
        if {k: len(v) for k, v in out.counts.items()} != {k: len(v) for k, v in cls.empty(out.kind).counts.items()}:
            raise ValueError("summary bins do not match FEATURES")
        return out


def summarize(kind: str, rows: int, values: dict[str, np.ndarray]) -> Summary:
    """The summary of one batch given each feature's values (one per row, or per event)."""
    counts = {}
    for name, spec in FEATURES[kind].items():
        v = np.asarray(values[name])
        nb = _n_bins(spec)
        if isinstance(spec, int):
            idx = np.where((v >= 0) & (v < nb), v, nb).astype(np.int64)
        else:
            v = v.astype(np.float64)
            idx = np.clip(np.searchsorted(spec, v, side="right") - 1, 0, nb - 1)
            idx[np.isnan(v)] = nb
        counts[name] = np.bincount(idx, minlength=nb + 1).astype(np.int64)
    return Summary(kind, rows, counts)


def history_features(batch: pa.RecordBatch | pa.Table, hours: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-row (and, for event_type, per-event) features of histories in HISTORIES_SCHEMA.

    `hours`: sequences.hours_before_cutoff of the batch, when the caller has computed it already.
    """
    types, offsets = list_parts(batch["event_type"])
    log_dt, _ = list_parts(batch["log_dt"])
    log_price, _ = list_parts(batch["log_price"])
    lengths = np.diff(offsets)
    rows = len(lengths)
    row = np.repeat(np.arange(rows), lengths)
    hsl = batch["hours_since_last_event"].to_numpy(zero_copy_only=False).astype(np.float64)
    priced = log_price > 0
    n_priced = np.bincount(row, priced, minlength=rows)
    if hours is None:
        hours = hours_before_cutoff(log_dt, offsets, hsl)
    return {
        "n_events": lengths,
        "n_window_events": batch["n_window_events"].to_numpy(zero_copy_only=False),
        "hours_since_last_event": hsl,
        "events_on_day": np.bincount(row, hours < 24.0, minlength=rows),
        "last_event_hour": batch["last_event_hour"].to_numpy(zero_copy_only=False),
        # The first log_dt of a history is 0 by definition: the mean is over the n - 1 real gaps.
        "log_dt_mean": np.bincount(row, log_dt, minlength=rows) / np.maximum(lengths - 1, 1),
        "log_price_mean": np.bincount(row, np.where(priced, log_price, 0.0), minlength=rows) / np.maximum(n_priced, 1),
        "event_type": types,
        "last_event_type": types[offsets[1:][lengths > 0] - 1],
        **{name: _nullable(batch[name]) for name in HORIZON_SUMMARIES},
    }


def _nullable(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """float64 values with NaN for nulls."""
    return column.cast(pa.float64()).to_numpy(zero_copy_only=False)


def _batches(data: Iterable[pa.RecordBatch | pa.Table]) -> Iterable[pa.RecordBatch]:
    for item in data:
        yield from item.to_batches() if isinstance(item, pa.Table) else [item]


def summarize_histories(batches: Iterable[pa.RecordBatch | pa.Table]) -> Summary:
    """Summary of a day's histories, one batch at a time."""
    total = Summary.empty("histories")
    for batch in _batches(batches):
        total = total + summarize("histories", batch.num_rows, history_features(batch))
    return total


def summarize_scores(batches: Iterable[pa.Array | pa.ChunkedArray | np.ndarray]) -> Summary:
    """Summary of a day's predicted probabilities, one batch at a time (nulls count as missing)."""
    total = Summary.empty("scores")
    for batch in batches:
        v = batch.to_numpy(zero_copy_only=False) if isinstance(batch, pa.Array | pa.ChunkedArray) else batch
        v = np.asarray(v, np.float64)
        total = total + summarize("scores", len(v), {"score": v})
    return total


def quantile_groups(reference: np.ndarray, bins: int = QUANTILE_BINS) -> np.ndarray:
    """Per fine bin, its quantile bin: the reference share before it, times `bins`, rounded down."""
    ref = np.asarray(reference, np.float64)
    if ref.sum() == 0:
        return np.zeros(len(ref), np.int64)
    before = (np.cumsum(ref) - ref) / ref.sum()
    return np.minimum((before * bins).astype(np.int64), bins - 1)


def psi(reference: np.ndarray, current: np.ndarray, *, categorical: bool = False, bins: int = QUANTILE_BINS) -> float:
    """PSI of `current` against `reference`, both counts over the same fine bins (the last: missing)."""
    ref, cur = np.asarray(reference, np.float64), np.asarray(current, np.float64)
    if ref.shape != cur.shape or ref.sum() <= 0 or cur.sum() <= 0:
        raise ValueError("psi needs two non-empty count vectors over the same bins")
    if not categorical:
        group = np.r_[quantile_groups(ref[:-1], bins), bins]
        ref, cur = np.bincount(group, ref, minlength=bins + 1), np.bincount(group, cur, minlength=bins + 1)
    r, c = np.maximum(ref / ref.sum(), EPSILON), np.maximum(cur / cur.sum(), EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))


def feature_psi(reference: Summary, current: Summary) -> dict[str, float]:
    """PSI per feature; features without values on either side are left out."""
    out = {}
    for name, spec in FEATURES[current.kind].items():
        ref, cur = reference.counts[name], current.counts[name]
        if ref.sum() > 0 and cur.sum() > 0:
            out[name] = psi(ref, cur, categorical=isinstance(spec, int))
    return out


def level(value: float) -> str:
    return "stable" if value < PSI_STABLE else "moderate" if value <= PSI_MAJOR else "major"


class DriftCheck(NamedTuple):
    passed: bool
    description: str
    metadata: dict[str, float | int | str]


def check_drift(current: Summary, trailing: Sequence[Summary], threshold: float = PSI_WARN) -> DriftCheck:
    """Day against its trailing days pooled (weighted by rows): passes while every PSI <= `threshold`."""
    reference = sum(trailing, Summary.empty(current.kind))
    meta: dict[str, float | int | str] = {"rows": current.n, "reference_rows": reference.n}
    meta["reference_days"] = len(trailing)
    if reference.n == 0:
        return DriftCheck(True, f"{current.kind}: no trailing days to compare with", meta)
    if current.n == 0:
        return DriftCheck(False, f"{current.kind}: no rows on this day", meta)
    values = feature_psi(reference, current)
    if not values:
        return DriftCheck(True, f"{current.kind}: no feature has values on both sides", meta)
    worst = max(values, key=values.__getitem__)
    meta |= {"psi_max": values[worst], "psi_worst_feature": worst, "level": level(values[worst])}
    meta |= {f"psi_{name}": v for name, v in values.items()}
    above = [f"{name} {v:.3f}" for name, v in sorted(values.items(), key=lambda kv: -kv[1]) if v > threshold]
    where = f"vs {len(trailing)} trailing days ({reference.n} rows)"
    if above:
        return DriftCheck(False, f"{current.kind} drift, PSI > {threshold} {where}: {', '.join(above)}", meta)
    return DriftCheck(True, f"{current.kind}: max PSI {values[worst]:.3f} ({worst}) {where}", meta)

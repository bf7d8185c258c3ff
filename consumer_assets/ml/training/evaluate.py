"""Validation reports, and the paired comparisons of a candidate model that the quality gate judges.

`validation_metrics` is what gets recorded for every model (numbers only, so they plot over
time). `compare_models` measures a candidate against a reference (the logistic baseline, the
approved model) on the same validation histories with a paired bootstrap over profiles: the
difference and its interval. Whether that is good enough is gate.judge's to say, with the
configured tolerances.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from consumer_assets.ml.training.metrics import (
    COMPARED_METRICS,
    auc,
    calibration_table,
    expected_calibration_error,
    nll,
    paired_bootstrap,
    score_deciles,
)


def validation_metrics(y: np.ndarray, p: np.ndarray, prefix: str = "") -> dict[str, float]:
    """AUC, mean NLL per history, ECE, counts and the mean prediction vs the observed rate."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    values = {
        "auc": auc(y, p),
        "nll": nll(y, p) if len(y) else float("nan"),
        "ece": expected_calibration_error(y, p) if len(y) else float("nan"),
        "histories": float(len(y)),
        "positives": float(y.sum()),
        "mean_predicted": float(p.mean()) if len(p) else float("nan"),
        "observed_rate": float(y.mean()) if len(y) else float("nan"),
    }
    return {f"{prefix}{k}": v for k, v in values.items()}


def distribution(y: np.ndarray, p: np.ndarray) -> dict[str, object]:
    """Score deciles and the calibration table: what a person looks at beside the headline numbers."""
    return {"score_deciles": score_deciles(p), "calibration": calibration_table(y, p)}


@dataclass(frozen=True)
class Comparison:
    """Candidate vs reference on one metric; diff is oriented so that positive is better for the candidate."""

    metric: str
    candidate: float
    reference: float
    better_by: float
    interval: tuple[float, float]  # of better_by, paired bootstrap

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def compare_models(
    y: np.ndarray,
    p_candidate: np.ndarray,
    p_reference: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    replicates: int = 1000,
    level: float = 0.90,
    seed: int = 0,
) -> dict[str, Comparison]:
    """{'auc', 'nll', 'ece', 'mean_gap': ...}: how much better the candidate is than the reference,
    with an interval. For the NLL and the two calibration errors lower is better: their sign is flipped.

    `level` is two-sided: 0.90 puts 5% in the tail that matters, a one-sided 95% bound.
    """
    result = {}
    for metric in COMPARED_METRICS:
        sign = 1.0 if metric == "auc" else -1.0
        boot = paired_bootstrap(
            y, p_candidate, p_reference, metric, groups=groups, replicates=replicates, level=level, seed=seed
        )
        # + 0.0: a flipped zero difference reads 0.0000, not -0.0000.
        lo, hi = sorted((sign * boot.diff_interval[0] + 0.0, sign * boot.diff_interval[1] + 0.0))
        better = sign * boot.diff + 0.0
        result[metric] = Comparison(
            metric=metric,
            candidate=boot.a,
            reference=boot.b,
            better_by=better,
            interval=(lo, hi),
        )
    return result


def validation_report(
    y: np.ndarray,
    predictions: dict[str, np.ndarray],
    *,
    candidate: str = "lstm",
    groups: np.ndarray | None = None,
    replicates: int = 1000,
    seed: int = 0,
) -> dict[str, object]:
    """Metrics of every model on the same validation rows, and the candidate against each other one.

    Returns {"metrics": {"<model>_auc": ..., ...}, "comparisons": {"<other>": {"<metric>": Comparison}}
    (metrics.COMPARED_METRICS), "distribution": score deciles and calibration of the candidate}.
    """
    metrics: dict[str, float] = {}
    for name, p in predictions.items():
        metrics |= validation_metrics(y, p, prefix=f"{name}_")
    comparisons = {
        name: compare_models(y, predictions[candidate], p, groups=groups, replicates=replicates, seed=seed)
        for name, p in predictions.items()
        if name != candidate
    }
    return {
        "metrics": metrics,
        "comparisons": comparisons,
        "distribution": distribution(y, predictions[candidate]),
    }

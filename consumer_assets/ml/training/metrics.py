"""Validation metrics: AUC, log-likelihood, calibration, and a paired bootstrap to compare two models.

AUC and log loss are scikit-learn's. The bootstrap resamples whole groups (profiles: a profile's
histories on consecutive days are nearly the same history, so resampling rows would understate
the spread) and scores each replicate with the same draw for both models, so what it measures is
the difference, with everything the two share cancelling out. Replicates are weighted versions
of the validation set, so each one costs a weighted sum, not a resort (the AUC is sorted once).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

EPS = 1e-7
# What paired_bootstrap compares: AUC, mean NLL, expected calibration error, |mean predicted - observed rate|.
COMPARED_METRICS: tuple[str, ...] = ("auc", "nll", "ece", "mean_gap")


def _as_arrays(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    if y.shape != p.shape:
        raise ValueError(f"labels {y.shape} and predictions {p.shape} differ in shape")
    return y, p


def auc(y: np.ndarray, p: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Area under the ROC curve (nan when only one class is present)."""
    y, p = _as_arrays(y, p)
    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, p, sample_weight=sample_weight))


def nll(y: np.ndarray, p: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Mean negative log-likelihood per history (natural log), predictions clipped to [1e-7, 1 - 1e-7]."""
    y, p = _as_arrays(y, p)
    return float(log_loss(y, np.clip(p, EPS, 1 - EPS), sample_weight=sample_weight, labels=[0, 1]))


def _decile_bins(p: np.ndarray, bins: int) -> np.ndarray:
    """Bin index per prediction: equal-count bins by rank (ties may straddle a boundary)."""
    order = np.argsort(p, kind="stable")
    index = np.empty(len(p), dtype=np.int64)
    index[order] = np.arange(len(p)) * bins // max(len(p), 1)
    return index


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Per equal-count bin of the predictions (deciles by default): count, mean predicted, observed rate."""
    y, p = _as_arrays(y, p)
    index = _decile_bins(p, bins)
    rows = []
    for b in range(bins):
        sel = index == b
        if not sel.any():
            continue
        rows.append(
            {
                "bin": b,
                "count": int(sel.sum()),
                "p_min": float(p[sel].min()),
                "p_max": float(p[sel].max()),
                "predicted": float(p[sel].mean()),
                "observed": float(y[sel].mean()),
            }
        )
    return rows


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Count-weighted mean |mean predicted - observed rate| over equal-count bins.

    Equal-count bins, not equal-width: with ~5% positives nearly every prediction sits in the
    first tenth of [0, 1], where equal-width bins would see one bin.
    """
    y, _ = _as_arrays(y, p)
    table = calibration_table(y, p, bins)
    return float(sum(r["count"] * abs(r["predicted"] - r["observed"]) for r in table) / max(len(y), 1))


def mean_gap(y: np.ndarray, p: np.ndarray) -> float:
    """Calibration in the large: |mean predicted - observed rate|, the error of the expected order count per history."""
    y, p = _as_arrays(y, p)
    return float(abs(p.mean() - y.mean())) if len(y) else float("nan")


def score_deciles(p: np.ndarray) -> list[float]:
    """The 10%, 20%, ..., 90% quantiles of the predictions (a compact picture of the distribution)."""
    p = np.asarray(p, dtype=np.float64)
    if not len(p):
        return []
    return [float(q) for q in np.quantile(p, np.linspace(0.1, 0.9, 9))]


def _weighted_auc(y: np.ndarray, order: np.ndarray, tie_start: np.ndarray, w: np.ndarray) -> np.ndarray:
    """AUC per row of weights w (R, n), predictions pre-sorted by `order` with tie groups starting at tie_start."""
    w = w[:, order]
    pos, neg = w * y[order], w * (1 - y[order])
    # Sum per group of equal predictions, then: each positive beats the negatives of lower groups
    # and ties half of its own group's.
    pos_g = np.add.reduceat(pos, tie_start, axis=1)
    neg_g = np.add.reduceat(neg, tie_start, axis=1)
    below = np.cumsum(neg_g, axis=1) - neg_g
    wins = (pos_g * (below + 0.5 * neg_g)).sum(axis=1)
    return wins / (pos_g.sum(axis=1) * neg_g.sum(axis=1))


def _weighted_nll(y: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    losses = -(y * np.log(p) + (1 - y) * np.log1p(-p))
    return (w @ losses) / w.sum(axis=1)


def _weighted_calibration_error(y: np.ndarray, p: np.ndarray, bins: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per row of w: sum over bins of |weighted sum of (p - y)| / total weight.

    With the equal-count bins of expected_calibration_error this is the ECE (count x |mean
    predicted - observed| per bin); with a single bin it is the mean gap. The bins stay those of
    the full sample: a replicate reweights rows, it does not re-rank them.
    """
    one_hot = np.zeros((len(p), int(bins.max()) + 1 if len(bins) else 1))
    one_hot[np.arange(len(p)), bins] = p - y
    return np.abs(w @ one_hot).sum(axis=1) / w.sum(axis=1)


class _Sorted:
    def __init__(self, p: np.ndarray) -> None:
        self.order = np.argsort(p, kind="stable")
        ps = p[self.order]
        self.tie_start = np.flatnonzero(np.r_[True, ps[1:] != ps[:-1]])


@dataclass(frozen=True)
class PairedBootstrap:
    """Metric of model a and b, their difference a - b, and percentile intervals over replicates."""

    metric: str
    a: float
    b: float
    diff: float
    a_interval: tuple[float, float]
    b_interval: tuple[float, float]
    diff_interval: tuple[float, float]
    diff_se: float
    replicates: int
    level: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def group_codes(n: int, groups: np.ndarray | None) -> tuple[np.ndarray, int]:
    """(each row's group as 0 .. k - 1 in the groups' sorted order, k); each row its own group without `groups`."""
    if groups is None:
        return np.arange(n), n
    _, codes = np.unique(groups, return_inverse=True)
    return codes, int(codes.max()) + 1 if n else 0


# Rows resampled at most: beyond, a subset of the groups (see paired_bootstrap).
BOOTSTRAP_MAX_ROWS = 200_000
# Weights of the replicates computed together at most (8 bytes each).
BOOTSTRAP_CELLS = 4_000_000


def bootstrap_weights(
    n: int,
    groups: np.ndarray | None,
    replicates: int,
    rng: np.random.Generator,
    *,
    coded: tuple[np.ndarray, int] | None = None,
) -> np.ndarray:
    """(replicates, n) row weights: how often each row's group was drawn (groups drawn with replacement).
    `coded`: group_codes(n, groups), when the caller has them already."""
    codes, k = coded if coded is not None else group_codes(n, groups)
    draws = rng.integers(0, k, size=(replicates, k))
    counts = np.stack([np.bincount(d, minlength=k) for d in draws]).astype(np.float64)
    return counts[:, codes]


def paired_bootstrap(
    y: np.ndarray,
    p_a: np.ndarray,
    p_b: np.ndarray,
    metric: str = "auc",
    *,
    groups: np.ndarray | None = None,
    replicates: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    chunk: int = 100,
) -> PairedBootstrap:
    """Compare two models' predictions on the same rows by COMPARED_METRICS, resampling `groups` (or rows).

    The interval of a - b is the central `level` percentile interval of the replicates' differences.

    Beyond BOOTSTRAP_MAX_ROWS rows the replicates resample a random subset of the groups holding
    about that many rows, and their spread around the subset's own value is scaled by
    sqrt(subset groups / all groups) and put around the full sample's value (the m-out-of-n
    bootstrap): these metrics' errors shrink as 1 / sqrt(n), and a million validation histories
    would otherwise take an hour of replicates. Below it, every row is resampled.
    """
    y, p_a = _as_arrays(y, p_a)
    _, p_b = _as_arrays(y, p_b)
    rng = np.random.default_rng(seed)
    stat = {"auc": auc, "nll": nll, "ece": expected_calibration_error, "mean_gap": mean_gap}.get(metric)
    if stat is None:
        raise ValueError(f"metric must be one of {COMPARED_METRICS}, got {metric!r}")
    coded = group_codes(len(y), groups)
    full_a, full_b, scale = stat(y, p_a), stat(y, p_b), 1.0
    if len(y) > BOOTSTRAP_MAX_ROWS:
        codes, k = coded
        m = max(2, round(k * BOOTSTRAP_MAX_ROWS / len(y)))
        chosen = np.zeros(k, dtype=bool)
        chosen[np.random.default_rng([seed, 1]).choice(k, m, replace=False)] = True
        rows = np.flatnonzero(chosen[codes])
        y, p_a, p_b, groups = y[rows], p_a[rows], p_b[rows], codes[rows]
        coded, scale = group_codes(len(y), groups), math.sqrt(m / k)
    if metric == "auc":
        sorted_a, sorted_b = _Sorted(p_a), _Sorted(p_b)

        def replicate(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return (
                _weighted_auc(y, sorted_a.order, sorted_a.tie_start, w),
                _weighted_auc(y, sorted_b.order, sorted_b.tie_start, w),
            )

    elif metric == "nll":

        def replicate(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return _weighted_nll(y, p_a, w), _weighted_nll(y, p_b, w)

    else:
        # The ECE: each model's own deciles of the full sample; the mean gap: one bin, the whole sample.
        one_bin = np.zeros(len(y), dtype=np.int64)
        bins_a = _decile_bins(p_a, 10) if metric == "ece" else one_bin
        bins_b = _decile_bins(p_b, 10) if metric == "ece" else one_bin

        def replicate(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return _weighted_calibration_error(y, p_a, bins_a, w), _weighted_calibration_error(y, p_b, bins_b, w)

    values_a, values_b = [], []
    # Replicates a chunk: their weights are (chunk, rows) floats, several copies in flight; bounded
    # by BOOTSTRAP_CELLS, however many rows. The draws are the same whatever the chunk.
    chunk = max(1, min(chunk, BOOTSTRAP_CELLS // max(1, len(y))))
    for start in range(0, replicates, chunk):
        w = bootstrap_weights(len(y), groups, min(chunk, replicates - start), rng, coded=coded)
        va, vb = replicate(w)
        values_a.append(va)
        values_b.append(vb)
    a_reps, b_reps = np.concatenate(values_a), np.concatenate(values_b)
    if scale != 1.0:  # a subset's replicates: their spread, scaled, around the full sample's values
        a_reps = full_a + scale * (a_reps - stat(y, p_a))
        b_reps = full_b + scale * (b_reps - stat(y, p_b))
    diffs = a_reps - b_reps
    tail = (1 - level) / 2 * 100

    def interval(x: np.ndarray) -> tuple[float, float]:
        lo, hi = np.nanpercentile(x, [tail, 100 - tail])
        return float(lo), float(hi)

    a, b = full_a, full_b
    return PairedBootstrap(
        metric=metric,
        a=a,
        b=b,
        diff=a - b,
        a_interval=interval(a_reps),
        b_interval=interval(b_reps),
        diff_interval=interval(diffs),
        diff_se=float(np.nanstd(diffs, ddof=1)),
        replicates=replicates,
        level=level,
    )

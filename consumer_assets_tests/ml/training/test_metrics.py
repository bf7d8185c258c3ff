"""Validation metrics, calibration and the paired bootstrap that compares two models."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from consumer_assets.ml.training import metrics
from consumer_assets.ml.training.evaluate import compare_models, validation_metrics
from consumer_assets.ml.training.metrics import (
    COMPARED_METRICS,
    _decile_bins,
    _Sorted,
    _weighted_auc,
    _weighted_calibration_error,
    auc,
    bootstrap_weights,
    calibration_table,
    expected_calibration_error,
    mean_gap,
    nll,
    paired_bootstrap,
    score_deciles,
)


def problem(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels drawn from a true probability, a sharper and a blurrier view of it."""
    rng = np.random.default_rng(seed)
    true = 1 / (1 + np.exp(-(rng.normal(-3.2, 1.2, n))))
    y = (rng.random(n) < true).astype(np.float64)
    blur = 1 / (1 + np.exp(-(np.log(true / (1 - true)) + rng.normal(0, 1.0, n))))
    return y, true, blur


def test_auc_and_nll_are_sklearns() -> None:
    y, p, _ = problem(5000)
    assert auc(y, p) == pytest.approx(roc_auc_score(y, p))
    assert nll(y, p) == pytest.approx(log_loss(y, p))
    assert np.isnan(auc(np.zeros(10), np.linspace(0, 1, 10)))
    # Hard 0/1 predictions that are wrong cost a bounded, not infinite, amount.
    assert np.isfinite(nll(np.array([1.0, 0.0]), np.array([0.0, 1.0])))


def test_calibration_sees_a_miscalibrated_model() -> None:
    y, p, _ = problem(40_000, 1)
    table = calibration_table(y, p)
    assert len(table) == 10 and sum(r["count"] for r in table) == len(y)
    assert [r["predicted"] for r in table] == sorted(r["predicted"] for r in table)
    for row in table:  # calibrated: each decile's observed rate near its mean prediction
        se = np.sqrt(row["predicted"] * (1 - row["predicted"]) / row["count"])
        assert abs(row["observed"] - row["predicted"]) < 4 * se + 1e-3
    assert expected_calibration_error(y, p) < 0.005
    assert expected_calibration_error(y, np.minimum(2 * p, 1)) > 0.03
    deciles = score_deciles(p)
    assert len(deciles) == 9 and deciles == sorted(deciles)


def test_fast_weighted_auc_is_sklearns_with_ties() -> None:
    rng = np.random.default_rng(2)
    y = (rng.random(3000) < 0.1).astype(float)
    p = np.round(rng.random(3000) + y * 0.3, 2)  # many ties
    w = rng.integers(0, 3, size=(4, 3000)).astype(float)
    s = _Sorted(p)
    fast = _weighted_auc(y, s.order, s.tie_start, w)
    slow = [roc_auc_score(y, p, sample_weight=row) for row in w]
    np.testing.assert_allclose(fast, slow, rtol=1e-12)


def test_bootstrap_weights_resample_whole_groups() -> None:
    groups = np.repeat(np.arange(50), 4)
    w = bootstrap_weights(len(groups), groups, 20, np.random.default_rng(0))
    assert w.shape == (20, 200)
    # Every row of a group gets its group's draw count; each replicate draws 50 groups.
    assert (w.reshape(20, 50, 4).std(axis=2) == 0).all()
    assert (w.sum(axis=1) == 200).all()


def test_paired_bootstrap_finds_the_better_model_and_nothing_between_equals() -> None:
    y, sharp, blurred = problem(20_000, 3)
    same = paired_bootstrap(y, sharp, sharp, "auc", replicates=200)
    assert same.diff == 0 and same.diff_interval == (0.0, 0.0)
    result = paired_bootstrap(y, sharp, blurred, "auc", replicates=300)
    assert result.diff > 0 and result.diff_interval[0] > 0
    assert result.a_interval[0] < result.a < result.a_interval[1]
    # Pairing: the difference is known far better than either AUC alone.
    assert result.diff_interval[1] - result.diff_interval[0] < result.a_interval[1] - result.a_interval[0]
    by_nll = paired_bootstrap(y, sharp, blurred, "nll", replicates=300)
    assert by_nll.diff < 0 and by_nll.diff_interval[1] < 0


def test_resampling_profiles_widens_the_interval_of_repeated_histories() -> None:
    y, sharp, blurred = problem(3000, 4)
    # Each profile seen on 7 days with the same outcome: rows are not independent.
    y7, a7, b7 = (np.repeat(x, 7) for x in (y, sharp, blurred))
    groups = np.repeat(np.arange(3000), 7)
    rows = paired_bootstrap(y7, a7, b7, "auc", replicates=300)
    profiles = paired_bootstrap(y7, a7, b7, "auc", groups=groups, replicates=300)
    assert profiles.diff_se > 2 * rows.diff_se


def test_the_weighted_calibration_errors_are_the_ece_and_the_mean_gap_and_reweight_without_reranking() -> None:
    y, p, _ = problem(3000, 7)
    p = np.minimum(1.5 * p, 1)  # over-predicting: a gap to measure
    ones = np.ones((1, len(y)))
    deciles, one_bin = _decile_bins(p, 10), np.zeros(len(y), dtype=np.int64)
    assert _weighted_calibration_error(y, p, deciles, ones)[0] == pytest.approx(expected_calibration_error(y, p))
    assert _weighted_calibration_error(y, p, one_bin, ones)[0] == pytest.approx(mean_gap(y, p))
    assert mean_gap(y, p) == pytest.approx(abs(p.mean() - y.mean())) and mean_gap(y, p) > 0.01
    # A row drawn twice counts twice, in the bin the full sample put it in.
    twice = np.r_[np.arange(len(y)), np.arange(100)]
    w = np.bincount(twice, minlength=len(y))[None, :].astype(np.float64)
    assert _weighted_calibration_error(y, p, one_bin, w)[0] == pytest.approx(mean_gap(y[twice], p[twice]))


def test_the_calibration_bootstraps_see_a_shifted_model_and_nothing_between_equals() -> None:
    y, sharp, _ = problem(20_000, 8)
    shifted = 0.75 * sharp  # a quarter fewer expected orders
    for metric in ("ece", "mean_gap"):
        same = paired_bootstrap(y, sharp, sharp, metric, replicates=200)
        assert same.diff == 0 and same.diff_interval == (0.0, 0.0)
        worse = paired_bootstrap(y, shifted, sharp, metric, replicates=200)
        assert worse.diff > 0.005 and worse.diff_interval[0] > 0, metric  # a - b: the shifted one errs more
        assert worse.a == pytest.approx((expected_calibration_error if metric == "ece" else mean_gap)(y, shifted))
    with pytest.raises(ValueError, match="metric must be one of"):
        paired_bootstrap(y, sharp, sharp, "brier")


def test_compare_models_orients_every_metric_so_positive_is_better() -> None:
    y, sharp, blurred = problem(20_000, 5)
    better = compare_models(y, sharp, blurred, replicates=200)
    assert set(better) == set(COMPARED_METRICS) == {"auc", "nll", "ece", "mean_gap"}
    # Lower is better for the calibration errors: the shifted model is worse on both.
    shifted = compare_models(y, 0.75 * sharp, sharp, replicates=200)
    assert shifted["ece"].better_by < 0 and shifted["ece"].interval[1] < 0
    assert shifted["mean_gap"].better_by < 0 and shifted["mean_gap"].interval[1] < 0
    assert shifted["mean_gap"].candidate > shifted["mean_gap"].reference
    assert better["auc"].better_by > 0 and better["nll"].better_by > 0
    assert better["auc"].interval[0] > 0 and better["nll"].interval[0] > 0
    assert better["nll"].candidate < better["nll"].reference  # lower NLL is better: the sign is flipped
    worse = compare_models(y, blurred, sharp, replicates=200)
    assert worse["auc"].better_by < -0.005 and worse["auc"].interval[1] < 0 and worse["nll"].interval[1] < 0
    for c in (*better.values(), *worse.values()):
        lo, hi = c.interval
        assert lo <= c.better_by <= hi


def test_validation_metrics_are_plain_numbers() -> None:
    y, p, _ = problem(2000, 6)
    metrics = validation_metrics(y, p, prefix="valid_")
    assert set(metrics) >= {"valid_auc", "valid_nll", "valid_ece", "valid_histories", "valid_positives"}
    assert all(isinstance(v, float) for v in metrics.values())
    assert metrics["valid_positives"] == y.sum() and metrics["valid_histories"] == 2000


@pytest.mark.parametrize("metric", ["auc", "nll", "ece"])
def test_a_subset_bootstrap_of_a_large_sample_gives_the_whole_samples_interval(
    metric: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    y, sharp, blurred = problem(4000, 5)
    # 4,000 profiles, each on 5 days: the replicates of the whole 20,000 rows, and of a fifth of the profiles.
    y5, a5, b5 = (np.repeat(x, 5) for x in (y, sharp, blurred))
    groups = np.repeat(np.arange(4000), 5)
    whole = paired_bootstrap(y5, a5, b5, metric, groups=groups, replicates=400)
    monkeypatch.setattr(metrics, "BOOTSTRAP_MAX_ROWS", 4000)
    subset = paired_bootstrap(y5, a5, b5, metric, groups=groups, replicates=400)
    assert subset.diff == whole.diff and subset.a == whole.a  # the values are the whole sample's
    width = whole.diff_interval[1] - whole.diff_interval[0]
    assert subset.diff_interval[1] - subset.diff_interval[0] == pytest.approx(width, rel=0.3)
    assert abs(np.mean(subset.diff_interval) - np.mean(whole.diff_interval)) < 0.3 * width
    # Without the scaling, a fifth of the profiles would give an interval sqrt(5) times as wide.
    assert subset.diff_se == pytest.approx(whole.diff_se, rel=0.3)

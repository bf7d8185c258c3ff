"""The one quality gate on constructed comparisons and predictions: the interval semantics, the floor,
the checks against the model in force and the reasons."""

from __future__ import annotations

import json

import numpy as np
import pytest

from consumer_assets.ml.training.evaluate import Comparison, compare_models, validation_metrics
from consumer_assets.ml.training.gate import (
    AUC_FLOOR,
    AUC_VS_BASELINE,
    CHECK_NAMES,
    ECE_VS_APPROVED,
    MEAN_VS_APPROVED,
    NLL_VS_APPROVED,
    VS_APPROVED,
    Tolerances,
    describe_difference,
    judge,
)

BARS = Tolerances(auc_floor=0.7, auc_margin=0.01, nll_tolerance=0.003, ece_tolerance=0.003, mean_gap_tolerance=0.003)


def compared(metric: str, better_by: float, lo: float, hi: float) -> Comparison:
    return Comparison(metric, candidate=0.5 + better_by, reference=0.5, better_by=better_by, interval=(lo, hi))


def comparisons(
    auc_interval: tuple[float, float] = (0.0, 0.02), nll_interval: tuple[float, float] | None = None
) -> dict[str, dict[str, Comparison]]:
    lo, hi = auc_interval
    result = {"baseline": {"auc": compared("auc", (lo + hi) / 2, lo, hi), "nll": compared("nll", 0.0, -1e-3, 1e-3)}}
    if nll_interval is not None:
        lo, hi = nll_interval
        result["approved"] = {m: compared(m, 0.0, -1e-3, 1e-3) for m in ("auc", "ece", "mean_gap")}
        result["approved"]["nll"] = compared("nll", (lo + hi) / 2, lo, hi)
    return result


# The constructed comparisons' calibration against the approved model: equal up to noise.
CALIBRATED = {ECE_VS_APPROVED: True, MEAN_VS_APPROVED: True}


def passed(auc: float, by: dict[str, dict[str, Comparison]], bars: Tolerances = BARS) -> dict[str, bool]:
    return {c.name: c.passed for c in judge(auc, by, bars, "2026-05-20/v1").checks}


@pytest.mark.parametrize(
    ("auc_hi", "nll_hi", "ok"),
    [(-0.0099, -0.0029, True), (-0.01, -0.003, True), (-0.0101, -0.0031, False), (-0.5, -0.5, False)],
)
def test_a_comparison_fails_only_when_the_whole_interval_is_beyond_the_configured_tolerance(
    auc_hi: float, nll_hi: float, ok: bool
) -> None:
    # The point estimates are far worse than the tolerances in every case: only the interval's top decides.
    by = comparisons(auc_interval=(auc_hi - 0.06, auc_hi), nll_interval=(nll_hi - 0.06, nll_hi))
    assert by["baseline"]["auc"].better_by < -BARS.auc_margin and by["approved"]["nll"].better_by < -BARS.nll_tolerance
    assert passed(0.8, by) == {AUC_FLOOR: True, AUC_VS_BASELINE: ok, **CALIBRATED, NLL_VS_APPROVED: ok}


def test_the_configured_tolerance_decides_not_a_default() -> None:
    by = comparisons(auc_interval=(-0.02, -0.006), nll_interval=(-0.01, -0.0025))
    strict = Tolerances(auc_floor=0.7, auc_margin=0.005, nll_tolerance=0.002)
    assert passed(0.8, by, strict) == {AUC_FLOOR: True, AUC_VS_BASELINE: False, **CALIBRATED, NLL_VS_APPROVED: False}
    assert passed(0.8, by, BARS) == {AUC_FLOOR: True, AUC_VS_BASELINE: True, **CALIBRATED, NLL_VS_APPROVED: True}
    verdict = judge(0.8, by, strict)
    assert not verdict.approved and verdict.failed == [AUC_VS_BASELINE, NLL_VS_APPROVED]
    assert judge(0.8, by, BARS).approved
    baseline = verdict.checks[1]
    assert baseline.metadata["tolerance"] == 0.005 and baseline.metadata["better_by"] == pytest.approx(-0.013)


def test_the_auc_floor_is_strict_and_nan_fails() -> None:
    assert passed(0.7001, comparisons())[AUC_FLOOR]
    assert not passed(0.7, comparisons())[AUC_FLOOR]
    assert not passed(float("nan"), comparisons())[AUC_FLOOR]
    nan_interval = comparisons(auc_interval=(float("nan"), float("nan")))
    assert not passed(0.8, nan_interval)[AUC_VS_BASELINE]


def test_without_an_approved_model_the_checks_against_it_pass_and_say_why() -> None:
    verdict = judge(0.8, comparisons(), BARS)
    assert [c.name for c in verdict.checks] == list(CHECK_NAMES)
    assert verdict.approved
    for name in (NLL_VS_APPROVED, ECE_VS_APPROVED, MEAN_VS_APPROVED):
        assert verdict.reasons()[name] == "no model approved yet: nothing to compare with"


def test_reasons_say_worse_by_never_better_by_a_negative_number() -> None:
    by = comparisons(auc_interval=(-0.0946, -0.0546), nll_interval=(0.001, 0.003))
    reasons = judge(0.65, by, BARS, "2026-05-20/v1").reasons()
    assert "worse by 0.0746" in reasons[AUC_VS_BASELINE] and "better by -" not in reasons[AUC_VS_BASELINE]
    assert "of the logistic baseline" in reasons[AUC_VS_BASELINE]
    assert "all of it below -0.01" in reasons[AUC_VS_BASELINE]
    assert "better by 0.0020" in reasons[NLL_VS_APPROVED] and "of approved 2026-05-20/v1" in reasons[NLL_VS_APPROVED]
    assert "allowed down to -0.003" in reasons[NLL_VS_APPROVED]
    assert reasons[AUC_FLOOR] == "validation AUC 0.6500 not above the floor 0.7"
    assert describe_difference(0.0) == "no different" and describe_difference(float("nan")) == "difference undefined"


def test_the_verdict_as_stored_is_plain_json() -> None:
    verdict = judge(0.8, comparisons(nll_interval=(-0.01, -0.004)), BARS)
    stored = json.loads(json.dumps(verdict.to_dict()))
    assert stored["approved"] is False and stored["tolerances"] == BARS.to_dict()
    assert {name: c["passed"] for name, c in stored["checks"].items()} == {
        AUC_FLOOR: True,
        AUC_VS_BASELINE: True,
        NLL_VS_APPROVED: False,
        **CALIBRATED,
    }
    assert stored["checks"][NLL_VS_APPROVED]["reason"] == verdict.reasons()[NLL_VS_APPROVED]


def test_judged_on_real_comparisons_a_clearly_worse_model_fails_and_a_better_one_passes() -> None:
    rng = np.random.default_rng(5)
    true = 1 / (1 + np.exp(-(rng.normal(-3.2, 1.2, 20_000))))
    y = (rng.random(len(true)) < true).astype(np.float64)
    blurred = 1 / (1 + np.exp(-(np.log(true / (1 - true)) + rng.normal(0, 1.0, len(true)))))
    better = {"baseline": compare_models(y, true, blurred, replicates=200)}
    worse = {"baseline": compare_models(y, blurred, true, replicates=200)}
    assert judge(0.8, better, BARS).approved
    assert judge(0.8, worse, BARS).failed == [AUC_VS_BASELINE]


def logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1 - p))


def with_mean(x: np.ndarray, mean: float) -> np.ndarray:
    """Probabilities of logits `x` shifted so that their mean is `mean` (bisection on the shift)."""
    lo, hi = -5.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if (1 / (1 + np.exp(-(x + mid)))).mean() < mean else (lo, mid)
    return 1 / (1 + np.exp(-(x + mid)))


def validation(seed: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.random.Generator]:
    """1,500 profiles x 5 days of validation histories, ~5% buying: labels, profile ids, the true
    logits, and the generator that drew them, for the models' noise."""
    rng = np.random.default_rng(seed)
    z = np.repeat(rng.normal(-3.5, 1.1, 1500), 5) + rng.normal(0, 0.5, 7500)
    y = (rng.random(len(z)) < 1 / (1 + np.exp(-z))).astype(np.float64)
    return y, np.repeat(np.arange(1500), 5), z, rng


def against_approved(y: np.ndarray, groups: np.ndarray, candidate: np.ndarray, approved: np.ndarray) -> dict:
    baseline = np.full(len(y), y.mean())  # the baseline is beaten by both: only the approved model is in question
    return {
        "baseline": compare_models(y, candidate, baseline, groups=groups),
        "approved": compare_models(y, candidate, approved, groups=groups),
    }


def test_a_model_that_predicts_a_quarter_fewer_orders_than_the_approved_one_is_refused_by_default() -> None:
    # The numbers of a second run on the same data: the approved model's mean prediction matches the
    # observed rate, the new one predicts 0.037 against it, its likelihood is worse by 0.003 with the
    # whole interval worse but above -0.002, and its calibration error is three times the approved's.
    y, groups, z, rng = validation()
    approved = with_mean(z, 0.051)
    candidate = with_mean(z + rng.normal(0, 0.1, len(y)), 0.037)
    new, old = validation_metrics(y, candidate), validation_metrics(y, approved)
    assert new["mean_predicted"] == pytest.approx(0.037) and old["observed_rate"] == pytest.approx(0.051, abs=0.001)
    assert new["ece"] > 0.013 and old["ece"] < 0.005
    by = against_approved(y, groups, candidate, approved)
    hi = by["approved"]["nll"].interval[1]
    assert -0.002 < hi < 0 and new["nll"] - old["nll"] == pytest.approx(0.0033, abs=5e-4)

    verdict = judge(new["auc"], by, Tolerances(), "2026-05-20/v1", validation_metrics(y, candidate, prefix="lstm_"))
    assert not verdict.approved
    assert verdict.failed == [NLL_VS_APPROVED, ECE_VS_APPROVED, MEAN_VS_APPROVED]
    reasons = verdict.reasons()
    assert "ECE 0.01" in reasons[ECE_VS_APPROVED] and "of approved 2026-05-20/v1" in reasons[ECE_VS_APPROVED]
    assert reasons[MEAN_VS_APPROVED].startswith("mean predicted 0.0370, observed rate 0.0513: ")
    assert "all of it below -0.002" in reasons[MEAN_VS_APPROVED]
    # Each check is its own bar: loosened, only the one kept strict refuses.
    loose = {"nll_tolerance": 0.01, "ece_tolerance": 0.02, "mean_gap_tolerance": 0.02}
    for check, _, field in VS_APPROVED:
        bars = Tolerances(**{**loose, field: getattr(Tolerances(), field)})
        assert judge(new["auc"], by, bars).failed == [check]
    assert judge(new["auc"], by, Tolerances(**loose)).approved


@pytest.mark.parametrize(
    "change",
    ["another noise draw", "2% more expected orders", "2% fewer expected orders", "the same model"],
)
def test_a_model_equal_to_the_approved_one_up_to_noise_is_approved_by_default(change: str) -> None:
    y, groups, z, rng = validation()
    approved = with_mean(z + rng.normal(0, 0.3, len(y)), 0.051)
    candidate = {
        "another noise draw": with_mean(z + rng.normal(0, 0.3, len(y)), 0.051),
        "2% more expected orders": with_mean(logit(approved), 0.051 * 1.02),
        "2% fewer expected orders": with_mean(logit(approved), 0.051 * 0.98),
        "the same model": approved,
    }[change]
    by = against_approved(y, groups, candidate, approved)
    verdict = judge(validation_metrics(y, candidate)["auc"], by, Tolerances())
    assert verdict.approved, verdict.reasons()
    if change == "another noise draw":  # equal up to noise: every interval straddles zero
        assert all(c.interval[0] < 0 < c.interval[1] for c in by["approved"].values())


def test_by_default_a_likelihood_shown_worse_than_the_approved_models_is_refused_by_however_little() -> None:
    # Worse beyond noise is the whole interval on the worse side: any tolerance on the likelihood
    # lets through a model whose whole interval is worse, but by less than the tolerance.
    defaults = Tolerances()
    assert defaults.nll_tolerance == 0.0
    assert not passed(0.8, comparisons(nll_interval=(-0.0065, -0.0001)), defaults)[NLL_VS_APPROVED]
    assert passed(0.8, comparisons(nll_interval=(-0.004, 0.0)), defaults)[NLL_VS_APPROVED]
    # The calibration tolerances are small against the errors they are there to catch: the ECE
    # worse by 0.0066, the mean prediction off by 0.014.
    assert 0 < defaults.ece_tolerance <= 0.0066 / 4 and 0 < defaults.mean_gap_tolerance <= 0.014 / 4

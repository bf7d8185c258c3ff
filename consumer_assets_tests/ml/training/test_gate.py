"""The one quality gate on constructed comparisons: the interval semantics, the floor and the reasons."""

from __future__ import annotations

import json

import numpy as np
import pytest

from consumer_assets.ml.training.evaluate import Comparison, compare_models
from consumer_assets.ml.training.gate import (
    AUC_FLOOR,
    AUC_VS_BASELINE,
    CHECK_NAMES,
    NLL_VS_APPROVED,
    Tolerances,
    describe_difference,
    judge,
)

BARS = Tolerances(auc_floor=0.7, auc_margin=0.01, nll_tolerance=0.003)


def compared(metric: str, better_by: float, lo: float, hi: float) -> Comparison:
    return Comparison(metric, candidate=0.5 + better_by, reference=0.5, better_by=better_by, interval=(lo, hi))


def comparisons(
    auc_interval: tuple[float, float] = (0.0, 0.02), nll_interval: tuple[float, float] | None = None
) -> dict[str, dict[str, Comparison]]:
    lo, hi = auc_interval
    result = {"baseline": {"auc": compared("auc", (lo + hi) / 2, lo, hi), "nll": compared("nll", 0.0, -1e-3, 1e-3)}}
    if nll_interval is not None:
        lo, hi = nll_interval
        result["approved"] = {"auc": compared("auc", 0.0, -1e-3, 1e-3), "nll": compared("nll", (lo + hi) / 2, lo, hi)}
    return result


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
    assert passed(0.8, by) == {AUC_FLOOR: True, AUC_VS_BASELINE: ok, NLL_VS_APPROVED: ok}


def test_the_configured_tolerance_decides_not_a_default() -> None:
    by = comparisons(auc_interval=(-0.02, -0.006), nll_interval=(-0.01, -0.0025))
    strict = Tolerances(auc_floor=0.7, auc_margin=0.005, nll_tolerance=0.002)
    assert passed(0.8, by, strict) == {AUC_FLOOR: True, AUC_VS_BASELINE: False, NLL_VS_APPROVED: False}
    assert passed(0.8, by, BARS) == {AUC_FLOOR: True, AUC_VS_BASELINE: True, NLL_VS_APPROVED: True}
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


def test_without_an_approved_model_the_likelihood_check_passes_and_says_why() -> None:
    verdict = judge(0.8, comparisons(), BARS)
    assert [c.name for c in verdict.checks] == list(CHECK_NAMES)
    assert verdict.approved
    assert verdict.reasons()[NLL_VS_APPROVED] == "no model approved yet: nothing to compare with"


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

"""The one quality gate: whether a newly trained model may be approved, with the reason for each check.

`judge` is the only place that decides. train_daily calls it once with the configured
`Tolerances` and stores the verdict with the model's metrics; the asset turns the same verdict
into its blocking checks and, when it approves, into the approval record's reasons.

The comparisons are paired bootstraps over validation profiles (evaluate.compare_models). A
comparison fails only when the model is shown worse than the reference by more than the
tolerance: the whole 90% interval of the difference below -tolerance. With a few hundred
validation positives a point estimate moves by more than the tolerance from noise alone; with
many, the interval is narrow and this is the point estimate's verdict.

Against the model in force the gate compares likelihood and calibration, both on the same
validation histories: a model can rank profiles as well as its predecessor and still predict a
quarter fewer orders, which the AUC never sees.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from consumer_assets.ml.training.evaluate import Comparison

AUC_FLOOR = "auc_above_floor"
AUC_VS_BASELINE = "auc_not_below_baseline"
NLL_VS_APPROVED = "nll_not_worse_than_approved"
ECE_VS_APPROVED = "calibration_not_worse_than_approved"
MEAN_VS_APPROVED = "mean_prediction_not_worse_than_approved"
# The checks against the model in force: (check, metric of evaluate.compare_models, Tolerances field).
VS_APPROVED: tuple[tuple[str, str, str], ...] = (
    (NLL_VS_APPROVED, "nll", "nll_tolerance"),
    (ECE_VS_APPROVED, "ece", "ece_tolerance"),
    (MEAN_VS_APPROVED, "mean_gap", "mean_gap_tolerance"),
)
CHECK_NAMES: tuple[str, ...] = (AUC_FLOOR, AUC_VS_BASELINE, *(check for check, _, _ in VS_APPROVED))
# How a reason names each compared metric.
_LABELS = {"auc": "AUC", "nll": "NLL", "ece": "ECE", "mean_gap": "|mean predicted - observed rate|"}


@dataclass(frozen=True)
class Tolerances:
    """The bars a model must clear to be approved.

    Against the model in force, worse beyond noise is the whole 90% interval of the difference on
    the worse side. Refusing costs a day's freshness at most: the model in force stays, and it was
    just measured on the candidate's own validation days. So the likelihood, a proper score where
    a shown loss is a real one, gets no tolerance: one of 0.002 would pass a model worse by 0.004
    whose whole interval is worse, while a model equal to the approved one up to noise has an
    interval that straddles zero and passes without one. The two calibration errors are absolute values:
    when the approved model errs the same way as the candidate, the pairing cancels the noise of
    the observed rate and a shift of 2% of the expected orders shows as worse with a narrow
    interval. Their tolerances let such a shift through (0.001 of ECE; 0.002 of the mean gap, 4% of
    the orders at a 5% rate) and refuse a model that predicts a quarter fewer orders than observed
    (0.037 against 0.051: a gap of 0.014, its ECE worse by 0.007).
    """

    auc_floor: float = 0.65  # validation AUC the model must exceed
    auc_margin: float = 0.005  # how far below the baseline's AUC is allowed
    nll_tolerance: float = 0.0  # how much worse than the approved model's NLL is allowed
    ece_tolerance: float = 0.001  # how much worse than the approved model's expected calibration error
    mean_gap_tolerance: float = 0.002  # how much larger |mean predicted - observed rate| than the approved's

    def to_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Check:
    """One check's verdict: the numbers it read (numeric, for the UI to plot) and why it passed or failed."""

    name: str
    passed: bool
    reason: str
    metadata: dict[str, float]


@dataclass(frozen=True)
class Verdict:
    """Every check's verdict; the model is approved when all of them passed."""

    checks: tuple[Check, ...]
    tolerances: Tolerances

    @property
    def approved(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failed(self) -> list[str]:
        return [check.name for check in self.checks if not check.passed]

    def reasons(self) -> dict[str, str]:
        return {check.name: check.reason for check in self.checks}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, as stored with the model's metrics."""
        return {
            "approved": self.approved,
            "tolerances": self.tolerances.to_dict(),
            "checks": {c.name: {"passed": c.passed, "reason": c.reason, "metadata": c.metadata} for c in self.checks},
        }


def judge(
    auc: float,
    comparisons: Mapping[str, Mapping[str, Comparison]],
    tolerances: Tolerances,
    approved_label: str | None = None,
    metrics: Mapping[str, float] | None = None,
) -> Verdict:
    """The verdict on a model of validation AUC `auc`, compared with the baseline and, when
    `comparisons` has an "approved" entry, with the approved model (named `approved_label`) on its
    likelihood, its calibration error and its mean prediction against the observed rate.
    `metrics` (validation_report's, "lstm_mean_predicted" and "lstm_observed_rate") only add
    the numbers behind the mean gap to its reason."""
    floor = Check(
        AUC_FLOOR,
        passed=auc > tolerances.auc_floor,
        reason=f"validation AUC {auc:.4f} {'above' if auc > tolerances.auc_floor else 'not above'} "
        f"the floor {tolerances.auc_floor}",
        metadata={"auc": auc, "floor": tolerances.auc_floor},
    )
    by_auc = comparisons["baseline"]["auc"]
    baseline = _compared(AUC_VS_BASELINE, by_auc, tolerances.auc_margin, "the logistic baseline")
    reference = f"approved {approved_label}" if approved_label else "the approved model"
    against = comparisons.get("approved")
    vs_approved = [
        _compared(check, against[metric], getattr(tolerances, field), reference, _context(metric, metrics))
        if against is not None
        else Check(check, True, "no model approved yet: nothing to compare with", {})
        for check, metric, field in VS_APPROVED
    ]
    return Verdict((floor, baseline, *vs_approved), tolerances)


def _context(metric: str, metrics: Mapping[str, float] | None) -> str:
    """What the mean gap is made of, when the metrics are at hand: 'mean predicted 0.0370, observed rate 0.0510: '."""
    if metric != "mean_gap" or metrics is None or "lstm_mean_predicted" not in metrics:
        return ""
    return f"mean predicted {metrics['lstm_mean_predicted']:.4f}, observed rate {metrics['lstm_observed_rate']:.4f}: "


def _compared(name: str, c: Comparison, tolerance: float, reference: str, context: str = "") -> Check:
    lo, hi = c.interval
    passed = hi >= -tolerance
    limit = -tolerance + 0.0  # a tolerance of 0 reads "+0", not "-0"
    bound = f"allowed down to {limit:+g}" if passed else f"all of it below {limit:+g}"
    return Check(
        name,
        passed=passed,
        reason=f"{context}{_LABELS.get(c.metric, c.metric)} {c.candidate:.4f} vs {c.reference:.4f} of {reference}: "
        f"{describe_difference(c.better_by)} (90% interval of the difference {lo:+.4f}..{hi:+.4f}, {bound})",
        metadata={"candidate": c.candidate, "reference": c.reference, "better_by": c.better_by, "tolerance": tolerance},
    )


def describe_difference(better_by: float) -> str:
    """'better by 0.0120', 'worse by 0.0746' or 'no different': never 'better by -0.07'."""
    if better_by > 0:
        return f"better by {better_by:.4f}"
    if better_by < 0:
        return f"worse by {-better_by:.4f}"
    return "no different" if better_by == 0 else "difference undefined"

"""The one quality gate: whether a newly trained model may be approved, with the reason for each check.

`judge` is the only place that decides. train_daily calls it once with the configured
`Tolerances` and stores the verdict with the model's metrics; the asset turns the same verdict
into its blocking checks and, when it approves, into the approval record's reasons.

The comparisons are paired bootstraps over validation profiles (evaluate.compare_models). A
comparison fails only when the model is shown worse than the reference by more than the
tolerance: the whole 90% interval of the difference below -tolerance. With a few hundred
validation positives a point estimate moves by more than the tolerance from noise alone; with
many, the interval is narrow and this is the point estimate's verdict.
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
CHECK_NAMES: tuple[str, ...] = (AUC_FLOOR, AUC_VS_BASELINE, NLL_VS_APPROVED)


@dataclass(frozen=True)
class Tolerances:
    """The bars a model must clear to be approved."""

    auc_floor: float = 0.65  # validation AUC the model must exceed
    auc_margin: float = 0.005  # how far below the baseline's AUC is allowed
    nll_tolerance: float = 0.002  # how much worse than the approved model's NLL is allowed

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
) -> Verdict:
    """The verdict on a model of validation AUC `auc`, compared with the baseline and, when
    `comparisons` has an "approved" entry, with the approved model (named `approved_label`)."""
    floor = Check(
        AUC_FLOOR,
        passed=auc > tolerances.auc_floor,
        reason=f"validation AUC {auc:.4f} {'above' if auc > tolerances.auc_floor else 'not above'} "
        f"the floor {tolerances.auc_floor}",
        metadata={"auc": auc, "floor": tolerances.auc_floor},
    )
    by_auc = comparisons["baseline"]["auc"]
    baseline = _compared(AUC_VS_BASELINE, by_auc, tolerances.auc_margin, "the logistic baseline")
    if "approved" in comparisons:
        reference = f"approved {approved_label}" if approved_label else "the approved model"
        by_nll = _compared(NLL_VS_APPROVED, comparisons["approved"]["nll"], tolerances.nll_tolerance, reference)
    else:
        by_nll = Check(NLL_VS_APPROVED, True, "no model approved yet: nothing to compare with", {})
    return Verdict((floor, baseline, by_nll), tolerances)


def _compared(name: str, c: Comparison, tolerance: float, reference: str) -> Check:
    lo, hi = c.interval
    passed = hi >= -tolerance
    bound = f"allowed down to {-tolerance:+g}" if passed else f"all of it below {-tolerance:+g}"
    metric = c.metric.upper()
    return Check(
        name,
        passed=passed,
        reason=f"{metric} {c.candidate:.4f} vs {c.reference:.4f} of {reference}: {describe_difference(c.better_by)} "
        f"(90% interval of the difference {lo:+.4f}..{hi:+.4f}, {bound})",
        metadata={"candidate": c.candidate, "reference": c.reference, "better_by": c.better_by, "tolerance": tolerance},
    )


def describe_difference(better_by: float) -> str:
    """'better by 0.0120', 'worse by 0.0746' or 'no different': never 'better by -0.07'."""
    if better_by > 0:
        return f"better by {better_by:.4f}"
    if better_by < 0:
        return f"worse by {-better_by:.4f}"
    return "no different" if better_by == 0 else "difference undefined"

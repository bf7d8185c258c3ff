"""What the main job prints about each of its runs: one line per step (asset, days, duration, the
step's key figure), its checks, and a failure's reason first; the full event log stays in the instance."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import dagster as dg

Meta = Mapping[str, object]


def _raw_events(days: Sequence[Meta]) -> str:
    kept = sum(int(d.get("kept", 0)) for d in days)
    quarantined = sum(int(d.get("quarantined", 0)) for d in days)
    share = quarantined / (kept + quarantined) if kept + quarantined else 0.0
    return f"kept {kept:,} events, quarantined {quarantined:,} ({share:.2%})"


def _histories(days: Sequence[Meta]) -> str:
    last = days[-1]
    return f"{int(last['profiles']):,} profiles on the last day, median {int(last['length_p50'])} events each"


def _model(days: Sequence[Meta]) -> str:
    m = days[-1]
    verdict = "approved" if m["approved"] else f"NOT approved ({m['compared_with']} stays in force)"
    return (
        f"{m['model_version']}: validation AUC {float(m['lstm_auc']):.3f} (baseline {float(m['baseline_auc']):.3f}), "
        f"NLL {float(m['lstm_nll']):.4f} (baseline {float(m['baseline_nll']):.4f}); {verdict}"
    )


def _predictions(days: Sequence[Meta]) -> str:
    m = days[-1]
    return (
        f"{int(m['profiles']):,} profiles scored with {m['model_version']}, "
        f"{float(m['expected_orders']):,.0f} expected to order in the next 7 days"
    )


def _quality(days: Sequence[Meta]) -> str:
    m = days[-1]
    return (
        f"realized AUC {float(m['auc']):.3f}, NLL {float(m['nll']):.4f}; "
        f"{int(m['actual_orders']):,} profiles ordered, {float(m['expected_orders']):,.0f} expected"
    )


# The key figure of each asset's step, from its materializations' metadata in day order.
KEY_FIGURES: dict[str, Callable[[Sequence[Meta]], str]] = {
    "raw_events": _raw_events,
    "consumer_histories": _histories,
    "trained_lstm_model": _model,
    "predictions": _predictions,
    "prediction_quality": _quality,
}


# Failed checks told in full, blocking ones first; a long range of small days can fail many.
LISTED_CHECKS = 3


@dataclass(frozen=True)
class StepReport:
    """One run of the main job, told in a few lines."""

    asset: str
    days: list[str]
    seconds: float
    metadata: list[Meta]  # the asset's materializations, in day order
    checks_passed: int
    failed_checks: list[str]  # "check[day]: description", blocking ones first
    failures: list[str]  # each failed step's error message, without its stack trace
    success: bool

    def head(self) -> str:
        """What ran: the asset and its days (printed when the run starts)."""
        return head(self.asset, self.days)

    def lines(self) -> list[str]:
        """How it went: its duration, key figure and checks, then each failed check and step."""
        figure = KEY_FIGURES[self.asset](self.metadata) if self.metadata and self.asset in KEY_FIGURES else ""
        checks = len(self.failed_checks) + self.checks_passed
        passed = f"; checks {self.checks_passed}/{checks} passed" if checks else ""
        lines = [f"{self.seconds:6.1f} s  {figure}{passed}".rstrip()]
        lines += [f"  check failed: {c}" for c in self.failed_checks[:LISTED_CHECKS]]
        if len(self.failed_checks) > LISTED_CHECKS:
            more = len(self.failed_checks) - LISTED_CHECKS
            lines.append(f"  ... and {more} more failed checks (make dev shows each)")
        lines += [f"  step failed: {f}" for f in self.failures]
        return lines


def head(asset: str, days: list[str]) -> str:
    span = days[0] if len(days) == 1 else f"{days[0]}..{days[-1]}"
    return f"{asset:<19} {span:<22} {len(days):>3} day{'s' if len(days) > 1 else ' '}"


def step_report(asset: str, days: list[str], seconds: float, result: dg.ExecuteInProcessResult) -> StepReport:
    """The report of one run of `asset` over `days` that took `seconds`."""
    by_day: dict[str, Meta] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key.to_user_string() == asset:
            by_day[materialization.partition or ""] = {k: v.value for k, v in materialization.metadata.items()}
    evaluations = result.get_asset_check_evaluations()
    # A range run records each day's result and a summary for the range: count the days'.
    per_day = [e for e in evaluations if e.partition is not None] or evaluations
    failed = sorted((e for e in per_day if not e.passed), key=lambda e: not e.blocking)
    return StepReport(
        asset=asset,
        days=days,
        seconds=seconds,
        metadata=[by_day[d] for d in sorted(by_day)],
        checks_passed=sum(e.passed for e in per_day),
        failed_checks=[
            f"{e.check_name} of {e.asset_key.to_user_string()}[{e.partition or days[-1]}]"
            f"{' (blocking)' if e.blocking else ''}: {e.description}"
            for e in failed
        ],
        failures=[first_line(e.step_failure_data.error) for e in result.get_step_failure_events()],
        success=result.success,
    )


def first_line(error: object) -> str:
    """A step failure's cause in one line, without its stack trace (which stays in the run's event log).

    Dagster wraps what the asset raised ("Error occurred while executing op ..."): the innermost cause is
    what went wrong."""
    while getattr(error, "cause", None) is not None:
        error = error.cause  # type: ignore[attr-defined]
    message = (getattr(error, "message", None) or str(error)).strip()
    return message.splitlines()[0] if message else type(error).__name__

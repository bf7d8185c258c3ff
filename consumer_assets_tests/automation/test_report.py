"""The main job's lines about a run: a failed blocking check's reason first, no stack trace."""

from __future__ import annotations

import dagster as dg

from consumer_assets.automation.report import step_report

GATE = "lstm_beats_baseline"


@dg.asset
def gated_model() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"lstm_auc": 0.75})


@dg.asset_check(asset=gated_model, name=GATE, blocking=True)
def gate() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, description="validation AUC worse by 0.0746 than the baseline's")


@dg.asset(deps=[gated_model])
def scored() -> None:
    raise AssertionError("scored must not run after a failed blocking check")


@dg.asset
def broken() -> None:
    raise ValueError("histories of 2026-11-10 hold no profile\nsecond line of detail")


def test_a_failed_blocking_check_is_told_first_and_stops_the_chain() -> None:
    result = dg.materialize([gated_model, gate, scored], raise_on_error=False)
    report = step_report("gated_model", ["2026-11-10"], 1.5, result)
    assert not report.success
    lines = report.lines()
    assert lines[0].startswith("   1.5 s") and "checks 0/1 passed" in lines[0]
    assert lines[1] == (
        f"  check failed: {GATE} of gated_model[2026-11-10] (blocking): validation AUC worse by 0.0746 than the "
        "baseline's"
    )
    assert all("Traceback" not in line for line in lines)
    assert not [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey("scored")]


def test_a_failed_step_is_told_in_its_message_first_line() -> None:
    result = dg.materialize([broken], raise_on_error=False)
    report = step_report("broken", ["2026-11-10", "2026-11-11"], 0.2, result)
    assert not report.success
    (failure,) = report.failures
    assert "histories of 2026-11-10 hold no profile" in failure and "second line" not in failure
    assert report.lines()[-1] == f"  step failed: {failure}"
    assert report.head().startswith("broken") and "2026-11-10..2026-11-11   2 days" in report.head()

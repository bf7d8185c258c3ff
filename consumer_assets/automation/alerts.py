"""Alerts: every failed run, and every failed blocking check, is posted to the alert webhook (JSON).

Two sensors, on by default (without a webhook they skip, saying so), both Dagster run-failure
sensors, which keep their own cursor over the instance's run failures:

- `run_failure_alert`: one post per failed run of this code location, with the failed steps and why;
- `blocking_check_alert`: one post per failed blocking check, with the check's verdict and figures.
  Dagster 1.13 has no sensor kind for check results, and a sensor reading the event log's check
  evaluations after a storage-id cursor fails on the default (run-sharded) SQLite storage of `dg dev`.
  But a failed blocking check (severity ERROR) always fails its step and so its run: the sensor
  reads the check results of each failed run, which works on every storage.

So a failed blocking check is posted twice: as the run that failed, and as the check with its reason.
Each sensor starts from the run failures there are when it first runs (no old failure is announced)
and sees each failed run once: an alert the webhook does not take (after its retries) is an error of
that tick, shown in the UI, and is not posted again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import dagster as dg

from consumer_assets.automation.jobs import RANGE_END, RANGE_START
from consumer_assets.resources.alerts import AlertWebhook
from consumer_assets.settings import ALERT_WEBHOOK_ENV

ALERT_INTERVAL_SECONDS = 60
REASON_CHARS = 1000  # of an error message; the run's page has the rest
CHECK_EVALUATION = dg.DagsterEventType.ASSET_CHECK_EVALUATION
NO_WEBHOOK = f"no alert webhook (${ALERT_WEBHOOK_ENV} is unset): nothing is posted"

PLAIN = (dg.FloatMetadataValue, dg.IntMetadataValue, dg.BoolMetadataValue, dg.TextMetadataValue)
RunUrl = Callable[[str], str | None]


@dg.run_failure_sensor(
    name="run_failure_alert",
    minimum_interval_seconds=ALERT_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Post each failed run (job, partition, failed steps and why) to the alert webhook.",
)
def run_failure_alert(context: dg.RunFailureSensorContext, alerts: AlertWebhook) -> dg.SkipReason | None:
    """Post the failed run; without a webhook, skip it."""
    if not alerts.configured():
        return dg.SkipReason(NO_WEBHOOK)
    alerts.post(
        run_failure(context.dagster_run, context.failure_event, context.get_step_failure_events(), alerts.run_url)
    )
    context.log.info(f"posted the failure of run {context.dagster_run.run_id}")
    return None  # None: the sensor goes on to the next failed run in the same tick


@dg.run_failure_sensor(
    name="blocking_check_alert",
    minimum_interval_seconds=ALERT_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Post each failed blocking asset check (asset, partition, check, why) to the alert webhook.",
)
def blocking_check_alert(context: dg.RunFailureSensorContext, alerts: AlertWebhook) -> dg.SkipReason | None:
    """Post the blocking checks that failed in the failed run; without a webhook, skip them."""
    run = context.dagster_run
    failed = failed_blocking_checks(context.instance.all_logs(run.run_id, of_type=CHECK_EVALUATION))
    if not alerts.configured():
        return dg.SkipReason(NO_WEBHOOK + (f" ({len(failed)} failed blocking check(s))" if failed else ""))
    for evaluation in failed:
        alerts.post(check_failure(evaluation, run, alerts.run_url))
    if failed:
        context.log.info(f"posted {len(failed)} failed blocking check(s) of run {run.run_id}")
    return None  # None: the sensor goes on to the next failed run in the same tick


def failed_blocking_checks(entries: Sequence[dg.EventLogEntry]) -> list[dg.AssetCheckEvaluation]:
    """The failed blocking checks among a run's check evaluations: the last result of each check and day."""
    latest: dict[tuple[dg.AssetKey, str, str | None], dg.AssetCheckEvaluation] = {}
    for entry in entries:
        evaluation = entry.asset_check_evaluation
        if evaluation is not None:
            latest[(evaluation.asset_key, evaluation.check_name, evaluation.partition)] = evaluation
    return [e for e in latest.values() if not e.passed and e.blocking and e.severity == dg.AssetCheckSeverity.ERROR]


def run_failure(
    run: dg.DagsterRun, failure: dg.DagsterEvent, step_failures: Sequence[dg.DagsterEvent], run_url: RunUrl
) -> dict[str, Any]:
    """The alert of a failed run: what ran, on which days, which steps failed and why (or why the run
    failed before or between its steps: a crashed run worker, a launch that failed)."""
    partition = partition_of(run.tags)
    steps = [{"step": e.step_key, "reason": step_reason(e)} for e in step_failures]
    failed = ", ".join(s["step"] or "?" for s in steps) or "before any step"
    why = (steps[0]["reason"] if steps else failure.message or "").partition("\n")[0]
    return {
        "alert": "run_failed",
        "run_id": run.run_id,
        "job": run.job_name,
        "partition": partition,
        "failed_steps": steps,
        "run_url": run_url(run.run_id),
        "text": f"Run {run.run_id[:8]} of {run.job_name}{on(partition)} failed: {failed}"
        + (f" ({why})" if why else ""),
    }


def check_failure(evaluation: dg.AssetCheckEvaluation, run: dg.DagsterRun, run_url: RunUrl) -> dict[str, Any]:
    """The alert of a failed blocking check: which asset, day and check, its verdict and figures."""
    asset = evaluation.asset_key.to_user_string()
    # A range run records its check results on the run, with no day: the alert names the range.
    partition = evaluation.partition or partition_of(run.tags)
    return {
        "alert": "blocking_check_failed",
        "asset": asset,
        "partition": partition,
        "check": evaluation.check_name,
        "description": evaluation.description,
        "metadata": plain(evaluation.metadata),
        "run_id": run.run_id,
        "job": run.job_name,
        "run_url": run_url(run.run_id),
        "text": f"Blocking check {evaluation.check_name} of {asset}{on(partition)} failed"
        + (f": {evaluation.description}" if evaluation.description else ""),
    }


def partition_of(tags: dict[str, str]) -> str | None:
    """The run's day, or its range of days (`first...last`), or None."""
    if "dagster/partition" in tags:
        return tags["dagster/partition"]
    if RANGE_START in tags and RANGE_END in tags:
        return f"{tags[RANGE_START]}...{tags[RANGE_END]}"
    return None


def step_reason(event: dg.DagsterEvent) -> str:
    """Why a step failed: a Failure's description, else the error's message (the code's own error, not
    Dagster's wrapper of it), shortened."""
    data = event.step_failure_data
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description[:REASON_CHARS]
    error = data.error
    if error is None:
        return "unknown"
    if error.cls_name == "DagsterExecutionStepExecutionError" and error.cause is not None:
        error = error.cause
    return error.message.strip()[:REASON_CHARS]


def plain(metadata: dict[str, dg.MetadataValue]) -> dict[str, Any]:
    """The figures of a check (numbers, flags, short text) as JSON values; tables, markdown, paths left out."""
    return {name: value.value for name, value in metadata.items() if isinstance(value, PLAIN)}


def on(partition: str | None) -> str:
    return f" on {partition}" if partition else ""

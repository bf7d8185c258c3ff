"""The alert sensors against real Dagster runs on a real instance, posting to a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from consumer_assets.assets.declare import daily_checks
from consumer_assets.assets.raw_events import raw_events
from consumer_assets.automation.alerts import NO_WEBHOOK, blocking_check_alert, run_failure, run_failure_alert
from consumer_assets.partitions import daily_partitions
from consumer_assets.resources.alerts import AlertDeliveryError, AlertWebhook, post_json
from consumer_assets.resources.landing import LandingZone
from consumer_assets.resources.storage import storage_resources
from consumer_assets.settings import ALERT_WEBHOOK_ENV, UI_URL_ENV
from consumer_assets_tests.support.services import free_port

DAY = "2026-03-02"
SECRET = "s3cr3t-token"  # webhook URLs carry tokens like this one: never in a message or log
UI = "http://127.0.0.1:3000"


@dataclass
class Receiver:
    """What the webhook received (path, content type, JSON body) and the statuses it answers with (then 200)."""

    url: str
    received: list[tuple[str, str, Any]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    @property
    def bodies(self) -> list[Any]:
        return [body for _, _, body in self.received]


@pytest.fixture
def webhook() -> Iterator[Receiver]:
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            receiver.received.append((self.path, self.headers["Content-Type"], body))
            self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_port}/hooks/T0001/{SECRET}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def env_webhook(webhook: Receiver, monkeypatch: pytest.MonkeyPatch) -> Receiver:
    """The webhook and the UI's address set in the environment, as a deployment sets them."""
    monkeypatch.setenv(ALERT_WEBHOOK_ENV, webhook.url)
    monkeypatch.setenv(UI_URL_ENV, UI + "/")
    return webhook


def tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None, alerts: AlertWebhook):
    """One evaluation of `sensor`, as the daemon does it: with the instance, the cursor and the resources."""
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"alerts": alerts}) as context:
        return sensor.evaluate_tick(context)


GATED = dg.AssetKey("gated_model")
BLOCKING = daily_checks(GATED, {"auc_above_floor": "AUC above the floor.", "nll_ok": "NLL fine."}, blocking=True)
WARNING = daily_checks(GATED, {"drift": "Scores do not drift (warning)."})


@dg.asset(key=GATED, partitions_def=daily_partitions, check_specs=[*BLOCKING, *WARNING])
def gated_model() -> Iterator[Any]:
    """A model whose AUC blocking check fails (its other blocking check passes, its warning fails)."""
    yield dg.MaterializeResult()
    yield dg.AssetCheckResult(
        check_name="auc_above_floor",
        passed=False,
        description="validation AUC 0.610 is not above the floor 0.650",
        metadata={"auc": 0.61, "floor": 0.65, "curve": dg.MetadataValue.md("| a |")},
    )
    yield dg.AssetCheckResult(check_name="nll_ok", passed=True)
    yield dg.AssetCheckResult(check_name="drift", passed=False, severity=dg.AssetCheckSeverity.WARN)


@dg.asset(partitions_def=daily_partitions)
def healthy() -> None:
    """Succeeds: never an alert."""


@dg.asset
def broken() -> None:
    """Fails with an error of its own (not a dg.Failure)."""
    raise ValueError("bucket 7 has no schema")


def failing_raw_events_run(instance: dg.DagsterInstance, tmp_path: Path) -> dg.ExecuteInProcessResult:
    """raw_events of a day that never landed: a real run that fails for a real reason."""
    (tmp_path / "landing").mkdir(exist_ok=True)
    resources = {
        **storage_resources((tmp_path / "storage").as_uri()),
        "landing": LandingZone(uri=(tmp_path / "landing").as_uri(), workers=1),
    }
    result = dg.materialize(
        [raw_events], resources=resources, partition_key=DAY, instance=instance, raise_on_error=False
    )
    assert not result.success
    return result


def test_a_failed_run_is_posted_once_with_its_job_day_reason_and_link(env_webhook: Receiver, tmp_path: Path) -> None:
    alerts = AlertWebhook()  # as the definitions have it: the URLs come from the environment
    with dg.instance_for_test() as instance:
        first = tick(run_failure_alert, instance, None, alerts)
        assert first.skip_message.startswith("Initiating run_failure_alert")  # runs before it are not announced

        dg.materialize([healthy], partition_key=DAY, instance=instance)
        failed = failing_raw_events_run(instance, tmp_path)
        [step_failure] = failed.get_step_failure_events()
        reason = step_failure.step_failure_data.user_failure_data.description
        assert DAY in reason  # the asset's own words: which day is missing

        second = tick(run_failure_alert, instance, first.cursor, alerts)
        run_id = failed.run_id
        assert env_webhook.received == [
            (
                f"/hooks/T0001/{SECRET}",
                "application/json",
                {
                    "alert": "run_failed",
                    "run_id": run_id,
                    "job": "__ephemeral_asset_job__",
                    "partition": DAY,
                    "failed_steps": [{"step": "raw_events", "reason": reason}],
                    "run_url": f"{UI}/runs/{run_id}",
                    "text": f"Run {run_id[:8]} of __ephemeral_asset_job__ on {DAY} failed: raw_events ({reason})",
                },
            )
        ]
        assert [r.error for r in second.dagster_run_reactions] == [None]

        third = tick(run_failure_alert, instance, second.cursor, alerts)
        assert len(env_webhook.received) == 1  # the cursor moved past the run: not posted again
        assert third.cursor == second.cursor


def test_a_run_failed_by_an_error_names_the_error_not_dagsters_wrapper() -> None:
    with dg.instance_for_test() as instance:
        result = dg.materialize([broken], instance=instance, raise_on_error=False)
        failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
        alert = run_failure(result.dagster_run, failure, result.get_step_failure_events(), lambda run_id: None)
    assert alert["failed_steps"] == [{"step": "broken", "reason": "ValueError: bucket 7 has no schema"}]
    assert alert["partition"] is None and alert["run_url"] is None
    assert alert["text"].endswith("failed: broken (ValueError: bucket 7 has no schema)")


def test_a_failed_blocking_check_is_posted_once_with_its_verdict_and_figures(env_webhook: Receiver) -> None:
    alerts = AlertWebhook()
    with dg.instance_for_test() as instance:
        first = tick(blocking_check_alert, instance, None, alerts)
        assert first.skip_message.startswith("Initiating blocking_check_alert")

        result = dg.materialize([gated_model], partition_key=DAY, instance=instance, raise_on_error=False)
        assert not result.success  # a failed blocking check fails its run (the run-failure alert posts that too)

        second = tick(blocking_check_alert, instance, first.cursor, alerts)
        run_id = result.run_id
        assert env_webhook.bodies == [
            {
                "alert": "blocking_check_failed",
                "asset": "gated_model",
                "partition": DAY,
                "check": "auc_above_floor",
                "description": "validation AUC 0.610 is not above the floor 0.650",
                "metadata": {"auc": 0.61, "floor": 0.65},  # the markdown table left out
                "run_id": run_id,
                "job": "__ephemeral_asset_job__",
                "run_url": f"{UI}/runs/{run_id}",
                "text": f"Blocking check auc_above_floor of gated_model on {DAY} failed: "
                "validation AUC 0.610 is not above the floor 0.650",
            }
        ]  # the passed blocking check and the failed warning are not alerts
        assert [r.error for r in second.dagster_run_reactions] == [None]

        third = tick(blocking_check_alert, instance, second.cursor, alerts)
        assert len(env_webhook.received) == 1  # the cursor moved past the run: not posted again
        assert third.cursor == second.cursor


def test_without_a_webhook_both_sensors_skip_saying_why(
    webhook: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ALERT_WEBHOOK_ENV, raising=False)
    alerts = AlertWebhook()
    with dg.instance_for_test() as instance:
        runs = tick(run_failure_alert, instance, None, alerts)
        checks = tick(blocking_check_alert, instance, None, alerts)
        failing_raw_events_run(instance, tmp_path)
        dg.materialize([gated_model], partition_key=DAY, instance=instance, raise_on_error=False)

        runs = tick(run_failure_alert, instance, runs.cursor, alerts)
        checks = tick(blocking_check_alert, instance, checks.cursor, alerts)
        assert runs.skip_message == NO_WEBHOOK
        assert checks.skip_message == NO_WEBHOOK  # raw_events' run: no check failed
        checks = tick(blocking_check_alert, instance, checks.cursor, alerts)
        assert checks.skip_message == f"{NO_WEBHOOK} (1 failed blocking check(s))"  # gated_model's run
        assert ALERT_WEBHOOK_ENV in NO_WEBHOOK
    assert webhook.received == []


def test_an_alert_the_webhook_refuses_is_an_error_of_the_tick_without_the_url(webhook: Receiver) -> None:
    alerts = AlertWebhook(url=webhook.url, attempts=2, backoff_seconds=0)
    with dg.instance_for_test() as instance:
        start = tick(blocking_check_alert, instance, None, alerts)
        dg.materialize([gated_model], partition_key=DAY, instance=instance, raise_on_error=False)

        webhook.statuses = [503, 503]  # down for both attempts
        refused = tick(blocking_check_alert, instance, start.cursor, alerts)
        [reaction] = refused.dagster_run_reactions
        assert reaction.error is not None
        shown = reaction.error.to_string()  # the tick's error, as the UI shows it
        assert "AlertDeliveryError" in shown and "HTTP 503, 2 attempt" in shown and SECRET not in shown
        assert [b["check"] for b in webhook.bodies] == ["auc_above_floor"] * 2

        tick(blocking_check_alert, instance, refused.cursor, alerts)
        assert len(webhook.received) == 2  # Dagster's run-failure cursor moved on: not posted again


def test_post_retries_a_busy_receiver_and_gives_up_on_a_refusal(webhook: Receiver) -> None:
    webhook.statuses = [503, 429]
    post_json(webhook.url, {"n": 1}, timeout=5, attempts=3, backoff=0)
    assert webhook.bodies == [{"n": 1}] * 3

    webhook.statuses = [400]  # a refusal is not retried
    with pytest.raises(AlertDeliveryError, match=r"HTTP 400, 1 attempt"):
        post_json(webhook.url, {"n": 2}, timeout=5, attempts=3, backoff=0)
    assert webhook.bodies[3:] == [{"n": 2}]

    webhook.statuses = [302]  # a redirect is not followed (the POST would arrive as a GET)
    with pytest.raises(AlertDeliveryError, match=r"HTTP 302"):
        post_json(webhook.url, {"n": 3}, timeout=5, attempts=3, backoff=0)


def test_an_unreachable_webhook_is_reported_without_its_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/hooks/T0001/{SECRET}"  # nothing listens there
    with pytest.raises(AlertDeliveryError, match=r"ConnectionError, 2 attempt") as unreachable:
        post_json(url, {"n": 1}, timeout=5, attempts=2, backoff=0)
    assert SECRET not in str(unreachable.value) and "127.0.0.1" not in str(unreachable.value)
    assert unreachable.value.__context__ is None and unreachable.value.__cause__ is None

"""The alert webhook: where failed runs and failed blocking checks are posted, as JSON."""

from __future__ import annotations

import json
import time
from typing import Any

import dagster as dg
import requests
from pydantic import Field

from consumer_assets.settings import ALERT_WEBHOOK_ENV, UI_URL_ENV, alert_webhook, ui_url

# Worth another attempt: the receiver is busy or briefly down. Any other refusal (a bad URL or token,
# a malformed alert) would only be refused again.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class AlertDeliveryError(Exception):
    """The webhook did not take an alert. The message never names the URL: it may hold a token."""


class AlertWebhook(dg.ConfigurableResource):
    """Posts alerts as JSON to a webhook (Slack-compatible: each alert has a `text`), with a timeout and retries."""

    url: str | None = Field(
        default=None,
        description=f"The webhook URL; default ${ALERT_WEBHOOK_ENV}; unset, no alert is sent. It often holds a "
        "token: set it in the environment, where the UI never shows it, rather than in config.",
    )
    ui_url: str | None = Field(
        default=None,
        description=f"Base URL of the Dagster UI (https://dagster.example.com) that alerts link runs to; "
        f"default ${UI_URL_ENV}; unset, alerts carry no link.",
    )
    timeout_seconds: float = Field(default=10.0, gt=0, description="Per attempt: connecting, then each read.")
    attempts: int = Field(default=3, ge=1, description="Attempts per alert when the receiver is down or busy.")
    backoff_seconds: float = Field(
        default=1.0, ge=0, description="Wait before the second attempt; doubled before each later one."
    )

    def configured(self) -> bool:
        return alert_webhook(self.url) is not None

    def run_url(self, run_id: str) -> str | None:
        """The run's page in the UI, when its base URL is known."""
        base = ui_url(self.ui_url)
        return f"{base}/runs/{run_id}" if base else None

    def post(self, alert: dict[str, Any]) -> None:
        """Post `alert`; raise AlertDeliveryError once every attempt failed or the receiver refused it."""
        url = alert_webhook(self.url)
        if url is None:
            raise AlertDeliveryError(f"no alert webhook: ${ALERT_WEBHOOK_ENV} is not set")
        post_json(url, alert, self.timeout_seconds, self.attempts, self.backoff_seconds)


def post_json(url: str, body: dict[str, Any], timeout: float, attempts: int, backoff: float) -> None:
    """POST `body` as JSON to `url`, retrying timeouts, lost connections and RETRY_STATUSES.

    Retried by hand rather than by urllib3's Retry, which logs the URL with every retry.
    """
    data = json.dumps(body).encode()
    problem, tried = "", 0
    with requests.Session() as session:
        for tried in range(1, attempts + 1):
            if tried > 1:
                time.sleep(backoff * 2 ** (tried - 2))
            try:
                response = session.post(
                    url,
                    data=data,
                    headers={"Content-Type": "application/json"},
                    timeout=timeout,
                    allow_redirects=False,  # a redirected POST would arrive as a GET
                )
            except requests.RequestException as exc:
                problem = type(exc).__name__  # not str(exc): it names the URL
                continue
            if response.status_code < 300:
                return
            problem = f"HTTP {response.status_code}"
            if response.status_code not in RETRY_STATUSES:
                break
    # Raised outside the except block, so no chained exception carries the URL into a traceback.
    raise AlertDeliveryError(f"the alert webhook did not take the alert ({problem}, {tried} attempt(s))")

"""Where things live by default, resolved when a run asks (never at import)."""

from __future__ import annotations

import os
from pathlib import Path

STORAGE_ENV = "CONSUMER_ASSETS_STORAGE"
LANDING_ENV = "CONSUMER_ASSETS_LANDING"
DATA_DIR_ENV = "CONSUMER_ASSETS_DATA_DIR"


def data_dir() -> Path:
    """The project's local data folder: $CONSUMER_ASSETS_DATA_DIR, else ./data of the working directory."""
    return Path(os.environ.get(DATA_DIR_ENV) or Path.cwd() / "data").resolve()


def storage_uri(explicit: str | None = None) -> str:
    """Root of every asset's data: config, else $CONSUMER_ASSETS_STORAGE, else <data dir>/storage."""
    return explicit or os.environ.get(STORAGE_ENV) or (data_dir() / "storage").as_uri()


def landing_uri(explicit: str | None = None) -> str:
    """The shop's landing zone: config, else $CONSUMER_ASSETS_LANDING, else <data dir>/landing."""
    return explicit or os.environ.get(LANDING_ENV) or (data_dir() / "landing").as_uri()


DAGSTER_HOME_ENV = "DAGSTER_HOME"
# Written into a new Dagster home: no usage statistics leave the machine.
DAGSTER_YAML = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"


def dagster_home() -> Path:
    """The one Dagster instance of every command: $DAGSTER_HOME, else <data dir>/dagster_home.

    Created with a dagster.yaml that turns telemetry off if it has none yet.
    """
    home = Path(os.environ.get(DAGSTER_HOME_ENV) or data_dir() / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    return home


SPARK_MASTER_ENV = "CONSUMER_ASSETS_SPARK_MASTER"


def spark_master(explicit: str | None = None) -> str:
    """The Spark master URL: config, else $CONSUMER_ASSETS_SPARK_MASTER, else local[*]."""
    return explicit or os.environ.get(SPARK_MASTER_ENV) or "local[*]"


ALERT_WEBHOOK_ENV = "CONSUMER_ASSETS_ALERT_WEBHOOK"
UI_URL_ENV = "CONSUMER_ASSETS_UI_URL"


def alert_webhook(explicit: str | None = None) -> str | None:
    """Where alerts are posted: config, else $CONSUMER_ASSETS_ALERT_WEBHOOK, else nowhere (None)."""
    return explicit or os.environ.get(ALERT_WEBHOOK_ENV) or None


def ui_url(explicit: str | None = None) -> str | None:
    """The Dagster UI's base URL that alerts link runs to: config, else $CONSUMER_ASSETS_UI_URL, else None."""
    url = explicit or os.environ.get(UI_URL_ENV)
    return url.rstrip("/") if url else None


SERVE_POLL_ENV = "CONSUMER_ASSETS_SERVE_POLL_SECONDS"


def serve_poll_seconds(explicit: float | None = None) -> float:
    """How often the scoring service looks for a newer model or histories day: option, else
    $CONSUMER_ASSETS_SERVE_POLL_SECONDS, else 30 s."""
    value = explicit if explicit is not None else float(os.environ.get(SERVE_POLL_ENV) or 30.0)
    if not value > 0:
        raise ValueError(f"the poll interval must be positive, got {value}")
    return value


SERVE_CACHE_ENV = "CONSUMER_ASSETS_SERVE_CACHE"


def serve_cache(explicit: str | None = None) -> Path:
    """Where the scoring service caches the histories state it maps (local disk): option, else
    $CONSUMER_ASSETS_SERVE_CACHE, else <data dir>/serve-cache."""
    return Path(explicit or os.environ.get(SERVE_CACHE_ENV) or data_dir() / "serve-cache").resolve()

"""The landing zone where the shop's tracking events arrive, one folder (or S3 prefix) per day."""

import datetime as dt

import dagster as dg
from pydantic import Field

from consumer_assets.ingest.ingest import ingest_day
from consumer_assets.ingest.landing import completed_at, open_day
from consumer_assets.ingest.validate import ValidatedDay
from consumer_assets.settings import LANDING_ENV, landing_uri


class LandingZone(dg.ConfigurableResource):
    """Where tracking events land: `<uri>/date=YYYY-MM-DD/*.jsonl.gz` plus a `_SUCCESS` marker per day."""

    uri: str | None = Field(
        default=None, description=f"Landing-zone URI; default ${LANDING_ENV}, else file://<cwd>/data/landing."
    )
    workers: int | None = Field(
        default=None, description="Processes that validate a day's files in parallel; default one per core."
    )

    def resolved_uri(self) -> str:
        return landing_uri(self.uri)

    def day_uri(self, day: dt.date) -> str:
        return f"{self.resolved_uri().rstrip('/')}/date={day.isoformat()}"

    def completed_at(self, day: dt.date) -> int | None:
        """When the day's `_SUCCESS` marker was written (ns since the epoch), or None if it is not there."""
        return completed_at(self.resolved_uri(), day)

    def require_complete(self, day: dt.date) -> None:
        """Raise LandingDayError, naming the path, unless the day has landed completely."""
        open_day(self.resolved_uri(), day)

    def ingest(self, day: dt.date) -> ValidatedDay:
        return ingest_day(self.resolved_uri(), day, workers=self.workers)

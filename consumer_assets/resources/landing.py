"""The landing zone where the shop's tracking events arrive, one folder (or S3 prefix) per day."""

import datetime as dt
from collections.abc import Callable
from typing import Literal

import dagster as dg
import pyarrow as pa
from pydantic import Field, PrivateAttr

from consumer_assets.events.landing import DATE_FOLDERS, MARKER, day_folder
from consumer_assets.ingest.dedupe import EarlierIds
from consumer_assets.ingest.delivery import completed_at, delivery
from consumer_assets.ingest.ingest import ingest_day
from consumer_assets.ingest.landing import LandingDay, LandingRules, open_day
from consumer_assets.ingest.lines import MAX_LINE_BYTES
from consumer_assets.ingest.quarantine import QuarantineBatches
from consumer_assets.ingest.validate import ValidatedDay
from consumer_assets.resources.s3 import S3Config
from consumer_assets.settings import LANDING_ENV, landing_uri
from consumer_assets.storage.filesystem import Location, resolve


class LandingZone(dg.ConfigurableResource):
    """Where tracking events land: a folder per day of JSON Lines files (gzip or plain), complete once marked."""

    uri: str | None = Field(
        default=None, description=f"Landing-zone URI; default ${LANDING_ENV}, else file://<cwd>/data/landing."
    )
    layout: Literal["date=YYYY-MM-DD", "YYYY/MM/DD"] = Field(
        default=DATE_FOLDERS,
        description="Day folders: `date=YYYY-MM-DD/` (hive style) or `YYYY/MM/DD/` (the usual S3 delivery prefix).",
    )
    require_marker: bool = Field(
        default=True,
        description=f"A day is complete once its `{MARKER}` marker exists (JSON with line counts, or empty). "
        "False for producers that write none: then a day is complete `quiet_minutes` after it ended and after "
        "its newest file was modified.",
    )
    quiet_minutes: float = Field(
        default=60.0, ge=0, description="Quiet period that completes a day without a marker (require_marker=False)."
    )
    max_line_bytes: int = Field(
        default=MAX_LINE_BYTES,
        ge=1,
        le=64 << 20,
        description="A longer line (bytes, without its newline) is quarantined as `line_too_long` with its first "
        "1 KiB as raw_line, and never read into memory whole. Default 1 MiB; events are a few hundred bytes.",
    )
    workers: int | None = Field(
        default=None,
        description="Threads that validate a day's blocks (of one file or several) side by side; default one per core.",
    )
    s3: S3Config = Field(default_factory=S3Config, description="Where S3 is, for a landing zone on S3.")
    _location: Location | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Resolved once when the run (or sensor tick) builds the resource, as the storage root is.
        self._location = self._resolve()

    def _resolve(self) -> Location:
        return resolve(self.resolved_uri(), self.s3.settings())

    def location(self) -> Location:
        """The landing zone with its S3 settings: the run's, or (outside a run) resolved now."""
        return self._location if self._location is not None else self._resolve()

    def resolved_uri(self) -> str:
        return landing_uri(self.uri)

    def rules(self) -> LandingRules:
        return LandingRules(self.layout, self.require_marker, self.quiet_minutes, self.max_line_bytes)

    def day_uri(self, day: dt.date) -> str:
        """Where the day's files land, e.g. `<uri>/date=2026-10-05` or `<uri>/2026/10/05`."""
        return f"{self.resolved_uri().rstrip('/')}/{day_folder(day, self.layout)}"

    def completed_at(self, day: dt.date, now: dt.datetime | None = None) -> int | None:
        """When the day became complete (ns: its marker's mtime, or its newest file's without one), else None.

        `now` (default: the clock) decides whether a day without a marker has been quiet long enough.
        """
        return completed_at(self.location(), day, self.rules(), now=now)

    def delivery(self, day: dt.date, now: dt.datetime | None = None) -> str | None:
        """A token of the complete day as delivered (it changes with any file of the day folder), else None."""
        return delivery(self.location(), day, self.rules(), now=now)

    def require_complete(self, day: dt.date) -> LandingDay:
        """The complete day's files; raises LandingDayError, naming the path, unless the day has landed completely."""
        return open_day(self.location(), day, self.rules())

    def ingest(
        self,
        day: dt.date,
        earlier_ids: EarlierIds | pa.Table | Callable[[], EarlierIds | None] | None = None,
        quarantine: QuarantineBatches | None = None,
    ) -> ValidatedDay:
        """Validate and de-duplicate the day; `earlier_ids` are ids kept on earlier days (`ingest_day`).

        Quarantined lines go to `quarantine` as they come; without it they are returned in memory.
        """
        return ingest_day(
            self.location(),
            day,
            rules=self.rules(),
            earlier_ids=earlier_ids,
            workers=self.workers,
            quarantine=quarantine,
        )

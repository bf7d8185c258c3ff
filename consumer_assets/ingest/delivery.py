"""When a landed day is complete, and a token of what was delivered: what the landing sensor asks."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable

import pyarrow.fs as pafs

from consumer_assets.events.landing import MARKER, day_folder, is_bookkeeping
from consumer_assets.ingest.landing import LandingDayError, LandingRules, listed_day, quiet_since
from consumer_assets.ingest.listing import linked_folder
from consumer_assets.storage.filesystem import Location, resolve


def completed_at(
    landing: str | Location, day: dt.date, rules: LandingRules | None = None, *, now: dt.datetime | None = None
) -> int | None:
    """When the day became complete (ns; the marker's or newest file's mtime), or None while it is not.

    A re-delivered day has a newer marker (or newer files), so the value changes with each delivery.
    """
    rules = rules or LandingRules()
    location = resolve(landing)
    folder = location.child(day_folder(day, rules.layout))
    info = folder.fs.get_file_info(folder.path(MARKER))
    if info.type == pafs.FileType.File:
        return info.mtime_ns
    if rules.require_marker:
        return None
    try:
        folder, listed = listed_day(location, day, rules)
        return quiet_since(folder, day, rules, listed, now or dt.datetime.now(dt.UTC)) if listed is not None else None
    except LandingDayError:
        return None


def delivery(
    landing: str | Location, day: dt.date, rules: LandingRules | None = None, *, now: dt.datetime | None = None
) -> str | None:
    """A token of the complete day as delivered, or None while it is not complete.

    The token stays the same while nothing in the folder changes, and changes once a file (the
    marker included) is added, removed, rewritten or touched: a file that arrives after the marker
    is a new delivery. Bookkeeping below the folder (other `_` and `.` names) does not count, as a
    producer's task files come and go. A day that open_day refuses (a link in it) has a token all
    the same, so that its run is requested and fails, naming the link.
    """
    rules = rules or LandingRules()
    location = resolve(landing)
    if (link := linked_folder(location, day_folder(day, rules.layout))) is not None:
        return _digest([link])
    folder, listed = listed_day(location, day, rules)
    if listed is None:
        return None
    if MARKER not in listed:
        if rules.require_marker:
            return None
        try:
            quiet_since(folder, day, rules, listed, now or dt.datetime.now(dt.UTC))
        except LandingDayError:
            return None
    return _digest(
        (name, e.size, e.mtime_ns, e.kind, e.target)
        for name, e in sorted(listed.items())
        if name == MARKER or not is_bookkeeping(name)
    )


def _digest(parts: Iterable[object]) -> str:
    return hashlib.sha256(repr(list(parts)).encode()).hexdigest()[:16]

"""Whether a day's histories still follow from the data they were built from, as recorded in their commit.

consumer_histories[D] continues the state of D-1 with raw_events[D], or, where there is no state
to continue, is built from raw_events of its whole horizon. When a raw_events day is re-delivered,
every later state built on the old one is stale until the chain has been recomputed up to it.
So each commit of consumer_histories records, per day, how the day was built (horizon, and which
way) and a digest of the stamps of everything it read: the commits of the raw_events days and of
the previous day's state (each date's application transaction, storage.tables.date_transaction).
A day is current when the digest of today's stamps is the recorded one and, for a continued day,
the day before is current too. Readers get a stale day's histories never: consumer_histories
builds a day anew rather than continue a stale state, and training and scoring refuse one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from consumer_assets.storage.tables import TableStore, date_transaction
from consumer_assets.windows import PREVIOUS_DAY, horizon

HISTORIES, STATE, RAW = "consumer_histories", "consumer_histories_state", "raw_events"


def _built_id(key: str) -> str:
    return f"{HISTORIES}/built/{key}"


def _digest_id(key: str) -> str:
    return f"{HISTORIES}/inputs/{key}"


@dataclass(frozen=True)
class Built:
    """How the histories of `day` were built: continued from the day before, or from the horizon."""

    day: dt.date
    horizon_days: int
    continued: bool

    @property
    def code(self) -> int:
        return 2 * self.horizon_days + self.continued

    @classmethod
    def from_code(cls, day: dt.date, code: int) -> Built:
        return cls(day, code // 2, bool(code % 2))

    @property
    def previous(self) -> dt.date:
        return PREVIOUS_DAY.first(self.day)

    def inputs(self) -> list[tuple[str, str]]:
        """(table, application transaction) of everything the day read."""
        days = [self.day] if self.continued else horizon(self.horizon_days).days(self.day)
        raw = [(RAW, date_transaction(RAW, d.isoformat())) for d in days]
        return [*raw, (HISTORIES, date_transaction(HISTORIES, self.previous.isoformat()))] if self.continued else raw


class Stamps:
    """The stamps of one look at the tables, each table read once."""

    def __init__(self, store: TableStore) -> None:
        self.store = store
        self._seen: dict[str, dict[str, int | None]] = {}

    def get(self, table: str, apps: Iterable[str]) -> dict[str, int | None]:
        apps = list(apps)
        known = self._seen.setdefault(table, {})
        missing = [a for a in apps if a not in known]
        if missing:
            known.update(self.store.stamps(table, missing))
        return {a: known[a] for a in apps}

    def digest(self, built: Built) -> int:
        stamps = [[table, app, self.get(table, [app])[app]] for table, app in built.inputs()]
        # Delta keeps application transaction versions as signed 64-bit integers.
        return int.from_bytes(hashlib.sha256(json.dumps(stamps).encode()).digest()[:8], "big") >> 1


def records(stamps: Stamps, built: Sequence[Built]) -> dict[str, int]:
    """What the commit of these days keeps: how each was built, and the digest of its inputs' stamps.
    Take the stamps before reading the inputs: a newer delivery read with older stamps looks stale
    (and is built again), never the other way round."""
    out = {}
    for b in built:
        key = b.day.isoformat()
        out[_built_id(key)] = b.code
        out[_digest_id(key)] = stamps.digest(b)
    return out


def stale_days(store: TableStore, days: Iterable[dt.date]) -> dict[dt.date, str]:
    """Of these days of consumer_histories, the stale ones, each with the reason (the first input
    that changed since it was built, following continued days back)."""
    stamps = Stamps(store)
    verdict: dict[dt.date, str | None] = {}

    def check(day: dt.date) -> str | None:
        chain = []
        reason: str | None = None
        while day not in verdict:
            key = day.isoformat()
            recorded = stamps.get(HISTORIES, [_built_id(key), _digest_id(key)])
            code, digest = recorded[_built_id(key)], recorded[_digest_id(key)]
            if code is None or digest is None:
                reason = f"the histories of {key} record no inputs (built by an earlier release, or never)"
                break
            built = Built.from_code(day, code)
            if stamps.digest(built) != digest:
                changed = "raw_events of the day" if built.continued else "raw_events of its horizon"
                reason = f"{changed} or the state it continued changed after the histories of {key} were built"
                break
            chain.append(day)
            if not built.continued:
                break
            day = built.previous
        else:
            reason = verdict[day]
        if reason is None and chain:
            for d in chain:
                verdict[d] = None
            return None
        verdict[day] = reason
        for d in chain:
            verdict[d] = f"it continues the histories of {day}, which are stale: {reason}"
        return verdict[chain[0]] if chain else reason

    return {day: reason for day in sorted(set(days)) if (reason := check(day)) is not None}

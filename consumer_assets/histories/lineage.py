"""Whether a day's histories still follow from the data they were built from, as recorded in their commit.

consumer_histories[D] continues the state of D-1 with raw_events[D], or, where there is no state
to continue, is built from raw_events of its whole horizon. When a raw_events day is re-delivered,
every later state built on the old one is stale until the chain has been recomputed up to it.
So each commit of consumer_histories records, per day, how the day was built (horizon, and which
way) and a digest of the stamps of everything it read: the commits of the raw_events days and of
the previous day's state (each date's application transaction, storage.tables.date_transaction).
A day is current when the digest of today's stamps is the recorded one and, for a continued day,
the day before is current too; a day without a record (not written by consumer_histories) counts
as current. No reader gets a stale day: consumer_histories builds a day anew rather than continue
a stale state, and the IO manager refuses stale histories to training and scoring.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from consumer_assets.storage.tables import TableStore, date_transaction
from consumer_assets.windows import PREVIOUS_DAY, horizon

HISTORIES_TABLE, RAW = "consumer_histories", "raw_events"


def _built_id(key: str) -> str:
    return f"{HISTORIES_TABLE}/built/{key}"


def _digest_id(key: str) -> str:
    return f"{HISTORIES_TABLE}/inputs/{key}"


def _previous_id(key: str) -> str:
    return f"{HISTORIES_TABLE}/previous/{key}"


# How stale_days words a day built from its horizon whose raw days changed (automation/sensors.py looks for it).
HORIZON_CHANGED = "raw_events of its horizon changed"

# The recorded stamp of a previous day committed in the same commit, whose stamp is not known before it.
SAME_COMMIT = -1


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
        """(table, application transaction) of the raw_events days the day read."""
        days = [self.day] if self.continued else horizon(self.horizon_days).days(self.day)
        return [(RAW, date_transaction(RAW, d.isoformat())) for d in days]


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
    in_run = {b.day for b in built}
    for b in built:
        key = b.day.isoformat()
        out[_built_id(key)] = b.code
        out[_digest_id(key)] = stamps.digest(b)
        if b.continued:
            previous = date_transaction(HISTORIES_TABLE, b.previous.isoformat())
            seen = SAME_COMMIT if b.previous in in_run else stamps.get(HISTORIES_TABLE, [previous])[previous]
            out[_previous_id(key)] = SAME_COMMIT if seen is None else seen
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
            recorded = stamps.get(HISTORIES_TABLE, [_built_id(key), _digest_id(key)])
            code, digest = recorded[_built_id(key)], recorded[_digest_id(key)]
            if code is None or digest is None:
                break  # written without a record (not by consumer_histories): nothing to compare with
            built = Built.from_code(day, code)
            if stamps.digest(built) != digest:
                changed = "raw_events of the day changed" if built.continued else HORIZON_CHANGED
                reason = f"{changed} after the histories of {key} were built"
                break
            if built.continued:
                own, previous = (
                    date_transaction(HISTORIES_TABLE, key),
                    date_transaction(HISTORIES_TABLE, built.previous.isoformat()),
                )
                now = stamps.get(HISTORIES_TABLE, [own, previous, _previous_id(key)])
                expected = now[own] if now[_previous_id(key)] == SAME_COMMIT else now[_previous_id(key)]
                if now[previous] != expected:
                    reason = f"the histories of {built.previous} changed after those of {key} continued them"
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

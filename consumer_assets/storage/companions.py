"""Companion tables: a table committed just before its table of record, and always read through it.

raw_events commits its quarantine first and itself second, and no Delta commit spans two tables,
so the quarantine's newest version can hold a day whose raw_events commit never came: a run that
died between its two commits, or the loser of two runs of one day (its quarantine committed after
the winner's, its raw_events commit refused). raw_events is therefore the table of record: its
commit names, per date, the quarantine commit it goes with (the quarantine's own application
transaction of the date, and its version), and every read of a quarantine date goes through that
name (`TableStore.files`, `TableStore.dates`). Whatever a crash or a race leaves, readers of the
two tables get a pair whose counts reconcile (kept + quarantined = landed).

The alternatives do less. Rolling the loser's quarantine back with another commit leaves the same
mismatch when the run dies before it, and must never replace a newer run's quarantine. Committing
raw_events first leaves raw_events with an older run's quarantine when a run dies between the two
commits, and the loser of the quarantine's race would have committed raw_events already.

A named date is read from the companion's current files where its own transaction of the date is
the named one (as compacted since: the named version itself may have left the log by then), and
otherwise from the named version, which stays readable until vacuum removes its files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from deltalake import DeltaTable
from deltalake.transaction import Transaction

# Companion table -> its table of record.
COMPANIONS: dict[str, str] = {
    "raw_events_quarantine": "raw_events",
    "consumer_histories_state": "consumer_histories",
}


def version_id(transaction_id: str) -> str:
    """The id under which a table of record records the companion version of a date."""
    return f"{transaction_id}/version"


def naming(transaction_ids: Sequence[str], transaction: int, version: int) -> list[Transaction]:
    """What a table of record's commit records of the companion commit it goes with, for each date
    (given by the companion's transaction id of the date): that commit's transaction, and its version."""
    return [
        *(Transaction(app_id=app, version=transaction) for app in transaction_ids),
        *(Transaction(app_id=version_id(app), version=version) for app in transaction_ids),
    ]


@dataclass
class Named:
    """Where the companion rows of each date that a table of record names are."""

    current: list[str] = field(default_factory=list)  # the companion's current files
    earlier: dict[int, list[str]] = field(default_factory=dict)  # companion version -> dates read there
    unnamed: list[str] = field(default_factory=list)  # dates no commit of the table of record names


def locate(record: DeltaTable, companion: DeltaTable, transaction_ids: Mapping[str, str]) -> Named:
    """Where to read each date (key -> the companion's transaction id of it), as `record` names it."""
    named = Named()
    for key, app in transaction_ids.items():
        stamp, version = record.transaction_version(app), record.transaction_version(version_id(app))
        if stamp is None or version is None:
            named.unnamed.append(key)
        elif companion.transaction_version(app) == stamp:
            named.current.append(key)
        else:
            named.earlier.setdefault(version, []).append(key)
    return named

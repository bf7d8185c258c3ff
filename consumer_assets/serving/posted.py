"""Events posted to the scoring service, checked by exactly the rules raw_events quarantines by.

Each posted object is one line of a landing file; it goes through ingest.validate's own rules, with the
day's bounds replaced by the span the events may lie in: from the state's cut-off up to the prediction
instant. On top of them, all of a request's events must be of the profile asked about, and an event id
may occur once (the rules' `duplicate_event_id`, within the request: the service keeps no event ids of
the stored days, so a re-sent event already in raw_events is not recognised).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from consumer_assets.events.schema import RAW_EVENTS_SCHEMA
from consumer_assets.ingest.validate import check_between

# A reason of the service's own, beside the quarantine's (ingest.validate.REASONS).
WRONG_PROFILE = "wrong_profile"
_EVENT_ID, _PROFILE_ID = RAW_EVENTS_SCHEMA.get_field_index("event_id"), RAW_EVENTS_SCHEMA.get_field_index("profile_id")


@dataclass(frozen=True)
class Problem:
    """Why posted event `index` (0-based) was refused: a quarantine reason and its detail."""

    index: int
    reason: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "reason": self.reason, "detail": self.detail}


class InvalidEventsError(ValueError):
    """Posted events that raw_events would quarantine, each with its reason."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        first = self.problems[0]
        super().__init__(f"{len(self.problems)} invalid event(s); event {first.index}: {first.reason}: {first.detail}")


def instant_text(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def posted_events(objects: Sequence[Any], profile_id: str, start_ms: int, end_ms: int) -> list[tuple]:
    """The posted events as raw_events records (RAW_EVENTS_SCHEMA's fields in order, ts in epoch ms:
    histories.encode.sort_records encodes them), if every one is valid, of `profile_id`, and lies in
    [start_ms, end_ms); InvalidEventsError naming each one that is not."""

    def where() -> str:
        return f"between the state's cut-off {instant_text(start_ms)} and the prediction instant {instant_text(end_ms)}"

    checked = check_between(objects, start_ms, end_ms, where)
    problems = [Problem(number - 1, reason, detail) for number, reason, detail, _ in checked.rejected]
    seen: set[str] = set()
    for number, record in zip(checked.numbers, checked.records, strict=True):
        event_id, owner = record[_EVENT_ID], record[_PROFILE_ID]
        if owner != profile_id:
            problems.append(Problem(number - 1, WRONG_PROFILE, f"profile_id {owner[:64]!r} is not {profile_id!r}"))
        if event_id in seen:
            problems.append(Problem(number - 1, "duplicate_event_id", f"event_id {event_id[:64]!r} posted twice"))
        seen.add(event_id)
    if problems:
        raise InvalidEventsError(sorted(problems, key=lambda p: p.index))
    return checked.records


def landing_lines(events: pa.Table) -> list[dict[str, Any]]:
    """raw_events rows as the landing objects they came from (ts as ISO-8601 with milliseconds, Z): what
    a client posts for them; None fields left out."""
    ts = pc.cast(events["ts"], pa.int64()).to_pylist()
    rows = events.drop_columns([c for c in events.column_names if c not in RAW_EVENTS_SCHEMA.names]).to_pylist()
    out = []
    for row, ms in zip(rows, ts, strict=True):
        row["ts"] = instant_text(ms)
        out.append({k: v for k, v in row.items() if v is not None})
    return out

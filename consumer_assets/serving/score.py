"""One profile's probability as of an instant: its state row, advanced by the events posted, scored in batch.

The history as of an instant `at` (at or after the state's cut-off) is the one the batch path would
compute for the day E that `at` falls in (E's cut-off is the first at or after `at`): the state of day
D advanced by the posted events to E (histories.state.advance), encoded as of E (histories.state.encode's
arrays, encode_arrays) with the moment of the prediction at `at`. At `at` = the cut-off of E that is
exactly the row of consumer_histories[E], which the batch predictions score: the same functions, the
same eligibility, horizon and inputs. Scoring is the batch path's too (ml.scoring.predictions.
predict_data, which predict_histories runs on each stored batch; the arrays reach the model without
the table in between, SequenceData.from_encoded), so the probability and its three explaining events
are those predictions[E] stores. The state row is the only thing carried over: the LSTM runs over
the whole history again, because each event's input includes its age at the prediction instant
(ml.training.sequences.hours_before_cutoff), so no hidden state of the stored day stays valid at
another instant.

Those functions work on many profiles at once, and cost about the same for a few dozen as for one:
`Scorer.score_many` scores the asks that arrive together (serving.batching) in one pass.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from consumer_assets.histories.encode import sort_records
from consumer_assets.histories.schema import MIN_EVENTS, MS_PER_DAY, cutoff_ms, epoch_day
from consumer_assets.histories.state import State, advance, encode_arrays
from consumer_assets.ml.model.network import EventLstm
from consumer_assets.ml.scoring.predictions import predict_data
from consumer_assets.ml.training.data import SequenceData
from consumer_assets.ml.training.sequences import hours_before_cutoff
from consumer_assets.serving.lookup import StateIndex
from consumer_assets.windows import ELIGIBILITY, ELIGIBILITY_DAYS


class TooEarlyError(ValueError):
    """A prediction instant before the state's cut-off: the state already holds events after it."""


@dataclass(frozen=True)
class Score:
    """The answer for one profile: a probability and its explanations, or None and why not."""

    profile_id: str
    probability: float | None
    model_version: str
    histories_day: str
    explanations: list[dict[str, Any]]
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "profile_id": self.profile_id,
            "probability": self.probability,
            "model_version": self.model_version,
            "histories_day": self.histories_day,
            "explanations": self.explanations,
        }
        return out if self.reason is None else {**out, "reason": self.reason}


def day_of(at_ms: int) -> dt.date:
    """The day whose cut-off is the first at or after `at_ms`: the day a history as of `at_ms` is of."""
    return dt.date(1970, 1, 1) + dt.timedelta(days=-(-at_ms // MS_PER_DAY) - 1)


def check_at(day: dt.date, at_ms: int) -> int:
    """`at_ms` if it is not before the cut-off of a state of `day`, else TooEarlyError; the cut-off."""
    start_ms = cutoff_ms(day)
    if at_ms < start_ms:
        raise TooEarlyError(f"at must not lie before the state's cut-off, {day + dt.timedelta(days=1)}T00:00:00Z")
    return start_ms


def not_eligible(recent_events: int, day: dt.date) -> str:
    """Why a profile has no history as of `day`: too few events in the eligibility days."""
    return f"not eligible: {recent_events} event(s) in the {ELIGIBILITY_DAYS} days up to {day}, fewer than {MIN_EVENTS}"


def recent_events(state: State) -> dict[str, int]:
    """Each profile's events in the eligibility days of the state's day (what makes it eligible)."""
    recent = state.days["day"] >= epoch_day(ELIGIBILITY.first(state.day))
    row = np.repeat(np.arange(len(state)), np.diff(state.day_offsets))
    counts = np.bincount(row[recent], weights=state.days["day_events"][recent], minlength=len(state))
    return dict(zip(state.profile_ids.to_pylist(), counts.astype(np.int64).tolist(), strict=True))


@dataclass(frozen=True)
class Ask:
    """One profile to score: its posted events (raw_events records, checked: serving.posted) and the
    prediction instant."""

    profile_id: str
    events: Sequence[tuple]
    at_ms: int


def groups(asks: Sequence[Ask]) -> list[list[int]]:
    """The asks' positions in groups scored together: one day each (the day their instants fall in),
    each profile at most once in a group (advance merges a profile's events into one row)."""
    out: list[tuple[dt.date, set[str], list[int]]] = []
    for i, ask in enumerate(asks):
        day = day_of(ask.at_ms)
        group = next((g for g in out if g[0] == day and ask.profile_id not in g[1]), None)
        if group is None:
            out.append(group := (day, set(), []))
        group[1].add(ask.profile_id)
        group[2].append(i)
    return [positions for _, _, positions in out]


@dataclass(frozen=True)
class Scorer:
    """The approved model in force and a day's state: what every answer is computed from."""

    model: EventLstm
    model_version: str
    state: StateIndex

    @property
    def histories_day(self) -> str:
        return self.state.day.isoformat()

    def describe(self) -> dict[str, Any]:
        """What /v1/health answers: the model version, the histories day and its profiles."""
        day, profiles = self.histories_day, self.state.profiles
        return {"model_version": self.model_version, "histories_day": day, "profiles": profiles}

    def score_many(self, asks: Sequence[Ask]) -> list[Score]:
        """Each ask's Score (`profile_id`'s probability as of `at_ms` with its posted events), computed
        together: the state rows of a group's profiles advanced by all their events in one call,
        encoded in one, scored in one; the same as each alone, up to float32 rounding."""
        out: list[Score | None] = [None] * len(asks)
        for positions in groups(asks):
            group = [asks[i] for i in positions]
            for ask in group:
                check_at(self.state.day, ask.at_ms)
            day = day_of(group[0].at_ms)
            state = self.state.rows([ask.profile_id for ask in group])
            posted = [record for ask in group for record in ask.events]
            if day != state.day or posted:
                state = advance(state, sort_records(posted), day)
            at_of = {ask.profile_id: ask.at_ms for ask in group}
            at_ms = np.array([at_of[p] for p in state.profile_ids.to_pylist()], np.int64)
            history = encode_arrays(state, at_ms)
            scored: dict[str, tuple[float, list]] = {}
            if len(history):
                columns = history.columns
                hours = hours_before_cutoff(columns["log_dt"], history.offsets, columns["hours_since_last_event"])
                data = SequenceData.from_encoded(history, age_hours=hours)
                _, batch = predict_data(self.model, data, hours, self.model_version, threads=None)
                rows = zip(
                    batch["profile_id"].to_pylist(),
                    batch["probability"].to_numpy().tolist(),  # float32 values as Python floats, exactly
                    batch["explanations"].to_pylist(),
                    strict=True,
                )
                scored = {profile: (probability, why) for profile, probability, why in rows}
            recent = recent_events(state) if len(scored) < len(group) else {}
            for i, ask in zip(positions, group, strict=True):
                if ask.profile_id in scored:
                    probability, why = scored[ask.profile_id]
                    out[i] = Score(ask.profile_id, probability, self.model_version, self.histories_day, why)
                else:
                    reason = not_eligible(recent.get(ask.profile_id, 0), day)
                    out[i] = Score(ask.profile_id, None, self.model_version, self.histories_day, [], reason)
        return [score for score in out if score is not None]


def score_asks(items: Sequence[tuple[Scorer, Ask]]) -> list[Score]:
    """Each (scorer, ask)'s Score: the asks of each scorer (one, but for a swap in between) scored together."""
    out: list[Score | None] = [None] * len(items)
    by_scorer: dict[int, list[int]] = {}
    for i, (scorer, _) in enumerate(items):
        by_scorer.setdefault(id(scorer), []).append(i)
    for positions in by_scorer.values():
        scorer = items[positions[0]][0]
        for i, score in zip(positions, scorer.score_many([items[i][1] for i in positions]), strict=True):
            out[i] = score
    return [score for score in out if score is not None]

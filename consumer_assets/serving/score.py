"""One profile's probability as of an instant: its state row, advanced by the events posted, scored in batch.

The history as of an instant `at` (at or after the state's cut-off) is the one the batch path would
compute for the day E that `at` falls in (E's cut-off is the first at or after `at`): the state of day
D advanced by the posted events to E (histories.state.advance), encoded as of E (histories.state.encode)
with the moment of the prediction at `at`. At `at` = the cut-off of E that is exactly the row of
consumer_histories[E], which the batch predictions score: the same functions, the same eligibility,
horizon and inputs. Scoring is the batch path's too (ml.scoring.predictions.predict_histories), so the
probability and its three explaining events are those predictions[E] stores.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from consumer_assets.histories.encode import sort_events
from consumer_assets.histories.schema import MIN_EVENTS, MS_PER_DAY, cutoff_ms, epoch_day
from consumer_assets.histories.state import State, advance, encode
from consumer_assets.ml.model.network import EventLstm
from consumer_assets.ml.scoring.predictions import predict_histories
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


def history_at(row: State, events: pa.Table, at_ms: int) -> tuple[pa.Table, State]:
    """The profile's history as of `at_ms` (HISTORIES_SCHEMA, no row if not eligible) and its state then,
    from its state row of day D and its raw events after D's cut-off and before `at_ms`."""
    check_at(row.day, at_ms)
    day = day_of(at_ms)
    state = row if day == row.day and not events.num_rows else advance(row, sort_events(events), day)
    return encode(state, at_ms), state


def not_eligible(state: State) -> str:
    """Why a profile with this state has no history: too few events in the eligibility days."""
    recent = state.days["day"] >= epoch_day(ELIGIBILITY.first(state.day))
    n = int(state.days["day_events"][recent].sum())
    return f"not eligible: {n} event(s) in the {ELIGIBILITY_DAYS} days up to {state.day}, fewer than {MIN_EVENTS}"


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

    def score(self, profile_id: str, events: pa.Table, at_ms: int) -> Score:
        """`profile_id`'s probability as of `at_ms` with its posted `events` (raw_events rows, checked)."""
        history, state = history_at(self.state.profile(profile_id), events, at_ms)
        if not history.num_rows:
            return Score(profile_id, None, self.model_version, self.histories_day, [], not_eligible(state))
        (batch,) = predict_histories(self.model, history.to_batches(), self.model_version, None, threads=None)
        probability = float(np.float32(batch["probability"][0].as_py()))
        return Score(profile_id, probability, self.model_version, self.histories_day, batch["explanations"][0].as_py())

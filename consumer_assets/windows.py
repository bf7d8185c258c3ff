"""Which days a day D reads: every window of the pipeline, as day offsets from D, defined once.

The Dagster partition mappings (partitions.window_mapping) and the domain code (the histories
job, the training's cut-offs and labels, the checks' trailing days, the look-backs) both derive
from these windows, so the partitions an asset is given and the days its code reads are the same
days by construction. No Dagster and no other module of the project here: histories/, ml/ and
ingest/ import this one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    """The days D+start .. D+end of a day D, both ends included; start = end + 1 is the empty window."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.start > self.end + 1:
            raise ValueError(f"a window's start ({self.start}) must not lie after its end ({self.end}) + 1")

    @classmethod
    def through(cls, days: int) -> Window:
        """The `days` days up to D, D included."""
        return cls(-(days - 1), 0)

    @classmethod
    def before(cls, days: int) -> Window:
        """The `days` days before D, D excluded."""
        return cls(-days, -1)

    @property
    def offsets(self) -> tuple[int, int]:
        """(start, end): what a Dagster TimeWindowPartitionMapping takes as start_offset, end_offset."""
        return self.start, self.end

    def __len__(self) -> int:
        return self.end - self.start + 1

    def days(self, day: dt.date) -> list[dt.date]:
        """The window's days of day D, oldest first."""
        return [day + dt.timedelta(days=k) for k in range(self.start, self.end + 1)]

    def first(self, day: dt.date) -> dt.date:
        return day + dt.timedelta(days=self.start)

    def last(self, day: dt.date) -> dt.date:
        return day + dt.timedelta(days=self.end)

    def then(self, inner: Window) -> Window:
        """The days `inner` reaches from any day of this window: the union of `inner` over its days."""
        return Window(self.start + inner.start, self.end + inner.end)

    def hull(self, other: Window) -> Window:
        """The days from the earlier start to the later end of the two windows."""
        return Window(min(self.start, other.start), max(self.end, other.end))


# A profile has a history as of D if it has at least histories.schema.MIN_EVENTS events in the
# ELIGIBILITY_DAYS days up to D, D included (the paper's definition, so rows stay comparable).
ELIGIBILITY_DAYS = 28
ELIGIBILITY = Window.through(ELIGIBILITY_DAYS)

# Its history is then the newest events of its horizon: the HORIZON_DAYS days up to D by default,
# configurable per run (consumer_histories' config), never below ELIGIBILITY_DAYS nor above MAX_HORIZON_DAYS.
HORIZON_DAYS = 180
MAX_HORIZON_DAYS = 730


def horizon(days: int = HORIZON_DAYS) -> Window:
    """The days a history as of D reaches back over: `days` days up to D."""
    if not ELIGIBILITY_DAYS <= days <= MAX_HORIZON_DAYS:
        raise ValueError(f"a horizon of {days} days is outside {ELIGIBILITY_DAYS}..{MAX_HORIZON_DAYS}")
    return Window.through(days)


# consumer_histories[D] continues from the state of the day before: D-1.
PREVIOUS_DAY = Window(-1, -1)

# The target of a history as of D: an order on one of the LABEL_DAYS days after D. The same week
# judges predictions[D] once it has landed.
LABEL_DAYS = 7
LABELS = Window(1, LABEL_DAYS)

# The most cut-off days a model trains on. trained_lstm_model's partition mappings are declared once,
# at import, while train_days comes with each run's config: so the mappings cover MAX_TRAIN_DAYS
# cut-off days, the config refuses more, and a run asking for fewer reads the newest of them.
MAX_TRAIN_DAYS = 7


def training_window(train_days: int) -> Window:
    """The cut-off days model[D] trains on: the newest whose label week ends with D, and the days before it."""
    newest = -LABELS.end
    return Window(newest - (train_days - 1), newest)


def label_window(train_days: int) -> Window:
    """The days whose orders label the training cut-offs of day D: the day after the oldest .. D."""
    return training_window(train_days).then(LABELS)


def training_cutoffs(day: dt.date, train_days: int) -> list[dt.date]:
    """The cut-off days whose histories day D trains on, oldest first: D-7-k for k < train_days."""
    return training_window(train_days).days(day)


def label_days(day: dt.date, train_days: int) -> list[dt.date]:
    """The raw_events days the labels of day D's training read: the day after the oldest cut-off .. D."""
    return label_window(train_days).days(day)


TRAINING_CUTOFFS = training_window(MAX_TRAIN_DAYS)
TRAINING_LABELS = label_window(MAX_TRAIN_DAYS)

# The raw_events days the whole chain needs up to model[D]: an eligibility window for its oldest
# cut-off through its newest label day (histories reach back further where the shop is older).
CHAIN = TRAINING_CUTOFFS.then(ELIGIBILITY).hull(TRAINING_LABELS)
# ... and the week after D, whose orders judge predictions[D] (prediction_quality[D]).
STORY = CHAIN.hull(LABELS)

# The days a day's data-quality and drift checks compare it with.
TRAILING_DAYS = 7
TRAILING = Window.before(TRAILING_DAYS)

# The days the landing sensor still looks at: a day that completes late within a week is picked up.
LANDING_LOOKBACK = Window.through(7)

# At-least-once delivery re-sends events across midnight: an event id kept on one of the days
# Window.before(DUPLICATE_LOOKBACK_DAYS) of D is a duplicate on D (the default; raw_events' config).
DUPLICATE_LOOKBACK_DAYS = 2

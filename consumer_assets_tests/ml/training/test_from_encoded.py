"""SequenceData.from_encoded (the scoring service's path) reads encode's arrays as from_batch reads its table."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest

from consumer_assets.histories.encode import between, sort_events
from consumer_assets.histories.schema import MS_PER_HOUR, cutoff_ms
from consumer_assets.histories.state import State, advance, encode, encode_arrays
from consumer_assets.ml.model.inputs import NULL, SUMMARY_COLUMNS
from consumer_assets.ml.training.data import SequenceData
from consumer_assets.windows import HORIZON_DAYS, horizon
from consumer_assets_tests.support.histories import D, edge_rows, event_table


@pytest.mark.parametrize("hours_into_day", [None, 0.5, 13.5, 24.0])
def test_from_encoded_equals_from_batch_of_encodes_table(hours_into_day: float | None) -> None:
    # Hand-built edges: ties, thresholds, histories cut at MAX_EVENTS, profiles that never ordered.
    events = sort_events(event_table(edge_rows()))
    state = State.empty(horizon(HORIZON_DAYS).first(D) - dt.timedelta(days=1), HORIZON_DAYS)
    state = advance(state, between(events, cutoff_ms(state.day), cutoff_ms(D)), D)
    # Predicting at the cut-off of D, or at an instant of its last 24 hours (the service's).
    at_ms = None if hours_into_day is None else cutoff_ms(D) - 24 * MS_PER_HOUR + int(hours_into_day * MS_PER_HOUR)
    table = encode(state, at_ms).combine_chunks()
    (batch,) = table.to_batches()
    want = SequenceData.from_batch(batch, label_column="", cutoff_column="")
    got = SequenceData.from_encoded(encode_arrays(state, at_ms))
    assert len(got) == table.num_rows > 3
    assert got.profile_id.equals(want.profile_id)
    for field in dataclasses.fields(SequenceData):
        if field.name != "profile_id":
            mine, theirs = getattr(got, field.name), getattr(want, field.name)
            if theirs is None:
                assert mine is None, field.name
            else:
                assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs), field.name
    # The nullable summaries were null somewhere (never ordered), and read as NULL on both paths.
    assert (got.summary[:, SUMMARY_COLUMNS.index("days_since_last_order")] == NULL).any()

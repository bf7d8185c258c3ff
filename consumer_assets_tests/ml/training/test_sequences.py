"""A history's per-event arrays and event times: read once, the same for the model and its explanations."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pyarrow as pa
import pytest

from consumer_assets.events.schema import ACTION_TYPES, RAW_EVENTS_SCHEMA
from consumer_assets.histories import encode_histories
from consumer_assets.histories.schema import MS_PER_HOUR, cutoff_ms
from consumer_assets.ml.training.data import SequenceData
from consumer_assets.ml.training.sequences import hours_before_cutoff, list_parts
from consumer_assets_testing.simulated import simulate_histories

DAY = dt.date(2026, 3, 10)


def test_list_parts_flattens_slices_and_chunks_and_refuses_nulls() -> None:
    rows = [[1, 2, 3], [4], [5, 6], [7, 8, 9, 10]]
    column = pa.array(rows, pa.list_(pa.int32()))
    chunked = pa.chunked_array([column[:1], column[1:]])
    for part, want in ((column, rows), (column.slice(1, 2), rows[1:3]), (chunked, rows)):
        values, offsets = list_parts(part)
        assert [values[a:b].tolist() for a, b in itertools.pairwise(offsets)] == want
    with pytest.raises(ValueError, match="null"):
        list_parts(pa.array([[1], None], pa.list_(pa.int32())))


def test_times_rebuilt_from_log_dt_match_the_real_timestamps_within_seconds() -> None:
    rng = np.random.default_rng(3)
    hi = cutoff_ms(DAY)
    # Two profiles over the 180-day horizon (200 events, the most a history holds; 15 of them in
    # the last 28 days): gaps from milliseconds to days, as in real histories.
    ts = np.c_[
        hi - rng.integers(28 * 86_400_000, 179 * 86_400_000, (2, 185)), hi - rng.integers(1, 27 * 86_400_000, (2, 15))
    ]
    ts = np.sort(ts, axis=1)
    ts[:, 10] = ts[:, 9] + 1  # a millisecond gap
    ts.sort(axis=1)
    kinds = rng.integers(0, len(ACTION_TYPES), ts.size)
    events = pa.Table.from_pydict(
        {
            "event_id": [f"e{i:05d}" for i in range(ts.size)],
            "profile_id": ["a"] * 200 + ["b"] * 200,
            "session_id": ["s"] * ts.size,
            "ts": pa.array(ts.ravel(), pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            "event_type": [ACTION_TYPES[k] for k in kinds],
            "article_id": [None] * ts.size,
            "brand_id": [None] * ts.size,
            "category": [None] * ts.size,
            "price": [None] * ts.size,
        },
        schema=RAW_EVENTS_SCHEMA,
    )
    [(_, hist)] = encode_histories(events, [DAY])
    assert hist["n_events"].to_pylist() == [200, 200]
    log_dt, offsets = list_parts(hist["log_dt"])
    hours = hours_before_cutoff(log_dt, offsets, hist["hours_since_last_event"].to_numpy())
    true_hours = (hi - ts.ravel()) / MS_PER_HOUR
    assert np.abs(hours - true_hours).max() * 3600 < 3.0


def test_the_models_event_ages_are_the_explanations_event_times() -> None:
    """The age the model reads and the time an explanation shows come from one function."""
    sim = simulate_histories(300, 4, [DAY])
    batch = sim.histories.drop(["label", "date"]).combine_chunks().to_batches()[0].slice(7, 200)
    log_dt, offsets = list_parts(batch["log_dt"])
    hours = hours_before_cutoff(log_dt, offsets, batch["hours_since_last_event"].to_numpy())
    derived = SequenceData.from_batch(batch)
    given = SequenceData.from_batch(batch, age_hours=hours)
    np.testing.assert_array_equal(derived.continuous, given.continuous)
    np.testing.assert_allclose(derived.age_hours(), hours, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="one value per event"):
        SequenceData.from_batch(batch, age_hours=hours[1:])

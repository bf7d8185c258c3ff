"""Explanations: the events that moved the probability most, with times rebuilt from the history."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from consumer_assets.events.schema import ACTION_INDEX, ACTION_TYPES
from consumer_assets.histories.schema import HISTORIES_SCHEMA
from consumer_assets.ml.monitoring.explain import EXPLANATION_TYPE, top_changes, top_events


def _histories(types: list[list[str]], gaps_s: list[list[float]], hours_since_last: list[float]) -> pa.Table:
    """Histories rows from event type names and seconds between consecutive events (first gap ignored)."""
    rows = []
    for i, (names, gaps, hsl) in enumerate(zip(types, gaps_s, hours_since_last, strict=True)):
        n = len(names)
        rows.append(
            {
                "profile_id": f"p{i}",
                "n_events": n,
                "n_window_events": n,
                "event_type": [ACTION_INDEX[x] for x in names],
                "log_dt": [0.0, *np.log1p(gaps[1:]).tolist()],
                "article_bucket": [100 * i + j for j in range(n)],
                "brand_bucket": [0] * n,
                "category_bucket": [0] * n,
                "log_price": [0.0] * n,
                "hours_since_last_event": hsl,
                "cutoff_weekday": 2,
                "last_event_hour": 12.0,
            }
        )
    return pa.Table.from_pylist(rows, schema=HISTORIES_SCHEMA)


def _probs(rows: list[list[float]]) -> pa.Array:
    return pa.array(rows, pa.list_(pa.float32()))


def test_known_case_picks_the_largest_moves_up_and_down_with_types_times_and_articles() -> None:
    names = ["home_view", "search", "cart_add", "product_view", "order"]
    hist = _histories([names], [[0, 60, 120, 3600, 7200]], [5.0])
    out = top_events(_probs([[0.10, 0.10, 0.50, 0.40, 0.05]]), hist, prior=0.10)
    assert out.type == EXPLANATION_TYPE
    [entries] = out.to_pylist()
    assert [e["position"] for e in entries] == [2, 4, 3]
    assert [e["event_type"] for e in entries] == ["cart_add", "order", "product_view"]
    assert [e["article_bucket"] for e in entries] == [2, 4, 3]
    np.testing.assert_allclose([e["change"] for e in entries], [0.40, -0.35, -0.10], atol=1e-6)
    # The last event is hours_since_last_event before the cut-off; each earlier one its successor's gap earlier.
    np.testing.assert_allclose([e["hours_before_cutoff"] for e in entries], [8.0, 5.0, 7.0], atol=1e-5)


def test_without_a_prior_the_first_event_gets_no_credit_and_with_one_it_does() -> None:
    hist = _histories([["cart_add", "home_view"]], [[0, 10]], [1.0])
    probs = _probs([[0.9, 0.85]])
    without = top_events(probs, hist).to_pylist()[0]
    assert [(e["position"], round(e["change"], 6)) for e in without] == [(1, -0.05), (0, 0.0)]
    with_prior = top_events(probs, hist, prior=0.05).to_pylist()[0]
    assert [(e["position"], round(e["change"], 6)) for e in with_prior] == [(0, 0.85), (1, -0.05)]
    # A prior per profile.
    two = _histories([["cart_add"], ["search"]], [[0], [0]], [1.0, 2.0])
    per_row = top_events(_probs([[0.5], [0.5]]), two, prior=np.array([0.1, 0.7])).to_pylist()
    assert [round(r[0]["change"], 6) for r in per_row] == [0.4, -0.2]


def test_ties_go_to_the_most_recent_event() -> None:
    hist = _histories([["search"] * 5], [[0, 1, 1, 1, 1]], [0.5])
    # Changes 0, +0.2, -0.2, +0.2, -0.2: four equal magnitudes, the three most recent win, newest first.
    [entries] = top_events(_probs([[0.2, 0.4, 0.2, 0.4, 0.2]]), hist).to_pylist()
    assert [e["position"] for e in entries] == [4, 3, 2]
    assert [round(e["change"], 6) for e in entries] == [-0.2, 0.2, -0.2]


def test_histories_shorter_than_three_events_give_what_they_have() -> None:
    hist = _histories([["login"], ["search", "order"], ["home_view"] * 4], [[0], [0, 5], [0, 1, 1, 1]], [1, 2, 3])
    out = top_events(_probs([[0.3], [0.1, 0.6], [0.1, 0.2, 0.4, 0.45]]), hist, prior=0.1).to_pylist()
    assert [len(r) for r in out] == [1, 2, 3]
    assert [e["position"] for e in out[1]] == [1, 0]
    assert [e["position"] for e in out[2]] == [2, 1, 3]
    # Empty rows (no history has one, but a batch may be empty) give empty lists.
    picked, picked_offsets, _ = top_changes(np.array([0.1, 0.5]), np.array([0, 0, 2, 2]), prior=0.0)
    assert picked.tolist() == [1, 0] and picked_offsets.tolist() == [0, 0, 2, 2]
    picked, picked_offsets, _ = top_changes(np.zeros(0), np.array([0]))
    assert picked.tolist() == [] and picked_offsets.tolist() == [0]


def test_batches_slices_and_chunked_inputs_agree_with_a_per_row_reference() -> None:
    rng = np.random.default_rng(7)
    lengths = rng.integers(1, 40, 600)
    types = [[ACTION_TYPES[k] for k in rng.integers(0, len(ACTION_TYPES), n)] for n in lengths]
    gaps = [rng.exponential(600, n).tolist() for n in lengths]
    hist = _histories(types, gaps, rng.uniform(0, 100, len(lengths)).tolist())
    # Quantized probabilities: many exact ties, so the tie rule is exercised at scale.
    probs = [np.round(rng.uniform(0, 1, n), 1).astype(np.float32).tolist() for n in lengths]
    whole = top_events(_probs(probs), hist, prior=0.3).to_pylist()
    for p, entries in zip(probs, whole, strict=True):
        change = np.diff(np.r_[0.3, np.asarray(p, np.float64)])
        expected = sorted(range(len(p)), key=lambda i: (-abs(change[i]), -i))[:3]
        assert [e["position"] for e in entries] == expected
    # A slice of a batch (non-zero list offsets) and a chunked table give the same rows.
    batch = hist.to_batches()[0].slice(100, 50)
    assert top_events(_probs(probs).slice(100, 50), batch, prior=0.3).to_pylist() == whole[100:150]
    chunked = pa.concat_tables([hist.slice(0, 300), hist.slice(300)])
    chunked_probs = pa.chunked_array([_probs(probs[:300]), _probs(probs[300:])])
    assert top_events(chunked_probs, chunked, prior=0.3).to_pylist() == whole


def test_inputs_that_do_not_fit_are_refused() -> None:
    hist = _histories([["search", "order"]], [[0, 1]], [1.0])
    with pytest.raises(ValueError, match="one value per event"):
        top_events(_probs([[0.1, 0.2, 0.3]]), hist)
    with pytest.raises(ValueError, match="NaN"):
        top_changes(np.array([0.1, np.nan]), np.array([0, 2]))

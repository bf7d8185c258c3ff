"""Drift statistics: PSI by hand, quantile bins, streaming summaries that pool and travel as JSON, checks."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from consumer_assets.events.schema import ACTION_INDEX
from consumer_assets.histories import encode_histories
from consumer_assets.histories.schema import HISTORIES_SCHEMA
from consumer_assets.ml.monitoring.drift import (
    EPSILON,
    FEATURES,
    PSI_WARN,
    Summary,
    check_drift,
    history_features,
    level,
    psi,
    quantile_groups,
    summarize,
    summarize_histories,
    summarize_scores,
)
from consumer_assets.simulation import ShopSimulator

START = dt.date(2026, 4, 6)


@pytest.fixture(scope="module")
def histories() -> pa.Table:
    sim = ShopSimulator(5000, 9, START)
    events = pa.concat_tables([sim.step() for _ in range(28)])
    [(_, table)] = list(encode_histories(events, [sim.day]))
    assert table.num_rows > 1500
    return table


def test_psi_matches_the_formula_by_hand() -> None:
    # Two categories, 50/50 against 80/20.
    expected = 0.3 * np.log(0.8 / 0.5) + (-0.3) * np.log(0.2 / 0.5)
    assert psi(np.array([50, 50, 0]), np.array([80, 20, 0]), categorical=True) == pytest.approx(expected)
    assert psi(np.array([5, 7, 1]), np.array([50, 70, 10]), categorical=True) == pytest.approx(0.0)
    # An empty bin counts as EPSILON, so the value is finite and the direction does not matter much.
    one_sided = psi(np.array([100, 0, 0]), np.array([90, 10, 0]), categorical=True)
    by_hand = (0.9 - 1.0) * np.log(0.9 / 1.0) + (0.1 - EPSILON) * np.log(0.1 / EPSILON)
    assert one_sided == pytest.approx(by_hand)
    with pytest.raises(ValueError):
        psi(np.array([1, 2]), np.array([0, 0]))


def test_quantile_bins_split_the_reference_evenly_and_keep_point_masses_whole() -> None:
    assert quantile_groups(np.ones(100)).tolist() == np.repeat(np.arange(10), 10).tolist()
    # 60% at one value: that fine bin is one group; the other 40% split into about four.
    mass = np.r_[600, np.full(40, 10)]
    groups = quantile_groups(mass)
    assert groups[0] == 0 and (groups[1:] >= 6).all() and len(np.unique(groups)) == 5
    # Numeric PSI merges fine bins by reference quantiles: a shift inside one coarse group is invisible,
    assert psi(np.r_[np.ones(100), 0], np.r_[np.zeros(5), 2 * np.ones(5), np.ones(90), 0]) == pytest.approx(0.0)
    # but moving mass across groups is not.
    assert psi(np.r_[np.ones(100), 0], np.r_[np.zeros(50), 2 * np.ones(50), 0]) > 0.5


def test_psi_from_fine_bins_agrees_with_psi_on_raw_decile_bins() -> None:
    rng = np.random.default_rng(1)
    ref, cur = rng.exponential(20, 50_000), rng.exponential(26, 50_000)
    edges = np.quantile(ref, np.linspace(0, 1, 11))
    edges[0], edges[-1] = -np.inf, np.inf
    r = np.histogram(ref, edges)[0] / len(ref)
    c = np.histogram(cur, edges)[0] / len(cur)
    raw = float(np.sum((c - r) * np.log(c / r)))

    def fine(values: np.ndarray) -> np.ndarray:
        nan = np.full(len(values), np.nan)
        return summarize(
            "histories", len(values), dict.fromkeys(FEATURES["histories"], nan) | {"hours_since_last_event": values}
        ).counts["hours_since_last_event"]

    assert raw > 0.02
    assert psi(fine(ref), fine(cur)) == pytest.approx(raw, rel=0.15)


def test_features_of_a_hand_made_history() -> None:
    row = {
        "profile_id": "p",
        "n_events": 4,
        "n_window_events": 30,
        "event_type": [ACTION_INDEX[t] for t in ("search", "product_view", "cart_add", "order")],
        # Gaps 1 day + 1 h, 2 h, 3 h; the last event 1 h before the cut-off: events at 30, 6, 4, 1 h.
        "log_dt": np.log1p([0.0, 25 * 3600, 2 * 3600, 3 * 3600]).tolist(),
        "article_bucket": [0, 5, 5, 5],
        "brand_bucket": [0, 1, 1, 1],
        "category_bucket": [0, 1, 1, 1],
        "log_price": [0.0, 3.0, 4.0, 5.0],
        "hours_since_last_event": 1.0,
        "cutoff_weekday": 0,
        "last_event_hour": 23.0,
        "n_recent_events": 20,
        "active_days": 12,
        "days_since_first_event": 150,
        "n_orders": 1,
        "n_returns": 0,
        "days_since_last_order": 0,
        "days_since_last_return": None,
    }
    f = history_features(pa.Table.from_pylist([row], schema=HISTORIES_SCHEMA))
    for name in ("n_window_events", "n_recent_events", "active_days", "days_since_first_event", "n_orders"):
        assert f[name].tolist() == [row[name]], name
    # No return in the horizon: missing, which the summary counts in the last bin.
    assert np.isnan(f["days_since_last_return"]).all()
    summary = summarize("histories", 1, f)
    assert summary.counts["days_since_last_return"][-1] == 1
    assert summary.counts["days_since_last_order"][0] == 1
    assert summary.counts["days_since_first_event"][:-1].sum() == 1
    assert f["events_on_day"].tolist() == [3]
    assert f["log_price_mean"].tolist() == pytest.approx([4.0])  # the search has no price
    assert f["log_dt_mean"].tolist() == pytest.approx([np.mean(row["log_dt"][1:])])
    assert f["last_event_type"].tolist() == [ACTION_INDEX["order"]]
    assert f["event_type"].tolist() == row["event_type"]


def test_summaries_stream_pool_and_travel_as_json(histories: pa.Table) -> None:
    whole = summarize_histories([histories])
    small = summarize_histories(histories.to_batches(max_chunksize=97))
    assert small.to_dict() == whole.to_dict()
    assert whole.n == histories.num_rows
    assert whole.counts["event_type"].sum() == sum(len(x) for x in histories["event_type"].to_pylist())
    # Pooling is adding: two halves make the whole.
    halves = summarize_histories([histories.slice(0, 700)]) + summarize_histories([histories.slice(700)])
    assert halves.to_dict() == whole.to_dict()
    text = json.dumps(whole.to_dict())
    assert len(text) < 10_000
    assert Summary.from_dict(json.loads(text)).to_dict() == whole.to_dict()
    with pytest.raises(ValueError, match="version"):
        Summary.from_dict({**whole.to_dict(), "version": 0})
    with pytest.raises(ValueError, match="cannot pool"):
        whole + summarize_scores([np.array([0.5])])


def test_check_passes_on_the_same_shop_and_warns_on_a_shifted_one(histories: pa.Table) -> None:
    # Profiles split at random into three "days" of the same shop.
    batches = histories.to_batches(max_chunksize=50)
    days = [summarize_histories(batches[i::3]) for i in range(3)]
    passed, description, meta = check_drift(days[0], days[1:])
    assert passed and meta["reference_days"] == 2 and meta["psi_max"] < 0.1 and meta["level"] == "stable"
    assert {f"psi_{name}" for name in FEATURES["histories"]} <= set(meta)
    json.dumps(meta)
    # Everyone's last event 2 days later: hours since the last event and today's activity move.
    hsl = pc.add(histories["hours_since_last_event"], pa.scalar(48.0, pa.float32()))
    shifted = histories.set_column(
        histories.schema.get_field_index("hours_since_last_event"), "hours_since_last_event", hsl
    )
    passed, description, meta = check_drift(summarize_histories([shifted]), days)
    assert not passed and meta["psi_worst_feature"] == "hours_since_last_event" and meta["level"] == "major"
    assert "hours_since_last_event" in description and "events_on_day" in description
    assert check_drift(days[0], []).passed
    assert not check_drift(Summary.empty("histories"), days).passed


def test_score_drift_sees_shifts_and_missing_scores() -> None:
    rng = np.random.default_rng(4)
    week = [summarize_scores([rng.beta(1, 30, 5000)]) for _ in range(7)]
    assert check_drift(summarize_scores([rng.beta(1, 30, 5000)]), week).passed
    higher = check_drift(summarize_scores([rng.beta(2, 30, 5000)]), week)
    assert not higher.passed and higher.metadata["psi_score"] > PSI_WARN
    # A model that starts emitting NaN (or nulls) shows up in the missing bin.
    broken = np.where(rng.random(5000) < 0.3, np.nan, rng.beta(1, 30, 5000))
    assert not check_drift(summarize_scores([pa.array(broken, from_pandas=True)]), week).passed
    assert [level(x) for x in (0.05, 0.2, 0.3)] == ["stable", "moderate", "major"]

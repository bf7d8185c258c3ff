"""The simulator's ground truth: exact, calibrated, and carried by the order of events."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from sklearn.metrics import roc_auc_score

from consumer_assets.simulation import ShopParams, ShopSimulator, order_labels, ordered_profiles
from consumer_assets.simulation.model import (
    CART,
    DORMANT,
    DORMANT_CART,
    LAPSED,
    MISSION,
    DayRates,
    _leave,
    rows_from,
)

START = dt.date(2026, 3, 2)
WEEK = dt.timedelta(days=7)


@pytest.fixture(scope="module")
def history() -> tuple[ShopSimulator, pa.Table, pa.Table, pa.Table]:
    """21 days of events, the truth at their end, and the 7 days that followed."""
    sim = ShopSimulator(20_000, 5, START)
    past = pa.concat_tables([sim.step() for _ in range(21)])
    truth = sim.ground_truth()
    future = pa.concat_tables([sim.step() for _ in range(7)])
    return sim, past, truth, future


def test_truth_has_one_probability_per_profile(history: tuple[ShopSimulator, pa.Table, pa.Table, pa.Table]) -> None:
    sim, _, truth, _ = history
    assert truth.schema == pa.schema([("profile_id", pa.string()), ("p_order_7d", pa.float64())])
    assert truth["profile_id"].to_pylist() == sim.profile_ids.to_pylist()
    p = truth["p_order_7d"].to_numpy()
    assert ((p >= 0) & (p <= 1)).all() and p.std() > 0.01


def test_truth_is_calibrated_and_ranks_the_realized_orders(
    history: tuple[ShopSimulator, pa.Table, pa.Table, pa.Table],
) -> None:
    sim, past, truth, future = history
    cut = START + dt.timedelta(days=20)
    y = order_labels(sim.profile_ids, future, cut + dt.timedelta(days=1), cut + WEEK)
    p = truth["p_order_7d"].to_numpy()
    # The realized rate is a sum of independent Bernoullis with these p: its s.d. is sqrt(sum p(1-p))/n.
    sd = np.sqrt((p * (1 - p)).sum()) / len(p)
    assert abs(y.mean() - p.mean()) < 4 * sd
    assert roc_auc_score(y, p) > 0.85
    # The paper's population: profiles with at least 15 events in the history window.
    counts = pc.value_counts(past["profile_id"])
    active = {v["values"] for v in counts.to_pylist() if v["counts"] >= 15}
    is_active = np.isin(sim.profile_ids.to_numpy(zero_copy_only=False), list(active))
    assert 0.03 < y[is_active].mean() < 0.10
    assert roc_auc_score(y[is_active], p[is_active]) > 0.8


def test_exact_recursion_matches_monte_carlo_rollouts_of_the_simulator() -> None:
    sim = ShopSimulator(3000, 11, START)
    for _ in range(3):
        sim.step()
    p = sim.ground_truth()["p_order_7d"].to_numpy()
    replicates = 60
    hits = np.zeros(len(p))
    for stream in range(1, replicates + 1):
        fork = sim.fork(stream)
        week = pa.concat_tables([fork.step() for _ in range(7)])
        hits += order_labels(sim.profile_ids, week, sim.day + dt.timedelta(days=1), sim.day + WEEK)
    # The fork leaves the original untouched.
    assert np.array_equal(sim.ground_truth()["p_order_7d"].to_numpy(), p)
    # Per group of similar p, the rollout share matches the mean p within 4 standard errors.
    edges = np.quantile(p, np.linspace(0, 1, 6))
    group = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, 4)
    for g in range(5):
        sel = group == g
        se = np.sqrt((p[sel] * (1 - p[sel])).sum() * replicates) / (sel.sum() * replicates)
        assert abs(hits[sel].mean() / replicates - p[sel].mean()) < 4 * se + 1e-4, g
    # Per profile: chi-square over profiles with non-trivial p is about its degrees of freedom.
    sel = (p > 0.01) & (p < 0.99)
    chi2 = ((hits[sel] - replicates * p[sel]) ** 2 / (replicates * p[sel] * (1 - p[sel]))).sum()
    assert abs(chi2 / sel.sum() - 1) < 6 * np.sqrt(2 / sel.sum())


def test_the_order_of_events_carries_the_signal(history: tuple[ShopSimulator, pa.Table, pa.Table, pa.Table]) -> None:
    _, past, truth, _ = history
    cut = START + dt.timedelta(days=20)
    adds = past.filter(pc.equal(past["event_type"], "cart_add"))
    per_profile = adds.group_by("profile_id").aggregate([("ts", "max")])
    days_ago = [(cut - ts.date()).days for ts in per_profile["ts_max"].to_pylist()]
    p_of = dict(zip(truth["profile_id"].to_pylist(), truth["p_order_7d"].to_pylist(), strict=True))
    recent = [p_of[pid] for pid, d in zip(per_profile["profile_id"].to_pylist(), days_ago, strict=True) if d < 2]
    stale = [p_of[pid] for pid, d in zip(per_profile["profile_id"].to_pylist(), days_ago, strict=True) if d > 14]
    assert len(recent) > 50 and len(stale) > 50
    # Same event type, different recency: a cart from yesterday means far more than one from weeks ago.
    assert np.mean(recent) > 3 * np.mean(stale)


def test_transition_rows_are_distributions_and_leave_matches_them() -> None:
    params = ShopParams()
    rng = np.random.default_rng(0)
    n = 1000
    rates = DayRates(
        start=rng.uniform(0, 0.6, n),
        conversion=rng.uniform(0, 1, n),
        churn=rng.uniform(0.001, 0.05, n),
        wake=0.02,
        revisit=0.06,
    )
    for source in (LAPSED, DORMANT, DORMANT_CART, MISSION, CART):
        rows = rows_from(source, rates, params)
        assert rows.shape == (6, n) and (rows >= 0).all()
        np.testing.assert_allclose(rows.sum(axis=0), 1.0)
        if source in (LAPSED, DORMANT, DORMANT_CART):  # the sampler's shortcut for the big states
            np.testing.assert_allclose(_leave(source, rates, params), 1 - rows[source])


def test_ordered_profiles_counts_order_events_in_the_window_only() -> None:
    def ev(pid: str, day: int, kind: str) -> dict[str, object]:
        ts = dt.datetime(2026, 1, day, 12, tzinfo=dt.UTC)
        return {"event_id": f"{pid}{day}{kind}", "profile_id": pid, "session_id": "s", "ts": ts, "event_type": kind}

    from consumer_assets.events.schema import RAW_EVENTS_SCHEMA

    rows = [
        ev("a", 5, "order"),
        ev("b", 4, "order"),
        ev("c", 6, "cart_add"),
        ev("d", 11, "order"),
        ev("e", 12, "order"),
    ]
    table = pa.Table.from_pylist(rows, schema=RAW_EVENTS_SCHEMA)
    window = (dt.date(2026, 1, 5), dt.date(2026, 1, 11))
    assert ordered_profiles(table, *window) == {"a", "d"}
    labels = order_labels(pa.array(["a", "b", "c", "d", "e", "f"]), table, *window)
    assert labels.tolist() == [True, False, False, True, False, False]

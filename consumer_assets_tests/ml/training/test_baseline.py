"""The legacy baseline: its hand-crafted features are what they say, and it learns from them."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from consumer_assets.events.schema import RAW_EVENTS_SCHEMA
from consumer_assets.histories import cutoff_ms, encode_histories
from consumer_assets.ml.model.inputs import SUMMARY_COLUMNS
from consumer_assets.ml.training.baseline import NO_EVENT_HOURS, LogisticBaseline, baseline_features, feature_names
from consumer_assets.ml.training.data import SequenceData
from consumer_assets.ml.training.metrics import auc
from consumer_assets.windows import HORIZON_DAYS
from consumer_assets_testing.simulated import simulate_histories

D = dt.date(2026, 7, 1)  # a Wednesday: the cut-off, 2026-07-02 00:00 UTC, is a Thursday
HOUR = 3_600_000


def one_history(events: list[tuple[str, float]], horizon_days: int = HORIZON_DAYS) -> SequenceData:
    c = cutoff_ms(D)
    table = pa.table(
        {
            "event_id": [f"e{i:03d}" for i in range(len(events))],
            "profile_id": ["p"] * len(events),
            "session_id": ["s"] * len(events),
            "ts": pa.array([c - round(age * HOUR) for _, age in events]).cast(pa.timestamp("ms", tz="UTC")),
            "event_type": [kind for kind, _ in events],
            "article_id": pa.nulls(len(events), pa.string()),
            "brand_id": pa.nulls(len(events), pa.string()),
            "category": pa.nulls(len(events), pa.string()),
            "price": pa.nulls(len(events), pa.float64()),
        },
        schema=RAW_EVENTS_SCHEMA,
    )
    (_, histories), *_ = encode_histories(table, [D], horizon_days=horizon_days)
    return SequenceData.from_batches(histories)


# 15 events in the 28 days (eligible), and a return and an order months before.
EVENTS = [("order", 2.0), ("cart_add", 30.0), ("product_view", 3.0), ("product_view", 100.0)]
EVENTS += [("product_view", 200.0)] + [("home_view", 500.0 + i / 60) for i in range(10)]
EVENTS += [("return", 60 * 24 + 5.0), ("order", 100 * 24 + 5.0)]


def features_of(data: SequenceData) -> dict[str, float]:
    return dict(zip(feature_names(bins=True), baseline_features(data, bins=True)[0], strict=True))


def test_features_count_and_time_each_action_type_over_the_whole_history() -> None:
    features = features_of(one_history(EVENTS))
    assert len(features) == baseline_features(one_history(EVENTS)).shape[1]
    counts = {
        (w, t): round(float(np.expm1(features[f"log_count_{w}_{t}"])))
        for w in ("24h", "168h", "672h", "history")
        for t in ("order", "product_view", "home_view", "cart_add", "return", "search")
    }
    assert counts == {
        ("24h", "order"): 1, ("24h", "product_view"): 1, ("24h", "home_view"): 0,
        ("24h", "cart_add"): 0, ("24h", "return"): 0, ("24h", "search"): 0,
        ("168h", "order"): 1, ("168h", "product_view"): 2, ("168h", "home_view"): 0,
        ("168h", "cart_add"): 1, ("168h", "return"): 0, ("168h", "search"): 0,
        ("672h", "order"): 1, ("672h", "product_view"): 3, ("672h", "home_view"): 10,
        ("672h", "cart_add"): 1, ("672h", "return"): 0, ("672h", "search"): 0,
        # The whole history reaches back over the horizon: the return and the older order count.
        ("history", "order"): 2, ("history", "product_view"): 3, ("history", "home_view"): 10,
        ("history", "cart_add"): 1, ("history", "return"): 1, ("history", "search"): 0,
    }  # fmt: skip
    since = {t: float(np.expm1(features[f"log_hours_since_{t}"])) for t in ("order", "product_view", "return")}
    assert since == pytest.approx({"order": 2.0, "product_view": 3.0, "return": 60 * 24 + 5.0}, rel=1e-4)
    assert float(np.expm1(features["log_hours_since_search"])) == pytest.approx(NO_EVENT_HOURS)
    assert features["order_within_24h"] == 1 and features["order_within_1h"] == 0
    assert features["home_view_within_336h"] == 0 and features["home_view_within_672h"] == 1
    assert features["return_within_672h"] == 0 and features["return_within_2160h"] == 1
    # The horizon's summaries, as the history carries them (days count from D).
    summaries = {name: round(float(np.expm1(features[f"log_{name}"]))) for name in SUMMARY_COLUMNS}
    assert summaries == {
        "n_window_events": 17,
        "n_recent_events": 15,
        "active_days": summaries["active_days"],
        "days_since_first_event": 100,
        "n_orders": 2,
        "n_returns": 1,
        "days_since_last_order": 0,
        "days_since_last_return": 60,
    }
    assert features["no_days_since_last_order"] == 0 and features["no_days_since_last_return"] == 0
    assert features["weekday_3"] == 1 and sum(features[f"weekday_{d}"] for d in range(7)) == 1
    # The last event, 2 h before midnight: 22:00, in the 20-24 h bin.
    assert features["last_hour_20_24"] == 1
    assert float(np.expm1(features["log_hours_since_last_event"])) == pytest.approx(2.0, rel=1e-5)


def test_features_over_28_days_know_nothing_older() -> None:
    features = features_of(one_history(EVENTS, horizon_days=28))
    assert float(np.expm1(features["log_count_history_return"])) == pytest.approx(0.0)
    assert float(np.expm1(features["log_count_history_order"])) == pytest.approx(1.0)
    assert float(np.expm1(features["log_n_window_events"])) == pytest.approx(15.0)
    # No return in the horizon: null, entered as 0 with its indicator set.
    assert features["log_days_since_last_return"] == 0.0 and features["no_days_since_last_return"] == 1.0
    assert float(np.expm1(features["log_hours_since_return"])) == pytest.approx(NO_EVENT_HOURS)


def test_baseline_learns_from_simulated_histories() -> None:
    sim = simulate_histories(4000, 8, [D - dt.timedelta(days=1), D])
    train, valid = SequenceData.from_batches(sim.reader()).split(0.4)
    p = LogisticBaseline().fit(train).predict(valid)
    assert p.shape == (len(valid),) and ((p > 0) & (p < 1)).all()
    assert auc(valid.label, p) > 0.7
    assert abs(p.mean() - train.label.mean()) < 0.02

"""The legacy baseline: its hand-crafted features are what they say, and it learns from them."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from consumer_assets.events.schema import RAW_EVENTS_SCHEMA
from consumer_assets.histories import cutoff_ms, encode_histories
from consumer_assets.ml.training.baseline import NO_EVENT_HOURS, LogisticBaseline, baseline_features, feature_names
from consumer_assets.ml.training.data import SequenceData
from consumer_assets.ml.training.metrics import auc
from consumer_assets_testing.simulated import simulate_histories

D = dt.date(2026, 7, 1)  # a Wednesday: the cut-off, 2026-07-02 00:00 UTC, is a Thursday
HOUR = 3_600_000


def one_history(events: list[tuple[str, float]]) -> SequenceData:
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
    (_, histories), *_ = encode_histories(table, [D])
    return SequenceData.from_batches(histories)


def test_features_count_and_time_each_action_type() -> None:
    events = [("order", 2.0), ("cart_add", 30.0), ("product_view", 3.0), ("product_view", 100.0)]
    events += [("product_view", 200.0)] + [("home_view", 500.0 + i / 60) for i in range(10)]
    data = one_history(events)
    features = dict(zip(feature_names(bins=True), baseline_features(data, bins=True)[0], strict=True))
    assert len(features) == baseline_features(data).shape[1]
    counts = {
        (w, t): round(float(np.expm1(features[f"log_count_{w}h_{t}"])))
        for w in (24, 168, 672)
        for t in ("order", "product_view", "home_view", "cart_add", "search")
    }
    assert counts == {
        (24, "order"): 1, (24, "product_view"): 1, (24, "home_view"): 0, (24, "cart_add"): 0, (24, "search"): 0,
        (168, "order"): 1, (168, "product_view"): 2, (168, "home_view"): 0, (168, "cart_add"): 1, (168, "search"): 0,
        (672, "order"): 1, (672, "product_view"): 3, (672, "home_view"): 10, (672, "cart_add"): 1, (672, "search"): 0,
    }  # fmt: skip
    since = {t: float(np.expm1(features[f"log_hours_since_{t}"])) for t in ("order", "product_view", "home_view")}
    assert since == pytest.approx({"order": 2.0, "product_view": 3.0, "home_view": 500.0}, rel=1e-4)
    assert float(np.expm1(features["log_hours_since_search"])) == pytest.approx(NO_EVENT_HOURS)
    assert features["order_within_24h"] == 1 and features["order_within_1h"] == 0
    assert features["home_view_within_336h"] == 0
    assert features["weekday_3"] == 1 and sum(features[f"weekday_{d}"] for d in range(7)) == 1
    # The last event, 2 h before midnight: 22:00, in the 20-24 h bin.
    assert features["last_hour_20_24"] == 1
    assert float(np.expm1(features["log_hours_since_last_event"])) == pytest.approx(2.0, rel=1e-5)


def test_baseline_learns_from_simulated_histories() -> None:
    sim = simulate_histories(4000, 8, [D - dt.timedelta(days=1), D])
    train, valid = SequenceData.from_batches(sim.reader()).split(0.4)
    p = LogisticBaseline().fit(train).predict(valid)
    assert p.shape == (len(valid),) and ((p > 0) & (p < 1)).all()
    assert auc(valid.label, p) > 0.7
    assert abs(p.mean() - train.label.mean()) < 0.02

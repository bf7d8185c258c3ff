"""prediction_quality through real Dagster runs: a day judged once its week has landed, and a sale week's miss."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from consumer_assets.assets.prediction_quality import prediction_quality
from consumer_assets.assets.predictions import predictions
from consumer_assets.simulation import Sale, ShopParams
from consumer_assets.storage.tables import TableStore
from consumer_assets_tests.support.model_shop import CUTOFFS, FAST, D, build_shop, materialize_day, train

pytestmark = pytest.mark.slow


def test_judges_a_day_once_its_week_has_landed(tmp_path) -> None:
    root = (tmp_path / "storage").as_uri()
    build_shop(root, [*CUTOFFS, D], event_days=13 + 7)  # histories of D, and raw_events through D+7
    assert train(root, D).success  # approved: the model in force on D
    instance = dg.DagsterInstance.ephemeral()
    assert materialize_day(root, [predictions], D, instance).success
    store = TableStore.at(root)
    table = store.read("predictions", [D])

    judged = materialize_day(root, [prediction_quality], D, instance)
    assert judged.success
    (quality,) = [m.metadata for m in judged.asset_materializations_for_node("prediction_quality")]
    assert quality["profiles"].value == table.num_rows
    assert quality["auc"].value > 0.65 and 0 < quality["nll"].value < 0.5
    assert quality["actual_orders"].value > 20
    assert 0.5 < quality["expected_orders"].value / quality["actual_orders"].value < 2
    assert len(quality["calibration"].value.records) == 10
    assert store.read("prediction_quality", [D])["actual_orders"].to_pylist() == [quality["actual_orders"].value]


def test_a_sale_sets_off_the_drift_check_and_quality_records_the_miss(tmp_path) -> None:
    # A model trained before a sale week; predictions for the 8 days before the sale and its first day.
    root = (tmp_path / "storage").as_uri()
    sale = Sale(D + dt.timedelta(days=9), days=7, lift=3.0, activity_lift=4.0)
    days = [D + dt.timedelta(days=k) for k in range(1, 10)]  # D+1 .. the sale's first day
    build_shop(root, [*CUTOFFS, D, *days], event_days=13 + 10 + 7, params=ShopParams(sale=sale))
    assert train(root, D, FAST.model_copy(update={"auc_margin": 1.0})).success  # approved: in force
    instance = dg.DagsterInstance.ephemeral()
    drift = {}
    for day in days:
        result = materialize_day(root, [predictions], day, instance)
        assert result.success
        drift[day] = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert all(drift[day]["input_drift"] for day in days[1:-1])  # ordinary days against ordinary days
    assert not drift[sale.start]["input_drift"]  # the sale's first day against the 7 before it

    def orders_ratio(day: dt.date) -> float:
        judged = materialize_day(root, [prediction_quality], day, instance)
        assert judged.success
        (meta,) = [m.metadata for m in judged.asset_materializations_for_node("prediction_quality")]
        return meta["orders_ratio"].value  # actual / expected ordering profiles

    # A day whose week is before the sale: about as many orders as expected; the sale's week: far more.
    assert orders_ratio(D + dt.timedelta(days=1)) < 1.5 < 2.0 < orders_ratio(sale.start)

"""predictions and prediction_quality through real Dagster runs on Delta storage, with a trained, approved model."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import numpy as np
import pyarrow as pa
import pytest

from consumer_assets.assets.consumer_histories import consumer_histories
from consumer_assets.assets.prediction_quality import prediction_quality
from consumer_assets.assets.predictions import PredictionsConfig, predictions
from consumer_assets.assets.raw_events import raw_events
from consumer_assets.assets.trained_lstm_model import trained_lstm_model
from consumer_assets.ml.model.artifact import ModelArtifact
from consumer_assets.ml.monitoring.drift import Summary
from consumer_assets.ml.monitoring.explain import TOP_EVENTS
from consumer_assets.ml.scoring.predict import predict
from consumer_assets.ml.training.data import SequenceData
from consumer_assets.resources.landing import LandingZone
from consumer_assets.resources.spark import SparkResource
from consumer_assets.resources.storage import storage_resources
from consumer_assets.simulation import Sale, ShopParams
from consumer_assets.storage.registry import ModelRegistry
from consumer_assets.storage.tables import TableStore
from consumer_assets.storage.writes import write_dates
from consumer_assets_tests.support.model_shop import CUTOFFS, FAST, D, build_shop, train

pytestmark = pytest.mark.slow
ASSETS = [predictions, prediction_quality, trained_lstm_model, consumer_histories, raw_events]


def run(
    root: str, selection: list, day: dt.date, instance: dg.DagsterInstance, on_spark: bool = False
) -> dg.ExecuteInProcessResult:
    config = {"predictions": PredictionsConfig(on_spark=True)} if on_spark else {}
    return dg.materialize(
        ASSETS,
        selection=selection,
        resources={**storage_resources(root), "spark": SparkResource(master="local[2]"), "landing": LandingZone()},
        partition_key=day.isoformat(),
        instance=instance,
        run_config=dg.RunConfig(ops=config),
        raise_on_error=False,
    )


def test_no_approved_model_is_a_clear_failure(tmp_path) -> None:
    root = (tmp_path / "storage").as_uri()
    schema = pa.schema([("profile_id", pa.string())])
    write_dates(
        TableStore.at(root), "consumer_histories", {D.isoformat(): pa.table({"profile_id": ["p"]})}, schema=schema
    )
    result = run(root, [predictions], D, dg.DagsterInstance.ephemeral())
    assert not result.success
    assert f"no trained_lstm_model trained on or before {D} has been approved" in str(
        result.failure_data_for_node("predictions").error
    )


def test_scores_explains_and_judges_a_day(tmp_path) -> None:
    root = (tmp_path / "storage").as_uri()
    build_shop(root, [*CUTOFFS, D], event_days=13 + 7)  # histories of D, and raw_events through D+7
    assert train(root, D).success  # approved: the model in force on D
    instance = dg.DagsterInstance.ephemeral()
    scored = run(root, [predictions], D, instance)
    assert scored.success
    (meta,) = [m.metadata for m in scored.asset_materializations_for_node("predictions")]
    store = TableStore.at(root)
    table = store.read("predictions", [D])
    histories = store.read("consumer_histories", [D])
    assert table.num_rows == histories.num_rows == meta["profiles"].value
    assert set(table["model_version"].to_pylist()) == {meta["model_version"].value} == {f"{D}/v1"}
    assert meta["expected_orders"].value == pytest.approx(float(np.sum(table["probability"].to_numpy())), rel=1e-4)
    deciles = [meta[f"score_p{10 * i}"].value for i in range(1, 10)]
    assert deciles == sorted(deciles) and 0 < deciles[0] < deciles[-1] < 1

    # The same probabilities as the approved model scoring the histories directly.
    registry = ModelRegistry(storage_resources(root)["storage"].artifacts(), "trained_lstm_model")
    model = ModelArtifact.from_files(registry.load(registry.require_in_force(D).version)).model
    direct = predict(model, SequenceData.from_batches(histories.to_batches(), label_column="", cutoff_column=""))
    by_profile = dict(zip(histories["profile_id"].to_pylist(), direct.tolist(), strict=True))
    got = dict(zip(table["profile_id"].to_pylist(), table["probability"].to_pylist(), strict=True))
    assert all(abs(got[p] - by_profile[p]) < 1e-5 for p in got)
    explanations = table["explanations"].to_pylist()
    assert all(0 < len(e) <= TOP_EVENTS for e in explanations)
    first = explanations[0]
    assert [abs(x["change"]) for x in first] == sorted((abs(x["change"]) for x in first), reverse=True)
    assert Summary.from_dict(meta["histories_summary"].value).n == table.num_rows
    checks = {e.check_name: e for e in scored.get_asset_check_evaluations()}
    assert set(checks) == {"input_drift", "score_drift"} and checks["input_drift"].partition == str(D)
    assert checks["input_drift"].severity == dg.AssetCheckSeverity.WARN

    # The same scores from one Spark task per profile bucket, committed as a new version.
    assert run(root, [predictions], D, dg.DagsterInstance.ephemeral(), on_spark=True).success
    on_spark = store.read("predictions", [D])
    again = dict(zip(on_spark["profile_id"].to_pylist(), on_spark["probability"].to_pylist(), strict=True))
    assert again.keys() == got.keys() and all(abs(again[p] - got[p]) < 1e-6 for p in got)

    judged = run(root, [prediction_quality], D, instance)
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
        result = run(root, [predictions], day, instance)
        assert result.success
        drift[day] = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert all(drift[day]["input_drift"] for day in days[1:-1])  # ordinary days against ordinary days
    assert not drift[sale.start]["input_drift"]  # the sale's first day against the 7 before it

    def orders_ratio(day: dt.date) -> float:
        judged = run(root, [prediction_quality], day, instance)
        assert judged.success
        (meta,) = [m.metadata for m in judged.asset_materializations_for_node("prediction_quality")]
        return meta["orders_ratio"].value  # actual / expected ordering profiles

    # A day whose week is before the sale: about as many orders as expected; the sale's week: far more.
    assert orders_ratio(D + dt.timedelta(days=1)) < 1.5 < 2.0 < orders_ratio(sale.start)

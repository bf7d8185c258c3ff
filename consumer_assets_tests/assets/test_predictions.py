"""predictions through real Dagster runs on Delta storage, with a trained, approved model."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from consumer_assets.assets.predictions import comparable_summaries, predictions
from consumer_assets.cli import main
from consumer_assets.ml.model.artifact import ModelArtifact
from consumer_assets.ml.monitoring.drift import Summary
from consumer_assets.ml.monitoring.explain import TOP_EVENTS
from consumer_assets.ml.scoring.predict import predict
from consumer_assets.ml.training.data import SequenceData
from consumer_assets.resources.storage import storage_resources
from consumer_assets.storage.registry import ModelRegistry
from consumer_assets.storage.tables import TableStore
from consumer_assets.storage.writes import write_dates
from consumer_assets_tests.support.model_shop import CUTOFFS, D, build_shop, materialize_day, train

pytestmark = pytest.mark.slow


def test_no_approved_model_is_a_clear_failure(tmp_path) -> None:
    root = (tmp_path / "storage").as_uri()
    schema = pa.schema([("profile_id", pa.string())])
    write_dates(
        TableStore.at(root), "consumer_histories", {D.isoformat(): pa.table({"profile_id": ["p"]})}, schema=schema
    )
    result = materialize_day(root, [predictions], D, dg.DagsterInstance.ephemeral())
    assert not result.success
    assert f"no trained_lstm_model trained on or before {D} has been approved" in str(
        result.failure_data_for_node("predictions").error
    )


def test_scores_and_explains_a_day(tmp_path) -> None:
    root = (tmp_path / "storage").as_uri()
    build_shop(root, [*CUTOFFS, D], event_days=13 + 7)  # histories of D, and raw_events through D+7
    assert train(root, D).success  # approved: the model in force on D
    instance = dg.DagsterInstance.ephemeral()
    scored = materialize_day(root, [predictions], D, instance)
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

    # The metadata shows the most likely buyers and a histogram of the scores, not raw JSON.
    best = sorted(got.items(), key=lambda kv: (-kv[1], kv[0]))
    shown_rows = meta["top_profiles"].value.splitlines()[2:]
    assert [row.split("|")[1].strip() for row in shown_rows] == [p for p, _ in best[:10]]
    assert all(" before (" in row for row in shown_rows)
    histogram = meta["score_histogram"].value.records
    assert sum(r.data["profiles"] for r in histogram) == table.num_rows
    assert histogram[0].data["from"] == 0.0 and histogram[-1].data["to"] >= best[0][1] > histogram[-1].data["from"]

    # The command that shows them: the top profiles, highest first, each with its explaining events in words.
    shown = CliRunner().invoke(main, ["predictions", "--day", str(D), "--top", "3", "--storage", root])
    assert shown.exit_code == 0, shown.output
    header, *lines = shown.output.splitlines()
    assert header == f"predictions of {D}: the top 3 of {table.num_rows} profiles, model {D}/v1"
    assert [line.split()[1:3] for line in lines] == [[p, f"{q:.3f}"] for p, q in best[:3]]
    assert all(" before (" in line for line in lines)
    missing = CliRunner().invoke(main, ["predictions", "--day", str(D + dt.timedelta(days=1)), "--storage", root])
    assert missing.exit_code != 0 and f"no predictions of {D + dt.timedelta(days=1)}" in missing.output

    # The same scores from one Spark task per profile bucket, committed as a new version.
    assert materialize_day(root, [predictions], D, dg.DagsterInstance.ephemeral(), on_spark=True).success
    on_spark = store.read("predictions", [D])
    again = dict(zip(on_spark["profile_id"].to_pylist(), on_spark["probability"].to_pylist(), strict=True))
    assert again.keys() == got.keys() and all(abs(again[p] - got[p]) < 1e-6 for p in got)


def test_drift_skips_trailing_days_summarised_in_older_bins() -> None:
    today = Summary.empty("scores").to_dict()
    older = {**today, "version": today["version"] - 1}
    trailing = [{"scores_summary": older}, {"scores_summary": today}]
    kept = comparable_summaries(trailing, "scores_summary")
    assert len(kept) == 1 and kept[0].kind == "scores"
    with pytest.raises(ValueError, match="not a version"):
        Summary.from_dict(older)  # what reading the older day would have done

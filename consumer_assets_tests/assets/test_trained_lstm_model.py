"""trained_lstm_model through real Dagster runs on Delta storage: training, checks, approval, warm start."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from consumer_assets.ml.model.artifact import ModelArtifact
from consumer_assets.resources.storage import storage_resources
from consumer_assets.storage.registry import ModelRegistry
from consumer_assets.storage.tables import TableStore
from consumer_assets_tests.support.model_shop import ONE_DAY, D, build_shop, train, write_raw_events

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, pa.Table]:
    root = tmp_path_factory.mktemp("storage").as_uri()
    return root, build_shop(root)


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_trains_validates_approves_then_refuses_a_model_of_shuffled_labels(shop: tuple[str, pa.Table]) -> None:
    root, events = shop
    registry = ModelRegistry(storage_resources(root)["storage"].artifacts(), "trained_lstm_model")
    first = train(root, D)
    assert first.success
    (meta,) = [m.metadata for m in first.asset_materializations_for_node("trained_lstm_model")]
    assert meta["lstm_auc"].value > 0.7 and meta["baseline_auc"].value > 0.7
    assert meta["lstm_histories"].value > 1000 and meta["approved"].value is True
    assert meta["warm_started"].value is False and meta["compared_with"].value == "none"
    evaluated = checks(first)
    assert set(evaluated) == {"auc_above_floor", "auc_not_below_baseline", "nll_not_worse_than_approved"}
    assert all(e.passed and e.partition == D.isoformat() for e in evaluated.values())
    in_force = registry.require_in_force(D)
    assert in_force.version.partition == D.isoformat()
    model = ModelArtifact.from_files(registry.load(in_force.version))  # weights-only, checksummed
    assert model.config.hidden == 16

    # The shop's orders of D-11..D+1 reassigned to random profiles: the labels of D+1's training are noise.
    rng = np.random.default_rng(0)
    orders = pc.equal(events["event_type"], "order").to_numpy(zero_copy_only=False)
    profiles = events["profile_id"].to_numpy(zero_copy_only=False).copy()
    profiles[orders] = rng.permutation(np.unique(profiles))[: orders.sum()]
    shuffled = events.set_column(events.schema.get_field_index("profile_id"), "profile_id", pa.array(profiles))
    write_raw_events(TableStore.at(root), shuffled, [D - dt.timedelta(days=k) for k in range(11, -2, -1)])

    second = train(root, D + dt.timedelta(days=1))
    (meta,) = [m.metadata for m in second.asset_materializations_for_node("trained_lstm_model")]
    assert meta["warm_started"].value is True and meta["compared_with"].value == in_force.label
    assert meta["approved"].value is False and meta["lstm_auc"].value < 0.6
    evaluated = checks(second)
    # On noise labels the baseline is no better, so the floor is what stops this model.
    assert not evaluated["auc_above_floor"].passed and evaluated["auc_above_floor"].partition == str(D + ONE_DAY)
    assert evaluated["auc_above_floor"].severity == dg.AssetCheckSeverity.ERROR  # blocking
    assert not second.success  # a failed blocking check fails the run
    # Published, but not in force: the first model still is, for D+1 too.
    assert registry.artifacts.latest("trained_lstm_model", (D + dt.timedelta(days=1)).isoformat()) is not None
    assert registry.require_in_force(D + dt.timedelta(days=1)) == in_force

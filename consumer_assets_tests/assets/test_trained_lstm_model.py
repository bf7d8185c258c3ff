"""trained_lstm_model: its run config against LstmConfig, and real Dagster runs on Delta storage (training,
checks, approval, warm start, one verdict everywhere)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from consumer_assets.assets.trained_lstm_model import (
    GATE_FIELDS,
    MODEL_CHECKS,
    NOT_OFFERED,
    RUNTIME_FIELDS,
    TrainingConfig,
    offered_lstm_fields,
)
from consumer_assets.ml.model.artifact import ModelArtifact
from consumer_assets.ml.model.config import LstmConfig
from consumer_assets.ml.training.gate import CHECK_NAMES, VS_APPROVED, Tolerances
from consumer_assets.resources.storage import storage_resources
from consumer_assets.storage.registry import ModelRegistry
from consumer_assets.storage.tables import TableStore
from consumer_assets_tests.support.model_shop import FAST, ONE_DAY, D, build_shop, train, write_raw_events

# Tolerances unlike Tolerances' defaults: the verdict everywhere must be judged with these.
CONFIGURED = FAST.model_copy(update={"nll_tolerance": 0.01, "ece_tolerance": 0.004, "mean_gap_tolerance": 0.005})


def test_every_lstm_config_field_is_offered_or_deliberately_not() -> None:
    offered = offered_lstm_fields()
    lstm = {f.name for f in dataclasses.fields(LstmConfig)}
    assert set(offered) | set(NOT_OFFERED) == lstm and not set(offered) & set(NOT_OFFERED)
    assert set(TrainingConfig.model_fields) == set(offered) | set(GATE_FIELDS) | set(RUNTIME_FIELDS)
    # Defaults come from the dataclasses: an untouched run config is LstmConfig() and Tolerances().
    assert TrainingConfig().lstm() == LstmConfig() and TrainingConfig().tolerances() == Tolerances()
    assert FAST.lstm() == dataclasses.replace(LstmConfig(), hidden=16, epochs=6, batch_size=64, warmup_steps=20)
    assert CONFIGURED.tolerances() == Tolerances(
        auc_floor=0.6, auc_margin=0.1, nll_tolerance=0.01, ece_tolerance=0.004, mean_gap_tolerance=0.005
    )
    # Every check the gate judges is a blocking check of the asset, and no other.
    assert [spec.name for spec in MODEL_CHECKS] == list(CHECK_NAMES)
    assert all(spec.blocking for spec in MODEL_CHECKS)


def test_a_field_on_one_side_only_is_refused() -> None:
    # An LstmConfig field that the run config neither offers nor lists as not offered.
    with pytest.raises(ValueError, match=r"LstmConfig\.final_lr_factor is neither offered nor in NOT_OFFERED"):
        offered_lstm_fields(TrainingConfig, NOT_OFFERED[1:])
    with pytest.raises(ValueError, match=r"LstmConfig has no field warmup \(NOT_OFFERED\)"):
        offered_lstm_fields(TrainingConfig, (*NOT_OFFERED, "warmup"))

    class Misspelt(TrainingConfig):
        warmup_step: int = 10  # no such LstmConfig field: never silently dropped

    with pytest.raises(ValueError, match=r"TrainingConfig\.warmup_step is no LstmConfig field"):
        Misspelt().lstm()

    class OwnDefault(TrainingConfig):
        hidden: int = 99  # a second source of the default

    with pytest.raises(ValueError, match=r"TrainingConfig\.hidden defaults to 99, its source to 32"):
        OwnDefault().lstm()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, pa.Table]:
    root = tmp_path_factory.mktemp("storage").as_uri()
    return root, build_shop(root)


def checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def one_verdict(result: dg.ExecuteInProcessResult, registry: ModelRegistry, day: dt.date) -> dict[str, Any]:
    """The verdict stored with the day's model, after checking that the asset's checks and the
    approval record (if any) show exactly it, judged with CONFIGURED's tolerances."""
    version = registry.artifacts.latest("trained_lstm_model", day.isoformat())
    assert version is not None
    stored = json.loads(registry.load(version)["metrics.json"])["verdict"]
    assert stored["tolerances"] == CONFIGURED.tolerances().to_dict()
    evaluated = checks(result)
    assert {name: (e.passed, e.description) for name, e in evaluated.items()} == {
        name: (c["passed"], c["reason"]) for name, c in stored["checks"].items()
    }
    assert evaluated["auc_not_below_baseline"].metadata["tolerance"].value == CONFIGURED.auc_margin
    for check, _, field in VS_APPROVED:
        if "tolerance" in evaluated[check].metadata:
            assert evaluated[check].metadata["tolerance"].value == getattr(CONFIGURED, field)
    (meta,) = [m.metadata for m in result.asset_materializations_for_node("trained_lstm_model")]
    assert meta["approved"].value is stored["approved"] is all(e.passed for e in evaluated.values())
    # The model is named the way the predictions made with it name it.
    assert meta["model_version"].value == version.label == f"{day}/v{version.number}"
    approvals = [r for r in registry.approvals.records() if (r["partition"], r["version"]) == (day.isoformat(), 1)]
    if stored["approved"]:
        (record,) = approvals
        passed = {name: {"passed": True, "reason": c["reason"]} for name, c in stored["checks"].items()}
        assert record["checks"] == passed
        assert record["details"]["tolerances"] == stored["tolerances"]
        assert record["checksum"] == version.checksum
    else:
        assert approvals == []
    return stored


@pytest.mark.slow
def test_trains_validates_approves_then_refuses_a_model_of_shuffled_labels(shop: tuple[str, pa.Table]) -> None:
    root, events = shop
    registry = ModelRegistry(storage_resources(root)["storage"].artifacts(), "trained_lstm_model")
    first = train(root, D, CONFIGURED)
    assert first.success
    assert one_verdict(first, registry, D)["approved"] is True
    (meta,) = [m.metadata for m in first.asset_materializations_for_node("trained_lstm_model")]
    assert meta["lstm_auc"].value > 0.65 and meta["baseline_auc"].value > 0.7
    assert meta["lstm_histories"].value > 1000 and meta["approved"].value is True
    assert meta["warm_started"].value is False and meta["compared_with"].value == "none"
    assert meta["warm_start_fell_back"].value is False and meta["judged_start"].value == "cold"
    # The judged model's learning curve, a table row per epoch (each epoch is also logged as it ends).
    curve = meta["learning_curve"].value.splitlines()
    assert curve[0].startswith("| epoch | training loss") and len(curve) == 2 + meta["epochs"].value
    assert [row.split("|")[1].strip() for row in curve[2:]] == [str(k + 1) for k in range(int(meta["epochs"].value))]
    evaluated = checks(first)
    assert set(evaluated) == set(CHECK_NAMES)
    assert all(e.passed and e.partition == D.isoformat() for e in evaluated.values())
    in_force = registry.require_in_force(D)
    assert in_force.version.partition == D.isoformat()
    model = ModelArtifact.from_files(registry.load(in_force.version))  # weights-only, checksummed
    assert model.config.hidden == 16

    # The shop's orders of D-11..D+1 reassigned to random profiles, at most one each (more orders than
    # profiles: a random subset of them): the labels of D+1's training are noise, and a profile's order
    # in its history says nothing of one in its label week.
    rng = np.random.default_rng(0)
    orders = np.flatnonzero(pc.equal(events["event_type"], "order").to_numpy(zero_copy_only=False))
    profiles = events["profile_id"].to_numpy(zero_copy_only=False).copy()
    everyone = rng.permutation(np.unique(profiles))
    kept = np.sort(rng.permutation(orders)[: len(everyone)])
    profiles[kept] = everyone[: len(kept)]
    keep = np.ones(len(profiles), dtype=bool)
    keep[np.setdiff1d(orders, kept)] = False
    shuffled = events.set_column(events.schema.get_field_index("profile_id"), "profile_id", pa.array(profiles))
    shuffled = shuffled.filter(pa.array(keep))
    write_raw_events(TableStore.at(root), shuffled, [D - dt.timedelta(days=k) for k in range(11, -2, -1)])

    second = train(root, D + dt.timedelta(days=1), CONFIGURED)
    verdict = one_verdict(second, registry, D + ONE_DAY)
    assert verdict["approved"] is False and verdict["checks"]["auc_above_floor"]["passed"] is False
    assert "of approved " + in_force.label in verdict["checks"]["nll_not_worse_than_approved"]["reason"]
    (meta,) = [m.metadata for m in second.asset_materializations_for_node("trained_lstm_model")]
    assert meta["warm_started"].value is True and meta["compared_with"].value == in_force.label
    assert meta["judged_start"].value == ("cold" if meta["warm_start_fell_back"].value else "warm")
    assert meta["approved"].value is False and meta["lstm_auc"].value < 0.6
    evaluated = checks(second)
    # On noise labels the baseline is no better, so the floor is what stops this model.
    assert not evaluated["auc_above_floor"].passed and evaluated["auc_above_floor"].partition == str(D + ONE_DAY)
    assert evaluated["auc_above_floor"].severity == dg.AssetCheckSeverity.ERROR  # blocking
    assert not second.success  # a failed blocking check fails the run
    # Published, but not in force: the first model still is, for D+1 too.
    assert registry.artifacts.latest("trained_lstm_model", (D + dt.timedelta(days=1)).isoformat()) is not None
    assert registry.require_in_force(D + dt.timedelta(days=1)) == in_force

"""trained_lstm_model through real Dagster runs on Delta storage: training, checks, approval, warm start.

The inputs are written the way their assets store them (raw_events bucketed by profile, histories
from the encoder the Spark job runs) from a small simulated shop, so the test needs no Spark.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from consumer_assets.assets.consumer_histories import consumer_histories
from consumer_assets.assets.raw_events import raw_events
from consumer_assets.assets.trained_lstm_model import TrainingConfig, trained_lstm_model
from consumer_assets.events.bucketing import profile_bucket
from consumer_assets.events.schema import RAW_EVENTS_SCHEMA
from consumer_assets.histories import HISTORIES_SCHEMA
from consumer_assets.ingest.layout import bucketed
from consumer_assets.ml import ModelArtifact
from consumer_assets.ml.simulated import simulate_histories
from consumer_assets.resources.landing import LandingZone
from consumer_assets.resources.spark import SparkResource
from consumer_assets.resources.storage import storage_resources
from consumer_assets.storage.registry import ModelRegistry
from consumer_assets.storage.tables import TableStore

pytestmark = pytest.mark.slow

D = dt.date(2026, 5, 20)  # the first day trained; D+1 the second
CUTOFFS = [D - dt.timedelta(days=k) for k in range(13, 5, -1)]  # D-13 .. D-6: both days' training cut-offs
ONE_DAY = dt.timedelta(days=1)
FAST = TrainingConfig(hidden=16, epochs=6, batch_size=64, warmup_steps=20, auc_floor=0.6)


def write_raw_events(store: TableStore, events: pa.Table, days: list[dt.date]) -> None:
    write = store.begin("raw_events", RAW_EVENTS_SCHEMA, ("date", "profile_bucket"))
    day_of = pc.cast(pc.cast(events["ts"], pa.timestamp("ms")), pa.date32())
    for day in days:
        of_day = events.filter(pc.equal(day_of, pa.scalar(day, pa.date32())))
        for bucket, part in enumerate(bucketed(of_day)):
            write.write_file(part, {"date": day, "profile_bucket": bucket})
    write.commit(days)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, pa.Table]:
    root = tmp_path_factory.mktemp("storage").as_uri()
    simulated = simulate_histories(4000, 3, CUTOFFS)
    store = TableStore.at(root)
    events = simulated.events.cast(RAW_EVENTS_SCHEMA)
    write_raw_events(store, events, [D - dt.timedelta(days=k) for k in range(12, -2, -1)])
    histories = simulated.histories
    write = store.begin("consumer_histories", HISTORIES_SCHEMA, ("date", "profile_bucket"))
    buckets = profile_bucket(histories["profile_id"])
    for day in CUTOFFS:
        for bucket in range(8):
            mask = pc.and_(pc.equal(histories["date"], pa.scalar(day, pa.date32())), pa.array(buckets == bucket))
            write.write_file(histories.filter(mask), {"date": day, "profile_bucket": bucket})
    write.commit(CUTOFFS)
    return root, events


def train(root: str, day: dt.date, config: TrainingConfig = FAST) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [trained_lstm_model, consumer_histories, raw_events],
        selection=[trained_lstm_model],
        # Unselected upstream assets still need their resources bound; they are never used here.
        resources={**storage_resources(root), "spark": SparkResource(), "landing": LandingZone()},
        partition_key=day.isoformat(),
        run_config=dg.RunConfig(ops={"trained_lstm_model": config}),
        raise_on_error=False,
    )


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

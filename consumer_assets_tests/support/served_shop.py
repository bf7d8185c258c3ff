"""A small shop through the real chain for the scoring service: raw_events, an approved model, histories and
their state of two days by a real Spark run, and both days' batch predictions, in Delta storage.

The model is seeded, not trained (training has tests of its own; the service and the batch predictions only
need the same approved model): a training run would double the fixture's time."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pyarrow as pa
import torch

from consumer_assets.assets.consumer_histories import HistoriesConfig, consumer_histories
from consumer_assets.assets.predictions import predictions
from consumer_assets.assets.raw_events import raw_events
from consumer_assets.automation.jobs import RANGE_END, RANGE_START
from consumer_assets.ml.model.artifact import ModelArtifact
from consumer_assets.ml.model.config import LstmConfig
from consumer_assets.ml.model.network import EventLstm
from consumer_assets.resources.landing import LandingZone
from consumer_assets.resources.spark import SparkResource
from consumer_assets.resources.storage import storage_resources
from consumer_assets.storage.artifacts import ArtifactStore
from consumer_assets.storage.registry import ModelRegistry
from consumer_assets.storage.tables import TableStore
from consumer_assets_tests.support.model_shop import ONE_DAY, D, build_shop, materialize_day

# The histories' horizon: the eligibility window, the shortest allowed (the shop is younger anyway).
HORIZON = 28


@dataclass(frozen=True)
class ServedShop:
    root: str
    events: pa.Table  # every raw event written
    instance: dg.DagsterInstance
    # A copy of the storage as it was before day D+1 was committed: D is its latest day.
    before: Path

    @property
    def days(self) -> tuple[dt.date, dt.date]:
        """The two days served and scored in batch: D and D+1."""
        return D, D + ONE_DAY


def histories_run(root: str, first: dt.date, last: dt.date, instance: dg.DagsterInstance) -> None:
    result = dg.materialize(
        [consumer_histories, raw_events],
        selection=[consumer_histories],
        resources={**storage_resources(root), "spark": SparkResource(master="local[2]"), "landing": LandingZone()},
        instance=instance,
        tags={RANGE_START: str(first), RANGE_END: str(last)},
        run_config=dg.RunConfig(ops={"consumer_histories": HistoriesConfig(horizon_days=HORIZON)}),
    )
    assert result.success


def approve_model(root: str, day: dt.date, seed: int = 3) -> None:
    """A seeded, untrained model published as the model of `day` and approved."""
    torch.manual_seed(seed)
    registry = ModelRegistry(ArtifactStore(TableStore.at(root).location), "trained_lstm_model")
    model = EventLstm(LstmConfig(hidden=16)).eval()
    version = registry.publish(day, ModelArtifact(model).to_files(), {"served_shop": "seeded, untrained"})
    registry.approve(version, {"served_shop": {"passed": True, "reason": "the served shop's model"}})


def served_shop(folder: Path) -> ServedShop:
    """Under `folder`/storage: raw_events of D-12 .. D+1, a model of D approved, histories and state of D
    (from the horizon) and D+1 (continued from D's state, a run of its own), and predictions of D and D+1
    with the model of D; `folder`/before: the storage before D+1 was committed."""
    root = (folder / "storage").as_uri()
    events = build_shop(root)
    approve_model(root, D)
    instance = dg.DagsterInstance.ephemeral()
    histories_run(root, D, D, instance)
    shutil.copytree(folder / "storage", folder / "before")
    histories_run(root, D + ONE_DAY, D + ONE_DAY, instance)
    for day in (D, D + ONE_DAY):
        assert materialize_day(root, [predictions], day, instance).success
    return ServedShop(root, events, instance, folder / "before")


def replay_commits(source: Path, target: Path, tables: list[str]) -> None:
    """Commit into `target` what `source` committed since it was copied, table by table in this order: each
    table's new data files first, then its new Delta log entries in version order, as its writer put them."""
    for table in tables:
        new = sorted(p.relative_to(source) for p in (source / table).rglob("*") if p.is_file())
        new = [p for p in new if not (target / p).exists()]
        for path in sorted(new, key=lambda p: (p.parts[1] == "_delta_log", str(p))):
            (target / path).parent.mkdir(parents=True, exist_ok=True)
            partial = target / path.with_name(f".{path.name}.partial")
            shutil.copyfile(source / path, partial)
            os.replace(partial, target / path)  # readers see the whole file or none, as a commit's rename gives

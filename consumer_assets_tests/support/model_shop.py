"""A small simulated shop written into Delta storage the way its assets store it, for the model and predictions tests.

raw_events bucketed by profile, histories from the encoder the Spark job runs: no Spark needed.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from consumer_assets.assets.consumer_histories import consumer_histories
from consumer_assets.assets.prediction_quality import prediction_quality
from consumer_assets.assets.predictions import PredictionsConfig, predictions
from consumer_assets.assets.raw_events import raw_events
from consumer_assets.assets.trained_lstm_model import TrainingConfig, trained_lstm_model
from consumer_assets.events.bucketing import profile_bucket
from consumer_assets.events.schema import RAW_EVENTS_SCHEMA
from consumer_assets.histories import HISTORIES_SCHEMA
from consumer_assets.ingest.layout import bucketed
from consumer_assets.resources.landing import LandingZone
from consumer_assets.resources.spark import SparkResource
from consumer_assets.resources.storage import storage_resources
from consumer_assets.simulation import ShopParams
from consumer_assets.storage.tables import TableStore
from consumer_assets.storage.writes import TableWrite
from consumer_assets_testing.simulated import simulate_histories

D = dt.date(2026, 5, 20)  # the first day trained; D+1 the second
CUTOFFS = [D - dt.timedelta(days=k) for k in range(13, 5, -1)]  # D-13 .. D-6: both days' training cut-offs
ONE_DAY = dt.timedelta(days=1)
# A small network, briefly trained, on a 4,000-profile shop: enough to tell real labels from noise
# (AUC about 0.71 against 0.5), not to match the baseline, which on so few profiles wins by about
# 0.05 (at the quality bar's 45,000 profiles they tie). The margin lets such a model be approved;
# the gate's comparisons themselves are tested in ml/training/test_gate.py.
FAST = TrainingConfig(hidden=16, epochs=6, batch_size=64, warmup_steps=20, auc_floor=0.6, auc_margin=0.1)


def write_raw_events(store: TableStore, events: pa.Table, days: list[dt.date]) -> None:
    write = TableWrite(store, "raw_events", RAW_EVENTS_SCHEMA, ("date", "profile_bucket"))
    day_of = pc.cast(pc.cast(events["ts"], pa.timestamp("ms")), pa.date32())
    for day in days:
        of_day = events.filter(pc.equal(day_of, pa.scalar(day, pa.date32())))
        for bucket, part in enumerate(bucketed(of_day)):
            write.write_file(part, {"date": day, "profile_bucket": bucket})
    write.commit(days)


def build_shop(
    root: str, cutoffs: list[dt.date] = CUTOFFS, event_days: int = 14, params: ShopParams | None = None
) -> pa.Table:
    """Histories of `cutoffs` and raw_events of D-12 .. D-12+event_days-1 into `root`; returns the events."""
    simulated = simulate_histories(4000, 3, cutoffs, params)
    store = TableStore.at(root)
    events = simulated.events.cast(RAW_EVENTS_SCHEMA)
    write_raw_events(store, events, [D - dt.timedelta(days=12 - k) for k in range(event_days)])
    histories = simulated.histories
    write = TableWrite(store, "consumer_histories", HISTORIES_SCHEMA, ("date", "profile_bucket"))
    buckets = profile_bucket(histories["profile_id"])
    for day in cutoffs:
        for bucket in range(8):
            mask = pc.and_(pc.equal(histories["date"], pa.scalar(day, pa.date32())), pa.array(buckets == bucket))
            write.write_file(histories.filter(mask), {"date": day, "profile_bucket": bucket})
    write.commit(cutoffs)
    return events


def train(root: str, day: dt.date, config: TrainingConfig = FAST) -> dg.ExecuteInProcessResult:
    """A real run of trained_lstm_model for `day` (raises nothing: failed checks fail the run)."""
    return dg.materialize(
        [trained_lstm_model, consumer_histories, raw_events],
        selection=[trained_lstm_model],
        # Unselected upstream assets still need their resources bound; they are never used here.
        resources={**storage_resources(root), "spark": SparkResource(), "landing": LandingZone()},
        partition_key=day.isoformat(),
        run_config=dg.RunConfig(ops={"trained_lstm_model": config}),
        raise_on_error=False,
    )


CHAIN = [predictions, prediction_quality, trained_lstm_model, consumer_histories, raw_events]


def materialize_day(
    root: str, selection: list, day: dt.date, instance: dg.DagsterInstance, on_spark: bool = False
) -> dg.ExecuteInProcessResult:
    """Materialize `selection` (of the whole chain's assets) for one day on the storage at `root`."""
    config = {"predictions": PredictionsConfig(on_spark=True)} if on_spark else {}
    return dg.materialize(
        CHAIN,
        selection=selection,
        resources={**storage_resources(root), "spark": SparkResource(master="local[2]"), "landing": LandingZone()},
        partition_key=day.isoformat(),
        instance=instance,
        run_config=dg.RunConfig(ops=config),
        raise_on_error=False,
    )

"""Labelled histories from the shop simulator, with its exact order probabilities: tests and benchmarks.

The same path as production from raw events on: histories by the numpy encoder that the Spark
job runs, labels by `order_profiles` over the 7 days after each cut-off. The simulator adds the
ground truth, P(order in the 7 days after the cut-off) given the shopper's full latent state:
the best any model could do.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from consumer_assets.histories import encode_histories
from consumer_assets.ml.training.labels import order_profiles, with_labels
from consumer_assets.simulation import ShopParams, ShopSimulator
from consumer_assets.windows import HISTORY_DAYS, LABEL_DAYS


@dataclass(frozen=True)
class SimulatedHistories:
    """Histories of several cut-off days with a `date` (cut-off day) and a `label` column, and the truth."""

    histories: pa.Table
    truth: np.ndarray  # p_order_7d per history row
    events: pa.Table  # every simulated raw event

    def reader(self, max_chunksize: int = 8192) -> pa.RecordBatchReader:
        """The histories as a stream, as a Delta table scan would give them."""
        return pa.RecordBatchReader.from_batches(
            self.histories.schema, self.histories.to_batches(max_chunksize=max_chunksize)
        )


def simulate_histories(
    profiles: int, seed: int, cutoffs: list[dt.date], params: ShopParams | None = None
) -> SimulatedHistories:
    """Simulate from the first cut-off's window start to 7 days after the last cut-off (with `params`,
    say a sale, if given)."""
    days = sorted(set(cutoffs))
    start = days[0] - dt.timedelta(days=HISTORY_DAYS - 1)
    end = days[-1] + dt.timedelta(days=LABEL_DAYS)
    sim = ShopSimulator(profiles, seed, start, params)
    tables, truths = [], []
    while sim.day < end:
        tables.append(sim.step())
        if sim.day in days:
            truth = sim.ground_truth()
            truths.append(truth.append_column("date", pa.array([sim.day] * truth.num_rows, pa.date32())))
    events = pa.concat_tables(tables)
    parts = []
    for day, table in encode_histories(events, days):
        parts.append(table.append_column("date", pa.array([day] * table.num_rows, pa.date32())))
    histories = pa.concat_tables(parts)
    buyers = order_profiles(events.select(["profile_id", "ts", "event_type"]), days)
    histories = pa.Table.from_batches(list(with_labels(histories, buyers)))
    truth_table = pa.concat_tables(truths)
    joined = histories.select(["profile_id", "date"]).join(truth_table, ["profile_id", "date"], join_type="left outer")
    # join does not keep the row order: key both sides and align.
    key = pc.binary_join_element_wise(histories["profile_id"], pc.cast(histories["date"], pa.string()), "|")
    jkey = pc.binary_join_element_wise(joined["profile_id"], pc.cast(joined["date"], pa.string()), "|")
    position = pc.index_in(key, value_set=jkey).to_numpy(zero_copy_only=False)
    truth = joined["p_order_7d"].to_numpy()[position]
    return SimulatedHistories(histories=histories, truth=truth, events=events)

"""Labelled histories from the shop simulator, with its exact order probabilities: tests and benchmarks.

The same path as production from raw events on: histories by the numpy encoder that the Spark
job runs (histories.encode_histories, over a horizon of H days), labels by `order_profiles` over
the 7 days after each cut-off. The simulator adds the ground truth, P(order in the 7 days after
the cut-off) given the shopper's full latent state: the best any model could do.

The shop opens `warmup_days` before the first cut-off's horizon, so it is older than H and every
history can reach back over its whole horizon; `at_horizon` gives the same rows read over a
shorter horizon (the same events, the same eligible profiles), to compare horizons pairwise.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from consumer_assets.histories import encode_histories
from consumer_assets.ml.training.labels import order_profiles, with_labels
from consumer_assets.simulation import ShopParams, ShopSimulator
from consumer_assets.windows import HORIZON_DAYS, LABEL_DAYS, horizon


@dataclass(frozen=True)
class SimulatedHistories:
    """Histories of several cut-off days with a `date` (cut-off day) and a `label` column, and the truth."""

    histories: pa.Table
    truth: np.ndarray  # p_order_7d per history row
    events: pa.Table  # every simulated raw event
    horizon_days: int
    first_day: dt.date  # the shop's first simulated day

    def reader(self, max_chunksize: int = 8192) -> pa.RecordBatchReader:
        """The histories as a stream, as a Delta table scan would give them."""
        return pa.RecordBatchReader.from_batches(
            self.histories.schema, self.histories.to_batches(max_chunksize=max_chunksize)
        )

    @property
    def cutoffs(self) -> list[dt.date]:
        return sorted(pc.unique(self.histories["date"]).to_pylist())

    def at_horizon(self, horizon_days: int) -> SimulatedHistories:
        """The same rows (profiles, cut-off days, labels, truth, in the same order) over another horizon,
        which the simulated days must cover."""
        if horizon(horizon_days).first(self.cutoffs[0]) < self.first_day:
            raise ValueError(f"the shop opened on {self.first_day}: too late for a {horizon_days}-day horizon")
        histories = _labelled_histories(self.events, self.cutoffs, horizon_days)
        for key in ("profile_id", "date", "label"):
            if not histories[key].equals(self.histories[key]):
                raise AssertionError(f"histories over {horizon_days} days differ in {key}: eligibility changed")
        return replace(self, histories=histories, horizon_days=horizon_days)


def _labelled_histories(events: pa.Table, days: list[dt.date], horizon_days: int) -> pa.Table:
    parts = []
    for day, table in encode_histories(events, days, horizon_days):
        parts.append(table.append_column("date", pa.array([day] * table.num_rows, pa.date32())))
    histories = pa.concat_tables(parts)
    buyers = order_profiles(events.select(["profile_id", "ts", "event_type"]), days)
    return pa.Table.from_batches(list(with_labels(histories, buyers))).combine_chunks()


def simulate_histories(
    profiles: int,
    seed: int,
    cutoffs: list[dt.date],
    params: ShopParams | None = None,
    *,
    horizon_days: int = HORIZON_DAYS,
    warmup_days: int = 0,
) -> SimulatedHistories:
    """Simulate from `warmup_days` before the first cut-off's horizon of `horizon_days` days to 7 days
    after the last cut-off (with `params`, say a sale, if given)."""
    if warmup_days < 0:
        raise ValueError(f"warmup_days must be at least 0, got {warmup_days}")
    days = sorted(set(cutoffs))
    start = horizon(horizon_days).first(days[0]) - dt.timedelta(days=warmup_days)
    end = days[-1] + dt.timedelta(days=LABEL_DAYS)
    sim = ShopSimulator(profiles, seed, start, params)
    tables, truths = [], []
    while sim.day < end:
        tables.append(sim.step())
        if sim.day in days:
            truth = sim.ground_truth()
            truths.append(truth.append_column("date", pa.array([sim.day] * truth.num_rows, pa.date32())))
    events = pa.concat_tables(tables)
    histories = _labelled_histories(events, days, horizon_days)
    truth_table = pa.concat_tables(truths)
    joined = histories.select(["profile_id", "date"]).join(truth_table, ["profile_id", "date"], join_type="left outer")
    # join does not keep the row order: key both sides and align.
    key = pc.binary_join_element_wise(histories["profile_id"], pc.cast(histories["date"], pa.string()), "|")
    jkey = pc.binary_join_element_wise(joined["profile_id"], pc.cast(joined["date"], pa.string()), "|")
    position = pc.index_in(key, value_set=jkey).to_numpy(zero_copy_only=False)
    truth = joined["p_order_7d"].to_numpy()[position]
    return SimulatedHistories(histories, truth, events, horizon_days, start)

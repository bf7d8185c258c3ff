"""Storage for bench_serve.py: an approved (untrained, seeded) model and a histories state of N profiles.

    .venv/bin/python bench/serve_data.py ROOT --profiles N

A simulated shop's state of one day over the 180-day horizon (histories.state.advance from nothing,
as the histories job builds a first day), its rows repeated under new ids up to N profiles, written
bucket by bucket as consumer_histories_state and committed with a consumer_histories commit naming
it, as consumer_histories commits them; memory is one bucket's rows.
"""

from __future__ import annotations

import argparse
import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
import torch

from consumer_assets.events.bucketing import NUM_PROFILE_BUCKETS, profile_bucket
from consumer_assets.histories.encode import between, sort_events
from consumer_assets.histories.schema import HISTORIES_SCHEMA, cutoff_ms, state_schema
from consumer_assets.histories.state import State, advance, encode
from consumer_assets.ml.model.artifact import ModelArtifact
from consumer_assets.ml.model.config import LstmConfig
from consumer_assets.ml.model.network import EventLstm
from consumer_assets.storage.artifacts import ArtifactStore
from consumer_assets.storage.registry import ModelRegistry
from consumer_assets.storage.tables import BUCKETED, TableStore
from consumer_assets.storage.writes import TableWrite
from consumer_assets.windows import HORIZON_DAYS, horizon
from consumer_assets_testing.simulated import simulate_histories

DAY = dt.date(2026, 10, 30)
BASE_PROFILES = 5000


def base_state(profiles: int, seed: int) -> State:
    sim = simulate_histories(profiles, seed, [DAY])
    before = horizon(HORIZON_DAYS).first(DAY) - dt.timedelta(days=1)
    events = between(sort_events(sim.events), cutoff_ms(before), cutoff_ms(DAY))
    return advance(State.empty(before, HORIZON_DAYS), events, DAY)


def build(root: str, profiles: int, seed: int = 1) -> None:
    store = TableStore.at(root)
    base = base_state(min(profiles, BASE_PROFILES), seed)
    rows = base.to_table()
    copies = -(-profiles // len(rows))
    schema = state_schema(HORIZON_DAYS)
    state_write = TableWrite(store, "consumer_histories_state", schema, BUCKETED)
    for bucket in range(NUM_PROFILE_BUCKETS):
        parts = []
        for k in range(copies):
            n = min(len(rows), profiles - k * len(rows))
            part = rows.slice(0, n)
            ids = pc.binary_join_element_wise(pa.scalar(f"{k:05d}-"), part["profile_id"], "")
            part = part.set_column(0, "profile_id", ids)
            parts.append(part.filter(pa.array(profile_bucket(ids) == bucket)))
        table = pa.concat_tables(parts)
        table = table.take(pc.sort_indices(table["profile_id"]))
        state_write.write_file(table, {"date": DAY, "profile_bucket": bucket})
    state_commit = state_write.commit([DAY], {"bench": "serve"})
    histories = encode(base)
    write = TableWrite(store, "consumer_histories", HISTORIES_SCHEMA, BUCKETED)
    buckets = profile_bucket(histories["profile_id"])
    for bucket in range(NUM_PROFILE_BUCKETS):
        write.write_file(histories.filter(pa.array(buckets == bucket)), {"date": DAY, "profile_bucket": bucket})
    write.commit([DAY], {"bench": "serve", "state_version": state_commit.version}, state_commit)

    torch.manual_seed(seed)
    registry = ModelRegistry(ArtifactStore(store.location), "trained_lstm_model")
    version = registry.publish(DAY, ModelArtifact(EventLstm(LstmConfig()).eval()).to_files(), {"bench": "serve"})
    registry.approve(version, {"bench": {"passed": True, "reason": "an untrained model for the benchmark"}})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root")
    parser.add_argument("--profiles", type=int, default=20_000)
    args = parser.parse_args()
    build(args.root, args.profiles)

"""Inputs shared by the scoring tests: simulated histories, an untrained model that every input moves,
and the histories laid out as bucket files the way the histories job writes them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from consumer_assets.events.bucketing import NUM_PROFILE_BUCKETS, profile_bucket
from consumer_assets.histories.schema import HISTORIES_SCHEMA
from consumer_assets.ml.model.config import LstmConfig
from consumer_assets.ml.model.network import EventLstm
from consumer_assets_testing.simulated import simulate_histories

D = dt.date(2026, 4, 20)
SMALL = LstmConfig(type_dim=4, article_dim=2, brand_dim=2, category_dim=2, hidden=8)


def histories(profiles: int = 1500, seed: int = 3) -> pa.Table:
    """One cut-off day (D) of simulated histories, about a third of `profiles` rows."""
    return simulate_histories(profiles, seed, [D]).histories.select(HISTORIES_SCHEMA.names).cast(HISTORIES_SCHEMA)


def model(config: LstmConfig = SMALL) -> EventLstm:
    """Untrained, with random id embeddings (trained ones start at zero) so every input moves the output."""
    torch.manual_seed(4)
    m = EventLstm(config)
    for emb in (m.article, m.brand, m.category):
        torch.nn.init.normal_(emb.weight, std=0.5)
    return m.eval()


def bucket_files(table: pa.Table, root: Path) -> dict[int, list[str]]:
    """The rows split by profile bucket into `<root>/date=D/profile_bucket=b/`, two files a bucket
    (as two Spark tasks would write them), one named by a plain path and one by a file:// URI."""
    buckets = profile_bucket(table["profile_id"], NUM_PROFILE_BUCKETS)
    files: dict[int, list[str]] = {}
    for b in range(NUM_PROFILE_BUCKETS):
        rows = table.filter(pa.array(buckets == b))
        for i, part in enumerate((rows.slice(0, rows.num_rows // 2), rows.slice(rows.num_rows // 2))):
            path = root / f"date={D}" / f"profile_bucket={b}" / f"part-{i}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(part, path)
            files.setdefault(b, []).append(path.as_uri() if i else str(path))
    return files

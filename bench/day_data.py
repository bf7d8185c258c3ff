"""The shop of the daily-cycle benchmark: a project data folder in which day D has landed, nothing of D stored yet.

A folder under data/bench/day/ is the project's data folder of one shop ($CONSUMER_ASSETS_DATA_DIR:
storage/, landing/, dagster_home/, staging/), keyed by the shop's size and every other argument
that changes it, and prepared once (untimed):

- raw_events of the 193 days before D as a Delta table: the synthetic shop of histories_data.py
  (the project's simulator would take hours for a million shoppers over half a year), its Parquet
  files hard-linked into the table's folder and committed by storage.writes.TableWrite;
- day D itself in the landing zone, as the shop delivers it: the synthetic shop's day D rendered to
  gzip JSON Lines with the simulator's landing writer (simulation.landing.write_day), so that
  raw_events[D] is ingested by the real code and its profiles continue the stored ones;
- an approved model in force on D-7 (registered through the project's ModelRegistry): a network of
  the default config with its seeded initial weights, never trained. Scoring costs the same whatever
  the weights; its approval names the check `bench_day_untrained`, so no reader takes it for a model.

The Dagster runs that finish the preparation (consumer_histories of D-13..D-1, predictions[D-7])
are bench_day.py's, in the same instance as the timed steps.
"""

from __future__ import annotations

import datetime as dt
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from histories_data import generate

from consumer_assets.events.schema import RAW_EVENTS_SCHEMA
from consumer_assets.ml.model.artifact import ModelArtifact
from consumer_assets.ml.model.config import LstmConfig
from consumer_assets.ml.model.network import EventLstm
from consumer_assets.simulation.landing import write_day
from consumer_assets.simulation.render import iso_timestamps
from consumer_assets.storage.artifacts import ArtifactStore
from consumer_assets.storage.filesystem import resolve
from consumer_assets.storage.registry import ModelRegistry
from consumer_assets.storage.tables import BUCKETED, DATE, PROFILE_BUCKET, TableStore
from consumer_assets.storage.writes import TableWrite
from consumer_assets.windows import HORIZON_DAYS

VERSION = 1  # of the prepared folder: a change prepares a new one
DAY = dt.date(2026, 9, 1)  # D: its horizon and the training cut-offs lie inside the daily partitions
HISTORY_DAYS = 13  # consumer_histories are prepared for D-13..D-1: the training cut-offs D-13..D-7
RAW_DAYS = HORIZON_DAYS + HISTORY_DAYS  # raw_events before D: the horizon of D-13 and the days after it
BUCKETS = 8
UNTRAINED_CHECK = "bench_day_untrained"


def shop_dir(data_dir: Path, profiles: int) -> Path:
    return data_dir / f"shop-v{VERSION}-p{profiles}-{DAY}"


def _commit_raw_events(storage: str, files: dict[str, list[list[str]]]) -> int:
    """Hard-link the synthetic days' files into raw_events' folder and commit them; returns the events."""
    store = TableStore.at(storage)
    write = TableWrite(store, "raw_events", RAW_EVENTS_SCHEMA, BUCKETED)
    table_root = Path(resolve(write.uri).root)
    days = [d for d in sorted(files) if d < DAY.isoformat()]
    for day in days:
        for bucket, paths in enumerate(files[day]):
            for path in paths:
                relative = Path(path).relative_to(Path(path).parents[2])  # date=D/profile_bucket=b/part-....parquet
                target = table_root / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                if not target.exists():
                    os.link(path, target)
                write.adopt_file(str(target), {DATE: day, PROFILE_BUCKET: bucket})
    write.commit(days, {"bench": "bench_day", "synthetic": True})
    return sum(f.rows for f in write.files)


def json_lines(events: pa.Table, day: dt.date) -> pa.LargeStringArray:
    """raw_events rows as the landing records the shop sends (events.schema.LANDING_FIELDS), one a line."""

    def s(text: str) -> pa.Scalar:
        return pa.scalar(text, pa.large_string())

    def text(name: str) -> pa.Array:
        return pc.cast(events[name], pa.large_string())

    midnight = (day - dt.date(1970, 1, 1)).days * 86_400_000
    ms = pc.cast(pc.cast(events["ts"], pa.timestamp("ms")), pa.int64()).to_numpy() - midnight
    article = pc.binary_join_element_wise(
        s('"article_id":"'),
        text("article_id"),
        s('","brand_id":"'),
        text("brand_id"),
        s('","category":"'),
        text("category"),
        s('","price":'),
        pc.cast(events["price"], pa.large_string()),
        s(""),
    )
    nulls = s('"article_id":null,"brand_id":null,"category":null,"price":null')
    return pc.binary_join_element_wise(
        s('{"event_id":"'),
        text("event_id"),
        s('","profile_id":"'),
        text("profile_id"),
        s('","session_id":"'),
        text("session_id"),
        s('","ts":"'),
        iso_timestamps(day, ms),
        s('","event_type":"'),
        text("event_type"),
        s('",'),
        pc.fill_null(article, nulls),
        s("}\n"),
        s(""),
    )


def _land_day(landing: str, files: list[list[str]]) -> int:
    events = pa.concat_tables(pq.read_table(p) for paths in files for p in paths)
    with ThreadPoolExecutor(max_workers=2) as pool:
        write_day(resolve(landing), DAY, json_lines(events, DAY).combine_chunks(), pool)
    return events.num_rows


def register_untrained_model(storage: str, day: dt.date) -> str:
    """Publish and approve a seeded, untrained network of the default config as the model of `day`."""
    import torch

    torch.manual_seed(0)
    files = ModelArtifact(EventLstm(LstmConfig()).eval(), {"bench": "untrained"}).to_files()
    registry = ModelRegistry(ArtifactStore(resolve(storage)), "trained_lstm_model")
    version = registry.publish(day, files, {"bench": "bench_day"})
    reason = "bench_day's stand-in: an untrained network, approved so that predictions can be timed"
    return registry.approve(version, {UNTRAINED_CHECK: {"passed": True, "reason": reason}}).label


def prepare_files(folder: Path, profiles: int) -> dict:
    """Synthetic raw_events up to D-1 committed, day D landed, the model of D-7 approved; returns figures."""
    data = generate(folder.parent / "synthetic", profiles, RAW_DAYS + 1, DAY, BUCKETS, HORIZON_DAYS)
    storage, landing = (folder / "storage").as_uri(), (folder / "landing").as_uri()
    stored = _commit_raw_events(storage, data["files"])
    landed = _land_day(landing, data["files"][DAY.isoformat()])
    model = register_untrained_model(storage, DAY - dt.timedelta(days=7))
    return {"raw_events_stored": stored, "landed_events": landed, "model": model, "shop": data["shop"]}

"""Histories tables of any size for the scoring benchmark: simulated profiles, resampled under new ids.

Simulating a million shoppers for 35 days takes long and needs much memory, and scoring speed
depends only on the histories' shape (their lengths and values), not on who they belong to. So
`--source-profiles` shoppers (default 20,000, about 7,000 histories) are simulated once with
`simulate_histories`, and the table of N histories draws N rows from them uniformly with
replacement (numpy, seed fixed), each under a new id `bench-<8 digits>`: the length distribution
and the values are the simulated ones, the ids are new, so the profile buckets (crc32 of the id)
spread the rows evenly as in production. The rows are written once per (N, source, seed) as a
Delta table `consumer_histories` partitioned by date and profile_bucket, one file per bucket
written the way the histories job writes them (pyarrow's defaults), under --data-dir (default
data/bench/predict), and reused.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from consumer_assets.events.bucketing import NUM_PROFILE_BUCKETS, profile_bucket
from consumer_assets.histories.schema import HISTORIES_SCHEMA
from consumer_assets.storage.tables import TableStore
from consumer_assets.storage.writes import TableWrite, part_path, write_parquet

# Shared with the tests, not installed with the package: importable from the project root.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from consumer_assets_testing.simulated import simulate_histories

DAY = dt.date(2026, 4, 20)
TABLE = "consumer_histories"
# Rows taken from the source per step when writing: bounds the generator's memory.
WRITE_STEP = 131_072


def source_histories(profiles: int, seed: int) -> pa.Table:
    """One day of simulated histories (HISTORIES_SCHEMA), about a third of `profiles` rows."""
    return simulate_histories(profiles, seed, [DAY]).histories.select(HISTORIES_SCHEMA.names).cast(HISTORIES_SCHEMA)


def histories_table(data_dir: Path, rows: int, source_profiles: int = 20_000, seed: int = 11) -> tuple[str, str]:
    """(storage root, table name) of a cached table of `rows` histories for DAY; built on first use."""
    root = data_dir / f"histories-v2-{rows}-{source_profiles}-{seed}"
    done = root / "_complete"
    if done.exists():
        return str(root), TABLE
    shutil.rmtree(root, ignore_errors=True)
    source = source_histories(source_profiles, seed)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, source.num_rows, rows)
    ids = pa.array([f"bench-{i:08d}" for i in range(rows)], pa.string())
    buckets = profile_bucket(ids, NUM_PROFILE_BUCKETS)
    store = TableStore.at(str(root))
    write = TableWrite(store, TABLE, HISTORIES_SCHEMA, partition_by=("date", "profile_bucket"))
    for bucket in range(NUM_PROFILE_BUCKETS):
        mine = np.flatnonzero(buckets == bucket)
        parts = []
        for start in range(0, len(mine), WRITE_STEP):
            step = mine[start : start + WRITE_STEP]
            part = source.take(pa.array(picks[step]))
            parts.append(part.set_column(0, "profile_id", ids.take(pa.array(step))))
        table = pa.concat_tables(parts) if parts else HISTORIES_SCHEMA.empty_table()
        # As the histories job writes its files (histories.output): pyarrow's defaults (snappy,
        # one row group), into the table's folder, then adopted by the commit.
        partition = {"date": DAY, "profile_bucket": bucket}
        path = part_path(partition, "bench", bucket, write.uri)
        write_parquet(table.combine_chunks(), path)
        write.adopt_file(path, partition)
        del parts, table
    write.commit([DAY], {"bench": "bench_predict", "rows": rows})
    done.write_text(f"{rows}\n")
    return str(root), TABLE


def files_by_bucket(root: str, table: str = TABLE) -> dict[int, list[str]]:
    """The committed files of DAY per profile bucket, as paths a process on this machine can open."""
    store = TableStore.at(root)
    out: dict[int, list[str]] = {}
    for f in store.files(table, [DAY]):
        out.setdefault(int(f.partition["profile_bucket"]), []).append(store.file_uri(table, f))
    return dict(sorted(out.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description="Build (or find) the cached histories tables.")
    parser.add_argument("--sizes", required=True, help="comma-separated numbers of histories")
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        began = time.perf_counter()
        root, _ = histories_table(args.data_dir, size)
        print(f"histories table of {size:,} profiles: {root} ({time.perf_counter() - began:.1f} s)", flush=True)


if __name__ == "__main__":
    main()

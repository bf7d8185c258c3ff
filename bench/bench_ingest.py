"""Benchmark: the shop simulator and raw_events ingestion for one day, with peak memory.

Each measurement runs in a fresh subprocess (so peak RSS is its own); the figures are medians of
--runs runs. As a reference measured in the same run, DuckDB reads the same gzip JSON Lines and
writes Parquet: what a single-node tool does with no validation or quarantine at all.

    .venv/bin/python bench/bench_ingest.py --profiles 1000000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

DAY = "2026-10-05"

SIMULATE = """
import datetime as dt, json, resource, sys, time
from consumer_assets.simulation import simulate_to_landing
landing, profiles, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
started = time.perf_counter()
(summary,) = simulate_to_landing(landing, dt.date.fromisoformat("{day}"), 1, profiles=profiles, seed=seed)
total = time.perf_counter() - started
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"records": summary.records, "day_seconds": summary.seconds, "total_seconds": total,
                  "peak_mb": rss}}))
"""

INGEST = """
import datetime as dt, json, resource, sys, time
from consumer_assets.ingest.ingest import ingest_day
from consumer_assets.ingest.layout import bucketed
from consumer_assets.storage.filesystem import resolve
from consumer_assets.storage.store import DatasetStore
landing, storage = sys.argv[1], sys.argv[2]
started = time.perf_counter()
day = ingest_day(landing, dt.date.fromisoformat("{day}"))
validated = time.perf_counter()
store = DatasetStore(resolve(storage))
store.write("raw_events", "{day}", bucketed(day.events))
store.write("raw_events_quarantine", "{day}", day.quarantine)
done = time.perf_counter()
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({{"landed": day.landed, "validate_seconds": validated - started, "total_seconds": done - started,
                  "peak_mb": own, "worker_peak_mb": workers}}))
"""

DUCKDB = """
import json, resource, sys, time
import duckdb
landing, out = sys.argv[1], sys.argv[2]
started = time.perf_counter()
duckdb.sql(f"copy (select * from read_json('{{landing}}/date={day}/*.jsonl.gz', format='newline_delimited', "
           f"ignore_errors=true)) to '{{out}}' (format parquet, compression zstd)")
total = time.perf_counter() - started
rows = duckdb.sql(f"select count(*) from read_parquet('{{out}}')").fetchall()[0][0]
print(json.dumps({{"rows": rows, "total_seconds": total,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def measure(script: str, *args: str) -> dict:
    code = textwrap.dedent(script).format(day=DAY)
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"benchmark step failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        landing = Path(tmp) / "landing"
        sims = [measure(SIMULATE, str(landing), str(args.profiles), str(args.seed)) for _ in range(args.runs)]
        records, day_s = sims[0]["records"], median(sims, "day_seconds")
        print(f"simulator: {args.profiles:,} profiles, one day = {records:,} landed records")
        print(f"  day only       {day_s:7.2f} s   {records / day_s:>12,.0f} events/s")
        print(f"  incl. set-up   {median(sims, 'total_seconds'):7.2f} s   (traits, catalog, burn-in)")
        print(f"  peak RSS       {median(sims, 'peak_mb'):7.0f} MB")

        ingests = [measure(INGEST, landing.as_uri(), (Path(tmp) / f"s{i}").as_uri()) for i in range(args.runs)]
        ducks = [measure(DUCKDB, str(landing), str(Path(tmp) / f"duck{i}.parquet")) for i in range(args.runs)]
        ingest_s, duck_s = median(ingests, "total_seconds"), median(ducks, "total_seconds")
        print("raw_events ingest (validate, de-duplicate, quarantine, bucket, write Parquet):")
        print(f"  validate       {median(ingests, 'validate_seconds'):7.2f} s")
        print(f"  total          {ingest_s:7.2f} s   {records / ingest_s:>12,.0f} events/s")
        worker_mb = median(ingests, "worker_peak_mb")
        print(f"  peak RSS       {median(ingests, 'peak_mb'):7.0f} MB (+ {worker_mb:.0f} MB per worker)")
        duck_mb = median(ducks, "peak_mb")
        print(f"reference: DuckDB read_json -> Parquet, no validation: {duck_s:.2f} s, peak {duck_mb:.0f} MB")
        print(f"  ratio ingest / DuckDB: {ingest_s / duck_s:.2f}x   (median of {args.runs} runs each)")


if __name__ == "__main__":
    main()

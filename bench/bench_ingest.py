"""Benchmark: the shop simulator and raw_events ingestion for one day, against DuckDB, with peak memory.

Each measurement runs in a fresh subprocess, so its peak RSS (getrusage) is its own. Ingestion is
raw_events' own code for a day (validate, de-duplicate, quarantine, bucket by profile, write the
Delta tables' Parquet files and commit them); the reference is DuckDB's `read_json` of the same
gzip JSON Lines written to one Parquet file with no validation at all. They run alternately --runs
times each; the figures are medians. Both write zstd Parquet to local disk.

    .venv/bin/python bench/bench_ingest.py --profiles 1000000 --runs 5
    .venv/bin/python bench/bench_ingest.py --profiles 1000000 --runs 5 --lookback 2   # as raw_events runs daily
    .venv/bin/python bench/bench_ingest.py --profiles 1000000 --runs 5 --lookback 2 --history 30

With --lookback, the look-back alone (reading the ids of the look-back days and making them ready
for the look-up, in a fresh process) is also timed twice: on the day after the first `lookback`
days, when raw_events holds just those, and on the measured day, after `--history` days (default
`lookback`): the same size of day, and it should cost the same however many days the table holds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

from scratch import scratch

from consumer_assets.events.landing import FILE_GLOB, day_folder

DAY = dt.date(2026, 10, 5)

SIMULATE = """
import datetime as dt, json, resource, sys, time
from consumer_assets.simulation import simulate_to_landing
landing, profiles, seed, corrupt, days = sys.argv[1], *map(int, sys.argv[2:4]), float(sys.argv[4]), int(sys.argv[5])
started = time.perf_counter()
*_, summary = simulate_to_landing(landing, dt.date.fromisoformat("{day}") - dt.timedelta(days=days - 1), days,
                                  profiles=profiles, seed=seed, corrupt=corrupt)
total = time.perf_counter() - started
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"records": summary.records, "day_seconds": summary.seconds, "total_seconds": total,
                  "peak_mb": rss}}))
"""

INGEST = """
import functools, json, resource, sys, time
from consumer_assets.assets.raw_events import QUARANTINE, RAW_EVENTS, earlier_ids, ingest
from consumer_assets.events.schema import QUARANTINE_SCHEMA, RAW_EVENTS_SCHEMA
from consumer_assets.resources.landing import LandingZone
from consumer_assets.storage.tables import BUCKETED, TableStore
from consumer_assets.storage.writes import TableWrite
landing, out, day, lookback = LandingZone(uri=sys.argv[1]), TableStore.at(sys.argv[2]), sys.argv[3], int(sys.argv[4])
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
started = time.perf_counter()
# What raw_events does for a day: read the ids kept on the lookback days (while the day is parsed),
# validate, de-duplicate, bucket, write the Delta files, commit both tables.
earlier = functools.partial(earlier_ids, out, day, lookback, {{}})
events = TableWrite(out, RAW_EVENTS.path[-1], RAW_EVENTS_SCHEMA, BUCKETED)
quarantine = TableWrite(out, QUARANTINE.path[-1], QUARANTINE_SCHEMA)
done_day, _ = ingest(landing, day, earlier, events, quarantine)
events.commit([day], companion=quarantine.commit([day]))
done = time.perf_counter()
print(json.dumps({{"landed": done_day.figures["landed"], "kept": done_day.figures["kept"],
                  "validate_seconds": done_day.figures["ingest_seconds"], "total_seconds": done - started,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "import_mb": baseline}}))
"""

LOOKBACK = """
import json, sys, time
from consumer_assets.assets.raw_events import earlier_ids
from consumer_assets.storage.tables import TableStore
out, day, lookback = TableStore.at(sys.argv[1]), sys.argv[2], int(sys.argv[3])
started = time.perf_counter()
earlier = earlier_ids(out, day, lookback, {{}})
print(json.dumps({{"seconds": time.perf_counter() - started, "ids": len(earlier) if earlier else 0,
                  "days": len(out.dates("raw_events"))}}))
"""

DUCKDB = """
import json, resource, sys, time
import duckdb
files, out = sys.argv[1], sys.argv[2]
started = time.perf_counter()
duckdb.sql(f"copy (select * from read_json('{{files}}', format='newline_delimited', ignore_errors=true)) "
           f"to '{{out}}' (format parquet, compression zstd)")
total = time.perf_counter() - started
rows = duckdb.sql(f"select count(*) from read_parquet('{{out}}')").fetchall()[0][0]
print(json.dumps({{"rows": rows, "total_seconds": total,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def measure(script: str, *args: str) -> dict:
    code = textwrap.dedent(script).format(day=DAY.isoformat())
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"benchmark step failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=200_000, help="the issues quote 1000000")
    parser.add_argument("--runs", type=int, default=5, help="runs of ingestion and of DuckDB (alternating)")
    parser.add_argument("--simulator-runs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--corrupt", type=float, default=0.0, help="share of bad records in the landed day")
    parser.add_argument(
        "--lookback",
        type=int,
        default=0,
        help="days before the measured one that are simulated and ingested first, so its event ids are looked up "
        "among theirs as raw_events does (its duplicate_lookback_days, 2 by default)",
    )
    parser.add_argument(
        "--history",
        type=int,
        default=None,
        help="days before the measured one that are simulated and ingested first (default --lookback): the "
        "look-back's cost is timed with this many days in raw_events and with only --lookback",
    )
    args = parser.parse_args()
    history = args.lookback if args.history is None else args.history
    if history < args.lookback:
        parser.error(f"--history {history} is shorter than --lookback {args.lookback}")

    with scratch("ingest-") as tmp:
        landing, storage = Path(tmp) / "landing", (Path(tmp) / "storage").as_uri()
        sim_args = (str(landing), str(args.profiles), str(args.seed), str(args.corrupt), str(history + 1))
        sims = [measure(SIMULATE, *sim_args) for _ in range(args.simulator_runs)]
        records, day_s = sims[0]["records"], median(sims, "day_seconds")
        print(f"simulator: {args.profiles:,} profiles, one day = {records:,} landed records (corrupt {args.corrupt})")
        print(f"  day only       {day_s:7.2f} s   {records / day_s:>12,.0f} events/s")
        print(f"  incl. set-up   {median(sims, 'total_seconds'):7.2f} s   (traits, catalog, burn-in)")
        print(f"  peak RSS       {median(sims, 'peak_mb'):7.0f} MB")

        look_backs = []  # runs of LOOKBACK, by days held
        for n in range(history, 0, -1):  # the earlier days, each with its own lookback
            day = (DAY - dt.timedelta(days=n)).isoformat()
            if args.lookback and n == history - args.lookback:  # raw_events holds just the look-back days
                look_backs.append([measure(LOOKBACK, storage, day, str(args.lookback)) for _ in range(args.runs)])
            measure(INGEST, landing.as_uri(), storage, day, str(args.lookback))
        if args.lookback:
            look_backs.append(
                [measure(LOOKBACK, storage, DAY.isoformat(), str(args.lookback)) for _ in range(args.runs)]
            )
        files = landing / day_folder(DAY) / FILE_GLOB
        ingests, ducks = [], []
        for i in range(args.runs):
            ingests.append(measure(INGEST, landing.as_uri(), storage, DAY.isoformat(), str(args.lookback)))
            ducks.append(measure(DUCKDB, str(files), str(Path(tmp) / f"duck{i}.parquet")))
        ingest_s, duck_s = median(ingests, "total_seconds"), median(ducks, "total_seconds")
        peak, imports, duck_peak = median(ingests, "peak_mb"), median(ingests, "import_mb"), median(ducks, "peak_mb")
        print("raw_events ingest (validate, de-duplicate, quarantine, bucket, write and commit Delta)")
        if args.lookback:
            print(f"  event ids looked up among the {args.lookback} days before, read from raw_events")
        print(f"  validate       {median(ingests, 'validate_seconds'):7.2f} s")
        print(f"  total          {ingest_s:7.2f} s   {records / ingest_s:>12,.0f} events/s")
        print(f"  peak RSS       {peak:7.0f} MB   (of which {imports:.0f} MB after imports)")
        print(f"reference: DuckDB read_json -> Parquet, no validation: {duck_s:.2f} s, peak RSS {duck_peak:.0f} MB")
        print(f"ratio ingest / DuckDB: {ingest_s / duck_s:.2f}x   (medians of {args.runs} alternating runs)")
        ratios = [i["total_seconds"] / d["total_seconds"] for i, d in zip(ingests, ducks, strict=True)]
        print("  per run: " + ", ".join(f"{r:.2f}" for r in ratios))
        if look_backs:
            print(f"look-back alone (read the {args.lookback} days' ids, make them ready), by days in raw_events:")
        for runs in look_backs:
            held, ids = runs[0]["days"], runs[0]["ids"]
            print(f"  {held:3d} days held   {median(runs, 'seconds'):7.3f} s   ({ids:,} ids, median of {len(runs)})")


if __name__ == "__main__":
    main()

"""Benchmark consumer_histories: the Spark job (local[2]) against the same aggregation in DuckDB.

    .venv/bin/python bench/bench_histories.py [--profiles 1000000] [--days 28] [--runs 3]

Generates synthetic raw_events in the bucketed layout (cached under --data-dir), then runs
each engine in its own child process, so each one's peak memory is its own: Spark's session
start-up is timed apart from the job; each run reads the window and writes Parquet histories.
DuckDB runs the test oracle's fast formulation (list_histories_sql, checked against the oracle in
the tests) with its native hash for the id buckets, and writes Parquet with COPY.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
CUTOFF = dt.date(2024, 3, 28)
MS_PER_DAY = 86_400_000
# Rough share of each action type in a shop's tracking stream (ACTION_TYPES order).
TYPE_WEIGHTS = [8, 6, 10, 30, 6, 4, 2, 3, 1, 2, 2, 1, 4, 1, 3, 1, 1.0, 0.1, 0.2]


def _strings(chars: np.ndarray) -> pa.Array:
    """Fixed-width ASCII strings from a (n, width) uint8 matrix, built without a Python loop."""
    n, width = chars.shape
    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int32) * width).tobytes())
    return pa.StringArray.from_buffers(n, offsets, pa.py_buffer(np.ascontiguousarray(chars).tobytes()))


def _decimal_ids(prefix: str, values: np.ndarray, width: int) -> pa.Array:
    digits = (values[:, None] // 10 ** np.arange(width - 1, -1, -1)) % 10 + ord("0")
    head = np.broadcast_to(np.frombuffer(prefix.encode(), np.uint8), (len(values), len(prefix)))
    return _strings(np.hstack([head, digits.astype(np.uint8)]))


def _hex_ids(values: np.ndarray) -> pa.Array:
    nibbles = (values[:, None] >> (4 * np.arange(15, -1, -1, dtype=np.uint64))) & np.uint64(15)
    return _strings(np.frombuffer(b"0123456789abcdef", np.uint8)[nibbles.astype(np.int64)])


def _null_where(mask: np.ndarray, values: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(mask), pa.scalar(None, values.type), values)


def generate(data_dir: Path, profiles: int, days: int, buckets: int) -> dict[str, list[str]]:
    """Synthetic raw_events for `days` days up to CUTOFF, cached: {day: [file of bucket b]}."""
    from consumer_assets.events.bucketing import profile_bucket
    from consumer_assets.events.schema import ACTION_TYPES, ARTICLE_EVENT_TYPES, RAW_EVENTS_SCHEMA

    manifest = data_dir / "files.json"
    if manifest.exists():
        return json.loads(manifest.read_text())
    rng = np.random.default_rng(7)
    # Heavy-tailed activity: most profiles are light, a few exceed MAX_EVENTS in the window.
    rate = rng.lognormal(0.0, 1.2, profiles)
    rate *= 1.07 / rate.mean()
    profile_ids = _decimal_ids("p", np.arange(profiles), 9)
    bucket_of = profile_bucket(profile_ids, buckets)
    weights = np.array(TYPE_WEIGHTS) / sum(TYPE_WEIGHTS)
    is_article = np.array([t in ARTICLE_EVENT_TYPES for t in ACTION_TYPES])
    files: dict[str, list[str]] = {}
    for k in range(days):
        day = CUTOFF - dt.timedelta(days=days - 1 - k)
        day_rng = np.random.default_rng([7, k])
        prof = np.repeat(np.arange(profiles), day_rng.poisson(rate))
        n = len(prof)
        # Each profile's events of a day fall in one half-hour visit.
        visit = day_rng.integers(0, MS_PER_DAY - 1_800_000, profiles)
        day_ms = (day - dt.date(1970, 1, 1)).days * MS_PER_DAY
        ts = day_ms + visit[prof] + day_rng.integers(0, 1_800_000, n)
        event_u64 = day_rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)
        order = np.lexsort((event_u64, ts, prof))
        prof, ts, event_u64 = prof[order], ts[order], event_u64[order]
        types = day_rng.choice(len(ACTION_TYPES), n, p=weights)
        article = (100_000 * day_rng.random(n) ** 3).astype(np.int64)
        no_article = ~is_article[types]
        table = pa.table(
            {
                "event_id": _hex_ids(event_u64),
                "profile_id": profile_ids.take(pa.array(prof)),
                "session_id": _hex_ids((prof * 64 + k).astype(np.uint64)),
                "ts": pa.array(ts, pa.timestamp("ms", tz="UTC")),
                "event_type": pa.array(np.array(ACTION_TYPES)[types]),
                "article_id": _null_where(no_article, _decimal_ids("a", article, 7)),
                "brand_id": _null_where(no_article, _decimal_ids("b", article % 2000, 4)),
                "category": _null_where(no_article, _decimal_ids("c", article % 60, 2)),
                "price": pa.array(9.99 + (article * 7919) % 200, mask=no_article),
            },
            schema=RAW_EVENTS_SCHEMA,
        )
        day_dir = data_dir / f"date={day}"
        day_dir.mkdir(parents=True, exist_ok=True)
        by_bucket = bucket_of[prof]
        files[str(day)] = []
        for b in range(buckets):
            path = day_dir / f"bucket-{b:03d}.parquet"
            pq.write_table(table.filter(pa.array(by_bucket == b)), path)
            files[str(day)].append(str(path))
        print(f"generated {day}: {n:,} events", flush=True)
    manifest.write_text(json.dumps(files))
    return files


def _vm_hwm_mb(pid: int | str = "self") -> float:
    """Peak resident memory of a process (Linux VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _descendants(pid: int) -> list[tuple[int, str]]:
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
            children.setdefault(int(rest[1]), []).append(int(entry.name))
            names[int(entry.name)] = name
    found, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        found.append((p, names[p]))
        todo.extend(children.get(p, []))
    return found


def child_duckdb(files: dict[str, list[str]], out: Path, runs: int) -> dict[str, object]:
    from consumer_assets_testing.oracle import connect, list_histories_sql, native_bucket_sql

    paths = [f for day in files.values() for f in day]
    times = []
    for _ in range(runs):
        shutil.rmtree(out, ignore_errors=True)
        con = connect()
        start = time.perf_counter()
        query = list_histories_sql(paths, CUTOFF, native_bucket_sql)
        con.execute(f"COPY ({query}) TO '{out}' (FORMAT parquet, PER_THREAD_OUTPUT)")
        times.append(time.perf_counter() - start)
        con.close()
    rows = pq.ParquetDataset(out).read(columns=["n_events"])
    return {
        "times": times,
        "rows": rows.num_rows,
        "events_out": int(pc.sum(rows["n_events"]).as_py()),
        "peak_mb": {"duckdb process": _vm_hwm_mb()},
    }


def child_spark(files: dict[str, list[str]], out: Path, runs: int, driver_memory: str) -> dict[str, object]:
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    os.environ["PYSPARK_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    from consumer_assets.histories.spark import write_histories

    start = time.perf_counter()
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.memory", driver_memory)
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    startup = time.perf_counter() - start
    day_files = {dt.date.fromisoformat(day): [[p] for p in paths] for day, paths in files.items()}
    times = []
    for run in range(runs):
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        summary = write_histories(spark, day_files, [CUTOFF], str(out), f"run{run}")[CUTOFF]
        times.append(time.perf_counter() - start)
    rows = pa.concat_tables(pq.read_table(path, columns=["n_events"]) for path, _ in summary.files)
    procs = _descendants(os.getpid())
    peak = {"driver (python)": _vm_hwm_mb()}
    peak["jvm"] = sum(_vm_hwm_mb(p) for p, name in procs if name == "java")
    # Python workers are forked from a daemon and reused; the sum of their peaks bounds them.
    peak["python workers (sum)"] = sum(_vm_hwm_mb(p) for p, name in procs if name != "java")
    spark.stop()
    return {
        "times": times,
        "startup": startup,
        "rows": rows.num_rows,
        "events_out": int(pc.sum(rows["n_events"]).as_py()),
        "peak_mb": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--buckets", type=int, default=None, help="default: NUM_PROFILE_BUCKETS")
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/consumer_histories_bench"))
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--spark-driver-memory", default="2g")
    parser.add_argument("--child", choices=["duckdb", "spark"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # the oracle (consumer_assets_testing) is not part of the package

    from consumer_assets.events.bucketing import NUM_PROFILE_BUCKETS

    buckets = args.buckets or NUM_PROFILE_BUCKETS
    data = args.data_dir / f"p{args.profiles}_d{args.days}_b{buckets}"
    files = generate(data / "raw_events", args.profiles, args.days, buckets)
    if args.child:
        out = data / f"out_{args.child}"
        result = (
            child_duckdb(files, out, args.runs)
            if args.child == "duckdb"
            else child_spark(files, out, args.runs, args.spark_driver_memory)
        )
        print("RESULT " + json.dumps(result))
        return

    events = sum(pq.ParquetFile(f).metadata.num_rows for day in files.values() for f in day)
    print(f"{args.profiles:,} profiles x {args.days} days: {events:,} events, {buckets} buckets, cut-off {CUTOFF}")
    results = {}
    for engine in args.engines.split(","):
        cmd = [sys.executable, __file__, "--child", engine, *sys.argv[1:]]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
        if done.returncode or not lines:
            sys.exit(f"{engine} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        results[engine] = res = json.loads(lines[-1][len("RESULT ") :])
        median = statistics.median(res["times"])
        runs = ", ".join(f"{t:.1f}" for t in res["times"])
        print(f"{engine:7s} median {median:6.1f} s  (runs: {runs})  {events / median / 1e6:5.2f} M events/s")
        if "startup" in res:
            print(f"        session start-up {res['startup']:.1f} s (not counted)")
        print(f"        {res['rows']:,} histories, {res['events_out']:,} events in them")
        print("        peak RSS: " + ", ".join(f"{k} {v:,.0f} MB" for k, v in res["peak_mb"].items()))
    if {"spark", "duckdb"} <= results.keys():
        ratio = statistics.median(results["spark"]["times"]) / statistics.median(results["duckdb"]["times"])
        same = results["spark"]["rows"] == results["duckdb"]["rows"]
        print(f"spark / duckdb = {ratio:.2f}x; same number of histories: {same}")


if __name__ == "__main__":
    main()

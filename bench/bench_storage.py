"""Benchmark the Delta table store against the manifest store it replaced, measured in the same run.

    .venv/bin/python bench/bench_storage.py [--profiles 1000000] [--runs 5] [--histories-runs 2]

1. One day of raw_events at --profiles (8 profile-bucket files, as ingestion writes them): write
   and commit, then read the whole day back, with the old store (its code taken from git at
   LEGACY_COMMIT) and with TableStore, alternating, median of --runs each.
2. The histories job at --profiles x 28 days (Spark local[2] + the commit): old = executors write
   to a staging folder, the store copies the files in and writes the manifest; new = executors
   write into the Delta table's folder, the driver commits them in place.
Synthetic raw_events come from bench_histories.generate (cached under --data-dir).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
LEGACY_COMMIT = "0b8aaa9"  # the last commit with the manifest store (consumer_assets/storage/store.py)
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from scratch import cached, scratch  # noqa: E402


def legacy_store_module(into: Path):
    """The manifest store as it was, importable as `legacy.store`."""
    package = into / "legacy"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    for name in ("store", "files"):
        text = subprocess.run(
            ["git", "show", f"{LEGACY_COMMIT}:consumer_assets/storage/{name}.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        text = text.replace("consumer_assets.storage.files import", "legacy.files import").replace(
            "consumer_assets.storage.store import", "legacy.store import"
        )
        (package / f"{name}.py").write_text(text)
    sys.path.insert(0, str(into))
    return importlib.import_module("legacy.store"), importlib.import_module("legacy.files")


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def report(name: str, old: list[float], new: list[float]) -> None:
    o, n = statistics.median(old), statistics.median(new)
    print(f"{name:28s} old {o:7.2f} s   delta {n:7.2f} s   delta/old {n / o:5.2f}x   (runs {len(old)})")


def bench_day(files: dict[str, list[str]], work: Path, runs: int, legacy) -> None:
    from consumer_assets.events.schema import RAW_EVENTS_SCHEMA
    from consumer_assets.storage.filesystem import resolve
    from consumer_assets.storage.tables import TableStore
    from consumer_assets.storage.writes import TableWrite

    day = max(files)
    parts = [pq.read_table(path).cast(RAW_EVENTS_SCHEMA) for path in files[day]]
    print(f"raw_events {day}: {sum(p.num_rows for p in parts):,} events in {len(parts)} bucket files")
    old_store = legacy.DatasetStore(resolve(work / "old"))
    tables = TableStore.at(str(work / "new"))

    def new_write() -> None:
        write = TableWrite(tables, "raw_events", RAW_EVENTS_SCHEMA, ("date", "profile_bucket"))
        for bucket, part in enumerate(parts):
            write.write_file(part, {"date": day, "profile_bucket": bucket})
        write.commit([day])

    writes: dict[str, list[float]] = {"old": [], "new": []}
    reads: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(runs):
        writes["old"].append(timed(lambda: old_store.write("raw_events", day, parts)))
        writes["new"].append(timed(new_write))
        reads["old"].append(timed(lambda: old_store.read("raw_events", [day])))
        reads["new"].append(timed(lambda: tables.read("raw_events", [day])))
    report("write + commit one day", writes["old"], writes["new"])
    report("read one day", reads["old"], reads["new"])


def bench_histories(files: dict[str, list[str]], work: Path, runs: int, legacy, legacy_files) -> None:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    from consumer_assets.histories import HISTORIES_SCHEMA
    from consumer_assets.histories.spark import write_histories
    from consumer_assets.storage.filesystem import resolve
    from consumer_assets.storage.tables import TableStore
    from consumer_assets.storage.writes import TableWrite

    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    day_files = {dt.date.fromisoformat(d): [[p] for p in paths] for d, paths in files.items()}
    cutoff = max(day_files)
    old_store = legacy.DatasetStore(resolve(work / "old"))
    tables = TableStore.at(str(work / "new"))

    def old_job(n: int) -> None:
        staging = work / "staging"
        shutil.rmtree(staging, ignore_errors=True)
        summary = write_histories(spark, day_files, [cutoff], staging.as_uri(), f"old{n}")[cutoff]
        names = [Path(path).name for path, _ in summary.files]
        # The old store took one folder per day: gather the bucket folders' files into one.
        flat = staging / "flat"
        flat.mkdir(parents=True, exist_ok=True)
        for path, _ in summary.files:
            os.replace(resolve(path).root, flat / Path(path).name)
        old_store.write("consumer_histories", str(cutoff), legacy_files.ParquetFiles(flat.as_uri(), names))

    def new_job(n: int) -> None:
        write = TableWrite(tables, "consumer_histories", HISTORIES_SCHEMA, ("date", "profile_bucket"))
        summary = write_histories(spark, day_files, [cutoff], write.uri, write.id)[cutoff]
        for path, bucket in summary.files:
            write.adopt_file(path, {"date": str(cutoff), "profile_bucket": bucket})
        write.commit([cutoff])

    times: dict[str, list[float]] = {"old": [], "new": []}
    for n in range(runs):
        times["old"].append(timed(lambda n=n: old_job(n)))
        times["new"].append(timed(lambda n=n: new_job(n)))
    report("histories job (Spark+commit)", times["old"], times["new"])
    spark.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=200_000, help="the issues quote 1000000")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--histories-runs", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=cached("histories"))
    args = parser.parse_args()

    from bench_histories import generate

    from consumer_assets.events.bucketing import NUM_PROFILE_BUCKETS

    data = args.data_dir / f"p{args.profiles}_d28_b{NUM_PROFILE_BUCKETS}"
    files = generate(data / "raw_events", args.profiles, 28, NUM_PROFILE_BUCKETS)
    with scratch("storage-") as tmp:
        legacy, legacy_files = legacy_store_module(Path(tmp) / "code")
        bench_day(files, Path(tmp) / "day", args.runs, legacy)
        if args.histories_runs:
            bench_histories(files, Path(tmp) / "histories", args.histories_runs, legacy, legacy_files)


if __name__ == "__main__":
    main()

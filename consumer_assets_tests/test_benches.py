"""Every benchmark the README names runs to its end at a tiny size and prints its headline figures.

The sizes are far below what the benchmarks are for: this checks that they still run against the
code as it is (their figures come from running them at full size, never from here).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# script, tiny arguments (a data folder is added where the script takes one), a line it must print.
BENCHES = {
    "ingest": (
        "bench_ingest.py",
        ["--profiles", "2000", "--runs", "1", "--lookback", "1", "--history", "3"],
        r"ratio ingest / DuckDB: [\d.]+x[\s\S]* 1 days held +[\d.]+ s[\s\S]* 3 days held +[\d.]+ s",
    ),
    "simulator": (
        "bench_simulator.py",
        ["--profiles", "2000", "--days", "1", "--runs", "1"],
        r"events per second +[\d,]+",
    ),
    "bad_input": (
        "bench_bad_input.py",
        ["--line-gb", "0.01", "--braces", "10000", "--profiles", "2000", "--dir", "{tmp}"],
        r"braces +peak RSS +[+-]\d+ MB vs the normal day",
    ),
    "histories": (
        "bench_histories.py",
        ["--profiles", "1000", "--runs", "1", "--data-dir", "{tmp}"],
        r"incremental == full rebuild, row for row: histories True, state True",
    ),
    "train": (
        "bench_train.py",
        ["--profiles", "1000", "--threads", "1", "--epochs", "1", "--no-full"],
        r"threads=1: training [\d,]+ histories/s per epoch",
    ),
    "train_scale": (
        "bench_train_scale.py",
        ["--sizes", "1500", "--source-profiles", "1500", "--processes", "1,2", "--in-memory", "--data-dir", "{tmp}"],
        r"processes=2: [\d,]+ training and [\d,]+ validation histories; peak memory [\d,]+ MB",
    ),
    "quality_bar": (
        "quality_bar.py",
        ["--profiles", "1000", "--replicates", "20", "--config", '{"epochs": 2}'],
        r"AUC LSTM - baseline +[+-][\d.]+ \[",
    ),
    "day": (
        "bench_day.py",
        ["--profiles", "500", "--train-epochs", "1", "--train-days", "1", "--data-dir", "{tmp}"],
        r"DAY \(4 steps\): [\d.]+ s in Dagster runs[\s\S]*TRAINING: [\d.]+ s for [\d,]+ histories",
    ),
    "serve": (
        "bench_serve.py",
        ["--profiles=600", "--requests=40", "--clients=2", "--runs=1", "--workers=2", "--data-dir", "{tmp}"],
        r"2 clients: p50 [\d.]+ ms  p99 [\d.]+ ms  [\d,]+ requests/s",
    ),
    "predict": (
        "bench_predict.py",
        ["--profiles", "3000", "--runs", "1", "--memory-profiles", "3000", "--data-dir", "{tmp}"],
        r"END TO END: [\d,]+ histories/s",
    ),
}


def test_every_benchmark_of_the_readme_is_run_here() -> None:
    named = set(re.findall(r"bench/(\w+\.py)", (ROOT / "README.md").read_text()))
    assert named == {script for script, _, _ in BENCHES.values()}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BENCHES))
def test_benchmark_runs_at_a_tiny_size(name: str, tmp_path: Path) -> None:
    script, args, expected = BENCHES[name]
    command = [sys.executable, str(ROOT / "bench" / script), *(a.replace("{tmp}", str(tmp_path)) for a in args)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(expected, done.stdout), done.stdout[-3000:]

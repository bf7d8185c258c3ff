"""Where the benchmarks keep their data: data/bench/ of this checkout (git-ignored), never outside it.

Data a benchmark reuses between runs (simulated shops) is cached in a folder of its own; data of one
run goes to a temporary folder there, removed afterwards.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

BENCH_DATA = Path(__file__).resolve().parents[1] / "data" / "bench"


def cached(name: str) -> Path:
    """The folder a benchmark caches its inputs in, between runs: data/bench/<name>."""
    return BENCH_DATA / name


def scratch(prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A temporary folder under data/bench/, removed when its `with` block ends."""
    BENCH_DATA.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix=prefix, dir=BENCH_DATA)


def mkdtemp(prefix: str) -> str:
    """A new folder under data/bench/ that the caller removes."""
    BENCH_DATA.mkdir(parents=True, exist_ok=True)
    return tempfile.mkdtemp(prefix=prefix, dir=BENCH_DATA)

"""Benchmark the shop simulator: seconds per simulated day written to a landing zone, and events/s.

    python bench/bench_simulator.py --profiles 200000 --days 3 --runs 3 [--corrupt 0.01] [--truth] [--landing DIR]

Each run simulates `days` days into a fresh landing folder (gzip JSON Lines, the real writer);
the figures are medians over runs. Peak memory is the process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

from scratch import mkdtemp

from consumer_assets.simulation import ShopSimulator, simulate_to_landing


def _peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--corrupt", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--landing", default=None, help="Folder for the output (default: a temp dir).")
    parser.add_argument("--truth", action="store_true", help="Also write the daily ground truth.")
    args = parser.parse_args()
    start = dt.date(2026, 1, 5)

    began = time.perf_counter()
    ShopSimulator(args.profiles, args.seed, start)
    setup_s = time.perf_counter() - began

    per_day, rates, events = [], [], []
    for run in range(args.runs):
        root = Path(args.landing or mkdtemp(prefix="simulator-")) / f"run-{run}"
        began = time.perf_counter()
        summaries = list(
            simulate_to_landing(
                str(root),
                start,
                args.days,
                profiles=args.profiles,
                seed=args.seed,
                corrupt=args.corrupt,
                truth_uri=str(root / "truth") if args.truth else None,
            )
        )
        total_s = time.perf_counter() - began
        day_s = [s.seconds for s in summaries]
        n_events = sum(s.events for s in summaries)
        per_day.append(statistics.median(day_s))
        rates.append(n_events / sum(day_s))
        events.append(n_events / args.days)
        size = sum(f.stat().st_size for f in root.rglob("*.gz"))
        print(
            f"run {run}: {total_s:.1f} s total (setup + {args.days} days), "
            f"{statistics.median(day_s):.2f} s/day median, {n_events / args.days:,.0f} events/day, "
            f"{size / args.days / 2**20:.0f} MiB gz/day",
            flush=True,
        )
        if args.landing is None:
            shutil.rmtree(root.parent, ignore_errors=True)

    print(f"profiles            {args.profiles:,}")
    print(f"setup (burn-in)     {setup_s:.2f} s")
    print(f"events per day      {statistics.median(events):,.0f}")
    print(f"seconds per day     {statistics.median(per_day):.2f} (median of {args.runs} runs)")
    print(f"events per second   {statistics.median(rates):,.0f}")
    print(f"peak memory         {_peak_rss_mib():,.0f} MiB (max RSS)")


if __name__ == "__main__":
    main()

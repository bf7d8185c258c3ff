"""Benchmark: wall time and peak memory of ingesting hostile landing days, against a normal simulated day.

Three days, each ingested in a fresh subprocess through raw_events' own code for a day (validate,
de-duplicate, quarantine in batches, bucket, write the Delta files, commit), so its peak RSS
(getrusage of the child) is its own:
- `long`: one gzip member of about 1 MB holding a single line of --line-gb GB (written streaming,
  never in memory): quarantined as line_too_long with its first bytes;
- `braces`: ten million `{}` lines, a gzip of about 29 KB: every line quarantined (missing_field);
- `normal`: a simulated day of --profiles profiles, the reference.

    .venv/bin/python bench/bench_bad_input.py
    .venv/bin/python bench/bench_bad_input.py --line-gb 3 --cases long normal
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import textwrap
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from scratch import BENCH_DATA

from consumer_assets.events.landing import MARKER, day_folder

DAY = dt.date(2026, 10, 5)
CASES = ("normal", "long", "braces")

SIMULATE = """
import datetime as dt, sys
from consumer_assets.simulation import simulate_to_landing
list(simulate_to_landing(sys.argv[1], dt.date.fromisoformat(sys.argv[2]), 1, profiles=int(sys.argv[3]), seed=1))
"""

INGEST = """
import json, resource, sys, time
from consumer_assets.assets.raw_events import QUARANTINE, RAW_EVENTS, ingest
from consumer_assets.events.schema import QUARANTINE_SCHEMA, RAW_EVENTS_SCHEMA
from consumer_assets.resources.landing import LandingZone
from consumer_assets.storage.tables import BUCKETED, TableStore
from consumer_assets.storage.writes import TableWrite
landing, out, day = LandingZone(uri=sys.argv[1]), TableStore.at(sys.argv[2]), sys.argv[3]
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
started = time.perf_counter()
events = TableWrite(out, RAW_EVENTS.path[-1], RAW_EVENTS_SCHEMA, BUCKETED)
quarantine = TableWrite(out, QUARANTINE.path[-1], QUARANTINE_SCHEMA)
done_day, _ = ingest(landing, day, None, events, quarantine)
quarantine.commit([day])
events.commit([day])
print(json.dumps({"landed": done_day.figures["landed"], "kept": done_day.figures["kept"],
                  "quarantined": done_day.figures["quarantined"], "quarantine_files": len(quarantine.files),
                  "reasons": {r: n for r, n in done_day.reasons.items() if n},
                  "seconds": time.perf_counter() - started,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "import_mb": baseline}))
"""


def run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"benchmark step failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return done.stdout


def write_gzip(landing: Path, chunks: Iterable[bytes], lines: int) -> int:
    """One gzip file of the day from byte chunks (compressed as they come), with a JSON marker; its size."""
    folder = landing / day_folder(DAY)
    folder.mkdir(parents=True)
    path = folder / "events-0000.jsonl.gz"
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: a gzip member
    with path.open("wb") as out:
        for chunk in chunks:
            out.write(packer.compress(chunk))
        out.write(packer.flush())
    (folder / MARKER).write_text(json.dumps({"files": {path.name: lines}}))
    return path.stat().st_size


def one_long_line(gigabytes: float) -> Iterator[bytes]:
    chunk, left = b"x" * (16 << 20), int(gigabytes * (1 << 30))
    yield b'{"event_id":"'
    while left > 0:
        yield chunk[: min(left, len(chunk))]
        left -= len(chunk)
    yield b'"}\n'


def braces(lines: int) -> Iterator[bytes]:
    chunk = b"{}\n" * 1_000_000
    for start in range(0, lines, 1_000_000):
        yield chunk[: 3 * min(1_000_000, lines - start)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--line-gb", type=float, default=1.0, help="length of the one line of `long`, in GiB")
    parser.add_argument("--braces", type=int, default=10_000_000, help="lines of `braces`")
    parser.add_argument("--profiles", type=int, default=200_000, help="profiles of the normal simulated day")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--dir", type=Path, default=BENCH_DATA, help="where the data goes (removed afterwards)")
    args = parser.parse_args()

    args.dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-bad-input-", dir=args.dir) as tmp:
        results = {}
        for case in args.cases:
            landing, storage = Path(tmp) / case / "landing", (Path(tmp) / case / "storage").as_uri()
            if case == "normal":
                run(SIMULATE, landing.as_uri(), DAY.isoformat(), str(args.profiles))
                size = sum(p.stat().st_size for p in landing.rglob("*.gz"))
                what = f"simulated day, {args.profiles:,} profiles"
            elif case == "long":
                size = write_gzip(landing, one_long_line(args.line_gb), 1)
                what = f"one line of {args.line_gb:g} GiB"
            else:
                size = write_gzip(landing, braces(args.braces), args.braces)
                what = f"{args.braces:,} lines of {{}}"
            found = json.loads(run(INGEST, landing.as_uri(), storage, DAY.isoformat()).strip().splitlines()[-1])
            results[case] = found
            print(f"{case:7s} {what}, gzip {size / 1024:,.0f} KiB")
            print(
                f"        landed {found['landed']:,}  kept {found['kept']:,}  quarantined {found['quarantined']:,} "
                f"in {found['quarantine_files']} file(s)  {found['reasons']}"
            )
            peak, imports = found["peak_mb"], found["import_mb"]
            print(f"        {found['seconds']:7.2f} s   peak RSS {peak:6.0f} MB ({imports:.0f} MB after imports)")
        if "normal" in results:
            normal = results["normal"]
            for case in (c for c in args.cases if c != "normal"):
                extra = results[case]["peak_mb"] - normal["peak_mb"]
                print(f"{case:7s} peak RSS {extra:+6.0f} MB vs the normal day")


if __name__ == "__main__":
    main()

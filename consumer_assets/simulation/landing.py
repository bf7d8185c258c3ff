"""Write simulated days to the landing zone: gzip JSON Lines per day, then a JSON `_SUCCESS` marker.

Layout (events.landing's conventions, with the default `date=YYYY-MM-DD` folders):

    <landing>/date=YYYY-MM-DD/events-0000.jsonl.gz ... events-NNNN.jsonl.gz
    <landing>/date=YYYY-MM-DD/_SUCCESS    {"date": ..., "files": {name: lines}, "records": lines}

The marker is written last: a day folder without it is incomplete. Optionally the exact ground
truth of each day goes to <truth>/date=YYYY-MM-DD/truth.parquet.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import os
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from consumer_assets.events.landing import MARKER, data_file_name, day_folder
from consumer_assets.simulation.corrupt import corrupt_lines
from consumer_assets.simulation.params import Sale, ShopParams
from consumer_assets.simulation.simulator import ShopSimulator
from consumer_assets.storage.filesystem import Location, resolve

LINES_PER_FILE = 250_000
MIN_FILES_PER_DAY = 2  # several files even on small days, so readers never assume one
GZIP_LEVEL = 2  # the landing zone is rewritten often; level 2 is ~3x faster than 6 for ~15% more bytes


@dataclass(frozen=True)
class LandedDay:
    """What one simulated day put in the landing zone."""

    date: dt.date
    files: dict[str, int]  # file name -> number of lines
    records: int  # lines landed (clean events kept + corrupted lines)
    events: int  # clean events simulated, before corruption
    corruptions: dict[str, int]  # corruption kind -> number of lines
    seconds: float

    def as_dict(self) -> dict[str, object]:
        return {
            "date": self.date.isoformat(),
            "files": dict(self.files),
            "records": self.records,
            "events": self.events,
            "corruptions": dict(self.corruptions),
            "seconds": round(self.seconds, 3),
        }


def _gzip(data: pa.Buffer | bytes) -> bytes:
    # zlib releases the GIL while compressing, so files compress in parallel threads. The header
    # carries no name or mtime: same lines, same bytes.
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def write_day(landing: Location, date: dt.date, lines: pa.LargeBinaryArray, pool: ThreadPoolExecutor) -> dict[str, int]:
    """Write one day's lines over several gzip files, then the marker; returns name -> line count."""
    folder = landing.child(day_folder(date))
    fs = landing.fs
    # A re-run replaces the day: the old marker goes first, so the folder is never falsely complete.
    fs.delete_dir_contents(folder.root, missing_dir_ok=True)
    if landing.is_local:  # object stores have no folders (and pyarrow would write a marker object)
        fs.create_dir(folder.root, recursive=True)
    n = len(lines)
    n_files = max(MIN_FILES_PER_DAY, math.ceil(n / LINES_PER_FILE))
    bounds = (np.arange(n_files + 1) * n) // n_files
    # Every line ends in a newline, so a file is one zero-copy slice of the lines' data buffer.
    byte_at = np.frombuffer(lines.buffers()[1], np.int64)[lines.offset + bounds].tolist()
    data = lines.buffers()[2] or pa.py_buffer(b"")
    names = [data_file_name(i) for i in range(n_files)]
    spans = list(itertools.pairwise(bounds.tolist()))
    chunks = [data.slice(lo, hi - lo) for lo, hi in itertools.pairwise(byte_at)]
    files: dict[str, int] = {}
    # Files are written in order as their compression finishes; later ones compress meanwhile.
    for name, (a, b), compressed in zip(names, spans, pool.map(_gzip, chunks), strict=True):
        with fs.open_output_stream(folder.path(name), compression=None) as out:
            out.write(compressed)
        files[name] = b - a
    marker = {"date": date.isoformat(), "files": files, "records": n}
    with fs.open_output_stream(folder.path(MARKER), compression=None) as out:
        out.write(json.dumps(marker).encode())
    return files


def write_truth(truth: Location, date: dt.date, table: pa.Table) -> None:
    folder = truth.child(day_folder(date))
    if truth.is_local:
        truth.fs.create_dir(folder.root, recursive=True)
    pq.write_table(table, folder.path("truth.parquet"), filesystem=truth.fs)


def simulate_to_landing(
    landing_uri: str,
    start: dt.date,
    days: int,
    *,
    profiles: int,
    seed: int,
    corrupt: float = 0.0,
    truth_uri: str | None = None,
    sale: Sale | None = None,
) -> Iterator[LandedDay]:
    """Simulate `days` days from `start` into the landing zone, yielding a summary per finished day.

    `sale`: an optional regime change (params.Sale); without it the days are those of the default shop.
    """
    if not 0.0 <= corrupt < 1.0:
        raise ValueError(f"corrupt must be in [0, 1), got {corrupt}")
    landing = resolve(landing_uri)
    truth = resolve(truth_uri) if truth_uri else None
    sim = ShopSimulator(profiles, seed, start, ShopParams(sale=sale))
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2)) as pool:
        for _ in range(days):
            began = time.perf_counter()
            day = sim.step_day()
            # The corruption stream is the day's spare one: the clean events do not depend on the rate.
            landed = corrupt_lines(day.json_lines(), corrupt, sim.day_rng(3))
            files = write_day(landing, day.date, landed.lines, pool)
            if truth is not None:
                write_truth(truth, day.date, sim.ground_truth())
            yield LandedDay(
                date=day.date,
                files=files,
                records=len(landed.lines),
                events=len(day),
                corruptions=landed.corruptions,
                seconds=time.perf_counter() - began,
            )

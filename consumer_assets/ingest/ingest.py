"""Ingest one landed day: validate its files (in parallel processes) and de-duplicate across them."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import pyarrow as pa

from consumer_assets.ingest.landing import LandingDay, LandingDayError, open_day
from consumer_assets.ingest.validate import CheckedFile, ValidatedDay, check_lines, dedupe
from consumer_assets.storage.filesystem import resolve

# Below this many lines, starting worker processes costs more than it saves.
PARALLEL_MIN_RECORDS = 100_000


def ingest_day(landing_uri: str, day: dt.date, *, workers: int | None = None) -> ValidatedDay:
    """Validate every line of a complete landed day; raises LandingDayError if it is missing or incomplete.

    `workers` processes check the files of a large day in parallel (default: one per core); line
    parsing is CPU-bound Python, so threads would not help.
    """
    landed = open_day(landing_uri, day)
    names = sorted(landed.files)
    workers = min(workers or os.cpu_count() or 1, len(names))
    if workers <= 1 or landed.records < PARALLEL_MIN_RECORDS:
        checked = [check_lines(day, name, landed.read_lines(name)) for name in names]
    else:
        jobs = [(landing_uri, day, name, landed.files[name]) for name in names]
        # spawn, not fork: the caller (a Dagster run) has threads that fork would copy mid-flight.
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            # Results travel as Arrow IPC streams: compact, and no pickled data objects.
            checked = [_from_ipc(result) for result in pool.map(_check_file, jobs)]
    result = dedupe(checked)
    if result.landed != landed.records:  # every landed line is kept or quarantined, exactly once
        raise LandingDayError(
            f"{landed.uri()}: {result.events.num_rows} kept + {result.quarantine.num_rows} quarantined "
            f"!= {landed.records} landed records"
        )
    return result


def _check_file(job: tuple[str, dt.date, str, int]) -> tuple[bytes, bytes]:
    landing_uri, day, name, lines = job
    landed = LandingDay(resolve(landing_uri), day, {name: lines})
    checked = check_lines(day, name, landed.read_lines(name))
    return _to_ipc(checked.events), _to_ipc(checked.quarantine)


def _to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def _from_ipc(result: tuple[bytes, bytes]) -> CheckedFile:
    events, quarantine = (pa.ipc.open_stream(data).read_all() for data in result)
    return CheckedFile(events, quarantine)

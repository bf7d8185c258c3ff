"""Ingest one landed day: stream its files block by block, validate, de-duplicate, reconcile the counts."""

from __future__ import annotations

import datetime as dt
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa

from consumer_assets.events.schema import QUARANTINE_SCHEMA
from consumer_assets.ingest.dedupe import RAW_LINES_SCHEMA, CheckedSource, RepeatFilter, dedupe
from consumer_assets.ingest.fastpath import ParseStats, check_block
from consumer_assets.ingest.landing import LandedFile, LandingDay, LandingDayError, LandingRules, open_day
from consumer_assets.ingest.validate import CHECKED_SCHEMA, ValidatedDay, check_lines


def ingest_day(
    landing_uri: str,
    day: dt.date,
    *,
    rules: LandingRules | None = None,
    earlier_ids: pa.Table | None = None,
    workers: int | None = None,
    vectorised: bool = True,
    now: dt.datetime | None = None,
) -> ValidatedDay:
    """Validate every line of a complete landed day; raises LandingDayError if it is missing or incomplete.

    `earlier_ids` (columns event_id, date) are the ids kept on earlier days: a line repeating one is
    quarantined as `duplicate_event_id`. `workers` threads validate files side by side (default
    one per core; the work is in Arrow and numpy, which release the GIL). `vectorised=False` runs
    the per-line rules alone, the slow reference the vectorised path must agree with.
    """
    landed = open_day(landing_uri, day, rules, now=now)
    workers = max(1, min(workers or os.cpu_count() or 1, len(landed.files)))

    def check(file: LandedFile) -> CheckedSource:
        return check_file(day, landed, file, vectorised=vectorised)

    if workers == 1:
        sources = [check(f) for f in landed.files]
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="ingest") as pool:
            sources = list(pool.map(check, landed.files))

    def reread(k: int, numbers: np.ndarray) -> list[bytes]:
        return landed.read_lines_at(landed.files[k], numbers)

    result = dedupe(sources, earlier_ids, reread)
    lines = sum(s.lines for s in sources)
    if result.landed != lines:  # every landed line is kept or quarantined, exactly once
        raise LandingDayError(
            f"{landed.uri()}: {result.events.num_rows} kept + {result.quarantine.num_rows} quarantined "
            f"!= {lines} landed lines"
        )
    return result


def check_file(day: dt.date, landed: LandingDay, file: LandedFile, *, vectorised: bool = True) -> CheckedSource:
    """Validate one file block by block; its memory is a block's lines plus the valid events so far."""
    events, quarantine, maybe_repeats = [CHECKED_SCHEMA.empty_table()], [QUARANTINE_SCHEMA.empty_table()], []
    repeats, stats = RepeatFilter(), ParseStats()
    lines = 0
    for block in landed.blocks(file):
        if vectorised and not stats.dense:
            checked = check_block(day, file.name, block, stats)
        else:
            numbers = range(block.first_line, block.first_line + len(block.ends))
            checked = check_lines(day, file.name, block.lines(), numbers)
        flagged = repeats.flag(checked.events["event_id"])
        if flagged.any():
            numbers = np.asarray(checked.events["line_number"])[flagged]
            at = numbers - block.first_line
            starts = np.r_[0, block.ends[:-1] + 1][at].tolist()
            raw = [block.data[s:e] for s, e in zip(starts, block.ends[at].tolist(), strict=True)]
            maybe_repeats.append(pa.table([pa.array(numbers), pa.array(raw, pa.binary())], schema=RAW_LINES_SCHEMA))
        events.append(checked.events)
        quarantine.append(checked.quarantine)
        lines += len(block.ends)
    return CheckedSource(
        file.name,
        pa.concat_tables(events),
        pa.concat_tables(quarantine),
        pa.concat_tables([RAW_LINES_SCHEMA.empty_table(), *maybe_repeats]),
        lines,
    )

"""Ingest one landed day: stream its files block by block, validate, de-duplicate, reconcile the counts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pyarrow as pa

from consumer_assets.ingest.dedupe import (
    RAW_LINES_SCHEMA,
    CheckedSource,
    EarlierIds,
    RepeatFilter,
    dedupe,
    fingerprint,
)
from consumer_assets.ingest.fastpath import ParseStats, check_block
from consumer_assets.ingest.landing import LandingDay, LandingDayError, LandingRules, open_day
from consumer_assets.ingest.lines import LineBlock
from consumer_assets.ingest.quarantine import QuarantineBatches
from consumer_assets.ingest.validate import CHECKED_SCHEMA, CheckedFile, ValidatedDay, check_lines
from consumer_assets.storage.filesystem import Location

# Blocks being validated at once, per worker: enough to keep every worker busy while the
# reading thread decompresses the next one, few enough that memory stays a handful of blocks.
_IN_FLIGHT_PER_WORKER = 2


def ingest_day(
    landing: str | Location,
    day: dt.date,
    *,
    rules: LandingRules | None = None,
    earlier_ids: EarlierIds | pa.Table | Callable[[], EarlierIds | None] | None = None,
    workers: int | None = None,
    vectorised: bool = True,
    now: dt.datetime | None = None,
    quarantine: QuarantineBatches | None = None,
) -> ValidatedDay:
    """Validate every line of a complete landed day; raises LandingDayError if it is missing or incomplete.

    `earlier_ids` are the ids kept on earlier days (or a table of them, columns event_id and date): a
    line repeating one is quarantined as `duplicate_event_id`. Given as a function, it is called on a
    thread of its own while the day's files are parsed (reading them overlaps the parsing).
    `workers` threads validate blocks side by side (default one per core), whether the day is one
    file or many: the work is in Arrow, numpy and ISA-L, which release the GIL. `vectorised=False`
    runs the per-line rules alone, the slow reference the vectorised path must agree with.
    Quarantined lines go to `quarantine` as they come (in bounded batches, if it writes them);
    without it they are returned in memory.
    """
    landed = open_day(landing, day, rules, now=now)
    batches = quarantine or QuarantineBatches()
    with ThreadPoolExecutor(1, thread_name_prefix="earlier-ids") as pool:
        earlier = pool.submit(earlier_ids) if callable(earlier_ids) else None
        sources = check_files(
            day, landed, batches, workers=max(1, workers or os.cpu_count() or 1), vectorised=vectorised
        )
        known = earlier.result() if earlier is not None else earlier_ids

    def reread(k: int, numbers: np.ndarray) -> list[bytes]:
        return landed.read_lines_at(landed.files[k], numbers)

    events, repeats = dedupe(sources, known, reread)
    batches.add(repeats)
    batches.close()
    lines = sum(s.lines for s in sources)
    if events.num_rows + batches.rows != lines:  # every landed line is kept or quarantined, exactly once
        raise LandingDayError(
            f"{landed.uri()}: {events.num_rows} kept + {batches.rows} quarantined != {lines} landed lines"
        )
    return ValidatedDay(
        events,
        batches.rows,
        dict(batches.reasons),
        batches.table(),
        files=tuple(f.name for f in landed.files),
        skipped=landed.skipped,
    )


@dataclasses.dataclass
class _CheckedBlock:
    block: LineBlock
    checked: CheckedFile
    fingerprints: np.ndarray  # of the kept events' ids
    stats: ParseStats  # the parse failures of this block alone


class _FileChecks:
    """One file's checked blocks, taken in line order: its memory is its valid events and a few raw lines."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.events = [CHECKED_SCHEMA.empty_table()]
        self.maybe_repeats = [RAW_LINES_SCHEMA.empty_table()]
        self.fingerprints: list[np.ndarray] = [np.zeros(0, np.uint64)]
        self.repeats, self.stats, self.lines = RepeatFilter(), ParseStats(), 0

    def add(self, done: _CheckedBlock) -> None:
        block, checked = done.block, done.checked
        flagged = self.repeats.flag(done.fingerprints)
        if flagged.any():
            numbers = np.asarray(checked.events["line_number"])[flagged]
            at = numbers - block.first_line
            starts = np.r_[0, block.ends[:-1] + 1][at].tolist()
            raw = [block.data[s:e] for s, e in zip(starts, block.ends[at].tolist(), strict=True)]
            self.maybe_repeats.append(
                pa.table([pa.array(numbers), pa.array(raw, pa.binary())], schema=RAW_LINES_SCHEMA)
            )
        self.events.append(checked.events)
        self.fingerprints.append(done.fingerprints)
        self.stats.lines += done.stats.lines
        self.stats.failures += done.stats.failures
        self.lines += len(block.ends)

    def source(self) -> CheckedSource:
        return CheckedSource(
            self.name,
            pa.concat_tables(self.events),
            pa.concat_tables(self.maybe_repeats),
            self.lines,
            np.concatenate(self.fingerprints),
        )


def check_files(
    day: dt.date, landed: LandingDay, quarantine: QuarantineBatches, *, workers: int = 1, vectorised: bool = True
) -> list[CheckedSource]:
    """Validate the day's files block by block on `workers` threads, while this thread reads (decompresses) ahead.

    At most a few blocks per worker are in flight, and each file's results are taken in line order:
    its valid events are kept, its bad lines handed to `quarantine` in file, then line order.
    """
    files = [_FileChecks(f.name) for f in landed.files]

    def check(k: int, block: LineBlock, stats: ParseStats) -> _CheckedBlock:
        before = dataclasses.replace(stats)
        try:
            if vectorised and not stats.dense:
                checked = check_block(day, files[k].name, block, stats)
            else:
                numbers = range(block.first_line, block.first_line + len(block.ends))
                checked = check_lines(day, files[k].name, block.lines(), numbers, block.too_long_lines())
        except Exception as exc:  # name the lines: a failure in Arrow or numpy names none
            last = block.first_line + len(block.ends) - 1
            raise LandingDayError(
                f"{landed.uri(files[k].name)} lines {block.first_line}-{last} could not be validated: {exc!r}"
            ) from exc
        own = ParseStats(stats.lines - before.lines, stats.failures - before.failures)
        return _CheckedBlock(block, checked, fingerprint(checked.events["event_id"]), own)

    def take(k: int, done: _CheckedBlock) -> None:
        files[k].add(done)
        quarantine.add(done.checked.quarantine)

    def blocks() -> Iterator[tuple[int, LineBlock, ParseStats]]:
        for k, file in enumerate(landed.files):
            for block in landed.blocks(file):
                # A copy of the file's parse failures so far (blocks in flight not counted yet).
                yield k, block, dataclasses.replace(files[k].stats)

    if workers == 1:
        for k, block, stats in blocks():
            take(k, check(k, block, stats))
    else:
        pending: deque[tuple[int, Future[_CheckedBlock]]] = deque()
        with ThreadPoolExecutor(workers, thread_name_prefix="ingest") as pool:
            for k, block, stats in blocks():
                pending.append((k, pool.submit(check, k, block, stats)))
                while len(pending) > _IN_FLIGHT_PER_WORKER * workers:
                    k_done, future = pending.popleft()
                    take(k_done, future.result())
            while pending:
                k_done, future = pending.popleft()
                take(k_done, future.result())
    return [f.source() for f in files]

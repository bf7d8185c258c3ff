"""The unit of work: one profile bucket for a run of cut-off days, planned from the raw_events layout.

raw_events stores each day as NUM_PROFILE_BUCKETS files split by profile_bucket, so all events
of a profile over any window are in the files of one bucket: a task needs no other task's data,
which is what lets the Spark job skip the shuffle. Planning only lists paths; tasks read them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa

from consumer_assets.histories.encode import encode_histories
from consumer_assets.histories.reader import read_events
from consumer_assets.histories.schema import CUTOFF_COLUMN, HISTORIES_BY_CUTOFF_SCHEMA, window_ms
from consumer_assets.windows import HISTORY

# Per day, the raw_events files of each profile bucket (index = bucket); an empty list or a missing
# day means no events. Days may differ in bucket count if the counts divide each other.
DayFiles = Mapping[dt.date, Sequence[Sequence[str]]]

# Cut-off days one task computes from one read and sort of its events: more saves re-reading
# overlapping windows in a backfill, fewer bounds a task's memory (its window grows by a day each).
CUTOFFS_PER_TASK = 7
# Rows per Arrow batch handed to Spark; at up to MAX_EVENTS events a row, about 10 MB a batch.
OUTPUT_BATCH_ROWS = 4096


@dataclass(frozen=True)
class BucketTask:
    """The histories of profile bucket `bucket` (of `buckets`) for some cut-off days."""

    bucket: int
    buckets: int
    cutoffs: tuple[dt.date, ...]
    files: tuple[tuple[str, int], ...]  # (path, bucket count of its day)

    @property
    def lo_ms(self) -> int:
        return window_ms(HISTORY, min(self.cutoffs))[0]

    @property
    def hi_ms(self) -> int:
        return window_ms(HISTORY, max(self.cutoffs))[1]

    def read(self) -> pa.Table:
        return read_events(list(self.files), self.lo_ms, self.hi_ms, self.bucket, self.buckets)


def plan_tasks(
    files: DayFiles, cutoffs: Sequence[dt.date], cutoffs_per_task: int = CUTOFFS_PER_TASK, task_buckets: int = 1
) -> list[BucketTask]:
    """Split the work into (bucket, run of consecutive cut-offs) tasks, each listing the files it reads.

    There are as many buckets as the finest layout of the window, or `task_buckets` if that is
    more (a multiple of every layout's count): more, smaller tasks for a bigger shop.
    """
    days = sorted(set(cutoffs))
    if not days:
        raise ValueError("no cut-off days given")
    counts = {len(paths) for paths in files.values() if any(paths)}
    buckets = max(*counts, task_buckets) if counts else task_buckets
    if any(buckets % c for c in counts):
        raise ValueError(f"{buckets} task buckets do not divide into the window's bucket counts {sorted(counts)}")
    tasks = []
    for i in range(0, len(days), cutoffs_per_task):
        chunk = tuple(days[i : i + cutoffs_per_task])
        first = HISTORY.first(chunk[0])
        window = [day for day in sorted(files) if first <= day <= chunk[-1]]
        for bucket in range(buckets):
            chosen = []
            for day in window:
                paths = files[day]
                if any(paths):
                    chosen.extend((path, len(paths)) for path in paths[bucket % len(paths)])
            tasks.append(BucketTask(bucket, buckets, chunk, tuple(chosen)))
    return tasks


def run_task(task: BucketTask) -> Iterator[pa.RecordBatch]:
    """The histories of one task as Arrow batches in HISTORIES_BY_CUTOFF_SCHEMA."""
    for day, table in encode_histories(task.read(), task.cutoffs):
        day_column = pa.repeat(pa.scalar(day, pa.date32()), table.num_rows)
        tagged = table.add_column(0, HISTORIES_BY_CUTOFF_SCHEMA.field(CUTOFF_COLUMN), day_column)
        yield from tagged.to_batches(max_chunksize=OUTPUT_BATCH_ROWS)

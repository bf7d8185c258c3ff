"""The unit of work: one profile bucket through a run of consecutive cut-off days, planned from paths.

raw_events and the state store each day as NUM_PROFILE_BUCKETS files split by profile_bucket, so
everything about a profile is in the files of one bucket: a task needs no other task's data, which
is what lets the Spark job skip the shuffle. A task starts from the state of the day before its
first cut-off, or, where there is none, from nothing before the first cut-off's horizon; then it
reads raw_events a day (or, before the first cut-off, a chunk of days) at a time and advances the
state, giving the state of each cut-off day in turn. Its memory is one bucket's state and one
step's events, whatever the horizon; planning only lists paths.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from consumer_assets.histories.encode import sort_events
from consumer_assets.histories.reader import open_path, own_profiles, read_events
from consumer_assets.histories.schema import cutoff_ms, state_horizon
from consumer_assets.histories.state import State, advance
from consumer_assets.windows import horizon

# Per day, the files of each profile bucket (index = bucket); an empty list or a missing day means
# no rows. Days may differ in bucket count if the counts divide each other.
DayFiles = Mapping[dt.date, Sequence[Sequence[str]]]
Paths = tuple[tuple[str, int], ...]  # (path, bucket count of its day's layout)

# Days of raw events read in one step while building a state from nothing: fewer bound a task's
# memory, more save steps (each merges the whole state).
BUILD_CHUNK_DAYS = 30


@dataclass(frozen=True)
class Step:
    """Advance the state to the end of `day` with the raw_events `files` of the days since its day."""

    day: dt.date
    files: Paths


@dataclass(frozen=True)
class BucketTask:
    """The states of profile bucket `bucket` (of `buckets`) on each of `cutoffs`."""

    bucket: int
    buckets: int
    cutoffs: tuple[dt.date, ...]
    horizon_days: int
    steps: tuple[Step, ...]
    # The state of the day before the first cut-off; None: build it from the horizon's raw events.
    state_files: Paths | None

    @property
    def files(self) -> Paths:
        """Every file the task reads."""
        return (*(self.state_files or ()), *(f for step in self.steps for f in step.files))

    @property
    def built(self) -> bool:
        return self.state_files is None

    def states(self) -> Iterator[State]:
        """The state of each cut-off day, in day order."""
        first = self.cutoffs[0] - dt.timedelta(days=1)
        if self.state_files is None:
            start = horizon(self.horizon_days).first(self.cutoffs[0]) - dt.timedelta(days=1)
            state = State.empty(start, self.horizon_days)
        else:
            state = read_state(list(self.state_files), first, self.horizon_days, self.bucket, self.buckets)
        for step in self.steps:
            lo, hi = cutoff_ms(state.day), cutoff_ms(step.day)
            events = read_events(list(step.files), lo, hi, self.bucket, self.buckets)
            state = advance(state, sort_events(events), step.day)
            if step.day in self.cutoffs:
                yield state


def _chosen(paths: Sequence[Sequence[str]], bucket: int) -> list[tuple[str, int]]:
    return [(path, len(paths)) for path in paths[bucket % len(paths)]] if any(paths) else []


def plan_tasks(
    files: DayFiles,
    cutoffs: Sequence[dt.date],
    horizon_days: int,
    state_files: Sequence[Sequence[str]] | None = None,
    task_buckets: int = 1,
) -> list[BucketTask]:
    """One task per bucket through the consecutive `cutoffs`, from the state files of the day before the
    first (per bucket), or, if None, from the raw_events `files` of the first cut-off's horizon.

    There are as many buckets as the finest layout read, or `task_buckets` if that is more (a multiple
    of every layout's count): more, smaller tasks for a bigger shop.
    """
    days = sorted(set(cutoffs))
    if not days:
        raise ValueError("no cut-off days given")
    if days != [days[0] + dt.timedelta(days=k) for k in range(len(days))]:
        raise ValueError(f"cut-off days must be consecutive: {days[0]}..{days[-1]} has gaps")
    layouts = [paths for paths in files.values() if any(paths)]
    if state_files is not None and any(state_files):
        layouts.append(state_files)
    counts = {len(paths) for paths in layouts}
    buckets = max(*counts, task_buckets) if counts else task_buckets
    if any(buckets % c for c in counts):
        raise ValueError(f"{buckets} task buckets do not divide into the bucket counts read {sorted(counts)}")

    first = horizon(horizon_days).first(days[0])
    before = [] if state_files is not None else [d for d in sorted(files) if first <= d < days[0]]
    chunks = [before[i : i + BUILD_CHUNK_DAYS] for i in range(0, len(before), BUILD_CHUNK_DAYS)]
    tasks = []
    for bucket in range(buckets):
        steps = [Step(chunk[-1], tuple(f for d in chunk for f in _chosen(files[d], bucket))) for chunk in chunks]
        steps += [Step(day, tuple(_chosen(files.get(day, ()), bucket))) for day in days]
        state = None if state_files is None else tuple(_chosen(state_files, bucket))
        tasks.append(BucketTask(bucket, buckets, tuple(days), horizon_days, tuple(steps), state))
    return tasks


def read_state(paths: list[tuple[str, int]], day: dt.date, horizon_days: int, bucket: int, buckets: int) -> State:
    """The state of `day` of profile bucket `bucket` (of `buckets`) from its files, which must keep
    the same horizon."""
    tables = []
    for path, file_buckets in paths:
        if buckets % file_buckets:
            raise ValueError(f"{path}: a layout of {file_buckets} buckets does not divide {buckets}")
        fs, local = open_path(path)
        table = pq.read_table(local, filesystem=fs)
        kept = state_horizon(table.schema)
        if kept is None:
            raise ValueError(f"{path} records no horizon: it is no state file, or of an older format")
        if kept != horizon_days:
            raise ValueError(f"{path} is a state of a {kept}-day horizon, not {horizon_days}: build the day anew")
        table = own_profiles(table, path, file_buckets, bucket, buckets, rows="profiles")
        tables.append(table)
    if not tables:
        return State.empty(day, horizon_days)
    table = pa.concat_tables(tables)
    if len(tables) > 1:
        table = table.take(pc.sort_indices(table["profile_id"]))
    return State.from_table(table, day, horizon_days)

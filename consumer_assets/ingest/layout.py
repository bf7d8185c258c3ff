"""How raw_events lays out a day: one file per profile bucket, each sorted by profile and time.

File b holds exactly the events of profiles with `profile_bucket(profile_id) == b`, so a window of
days can be aggregated bucket by bucket without shuffling every event (see histories).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from consumer_assets.events.bucketing import NUM_PROFILE_BUCKETS, profile_bucket

SORT_KEYS = [("profile_id", "ascending"), ("ts", "ascending"), ("event_id", "ascending")]
# Columns worth a Parquet dictionary: few distinct values. Ids are nearly unique per file, so a
# dictionary for them costs time and bytes for nothing.
DICTIONARY_COLUMNS = ("event_type", "article_id", "brand_id", "category")
T = TypeVar("T")


def bucketed(events: pa.Table, buckets: int = NUM_PROFILE_BUCKETS) -> list[pa.Table]:
    """The day's events split into `buckets` tables (some possibly empty), each sorted by SORT_KEYS."""
    return write_bucketed(events, lambda _, part: part, buckets)


def write_bucketed(
    events: pa.Table,
    write: Callable[[int, pa.Table], T],
    buckets: int = NUM_PROFILE_BUCKETS,
    workers: int | None = None,
) -> list[T]:
    """Hand each bucket of the day's events, sorted by SORT_KEYS, to `write(bucket, table)`; its results in order.

    The buckets are sorted, the columns gathered and the buckets written side by side on `workers`
    threads (default one per core): numpy's sorts, Arrow's gathers and Parquet writes all run
    without the GIL. `write` must be safe to call from several threads.
    """
    if buckets < 1:
        raise ValueError(f"buckets must be positive, got {buckets}")
    if not events.num_rows:
        return [write(b, events) for b in range(buckets)]
    # Sorting strings is what costs: sort the distinct profiles once, then each bucket's events by
    # integers: the rank of their profile by profile_id, then ts.
    encoded = pc.dictionary_encode(events["profile_id"]).combine_chunks()
    profiles, codes = encoded.dictionary, encoded.indices.to_numpy()
    rank_of = np.empty(len(profiles), np.int64)
    rank_of[pc.sort_indices(profiles).to_numpy()] = np.arange(len(profiles))
    rank = rank_of[codes]
    ts = events["ts"].cast(pa.int64()).to_numpy()
    ts = ts - ts.min()
    shift = int(ts.max()).bit_length()
    key = (rank << shift) | ts if shift + len(profiles).bit_length() <= 62 else None  # one integer, one fast sort
    bucket = profile_bucket(profiles, buckets).astype(np.min_scalar_type(buckets))[codes]
    grouped = np.argsort(bucket, kind="stable")  # a radix sort, for 8- and 16-bit integers
    edges = np.r_[0, np.cumsum(np.bincount(bucket, minlength=buckets))].tolist()

    def bucket_order(b: int) -> np.ndarray:
        rows = grouped[edges[b] : edges[b + 1]]
        order = rows[np.argsort(key[rows], kind="stable") if key is not None else np.lexsort((ts[rows], rank[rows]))]
        return _ties_by_event_id(order, rank[order], ts[order], events["event_id"])

    with ThreadPoolExecutor(max(1, min(buckets, workers or os.cpu_count() or 1))) as pool:
        order = pa.array(np.concatenate(list(pool.map(bucket_order, range(buckets)))))
        # One gather per column (one call for the whole day costs less than one per bucket).
        ordered = pa.Table.from_arrays(
            list(pool.map(lambda name: events[name].take(order), events.column_names)), schema=events.schema
        )
        return list(pool.map(lambda b: write(b, ordered.slice(edges[b], edges[b + 1] - edges[b])), range(buckets)))


def _ties_by_event_id(order: np.ndarray, rank: np.ndarray, ts: np.ndarray, event_ids: pa.ChunkedArray) -> np.ndarray:
    """Events of one profile at the same millisecond, put in event_id order (`rank`, `ts` in `order`)."""
    tie = (rank[1:] == rank[:-1]) & (ts[1:] == ts[:-1])
    if not tie.any():
        return order
    at = np.flatnonzero(np.r_[tie, False] | np.r_[False, tie])  # every row of a tied run
    runs = pa.table({"rank": rank[at], "ts": ts[at], "event_id": event_ids.take(pa.array(order[at]))})
    keys = [("rank", "ascending"), ("ts", "ascending"), ("event_id", "ascending")]
    order[at] = order[at][pc.sort_indices(runs, keys).to_numpy()]
    return order

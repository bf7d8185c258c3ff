"""How raw_events lays out a day: one file per profile bucket, each sorted by profile and time.

File b holds exactly the events of profiles with `profile_bucket(profile_id) == b`, so a window of
days can be aggregated bucket by bucket without shuffling every event (see histories).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from consumer_assets.events.bucketing import NUM_PROFILE_BUCKETS, profile_bucket

SORT_KEYS = [("profile_id", "ascending"), ("ts", "ascending"), ("event_id", "ascending")]
# Columns worth a Parquet dictionary: few distinct values. Ids are nearly unique per file, so a
# dictionary for them costs time and bytes for nothing.
DICTIONARY_COLUMNS = ("event_type", "article_id", "brand_id", "category")


def bucketed(events: pa.Table, buckets: int = NUM_PROFILE_BUCKETS) -> list[pa.Table]:
    """The day's events split into `buckets` tables (some possibly empty), each sorted by SORT_KEYS."""
    if buckets < 1:
        raise ValueError(f"buckets must be positive, got {buckets}")
    if not events.num_rows:
        return [events] * buckets
    # Sorting strings is what costs: sort the distinct profiles once, then the events by integers:
    # the rank of their profile in (bucket, profile_id) order, then ts.
    encoded = pc.dictionary_encode(events["profile_id"]).combine_chunks()
    profiles, codes = encoded.dictionary, encoded.indices.to_numpy()
    bucket_of = profile_bucket(profiles, buckets).astype(np.int64)
    by_name = pc.sort_indices(profiles).to_numpy()
    rank_of = np.empty(len(profiles), np.int64)
    rank_of[by_name[np.argsort(bucket_of[by_name], kind="stable")]] = np.arange(len(profiles))
    rank = rank_of[codes]
    ts = events["ts"].cast(pa.int64()).to_numpy()
    ts = ts - ts.min()
    shift = int(ts.max()).bit_length()
    if shift + len(profiles).bit_length() <= 62:  # a day's events: one integer key, one fast sort
        order = np.argsort((rank << shift) | ts, kind="stable")
    else:
        order = np.lexsort((ts, rank))
    order = _ties_by_event_id(order, rank[order], ts[order], events["event_id"])
    edges = np.r_[0, np.cumsum(np.bincount(bucket_of[codes], minlength=buckets))]

    def part(b: int) -> pa.Table:
        return events.take(pa.array(order[edges[b] : edges[b + 1]])).combine_chunks()

    # Gathering the rows is the bulk of the work; Arrow does it without the GIL, so buckets in parallel.
    with ThreadPoolExecutor(min(buckets, os.cpu_count() or 1)) as pool:
        return list(pool.map(part, range(buckets)))


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

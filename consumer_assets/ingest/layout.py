"""How raw_events lays out a day: one file per profile bucket, each sorted by profile and time.

File b holds exactly the events of profiles with `profile_bucket(profile_id) == b`, so a window of
days can be aggregated bucket by bucket without shuffling every event (see histories).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from consumer_assets.events.bucketing import NUM_PROFILE_BUCKETS, profile_bucket

SORT_KEYS = [("profile_id", "ascending"), ("ts", "ascending"), ("event_id", "ascending")]


def bucketed(events: pa.Table, buckets: int = NUM_PROFILE_BUCKETS) -> list[pa.Table]:
    """The day's events split into `buckets` tables (some possibly empty), each sorted by SORT_KEYS."""
    bucket = profile_bucket(events["profile_id"], buckets) if events.num_rows else np.zeros(0, np.int32)
    ordered = events.append_column("_bucket", pa.array(bucket)).sort_by([("_bucket", "ascending"), *SORT_KEYS])
    edges = np.searchsorted(np.sort(bucket), np.arange(buckets + 1))
    ordered = ordered.drop_columns("_bucket").combine_chunks()
    return [ordered.slice(edges[b], edges[b + 1] - edges[b]) for b in range(buckets)]

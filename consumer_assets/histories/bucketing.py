"""Fixed-size id buckets for the model's article, brand and category inputs.

They use the same CRC-32 as raw_events' profile buckets (events.bucketing), so any tool that
computes zlib's or Spark's `crc32()` puts an id in the same bucket.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from consumer_assets.events.bucketing import SMALL, as_string_array, crc32


def hash_bucket(values: pa.Array | pa.ChunkedArray, size: int) -> np.ndarray:
    """Fixed-size id buckets as int32: 0 for no id (null or ""), else 1 + crc32 mod (size - 1).

    A fixed range keeps unseen ids (new articles, brands) valid inputs to a trained model. An
    empty string names nothing either, so it shares bucket 0 with null rather than hashing to 1.
    """
    if size < 2:
        raise ValueError(f"size must leave room for the null bucket, got {size}")
    arr = as_string_array(values)
    if len(arr) <= SMALL:
        return bucket_ids(arr.to_pylist(), size)
    encoded = pc.dictionary_encode(arr)
    dictionary = encoded.dictionary
    by_id = (1 + crc32(dictionary) % np.uint32(size - 1)).astype(np.int32)
    by_id[np.asarray(pc.equal(pc.binary_length(dictionary), 0).fill_null(False), dtype=bool)] = 0
    # Null ids have null indices: give them bucket 0 through a 0 prepended to the lookup table.
    codes = np.asarray(pc.add(encoded.indices.cast(pa.int32()), 1).fill_null(0))
    return np.r_[np.int32(0), by_id][codes]


def bucket_ids(values: Sequence[str | None], size: int) -> np.ndarray:
    """hash_bucket of Python strings (None for null): for a few hundred, hashing each with zlib is
    faster than the vectorised path's fixed cost (events.bucketing.SMALL)."""
    if size < 2:
        raise ValueError(f"size must leave room for the null bucket, got {size}")
    return np.array([1 + zlib.crc32(v.encode()) % (size - 1) if v else 0 for v in values], np.int32)

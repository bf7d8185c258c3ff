"""The target and the split: who ordered in the 7 days after a cut-off, and which profiles validate.

A history as of day D holds events before the cut-off instant D+1 00:00 UTC; its label is
whether the profile placed an order in [cut-off, cut-off + 7 days), i.e. on days D+1..D+7.
Nothing else after the cut-off is ever read. Both functions stream record batches, so the
labels of a week of raw_events cost one pass over its three projected columns.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from consumer_assets.histories.bucketing import hash_bucket
from consumer_assets.histories.schema import window_ms
from consumer_assets.windows import LABELS

ORDER_EVENT = "order"
# Salt of the split hash: independent of the raw_events profile buckets (crc32(id) mod 8).
SPLIT_SALT = "consumer-assets/validation/"
STOPPING_SALT = "consumer-assets/early-stopping/"
SAMPLE_SALT = "consumer-assets/training-sample/"
# Resolution of the hash splits: a share is a whole number of HASH_SLOTS.
HASH_SLOTS = 10_000

Batches = pa.Table | pa.RecordBatch | pa.RecordBatchReader | Iterable[pa.RecordBatch]

BUYERS_SCHEMA = pa.schema([pa.field("cutoff_date", pa.date32()), pa.field("profile_id", pa.string())])


def record_batches(source: Batches) -> Iterator[pa.RecordBatch]:
    """The record batches of a table, a reader or any iterable of batches."""
    if isinstance(source, pa.RecordBatch):
        yield source
    elif isinstance(source, pa.Table):
        yield from source.to_batches()
    else:
        yield from source


def epoch_ms(ts: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Epoch milliseconds of a timestamp column of any unit (Delta tables store microseconds)."""
    if not pa.types.is_timestamp(ts.type):
        raise TypeError(f"expected a timestamp column, got {ts.type}")
    if ts.null_count:
        raise ValueError("timestamps must not be null")
    raw = pc.cast(ts, pa.int64()).to_numpy()
    if ts.type.unit == "s":
        return raw * 1000
    return raw // {"ms": 1, "us": 1000, "ns": 1_000_000}[ts.type.unit]


def label_window_ms(cutoff: dt.date) -> tuple[int, int]:
    """[start, end) in epoch ms of the orders that make a history as of `cutoff` positive: its LABELS days."""
    return window_ms(LABELS, cutoff)


def order_profiles(events: Batches, cutoffs: Iterable[dt.date]) -> pa.Table:
    """(cutoff_date, profile_id) of every profile with an order in the label window of each cut-off.

    `events` needs the raw_events columns profile_id, ts and event_type, and should cover the
    days after the earliest cut-off through 7 days after the latest; other events are ignored.
    """
    days = sorted(set(cutoffs))
    if not days:
        return BUYERS_SCHEMA.empty_table()
    lo, hi = label_window_ms(days[0])[0], label_window_ms(days[-1])[1]
    ids: list[pa.Array] = []
    times: list[np.ndarray] = []
    for batch in record_batches(events):
        is_order = pc.equal(batch.column("event_type"), ORDER_EVENT).fill_null(False)
        if not pc.any(is_order).as_py():
            continue
        orders = batch.filter(is_order)
        ts = epoch_ms(orders.column("ts"))
        keep = (ts >= lo) & (ts < hi)
        ids.append(orders.column("profile_id").filter(pa.array(keep)))
        times.append(ts[keep])
    all_ids = pa.concat_arrays(ids) if ids else pa.array([], pa.string())
    all_ts = np.concatenate(times) if times else np.zeros(0, np.int64)
    parts = []
    for day in days:
        start, end = label_window_ms(day)
        buyers = pc.unique(all_ids.filter(pa.array((all_ts >= start) & (all_ts < end))))
        buyers = buyers.take(pc.sort_indices(buyers))
        parts.append(pa.table({"cutoff_date": pa.array([day] * len(buyers), pa.date32()), "profile_id": buyers}))
    return pa.concat_tables(parts).cast(BUYERS_SCHEMA)


def with_labels(
    histories: Batches, buyers: pa.Table, *, cutoff: dt.date | None = None, cutoff_column: str = "date"
) -> Iterator[pa.RecordBatch]:
    """The histories' batches with an int8 `label` column: 1 if the profile is a buyer of the row's cut-off.

    The cut-off day is `cutoff` for every row when given, else each row's `cutoff_column`
    (a date, or a 'YYYY-MM-DD' string as partition columns are sometimes read back).
    """
    by_day = {
        day: buyers.filter(pc.equal(buyers["cutoff_date"], pa.scalar(day, pa.date32())))["profile_id"]
        for day in pc.unique(buyers["cutoff_date"]).to_pylist()
    }
    empty = pa.array([], pa.string())
    for batch in record_batches(histories):
        ids = batch.column("profile_id")
        if cutoff is not None:
            label = pc.is_in(ids, value_set=by_day.get(cutoff, empty).combine_chunks())
        else:
            days = pc.cast(batch.column(cutoff_column), pa.date32())
            label = np.zeros(len(ids), dtype=bool)
            for day in pc.unique(days).to_pylist():
                rows = np.asarray(pc.equal(days, pa.scalar(day, pa.date32())).fill_null(False))
                if day in by_day:
                    hits = pc.is_in(ids, value_set=by_day[day].combine_chunks()).to_numpy(zero_copy_only=False)
                    label |= rows & hits
            label = pa.array(label)
        yield batch.append_column("label", pc.cast(label, pa.int8()))


def hash_slots(profile_ids: pa.Array | pa.ChunkedArray, salt: str) -> np.ndarray:
    """Each profile's slot in [0, HASH_SLOTS): a salted hash of its id, the same in every process and day."""
    if isinstance(profile_ids, pa.ChunkedArray):
        profile_ids = profile_ids.combine_chunks() if profile_ids.num_chunks else pa.array([], pa.string())
    salted = pc.binary_join_element_wise(pa.scalar(salt), profile_ids.cast(pa.string()), "")
    # hash_bucket is 1 + crc32 mod (2**31 - 1), stable across processes, languages and Spark.
    return (hash_bucket(salted, 2**31).astype(np.int64) - 1) % HASH_SLOTS


def slots_below(share: float) -> int:
    """How many slots a share of the profiles takes: slots below it are that share's profiles."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be in [0, 1], got {share}")
    return round(share * HASH_SLOTS)


def validation_mask(profile_ids: pa.Array | pa.ChunkedArray, share: float, salt: str = SPLIT_SALT) -> np.ndarray:
    """True for the profiles held out for validation: a salted hash of the id, the same on every day.

    Another `salt` gives an independent split (training holds out profiles to stop on with one).
    """
    return hash_slots(profile_ids, salt) < slots_below(share)


def cap_shares(rows_per_day: dict[int, int], cap: int) -> dict[int, float]:
    """The share of each day's rows the cap for huge shops keeps (0: no cap), for the days over it."""
    if cap <= 0:
        return {}
    return {day: cap / count for day, count in sorted(rows_per_day.items()) if count > cap}


def day_thresholds(days: np.ndarray, shares: dict[int, float]) -> np.ndarray:
    """Per row, the slots below which its profile is kept when each day in `shares` keeps that share
    (other days keep every profile). A threshold is monotone in the share: a profile kept on a day
    of a smaller share is kept on every day of a larger one, so the same profiles every day."""
    below = np.full(len(days), HASH_SLOTS, dtype=np.int64)
    for day, share in shares.items():
        below[days == day] = slots_below(share)
    return below


def sample_mask(profile_ids: pa.Array | pa.ChunkedArray, days: np.ndarray, shares: dict[int, float]) -> np.ndarray:
    """The rows the cap for huge shops keeps: on each day of `shares`, that share of the profiles by
    a salted hash of the id (independent of the validation and early-stopping ones); other days whole."""
    return hash_slots(profile_ids, SAMPLE_SALT) < day_thresholds(days, shares)

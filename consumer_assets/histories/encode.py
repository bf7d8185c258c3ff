"""Raw events as the histories read them: each field encoded, sorted by profile and time.

Spark runs this once per profile bucket and day (histories.tasks); histories.state keeps the
encoded events and turns them into histories with `cutoff_features`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from consumer_assets.events.schema import ACTION_INDEX, RAW_EVENTS_SCHEMA
from consumer_assets.histories.bucketing import bucket_ids, hash_bucket
from consumer_assets.histories.schema import (
    ARTICLE_BUCKETS,
    BRAND_BUCKETS,
    CATEGORY_BUCKETS,
    HISTORIES_SCHEMA,
    MS_PER_DAY,
    MS_PER_HOUR,
    cutoff_ms,
    cutoff_weekday,
)

# The raw_events columns a history reads.
EVENT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "profile_id",
    "ts",
    "event_type",
    "article_id",
    "brand_id",
    "category",
    "price",
)


@dataclass(frozen=True)
class SortedEvents:
    """Events encoded per event and sorted by (profile_id, ts, event_id)."""

    profile_ids: pa.Array  # distinct profile ids, sorted; `rank` indexes it
    rank: np.ndarray  # int64 per event
    ts: np.ndarray  # int64 epoch ms per event
    event_type: np.ndarray  # int8
    article_bucket: np.ndarray  # int32
    brand_bucket: np.ndarray  # int32
    category_bucket: np.ndarray  # int32
    log_price: np.ndarray  # float32

    def __len__(self) -> int:
        return len(self.ts)


def _event_type_codes(event_type: pa.ChunkedArray) -> np.ndarray:
    encoded = pc.dictionary_encode(event_type.combine_chunks())
    names = encoded.dictionary.to_pylist()
    unknown = sorted(str(n) for n in names if n not in ACTION_INDEX)
    if unknown or encoded.null_count:
        # The model's input layer is sized by ACTION_TYPES: an unknown type must stop the run,
        # not silently become some other action.
        raise ValueError(f"event types not in ACTION_TYPES: {unknown or ['<null>']}")
    codes = np.array([ACTION_INDEX[n] for n in names], dtype=np.int8)
    return codes[np.asarray(encoded.indices)]


def _sort_order(rank: np.ndarray, ts: np.ndarray, event_id: pa.ChunkedArray) -> np.ndarray:
    """Order by (profile rank, ts, event_id): one int64 key sort, then event ids for the few ties."""
    t0 = int(ts.min())
    span = int(ts.max()) - t0 + 1
    if (int(rank.max()) + 1) * span >= 2**63:
        raise ValueError("too many profiles x too long a time range for one bucket: use more buckets")
    key = rank * np.int64(span) + (ts - np.int64(t0))
    # Stable timsort runs on key: raw_events files arrive sorted by (profile_id, ts), so the
    # concatenated days are a few presorted runs, which timsort merges in near-linear time.
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    tie = sorted_key[1:] == sorted_key[:-1]
    if tie.any():
        # Equal (profile, ts): order those rows alone by event_id, so the result never depends
        # on file order. Tied rows sit in contiguous runs of the sorted order.
        pos = np.flatnonzero(np.r_[tie, False] | np.r_[False, tie])
        sub = order[pos]
        ties = pa.table({"key": key[sub], "event_id": event_id.take(pa.array(sub))})
        by_id = pc.sort_indices(ties, sort_keys=[("key", "ascending"), ("event_id", "ascending")])
        order[pos] = sub[np.asarray(by_id)]
    return order


def sort_events(events: pa.Table) -> SortedEvents:
    """Encode each event's fields and sort the events by (profile_id, ts, event_id)."""
    events = events.select(list(EVENT_COLUMNS))
    ts_col = events["ts"]
    if ts_col.null_count or events["profile_id"].null_count:
        raise ValueError("raw events must have a profile_id and a ts")
    ts = ts_col.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_numpy()

    encoded = pc.dictionary_encode(events["profile_id"].combine_chunks())
    by_name = pc.sort_indices(encoded.dictionary)
    rank_of_code = np.empty(len(by_name), dtype=np.int64)
    rank_of_code[np.asarray(by_name)] = np.arange(len(by_name), dtype=np.int64)
    rank = rank_of_code[np.asarray(encoded.indices)]

    order = _sort_order(rank, ts, events["event_id"]) if len(ts) else np.zeros(0, dtype=np.int64)
    price = np.nan_to_num(events["price"].fill_null(0.0).to_numpy().astype(np.float64), nan=0.0)
    return SortedEvents(
        profile_ids=encoded.dictionary.take(by_name),
        rank=rank[order],
        ts=ts[order],
        event_type=_event_type_codes(events["event_type"])[order],
        article_bucket=hash_bucket(events["article_id"], ARTICLE_BUCKETS)[order],
        brand_bucket=hash_bucket(events["brand_id"], BRAND_BUCKETS)[order],
        category_bucket=hash_bucket(events["category"], CATEGORY_BUCKETS)[order],
        log_price=np.log1p(np.maximum(price, 0.0)).astype(np.float32)[order],
    )


_EVENT_ID, _PROFILE_ID, _TS, _TYPE, _ARTICLE, _BRAND, _CATEGORY, _PRICE = (
    RAW_EVENTS_SCHEMA.get_field_index(name) for name in EVENT_COLUMNS
)


def sort_records(records: Sequence[tuple]) -> SortedEvents:
    """sort_events of raw_events records (RAW_EVENTS_SCHEMA's fields in order, ts in epoch ms: what
    ingest.validate keeps), without a table: the same encoding and order computed in Python, for
    the few dozen events a scoring pass is posted, where building and sorting an Arrow table costs
    a fixed millisecond (Python orders strings by code point, as Arrow orders their UTF-8 bytes)."""
    if any(r[_PROFILE_ID] is None or r[_TS] is None for r in records):
        raise ValueError("raw events must have a profile_id and a ts")
    rows = sorted(records, key=lambda r: (r[_PROFILE_ID], r[_TS], r[_EVENT_ID]))
    unknown = sorted({str(r[_TYPE]) for r in rows if r[_TYPE] not in ACTION_INDEX})
    if unknown:
        raise ValueError(f"event types not in ACTION_TYPES: {unknown}")
    ids = sorted({r[_PROFILE_ID] for r in rows})
    rank_of = {p: i for i, p in enumerate(ids)}
    price = np.nan_to_num(np.array([r[_PRICE] or 0.0 for r in rows], np.float64), nan=0.0)
    return SortedEvents(
        profile_ids=pa.array(ids, pa.string()),
        rank=np.array([rank_of[r[_PROFILE_ID]] for r in rows], np.int64),
        ts=np.array([r[_TS] for r in rows], np.int64),
        event_type=np.array([ACTION_INDEX[r[_TYPE]] for r in rows], np.int8),
        article_bucket=bucket_ids([r[_ARTICLE] for r in rows], ARTICLE_BUCKETS),
        brand_bucket=bucket_ids([r[_BRAND] for r in rows], BRAND_BUCKETS),
        category_bucket=bucket_ids([r[_CATEGORY] for r in rows], CATEGORY_BUCKETS),
        log_price=np.log1p(np.maximum(price, 0.0)).astype(np.float32),
    )


def between(events: SortedEvents, lo_ms: int, hi_ms: int) -> SortedEvents:
    """The events with lo_ms <= ts < hi_ms, still sorted."""
    keep = (events.ts >= lo_ms) & (events.ts < hi_ms)
    if keep.all():
        return events
    fields = {f.name: getattr(events, f.name) for f in dataclasses.fields(events) if f.name != "profile_ids"}
    return SortedEvents(profile_ids=events.profile_ids, **{k: v[keep] for k, v in fields.items()})


def epoch_weekday(epoch_day: int) -> int:
    """Weekday (Monday = 0) of a day counted from 1970-01-01 (a Thursday)."""
    return (epoch_day + 3) % 7


# The largest float32 below 24: 23:59:59.999 is 23.99999972 h, which float32 rounds up to 24.0.
LAST_HOUR = np.nextafter(np.float32(24.0), np.float32(0.0))


def _hour_of_day(ts: np.ndarray) -> np.ndarray:
    """UTC hour of day, fractional, as float32 in [0, 24)."""
    return np.minimum((np.mod(ts, MS_PER_DAY) / MS_PER_HOUR).astype(np.float32), LAST_HOUR)


def cutoff_features(
    offsets: np.ndarray,
    ts: np.ndarray,
    gap_ms: np.ndarray,
    fields: dict[str, np.ndarray],
    day: dt.date,
    at_ms: int | np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The sequence columns (flat, along `offsets`) and the moment of the prediction of histories as
    of `day`, from their events (flat, cut by `offsets`, none empty): times, gaps to the event
    before, and the other fields; each in the type HISTORIES_SCHEMA stores.

    The moment is the cut-off of `day`, or `at_ms` (epoch ms; one for all, or one per history) for a
    prediction within the day (the scoring service's): the hours since the last event and the weekday
    are then those of that instant."""
    hi = cutoff_ms(day) if at_ms is None else at_ms
    weekday = cutoff_weekday(day) if at_ms is None else epoch_weekday(at_ms // MS_PER_DAY)
    last_ts = ts[offsets[1:] - 1] if len(offsets) > 1 else ts
    return {
        "event_type": fields["event_type"],
        "log_dt": np.log1p(gap_ms / 1000.0).astype(np.float32),
        "article_bucket": fields["article_bucket"],
        "brand_bucket": fields["brand_bucket"],
        "category_bucket": fields["category_bucket"],
        "log_price": fields["log_price"],
        "hours_since_last_event": ((hi - last_ts) / MS_PER_HOUR).astype(np.float32),
        "cutoff_weekday": np.full(len(offsets) - 1, weekday, dtype=np.int8),
        "last_event_hour": _hour_of_day(last_ts),
    }


@dataclass(frozen=True)
class EncodedHistories:
    """Histories as histories.state.encode_arrays computes them, before they become HISTORIES_SCHEMA
    rows: the profile ids, and each other column as numpy in the type the schema stores, the list
    columns' values flat along `offsets`; `nulls` marks the null values of the nullable columns.
    The model reads them as they are (ml.training.data.SequenceData.from_encoded: the scoring
    service), or as the table (`table()`) every stored history is."""

    profile_id: pa.Array
    offsets: np.ndarray  # int64, rows + 1
    columns: dict[str, np.ndarray]
    nulls: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def table(self) -> pa.Table:
        if self.offsets[-1] >= 2**31:
            raise ValueError("too many history events for one bucket: use more profile buckets")
        list_offsets = pa.array(self.offsets.astype(np.int32))
        arrays: dict[str, pa.Array] = {"profile_id": self.profile_id}
        for field in HISTORIES_SCHEMA:
            if field.name in self.columns:
                values = pa.array(self.columns[field.name], mask=self.nulls.get(field.name))
                is_list = pa.types.is_list(field.type)
                arrays[field.name] = pa.ListArray.from_arrays(list_offsets, values) if is_list else values
        return pa.Table.from_pydict(arrays, schema=HISTORIES_SCHEMA)

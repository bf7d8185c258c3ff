"""A shop older than the histories' horizon for the histories benchmark: synthetic raw_events, fast.

The project's simulator would take hours for a million shoppers over half a year, and the
histories job's cost depends only on the events' shape (how many per profile and day, how
many profiles, the id strings it hashes and sorts), not on whether they buy anything. So this
draws raw_events-shaped Parquet with numpy, in the layout raw_events writes (one zstd file per
day and profile bucket, `date=D/profile_bucket=b/`, sorted by profile_id, ts, event_id), with a
heavy-tailed activity that matches the issue's figures for the simulated shop:

- half the profiles are light (a lognormal rate around 0.05 events a day: a few visits a half
  year), half are engaged (a lognormal rate around 1 a day, sigma 0.78);
- a profile visits on a day with probability min(0.8, rate / 4) and then makes 1 + Poisson
  events in one half-hour visit, so events come in bursts as sessions do;
- profiles arrive and leave (uniform arrival over the 400 days before the data, lifetimes
  exponential with a mean of 1,500 days), so some leave the state and new ones join it.

Over 180 days that gives about a third of the profiles eligible on the last day (>= 15 events
in its 28 days), whose events over the 180 days have a median of about 190 and a p90 of about
500 (the issue: 191 and 495); `generate` measures and returns these figures. Article, brand and
category ids, prices, event types (with shop-like shares) and 16-hex event ids are drawn per event.
Seeds are fixed: the same arguments give the same files, which are cached under the data folder.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from consumer_assets.events.bucketing import profile_bucket
from consumer_assets.events.schema import ACTION_TYPES, ARTICLE_EVENT_TYPES, RAW_EVENTS_SCHEMA
from consumer_assets.histories.schema import MIN_EVENTS
from consumer_assets.ingest.layout import DICTIONARY_COLUMNS
from consumer_assets.storage.tables import DATE, PROFILE_BUCKET
from consumer_assets.storage.writes import COMPRESSION, part_path, write_parquet
from consumer_assets.windows import ELIGIBILITY_DAYS

VERSION = 1  # of the generator: a change writes a new cache folder
MS_PER_DAY = 86_400_000
VISIT_MS = 1_800_000
# Rough share of each action type in a shop's tracking stream (ACTION_TYPES order).
TYPE_WEIGHTS = [8, 6, 10, 30, 6, 4, 2, 3, 1, 2, 2, 1, 4, 1, 3, 1, 1.0, 0.1, 0.2]
LIGHT_SHARE, LIGHT_RATE, ENGAGED_RATE = 0.5, (-3.0, 1.0), (0.03, 0.78)  # (mu, sigma) of log events/day
EVENTS_PER_VISIT, MAX_VISIT_PROBABILITY = 4.0, 0.8
ARRIVAL_DAYS, MEAN_LIFETIME_DAYS = 400, 1500


def _strings(chars: np.ndarray) -> pa.Array:
    """Fixed-width ASCII strings from a (n, width) uint8 matrix, built without a Python loop."""
    n, width = chars.shape
    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int32) * width).tobytes())
    return pa.StringArray.from_buffers(n, offsets, pa.py_buffer(np.ascontiguousarray(chars).tobytes()))


def _decimal_ids(prefix: str, values: np.ndarray, width: int) -> pa.Array:
    digits = (values[:, None] // 10 ** np.arange(width - 1, -1, -1)) % 10 + ord("0")
    head = np.broadcast_to(np.frombuffer(prefix.encode(), np.uint8), (len(values), len(prefix)))
    return _strings(np.hstack([head, digits.astype(np.uint8)]))


def _hex_ids(values: np.ndarray) -> pa.Array:
    nibbles = (values[:, None] >> (4 * np.arange(15, -1, -1, dtype=np.uint64))) & np.uint64(15)
    return _strings(np.frombuffer(b"0123456789abcdef", np.uint8)[nibbles.astype(np.int64)])


def _null_where(mask: np.ndarray, values: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(mask), pa.scalar(None, values.type), values)


def _profiles(rng: np.random.Generator, profiles: int, days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per profile: events a day while active, and the first and the last day (exclusive) it is active."""
    light = rng.random(profiles) < LIGHT_SHARE
    rate = np.where(light, rng.lognormal(*LIGHT_RATE, profiles), rng.lognormal(*ENGAGED_RATE, profiles))
    arrive = rng.uniform(-ARRIVAL_DAYS, days, profiles)
    life = rng.exponential(MEAN_LIFETIME_DAYS, profiles)
    gone = arrive + life <= 0  # a profile of the shop is active on some day of the data
    while gone.any():
        arrive[gone] = rng.uniform(-ARRIVAL_DAYS, days, gone.sum())
        life[gone] = rng.exponential(MEAN_LIFETIME_DAYS, gone.sum())
        gone = arrive + life <= 0
    return rate, arrive, arrive + life


def _day_events(day: dt.date, k: int, rate: np.ndarray, active: np.ndarray, profile_ids: pa.Array) -> pa.Table:
    """Day k's events, in RAW_EVENTS_SCHEMA, sorted by (profile_id, ts, event_id)."""
    rng = np.random.default_rng([2, 7, k])  # apart from the profiles' stream ([1, 7])
    visit_p = np.minimum(MAX_VISIT_PROBABILITY, rate / EVENTS_PER_VISIT)
    visitors = np.flatnonzero(active & (rng.random(len(rate)) < visit_p))
    per_visit = 1 + rng.poisson(rate[visitors] / visit_p[visitors] - 1)
    prof = np.repeat(visitors, per_visit)
    n = len(prof)
    start = rng.integers(0, MS_PER_DAY - VISIT_MS, len(visitors))
    day_ms = (day - dt.date(1970, 1, 1)).days * MS_PER_DAY
    ts = day_ms + np.repeat(start, per_visit) + rng.integers(0, VISIT_MS, n)
    event_u64 = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64)
    # Profile ids are zero-padded decimals: their index order is their string order.
    order = np.lexsort((event_u64, ts, prof))
    prof, ts, event_u64 = prof[order], ts[order], event_u64[order]
    types = rng.choice(len(ACTION_TYPES), n, p=np.array(TYPE_WEIGHTS) / sum(TYPE_WEIGHTS))
    article = (100_000 * rng.random(n) ** 3).astype(np.int64)
    no_article = ~np.array([t in ARTICLE_EVENT_TYPES for t in ACTION_TYPES])[types]
    session = (prof.astype(np.uint64) << np.uint64(12)) + np.uint64(k)
    return pa.table(
        {
            "event_id": _hex_ids(event_u64),
            "profile_id": profile_ids.take(pa.array(prof)),
            "session_id": _hex_ids(session),
            "ts": pa.array(ts, pa.timestamp("ms", tz="UTC")),
            "event_type": pa.array(np.array(ACTION_TYPES)[types]),
            "article_id": _null_where(no_article, _decimal_ids("a", article, 7)),
            "brand_id": _null_where(no_article, _decimal_ids("b", article % 2000, 4)),
            "category": _null_where(no_article, _decimal_ids("c", article % 60, 2)),
            "price": pa.array(9.99 + (article * 7919) % 200, mask=no_article),
        },
        schema=RAW_EVENTS_SCHEMA,
    )


def generate(data_dir: Path, profiles: int, days: int, last_day: dt.date, buckets: int, horizon_days: int) -> dict:
    """raw_events of `profiles` profiles for `days` days up to `last_day` in `buckets` profile buckets,
    cached under data_dir: {"files": {day: [[paths of bucket b]]}, "events": {day: n}, "shop": figures}.

    The shop figures are about `last_day`: profiles with an event in its horizon, eligible profiles,
    and the median and p90 of the eligible ones' events over the horizon."""
    root = data_dir / f"raw-v{VERSION}-p{profiles}-d{days}-b{buckets}-{last_day}"
    manifest = root / "manifest.json"
    if manifest.exists():
        return json.loads(manifest.read_text())
    rng = np.random.default_rng([1, 7])
    rate, arrive, leave = _profiles(rng, profiles, days)
    profile_ids = _decimal_ids("p", np.arange(profiles), 9)
    bucket_of = profile_bucket(profile_ids, buckets)
    in_horizon = np.zeros(profiles, np.int64)
    recent = np.zeros(profiles, np.int64)
    files: dict[str, list[list[str]]] = {}
    counts: dict[str, int] = {}
    for k in range(days):
        day = last_day - dt.timedelta(days=days - 1 - k)
        table = _day_events(day, k, rate, (arrive <= k) & (k < leave), profile_ids)
        prof = pc.cast(pc.utf8_slice_codeunits(table["profile_id"], 1), pa.int64()).to_numpy()
        if k >= days - horizon_days:
            np.add.at(in_horizon, prof, 1)
        if k >= days - ELIGIBILITY_DAYS:
            np.add.at(recent, prof, 1)
        by_bucket = bucket_of[prof]
        files[str(day)] = []
        for b in range(buckets):
            path = part_path({DATE: day, PROFILE_BUCKET: b}, "bench", b, str(root))
            part = table.filter(pa.array(by_bucket == b))
            write_parquet(part, path, compression=COMPRESSION, use_dictionary=list(DICTIONARY_COLUMNS))
            files[str(day)].append([path])
        counts[str(day)] = table.num_rows
        if k % 30 == 0 or k == days - 1:
            print(f"  generated {day}: {table.num_rows:,} events", flush=True)
    eligible = recent >= MIN_EVENTS
    shop = {
        "profiles_in_horizon": int(np.count_nonzero(in_horizon)),
        "eligible": int(eligible.sum()),
        "eligible_events_p50": float(np.median(in_horizon[eligible])) if eligible.any() else 0.0,
        "eligible_events_p90": float(np.percentile(in_horizon[eligible], 90)) if eligible.any() else 0.0,
    }
    result = {"files": files, "events": counts, "shop": shop}
    manifest.write_text(json.dumps(result))
    return result

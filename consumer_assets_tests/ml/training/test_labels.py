"""Labels from raw_events and the profile split: the edges of the label window, stability, disjointness."""

from __future__ import annotations

import datetime as dt
import zlib

import numpy as np
import pyarrow as pa
import pytest

from consumer_assets.histories.schema import cutoff_ms
from consumer_assets.ml.training.labels import (
    cap_shares,
    epoch_ms,
    order_profiles,
    sample_mask,
    validation_mask,
    with_labels,
)
from consumer_assets.simulation import ShopSimulator, order_labels

D = dt.date(2026, 5, 10)
HOUR = 3_600_000
WEEK = 7 * 24 * HOUR


def events(rows: list[tuple[str, int, str]], unit: str = "ms") -> pa.Table:
    """raw_events rows (profile, epoch ms, event type); ts stored in `unit`."""
    scale = {"ms": 1, "us": 1000}[unit]
    table = pa.table(
        {
            "profile_id": [r[0] for r in rows],
            "ts": pa.array([r[1] * scale for r in rows], pa.int64()).cast(pa.timestamp(unit, tz="UTC")),
            "event_type": [r[2] for r in rows],
        }
    )
    return table


def test_label_window_is_the_seven_days_after_the_cutoff() -> None:
    c = cutoff_ms(D)  # D+1 00:00 UTC: the first instant a history as of D does not see
    rows = [
        ("before", c - 1, "order"),  # inside the history's window: not a label
        ("at_cutoff", c, "order"),  # the first instant after the history
        ("last_ms", c + WEEK - 1, "order"),
        ("after", c + WEEK, "order"),  # day D+8
        ("cart_only", c + HOUR, "cart_add"),
        ("twice", c + HOUR, "order"),
        ("twice", c + 2 * HOUR, "order"),
    ]
    for unit in ("ms", "us"):
        buyers = order_profiles(events(rows, unit), [D])
        assert buyers["profile_id"].to_pylist() == ["at_cutoff", "last_ms", "twice"]
        assert set(buyers["cutoff_date"].to_pylist()) == {D}


def test_several_cutoffs_in_one_stream_of_batches() -> None:
    c = cutoff_ms(D)
    rows = [("a", c + HOUR, "order"), ("b", c + WEEK + HOUR, "order"), ("c", c - 3 * 24 * HOUR, "order")]
    stream = events(rows).to_batches(max_chunksize=1)
    d1 = D + dt.timedelta(days=1)
    buyers = order_profiles(iter(stream), [d1, D, D - dt.timedelta(days=4)])
    got = {(r["cutoff_date"], r["profile_id"]) for r in buyers.to_pylist()}
    # "a" ordered on D+1: a buyer for D and D-4 (window D-3..D+3) but not for D+1 (D+2..D+8).
    assert got == {(D, "a"), (D - dt.timedelta(days=4), "a"), (d1, "b"), (D - dt.timedelta(days=4), "c")}


def test_labels_agree_with_the_simulator_on_its_events() -> None:
    sim = ShopSimulator(3000, 2, D - dt.timedelta(days=2))
    days = pa.concat_tables([sim.step() for _ in range(10)])
    cut = D - dt.timedelta(days=1)
    expected = order_labels(sim.profile_ids, days, cut + dt.timedelta(days=1), cut + dt.timedelta(days=7))
    histories = pa.table({"profile_id": sim.profile_ids, "date": pa.array([cut] * len(sim.profile_ids), pa.date32())})
    buyers = order_profiles(days, [cut])
    labelled = pa.Table.from_batches(list(with_labels(histories, buyers)))
    assert labelled["label"].to_numpy().astype(bool).tolist() == expected.tolist()
    assert expected.sum() > 20
    # The cut-off given for every row, and a string partition column, say the same.
    as_string = histories.set_column(1, "date", pa.array([str(cut)] * histories.num_rows))
    for batches in (with_labels(histories.drop(["date"]), buyers, cutoff=cut), with_labels(as_string, buyers)):
        assert pa.Table.from_batches(list(batches))["label"].equals(labelled["label"])


def test_rows_of_other_days_are_not_labelled_by_this_days_buyers() -> None:
    buyers = pa.table({"cutoff_date": pa.array([D], pa.date32()), "profile_id": ["p"]})
    rows = pa.table({"profile_id": ["p", "p", "q"], "date": pa.array([D, D - dt.timedelta(days=1), D], pa.date32())})
    assert next(with_labels(rows, buyers)).column("label").to_pylist() == [1, 0, 0]


def test_epoch_ms_refuses_non_timestamps() -> None:
    with pytest.raises(TypeError):
        epoch_ms(pa.array([1, 2]))
    assert epoch_ms(pa.array([1_500_000], pa.timestamp("us"))).tolist() == [1500]


def test_split_is_stable_disjoint_and_near_its_share() -> None:
    ids = pa.array([f"{i:016x}" for i in range(20_000)])
    held = validation_mask(ids, 0.3)
    assert abs(held.mean() - 0.3) < 0.015
    # The same profile is held out whatever else is in the batch, and in whatever order.
    perm = np.random.default_rng(0).permutation(len(ids))
    assert np.array_equal(validation_mask(ids.take(pa.array(perm)), 0.3), held[perm])
    assert np.array_equal(validation_mask(pa.chunked_array([ids[:7], ids[7:]]), 0.3), held)
    # A larger share only adds profiles: none of today's validation profiles was trained on before.
    assert not (held & ~validation_mask(ids, 0.4)).any()
    assert validation_mask(ids, 0.0).sum() == 0 and validation_mask(ids, 1.0).all()
    # Independent of the raw_events profile buckets (crc32 mod 8).
    bucket = np.array([zlib.crc32(s.encode()) % 8 for s in ids.to_pylist()])
    shares = [held[bucket == b].mean() for b in range(8)]
    assert max(shares) - min(shares) < 0.06


def test_a_capped_day_keeps_about_the_cap_and_the_same_profiles_every_day() -> None:
    ids = pa.array([f"p{i}" for i in range(4000)])
    # Day 1 holds all 4,000 profiles, day 2 the first 1,000, day 3 the first 100 (under the cap).
    profiles = pa.concat_arrays([ids, ids[:1000], ids[:100]])
    days = np.repeat(np.array([1, 2, 3], dtype=np.int32), [4000, 1000, 100])
    counts = dict(zip(*np.unique(days, return_counts=True), strict=True))
    shares = cap_shares(counts, cap=400)
    assert shares == {1: 0.1, 2: 0.4}
    keep = sample_mask(profiles, days, shares)
    assert 320 < keep[days == 1].sum() < 480 and 320 < keep[days == 2].sum() < 480
    assert keep[days == 3].all()  # under the cap: every history
    kept = {d: set(profiles.filter(pa.array(keep & (days == d))).to_pylist()) for d in (1, 2)}
    assert kept[1] & set(ids[:1000].to_pylist()) <= kept[2]  # sampled at 0.1 on day 1: kept at 0.4 on day 2
    # Independent of the validation split's hash.
    held = validation_mask(profiles, 0.3)[days == 1]
    assert abs(keep[days == 1][held].mean() - keep[days == 1][~held].mean()) < 0.05
    assert cap_shares(counts, cap=0) == {} and sample_mask(profiles, days, {}).all()

"""The paths a scoring pass takes for a few values (sort_records, union_of in Python) equal the vectorised ones."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pyarrow as pa
import pytest

from consumer_assets.events.schema import ACTION_TYPES
from consumer_assets.histories import lists
from consumer_assets.histories.encode import sort_events, sort_records
from consumer_assets.ingest.validate import events_table

T0 = 1_793_404_800_000  # 2026-10-31T00:00Z


def records(rng: random.Random, n: int) -> list[tuple]:
    """raw_events records as ingest.validate keeps them, with ties on (profile, ts) and on ts alone,
    ids beyond ASCII (their code points and UTF-8 bytes order alike), missing and zero-length ids,
    missing, zero and NaN prices."""
    profiles = ["p2", "p10", "p1", "é-shopper", "z", "Ω"]
    out = []
    for i in range(n):
        out.append((
            f"e{rng.randrange(10**6)}-{i}",
            rng.choice(profiles),
            f"s{rng.randrange(3)}",
            T0 + rng.choice([0, 1, 1, 3_600_000, rng.randrange(86_400_000)]),
            rng.choice(ACTION_TYPES),
            rng.choice([None, "", "a1", "a2", f"a{rng.randrange(10**5)}"]),
            rng.choice([None, "b1", "ß"]),
            rng.choice([None, "shoes", "dresses"]),
            rng.choice([None, 0.0, float("nan"), 59.9, rng.uniform(0, 500)]),
        ))  # fmt: skip
    return out


@pytest.mark.parametrize("n", [0, 1, 3, 48, 300])
def test_sort_records_is_sort_events_of_their_table(n: int) -> None:
    rows = records(random.Random(n), n)
    fast, table = sort_records(rows), sort_events(events_table(rows))
    assert fast.profile_ids.equals(table.profile_ids)
    for field in dataclasses.fields(fast):
        if field.name != "profile_ids":
            mine, theirs = getattr(fast, field.name), getattr(table, field.name)
            assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs), field.name


def test_sort_records_refuses_what_sort_events_refuses() -> None:
    (row,) = records(random.Random(1), 1)
    with pytest.raises(ValueError, match=r"not in ACTION_TYPES: \['teleport'\]"):
        sort_records([(*row[:4], "teleport", *row[5:])])
    with pytest.raises(ValueError, match="must have a profile_id and a ts"):
        sort_records([(row[0], None, *row[2:])])


IDS = [([], []), (["p1"], []), ([], ["z", "p1"]), (["a", "p1", "é", "Ω"], ["b", "p1", "Ω", "ü"])]


@pytest.mark.parametrize(("a", "b"), IDS)
def test_union_of_few_ids_is_the_vectorised_union(monkeypatch: pytest.MonkeyPatch, a: list[str], b: list[str]) -> None:
    left, right = pa.array(a, pa.string()), pa.array(b, pa.string())
    union, pos_a, pos_b = lists.union_of(left, right)
    monkeypatch.setattr(lists, "SMALL", -1)  # the Arrow path, whatever the size
    want_union, want_a, want_b = lists.union_of(left, right)
    assert union.equals(want_union) and union.to_pylist() == sorted({*a, *b})
    assert pos_a.dtype == want_a.dtype == pos_b.dtype == want_b.dtype == np.int64
    assert pos_a.tolist() == want_a.tolist() and pos_b.tolist() == want_b.tolist()

"""Validation of landed lines: each bad record is quarantined for its own reason, and counts reconcile."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from consumer_assets.events.landing import MARKER, day_folder
from consumer_assets.events.schema import RAW_EVENTS_SCHEMA
from consumer_assets.ingest import landing as landing_module
from consumer_assets.ingest.dedupe import fingerprint
from consumer_assets.ingest.ingest import ingest_day
from consumer_assets.ingest.landing import LandingDayError
from consumer_assets.ingest.layout import bucketed
from consumer_assets.ingest.validate import REASONS
from consumer_assets_tests.support.factories import DAY, event, land, line

# One line per reason, each otherwise valid, so a wrong rule order or a lax rule shows up.
BAD_LINES: dict[str, bytes] = {
    "invalid_utf8": line(event(100)).replace(b"dresses", b"dre\xff\xfesses"),
    "invalid_json": line(event(101))[:-7],
    "not_an_object": b'["a", "list"]',
    "missing_field": line(event(102, profile_id="<drop>")),
    "wrong_type": line(event(103, price="12,99")),
    "unknown_event_type": line(event(104, event_type="teleport")),
    "invalid_timestamp": line(event(105, ts="yesterday at noon")),
    "timestamp_outside_day": line(event(106, ts="2026-03-05T00:00:00.000Z")),
    "invalid_value": line(event(107, price=-3.0)),
}


def test_each_bad_line_is_quarantined_for_its_own_reason(tmp_path: Path) -> None:
    good = [line(event(n)) for n in range(10)]
    uri = land(tmp_path, {"events-0000.jsonl.gz": good[:5] + list(BAD_LINES.values()) + good[5:]})
    day = ingest_day(uri, DAY, workers=1)
    assert day.events.num_rows == 10 and day.events.schema == RAW_EVENTS_SCHEMA
    got = dict(zip(day.quarantine["raw_line"].to_pylist(), day.quarantine["reason"].to_pylist(), strict=True))
    assert got == {raw: reason for reason, raw in BAD_LINES.items()}
    assert day.quarantine["line_number"].to_pylist() == list(range(6, 6 + len(BAD_LINES)))
    assert all(day.quarantine["detail"].to_pylist())
    assert set(day.reasons) <= set(REASONS)


def test_edge_values_that_are_valid(tmp_path: Path) -> None:
    records = [
        event(1, ts="2026-03-04T00:00:00.000Z"),  # midnight opens the day
        event(2, ts="2026-03-04T23:59:59.999Z"),
        event(3, ts="2026-03-05T00:30:00+01:00"),  # an offset that is still on the day in UTC
        event(4, event_type="search", article_id=None, brand_id=None, category=None, price=None),
        event(5, price=0),
        event(6, extra_field="ignored"),
    ]
    uri = land(tmp_path, {"e.jsonl.gz": [line(r) for r in records]})
    day = ingest_day(uri, DAY, workers=1)
    assert day.quarantine.num_rows == 0, day.quarantine.to_pylist()
    assert day.events["price"].to_pylist() == [19.5, 19.5, 19.5, None, 0.0, 19.5]


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (event(1, event_type="cart_add", article_id=None), "missing_field"),
        (event(2, ts="2026-03-04T10:00:00"), "invalid_timestamp"),  # no time zone
        (event(3, ts="2026-03-03T23:59:59.999Z"), "timestamp_outside_day"),
        (event(4, profile_id=17), "wrong_type"),
        (event(5, price=True), "wrong_type"),
        (event(6, event_id=None), "missing_field"),
        (event(7, event_type=["order"]), "wrong_type"),
        (event(8, event_id=""), "missing_field"),  # empty ids would all be one duplicate id, or one profile
        (event(9, profile_id=""), "missing_field"),
    ],
)
def test_more_rejections(tmp_path: Path, record: dict, reason: str) -> None:
    uri = land(tmp_path, {"e.jsonl.gz": [line(record)]})
    day = ingest_day(uri, DAY, workers=1)
    assert day.events.num_rows == 0 and day.quarantine["reason"].to_pylist() == [reason]


def test_empty_ids_are_quarantined_not_kept_as_one_id(tmp_path: Path) -> None:
    lines = [line(event(1, event_id="")), line(event(2, event_id="")), line(event(3, profile_id="")), line(event(4))]
    lines.append(line(event(5, event_id="", profile_id=17)))  # the type rule comes first
    for vectorised in (True, False):
        day = ingest_day(land(tmp_path, {"e.jsonl.gz": lines}), DAY, workers=1, vectorised=vectorised)
        assert day.events["event_id"].to_pylist() == [f"{4:016x}"]
        got = [(q["line_number"], q["reason"], q["detail"]) for q in day.quarantine.to_pylist()]
        assert got == [
            (1, "missing_field", "event_id is empty"),
            (2, "missing_field", "event_id is empty"),
            (3, "missing_field", "profile_id is empty"),
            (5, "wrong_type", "profile_id is a int, expected a string"),
        ]
        assert day.reasons == {"missing_field": 3, "wrong_type": 1}


def test_duplicates_keep_the_first_occurrence_across_files(tmp_path: Path) -> None:
    a = [line(event(n)) for n in range(6)]
    b = [line(event(3, ts="2026-03-04T22:00:00.000Z")), line(event(7)), line(event(0))]
    uri = land(tmp_path, {"events-0000.jsonl.gz": [*a, a[1]], "events-0001.jsonl.gz": b})
    day = ingest_day(uri, DAY, workers=1)
    assert sorted(day.events["event_id"].to_pylist()) == [f"{n:016x}" for n in range(8) if n != 6]
    kept_3 = day.events.filter(pc.equal(day.events["event_id"], f"{3:016x}"))
    assert kept_3["ts"][0].as_py().hour == 10  # the first file's version wins
    dupes = day.quarantine.to_pylist()
    assert [(d["source_file"], d["line_number"], d["reason"]) for d in dupes] == [
        ("events-0000.jsonl.gz", 7, "duplicate_event_id"),
        ("events-0001.jsonl.gz", 1, "duplicate_event_id"),
        ("events-0001.jsonl.gz", 3, "duplicate_event_id"),
    ]
    assert day.landed == 7 + 3


@pytest.mark.parametrize("one_file", [False, True], ids=["three files", "one file of many blocks"])
def test_parallel_workers_give_the_same_result(tmp_path: Path, one_file: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {
        f"events-{i:04d}.jsonl.gz": [line(event(n)) for n in range(i * 40, i * 40 + 50)] + [BAD_LINES["wrong_type"]]
        for i in range(3)
    }
    if one_file:  # blocks of a few lines: the workers share the file, repeats span blocks in flight at once
        monkeypatch.setattr(landing_module, "BLOCK_BYTES", 700)
        files = {"events.jsonl.gz": [row for rows in files.values() for row in rows]}
    uri = land(tmp_path, files)
    serial, parallel = ingest_day(uri, DAY, workers=1), ingest_day(uri, DAY, workers=3)
    assert parallel.events.equals(serial.events)
    assert parallel.quarantine.equals(serial.quarantine)
    assert serial.reasons == {"wrong_type": 3, "duplicate_event_id": 20}
    assert pc.all(pc.is_valid(parallel.quarantine["raw_line"])).as_py()


def test_missing_incomplete_and_inconsistent_days_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(LandingDayError, match=r"landing day 2026-03-04 is missing: no folder .*date=2026-03-04"):
        ingest_day(tmp_path.as_uri(), DAY)
    land(tmp_path, {"e.jsonl.gz": [line(event(1))]}, marker=False)
    with pytest.raises(LandingDayError, match=r"incomplete: .*date=2026-03-04 has no _SUCCESS"):
        ingest_day(tmp_path.as_uri(), DAY)
    folder = tmp_path / day_folder(DAY)
    (folder / MARKER).write_text(json.dumps({"files": {"e.jsonl.gz": 2, "gone.jsonl.gz": 1}}))
    with pytest.raises(LandingDayError, match=r"lists .*gone.jsonl.gz, which is missing"):
        ingest_day(tmp_path.as_uri(), DAY)
    (folder / MARKER).write_text(json.dumps({"files": {"e.jsonl.gz": 2}}))
    with pytest.raises(LandingDayError, match=r"e.jsonl.gz holds 1 lines but _SUCCESS promises 2"):
        ingest_day(tmp_path.as_uri(), DAY)


def test_bucketed_layout_partitions_profiles_and_sorts(tmp_path: Path) -> None:
    records = [event(n, profile_id=f"profile-{n % 11}", ts=f"2026-03-04T{23 - n % 24:02d}:00:00Z") for n in range(200)]
    day = ingest_day(land(tmp_path, {"e.jsonl.gz": [line(r) for r in records]}), DAY, workers=1)
    parts = bucketed(day.events, buckets=4)
    assert len(parts) == 4 and sum(p.num_rows for p in parts) == 200
    seen: set[str] = set()
    for part in parts:
        profiles = set(part["profile_id"].to_pylist())
        assert not profiles & seen  # a profile lives in exactly one bucket
        seen |= profiles
        rows = list(
            zip(part["profile_id"].to_pylist(), part["ts"].to_pylist(), part["event_id"].to_pylist(), strict=False)
        )
        assert rows == sorted(rows)


def test_marker_names_must_stay_inside_the_day(tmp_path: Path) -> None:
    land(tmp_path, {"e.jsonl.gz": [line(event(1))]})
    (tmp_path / day_folder(DAY) / MARKER).write_text(json.dumps({"files": {"../../secrets.jsonl.gz": 1}}))
    with pytest.raises(LandingDayError, match=r"lists '../../secrets.jsonl.gz', which is not a path inside the day"):
        ingest_day(tmp_path.as_uri(), DAY)


def test_a_day_with_no_files_is_an_empty_day(tmp_path: Path) -> None:
    land(tmp_path, {})
    day = ingest_day(tmp_path.as_uri(), DAY)
    assert day.events.num_rows == 0 and day.quarantine.num_rows == 0 and day.events.schema == RAW_EVENTS_SCHEMA


def test_an_article_event_without_article_id_after_type_checks(tmp_path: Path) -> None:
    # The article rule comes after the type rules: a wrong type elsewhere is the reason given.
    lines = [line(event(1, event_type="cart_add", article_id=None, brand_id=7)), line(event(2, article_id=None))]
    day = ingest_day(land(tmp_path, {"e.jsonl.gz": lines}), DAY, workers=1)
    assert day.quarantine["reason"].to_pylist() == ["wrong_type", "missing_field"]


@pytest.mark.parametrize("date_type", [pa.date32(), pa.string()])
def test_ids_kept_on_earlier_days_are_duplicates(tmp_path: Path, date_type: pa.DataType) -> None:
    lines = [line(event(n)) for n in range(6)] + [line(event(2))]
    uri = land(tmp_path, {"a.jsonl.gz": lines[:4], "b.jsonl.gz": lines[4:]})
    earlier = pa.table(
        {
            "event_id": pa.array([f"{2:016x}", f"{5:016x}", "never-seen-today"]),
            "date": pa.array([dt.date(2026, 3, 1), dt.date(2026, 3, 3), dt.date(2026, 3, 2)]).cast(date_type),
        }
    )
    for vectorised in (True, False):
        day = ingest_day(uri, DAY, earlier_ids=earlier, vectorised=vectorised)
        assert sorted(day.events["event_id"].to_pylist()) == [f"{n:016x}" for n in (0, 1, 3, 4)]
        rows = [(q["source_file"], q["line_number"], q["reason"], q["detail"]) for q in day.quarantine.to_pylist()]
        assert rows == [
            ("a.jsonl.gz", 3, "duplicate_event_id", f"event_id {2:016x} already kept on 2026-03-01"),
            ("b.jsonl.gz", 2, "duplicate_event_id", f"event_id {5:016x} already kept on 2026-03-03"),
            ("b.jsonl.gz", 3, "duplicate_event_id", f"event_id {2:016x} already kept on 2026-03-01"),
        ]
        assert day.quarantine["raw_line"].to_pylist() == [lines[2], lines[5], lines[6]]


def test_no_earlier_ids_change_nothing(tmp_path: Path) -> None:
    uri = land(tmp_path, {"a.jsonl.gz": [line(event(n)) for n in range(3)]})
    empty = pa.table({"event_id": pa.array([], pa.string()), "date": pa.array([], pa.date32())})
    assert ingest_day(uri, DAY, earlier_ids=empty).events.equals(ingest_day(uri, DAY).events)


def test_bucketed_layout_orders_events_of_one_millisecond_by_event_id(tmp_path: Path) -> None:
    rng = random.Random(3)
    numbers = rng.sample(range(10_000), 300)
    records = [event(n, profile_id=f"p{n % 7}", ts=f"2026-03-04T10:00:0{n % 3}.000Z") for n in numbers]
    day = ingest_day(land(tmp_path, {"e.jsonl.gz": [line(r) for r in records]}), DAY)
    parts = bucketed(day.events, buckets=3)
    reference = day.events.sort_by([("profile_id", "ascending"), ("ts", "ascending"), ("event_id", "ascending")])
    got = pa.concat_tables(parts).sort_by([("profile_id", "ascending"), ("ts", "ascending"), ("event_id", "ascending")])
    assert got.equals(reference)
    for part in parts:
        assert part.equals(part.sort_by([("profile_id", "ascending"), ("ts", "ascending"), ("event_id", "ascending")]))
    assert [p.num_rows for p in bucketed(day.events.slice(0, 0), buckets=3)] == [0, 0, 0]


def test_id_fingerprints_do_not_depend_on_the_neighbours() -> None:
    # Ids of one length are read as a matrix, mixed lengths one by one: the same id, the same value.
    same_length = pa.array(["0123456789abcdef", "fedcba9876543210"])
    mixed = pa.array(["x", "0123456789abcdef", "", None, "short", "fedcba9876543210-long"]).slice(1)
    assert fingerprint(same_length)[0] == fingerprint(mixed)[0]
    assert fingerprint(pa.array(["fedcba9876543210-long"]))[0] == fingerprint(mixed)[-1]
    assert fingerprint(pa.array(["short"]))[0] == fingerprint(mixed)[3]
    assert len(set(fingerprint(pa.array([f"{n:016x}" for n in range(10_000)])).tolist())) == 10_000


def test_ids_alike_in_fingerprint_are_told_apart(tmp_path: Path) -> None:
    # Same length, same first and last 8 bytes: one fingerprint, three different ids.
    alike = [f"aaaaaaaa-{c}-bbbbbbbb" for c in "xyz"]
    lines = [line(event(n, event_id=i)) for n, i in enumerate(alike)] + [line(event(9, event_id=alike[1]))]
    day = ingest_day(land(tmp_path, {"e.jsonl.gz": lines}), DAY)
    assert len(set(fingerprint(pa.array(alike)).tolist())) == 1
    assert day.events["event_id"].to_pylist() == alike
    assert day.quarantine["line_number"].to_pylist() == [4]
    assert day.quarantine["detail"].to_pylist() == [f"event_id {alike[1]} already kept from e.jsonl.gz line 2"]
    # Kept on an earlier day: one id of the three, and one more of their fingerprint that is not here today.
    earlier = pa.table(
        {"event_id": ["aaaaaaaa-w-bbbbbbbb", alike[1]], "date": pa.array([dt.date(2026, 3, 2)] * 2, pa.date32())}
    )
    day = ingest_day(land(tmp_path, {"e.jsonl.gz": lines}), DAY, earlier_ids=earlier)
    assert day.events["event_id"].to_pylist() == [alike[0], alike[2]]
    assert day.quarantine["line_number"].to_pylist() == [2, 4]
    assert set(day.quarantine["detail"].to_pylist()) == {f"event_id {alike[1]} already kept on 2026-03-02"}

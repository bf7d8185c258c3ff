"""The simulator's landing zone: layout, the event contract, determinism and the bad-record mix."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from consumer_assets.events.landing import MARKER, data_file_name, day_folder
from consumer_assets.events.schema import (
    ACTION_TYPES,
    ARTICLE_EVENT_TYPES,
    LANDING_FIELDS,
    RAW_EVENTS_SCHEMA,
    REQUIRED_FIELDS,
)
from consumer_assets.simulation import CORRUPTION_KINDS, LandedDay, ShopSimulator, simulate_to_landing

START = dt.date(2026, 1, 4)  # a Sunday
PROFILES = 4000
HEX16 = re.compile(r"[0-9a-f]{16}")
TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def _run(root: Path, days: int, seed: int = 7, corrupt: float = 0.0) -> list[LandedDay]:
    return list(simulate_to_landing(str(root), START, days, profiles=PROFILES, seed=seed, corrupt=corrupt))


def _day_dir(root: Path, day: dt.date) -> Path:
    return root / day_folder(day)


def _lines(root: Path, day: dt.date) -> list[bytes]:
    marker = json.loads((_day_dir(root, day) / MARKER).read_text())
    lines: list[bytes] = []
    for name in marker["files"]:
        lines += gzip.decompress((_day_dir(root, day) / name).read_bytes()).splitlines(keepends=True)
    return lines


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[LandedDay]]:
    root = tmp_path_factory.mktemp("landing") / "clean"
    return root, _run(root, days=3)


def test_layout_and_success_marker_match_the_files(clean: tuple[Path, list[LandedDay]]) -> None:
    root, summaries = clean
    assert [s.date for s in summaries] == [START + dt.timedelta(days=k) for k in range(3)]
    assert sorted(p.name for p in root.iterdir()) == [day_folder(s.date) for s in summaries]
    for s in summaries:
        folder = _day_dir(root, s.date)
        marker = json.loads((folder / MARKER).read_text())
        assert marker == {"date": s.date.isoformat(), "files": s.files, "records": s.records}
        assert len(s.files) >= 2
        assert sorted(p.name for p in folder.iterdir()) == sorted([*s.files, MARKER])
        assert list(s.files) == [data_file_name(i) for i in range(len(s.files))]
        for name, count in s.files.items():
            data = gzip.decompress((folder / name).read_bytes())
            assert data.count(b"\n") == count and (not data or data.endswith(b"\n"))
        assert s.records == sum(s.files.values()) == s.events
        assert s.corruptions == dict.fromkeys(CORRUPTION_KINDS, 0)
        as_dict = json.loads(json.dumps(s.as_dict()))
        assert set(as_dict) == {"date", "files", "records", "events", "corruptions", "seconds"}
    # Events per profile and day in the intended range (most profiles are inactive on a day).
    assert 0.3 < summaries[0].events / PROFILES < 1.5


def test_every_clean_line_follows_the_event_contract(clean: tuple[Path, list[LandedDay]]) -> None:
    root, summaries = clean
    seen_ids: set[str] = set()
    profiles_per_day = []
    for s in summaries:
        last_ts = ""
        records = [json.loads(line.decode("utf-8")) for line in _lines(root, s.date)]
        for r in records:
            assert list(r) == list(LANDING_FIELDS)
            for field in ("event_id", "profile_id", "session_id"):
                assert HEX16.fullmatch(r[field]), r
            assert TS.fullmatch(r["ts"]) and r["ts"][:10] == s.date.isoformat()
            assert r["ts"] >= last_ts  # lines land in time order
            last_ts = r["ts"]
            assert r["event_type"] in ACTION_TYPES
            article_fields = [r["article_id"], r["brand_id"], r["category"], r["price"]]
            if r["event_type"] in ARTICLE_EVENT_TYPES:
                assert all(isinstance(v, str) for v in article_fields[:3])
                assert isinstance(r["price"], int | float) and r["price"] > 0
            else:
                assert article_fields == [None] * 4
        ids = [r["event_id"] for r in records]
        assert len(set(ids)) == len(ids) and not seen_ids & set(ids)
        seen_ids |= set(ids)
        profiles_per_day.append({r["profile_id"] for r in records})
        types = Counter(r["event_type"] for r in records)
        assert types["product_view"] > types["cart_add"] > types["order"] > 0
    # Profiles come back on later days under the same anonymous id.
    assert len(profiles_per_day[0] & profiles_per_day[1]) > 0.2 * len(profiles_per_day[1])


def test_same_seed_gives_identical_bytes_and_another_seed_differs(
    clean: tuple[Path, list[LandedDay]], tmp_path: Path
) -> None:
    root, _ = clean
    _run(tmp_path / "again", days=3)
    assert _tree(tmp_path / "again") == _tree(root)
    _run(tmp_path / "other", days=1, seed=8)
    first = f"{day_folder(START)}/{data_file_name(0)}"
    assert _tree(tmp_path / "other")[first] != _tree(root)[first]


def test_a_day_does_not_depend_on_how_many_days_follow(clean: tuple[Path, list[LandedDay]], tmp_path: Path) -> None:
    root, _ = clean
    _run(tmp_path / "short", days=2)
    full = _tree(root)
    short = _tree(tmp_path / "short")
    assert short and all(full[name] == data for name, data in short.items())


def test_step_table_is_the_landed_day(clean: tuple[Path, list[LandedDay]]) -> None:
    root, _ = clean
    sim = ShopSimulator(PROFILES, 7, START)
    assert sim.day == START - dt.timedelta(days=1)
    table = sim.step()
    assert sim.day == START
    assert table.schema == RAW_EVENTS_SCHEMA
    landed = [json.loads(line) for line in _lines(root, START)]
    rows = table.to_pylist()
    assert len(rows) == len(landed)
    for row, rec in zip(rows, landed, strict=True):
        ts = row.pop("ts")
        assert f"{ts:%Y-%m-%dT%H:%M:%S}.{ts.microsecond // 1000:03d}Z" == rec.pop("ts")
        assert row == rec
    ids = sim.profile_ids.to_pylist()
    assert len(set(ids)) == PROFILES and all(HEX16.fullmatch(i) for i in ids)
    assert set(table["profile_id"].to_pylist()) <= set(ids)


# --- bad records -------------------------------------------------------------------------------


def _classify(raw: bytes, day: dt.date, seen: set[str]) -> str | None:
    """An independent reading of the contract: the reason a landed line is rejected, or None."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8"
    body = text.rstrip("\n")
    try:
        record = json.loads(body)
    except json.JSONDecodeError as err:
        # A cut-short line lost its closing brace; other breakage keeps it or adds data after it.
        return "invalid_json" if body.endswith("}") or err.msg == "Extra data" else "truncated"
    if not isinstance(record, dict) or set(record) - set(LANDING_FIELDS):
        return "invalid_json"
    if any(field not in record for field in REQUIRED_FIELDS):
        return "missing_field"
    for field, kind in LANDING_FIELDS.items():
        value = record.get(field)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            return "wrong_type"
    if record["event_type"] not in ACTION_TYPES:
        return "unknown_event_type"
    if not TS.fullmatch(record["ts"]):
        return "invalid_timestamp"
    try:
        ts = dt.datetime.fromisoformat(record["ts"].replace("Z", "+00:00"))
    except ValueError:
        return "invalid_timestamp"
    if ts.date() != day:
        return "timestamp_outside_day"
    has_article = [record.get(f) is not None for f in ("article_id", "brand_id", "category", "price")]
    if has_article != [record["event_type"] in ARTICLE_EVENT_TYPES] * 4:
        return "inconsistent_article"  # never produced: would fail the test below
    if record["event_id"] in seen:
        return "duplicate"
    seen.add(record["event_id"])
    return None


@pytest.mark.parametrize("rate", [0.01, 0.2])
def test_each_bad_line_fails_for_its_own_reason_and_counts_reconcile(
    clean: tuple[Path, list[LandedDay]], tmp_path: Path, rate: float
) -> None:
    root, clean_summaries = clean
    (s,) = _run(tmp_path / "bad", days=1, corrupt=rate)
    lines = _lines(tmp_path / "bad", START)
    assert s.records == len(lines) == sum(s.files.values())
    bad = sum(s.corruptions.values())
    assert abs(bad - rate * s.records) <= 1  # the requested share of landed lines, up to rounding
    assert set(s.corruptions) == set(CORRUPTION_KINDS) and min(s.corruptions.values()) >= 1
    seen: set[str] = set()
    reasons = [_classify(line, START, seen) for line in lines]
    found = Counter(r for r in reasons if r is not None)
    assert found == Counter({k: v for k, v in s.corruptions.items() if v})
    kept = [line for line, r in zip(lines, reasons, strict=True) if r is None]
    assert len(kept) + sum(found.values()) == s.records
    assert len(kept) == s.records - bad == s.events - (bad - s.corruptions["duplicate"])
    # The clean stream does not depend on the rate: kept lines are the clean day's lines, in order.
    assert s.events == clean_summaries[0].events
    clean_lines = _lines(root, START)
    clean_set = set(clean_lines)
    assert all(line in clean_set for line in kept)
    positions = {line: i for i, line in enumerate(clean_lines)}
    assert [positions[line] for line in kept] == sorted(positions[line] for line in kept)
    # A duplicate is a byte-exact copy of a line seen earlier the same day.
    first_seen = {json.loads(line)["event_id"]: line for line, r in zip(lines, reasons, strict=True) if r is None}
    for line, r in zip(lines, reasons, strict=True):
        if r == "duplicate":
            assert line == first_seen[json.loads(line)["event_id"]]


def test_rejects_out_of_range_rates(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        next(simulate_to_landing(str(tmp_path), START, 1, profiles=10, seed=0, corrupt=1.5))


# --- object storage ------------------------------------------------------------------------------


def test_writes_the_landing_zone_and_truth_to_s3(
    s3_endpoint: str, clean: tuple[Path, list[LandedDay]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.fs as pafs

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    fs = pafs.S3FileSystem(
        access_key="testing", secret_key="testing", endpoint_override=s3_endpoint, allow_bucket_creation=True
    )
    fs.create_dir("shop")
    root, _ = clean
    (s,) = list(
        simulate_to_landing("s3://shop/landing", START, 1, profiles=PROFILES, seed=7, truth_uri="s3://shop/truth")
    )
    day = day_folder(START)
    listed = sorted(i.base_name for i in fs.get_file_info(pafs.FileSelector(f"shop/landing/{day}")))
    assert listed == sorted([*s.files, MARKER])
    for name in s.files:
        with fs.open_input_stream(f"shop/landing/{day}/{name}", compression=None) as f:
            assert f.read() == (root / day / name).read_bytes()
    import pyarrow.parquet as pq

    truth = pq.read_table(f"shop/truth/{day}/truth.parquet", filesystem=fs)
    assert truth.schema == pa.schema([("profile_id", pa.string()), ("p_order_7d", pa.float64())])
    assert truth.num_rows == PROFILES


def test_rerunning_a_day_replaces_it_whole(tmp_path: Path) -> None:
    _run(tmp_path, days=1)
    folder = _day_dir(tmp_path, START)
    (folder / data_file_name(9)).write_bytes(gzip.compress(b"stale\n"))
    (s,) = _run(tmp_path, days=1)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*s.files, MARKER])


def test_cli_simulate_prints_one_summary_per_day(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from consumer_assets.cli import main

    args = ["simulate", "--landing", str(tmp_path / "l"), "--start", "2026-01-04", "--days", "2"]
    args += ["--profiles", "500", "--seed", "3", "--corrupt", "0.05", "--truth", (tmp_path / "t").as_uri()]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    days = [json.loads(line) for line in result.output.splitlines()]
    assert [d["date"] for d in days] == ["2026-01-04", "2026-01-05"]
    assert all(sum(d["corruptions"].values()) > 0 for d in days)
    assert (tmp_path / "t" / day_folder(dt.date(2026, 1, 5)) / "truth.parquet").is_file()

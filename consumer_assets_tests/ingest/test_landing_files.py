"""What a landing day folder holds beyond its data files: links never followed, every file left out named."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from consumer_assets.events.landing import DATED_FOLDERS, MARKER, day_folder
from consumer_assets.ingest.delivery import completed_at, delivery
from consumer_assets.ingest.ingest import ingest_day
from consumer_assets.ingest.landing import LandingDayError, LandingRules, open_day
from consumer_assets_tests.support.factories import DAY, event, land, line
from consumer_assets_tests.support.services import s3_client

QUIET = LandingRules(require_marker=False, quiet_minutes=30)


def lines(*numbers: int) -> list[bytes]:
    return [line(event(n)) for n in numbers]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file elsewhere on the machine, next to (not below) the landing root, that looks like a day's data."""
    secret = tmp_path / "elsewhere" / "secret.jsonl"
    secret.parent.mkdir()
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n" + line(event(99)) + b"\n")
    return secret


def test_a_symlinked_file_is_refused_and_never_read(tmp_path: Path, outside: Path) -> None:
    landing = tmp_path / "landing"
    uri = land(landing, {"a.jsonl": lines(1, 2)}, marker="empty")
    os.symlink(outside, landing / day_folder(DAY) / "x.jsonl")
    with pytest.raises(LandingDayError, match=rf"date=2026-03-04/x.jsonl is a symbolic link \(to {outside}\)"):
        ingest_day(uri, DAY)
    # Under a JSON marker that names it too.
    land(landing, {"a.jsonl": lines(1, 2), "x.jsonl": lines(3)})
    (landing / day_folder(DAY) / "x.jsonl").unlink()
    os.symlink("/etc/passwd", landing / day_folder(DAY) / "x.jsonl")
    with pytest.raises(LandingDayError, match=r"x.jsonl is a symbolic link \(to /etc/passwd\); links are never"):
        ingest_day(uri, DAY)


def test_a_symlinked_folder_and_a_link_loop_are_refused(tmp_path: Path, outside: Path) -> None:
    landing = tmp_path / "landing"
    uri = land(landing, {"a.jsonl": lines(1)}, marker="empty")
    folder = landing / day_folder(DAY)
    os.symlink(outside.parent, folder / "hour=13")
    with pytest.raises(LandingDayError, match=r"date=2026-03-04/hour=13 is a symbolic link"):
        open_day(uri, DAY)
    (folder / "hour=13").unlink()
    os.symlink(".", folder / "loop")  # followed, it would read a.jsonl again and again
    with pytest.raises(LandingDayError, match=r"date=2026-03-04/loop is a symbolic link \(to \.\)"):
        open_day(uri, DAY)
    (folder / "loop").unlink()
    os.symlink(outside, folder / "_temporary")  # bookkeeping names are no way round it
    with pytest.raises(LandingDayError, match=r"date=2026-03-04/_temporary is a symbolic link"):
        open_day(uri, DAY)
    (folder / "_temporary").unlink()
    assert ingest_day(uri, DAY).events.num_rows == 1


def test_a_symlinked_marker_or_day_folder_is_refused(tmp_path: Path, outside: Path) -> None:
    landing = tmp_path / "landing"
    uri = land(landing, {"a.jsonl": lines(1)})
    folder = landing / day_folder(DAY)
    (folder / MARKER).unlink()
    os.symlink(outside, folder / MARKER)
    with pytest.raises(LandingDayError, match=r"date=2026-03-04/_SUCCESS is a symbolic link"):
        open_day(uri, DAY)
    # A day folder, or a folder above it, that links elsewhere.
    land(tmp_path / "real", {"a.jsonl": lines(1)}, layout=DATED_FOLDERS)
    (landing / "2026").mkdir()
    os.symlink(tmp_path / "real" / "2026" / "03", landing / "2026" / "03")
    with pytest.raises(LandingDayError, match=r"landing/2026/03 is a symbolic link"):
        open_day(uri, DAY, LandingRules(layout=DATED_FOLDERS))


def test_a_link_put_in_place_after_the_day_was_listed_is_not_followed(tmp_path: Path, outside: Path) -> None:
    landing = tmp_path / "landing"
    uri = land(landing, {"hour=1/a.jsonl": lines(1)}, marker="empty")
    landed = open_day(uri, DAY)
    hour = landing / day_folder(DAY) / "hour=1"
    (hour / "a.jsonl").unlink()
    os.symlink(outside, hour / "a.jsonl")
    with pytest.raises(LandingDayError, match=r"hour=1/a.jsonl cannot be read as plain text: .*symbolic links"):
        list(landed.blocks(landed.files[0]))
    (hour / "a.jsonl").unlink()
    hour.rmdir()
    (outside.parent / "a.jsonl").write_bytes(outside.read_bytes())
    os.symlink(outside.parent, hour)  # the folder on the way, this time
    with pytest.raises(LandingDayError, match=r"hour=1/a.jsonl cannot be read as plain text"):
        list(landed.blocks(landed.files[0]))


def test_a_day_with_a_link_is_still_requested_so_that_its_run_fails(tmp_path: Path, outside: Path) -> None:
    # Left incomplete, a broken day would never be requested and nobody would hear of it.
    landing = tmp_path / "landing"
    uri = land(landing, {"a.jsonl": lines(1)}, marker=None)
    os.symlink(outside, landing / day_folder(DAY) / "x.jsonl")
    quiet = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=31)  # the files were written just now
    assert completed_at(uri, DAY, QUIET, now=quiet) is not None
    assert delivery(uri, DAY, QUIET, now=quiet) is not None
    with pytest.raises(LandingDayError, match=r"x.jsonl is a symbolic link"):
        open_day(uri, DAY, QUIET, now=quiet)


@pytest.mark.parametrize("name", ["../other/x.jsonl", "/etc/passwd", "hour=1/../../x.jsonl"])
def test_a_marker_naming_a_path_outside_the_day_is_refused(storage_root: str, name: str) -> None:
    landing = f"{storage_root}/landing"
    land(landing, {"x.jsonl": lines(1)}, day=DAY - dt.timedelta(days=1), marker="empty")  # what ../other would hit
    land(landing, {"a.jsonl": lines(2)})
    marker = f'{{"files": {{"a.jsonl": 1, "{name}": 1}}}}'.encode()
    land(landing, {MARKER: marker}, marker=None)
    with pytest.raises(LandingDayError, match=rf"_SUCCESS lists '{name}', which is not a path inside the day folder"):
        ingest_day(landing, DAY)


def test_files_left_out_are_named_with_their_reason(tmp_path: Path) -> None:
    odd = {
        "b.JSONL": lines(3),
        "c.ndjson": lines(4),
        "hour=2/d.jsonl.gz.tmp": lines(5),
        "e.jsonl.bz2": b"BZh9",
        "manifest.csv": b"file,rows\n",
        "_committed_1": b"{}",
        ".a.jsonl.crc": b"crc",
    }
    uri = land(tmp_path, {"a.jsonl": lines(1, 2), **odd}, marker="empty")
    landed = open_day(uri, DAY)
    assert [f.name for f in landed.files] == ["a.jsonl"]
    skipped = {s.name: (s.reason, s.looks_like_data) for s in landed.skipped}
    unnamed = "not named *.jsonl.gz, *.json.gz, *.jsonl or *.json"
    assert skipped == {
        "b.JSONL": (unnamed, True),
        "c.ndjson": (unnamed, True),
        "hour=2/d.jsonl.gz.tmp": (unnamed, True),
        "e.jsonl.bz2": (unnamed, True),
        "manifest.csv": (unnamed, False),
        "_committed_1": ("bookkeeping (a name starting with _ or .)", False),
        ".a.jsonl.crc": ("bookkeeping (a name starting with _ or .)", False),
    }
    # Under a JSON marker what it does not name is left out, whatever its name.
    land(tmp_path, {"a.jsonl": lines(1, 2)})
    skipped = {s.name: (s.reason, s.looks_like_data) for s in open_day(uri, DAY).skipped}
    assert skipped["b.JSONL"] == ("not listed in _SUCCESS", True)
    assert skipped["manifest.csv"] == ("not listed in _SUCCESS", False)


def test_a_day_that_would_ingest_nothing_beside_data_fails(tmp_path: Path) -> None:
    uri = land(tmp_path, {"a.jsonl.gz": lines(*range(500)), "b.jsonl.gz": lines(*range(500, 1000))}, marker=None)
    land(tmp_path, {MARKER: b'{"files": {}}'}, marker=None)
    with pytest.raises(LandingDayError, match=r"ingests no file, yet holds 2 that look like data: a.jsonl.gz \(not"):
        ingest_day(uri, DAY)
    land(tmp_path, {"a.JSONL": lines(1)}, day=DAY + dt.timedelta(days=1), marker="empty")
    with pytest.raises(LandingDayError, match=r"a.JSONL \(not named \*.jsonl.gz"):
        ingest_day(uri, DAY + dt.timedelta(days=1))
    # A day with nothing that looks like data is an empty day, not an error.
    land(tmp_path, {"README.txt": b"nothing today"}, day=DAY + dt.timedelta(days=2), marker="empty")
    assert ingest_day(uri, DAY + dt.timedelta(days=2)).landed == 0


def test_the_delivery_changes_with_any_file_and_only_then(tmp_path: Path) -> None:
    uri = land(tmp_path, {MARKER: b'{"files": {}}'}, marker=None)
    first = delivery(uri, DAY)
    assert first is not None and delivery(uri, DAY) == first
    folder = tmp_path / day_folder(DAY)
    (folder / "late.jsonl").write_bytes(b"\n".join(lines(1)) + b"\n")  # arrives after the (empty) marker
    second = delivery(uri, DAY)
    assert second != first
    os.utime(folder / "late.jsonl", ns=(0, (folder / "late.jsonl").stat().st_mtime_ns + 10**9))  # rewritten
    assert delivery(uri, DAY) != second
    # Bookkeeping churn (a producer's task files) does not re-run a day.
    third = delivery(uri, DAY)
    (folder / "_temporary").mkdir()
    (folder / "_temporary" / "part-0.jsonl").write_bytes(b"")
    assert delivery(uri, DAY) == third
    assert delivery(uri, DAY + dt.timedelta(days=1)) is None  # nothing landed
    assert delivery(uri, DAY, QUIET, now=dt.datetime(2026, 3, 4, 12, tzinfo=dt.UTC)) == third  # the marker decides


@pytest.mark.slow
def test_on_s3_a_day_is_its_prefix_and_no_key_leads_out_of_it(s3_root: str) -> None:
    landing = f"{s3_root}/landing"
    land(landing, {"a.jsonl": lines(1)}, marker="empty")
    land(f"{landing}/date=2026-03-04x", {"b.jsonl": lines(2)}, day=DAY, marker=None)  # a prefix like the day's
    landed = open_day(landing, DAY)
    assert [f.name for f in landed.files] == ["a.jsonl"] and landed.skipped == ()
    bucket, prefix = landing.removeprefix("s3://").split("/", 1)
    # A key, not a path: S3 stores it as named (pyarrow would resolve the `..` before writing).
    s3_client().put_object(Bucket=bucket, Key=f"{prefix}/{day_folder(DAY)}/../x.jsonl", Body=line(event(3)))
    with pytest.raises(LandingDayError, match=r"date=2026-03-04/../x.jsonl is a key whose name leads out of the day"):
        open_day(landing, DAY)

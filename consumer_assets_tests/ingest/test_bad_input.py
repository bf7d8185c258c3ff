"""Input built to hurt: lines far over the length limit, days of nothing but bad lines. Memory stays bounded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from isal import igzip

from consumer_assets.events.landing import day_folder
from consumer_assets.events.schema import QUARANTINE_SCHEMA
from consumer_assets.ingest import ingest as ingest_module
from consumer_assets.ingest import landing as landing_module
from consumer_assets.ingest import lines as lines_module
from consumer_assets.ingest.ingest import ingest_day
from consumer_assets.ingest.landing import LandingDayError, LandingRules, open_day
from consumer_assets.ingest.quarantine import QuarantineBatches
from consumer_assets_tests.support.factories import DAY, event, land, line

LIMIT = 1024
ROOT = Path(__file__).resolve().parents[2]


def long_line(length: int) -> bytes:
    return b'{"event_id":"' + b"x" * (length - 15) + b'"}'


def padded(n: int, length: int) -> bytes:
    """A valid event line of exactly `length` bytes."""
    text = line(event(n, context=""))
    return line(event(n, context="p" * (length - len(text))))


@pytest.mark.parametrize("vectorised", [True, False], ids=["fast path", "per line"])
@pytest.mark.parametrize("block_bytes", [None, 700], ids=["4 MB blocks", "blocks of a few lines"])
def test_lines_over_the_limit_are_quarantined_with_their_first_bytes(
    tmp_path: Path, vectorised: bool, block_bytes: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(landing_module, "BLOCK_BYTES", block_bytes or landing_module.BLOCK_BYTES)
    huge, over, at_limit = long_line(5_000_000), padded(90, LIMIT + 1), padded(91, LIMIT)
    files = {
        "a.jsonl.gz": b"".join(
            x + b"\n" for x in [line(event(0)), huge, line(event(1)), over, at_limit, b"{bad", line(event(1))]
        ),
        # A repeat of a's first event after a long line: its raw line is read again by its number.
        "b.jsonl": b"".join(x + b"\n" for x in [line(event(3)), huge, line(event(0))]),
        "c.jsonl": line(event(4)) + b"\n" + huge,  # the last line, without a newline
    }
    uri = land(tmp_path, {n: igzip.compress(d) if n.endswith(".gz") else d for n, d in files.items()}, marker="empty")

    day = ingest_day(uri, DAY, rules=LandingRules(max_line_bytes=LIMIT), workers=2, vectorised=vectorised)

    assert sorted(day.events["event_id"].to_pylist()) == [f"{n:016x}" for n in (0, 1, 3, 4, 91)]
    rows = [(q["source_file"], q["line_number"], q["reason"], q["raw_line"]) for q in day.quarantine.to_pylist()]
    assert rows == [
        ("a.jsonl.gz", 2, "line_too_long", huge[:1024]),
        ("a.jsonl.gz", 4, "line_too_long", over[:1024]),
        ("a.jsonl.gz", 6, "invalid_json", b"{bad"),
        ("b.jsonl", 2, "line_too_long", huge[:1024]),
        ("c.jsonl", 2, "line_too_long", huge[:1024]),
        ("a.jsonl.gz", 7, "duplicate_event_id", line(event(1))),
        ("b.jsonl", 3, "duplicate_event_id", line(event(0))),
    ]
    assert day.quarantine["detail"][0].as_py() == "5000000 bytes, over max_line_bytes; raw_line holds its first 1024"
    assert day.quarantine["detail"][1].as_py().startswith(f"{LIMIT + 1} bytes")
    # Kept lines after a cut one keep their numbers in the file.
    assert day.quarantine["detail"][5].as_py() == f"event_id {1:016x} already kept from a.jsonl.gz line 3"
    assert day.quarantine["detail"][6].as_py() == f"event_id {0:016x} already kept from a.jsonl.gz line 1"
    assert day.reasons == {"line_too_long": 4, "invalid_json": 1, "duplicate_event_id": 2}
    assert day.landed == day.events.num_rows + day.quarantined == 7 + 3 + 2


def test_blocks_cut_long_lines_and_keep_every_line_number(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lines_module, "BLOCK_LINES", 50)  # many short lines: blocks are cut by count too
    short = [b"{}"] * 120
    content = [line(event(0)), long_line(3000), *short, long_line(LIMIT + 1), line(event(1)), long_line(200_000)]
    uri = land(tmp_path, {"e.jsonl.gz": content})
    landed = open_day(uri, DAY, LandingRules(max_line_bytes=LIMIT))
    blocks = list(landed.blocks(landed.files[0], block_bytes=500))
    assert all(len(b.ends) <= 50 for b in blocks) and len(blocks) > 3
    numbers = [n for b in blocks for n in range(b.first_line, b.first_line + len(b.ends))]
    assert numbers == list(range(1, len(content) + 1))
    got = [x for b in blocks for x in b.lines()]
    assert got == [x if len(x) <= LIMIT else x[:1024] for x in content]
    too_long = {n: length for b in blocks for n, length in b.too_long_lines().items()}
    assert too_long == {2: 3000, 123: LIMIT + 1, 125: 200_000}
    wanted = np.array([1, 2, 124, 125])
    assert landed.read_lines_at(landed.files[0], wanted) == [
        content[0],
        content[1][:1024],
        content[123],
        content[124][:1024],
    ]


def test_the_quarantine_is_written_in_bounded_batches(tmp_path: Path) -> None:
    bad = [b"{}", b"[1]", b"{bad", line(event(7, price=-1.0))] * 1250
    good = [line(event(n)) for n in range(100)]
    uri = land(tmp_path, {"a.jsonl.gz": good[:50] + bad + good[:10], "b.jsonl.gz": good[50:] + bad[:700]})
    written: list[pa.Table] = []
    batches = QuarantineBatches(written.append, batch_rows=1000)
    day = ingest_day(uri, DAY, workers=2, quarantine=batches)
    in_memory = ingest_day(uri, DAY, workers=2)

    assert len(written) == 6 and all(b.num_rows <= 1000 for b in written) and day.quarantine.num_rows == 0
    assert pa.concat_tables(written).equals(in_memory.quarantine)
    assert written[0].schema == QUARANTINE_SCHEMA
    assert day.quarantined == 5000 + 700 + 10 == sum(b.num_rows for b in written)
    assert day.events.num_rows == 100 and day.landed == 100 + 5000 + 10 + 700
    assert day.reasons == in_memory.reasons
    assert day.reasons == {
        "missing_field": 1250 + 175,
        "not_an_object": 1250 + 175,
        "invalid_json": 1250 + 175,
        "invalid_value": 1250 + 175,
        "duplicate_event_id": 10,
    }


def test_a_clean_day_writes_one_empty_batch(tmp_path: Path) -> None:
    uri = land(tmp_path, {"a.jsonl.gz": [line(event(n)) for n in range(5)]})
    written: list[pa.Table] = []
    day = ingest_day(uri, DAY, quarantine=QuarantineBatches(written.append, batch_rows=10))
    assert day.quarantined == 0 and [b.num_rows for b in written] == [0]


CHILD = """
import json, resource, sys
from consumer_assets.ingest.ingest import ingest_day
from consumer_assets.ingest.landing import LandingRules
from consumer_assets_tests.support.factories import DAY, event, land, line
warm = land(sys.argv[2], {"e.jsonl.gz": [line(event(n)) for n in range(1000)]})
ingest_day(warm, DAY, workers=2)  # a small day first: what any ingestion costs is in the baseline
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
day = ingest_day(sys.argv[1], DAY, rules=LandingRules(max_line_bytes=1 << 20), workers=2)
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline) / 1024
print(json.dumps({"grown_mb": grown, "reasons": day.reasons, "kept": day.events.num_rows}))
"""


def test_a_line_of_200_mb_costs_no_more_than_a_few_blocks_of_memory(tmp_path: Path) -> None:
    folder = tmp_path / "landing" / day_folder(DAY)
    folder.mkdir(parents=True)
    with igzip.open(folder / "e.jsonl.gz", "wb", compresslevel=1) as out:  # written streaming: never in memory
        out.write(line(event(1)) + b'\n{"event_id":"')
        chunk = b"x" * (1 << 20)
        for _ in range(200):
            out.write(chunk)
        out.write(b'"}\n' + line(event(2)) + b"\n")
    (folder / "_SUCCESS").write_text(json.dumps({"files": {"e.jsonl.gz": 3}}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD), (tmp_path / "landing").as_uri(), str(tmp_path / "warm")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["reasons"] == {"line_too_long": 1} and found["kept"] == 2
    assert found["grown_mb"] < 150, found


def test_a_failure_inside_validation_names_the_file_and_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> None:
        raise pa.ArrowCapacityError("array cannot contain more than 2147483646 bytes")

    monkeypatch.setattr(ingest_module, "check_block", fail)
    uri = land(tmp_path, {"e.jsonl.gz": [line(event(n)) for n in range(3)]})
    with pytest.raises(LandingDayError, match=r"date=2026-03-04/e.jsonl.gz lines 1-3 could not be validated: .*21474"):
        ingest_day(uri, DAY, workers=2)

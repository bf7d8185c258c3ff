"""The vectorised path keeps and quarantines exactly what the per-line rules do: same lines, reasons, details, order."""

from __future__ import annotations

import datetime as dt
import gzip
import random
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from consumer_assets.ingest import landing as landing_module
from consumer_assets.ingest.fastpath import check_block
from consumer_assets.ingest.ingest import ingest_day
from consumer_assets.ingest.lines import LineBlock
from consumer_assets.ingest.timestamps import iso_ms
from consumer_assets.ingest.validate import REASONS, check_lines
from consumer_assets.simulation import simulate_to_landing
from consumer_assets_tests.support.factories import DAY, event, land, line

SIM_DAY = dt.date(2026, 1, 4)

# Lines where a JSON reader and the per-line rules could part ways, each next to valid ones.
TRICKY: list[bytes] = [
    line(event(1, price="12.5")),  # a number as a string
    line(event(2, profile_id=17)),  # an id as a number
    line(event(3, session_id=1.5)),
    line(event(4, event_id=None)),  # a required field null
    line(event(5, category={"name": "dresses"})),  # a nested object where a string belongs
    line(event(6, brand_id=["b1"])),
    line(event(7, price=True)),
    line(event(8, context={"ua": "x", "deep": [1, {"a": None}]})),  # nested extra fields: valid
    b'["a", "list"]',
    b'"a string"',
    b"17",
    b"null",  # a top-level null (once crashed Arrow's reader when a block began with it)
    b"",
    b"   ",
    line(event(9))[:-1] + b',"price":3.5}',  # a duplicate key: the last one counts
    line(event(10))[:-1] + b',"price":"x"}',
    line(event(11))[:-1] + b',"extra":NaN}',  # JSON has no NaN, even in a field nobody reads
    line(event(12))[:-1] + b',"extra":Infinity}',
    line(event(13, price=None))[:-1].replace(b'"price":null', b'"price":-Infinity') + b"}",
    line(event(14))[:-1] + b',"extra":"caf\xc3\xa9"}',  # valid UTF-8 in an ignored field
    line(event(15))[:-1] + b',"extra":"\xff"}',  # invalid UTF-8 in an ignored field
    line(event(16)).replace(b"dresses", b"dre\xed\xa0\x80sses"),  # an encoded surrogate
    line(event(17)) + b" " + line(event(18)),  # two objects on one line
    line(event(19)) + b"}",
    line(event(20))[:-1] + b',"extra":' + b"[" * 1100 + b"]" * 1100 + b"}",  # deeper than orjson allows
    line(event(21))[:-1] + b',"extra":' + b"[" * 600 + b"]" * 600 + b"}",  # deep but allowed
    line(event(22)) + b"\r",  # CRLF line endings
    b"\xef\xbb\xbf" + line(event(23)),  # a byte-order mark
    b" " + line(event(24)),
    line(event(25, price=0)).replace(b'"price":0', b'"price":-0'),  # -0 is the int 0
    line(event(26, price=0)).replace(b'"price":0', b'"price":-0.0'),  # -0.0 stays a float
    line(event(27, price=9007199254740993)),  # an int a double cannot hold exactly
    line(event(28, price=18446744073709551616)),
    line(event(29)).replace(b'"price":19.5', b'"price":1e400'),
    line(event(30)).replace(b'"price":19.5', b'"price":1E2'),
    line(event(31)).replace(b'"event_id"', b'"event\\u005fid"'),  # an escaped key
    line(event(32, brand_id="\ud83d\ude00")),  # a surrogate pair escape: valid
    line(event(33)).replace(b'"b1"', b'"\\ud800"'),  # a lone surrogate escape
    line(event(34)).replace(b'"s1"', b'"s\\u0000"'),
    line(event(35)).replace(b'"s1"', b'"s\t1"'),  # a raw control character in a string
    line(event(36, ts="2026-03-04T10:00:00")),  # no zone
    line(event(37, ts="2026-03-04T10:00:00+01:60")),  # Python reads +01:60 as +02:00
    line(event(38, ts="2026-03-04T10:00:00z")),
    line(event(39, ts="2026-03-04 10:00:00Z")),
    line(event(40, ts="2026-03-04T10:00:00,5Z")),
    line(event(41, ts="2026-03-04T23:59:59.999999Z")),
    line(event(42, ts="2026-03-05T00:59:59.999+01:00")),
    line(event(43, ts="2026-03-03T23:00:00.000-01:00")),
    line(event(44, ts="2026-03-04T24:00:00Z")),
    line(event(45, ts="2026-02-29T10:00:00Z")),
    line(event(46, ts="2026-03-04T10:00:00.1234567Z")),
    line(event(47, ts=1772618400000)),
    line(event(48, event_type="cart_add", article_id=None)),
    line(event(49, event_type="search", article_id=None, price=None)),
    line(event(50, price=-0.01)),
    line(event(51, event_type="Product_View")),
    line(event(52, event_id="")),  # empty ids: quarantined, not one shared id
    line(event(53, profile_id="")),
    line(event(54, session_id="", brand_id="", category="")),  # other empty strings stay valid
    line(event(55, event_id="", profile_id=3)),
    line(event(56, event_id=" ")),  # not empty
    b"{}",
    b'{"event_id":"x"',
    b"{'event_id':'x'}",
]


def both(lines: list[bytes], first_line: int = 1) -> None:
    """check_block on the lines as one block must equal check_lines on them."""
    data = b"".join(x + b"\n" for x in lines)
    ends = np.flatnonzero(np.frombuffer(data, np.uint8) == 0x0A)
    fast = check_block(DAY, "f.jsonl", LineBlock(first_line, data, ends))
    slow = check_lines(DAY, "f.jsonl", lines, range(first_line, first_line + len(lines)))
    assert fast.events.equals(slow.events), (fast.events.to_pylist(), slow.events.to_pylist())
    assert fast.quarantine.equals(slow.quarantine), (fast.quarantine.to_pylist(), slow.quarantine.to_pylist())
    # equals() takes -0.0 for 0.0; a Parquet file would not.
    prices = [np.signbit(np.asarray(t.events["price"].fill_null(1.0))) for t in (fast, slow)]
    assert np.array_equal(*prices)


def test_tricky_lines_each_among_valid_ones() -> None:
    valid = [line(event(100 + n)) for n in range(20)]
    for tricky in TRICKY:
        both([*valid[:10], tricky, *valid[10:]], first_line=7)


def test_tricky_lines_all_in_one_block_and_at_its_start() -> None:
    both(TRICKY)
    both(list(reversed(TRICKY)))


def test_mutated_lines_agree() -> None:
    """Random byte edits of valid lines (seeded): whatever they break, both paths say the same."""
    rng = random.Random(11)
    alphabet = b'{}[]":,.-+eE019 \\/untfalsNaIy\x00\x7f\xc3\xa9\xff\tZT'
    base = [line(event(n, context={"a": [1, 2.5, "s", True, None]})) for n in range(40)] + TRICKY
    # One-character ids, which a single deleted byte empties.
    base += [line(event(n, event_id=f"{n}", profile_id="p")) for n in range(10)]
    lines = []
    for _ in range(3000):
        text = bytearray(rng.choice(base))
        for _ in range(rng.randint(1, 3)):
            at, op, char = rng.randrange(len(text) + 1), rng.random(), alphabet[rng.randrange(len(alphabet))]
            if op < 0.4 or at == len(text):
                text.insert(at, char)
            elif op < 0.7:
                del text[at]
            else:
                text[at] = char
        lines.append(bytes(text).replace(b"\n", b" "))
    for start in range(0, len(lines), 500):
        both(lines[start : start + 500], first_line=start + 1)
    emptied = [x for x in lines if b'"event_id":""' in x or b'"profile_id":""' in x]
    assert len(emptied) > 10  # the edits did make empty ids


@pytest.fixture(scope="module", params=[0.02, 0.002])
def corrupt_day(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, float]:
    root = tmp_path_factory.mktemp("corrupt")
    (summary,) = simulate_to_landing(str(root), SIM_DAY, 1, profiles=8000, seed=5, corrupt=request.param)
    assert sum(summary.corruptions.values()) > 0
    return root.as_uri(), request.param


@pytest.mark.parametrize("block_bytes", [None, 20_000])
def test_a_corrupt_simulated_day_gives_the_same_events_and_quarantine(
    corrupt_day: tuple[str, float], block_bytes: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small blocks: many per file, lines cut by reads, repeats across blocks (their raw lines kept).
    # At 2% bad lines parse failures are dense (files go line by line), at 0.2% sparse (located).
    uri, rate = corrupt_day
    monkeypatch.setattr(landing_module, "BLOCK_BYTES", block_bytes or landing_module.BLOCK_BYTES)
    fast = ingest_day(uri, SIM_DAY, workers=2)
    slow = ingest_day(uri, SIM_DAY, workers=1, vectorised=False)
    assert fast.events.num_rows > 5000
    if rate == 0.02:
        assert set(fast.reasons) == set(REASONS) - {"line_too_long", "not_an_object", "invalid_value"}
    assert fast.events.equals(slow.events)
    assert fast.quarantine.equals(slow.quarantine)
    assert fast.reasons == slow.reasons


def test_repeats_across_files_and_blocks_carry_their_raw_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(landing_module, "BLOCK_BYTES", 600)  # a few lines per block
    a = [line(event(n)) for n in range(30)]
    b = [line(event(n + 100)) for n in range(10)] + [a[3], a[25]]
    uri = land(tmp_path, {"events-0000.jsonl.gz": [*a, a[1], a[29]], "events-0001.jsonl": b})
    day = ingest_day(uri, DAY, workers=2)
    got = [(q["source_file"], q["line_number"], q["raw_line"]) for q in day.quarantine.to_pylist()]
    assert got == [
        ("events-0000.jsonl.gz", 31, a[1]),
        ("events-0000.jsonl.gz", 32, a[29]),
        ("events-0001.jsonl", 11, a[3]),  # the file was read again for these two
        ("events-0001.jsonl", 12, a[25]),
    ]
    assert day.quarantine["detail"][2].as_py() == f"event_id {3:016x} already kept from events-0000.jsonl.gz line 4"
    assert day.events.num_rows == 40


def test_a_file_without_final_newline_and_a_gzip_of_nothing(tmp_path: Path) -> None:
    lines = [line(event(n)) for n in range(3)]
    files = {"a.jsonl": b"\n".join(lines), "b.jsonl.gz": gzip.compress(b""), "c.jsonl.gz": b""}
    uri = land(tmp_path, files, marker="empty")
    day = ingest_day(uri, DAY)
    assert day.events.num_rows == 3 and day.quarantine.num_rows == 0


def test_the_event_columns_are_the_raw_events_types(tmp_path: Path) -> None:
    day = ingest_day(land(tmp_path, {"e.jsonl.gz": [line(event(1, price=3))]}), DAY)
    assert day.events["price"].type == pa.float64() and day.events["price"].to_pylist() == [3.0]
    assert day.events["ts"][0].as_py() == dt.datetime(2026, 3, 4, 10, 1, tzinfo=dt.UTC)


def test_timestamps_recognised_are_what_python_reads() -> None:
    """Random canonical timestamps, valid or not (seeded), and some near misses: iso_ms never disagrees."""
    rng = random.Random(5)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

    def sample() -> str:
        date = f"{rng.choice([rng.randint(0, 9999), 2024, 2026, 1900, 2000])}".zfill(4)
        date += f"-{rng.randint(0, 13):02d}-{rng.choice([rng.randint(0, 32), 28, 29, 30, 31]):02d}"
        clock = f"{rng.randint(0, 25):02d}:{rng.randint(0, 61):02d}:{rng.randint(0, 61):02d}"
        digits = "".join(rng.choice("0123456789") for _ in range(6))
        fraction = rng.choice(["", f".{digits[:3]}", f".{digits}", f".{digits[:2]}", ".12a", ","])
        zone = rng.choice(["Z", "+01:00", "-05:30", f"+{rng.randint(0, 25):02d}:{rng.randint(0, 61):02d}", "", "z"])
        text = f"{date}{rng.choice('TTTT t')}{clock}{fraction}{zone}"
        if rng.random() < 0.1:
            at = rng.randrange(len(text))
            text = text[:at] + rng.choice("x9:-.Z+é") + text[at + 1 :]
        return text

    canonical = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)")
    values = [sample() for _ in range(20_000)]
    ms, recognised = iso_ms(pa.array([*values, None]))
    assert not recognised[-1]
    for text, got, ok in zip(values, ms.tolist(), recognised.tolist(), strict=False):
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            parsed = None
        # Recognised exactly when canonical and valid for Python, and then Python's value.
        assert ok == (parsed is not None and canonical.fullmatch(text) is not None), text
        if ok:
            assert got == (parsed - epoch) // dt.timedelta(milliseconds=1), text
    assert recognised.sum() > 2000

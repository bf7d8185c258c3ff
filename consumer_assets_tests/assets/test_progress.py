"""Progress lines of long work: one every interval while the block runs, none after it."""

from __future__ import annotations

import re
import threading

from consumer_assets.assets.progress import DaysDone, reporting


def test_reports_every_interval_while_the_work_runs_and_stops_with_it() -> None:
    lines: list[str] = []
    third = threading.Event()
    done = DaysDone("ingestion", days=4)

    def log(line: str) -> None:
        lines.append(line)
        if len(lines) == 3:
            third.set()

    done.add(rows=1_500)
    with reporting(log, lambda: str(done), every=0.01):
        assert third.wait(timeout=30), "three progress lines within 30 s at one per 0.01 s"
    after = len(lines)
    line = re.compile(r"ingestion: 1/4 days done, 1,500 rows, [\d,]+ rows/s after \d+ s")
    assert all(line.fullmatch(x) for x in lines), lines
    # The reporting thread has stopped: nothing more is logged once the block is left.
    assert not [t for t in threading.enumerate() if t.name == "progress"]
    assert len(lines) == after

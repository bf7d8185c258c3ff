"""Progress of long work in a run's log: a line every PROGRESS_SECONDS while it runs, from a thread."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

PROGRESS_SECONDS = 30.0


@contextlib.contextmanager
def reporting(log: Callable[[str], None], status: Callable[[], str], every: float | None = None) -> Iterator[None]:
    """While the block runs, log `status()` and the time taken so far every `every` seconds (PROGRESS_SECONDS)."""
    interval = PROGRESS_SECONDS if every is None else every
    stop, began = threading.Event(), time.monotonic()

    def tick() -> None:
        while not stop.wait(interval):
            log(f"{status()} after {time.monotonic() - began:.0f} s")

    thread = threading.Thread(target=tick, name="progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@dataclass
class DaysDone:
    """Days of a range done so far, and their rows, for `reporting`."""

    what: str
    days: int
    done: int = 0
    rows: int = 0
    began: float = field(default_factory=time.monotonic)

    def add(self, rows: int) -> None:
        self.done, self.rows = self.done + 1, self.rows + rows

    def __str__(self) -> str:
        rate = self.rows / max(time.monotonic() - self.began, 1e-9)
        return f"{self.what}: {self.done}/{self.days} days done, {self.rows:,} rows, {rate:,.0f} rows/s"

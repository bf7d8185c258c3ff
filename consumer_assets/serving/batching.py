"""Asks scored together: whatever arrived while one batch was being scored is scored as the next batch.

One thread scores; a request puts its item in the queue and waits on a future. An item that finds
the thread idle is scored at once, alone: there is no window to wait for, so one client's latency is
one item's. Under load, the items that queued while a batch was scored (up to `max_batch`) go
together, so the fixed cost of a pass (some dozens of numpy and Arrow calls, an LSTM batch of 32
rows however few are filled) is shared by all of them. A batch that raises is scored again one item
at a time, so an error fails only the item that caused it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")

# The most items scored in one pass: the LSTM pads a batch to 32 rows and runs 64 in about the
# time of 32; beyond that a batch's wait grows faster than its cost per item falls.
MAX_BATCH = 64

_STOP = object()


class Batcher(Generic[_Item, _Result]):
    """Scores items with `score` (a list of items to a list of results, in order) on a thread of its own."""

    def __init__(self, score: Callable[[Sequence[_Item]], list[_Result]], max_batch: int = MAX_BATCH) -> None:
        self.score = score
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.batches = 0
        self.items = 0

    def submit(self, item: _Item) -> Future[_Result]:
        """The future result of `item`, set by the scoring thread."""
        if self._thread is None:
            raise RuntimeError("the batcher is not started")
        future: Future[_Result] = Future()
        self._queue.put((item, future))
        return future

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="scoring", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=30)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            self._settle(batch)

    def _settle(self, batch: list[tuple[_Item, Future[_Result]]]) -> None:
        live = [(item, future) for item, future in batch if future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            results = self.score([item for item, _ in live])
        except Exception as exc:
            if len(live) == 1:
                live[0][1].set_exception(exc)
                return
            for item, future in live:  # again one by one: only the item at fault fails
                try:
                    (result,) = self.score([item])
                except Exception as alone:
                    future.set_exception(alone)
                else:
                    future.set_result(result)
            return
        self.batches += 1
        self.items += len(live)
        for (_, future), result in zip(live, results, strict=True):
            future.set_result(result)

"""Asks scored together: the requests that arrive while one batch is scored are scored as the next.

Scoring runs on the event loop that reads the requests, between its rounds of I/O: a request adds
its item to the pending ones and, if no pass is due yet, schedules one for the loop's next turn. So an
item that arrives alone is scored at once (no window to wait for: one client's latency is one
item's), while under load every request read in the meantime, up to `max_batch`, joins the next pass,
and the fixed cost of a pass (some dozens of numpy and Arrow calls, an LSTM batch of 32 rows however
few are filled) is shared by all of them. Under load (the last pass scored several), the next pass
lingers a moment (`linger`, unless max_batch are pending already): the clients the last pass answered
send their next asks meanwhile, and one pass scores them with the rest instead of every other pass
going half full. No thread: nothing waits for the GIL or a wake-up between reading a request and
scoring it. A pass that raises is scored again one item at a time, so an error
fails only the item that caused it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")

# The most items scored in one pass: the LSTM pads a batch to 32 rows and runs 64 in about the
# time of 32; beyond that a pass holds the loop (and the requests it would read) too long.
MAX_BATCH = 64
# How long a pass after a pass of several asks waits for more (a pass of 16 asks takes some ms).
LINGER_SECONDS = 0.001


class Batcher(Generic[_Item, _Result]):
    """Scores items with `score` (a list of items to a list of results, in order) on the running loop."""

    def __init__(
        self,
        score: Callable[[Sequence[_Item]], list[_Result]],
        max_batch: int = MAX_BATCH,
        linger: float = LINGER_SECONDS,
    ) -> None:
        self.score = score
        self.max_batch = max_batch
        self.linger = linger
        self._pending: list[tuple[_Item, asyncio.Future[_Result]]] = []
        self._due = False
        self._timer: asyncio.TimerHandle | None = None
        self._last = 0  # items the last pass scored
        self.batches = 0
        self.items = 0

    async def submit(self, item: _Item) -> _Result:
        """The result of `item`, scored with the others pending at the loop's next turn (after `linger`
        seconds if the last pass scored several)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_Result] = loop.create_future()
        self._pending.append((item, future))
        if not self._due:
            self._due = True
            if self._last > 1:
                self._timer = loop.call_later(self.linger, self._pass)
            else:
                loop.call_soon(loop.call_soon, self._pass)
        elif self._timer is not None and len(self._pending) >= self.max_batch:
            self._timer.cancel()  # a full pass's worth: no reason to wait
            self._timer = None
            loop.call_soon(self._pass)
        return await future

    def _pass(self) -> None:
        self._timer = None
        batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
        if self._pending:
            asyncio.get_running_loop().call_soon(self._pass)
        else:
            self._due = False
        live = [(item, future) for item, future in batch if not future.done()]
        self._last = len(live)
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

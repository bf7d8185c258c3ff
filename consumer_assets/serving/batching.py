"""Asks scored together: the requests that arrive while one batch is scored are scored as the next.

Scoring runs on the event loop that reads the requests, between its rounds of I/O: a request adds
its item to the pending ones and, if no pass is due yet, schedules one for the loop's next turn. So an
item that arrives alone is scored at once (no window to wait for: one client's latency is one
item's), while under load every request read in the meantime, up to `max_batch`, joins the next pass,
and the fixed cost of a pass (some dozens of numpy and Arrow calls, an LSTM batch of 32 rows however
few are filled) is shared by all of them. Under load, the next pass waits for the askers of the last
(each item may name its asker: the service names the connection) until each has its next item
pending, or `linger` has passed, or `max_batch` are pending: a client answered by one pass sends
its next ask while the asks that came in during that pass are read, and without the wait the
passes split the clients into halves that never meet (observed: passes of 4 to 6 asks with 8
clients a worker; waiting, of all 8). A client that has gone costs the next pass one `linger` once;
after a pass of one ask nobody is awaited (a lone client, or one that opens a connection per ask).
No thread: nothing waits for the GIL or a wake-up between reading a request and scoring it. A pass
that raises is scored again one item at a time, so an error fails only the item that caused it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Sequence
from typing import Generic, TypeVar

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")

# The most items scored in one pass: the LSTM pads a batch to 32 rows and runs 64 in about the
# time of 32; beyond that a pass holds the loop (and the requests it would read) too long.
MAX_BATCH = 64
# How long a pass waits at most for the askers of the last (a pass of 8 asks takes some ms, and
# writing its answers and reading the clients' next asks about one more).
LINGER_SECONDS = 0.003


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
        self._pending: list[tuple[_Item, asyncio.Future[_Result], Hashable]] = []
        self._awaited: set[Hashable] = set()  # askers of the last pass with no item pending yet
        self._due = False
        self._timer: asyncio.TimerHandle | None = None
        self.batches = 0
        self.items = 0

    async def submit(self, item: _Item, asker: Hashable = None) -> _Result:
        """The result of `item`, scored with the others pending at the loop's next turn, once every
        asker of the last pass has an item pending (or after `linger` seconds). `asker`: who asks
        (a connection; None: nobody awaited)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_Result] = loop.create_future()
        self._pending.append((item, future, asker))
        self._awaited.discard(asker)
        if not self._due:
            self._due = True
            if self._awaited:
                self._timer = loop.call_later(self.linger, self._pass)
            else:
                loop.call_soon(loop.call_soon, self._pass)
        elif self._timer is not None and (not self._awaited or len(self._pending) >= self.max_batch):
            self._timer.cancel()  # every asker awaited is here, or a full pass's worth: no reason to wait
            self._timer = None
            loop.call_soon(self._pass)
        return await future

    def _pass(self) -> None:
        self._timer = None
        batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
        # A pass of one awaits nobody: a lone client's next ask goes at once, on this connection or a new one.
        self._awaited = {asker for _, _, asker in batch if asker is not None} if len(batch) > 1 else set()
        self._awaited.difference_update(asker for _, _, asker in self._pending)
        if not self._pending:
            self._due = False
        elif self._awaited and len(self._pending) < self.max_batch:
            self._timer = asyncio.get_running_loop().call_later(self.linger, self._pass)
        else:
            asyncio.get_running_loop().call_soon(self._pass)
        live = [(item, future) for item, future, _ in batch if not future.done()]
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

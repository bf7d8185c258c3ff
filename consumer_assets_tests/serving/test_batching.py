"""serving.batching on a real event loop: what arrives together is scored in one pass, an error fails only its item."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from consumer_assets.serving.batching import Batcher


def test_items_that_arrive_together_are_scored_in_one_pass_and_an_error_fails_only_its_own() -> None:
    passes: list[list[int]] = []

    def score(items: Sequence[int]) -> list[int]:
        passes.append(list(items))
        if any(i < 0 for i in items):
            raise ValueError(f"a negative item among {list(items)}")
        return [i * 10 for i in items]

    batcher: Batcher[int, int] = Batcher(score, max_batch=3)

    async def main() -> tuple[int, list]:
        alone = await batcher.submit(1)  # nothing else pending: scored at once, alone
        together = await asyncio.gather(*(batcher.submit(i) for i in (2, -3, 4, 5, 6)), return_exceptions=True)
        return alone, together

    alone, together = asyncio.run(main())
    assert alone == 10
    assert together[0] == 20 and together[2:] == [40, 50, 60]
    with pytest.raises(ValueError, match="a negative item among \\[-3\\]"):
        raise together[1]
    # At most max_batch a pass; the pass that raised, again one by one.
    assert passes == [[1], [2, -3, 4], [2], [-3], [4], [5, 6]]
    assert (batcher.batches, batcher.items) == (2, 3)


def test_under_load_a_pass_waits_for_the_askers_of_the_last_and_a_full_pass_does_not_wait() -> None:
    passes: list[list[int]] = []

    def score(items: Sequence[int]) -> list[int]:
        passes.append(list(items))
        return list(items)

    # A linger far longer than the test's pauses: whether a pass waited is not a matter of timing.
    batcher: Batcher[int, int] = Batcher(score, max_batch=4, linger=30.0)

    async def later(item: int, asker: str, seconds: float) -> int:
        await asyncio.sleep(seconds)
        return await batcher.submit(item, asker)

    async def main() -> tuple[float, float, float]:
        loop = asyncio.get_running_loop()
        await batcher.submit(0, "a")  # nobody awaited: at once
        await batcher.submit(1, "a")  # a, the one asker of the last pass, is back: at once
        await asyncio.gather(batcher.submit(2, "a"), batcher.submit(3, "b"))  # one pass of both
        # Both asked last: the next pass waits for b, who asks 10 ms after a.
        await asyncio.gather(batcher.submit(4, "a"), later(5, "b", 0.01))
        # Asks of others, 10 ms apart: a and b are awaited, but a full pass goes at once.
        started = loop.time()
        await asyncio.gather(batcher.submit(6, "c"), later(7, "d", 0.01), later(8, "e", 0.02), later(9, "f", 0.03))
        full = loop.time() - started
        # Askers that have gone cost the next pass one linger, once.
        batcher.linger = 0.2
        started = loop.time()
        await batcher.submit(10, "c")
        gone = loop.time() - started
        # After a pass of one, nobody is awaited: c again, or a newcomer (a connection per ask), at once.
        started = loop.time()
        await batcher.submit(11, "c")
        await batcher.submit(12, "z")
        return full, gone, loop.time() - started

    full, gone, back = asyncio.run(main())
    assert passes == [[0], [1], [2, 3], [4, 5], [6, 7, 8, 9], [10], [11], [12]]
    assert full < 10.0  # the full pass went at once, not after the 30 s linger
    assert gone >= 0.2 and back < 0.2  # d, e and f were awaited for one linger; c and z alone were not

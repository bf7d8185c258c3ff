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

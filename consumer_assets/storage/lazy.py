"""A mapping whose values are computed one at a time when read, for runs that span many partitions.

An asset materializing a range of days returns one of these as its output; the IO manager reads
(and writes) one day at a time, so only one day's data is in memory however long the range.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Generic, TypeVar

V = TypeVar("V")


class LazyPartitions(Mapping[str, V], Generic[V]):
    """partition key -> compute(key), computed on each read and not kept."""

    def __init__(self, keys: Sequence[str], compute: Callable[[str], V]) -> None:
        self._keys = list(keys)
        self._compute = compute

    def __getitem__(self, key: str) -> V:
        if key not in self._keys:
            raise KeyError(key)
        return self._compute(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

"""Lists stored flat: one values array per field and row offsets (a row's list is values[offsets[i]:
offsets[i + 1]]), as histories.state keeps each profile's events and active days. The operations
advance and encode need, vectorised over all rows at once: gather rows, merge two sides' lists
keeping each row's newest elements, and line up two sides' sorted ids.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from consumer_assets.events.bucketing import SMALL


def gather(offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The flat positions of the lists of `rows`, and their new offsets."""
    lengths = np.diff(offsets)[rows]
    new = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lengths, out=new[1:])
    idx = np.arange(new[-1], dtype=np.int64) + np.repeat(offsets[:-1][rows] - new[:-1], lengths)
    return idx, new


def row_of(offsets: np.ndarray) -> np.ndarray:
    """The row of each flat element."""
    return np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))


def per_row(n: int, pos: np.ndarray, offsets: np.ndarray, old: np.ndarray) -> tuple[np.ndarray, ...]:
    """For n merged rows, of which rows `pos` hold one side's lists: each row's list start, length, and
    how many of its oldest elements (`old`, a mask over the flat elements) leave."""
    cumulative = np.zeros(len(old) + 1, np.int64)
    np.cumsum(old, out=cumulative[1:])
    start, length, leaving = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    start[pos], length[pos] = offsets[:-1], np.diff(offsets)
    leaving[pos] = cumulative[offsets[1:]] - cumulative[offsets[:-1]]
    return start, length, leaving


def tails(
    a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...], rows: np.ndarray, size_a: int, cap: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Offsets of `rows`, each holding the newest of its list in A followed by its list in B (all of A
    older than all of B) but for the elements leaving, at most `cap`; and the position of each kept
    element in A's flat values followed by B's."""
    start_a, len_a, leaving_a = (x[rows] for x in a)
    start_b, len_b, leaving_b = (x[rows] for x in b)
    keep = len_a + len_b - leaving_a - leaving_b  # the leaving ones are the oldest: a prefix
    if cap is not None:
        keep = np.minimum(keep, cap)
    from_b = np.minimum(keep, len_b)
    from_a = keep - from_b
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(keep, out=offsets[1:])
    # Two runs per row, A's tail then B's, each copied from a contiguous range of A + B.
    run_length = np.column_stack([from_a, from_b]).ravel()
    run_source = np.column_stack([start_a + len_a - from_a, size_a + start_b + len_b - from_b]).ravel()
    run_start = np.cumsum(run_length) - run_length
    source = np.arange(offsets[-1], dtype=np.int64) + np.repeat(run_source - run_start, run_length)
    return offsets, source


def gather_both(a: dict[str, np.ndarray], b: dict[str, np.ndarray], source: np.ndarray) -> dict[str, np.ndarray]:
    """Each field's values at `source`, positions in A's values followed by B's."""
    out = {}
    for name, values in a.items():
        other = b[name].astype(values.dtype, copy=False)
        out[name] = (np.concatenate([values, other]) if len(other) else values)[source]
    return out


def union_of(a: pa.Array, b: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Every id of either side, sorted; where each side's ids are in it. A few hundred ids (a scoring
    pass's) in Python, where Arrow's calls cost more than the work (its string order is the UTF-8
    bytes', which Python's code-point order is)."""
    if len(a) + len(b) <= SMALL:
        a_ids, b_ids = a.to_pylist(), b.to_pylist()
        ordered = sorted({*a_ids, *b_ids})
        at = {profile: i for i, profile in enumerate(ordered)}
        positions = (np.array([at[p] for p in ids], np.int64) for ids in (a_ids, b_ids))
        return pa.array(ordered, a.type), *positions
    union = pc.unique(pa.concat_arrays([a, b]))
    union = union.take(pc.sort_indices(union))
    pos_a = pc.index_in(a, value_set=union).to_numpy(zero_copy_only=False).astype(np.int64)
    pos_b = pc.index_in(b, value_set=union).to_numpy(zero_copy_only=False).astype(np.int64)
    return union, pos_a, pos_b

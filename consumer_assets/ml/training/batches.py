"""Which histories go together in a batch (similar lengths), and the steps it is padded to; the
padded tensors themselves are model.batch.Batch, what the network reads.

Grouping by length keeps padding to a few percent of the work, where random batches of 53-event
histories (mean) would pad to the batch's 200-event longest one and spend most of the LSTM's
time on padding.
"""

from __future__ import annotations

import numpy as np


def length_batches(
    lengths: np.ndarray,
    batch_size: int,
    rng: np.random.Generator | None = None,
    pool_batches: int = 32,
    max_events: int | None = None,
    step_multiple: int = 1,
    row_multiple: int = 1,
) -> list[np.ndarray]:
    """Row indices per batch, rows of a batch of similar length.

    Without `rng`: all rows sorted by length (scoring). With `max_events`, a batch also holds no
    more rows than fit that many padded events, its rows times its steps: its longest row rounded
    up to a multiple of `step_multiple` (`padded_steps`); its rows are a multiple of `row_multiple`
    where they can be. Long histories so come in smaller batches, and batch shapes repeat. With
    `rng`: rows shuffled, sorted by length within pools of `pool_batches` batches, and the batches
    shuffled (training: each epoch mixes differently, and no batch is all long or all short
    histories for long).
    """
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        if max_events is None:
            return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        steps = padded_steps(lengths[order], step_multiple)
        return [order[a:b] for a, b in _event_bounded(steps, batch_size, max_events, row_multiple)]
    perm = rng.permutation(len(lengths))
    batches: list[np.ndarray] = []
    pool = batch_size * pool_batches
    for start in range(0, len(perm), pool):
        chunk = perm[start : start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def padded_steps(lengths: np.ndarray, multiple: int) -> np.ndarray:
    """Lengths rounded up to a multiple of `multiple`: the steps a batch of them is padded to."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return -(-lengths // multiple) * multiple


def _event_bounded(steps: np.ndarray, batch_size: int, max_events: int, row_multiple: int) -> list[tuple[int, int]]:
    """[start, end) of consecutive batches over ascending padded steps: each as many rows as fit in
    batch_size rows and max_events padded events (rows x the last row's steps), at least one, and
    a multiple of row_multiple unless fewer fit or it is the last batch."""
    bounds, start, n = [], 0, len(steps)
    rows = np.arange(1, batch_size + 1, dtype=np.int64)
    while start < n:
        window = steps[start : start + batch_size]
        # Padded events of the first k rows, k = 1, 2, ...: non-decreasing, so a binary search.
        fits = int(np.searchsorted(rows[: len(window)] * window, max_events, side="right"))
        if fits >= row_multiple and start + fits < n:
            fits -= fits % row_multiple
        end = start + max(1, fits)
        bounds.append((start, end))
        start = end
    return bounds

"""Batches: padded tensors of whole histories, and which histories go together (similar lengths).

Grouping by length keeps padding to a few percent of the work, where random batches of 53-event
histories (mean) would pad to the batch's 200-event longest one and spend most of the LSTM's
time on padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Batch:
    """One padded batch: (B, T) ids, (B, T, N_CONTINUOUS) inputs, (B, N_STATIC), lengths and labels."""

    event_type: torch.Tensor
    article: torch.Tensor
    brand: torch.Tensor
    category: torch.Tensor
    continuous: torch.Tensor
    static: torch.Tensor
    lengths: torch.Tensor
    label: torch.Tensor | None

    def to(self, device: torch.device) -> Batch:
        if device.type == "cpu":
            return self
        moved = {k: (v.to(device, non_blocking=True) if v is not None else None) for k, v in vars(self).items()}
        return Batch(**moved)


def length_batches(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator | None = None, pool_batches: int = 32
) -> list[np.ndarray]:
    """Row indices per batch, rows of a batch of similar length.

    Without `rng`: all rows sorted by length (scoring). With it: rows shuffled, sorted by length
    within pools of `pool_batches` batches, and the batches shuffled (training: each epoch mixes
    differently, and no batch is all long or all short histories for long).
    """
    if rng is None:
        order = np.argsort(lengths, kind="stable")
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    perm = rng.permutation(len(lengths))
    batches: list[np.ndarray] = []
    pool = batch_size * pool_batches
    for start in range(0, len(perm), pool):
        chunk = perm[start : start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]

"""What the network reads: one padded batch of whole histories (ml.training.data.SequenceData.batch makes them)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Batch:
    """One padded batch of B rows and T steps, steps first (the LSTM's layout): (T, B) ids,
    (T, B, N_CONTINUOUS) inputs, then per row (B, N_STATIC) inputs, lengths and labels."""

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

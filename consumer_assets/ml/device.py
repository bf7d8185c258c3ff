"""Where the model runs: CUDA with bf16 autocast when a GPU is there, else CPU in float32."""

from __future__ import annotations

import contextlib

import torch


def default_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def bf16_enabled(device: torch.device) -> bool:
    """bf16 autocast on CUDA when the GPU has bf16 and cuDNN runs the LSTM in it (9.13 on)."""
    if device.type != "cuda" or not torch.cuda.is_bf16_supported():
        return False
    # Older cuDNN has no bf16 RNN: autocast would send the LSTM to a kernel that refuses it.
    return (torch.backends.cudnn.version() or 0) >= 91300


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """The one mixed-precision context for training and scoring: a no-op on CPU."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16_enabled(device))

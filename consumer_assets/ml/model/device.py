"""Where the model runs: CUDA with bf16 autocast when a GPU is there, else CPU in float32."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with `threads` intra-op threads (None: leave torch's setting), restoring it afterwards.

    On a small CPU shared with other work, 1 is usually fastest: torch's OpenMP threads spin
    while they wait, and two of them beside another busy process can run 20x slower than one.
    """
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)

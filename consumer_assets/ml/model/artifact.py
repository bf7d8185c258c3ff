"""A trained model as files: weights in safetensors, config, encoding and metrics in JSON. Never a pickle.

`to_files` gives the bytes an artifact store writes (and checksums); `from_files` rebuilds the
model, and refuses one whose input encoding differs from this code's: its weights would read
other numbers than they were trained on (a reordered ACTION_TYPES, resized hash buckets...).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from consumer_assets.ml.model.config import Encoding, LstmConfig
from consumer_assets.ml.model.network import EventLstm

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
ENCODING = "encoding.json"
METRICS = "metrics.json"
FORMAT_VERSION = 1


class EncodingMismatchError(ValueError):
    """The artifact was trained with another input encoding than the running code produces."""


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True, allow_nan=False).encode() + b"\n"


def _clean(value: Any) -> Any:
    """JSON has no NaN: metrics that are undefined (one class only) become null."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


@dataclass
class ModelArtifact:
    """A model with the config and encoding it was built with and the metrics it earned."""

    model: EventLstm
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> LstmConfig:
        return self.model.config

    @property
    def encoding(self) -> Encoding:
        return self.model.encoding

    def to_files(self) -> dict[str, bytes]:
        """{file name: bytes}: model.safetensors, config.json, encoding.json, metrics.json."""
        state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in self.model.state_dict().items()}
        # One metadata entry: safetensors writes several in hash-map order, and equal models
        # should give equal bytes (the artifact store checks them by sha256).
        encoding = {"format_version": FORMAT_VERSION, **self.encoding.to_dict()}
        meta = {"encoding": json.dumps(encoding, sort_keys=True)}
        return {
            WEIGHTS: save_safetensors(state, metadata=meta),
            CONFIG: _json(self.config.to_dict()),
            ENCODING: _json(encoding),
            METRICS: _json(_clean(self.metrics)),
        }

    @classmethod
    def from_files(cls, files: Mapping[str, bytes], expected: Encoding | None = None) -> ModelArtifact:
        """Rebuild from to_files' output; EncodingMismatchError if its encoding is not `expected` (the code's)."""
        missing = [name for name in (WEIGHTS, CONFIG, ENCODING) if name not in files]
        if missing:
            raise ValueError(f"model artifact lacks {missing}")
        stored = json.loads(files[ENCODING])
        version = stored.pop("format_version", None)
        if version != FORMAT_VERSION:
            raise EncodingMismatchError(f"artifact format {version} is not {FORMAT_VERSION}: retrain the model")
        encoding = Encoding.from_dict(stored)
        expected = expected or Encoding()
        diffs = expected.differences(encoding)
        if diffs:
            raise EncodingMismatchError(
                "the model was trained on histories encoded differently from what this code produces "
                f"(model -> code: {'; '.join(diffs)}): its inputs would mean something else, so it cannot be "
                "loaded; train a new model"
            )
        config = LstmConfig.from_dict(json.loads(files[CONFIG]))
        model = EventLstm(config, encoding)
        model.load_state_dict(load_safetensors(files[WEIGHTS]), strict=True)
        model.eval()
        metrics = json.loads(files[METRICS]) if METRICS in files else {}
        return cls(model=model, metrics=metrics)

"""A trained model as files: weights in safetensors, config, encoding and metrics in JSON. Never a pickle.

`to_files` gives the bytes an artifact store writes (and checksums); `from_files` rebuilds the
model, and refuses one whose input encoding differs from this code's: its weights would read
other numbers than they were trained on (a reordered ACTION_TYPES, resized hash buckets...).

The files are read as untrusted: a checksum only says they are what was published, and anyone
with write access to the storage can publish. So only this artifact's own file names are
accepted, the config is bounded (LstmConfig.LIMITS) and the weights' shapes, read from the
safetensors header, must be the ones the config describes, all before the network is allocated;
every refusal names the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from consumer_assets.ml.model.config import Encoding, LstmConfig
from consumer_assets.ml.model.network import EventLstm, parameter_shapes
from consumer_assets.storage.validate import InvalidRecordError, decode_record

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
ENCODING = "encoding.json"
METRICS = "metrics.json"
FILES: tuple[str, ...] = (WEIGHTS, CONFIG, ENCODING, METRICS)
FORMAT_VERSION = 1
_T = TypeVar("_T")


class EncodingMismatchError(ValueError):
    """The artifact was trained with another input encoding than the running code produces."""


class InvalidArtifactError(ValueError):
    """A file of a model artifact is unreadable, out of bounds or disagrees with the others; names the file."""


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
    def from_files(
        cls, files: Mapping[str, bytes], expected: Encoding | None = None, source: str = ""
    ) -> ModelArtifact:
        """Rebuild from to_files' output; EncodingMismatchError if its encoding is not `expected` (the code's),
        InvalidArtifactError if a file is not what to_files writes. `source` (where the files were read,
        a folder URI) prefixes the file names in errors."""

        def named(name: str) -> str:
            return f"{source.rstrip('/')}/{name}" if source else name

        where = source or "the model artifact"
        missing = [name for name in (WEIGHTS, CONFIG, ENCODING) if name not in files]
        if missing:
            raise InvalidArtifactError(f"{where} lacks {missing}")
        unexpected = sorted(set(files) - set(FILES))
        if unexpected:
            raise InvalidArtifactError(f"{where}: unexpected files {unexpected}; a model artifact holds {list(FILES)}")
        stored = _json_object(files[ENCODING], named(ENCODING))
        version = stored.pop("format_version", None)
        if version != FORMAT_VERSION:
            raise EncodingMismatchError(
                f"{named(ENCODING)}: artifact format {version} is not {FORMAT_VERSION}: retrain the model"
            )
        encoding = _built(Encoding.from_dict, stored, named(ENCODING))
        expected = expected or Encoding()
        diffs = expected.differences(encoding)
        if diffs:
            raise EncodingMismatchError(
                f"{named(ENCODING)}: the model was trained on histories encoded differently from what this code "
                f"produces (model -> code: {'; '.join(diffs)}): its inputs would mean something else, so it cannot "
                "be loaded; train a new model"
            )
        config = _built(LstmConfig.from_dict, _json_object(files[CONFIG], named(CONFIG)), named(CONFIG))
        _check_header(files[WEIGHTS], parameter_shapes(config, encoding), named(WEIGHTS), named(CONFIG))
        model = EventLstm(config, encoding)
        try:
            model.load_state_dict(load_safetensors(files[WEIGHTS]), strict=True)
        except (SafetensorError, RuntimeError) as exc:
            raise InvalidArtifactError(f"{named(WEIGHTS)}: {exc}") from exc
        model.eval()
        metrics = _json_object(files[METRICS], named(METRICS)) if METRICS in files else {}
        return cls(model=model, metrics=metrics)


def _json_object(data: bytes, name: str) -> dict[str, Any]:
    try:
        return decode_record(data, name)
    except InvalidRecordError as exc:
        raise InvalidArtifactError(str(exc)) from exc


def _built(build: Callable[[dict[str, Any]], _T], values: dict[str, Any], name: str) -> _T:
    """`build(values)`, its refusal (an unknown field, a value out of bounds) naming the file."""
    try:
        return build(values)
    except (TypeError, ValueError) as exc:
        raise InvalidArtifactError(f"{name}: {exc}") from exc


def _check_header(weights: bytes, shapes: Mapping[str, tuple[int, ...]], name: str, config: str) -> None:
    """Refuse weights whose tensors are not float32 of exactly `shapes`, read from the safetensors
    header alone (8 bytes of length, then JSON), so no tensor is allocated for a mismatching file."""
    size = int.from_bytes(weights[:8], "little") if len(weights) >= 8 else -1
    if not 0 < size <= len(weights) - 8:
        raise InvalidArtifactError(f"{name}: its header length {size} does not fit the file's {len(weights)} bytes")
    header = _json_object(weights[8 : 8 + size], f"{name} (header)")
    tensors = {key: value for key, value in header.items() if key != "__metadata__"}
    if set(tensors) != set(shapes):
        raise InvalidArtifactError(
            f"{name}: tensors {sorted(set(shapes) - set(tensors))} missing and {sorted(set(tensors) - set(shapes))} "
            f"unexpected for the network {config} describes"
        )
    wrong = []
    for key, shape in shapes.items():
        entry = tensors[key] if isinstance(tensors[key], dict) else {}
        if entry.get("dtype") != "F32" or entry.get("shape") != list(shape):
            wrong.append(f"{key} is {entry.get('dtype')} {entry.get('shape')}, expected F32 {list(shape)}")
    if wrong:
        raise InvalidArtifactError(f"{name}: not the network {config} describes: {'; '.join(wrong)}")

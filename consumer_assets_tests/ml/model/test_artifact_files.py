"""A model artifact's files are read as untrusted input: bounded config values, weights whose shapes match
the config before anything is allocated, only the artifact's own file names, and errors naming the file."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
import torch

import consumer_assets.ml.model.artifact as artifact_module
from consumer_assets.ml.model.artifact import InvalidArtifactError, ModelArtifact
from consumer_assets.ml.model.config import LIMITS, POSITIVE_FIELDS, Encoding, LstmConfig
from consumer_assets.ml.model.network import EventLstm, parameter_shapes

TINY = LstmConfig(type_dim=4, article_dim=2, brand_dim=2, category_dim=2, hidden=8)
SOURCE = "s3://bucket/consumer-assets/trained_lstm_model/date=2026-04-20/20260420T000000-abcdef12"


@pytest.fixture(scope="module")
def files() -> dict[str, bytes]:
    torch.manual_seed(0)
    return ModelArtifact(EventLstm(TINY), {"valid": {"auc": 0.8}}).to_files()


def with_config(files: dict[str, bytes], **changes: Any) -> dict[str, bytes]:
    config = {**json.loads(files["config.json"]), **changes}
    return {**files, "config.json": json.dumps(config).encode()}


def no_network(*args: Any, **kwargs: Any) -> EventLstm:
    raise AssertionError("a network was built from files that should have been refused first")


def test_config_values_are_bounded_before_a_network_is_built(
    files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(artifact_module, "EventLstm", no_network)
    # 100000 would be 4 x 100000 x 100000 float32 recurrent weights: 160 GB.
    with pytest.raises(InvalidArtifactError, match=rf"{SOURCE}/config.json: hidden must be at most 4096, got 100000"):
        ModelArtifact.from_files(with_config(files, hidden=100000), source=SOURCE)
    refused = {
        "article_dim": (2000, "must be at most 1024"),
        "batch_size": (10**9, "must be at most"),
        "hidden": ("32", "must be an integer"),
        "epochs": (True, "must be an integer"),
        "lr": (float("inf"), "must be a finite number"),
        "type_dim": (0, "must be at least 1"),
    }
    for field, (value, message) in refused.items():
        with pytest.raises(InvalidArtifactError, match=rf"config.json: {field} {message}"):
            ModelArtifact.from_files(with_config(files, **{field: value}), source=SOURCE)


def test_lstm_config_refuses_values_beyond_its_limits() -> None:
    for field, limit in LIMITS.items():
        default = getattr(LstmConfig(), field)
        assert (1 if field in POSITIVE_FIELDS else 0) <= default <= limit
        LstmConfig(**{field: limit})
        with pytest.raises(ValueError, match=rf"{field} must be at most {limit}"):
            LstmConfig(**{field: limit + 1})
    # Every integer but the seed is bounded: a field added without a limit fails here.
    integers = {f.name for f in dataclasses.fields(LstmConfig) if f.type == "int"}
    assert integers - {"seed"} == set(LIMITS)
    with pytest.raises(ValueError, match="seed must be an integer"):
        LstmConfig.from_dict({"seed": 1.5})


def test_weights_whose_shapes_differ_from_the_config_are_refused_from_the_header(
    files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    bigger = ModelArtifact(EventLstm(dataclasses.replace(TINY, hidden=16))).to_files()
    monkeypatch.setattr(artifact_module, "EventLstm", no_network)
    shapes = rf"{SOURCE}/model.safetensors: .*lstm.weight_hh_l0 .*\[64, 16\].*\[32, 8\]"
    with pytest.raises(InvalidArtifactError, match=shapes):
        ModelArtifact.from_files({**files, "model.safetensors": bigger["model.safetensors"]}, source=SOURCE)
    header = len(files["model.safetensors"]).to_bytes(8, "little")  # a header longer than the file
    with pytest.raises(InvalidArtifactError, match=r"model.safetensors: .*header"):
        ModelArtifact.from_files({**files, "model.safetensors": header + b"{}"}, source=SOURCE)


def test_the_shapes_checked_are_the_networks() -> None:
    config = dataclasses.replace(TINY, hidden=12, article_dim=3)
    built = {name: tuple(t.shape) for name, t in EventLstm(config).state_dict().items()}
    assert parameter_shapes(config, Encoding()) == built


def test_only_the_artifacts_own_files_and_corrupt_json_names_the_file(files: dict[str, bytes]) -> None:
    with pytest.raises(InvalidArtifactError, match=r"unexpected files \['notes.txt'\]"):
        ModelArtifact.from_files({**files, "notes.txt": b"hello"}, source=SOURCE)
    for name in ("config.json", "encoding.json", "metrics.json"):
        with pytest.raises(InvalidArtifactError, match=rf"{SOURCE}/{name}: not valid JSON"):
            ModelArtifact.from_files({**files, name: b'{"hidden": 8'}, source=SOURCE)
        with pytest.raises(InvalidArtifactError, match=rf"{SOURCE}/{name}: not a JSON object"):
            ModelArtifact.from_files({**files, name: b"[8]"}, source=SOURCE)
    # Without a source the file is still named.
    with pytest.raises(InvalidArtifactError, match=r"config.json: not valid JSON"):
        ModelArtifact.from_files({**files, "config.json": b"\xff"})
    loaded = ModelArtifact.from_files(files, source=SOURCE)
    assert loaded.config == TINY and loaded.metrics == {"valid": {"auc": 0.8}}

"""What a model is tied to: its hyperparameters (`LstmConfig`) and the input encoding (`Encoding`).

The encoding is everything outside the model that decides what its input numbers mean: the
order of ACTION_TYPES, the id hash-bucket sizes, MAX_EVENTS and the version of the inputs this
package derives from a history. A model is only ever used with the encoding it was trained on.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from consumer_assets.events.schema import ACTION_TYPES
from consumer_assets.histories.schema import ARTICLE_BUCKETS, BRAND_BUCKETS, CATEGORY_BUCKETS, MAX_EVENTS
from consumer_assets.windows import MAX_TRAIN_DAYS

# Bumped whenever model.inputs (or training.data, which applies it) derives the model's inputs from
# a history differently (a new per-event input, another scaling): artifacts of an older version are
# refused like a changed encoding.
# 2: the horizon's summaries (model.inputs.SUMMARIES) join the static inputs.
INPUT_VERSION = 2


@dataclass(frozen=True)
class Encoding:
    """The meaning of a history's numbers, recorded with every model."""

    action_types: tuple[str, ...] = ACTION_TYPES
    article_buckets: int = ARTICLE_BUCKETS
    brand_buckets: int = BRAND_BUCKETS
    category_buckets: int = CATEGORY_BUCKETS
    max_events: int = MAX_EVENTS
    input_version: int = INPUT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "action_types": list(self.action_types)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Encoding:
        _refuse_unknown(cls, values, "encoding")
        return cls(**{**values, "action_types": tuple(values.get("action_types", ()))})

    def differences(self, other: Encoding) -> list[str]:
        """What `other` has that this encoding does not, readably ("name: other's -> this one's")."""
        diffs = []
        for f in dataclasses.fields(self):
            mine, theirs = getattr(self, f.name), getattr(other, f.name)
            if mine != theirs:
                if f.name == "action_types":
                    diffs.append(f"action_types: {_describe_types(theirs, mine)}")
                else:
                    diffs.append(f"{f.name}: {theirs!r} -> {mine!r}")
        return diffs


def _describe_types(old: tuple[str, ...], new: tuple[str, ...]) -> str:
    added, removed = [t for t in new if t not in old], [t for t in old if t not in new]
    parts = [f"added {added}"] * bool(added) + [f"removed {removed}"] * bool(removed)
    return ", ".join(parts) or "reordered"


# Fields of LstmConfig that shape the network: two configs agreeing on these have weights of the
# same shapes and meaning, so one model can warm-start the other.
ARCHITECTURE_FIELDS: tuple[str, ...] = ("type_dim", "article_dim", "brand_dim", "category_dim", "hidden")
# Integer fields that must be at least 1; every other one but the seed at least 0.
POSITIVE_FIELDS: tuple[str, ...] = (*ARCHITECTURE_FIELDS, "epochs", "batch_size", "score_batch_size", "train_days")
# The most a config may ask for, for every integer field but the seed. A config is also read back
# from storage, where anyone with write access can change it: bounded, the network it describes
# stays about 600 MB at most (hidden = 100000 would be 160 GB of recurrent weights), and a batch or
# a run stays finite. Far above what these histories need (hidden 32, embeddings of 16 or less).
LIMITS: dict[str, int] = {
    **dict.fromkeys(("type_dim", "article_dim", "brand_dim", "category_dim"), 1024),
    "hidden": 4096,
    "epochs": 1000,
    "warm_start_epochs": 1000,
    "patience": 1000,
    "warmup_steps": 1_000_000,
    "batch_size": 65_536,
    "score_batch_size": 65_536,
    "train_days": MAX_TRAIN_DAYS,
    "max_train_histories_per_day": 1_000_000_000,
}


@dataclass(frozen=True)
class LstmConfig:
    """Hyperparameters of the event-stream LSTM and its training (defaults: ~20k profiles on 2 cores)."""

    # Embedding sizes of the action type and of the hashed article, brand and category ids.
    type_dim: int = 16
    article_dim: int = 8
    brand_dim: int = 4
    category_dim: int = 4
    # LSTM cell size: the paper found 10 enough; 32 trains in minutes on 2 cores and does not underfit.
    hidden: int = 32
    # Training: Adam with a short linear warm-up, then cosine decay to lr * final_lr_factor.
    epochs: int = 8
    batch_size: int = 128
    lr: float = 4e-3
    final_lr_factor: float = 0.02
    warmup_steps: int = 100
    weight_decay: float = 0.0
    # The hashed ids can single out a profile (its articles), and seven cut-off days of one profile
    # share most events and labels: unchecked, the model memorises profiles through them (training
    # loss -> 0, validation AUC -> 0.6 on 20k profiles). So the loss adds id_l2 x the mean squared
    # contribution of the id vectors to the LSTM's gates: ids only count where they help broadly.
    id_l2: float = 1.0
    grad_clip: float = 1.0
    # Early stopping: this share of the training profiles (another hash than the validation split)
    # is kept out of the gradient steps; the epoch with the best likelihood on it is the model,
    # and training stops after `patience` epochs without a better one. 0 trains every epoch.
    early_stopping_share: float = 0.1
    patience: int = 3
    # Warm start from a compatible approved model: fewer epochs, gentler learning rate.
    warm_start_epochs: int = 3
    warm_start_lr_factor: float = 0.5
    # Training data of day D: the histories of the cut-off days D-7-k, k = 0 .. train_days - 1,
    # each labelled with the 7 days after it, so nothing after D is read (windows.training_cutoffs).
    # By default every cut-off day the daily asset's inputs cover.
    train_days: int = MAX_TRAIN_DAYS
    # Share of profiles (by a hash of the id, the same every day) held out for validation.
    validation_share: float = 0.3
    # A cap for huge shops: 0 trains on every history; N samples each cut-off day's training histories
    # down to about N by another hash of the profile id (the profiles sampled on a day with a smaller
    # share are sampled on every other day too). Validation histories are never sampled.
    max_train_histories_per_day: int = 0
    seed: int = 0
    # Histories per batch when scoring (no gradients: bigger batches are cheaper per history).
    score_batch_size: int = 1024

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value, integer = getattr(self, f.name), f.type == "int"
            if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
                raise ValueError(f"{f.name} must be {'an integer' if integer else 'a finite number'}, got {value!r}")
            if not integer and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value!r}")
            if integer and f.name != "seed":
                least = 1 if f.name in POSITIVE_FIELDS else 0
                if value < least:
                    raise ValueError(f"{f.name} must be at least {least}, got {value}")
                if value > LIMITS[f.name]:
                    raise ValueError(f"{f.name} must be at most {LIMITS[f.name]}, got {value}")
        if not 0.0 <= self.early_stopping_share < 1.0:
            raise ValueError(f"early_stopping_share must be in [0, 1), got {self.early_stopping_share}")
        if not 0.0 < self.validation_share < 1.0:
            raise ValueError(f"validation_share must be in (0, 1), got {self.validation_share}")
        if self.lr <= 0 or not 0 < self.final_lr_factor <= 1:
            raise ValueError("lr must be positive and final_lr_factor in (0, 1]")

    def architecture(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in ARCHITECTURE_FIELDS}

    def compatible(self, other: LstmConfig) -> bool:
        """Whether a model trained with `other` can warm-start one with this config."""
        return self.architecture() == other.architecture()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LstmConfig:
        """Inverse of to_dict; fields this version does not know are refused, missing ones defaulted,
        every value checked (type, bounds) before anything is built from it."""
        _refuse_unknown(cls, values, "config")
        return cls(**values)


def _refuse_unknown(cls: type, values: dict[str, Any], what: str) -> None:
    """ValueError naming the keys of `values` that are no field of the dataclass `cls`."""
    unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"unknown {what} fields {unknown}")

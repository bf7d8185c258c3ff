"""Training: Adam on the log-likelihood of the final prediction, batches of similar length.

One code path for both devices: CUDA with bf16 autocast when a GPU is there, else CPU in
float32. On CPU a seed fixes everything (initial weights, batch order), so the same data and
config give the same weights bit for bit; torch's global RNG is left as it was.

The learning rate warms up linearly for a few steps, then decays along a cosine to
lr * final_lr_factor: the prototype's models were still improving at a constant rate when
training stopped, the decay lets the last epochs settle instead.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from consumer_assets.ml.config import LstmConfig
from consumer_assets.ml.data import SequenceData
from consumer_assets.ml.device import autocast, default_device
from consumer_assets.ml.metrics import auc, nll
from consumer_assets.ml.model import EventLstm
from consumer_assets.ml.score import predict


@dataclass(frozen=True)
class EpochStats:
    """One epoch: mean training loss, validation NLL and AUC (if validating), throughput."""

    epoch: int
    train_loss: float
    valid_nll: float | None
    valid_auc: float | None
    lr: float
    seconds: float
    histories_per_s: float

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


@dataclass
class TrainResult:
    model: EventLstm
    epochs: list[EpochStats]
    warm_started: bool
    device: str

    @property
    def seconds(self) -> float:
        return sum(e.seconds for e in self.epochs)


def lr_factor(step: int, total: int, warmup: int, final: float) -> float:
    """Multiplier of the peak learning rate at optimizer step `step` of `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress))


def train(
    config: LstmConfig,
    train_data: SequenceData,
    valid_data: SequenceData | None = None,
    *,
    init: EventLstm | None = None,
    device: torch.device | None = None,
    epochs: int | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
) -> TrainResult:
    """Train an EventLstm on labelled histories; `init` warm-starts from a compatible model's weights.

    A warm start runs config.warm_start_epochs at lr * warm_start_lr_factor (unless `epochs` is
    given). Validation metrics are computed after every epoch when `valid_data` is given.
    """
    if train_data.label is None or len(train_data) == 0:
        raise ValueError("training needs labelled histories")
    device = device or default_device()
    if init is not None:
        if not config.compatible(init.config):
            raise ValueError(f"cannot warm-start: architecture {init.config.architecture()} != {config.architecture()}")
        diffs = init.encoding.differences(EventLstm(config).encoding)
        if diffs:
            raise ValueError(f"cannot warm-start from a model of another encoding: {diffs}")
    n_epochs = epochs or (config.warm_start_epochs if init is not None else config.epochs)
    peak_lr = config.lr * (config.warm_start_lr_factor if init is not None else 1.0)
    rng = np.random.default_rng(config.seed)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = EventLstm(config, init.encoding if init is not None else None)
    if init is not None:
        model.load_state_dict(init.state_dict())
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=peak_lr, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(train_data) / config.batch_size)
    total = n_epochs * steps_per_epoch
    warmup = min(config.warmup_steps, total // 4)
    loss_fn = nn.BCEWithLogitsLoss()
    history: list[EpochStats] = []
    step = 0
    for epoch in range(1, n_epochs + 1):
        began = time.perf_counter()
        model.train()
        loss_sum, seen = 0.0, 0
        for rows in train_data.length_batches(config.batch_size, rng):
            for group in optimizer.param_groups:
                group["lr"] = peak_lr * lr_factor(step, total, warmup, config.final_lr_factor)
            batch = train_data.batch(rows).to(device)
            with autocast(device):
                _, logits, id_penalty = model.run(batch, penalty=config.id_l2 > 0)
            loss = loss_fn(logits.float(), batch.label)
            objective = loss + config.id_l2 * id_penalty if id_penalty is not None else loss
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            if config.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            loss_sum += float(loss.detach()) * len(rows)
            seen += len(rows)
            step += 1
        seconds = time.perf_counter() - began
        valid_nll = valid_auc = None
        if valid_data is not None and valid_data.label is not None and len(valid_data):
            p = predict(model, valid_data, config.score_batch_size)
            valid_nll, valid_auc = nll(valid_data.label, p), auc(valid_data.label, p)
        stats = EpochStats(
            epoch=epoch,
            train_loss=loss_sum / seen,
            valid_nll=valid_nll,
            valid_auc=valid_auc,
            lr=optimizer.param_groups[0]["lr"],
            seconds=seconds,
            histories_per_s=seen / seconds,
        )
        history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
    model.eval()
    return TrainResult(model=model, epochs=history, warm_started=init is not None, device=str(device))

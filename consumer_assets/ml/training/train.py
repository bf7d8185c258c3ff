"""Training: Adam on the log-likelihood of the final prediction, batches of similar length.

One code path for both devices: CUDA with bf16 autocast when a GPU is there, else CPU in
float32. On CPU a seed fixes everything (initial weights, batch order), so the same data and
config give the same weights bit for bit; torch's global RNG is left as it was.

The learning rate warms up linearly for a few steps, then decays along a cosine to
lr * final_lr_factor: the prototype's models were still improving at a constant rate when
training stopped, the decay lets the last epochs settle instead.

A tenth of the training profiles is held out of the gradient steps to stop on: the model is the
epoch with the best likelihood there. Seven near-identical cut-off days per profile make
memorising profiles easy once a model has the capacity (a 64-cell LSTM on 20k profiles went from
validation AUC 0.82 to 0.69 in five epochs); the held-out profiles see that happen, the
validation profiles, which judge the model, are never used to choose it.

Histories come in memory (SequenceData) or streamed from their files (stream.HistoryStream), a
chunk at a time: an epoch shuffles within chunks of the stream, and the likelihoods are computed
chunk by chunk, so memory does not grow with the number of histories.

Data-parallel: in a torch.distributed process group (torchrun; distributed.py launches one),
every process reads the same stream in the same order and takes its share of each batch's rows,
and DistributedDataParallel averages the gradients. The batches, and so the steps, are those of
one process: only the rounding differs. Every epoch's likelihoods are shared out too: each process
scores every world-th chunk, the scores are gathered, and each computes the same figures from all of
them (rank 0's decide when to stop).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from consumer_assets.ml.model.batch import Batch
from consumer_assets.ml.model.config import LstmConfig
from consumer_assets.ml.model.device import autocast, default_device
from consumer_assets.ml.model.network import EventLstm
from consumer_assets.ml.scoring.predict import predict
from consumer_assets.ml.training.data import Histories
from consumer_assets.ml.training.labels import STOPPING_SALT
from consumer_assets.ml.training.metrics import auc, nll


@dataclass(frozen=True)
class EpochStats:
    """One epoch: training loss, likelihood on the stopping profiles, validation NLL and AUC, throughput."""

    epoch: int
    train_loss: float
    stopping_nll: float | None
    valid_nll: float | None
    valid_auc: float | None
    lr: float
    seconds: float
    histories_per_s: float

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


@dataclass
class TrainResult:
    model: EventLstm  # the weights of `best_epoch`
    epochs: list[EpochStats]
    best_epoch: int
    warm_started: bool
    device: str
    # A warm start's NLL on the stopping profiles (the training profiles when none are held out)
    # with the weights it started from and with the weights it returns; None for a cold start.
    start_nll: float | None = None
    end_nll: float | None = None

    @property
    def seconds(self) -> float:
        return sum(e.seconds for e in self.epochs)

    @property
    def worse_than_start(self) -> bool:
        """A warm start that ended with a worse likelihood than the weights it started from."""
        return self.start_nll is not None and self.end_nll is not None and self.end_nll > self.start_nll


def lr_factor(step: int, total: int, warmup: int, final: float) -> float:
    """Multiplier of the peak learning rate at optimizer step `step` of `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress))


def _new_model(config: LstmConfig, init: EventLstm | None) -> EventLstm:
    if init is not None:
        if not config.compatible(init.config):
            raise ValueError(f"cannot warm-start: architecture {init.config.architecture()} != {config.architecture()}")
        diffs = init.encoding.differences(EventLstm(config).encoding)
        if diffs:
            raise ValueError(f"cannot warm-start from a model of another encoding: {diffs}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = EventLstm(config, init.encoding if init is not None else None)
    if init is not None:
        model.load_state_dict(init.state_dict())
    return model


class _Objective(nn.Module):
    """The training step's forward (logits and the id penalty), as one module for DistributedDataParallel."""

    def __init__(self, model: EventLstm) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Batch, penalty: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        return self.model.run(batch, penalty)


def process_group() -> tuple[int, int]:
    """(this process's rank, the number of processes) of the torch.distributed group; (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _likelihood(model: EventLstm, data: Histories | None, batch_size: int) -> tuple[float | None, float | None]:
    """NLL and AUC on labelled histories, scored a chunk at a time; (None, None) without any. With
    several processes each scores every world-th chunk and every process gets the figures over all."""
    if data is None or not len(data):
        return None, None
    rank, world = process_group()
    labels, scores = [np.zeros(0, np.float32)], [np.zeros(0, np.float32)]
    for i, chunk in enumerate(data.chunks()):
        if chunk.label is None:  # the same on every process: none gathers
            return None, None
        if i % world == rank:
            labels.append(chunk.label)
            scores.append(predict(model, chunk, batch_size))
    y, p = np.concatenate(labels), np.concatenate(scores)
    if world > 1:
        y, p = _gathered(np.stack([y.astype(np.float64), p.astype(np.float64)]), model)
    return nll(y, p), auc(y, p)


def _gathered(mine: np.ndarray, model: EventLstm) -> tuple[np.ndarray, np.ndarray]:
    """The (2, n) label and score rows of every process, joined in rank order (tensors on the model's
    device, as the process group's backend wants them: padded to the longest, then cut back)."""
    device = next(model.parameters()).device
    world = dist.get_world_size()
    sizes = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([mine.shape[1]], dtype=torch.int64, device=device))
    longest = max(int(n.item()) for n in sizes)
    padded = torch.zeros((2, longest), dtype=torch.float64, device=device)
    padded[:, : mine.shape[1]] = torch.from_numpy(mine).to(device)
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    joined = np.concatenate([part[:, : int(n.item())].cpu().numpy() for part, n in zip(parts, sizes, strict=True)], 1)
    return joined[0], joined[1]


def _agreed(value: float, world: int) -> float:
    """Rank 0's value, on every process (what decides when to stop must be the same everywhere)."""
    if world == 1:
        return value
    box = torch.tensor([value], dtype=torch.float64)
    dist.broadcast(box, 0)
    return float(box.item())


def train(
    config: LstmConfig,
    train_data: Histories,
    valid_data: Histories | None = None,
    *,
    init: EventLstm | None = None,
    device: torch.device | None = None,
    epochs: int | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
) -> TrainResult:
    """Train an EventLstm on labelled histories; `init` warm-starts from a compatible model's weights.

    A warm start runs config.warm_start_epochs at lr * warm_start_lr_factor (unless `epochs` is
    given) and reports its likelihood before and after (start_nll, end_nll). `valid_data` is only
    reported on, after every epoch: it never steers training. In a torch.distributed group every
    process calls it with the same arguments (see the module's docstring).
    """
    if len(train_data) == 0:
        raise ValueError("training needs labelled histories")
    device = device or default_device()
    rank, world = process_group()
    n_epochs = epochs or (config.warm_start_epochs if init is not None else config.epochs)
    peak_lr = config.lr * (config.warm_start_lr_factor if init is not None else 1.0)
    rng = np.random.default_rng(config.seed)
    fit_data, stop_data = train_data, None
    if config.early_stopping_share > 0:
        rest, held = train_data.held_out(config.early_stopping_share, STOPPING_SALT)
        if len(held) and len(rest):
            fit_data, stop_data = rest, held

    model = _new_model(config, init).to(device)
    # Averages the gradients over the processes; broadcasts rank 0's initial weights as it starts.
    step_of: nn.Module = _Objective(model)
    if world > 1:
        step_of = DistributedDataParallel(step_of)
    # A warm start is measured before its first step and after its last on the rows that choose
    # the epoch, never on the validation profiles that judge it: whether it ended worse than the
    # weights it started from (train_daily then starts cold instead).
    measured_on = stop_data if stop_data is not None else fit_data
    start_nll = _likelihood(model, measured_on, config.score_batch_size)[0] if init is not None else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=peak_lr, weight_decay=config.weight_decay)
    total = n_epochs * math.ceil(len(fit_data) / config.batch_size)
    warmup = min(config.warmup_steps, total // 4)
    loss_fn = nn.BCEWithLogitsLoss()
    history: list[EpochStats] = []
    best_nll, best_epoch, best_state = math.inf, 0, None
    step = 0
    for epoch in range(1, n_epochs + 1):
        began = time.perf_counter()
        model.train()
        loss_sum, seen, histories = 0.0, 0, 0
        for chunk in fit_data.chunks(rng):
            if chunk.label is None:
                raise ValueError("training needs labelled histories")
            for rows in chunk.length_batches(config.batch_size, rng):
                if len(rows) < world:  # a batch every process has rows of (at most world - 1 rows an epoch)
                    continue
                for group in optimizer.param_groups:
                    group["lr"] = peak_lr * lr_factor(step, total, warmup, config.final_lr_factor)
                batch = chunk.batch(rows[rank::world]).to(device)
                with autocast(device):
                    _, logits, id_penalty = step_of(batch, penalty=config.id_l2 > 0)
                loss = loss_fn(logits.float(), batch.label)
                objective = loss + config.id_l2 * id_penalty if id_penalty is not None else loss
                optimizer.zero_grad(set_to_none=True)
                objective.backward()
                if config.grad_clip:
                    nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                loss_sum += float(loss.detach()) * len(batch.lengths)
                seen += len(batch.lengths)
                histories += len(rows)
                step += 1
        if world > 1:  # the loss over every process's rows
            sums = torch.tensor([loss_sum, seen], dtype=torch.float64)
            dist.all_reduce(sums)
            loss_sum, seen = float(sums[0]), int(sums[1])
        seconds = time.perf_counter() - began
        stopping_nll, _ = _likelihood(model, stop_data, config.score_batch_size)
        valid_nll, valid_auc = _likelihood(model, valid_data, config.score_batch_size)
        stats = EpochStats(
            epoch=epoch,
            train_loss=loss_sum / seen,
            stopping_nll=stopping_nll,
            valid_nll=valid_nll,
            valid_auc=valid_auc,
            lr=optimizer.param_groups[0]["lr"],
            seconds=seconds,
            histories_per_s=histories / seconds,
        )
        history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
        score = _agreed(stopping_nll if stopping_nll is not None else -epoch, world)  # none: the last epoch
        if score < best_nll:
            best_nll, best_epoch = score, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= config.patience:
            break
    if best_state is not None and best_epoch != history[-1].epoch:
        model.load_state_dict(best_state)
    model.eval()
    end_nll = _likelihood(model, measured_on, config.score_batch_size)[0] if init is not None else None
    return TrainResult(
        model=model,
        epochs=history,
        best_epoch=best_epoch,
        warm_started=init is not None,
        device=str(device),
        start_nll=start_nll,
        end_nll=end_nll,
    )

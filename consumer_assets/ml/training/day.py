"""The day's training as one call: trained_lstm_model[D] reads its inputs, calls `train_daily`, reports.

Day D trains on the histories of the cut-off days D-7-k (k = 0 .. train_days - 1), each labelled
with the orders of the 7 days after it: the newest label window ends with day D, so nothing
after D is read. Profiles split by the hash of their id into training and validation, the same
on every day. The histories stream from their files (stream.HistoryStream): training reads them
an epoch at a time, validation a chunk at a time, and what stays in memory is the buyers of the
label windows and, per validation history, its label and the models' probabilities.

The new model, the legacy baseline (refitted on the same training rows) and the approved model,
if any, are validated on the same held-out histories, and gate.judge decides with the given
tolerances whether the new model may be approved: that verdict is stored with the model.

A warm start from the approved model that ends with a worse likelihood than it started with, on
the profiles that chose its epoch, is dropped for a cold start, which is what gets judged: from a
model already at its best on the day's data (the same day trained twice), further steps easily
overshoot, and a cold start is the better candidate to put before the gate.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from consumer_assets.ml.model.artifact import ModelArtifact
from consumer_assets.ml.model.config import Encoding, LstmConfig
from consumer_assets.ml.model.device import torch_threads
from consumer_assets.ml.scoring.predict import predict
from consumer_assets.ml.training.baseline import LogisticBaseline
from consumer_assets.ml.training.data import Histories, SequenceData
from consumer_assets.ml.training.distributed import train_in_processes
from consumer_assets.ml.training.evaluate import Comparison, validation_report
from consumer_assets.ml.training.gate import Tolerances, Verdict, judge
from consumer_assets.ml.training.labels import SAMPLE_SALT, SPLIT_SALT, Batches, cap_shares, order_profiles
from consumer_assets.ml.training.stream import HistoryStream
from consumer_assets.ml.training.train import EpochStats, TrainResult, train
from consumer_assets.windows import training_cutoffs

EPOCH = dt.date(1970, 1, 1)


@dataclass
class TrainingOutcome:
    """The trained model (with its metrics and verdict inside), the numbers to record and the gate's verdict."""

    artifact: ModelArtifact
    metrics: dict[str, float]  # flat and numeric: metadata that plots across partitions
    comparisons: dict[str, dict[str, Comparison]]  # {"baseline" | "approved": {metrics.COMPARED_METRICS: ...}}
    verdict: Verdict
    epochs: list[EpochStats]  # of the judged model
    warm_started: bool  # a warm start from the approved model was tried
    warm_start_fell_back: bool = False  # ... it ended worse than it started: the cold start was judged

    @property
    def judged_start(self) -> str:
        """'warm' or 'cold': how the judged model began."""
        return "warm" if self.warm_started and not self.warm_start_fell_back else "cold"


def can_warm_start(config: LstmConfig, approved: ModelArtifact | None) -> bool:
    """Same architecture and the code's encoding: its weights are a valid starting point."""
    return approved is not None and config.compatible(approved.config) and not approved.encoding.differences(Encoding())


def train_daily(
    day: dt.date,
    histories: ds.Dataset | pa.Table,
    order_events: Batches,
    config: LstmConfig,
    approved: ModelArtifact | None = None,
    *,
    tolerances: Tolerances | None = None,
    approved_label: str | None = None,
    cutoff_column: str = "date",
    replicates: int = 1000,
    threads: int | None = None,
    processes: int = 1,
    on_epoch: Callable[[EpochStats], None] | None = None,
) -> TrainingOutcome:
    """Train, validate, compare and judge the model of day D.

    `histories`: HISTORIES_SCHEMA rows of the training cut-off days with their day in
    `cutoff_column` (rows of other days are ignored): the table's files as a dataset (its
    partition gives the day), or a table in memory. `order_events`: raw_events columns
    profile_id, ts, event_type of `windows.label_days(day, train_days)`. `tolerances`: the gate's bars
    (None: Tolerances' defaults); `approved_label`: how the verdict names the approved model.
    `threads`: torch's CPU threads for the call (None leaves the process setting). `processes`: the
    model trains data-parallel in that many processes (distributed.py; histories from files only),
    each with `threads` threads (default 1). `on_epoch`: told
    each epoch's figures as it ends (progress; it never steers training).
    """
    bars = tolerances or Tolerances()
    with torch_threads(threads):
        return _train_daily(
            day,
            histories,
            order_events,
            config,
            approved,
            bars,
            approved_label,
            cutoff_column,
            replicates,
            _fitter(processes, threads, on_epoch),
        )


def _train_daily(
    day: dt.date,
    histories: ds.Dataset | pa.Table,
    order_events: Batches,
    config: LstmConfig,
    approved: ModelArtifact | None,
    tolerances: Tolerances,
    approved_label: str | None,
    cutoff_column: str,
    replicates: int,
    fit: Callable[..., TrainResult],
) -> TrainingOutcome:
    began = time.perf_counter()
    cutoffs = training_cutoffs(day, config.train_days)
    buyers = order_profiles(order_events, cutoffs)
    everything = HistoryStream.of(histories, buyers, cutoffs, cutoff_column)
    uncapped, valid = everything.held_out(config.validation_share, SPLIT_SALT)
    sampled = cap_shares(uncapped.rows_per_day, config.max_train_histories_per_day)
    train_data = uncapped.sampled(sampled, SAMPLE_SALT)
    if not len(train_data) or not len(valid):
        raise ValueError(f"no labelled histories to train and validate on for the cut-off days {cutoffs}")
    loaded = time.perf_counter()

    warm = can_warm_start(config, approved)
    init = approved.model if warm and approved is not None else None
    result = fit(config, train_data, valid, init=init)
    abandoned = result if result.worse_than_start else None
    if abandoned is not None:
        result = fit(config, train_data, valid)
    trained = time.perf_counter()

    baseline = LogisticBaseline().fit(train_data)
    scorers: dict[str, Callable[[SequenceData], np.ndarray]] = {
        "lstm": lambda chunk: predict(result.model, chunk, config.score_batch_size),
        "baseline": baseline.predict,
    }
    if approved is not None:
        scorers["approved"] = lambda chunk: predict(approved.model, chunk, config.score_batch_size)
    labels, predictions, groups = _score(valid, scorers)
    report = validation_report(labels, predictions, groups=groups, replicates=replicates, seed=config.seed)
    comparisons: dict[str, dict[str, Comparison]] = report["comparisons"]  # type: ignore[assignment]

    metrics: dict[str, float] = dict(report["metrics"])  # type: ignore[arg-type]
    verdict = judge(metrics["lstm_auc"], comparisons, tolerances, approved_label, metrics)
    for name, by_metric in comparisons.items():
        for metric, c in by_metric.items():
            metrics[f"lstm_vs_{name}_{metric}_better_by"] = c.better_by
            metrics[f"lstm_vs_{name}_{metric}_better_by_lo"] = c.interval[0]
            metrics[f"lstm_vs_{name}_{metric}_better_by_hi"] = c.interval[1]
    for cutoff in cutoffs:
        key = (cutoff - EPOCH).days
        held = uncapped.rows_per_day.get(key, 0) + valid.rows_per_day.get(key, 0)
        metrics[f"histories_{cutoff.isoformat()}"] = float(held)
    metrics |= {
        "train_histories": float(len(train_data)),
        # Before the cap for huge shops (max_train_histories_per_day) sampled them; validation is whole.
        "train_histories_before_cap": float(len(uncapped)),
        "train_days_sampled": float(len(sampled)),
        "train_sample_share_min": min(sampled.values(), default=1.0),
        "train_positives": float(train_data.positives),
        "epochs": float(len(result.epochs)),
        "best_epoch": float(result.best_epoch),
        "warm_started": float(warm),
        "warm_start_fell_back": float(abandoned is not None),
        "train_seconds": trained - loaded,
        "load_seconds": loaded - began,
        "validate_seconds": time.perf_counter() - trained,
        "train_histories_per_s": float(np.mean([e.histories_per_s for e in result.epochs])),
        "final_train_loss": result.epochs[-1].train_loss,
    }
    warm_run = abandoned if abandoned is not None else result if warm else None
    if warm_run is not None and warm_run.start_nll is not None and warm_run.end_nll is not None:
        metrics |= {"warm_start_start_nll": warm_run.start_nll, "warm_start_end_nll": warm_run.end_nll}
    record: dict[str, Any] = {
        "day": day.isoformat(),
        "cutoffs": [c.isoformat() for c in cutoffs],
        # Share of each sampled cut-off day's training histories kept by the cap (by salted profile hash).
        "sampled": {(EPOCH + dt.timedelta(days=d)).isoformat(): share for d, share in sampled.items()},
        "device": result.device,
        "metrics": metrics,
        "comparisons": {n: {m: c.as_dict() for m, c in by.items()} for n, by in comparisons.items()},
        "verdict": verdict.to_dict(),
        "epochs": [e.as_dict() for e in result.epochs],
        "distribution": report["distribution"],
    }
    if warm_run is not None:
        # Its likelihood on the stopping profiles before and after; the epochs of one that was dropped.
        record["warm_start"] = {
            "fell_back": abandoned is not None,
            "start_nll": warm_run.start_nll,
            "end_nll": warm_run.end_nll,
        }
        if abandoned is not None:
            record["warm_start"]["epochs"] = [e.as_dict() for e in abandoned.epochs]
    return TrainingOutcome(
        artifact=ModelArtifact(result.model, record),
        metrics=metrics,
        comparisons=comparisons,
        verdict=verdict,
        epochs=result.epochs,
        warm_started=warm,
        warm_start_fell_back=abandoned is not None,
    )


def _fitter(
    processes: int, threads: int | None, on_epoch: Callable[[EpochStats], None] | None
) -> Callable[..., TrainResult]:
    """train.train in this process, or in `processes` processes."""
    if processes == 1:
        return functools.partial(train, on_epoch=on_epoch)
    return functools.partial(train_in_processes, processes=processes, threads=threads or 1, on_epoch=on_epoch)


def _score(
    histories: Histories, scorers: dict[str, Callable[[SequenceData], np.ndarray]]
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """(labels, each scorer's probabilities, each row's profile as a group code) of labelled
    histories, a chunk at a time: what the validation report needs, and nothing per event."""
    labels: list[np.ndarray] = []
    scores: dict[str, list[np.ndarray]] = {name: [] for name in scorers}
    profiles: list[pa.Array] = []
    for chunk in histories.chunks():
        if chunk.label is None:
            raise ValueError("validation needs labelled histories")
        labels.append(chunk.label)
        profiles.append(chunk.profile_id)
        for name, scorer in scorers.items():
            scores[name].append(np.asarray(scorer(chunk), dtype=np.float64))
    ids = pa.concat_arrays(profiles) if profiles else pa.array([], pa.string())
    # The profiles as dense codes in their sorted order: the bootstrap's groups, without a
    # Python string per row.
    groups = (pc.rank(ids, sort_keys="ascending", tiebreaker="dense").to_numpy() - 1).astype(np.int64)
    return np.concatenate(labels), {name: np.concatenate(p) for name, p in scores.items()}, groups

"""Training learns the signal and only the signal, and a warm start gets there sooner."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pytest
import torch

from consumer_assets.ml import LogisticBaseline, LstmConfig, SequenceData, predict, train
from consumer_assets.ml.metrics import auc
from consumer_assets.ml.simulated import simulate_histories

D = dt.date(2026, 6, 14)
SMALL = LstmConfig(hidden=16, epochs=6, batch_size=64, warmup_steps=20, validation_share=0.4)


@pytest.fixture(scope="module")
def days() -> SequenceData:
    """4,000 profiles on four cut-off days D-3..D (about 1,400 histories a day, 5% positive)."""
    torch.set_num_threads(1)
    sim = simulate_histories(4000, 21, [D - dt.timedelta(days=k) for k in range(4)])
    return SequenceData.from_batches(sim.reader())


def on_days(data: SequenceData, first: dt.date, last: dt.date) -> SequenceData:
    epoch = dt.date(1970, 1, 1)
    assert data.cutoff is not None
    keep = (data.cutoff >= (first - epoch).days) & (data.cutoff <= (last - epoch).days)
    return data.take(np.flatnonzero(keep))


def test_a_model_learns_the_labels_and_nothing_from_shuffled_ones(days: SequenceData) -> None:
    train_data, valid = on_days(days, D - dt.timedelta(days=2), D).split(SMALL.validation_share)
    assert valid.label is not None and valid.label.sum() > 50
    real = train(SMALL, train_data).model
    shuffled = dataclasses.replace(train_data, label=np.random.default_rng(0).permutation(train_data.label))
    noise = train(SMALL, shuffled).model
    real_auc, noise_auc = auc(valid.label, predict(real, valid)), auc(valid.label, predict(noise, valid))
    assert abs(noise_auc - 0.5) < 0.1
    assert real_auc > 0.72 and real_auc - noise_auc > 0.15
    # The baseline on the same split lands near the LSTM (both read the same histories).
    baseline_auc = auc(valid.label, LogisticBaseline().fit(train_data).predict(valid))
    assert baseline_auc > 0.7 and abs(baseline_auc - real_auc) < 0.08


def test_a_warm_start_reaches_the_cold_starts_validation_nll_in_fewer_epochs(days: SequenceData) -> None:
    # Yesterday's model, trained on the cut-off days D-3..D-1; today's data is D-2..D.
    yesterday_train, _ = on_days(days, D - dt.timedelta(days=3), D - dt.timedelta(days=1)).split(0.4)
    approved = train(SMALL, yesterday_train).model
    today_train, today_valid = on_days(days, D - dt.timedelta(days=2), D).split(0.4)
    cold = [e.valid_nll for e in train(SMALL, today_train, today_valid).epochs]
    warm_result = train(SMALL, today_train, today_valid, init=approved)
    warm = [e.valid_nll for e in warm_result.epochs]
    assert warm_result.warm_started and len(warm) == SMALL.warm_start_epochs < SMALL.epochs
    target = cold[-1]
    cold_epochs = next(i for i, v in enumerate(cold, 1) if v <= target)
    warm_epochs = next((i for i, v in enumerate(warm, 1) if v <= target), None)
    assert warm_epochs is not None and warm_epochs < cold_epochs, (cold, warm)


def test_a_warm_start_needs_the_same_architecture(days: SequenceData) -> None:
    tiny = dataclasses.replace(SMALL, epochs=1)
    model = train(tiny, days.take(np.arange(300))).model
    other = dataclasses.replace(tiny, hidden=8)
    assert not other.compatible(tiny) and dataclasses.replace(tiny, lr=1e-4, epochs=9).compatible(tiny)
    with pytest.raises(ValueError, match="architecture"):
        train(other, days.take(np.arange(300)), init=model)

"""Training learns the signal and only the signal, and a warm start gets there sooner."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import torch

from consumer_assets.histories import cutoff_ms
from consumer_assets.ml.model.artifact import ModelArtifact
from consumer_assets.ml.model.config import LstmConfig
from consumer_assets.ml.scoring.predict import predict
from consumer_assets.ml.training.baseline import LogisticBaseline
from consumer_assets.ml.training.data import SequenceData
from consumer_assets.ml.training.day import train_daily
from consumer_assets.ml.training.gate import NLL_VS_APPROVED, Tolerances, judge
from consumer_assets.ml.training.labels import STOPPING_SALT, validation_mask
from consumer_assets.ml.training.metrics import auc, nll
from consumer_assets.ml.training.train import train
from consumer_assets.windows import label_days, training_cutoffs
from consumer_assets_testing.simulated import simulate_histories

# One torch thread: the suite runs beside other processes on two cores, where OpenMP spinning costs most.
pytestmark = pytest.mark.usefixtures("one_torch_thread")

D = dt.date(2026, 6, 14)
SMALL = LstmConfig(hidden=16, epochs=6, batch_size=64, warmup_steps=20, validation_share=0.4)


@pytest.fixture(scope="module")
def days() -> SequenceData:
    """4,000 profiles on four cut-off days D-3..D (about 1,400 histories a day, 5% positive)."""
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
    p_real, p_noise = predict(real, valid), predict(noise, valid)
    assert auc(valid.label, p_real) > 0.72
    # From shuffled labels it learns nothing of the labels: far worse than the real model, and
    # no better than predicting the rate of orders. It does not rank at random either (AUC about
    # 0.63 here): its first steps, while the output bias falls from 0.5 to the rate of orders, drag
    # the read-out along the inputs' mean, a ranking by how active a history is.
    constant = nll(valid.label, np.full(len(valid), train_data.label.mean()))
    assert auc(valid.label, p_real) - auc(valid.label, p_noise) > 0.1
    assert nll(valid.label, p_noise) > constant - 0.01
    assert nll(valid.label, p_real) < nll(valid.label, p_noise) - 0.015
    # So does the baseline, and it learns nothing from the shuffled labels either.
    assert auc(valid.label, LogisticBaseline().fit(train_data).predict(valid)) > 0.72
    assert abs(auc(valid.label, LogisticBaseline().fit(shuffled).predict(valid)) - 0.5) < 0.1


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


def test_the_days_training_reads_nothing_after_the_day_and_warm_starts_from_the_approved_model() -> None:
    config = LstmConfig(hidden=8, type_dim=4, epochs=2, train_days=2, batch_size=64, warmup_steps=10)
    day = D + dt.timedelta(days=7)
    cutoffs = training_cutoffs(day, config.train_days)
    assert cutoffs == [D - dt.timedelta(days=1), D]
    assert label_days(day, config.train_days) == [D + dt.timedelta(days=k) for k in range(8)]
    sim = simulate_histories(3000, 4, [*cutoffs, day])  # events through day + 7
    columns = ["profile_id", "ts", "event_type"]
    through_day = sim.events.filter(pc.less(sim.events["ts"], pa.scalar(cutoff_ms(day), pa.timestamp("ms", tz="UTC"))))
    histories = sim.histories.drop(["label"])  # the asset's input has no labels; one day too many
    torch.set_num_threads(2)
    told: list = []  # progress: each epoch as it ends
    first = train_daily(
        day, histories, through_day.select(columns), config, replicates=50, threads=1, on_epoch=told.append
    )
    assert told == first.epochs and [e.epoch for e in told] == [1, 2]
    assert torch.get_num_threads() == 2  # the call's thread count is its own
    torch.set_num_threads(1)
    # Events after D do not change anything: the labels never read them.
    again = train_daily(day, histories, sim.events.select(columns), config, replicates=50)
    assert again.metrics["lstm_auc"] == first.metrics["lstm_auc"]
    assert first.metrics["train_histories"] + first.metrics["lstm_histories"] == sum(
        first.metrics[f"histories_{c}"] for c in cutoffs
    )
    assert not first.warm_started and set(first.comparisons) == {"baseline"}
    assert all(isinstance(v, float) for v in first.metrics.values())
    assert min(first.metrics["lstm_auc"], first.metrics["baseline_auc"]) > 0.6
    assert first.metrics["train_histories_before_cap"] == first.metrics["train_histories"]

    # A cap for huge shops: each cut-off day's training histories sampled to about 300 by profile hash,
    # the same profiles on both days; validation whole; what was sampled recorded.
    capped = train_daily(
        day, histories, through_day.select(columns), replace(config, epochs=1, max_train_histories_per_day=300)
    )
    assert capped.metrics["lstm_histories"] == first.metrics["lstm_histories"]
    assert capped.metrics["train_histories_before_cap"] == first.metrics["train_histories"]
    assert capped.metrics["train_days_sampled"] == 2
    assert 2 * 300 * 0.8 < capped.metrics["train_histories"] < 2 * 300 * 1.2
    sampled = json.loads(capped.artifact.to_files()["metrics.json"])["sampled"]
    assert sorted(sampled) == [c.isoformat() for c in cutoffs]
    assert capped.metrics["train_sample_share_min"] == min(sampled.values()) < 0.5

    # The next day, with today's model approved: a warm start, compared with it too.
    files = first.artifact.to_files()
    assert json.loads(files["metrics.json"])["cutoffs"] == [c.isoformat() for c in cutoffs]
    # Judged once, with the default bars when none are given, and stored with the model.
    assert first.verdict == judge(first.metrics["lstm_auc"], first.comparisons, Tolerances())
    assert json.loads(files["metrics.json"])["verdict"] == first.verdict.to_dict()
    approved = ModelArtifact.from_files(files)
    following = day + dt.timedelta(days=1)
    bars = Tolerances(auc_floor=0.55, auc_margin=0.03, nll_tolerance=0.01)
    second = train_daily(
        following,
        histories,
        sim.events.select(columns),
        config,
        approved,
        tolerances=bars,
        approved_label="D/v1",
        replicates=50,
    )
    assert second.warm_started and len(second.epochs) == config.warm_start_epochs
    assert set(second.comparisons) == {"baseline", "approved"}
    assert second.comparisons["approved"]["auc"].reference == second.metrics["approved_auc"]
    assert second.verdict.tolerances == bars and "of approved D/v1" in second.verdict.reasons()[NLL_VS_APPROVED]
    assert second.artifact.metrics["verdict"] == second.verdict.to_dict()


def test_a_warm_start_that_ends_worse_than_the_approved_model_falls_back_to_a_cold_start() -> None:
    config = LstmConfig(hidden=8, type_dim=4, epochs=2, train_days=2, batch_size=64, warmup_steps=10)
    day = D + dt.timedelta(days=7)
    sim = simulate_histories(3000, 4, [*training_cutoffs(day, config.train_days), day])
    histories, events = sim.histories.drop(["label"]), sim.events.select(["profile_id", "ts", "event_type"])
    # Two epochs of a tiny model trail the baseline, which is not in question here; against the
    # approved model the bars are the defaults.
    bars = Tolerances(auc_floor=0.55, auc_margin=1.0)
    first = train_daily(day, histories, events, config, tolerances=bars, replicates=200)
    assert not first.warm_started and first.judged_start == "cold" and "warm_start" not in first.artifact.metrics
    approved = ModelArtifact.from_files(first.artifact.to_files())

    # The same day again, as a second run on the same data, with a warm start steep enough (a
    # learning rate of 4) to wreck the weights it starts from.
    steep = dataclasses.replace(config, warm_start_lr_factor=1000.0)
    again = train_daily(day, histories, events, steep, approved, tolerances=bars, approved_label="D/v1", replicates=200)
    assert again.warm_started and again.warm_start_fell_back and again.judged_start == "cold"
    metrics = again.metrics
    assert metrics["warm_started"] == 1.0 and metrics["warm_start_fell_back"] == 1.0
    assert metrics["warm_start_end_nll"] > metrics["warm_start_start_nll"]
    abandoned = again.artifact.metrics["warm_start"]
    assert abandoned["fell_back"] is True and abandoned["end_nll"] == metrics["warm_start_end_nll"]
    # Every warm epoch ran (patience 3 cannot stop 3 epochs early) and each is on record.
    assert len(abandoned["epochs"]) == steep.warm_start_epochs
    # What was judged is the cold start: the first run's model bit for bit, equal to the approved one.
    assert len(again.epochs) == len(first.epochs) and metrics["epochs"] == float(len(first.epochs))
    mine, theirs = again.artifact.model.state_dict(), approved.model.state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    assert all(c.better_by == 0 for c in again.comparisons["approved"].values())
    assert again.verdict.approved, again.verdict.reasons()
    assert again.artifact.metrics["verdict"] == again.verdict.to_dict()

    # A warm start that improves on its starting point stands.
    gentle = train_daily(day, histories, events, config, approved, tolerances=bars, replicates=50)
    assert gentle.warm_started and not gentle.warm_start_fell_back and gentle.judged_start == "warm"
    assert gentle.metrics["warm_start_end_nll"] <= gentle.metrics["warm_start_start_nll"]
    assert len(gentle.epochs) == config.warm_start_epochs


def test_the_model_is_the_epoch_that_did_best_on_held_out_training_profiles(days: SequenceData) -> None:
    # A big learning rate without decay overshoots: later epochs are not always better.
    config = dataclasses.replace(SMALL, epochs=5, lr=0.03, final_lr_factor=1.0, patience=2, early_stopping_share=0.3)
    train_data, valid = on_days(days, D - dt.timedelta(days=2), D).split(config.validation_share)
    result = train(config, train_data, valid)
    stopping = [e.stopping_nll for e in result.epochs]
    assert result.best_epoch == 1 + int(np.argmin(stopping))
    assert len(stopping) == config.epochs or len(stopping) == result.best_epoch + config.patience
    held = validation_mask(train_data.profile_id, config.early_stopping_share, salt=STOPPING_SALT)
    held_out = train_data.take(np.flatnonzero(held))
    assert nll(held_out.label, predict(result.model, held_out)) == pytest.approx(min(stopping), rel=1e-6)
    # Validation profiles are neither trained nor stopped on.
    assert not set(valid.profile_id.to_pylist()) & set(train_data.profile_id.to_pylist())

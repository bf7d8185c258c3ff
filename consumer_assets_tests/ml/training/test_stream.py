"""Training histories stream from the Delta table: every row once a pass, labelled, in bounded chunks."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from consumer_assets.histories import HISTORIES_SCHEMA
from consumer_assets.ml.model.config import LstmConfig
from consumer_assets.ml.scoring.predict import predict
from consumer_assets.ml.training import stream
from consumer_assets.ml.training.data import SequenceData
from consumer_assets.ml.training.day import train_daily
from consumer_assets.ml.training.distributed import train_in_processes
from consumer_assets.ml.training.labels import SPLIT_SALT, STOPPING_SALT, order_profiles
from consumer_assets.ml.training.metrics import auc, nll
from consumer_assets.ml.training.stream import HistoryStream
from consumer_assets.ml.training.train import train
from consumer_assets.storage.tables import DATE, TableStore
from consumer_assets.storage.writes import write_dates
from consumer_assets.windows import label_days, training_cutoffs
from consumer_assets_testing.simulated import SimulatedHistories, simulate_histories

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DAY = dt.date(2026, 6, 21)
CONFIG = LstmConfig(hidden=8, type_dim=4, epochs=3, train_days=3, batch_size=64, warmup_steps=10)
CUTOFFS = training_cutoffs(DAY, CONFIG.train_days)


@pytest.fixture(scope="module")
def sim() -> SimulatedHistories:
    """2,500 profiles on the three cut-off days of DAY's training, and a day before them."""
    return simulate_histories(2500, 5, [CUTOFFS[0] - dt.timedelta(days=1), *CUTOFFS])


@pytest.fixture(scope="module")
def dataset(sim: SimulatedHistories, tmp_path_factory: pytest.TempPathFactory):
    """The histories as a Delta table, three files a day, and the dataset of its committed files."""
    store = TableStore.at(tmp_path_factory.mktemp("tables").as_uri())
    table = sim.histories.select([*HISTORIES_SCHEMA.names, DATE])
    by_day = {}
    for day in sim.cutoffs:
        rows = table.filter(pc.equal(table[DATE], pa.scalar(day, pa.date32()))).drop_columns([DATE])
        third = -(-rows.num_rows // 3)
        by_day[day.isoformat()] = [rows.slice(i, third) for i in range(0, rows.num_rows, third)]
    write_dates(store, "consumer_histories", by_day, schema=HISTORIES_SCHEMA)
    return store.dataset("consumer_histories", [d.isoformat() for d in sim.cutoffs])


def buyers_of(sim: SimulatedHistories) -> pa.Table:
    return order_profiles(sim.events.select(["profile_id", "ts", "event_type"]), CUTOFFS)


def rows_of(chunks) -> set[tuple[str, int, float]]:
    seen = [
        (p, int(c), float(y))
        for chunk in chunks
        for p, c, y in zip(chunk.profile_id.to_pylist(), chunk.cutoff, chunk.label, strict=True)
    ]
    assert len(seen) == len(set(seen)), "a row came twice in one pass"
    return set(seen)


def test_a_pass_reads_each_row_of_the_training_days_once_labelled_in_bounded_chunks(
    sim: SimulatedHistories, dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "SHUFFLE_ROWS", 700)
    monkeypatch.setattr(stream, "READ_ROWS", 128)
    histories = HistoryStream.of(dataset, buyers_of(sim), CUTOFFS)
    assert len(histories.parts) == 3 * len(sim.cutoffs)
    epoch = dt.date(1970, 1, 1)
    wanted = pc.is_in(sim.histories[DATE], value_set=pa.array(CUTOFFS, pa.date32()))
    expected = sim.histories.filter(wanted)
    # The simulation's own labels: the same rule (labels.with_labels), computed over the whole table.
    truth = {
        (p, (d - epoch).days, float(y))
        for p, d, y in zip(*(expected[c].to_pylist() for c in ("profile_id", DATE, "label")), strict=True)
    }
    stored = list(histories.chunks(rows=700))
    assert rows_of(stored) == truth
    assert len(histories) == len(truth) and histories.positives == sum(y for *_, y in truth)
    assert histories.rows_per_day == {
        (d - epoch).days: int(pc.sum(pc.equal(expected[DATE], d)).as_py()) for d in CUTOFFS
    }
    # Shuffled: the same rows, in chunks of at most twice 700 + 127 rows (the rows read since the
    # last chunk and those carried over: what bounds the memory), each mixing several files, and in
    # another order each epoch.
    rng = np.random.default_rng(0)
    first, second = list(histories.chunks(rng, rows=700)), list(histories.chunks(rng, rows=700))
    assert rows_of(first) == truth == rows_of(second)
    assert max(len(c) for c in stored) <= 700 + 127
    assert max(len(c) for c in first) <= 2 * (700 + 127) and len(first) >= 3
    assert len(np.unique(first[0].cutoff)) > 1
    assert first[0].profile_id.to_pylist() != second[0].profile_id.to_pylist()


def test_held_out_profiles_are_those_of_the_in_memory_split_and_a_cap_samples_each_day(
    sim: SimulatedHistories, dataset
) -> None:
    histories = HistoryStream.of(dataset, buyers_of(sim), CUTOFFS)
    memory = SequenceData.concat(list(histories.chunks()))
    for salt in (SPLIT_SALT, STOPPING_SALT):
        streamed = histories.held_out(0.3, salt)
        in_memory = memory.held_out(0.3, salt)
        for s, m in zip(streamed, in_memory, strict=True):
            assert sorted(SequenceData.concat(list(s.chunks())).profile_id.to_pylist()) == sorted(
                m.profile_id.to_pylist()
            )
            assert len(s) == len(m)
    rest, _ = histories.held_out(0.3, SPLIT_SALT)
    per_day = rest.rows_per_day
    capped = rest.sampled({day: 200 / n for day, n in per_day.items()}, "consumer-assets/training-sample/")
    assert all(150 < n < 250 for n in capped.rows_per_day.values()), capped.rows_per_day
    assert len(capped) == sum(len(c) for c in capped.chunks(np.random.default_rng(1)))


def test_training_from_small_shuffled_chunks_of_the_table_learns_as_well_as_from_memory(
    sim: SimulatedHistories, dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    histories = HistoryStream.of(dataset, buyers_of(sim), CUTOFFS)
    training, valid = histories.held_out(CONFIG.validation_share, SPLIT_SALT)
    valid_data = SequenceData.concat(list(valid.chunks()))
    in_memory = train(CONFIG, SequenceData.concat(list(training.chunks())))
    monkeypatch.setattr(stream, "SHUFFLE_ROWS", 300)
    monkeypatch.setattr(stream, "READ_ROWS", 64)
    streamed = train(CONFIG, training)
    assert len(training) > 5 * 300  # several chunks an epoch
    auc_memory = auc(valid_data.label, predict(in_memory.model, valid_data))
    auc_streamed = auc(valid_data.label, predict(streamed.model, valid_data))
    assert auc_memory > 0.62 and auc_streamed > auc_memory - 0.02, (auc_memory, auc_streamed)
    # The stopping profiles chose the epoch in both.
    assert all(e.stopping_nll is not None for e in streamed.epochs)


def test_the_days_training_reads_the_delta_table_and_labels_from_raw_events(
    sim: SimulatedHistories, dataset, tmp_path: Path
) -> None:
    events = sim.events.select(["profile_id", "ts", "event_type"])
    label_window = pc.is_in(pc.cast(events["ts"], pa.date32()), value_set=pa.array(label_days(DAY, 3), pa.date32()))
    outcome = train_daily(
        DAY, dataset, events.filter(label_window), dataclasses.replace(CONFIG, epochs=1), replicates=50
    )
    from_table = train_daily(
        DAY, sim.histories, events.filter(label_window), dataclasses.replace(CONFIG, epochs=1), replicates=50
    )
    # The same rows either way: the counts, the split and the validation labels agree.
    for key in ("train_histories", "train_positives", "lstm_histories", "lstm_positives"):
        assert outcome.metrics[key] == from_table.metrics[key], key
    assert outcome.metrics["baseline_auc"] == pytest.approx(from_table.metrics["baseline_auc"], abs=1e-4)
    for day in CUTOFFS:
        assert outcome.metrics[f"histories_{day.isoformat()}"] > 0
    assert f"histories_{sim.cutoffs[0].isoformat()}" not in outcome.metrics  # the day before is not read


def test_two_processes_train_the_model_one_process_trains(sim: SimulatedHistories, dataset) -> None:
    config = dataclasses.replace(CONFIG, epochs=2)
    histories = HistoryStream.of(dataset, buyers_of(sim), CUTOFFS)
    training, valid = histories.held_out(config.validation_share, SPLIT_SALT)
    seen: list[int] = []
    two = train_in_processes(config, training, valid, processes=2, on_epoch=lambda e: seen.append(e.epoch))
    one = train(config, training, valid)
    assert seen == [1, 2] and [e.epoch for e in two.epochs] == [1, 2]
    valid_data = SequenceData.concat(list(valid.chunks()))
    p_one, p_two = predict(one.model, valid_data), predict(two.model, valid_data)
    # The same batches, each split between the processes and their gradients averaged: the same
    # steps but for the rounding (and the mean of two halves' means where a batch has odd rows).
    assert np.abs(p_one - p_two).max() < 0.01, np.abs(p_one - p_two).max()
    assert two.epochs[-1].valid_auc == pytest.approx(one.epochs[-1].valid_auc, abs=0.01)
    # Each process scored part of the validation histories; the figures are those of them all (the
    # model returned is the best epoch's).
    best = two.epochs[two.best_epoch - 1]
    assert best.valid_auc == pytest.approx(auc(valid_data.label, p_two), abs=1e-6)
    assert best.valid_nll == pytest.approx(nll(valid_data.label, p_two), rel=1e-5)
    assert two.best_epoch == one.best_epoch and two.device == "cpu"

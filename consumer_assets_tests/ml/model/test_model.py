"""The LSTM and its data path: loading, batching by length, determinism, per-event outputs, scoring, artifacts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pytest
import torch

from consumer_assets.events.schema import ACTION_INDEX, ACTION_TYPES, RAW_EVENTS_SCHEMA
from consumer_assets.histories import cutoff_ms, encode_histories
from consumer_assets.ml.model.artifact import EncodingMismatchError, ModelArtifact
from consumer_assets.ml.model.config import Encoding, LstmConfig
from consumer_assets.ml.model.device import autocast, bf16_enabled
from consumer_assets.ml.model.inputs import MOMENT_STATIC, NULL, SUMMARIES, static_names
from consumer_assets.ml.model.network import EventLstm
from consumer_assets.ml.scoring.predict import predict, predict_all
from consumer_assets.ml.training.data import SequenceData
from consumer_assets.ml.training.train import train
from consumer_assets_testing.simulated import SimulatedHistories, simulate_histories

# One torch thread: the suite runs beside other processes on two cores, where OpenMP spinning costs most.
pytestmark = pytest.mark.usefixtures("one_torch_thread")

D = dt.date(2026, 4, 20)
TINY = LstmConfig(type_dim=4, article_dim=2, brand_dim=2, category_dim=2, hidden=8, epochs=1, batch_size=64)


@pytest.fixture(scope="module")
def sim() -> SimulatedHistories:
    return simulate_histories(2500, 5, [D - dt.timedelta(days=1), D])


@pytest.fixture(scope="module")
def data(sim: SimulatedHistories) -> SequenceData:
    return SequenceData.from_batches(sim.reader(max_chunksize=300))


@pytest.fixture(scope="module")
def model(data: SequenceData) -> EventLstm:
    return train(TINY, data).model


def _one_profile(ts: list[int], types: list[str]) -> pa.Table:
    rows = [
        {"event_id": f"e{i:02d}", "profile_id": "p", "session_id": "s", "event_type": t} for i, t in enumerate(types)
    ]
    table = pa.Table.from_pylist(rows, schema=RAW_EVENTS_SCHEMA.remove(3))
    return table.add_column(3, RAW_EVENTS_SCHEMA.field("ts"), pa.array(ts).cast(pa.timestamp("ms", tz="UTC")))


def test_loading_keeps_every_history_and_derives_event_ages() -> None:
    hour = 3_600_000
    c = cutoff_ms(D)
    # 5 events 100 days before the cut-off, 16 in its last 50 hours.
    ts = [c - 100 * 24 * hour + 1000 * i for i in range(5)] + [c - 50 * hour + 997 * i for i in range(16)]
    table = _one_profile(ts, [ACTION_TYPES[i % 19] for i in range(len(ts))])
    (_, histories), *_ = encode_histories(table, [D])
    data = SequenceData.from_batches(histories)
    # Within the default 180-day horizon: every event, oldest first, each at its age.
    assert len(data) == 1 and data.lengths.tolist() == [21]
    assert data.event_type.tolist() == [ACTION_INDEX[ACTION_TYPES[i % 19]] for i in range(21)]
    np.testing.assert_allclose(data.age_hours(), (c - np.array(ts)) / hour, rtol=1e-5)
    # Over 28 days the 5 old events are not in the history; the 16 are.
    (_, histories), *_ = encode_histories(table, [D], horizon_days=28)
    data = SequenceData.from_batches(histories)
    assert data.lengths.tolist() == [16]
    assert data.event_type.tolist() == [ACTION_INDEX[ACTION_TYPES[i % 19]] for i in range(5, 21)]
    np.testing.assert_allclose(data.age_hours(), (c - np.array(ts[5:])) / hour, rtol=1e-5)


def test_the_static_inputs_carry_the_horizons_summaries() -> None:
    hour = 3_600_000
    c = cutoff_ms(D)
    # An order on day D-100 (at 23:00), then 16 views in the last 50 hours: no return in the horizon.
    ts = [c - (100 * 24 + 1) * hour] + [c - 50 * hour + 997 * i for i in range(16)]
    (_, histories), *_ = encode_histories(_one_profile(ts, ["order"] + ["product_view"] * 16), [D])
    data = SequenceData.from_batches(histories)
    want = {
        "n_window_events": 17,
        "n_recent_events": 16,
        "days_since_first_event": 100,
        "n_orders": 1,
        "n_returns": 0,
        "days_since_last_order": 100,
        "days_since_last_return": NULL,
    }
    assert {k: int(data.summary_column(k)[0]) for k in want} == want
    static = dict(zip(static_names(), data.static[0].tolist(), strict=True))
    for name, centre, scale in SUMMARIES:
        value = want.get(name, int(data.summary_column(name)[0]))
        expected = 0.0 if value == NULL else (np.log1p(value) - centre) / scale
        assert static[name] == pytest.approx(expected, abs=1e-6), name
    # "No return in the horizon" is its own input, not a made-up number of days.
    assert static["no_days_since_last_return"] == 1.0 and static["no_days_since_last_order"] == 0.0
    # And a different long past moves the prediction: the output layer reads the summaries.
    model = EventLstm(TINY)
    with torch.no_grad():
        model.output.weight.fill_(0.1)
    batch = data.batch(np.array([0]))
    longer = dataclasses.replace(batch, static=batch.static.clone())
    longer.static[0, MOMENT_STATIC] += 1.0
    with torch.inference_mode():
        assert model(longer)[1] > model(batch)[1]


def test_batches_cover_every_row_once_with_little_padding(data: SequenceData) -> None:
    lengths = data.lengths
    for rng in (None, np.random.default_rng(1)):
        batches = data.length_batches(64, rng)
        rows = np.concatenate(batches)
        assert sorted(rows.tolist()) == list(range(len(data)))
        padded = sum(len(b) * lengths[b].max() for b in batches)
        assert padded / lengths.sum() < 1.1
    # Training batches come in a different order each epoch, scoring ones sorted.
    rng = np.random.default_rng(1)
    assert not np.array_equal(
        np.concatenate(data.length_batches(64, rng)), np.concatenate(data.length_batches(64, rng))
    )


def test_training_is_deterministic_under_a_seed(data: SequenceData) -> None:
    small = data.take(np.arange(600))
    a, b = train(TINY, small).model.state_dict(), train(TINY, small).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = train(dataclasses.replace(TINY, seed=1), small).model.state_dict()
    assert not torch.equal(a["lstm.weight_ih_l0"], other["lstm.weight_ih_l0"])
    # The global RNG is left alone: training does not reseed other code.
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train(TINY, small)
    assert torch.equal(torch.rand(3), expected)


def test_the_last_per_event_probability_is_the_prediction(model: EventLstm, data: SequenceData) -> None:
    final, events = predict_all(model, data, batch_size=128)
    assert events is not None and events.shape == (data.events,)
    assert np.array_equal(events[data.offsets[1:] - 1], final)
    # And the probabilities do move along a history (they explain it).
    assert np.std(events - np.repeat(final, data.lengths)) > 1e-3


def test_padding_and_batching_do_not_change_predictions(model: EventLstm, data: SequenceData) -> None:
    short = int(np.argmin(data.lengths))
    longest = np.argsort(data.lengths)[-5:]
    with torch.inference_mode():
        alone_events, alone = model(data.batch(np.array([short])))
        padded_events, padded = model(data.batch(np.r_[longest[:2], short, longest[2:]]))
    n = int(data.lengths[short])
    assert padded_events.shape[1] > 2 * n
    torch.testing.assert_close(padded[2], alone[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(padded_events[2, :n], alone_events[0], rtol=1e-5, atol=1e-6)
    # Batch size and order of rows do not matter either.
    np.testing.assert_allclose(predict(model, data, 7), predict(model, data, 4096), rtol=1e-5, atol=1e-6)


def test_artifact_round_trip_is_weights_and_json_only(model: EventLstm, data: SequenceData) -> None:
    metrics = {"valid": {"auc": 0.8, "nll": 0.15, "undefined": float("nan")}}
    files = ModelArtifact(model, metrics).to_files()
    assert sorted(files) == ["config.json", "encoding.json", "metrics.json", "model.safetensors"]
    assert files == ModelArtifact(model, metrics).to_files()  # same model, same bytes
    # safetensors: an 8-byte header length, a JSON header, raw tensor bytes; no pickle opcode stream.
    header_len = int.from_bytes(files["model.safetensors"][:8], "little")
    header = json.loads(files["model.safetensors"][8 : 8 + header_len])
    assert "lstm.weight_ih_l0" in header
    assert json.loads(header["__metadata__"]["encoding"]) == json.loads(files["encoding.json"])
    assert json.loads(files["config.json"]) == TINY.to_dict()
    loaded = ModelArtifact.from_files(files)
    assert loaded.config == TINY and loaded.encoding == Encoding()
    assert loaded.metrics["valid"]["undefined"] is None
    assert np.array_equal(predict(loaded.model, data), predict(model, data))


def test_loading_refuses_an_artifact_of_another_encoding(model: EventLstm) -> None:
    files = ModelArtifact(model).to_files()
    changed = json.loads(files["encoding.json"])
    changed["article_buckets"] = 2**12
    with pytest.raises(EncodingMismatchError, match=r"article_buckets: 4096 -> 16384"):
        ModelArtifact.from_files({**files, "encoding.json": json.dumps(changed).encode()})
    # A model of the inputs before the horizon's summaries (input version 1) reads other numbers.
    older = {**json.loads(files["encoding.json"]), "input_version": 1}
    with pytest.raises(EncodingMismatchError, match=r"input_version: 1 -> 2"):
        ModelArtifact.from_files({**files, "encoding.json": json.dumps(older).encode()})
    # The code moved on (a new action type appended): yesterday's model no longer fits.
    newer = Encoding(action_types=(*ACTION_TYPES, "live_chat"))
    with pytest.raises(EncodingMismatchError, match=r"action_types: added \['live_chat'\]"):
        ModelArtifact.from_files(files, expected=newer)
    reordered = Encoding(action_types=(ACTION_TYPES[1], ACTION_TYPES[0], *ACTION_TYPES[2:]))
    with pytest.raises(EncodingMismatchError, match="action_types: reordered"):
        ModelArtifact.from_files(files, expected=reordered)
    with pytest.raises(ValueError, match="lacks"):
        ModelArtifact.from_files({k: v for k, v in files.items() if k != "model.safetensors"})


def test_cpu_runs_in_float32() -> None:
    assert not bf16_enabled(torch.device("cpu"))
    with autocast(torch.device("cpu")):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_the_mixed_precision_path_trains_and_scores(
    model: EventLstm, data: SequenceData, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The GPU path is bf16 autocast; CPU autocast takes the same code through bf16 kernels. oneDNN
    # off: its bf16 LSTM needs AVX-512 (CPUs without it refuse the primitive), torch's own runs anywhere.
    reference = predict(model, data)
    monkeypatch.setattr("consumer_assets.ml.model.device.bf16_enabled", lambda device: True)
    with torch.backends.mkldnn.flags(enabled=False):
        mixed = predict(model, data)
        trained = train(TINY, data.take(np.arange(300))).epochs[0]
    assert mixed.dtype == np.float32 and np.isfinite(mixed).all()
    assert not np.array_equal(mixed, reference)  # bf16 did run
    np.testing.assert_allclose(mixed, reference, atol=0.02)
    assert np.isfinite(trained.train_loss)

"""Streaming predictions: the same rows, explanations and summaries as scoring and explaining separately,
whatever the batching; one file per profile bucket, written whole."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from consumer_assets.histories.reader import open_path
from consumer_assets.ml.model.network import EventLstm
from consumer_assets.ml.monitoring.drift import summarize_histories, summarize_scores
from consumer_assets.ml.monitoring.explain import top_events
from consumer_assets.ml.scoring.buckets import output_path, predict_bucket, predict_buckets, read_histories
from consumer_assets.ml.scoring.predict import predict_all
from consumer_assets.ml.scoring.predictions import PREDICTIONS_SCHEMA, PredictionSummary, predict_histories
from consumer_assets.ml.training.batches import padded_steps
from consumer_assets.ml.training.data import SequenceData
from consumer_assets_tests.support import scoring as scoring_inputs
from consumer_assets_tests.support.scoring import D, bucket_files

# One torch thread: the suite runs beside other processes on two cores, where OpenMP spinning costs most.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def histories() -> pa.Table:
    table = scoring_inputs.histories()
    assert table.num_rows > 300
    return table


@pytest.fixture(scope="module")
def model() -> EventLstm:
    return scoring_inputs.model()


def assert_same_summary(got: PredictionSummary, expected: PredictionSummary) -> None:
    assert got.profiles == expected.profiles
    assert got.expected_orders == pytest.approx(expected.expected_orders, rel=1e-12)
    assert got.histories.to_dict() == expected.histories.to_dict()
    assert got.scores.to_dict() == expected.scores.to_dict()


def scored_per_event(model: EventLstm, histories: pa.Table, rows: int) -> pa.Table:
    """profile_id, probability and event_probabilities (a list per history), scored `rows` histories at a time."""
    parts = []
    for batch in histories.to_batches(max_chunksize=rows):
        data = SequenceData.from_batches([batch], label_column="", cutoff_column="")
        final, events = predict_all(model, data, model.config.score_batch_size, per_event=True)
        lists = pa.ListArray.from_arrays(pa.array(data.offsets.astype(np.int32)), pa.array(events))
        parts.append(pa.table({"profile_id": data.profile_id, "probability": final, "event_probabilities": lists}))
    return pa.concat_tables(parts)


def test_predictions_are_scores_explained_and_summarized(model: EventLstm, histories: pa.Table) -> None:
    summary = PredictionSummary()
    out = pa.Table.from_batches(
        list(predict_histories(model, histories.to_batches(max_chunksize=150), "d/v1", summary))
    )
    assert out.schema.equals(PREDICTIONS_SCHEMA)
    # The reference: the scores with their per-event probabilities (in the same batches), explained
    # and summarized apart.
    scored = scored_per_event(model, histories, 150)
    assert out["profile_id"].equals(scored["profile_id"])
    assert np.array_equal(out["probability"].to_numpy(), scored["probability"].to_numpy())
    assert out["explanations"].to_pylist() == top_events(scored["event_probabilities"], histories).to_pylist()
    assert set(out["model_version"].to_pylist()) == {"d/v1"}
    expected = PredictionSummary(
        profiles=histories.num_rows,
        expected_orders=float(scored["probability"].to_numpy().astype(np.float64).sum()),
        histories=summarize_histories([histories]),
        scores=summarize_scores([scored["probability"]]),
    )
    assert_same_summary(summary, expected)
    # Other batch boundaries give the same probabilities (to float32 rounding: the fused LSTM's
    # arithmetic may group a batch's rows differently) and the same counts.
    other = PredictionSummary()
    rebatched = pa.Table.from_batches(
        list(predict_histories(model, histories.to_batches(max_chunksize=97), "v", other))
    )
    np.testing.assert_allclose(rebatched["probability"].to_numpy(), out["probability"].to_numpy(), rtol=1e-5)
    assert other.profiles == summary.profiles and other.histories.to_dict() == summary.histories.to_dict()


def test_batches_are_bounded_by_padded_events_and_do_not_change_probabilities(
    model: EventLstm, histories: pa.Table
) -> None:
    data = SequenceData.from_batches(histories, label_column="", cutoff_column="")
    # A budget that fills 64 rows of the shorter fifth of the histories, and far fewer of the longest.
    budget = 64 * int(np.quantile(data.lengths, 0.2))
    assert budget // int(data.lengths.max()) < 32
    batches = data.length_batches(64, max_events=budget)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(data)))
    for rows in batches:
        longest = int(data.lengths[rows].max())
        assert len(rows) <= 64 and (len(rows) * longest <= budget or len(rows) == 1)
    # Long histories come in small batches, short ones in full ones.
    assert min(len(b) for b in batches) < 32 and max(len(b) for b in batches) == 64
    # Rounded shapes: steps padded to even numbers, rows in eights (but the last batch).
    rounded = data.length_batches(64, max_events=budget, step_multiple=2, row_multiple=8)
    assert sorted(np.concatenate(rounded).tolist()) == list(range(len(data)))
    steps = [int(padded_steps(data.lengths[rows].max(), 2)) for rows in rounded]
    assert all(t % 2 == 0 and len(rows) * t <= budget for t, rows in zip(steps, rounded, strict=True))
    assert all(len(rows) % 8 == 0 for rows in rounded[:-1])
    assert data.batch(rounded[0], steps[0] + 2).event_type.shape == (steps[0] + 2, len(rounded[0]))
    final, events = predict_all(model, data, 64, max_events=budget)
    final_big, events_big = predict_all(model, data, 4096, max_events=10**9)
    np.testing.assert_allclose(final, final_big, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(events, events_big, rtol=1e-5, atol=1e-6)


def test_summaries_pool_and_travel_as_json(model: EventLstm, histories: pa.Table) -> None:
    halves = []
    for part in (histories.slice(0, 200), histories.slice(200)):
        summary = PredictionSummary()
        for _ in predict_histories(model, part, "v", summary):
            pass
        halves.append(PredictionSummary.from_dict(json.loads(json.dumps(summary.to_dict()))))
    whole = PredictionSummary()
    for _ in predict_histories(model, histories, "v", whole):
        pass
    pooled = halves[0] + halves[1]
    assert pooled.profiles == whole.profiles == histories.num_rows
    assert pooled.expected_orders == pytest.approx(whole.expected_orders)
    assert pooled.histories.to_dict() == whole.histories.to_dict()
    assert pooled.scores.to_dict() == whole.scores.to_dict()


def test_buckets_scored_side_by_side_give_one_file_each(model: EventLstm, histories: pa.Table, tmp_path: Path) -> None:
    files = bucket_files(histories, tmp_path / "histories")
    out_dir = str(tmp_path / "predictions")
    written, summary = predict_buckets(model, files, out_dir, D, "d/v1", "w7", workers=2, batch_rows=64)
    assert [b for _, b in written] == list(range(8))
    assert all(path == output_path(out_dir, D, b, "w7") for path, b in written)
    assert all(path.endswith(f"date={D}/profile_bucket={b}/part-w7-{b:05d}.parquet") for path, b in written)
    got = pa.concat_tables(pq.read_table(path) for path, _ in written).cast(PREDICTIONS_SCHEMA)
    # Exactly what predict_histories gives for each bucket's files read in the same batches.
    expected = PredictionSummary()
    reference = pa.Table.from_batches(
        [
            b
            for bucket in range(8)
            for b in predict_histories(model, read_histories(files[bucket], 64), "d/v1", expected)
        ]
    )
    assert got.equals(reference)
    assert_same_summary(summary, expected)
    assert summary.profiles == histories.num_rows
    # And, to float32 rounding, what scoring the whole table at once gives, profile by profile.
    whole = pa.Table.from_batches(list(predict_histories(model, histories, "d/v1", PredictionSummary())))
    got_sorted = got.take(pc.sort_indices(got["profile_id"]))
    whole_sorted = whole.take(pc.sort_indices(whole["profile_id"]))
    assert got_sorted["profile_id"].equals(whole_sorted["profile_id"])
    np.testing.assert_allclose(got_sorted["probability"].to_numpy(), whole_sorted["probability"].to_numpy(), rtol=1e-5)
    # No temporary files are left behind.
    assert sorted(p.name for p in Path(out_dir).rglob("*")) == sorted(
        [f"date={D}"] + [f"profile_bucket={b}" for b in range(8)] + [Path(p).name for p, _ in written]
    )


def test_a_bucket_without_rows_gets_an_empty_file(model: EventLstm, histories: pa.Table, tmp_path: Path) -> None:
    empty = tmp_path / "empty.parquet"
    pq.write_table(histories.slice(0, 0), empty)
    out = output_path(str(tmp_path / "out"), D, 3, "w")
    summary = predict_bucket(model, [str(empty)], out, "v")
    table = pq.read_table(out)
    assert table.num_rows == 0 and table.schema.equals(PREDICTIONS_SCHEMA) and summary.profiles == 0


def test_a_bucket_on_s3_reads_and_writes_there(model: EventLstm, histories: pa.Table, s3_root: str) -> None:
    fs, root = open_path(s3_root)
    fs.create_dir(f"{root}/histories")
    with fs.open_output_stream(f"{root}/histories/part-0.parquet") as out:
        pq.write_table(histories, out)
    out_path = output_path(f"{s3_root}/predictions", D, 0, "w3")
    summary = predict_bucket(model, [f"{s3_root}/histories/part-0.parquet"], out_path, "v")
    written = pq.read_table(open_path(out_path)[1], filesystem=fs).cast(PREDICTIONS_SCHEMA)
    expected = pa.Table.from_batches(list(predict_histories(model, histories, "v", PredictionSummary())))
    assert written.equals(expected) and summary.profiles == histories.num_rows
    # Only the file itself: nothing staged beside it.
    listed = fs.get_file_info(pafs.FileSelector(f"{root}/predictions", recursive=True))
    assert [i.path for i in listed if i.type == pafs.FileType.File] == [open_path(out_path)[1]]

"""Scoring on Spark, local and on a standalone cluster: exactly the in-process predictions, one file a bucket."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from pyspark.sql import SparkSession

from consumer_assets.ml.model.artifact import ModelArtifact
from consumer_assets.ml.model.network import EventLstm
from consumer_assets.ml.scoring.buckets import output_path, read_histories
from consumer_assets.ml.scoring.predictions import PREDICTIONS_SCHEMA, PredictionSummary, predict_histories
from consumer_assets.ml.scoring.spark import score_on_spark
from consumer_assets_tests.support import scoring as scoring_inputs
from consumer_assets_tests.support.scoring import D, bucket_files
from consumer_assets_tests.support.spark_cluster import standalone_cluster

VERSION = "2026-04-13/v2"
# Bucket files, the model, and the in-process predictions and summary of those files.
Inputs = tuple[dict[int, list[str]], EventLstm, pa.Table, PredictionSummary]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    """Bucket files of simulated histories, the model, and what in-process scoring makes of them."""
    files = bucket_files(scoring_inputs.histories(), tmp_path_factory.mktemp("histories"))
    model = scoring_inputs.model()
    # The same reading and batches as a task's, on one torch thread as a task runs.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = PredictionSummary()
        batches = [
            batch
            for bucket in sorted(files)
            for batch in predict_histories(model, read_histories(files[bucket]), VERSION, summary)
        ]
    finally:
        torch.set_num_threads(before)
    return files, model, pa.Table.from_batches(batches), summary


def _session(master: str) -> SparkSession:
    session = (
        SparkSession.builder.master(master)
        .appName("consumer_assets_scoring_tests")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.executor.memory", "1g")
        .getOrCreate()
    )
    # Python workers run this interpreter (what SparkResource does through spark.pyspark.python).
    session.sparkContext.pythonExec = sys.executable
    return session


def _check(spark: SparkSession, inputs: Inputs, out_dir: Path) -> None:
    files, model, expected, expected_summary = inputs
    model_files = ModelArtifact(model).to_files()
    # A file of an earlier (committed) write in the same folder stays as it was.
    other = Path(output_path(str(out_dir), D, 0, "w0"))
    other.parent.mkdir(parents=True)
    other.write_bytes(b"an earlier write")
    written, summary = score_on_spark(spark, files, model_files, VERSION, str(out_dir), "w1", D)
    assert written == [(output_path(str(out_dir), D, b, "w1"), b) for b in range(8)]
    assert other.read_bytes() == b"an earlier write"
    got = pa.concat_tables(pq.read_table(path) for path, _ in written)
    assert got.schema.equals(PREDICTIONS_SCHEMA)
    # Identical probabilities per profile (same code, same batches, one torch thread), and explanations.
    assert got["profile_id"].to_pylist() == expected["profile_id"].to_pylist()
    assert np.array_equal(got["probability"].to_numpy(), expected["probability"].to_numpy())
    assert got["explanations"].to_pylist() == expected["explanations"].to_pylist()
    assert set(got["model_version"].to_pylist()) == {VERSION}
    # The summaries came back as JSON and pooled to the in-process ones.
    assert summary.profiles == expected_summary.profiles == got.num_rows
    assert summary.expected_orders == pytest.approx(expected_summary.expected_orders, rel=1e-12)
    assert summary.histories.to_dict() == expected_summary.histories.to_dict()
    assert summary.scores.to_dict() == expected_summary.scores.to_dict()


@pytest.mark.slow
def test_local_spark_gives_exactly_the_in_process_predictions(inputs: Inputs, tmp_path: Path) -> None:
    # A local session another test module left running is used as it is (one SparkContext a process).
    before = SparkSession.getActiveSession()
    spark = before or _session("local[2]")
    try:
        _check(spark, inputs, tmp_path / "predictions")
        # A failing bucket names itself and its files.
        with pytest.raises(Exception, match=r"scoring profile bucket 5 \(1 files: .*missing\.parquet"):
            score_on_spark(spark, {5: [str(tmp_path / "missing.parquet")]}, ModelArtifact(inputs[1]).to_files(),
                           "v", str(tmp_path / "failed"), "w2", D)  # fmt: skip
    finally:
        if before is None:
            spark.stop()


@pytest.mark.slow
def test_standalone_cluster_gives_exactly_the_in_process_predictions(inputs: Inputs, tmp_path: Path) -> None:
    with standalone_cluster(tmp_path / "spark") as master:
        # A session on the cluster replaces any other (as SparkResource does for a run on a cluster).
        active = SparkSession.getActiveSession()
        if active is not None:
            active.stop()
        spark = _session(master)
        try:
            assert spark.sparkContext.master == master
            _check(spark, inputs, tmp_path / "predictions")
        finally:
            spark.stop()


def test_no_buckets_no_job(inputs: Inputs) -> None:
    _, model, _, _ = inputs
    written, summary = score_on_spark(None, {}, ModelArtifact(model).to_files(), "v", "/nowhere", "w", D)  # type: ignore[arg-type]
    assert written == [] and summary.profiles == 0

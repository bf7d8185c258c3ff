"""Scoring on Spark: one task per profile bucket, each scoring its bucket's histories files where it runs.

The job has the shape of the histories job (histories.spark): a DataFrame of task ids, one per
partition, and a `mapInArrow` whose task loads the model from the artifact's bytes (safetensors
and JSON, broadcast once; a torch model is never pickled), reads its bucket's files with pyarrow,
runs `predict_histories` on one torch thread per task core and writes one Parquet file
(ml.predict_files.predict_bucket). The driver gets back a row per task: the file, its counts and
the drift summaries as JSON, which it pools; no prediction passes through it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence

import pyarrow as pa
import torch
from pyspark import TaskContext
from pyspark.sql import SparkSession
from pyspark.sql.pandas.types import from_arrow_schema

from consumer_assets.ml.model.artifact import ModelArtifact
from consumer_assets.ml.monitoring.drift import Summary
from consumer_assets.ml.scoring.buckets import output_path, predict_bucket
from consumer_assets.ml.scoring.predictions import PredictionSummary

# One row per task (profile bucket): what it wrote and what it adds to the day's summary.
SCORED_SCHEMA = pa.schema(
    [
        pa.field("path", pa.string()),
        pa.field("profile_bucket", pa.int32()),
        pa.field("profiles", pa.int64()),
        pa.field("expected_orders", pa.float64()),
        pa.field("histories_summary", pa.string()),  # drift.Summary.to_dict() as JSON
        pa.field("scores_summary", pa.string()),
    ]
)


def _score_bucket(
    model_files: Mapping[str, bytes], files: Sequence[str], out_path: str, bucket: int, model_version: str
) -> pa.RecordBatch:
    """What one task does, on an executor: load the model, score the bucket, report."""
    context = TaskContext.get()
    # As many torch threads as cores given to the task (spark.task.cpus, default 1): tasks already
    # run side by side on the executor's cores.
    torch.set_num_threads(context.cpus() if context is not None else 1)
    model = ModelArtifact.from_files(model_files).model
    summary = predict_bucket(model, files, out_path, model_version)
    row = {
        "path": [out_path],
        "profile_bucket": [bucket],
        "profiles": [summary.profiles],
        "expected_orders": [summary.expected_orders],
        "histories_summary": [json.dumps(summary.histories.to_dict())],
        "scores_summary": [json.dumps(summary.scores.to_dict())],
    }
    return pa.RecordBatch.from_pydict(row, schema=SCORED_SCHEMA)


def score_on_spark(
    spark: SparkSession,
    files_by_bucket: Mapping[int, Sequence[str]],
    model_files: Mapping[str, bytes],
    model_version: str,
    out_dir: str,
    write_id: str,
    day: dt.date,
) -> tuple[list[tuple[str, int]], PredictionSummary]:
    """Score each profile bucket's histories files in its own Spark task; ([(path, bucket)], pooled summary).

    Each task writes `<out_dir>/date=<day>/profile_bucket=<b>/part-<write_id>-<b>.parquet` (b as 5
    digits, PREDICTIONS_SCHEMA), so out_dir and the histories files must be reachable from the
    executors (a local path in local mode or on one machine, an s3:// URI on a cluster). Nothing
    is committed here: out_dir may be the predictions table's own folder. A retried task rewrites
    its own file; every bucket given gets one, empty ones included.
    """
    buckets = sorted(files_by_bucket)
    if not buckets:
        return [], PredictionSummary()
    plan = [(b, [str(p) for p in files_by_bucket[b]], output_path(out_dir, day, b, write_id)) for b in buckets]
    model_bytes = spark.sparkContext.broadcast(dict(model_files))

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for task_id in batch.column(0).to_pylist():
                bucket, files, out_path = plan[task_id]
                try:
                    yield _score_bucket(model_bytes.value, files, out_path, bucket, model_version)
                except Exception as exc:
                    # Surfaces through Py4J as text: say which bucket and which files.
                    where = f"{files[0]} .. {files[-1]}" if files else "no files"
                    raise RuntimeError(
                        f"scoring profile bucket {bucket} ({len(files)} files: {where}) into {out_path} failed: {exc}"
                    ) from exc

    try:
        # range() with one partition per id: exactly one bucket per Spark task, no shuffle.
        ids = spark.range(0, len(plan), 1, numPartitions=len(plan))
        rows = ids.mapInArrow(run, from_arrow_schema(SCORED_SCHEMA)).collect()
    finally:
        model_bytes.unpersist()
    total = PredictionSummary()
    written = []
    for row in sorted(rows, key=lambda r: r["profile_bucket"]):
        written.append((row["path"], int(row["profile_bucket"])))
        total = total + PredictionSummary(
            profiles=int(row["profiles"]),
            expected_orders=float(row["expected_orders"]),
            histories=Summary.from_dict(json.loads(row["histories_summary"])),
            scores=Summary.from_dict(json.loads(row["scores_summary"])),
        )
    return written, total

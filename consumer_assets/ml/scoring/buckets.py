"""Predictions from histories files to prediction files, one per profile bucket: the unit of work of scoring.

`predict_bucket` streams one bucket: it reads the bucket's histories files with pyarrow in
batches of CHUNK_ROWS rows, runs `predict_histories` on each and appends the result to one
Parquet file, so memory stays flat however large the bucket. It is what a Spark task runs
(ml.spark_scoring) and what `predict_buckets` runs in threads of this process.

Torch runs on one thread per bucket: buckets are scored side by side instead, one per core. A
torch op is too small (a few milliseconds) to split across cores well, and on a machine shared
with other work, OpenMP threads that spin waiting for a busy core made scoring up to 10x slower.
Threads of one process share the model; torch, numpy and pyarrow release the GIL in their work.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.parquet as pq
import torch

from consumer_assets.histories.reader import open_path
from consumer_assets.histories.schema import HISTORIES_SCHEMA
from consumer_assets.ml.model.device import torch_threads
from consumer_assets.ml.model.network import EventLstm
from consumer_assets.ml.scoring.predict import CHUNK_ROWS
from consumer_assets.ml.scoring.predictions import PREDICTIONS_SCHEMA, PredictionSummary, predict_histories
from consumer_assets.storage.tables import DATE, PROFILE_BUCKET
from consumer_assets.storage.writes import COMPRESSION, atomic_output, part_path

# Read buffer per column when streaming a file: a row group is read page by page, not whole
# (histories files hold one row group of up to a million rows).
READ_BUFFER = 1 << 20


def read_histories(paths: Sequence[str], batch_rows: int = CHUNK_ROWS) -> Iterator[pa.RecordBatch]:
    """The HISTORIES_SCHEMA rows of these Parquet files (paths or URIs), batch_rows at a time."""
    for path in paths:
        fs, local = open_path(path)
        with fs.open_input_file(local) as source:
            reader = pq.ParquetFile(source, pre_buffer=False, buffer_size=READ_BUFFER)
            # Decoded in this thread: buckets already run side by side, one per core.
            batches = reader.iter_batches(batch_size=batch_rows, columns=HISTORIES_SCHEMA.names, use_threads=False)
            for batch in batches:
                yield batch.cast(HISTORIES_SCHEMA) if not batch.schema.equals(HISTORIES_SCHEMA) else batch


def output_path(out_dir: str, day: dt.date, profile_bucket: int, write_id: str) -> str:
    """Where a bucket's predictions go: `<out_dir>/date=<day>/profile_bucket=<b>/part-<write_id>-<b>.parquet`.

    Named by the bucket, so a retried task replaces its own file.
    """
    return part_path({DATE: day, PROFILE_BUCKET: profile_bucket}, write_id, profile_bucket, out_dir)


def predict_bucket(
    model: EventLstm, paths: Sequence[str], out_path: str, model_version: str, batch_rows: int = CHUNK_ROWS
) -> PredictionSummary:
    """Score one bucket's histories files into one PREDICTIONS_SCHEMA file at out_path; its summary.

    The file appears whole or not at all (storage.writes.atomic_output), and a retry replaces it;
    a bucket without rows still gets its (empty) file.
    """
    summary = PredictionSummary()
    with (
        atomic_output(out_path) as (fs, path),
        pq.ParquetWriter(path, PREDICTIONS_SCHEMA, filesystem=fs, compression=COMPRESSION) as writer,
    ):
        for batch in predict_histories(model, read_histories(paths, batch_rows), model_version, summary):
            writer.write_batch(batch)
    return summary


def predict_buckets(
    model: EventLstm,
    files_by_bucket: Mapping[int, Sequence[str]],
    out_dir: str,
    day: dt.date,
    model_version: str,
    write_id: str,
    workers: int | None = None,
    batch_rows: int = CHUNK_ROWS,
) -> tuple[list[tuple[str, int]], PredictionSummary]:
    """Score each profile bucket's files into its own file, `workers` buckets at a time (default:
    one per core), in this process; ([(path, profile bucket)] written, the pooled summary)."""
    model.eval()
    buckets = sorted(files_by_bucket)
    paths = {b: output_path(out_dir, day, b, write_id) for b in buckets}

    def one(bucket: int) -> PredictionSummary:
        return predict_bucket(model, files_by_bucket[bucket], paths[bucket], model_version, batch_rows)

    # Set in every worker too: MKL reads its thread count per calling thread, and a new thread
    # would otherwise run its matmuls on all cores.
    with (
        torch_threads(1),
        ThreadPoolExecutor(workers or os.cpu_count() or 1, initializer=torch.set_num_threads, initargs=(1,)) as pool,
    ):
        summaries = list(pool.map(one, buckets))
    total = PredictionSummary()
    for summary in summaries:
        total = total + summary
    return [(paths[b], b) for b in buckets], total

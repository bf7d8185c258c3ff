"""consumer_histories as a Spark job: one task per profile bucket, no shuffle, no events on the driver.

The job is a tiny DataFrame of task ids, one per partition, and a `mapInArrow` whose tasks read
their bucket's raw_events files with pyarrow on the executor (histories.tasks). A shuffle of
every event dominated the plain designs (51-79 s for 30M events on 2 cores); the bucketed layout
avoids it.
The driver only plans paths and, when writing, gets back one row of counts per task and day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StructType

from consumer_assets.histories.output import WRITTEN_SCHEMA, WrittenDay, summarize_written, write_task
from consumer_assets.histories.schema import HISTORIES_BY_CUTOFF_SCHEMA
from consumer_assets.histories.tasks import CUTOFFS_PER_TASK, BucketTask, DayFiles, plan_tasks, run_task

TaskFn = Callable[[BucketTask], Iterator[pa.RecordBatch]]


def _map_tasks(spark: SparkSession, tasks: list[BucketTask], fn: TaskFn, schema: pa.Schema) -> DataFrame:
    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for task_id in batch.column(0).to_pylist():
                task = tasks[task_id]
                try:
                    yield from fn(task)
                except Exception as exc:
                    # Surfaces through Py4J as text: say which task and which files.
                    files = [path for path, _ in task.files]
                    where = f"{files[0]} .. {files[-1]}" if files else "no files"
                    raise RuntimeError(
                        f"histories of bucket {task.bucket}/{task.buckets} for cut-offs "
                        f"{task.cutoffs[0]}..{task.cutoffs[-1]} ({len(files)} files: {where}) failed: {exc}"
                    ) from exc

    # range() with one partition per id gives exactly one task id per Spark task, without a shuffle.
    ids = spark.range(0, len(tasks), 1, numPartitions=len(tasks))
    return ids.mapInArrow(run, spark_schema(schema))


def spark_schema(schema: pa.Schema = HISTORIES_BY_CUTOFF_SCHEMA) -> StructType:
    """An Arrow schema as a Spark schema (by default the histories tagged with their cut-off day)."""
    return from_arrow_schema(schema)


def histories_dataframe(
    spark: SparkSession,
    files: DayFiles,
    cutoffs: Sequence[dt.date],
    cutoffs_per_task: int = CUTOFFS_PER_TASK,
) -> DataFrame:
    """The histories as of each cut-off day, in HISTORIES_BY_CUTOFF_SCHEMA (lazy: runs on an action).

    `files` must cover the windows.HISTORY days of each cut-off; days it lacks count as empty.
    For Spark-side consumers; to store the histories, write_histories is much faster.
    """
    return _map_tasks(spark, plan_tasks(files, cutoffs, cutoffs_per_task), run_task, HISTORIES_BY_CUTOFF_SCHEMA)


def write_histories(
    spark: SparkSession,
    files: DayFiles,
    cutoffs: Sequence[dt.date],
    out_dir: str,
    write_id: str,
    cutoffs_per_task: int = CUTOFFS_PER_TASK,
    task_buckets: int = 1,
) -> dict[dt.date, WrittenDay]:
    """Compute and write the histories as of each cut-off day; return what each day got.

    Each task writes `<out_dir>/date=<day>/profile_bucket=<b>/part-<write_id>-<task>.parquet`
    (HISTORIES_SCHEMA, day and bucket in the path) with pyarrow on the executor, so out_dir must be
    reachable from the executors: a local path in local mode or on one machine, an s3:// URI on a
    cluster. Every day gets a file per task, empty ones included. Nothing is committed here: out_dir
    may be the Delta table's own folder, whose readers ignore files until the driver commits them.
    """
    tasks = plan_tasks(files, cutoffs, cutoffs_per_task, task_buckets)

    def write(task: BucketTask) -> Iterator[pa.RecordBatch]:
        return write_task(task, out_dir, write_id)

    written = _map_tasks(spark, tasks, write, WRITTEN_SCHEMA).collect()
    return summarize_written(row.asDict() for row in written)

"""consumer_histories as a Spark job: one task per profile bucket, no shuffle, no events on the driver.

The job is a tiny DataFrame of task ids, one per partition, and a `mapInArrow` whose tasks read
their bucket's raw_events files with pyarrow on the executor (histories.tasks). A shuffle of
every event dominated the plain designs (51-79 s for 30M events on 2 cores); the bucketed layout
avoids it.
The driver only plans paths and gets back one row of counts per task and day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import from_arrow_schema
from pyspark.sql.types import StructType

from consumer_assets.histories.output import WRITTEN_SCHEMA, Outputs, WrittenDay, summarize_written, write_task
from consumer_assets.histories.tasks import BucketTask

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


def spark_schema(schema: pa.Schema) -> StructType:
    """An Arrow schema as a Spark schema."""
    return from_arrow_schema(schema)


def tasks_done(spark: SparkSession) -> str:
    """How far the session's running jobs are: their active stages' tasks done of all ("12/32 tasks done")."""
    tracker = spark.sparkContext.statusTracker()
    stages = [info for info in map(tracker.getStageInfo, tracker.getActiveStageIds()) if info is not None]
    if not stages:
        return "no stage running"
    return f"{sum(s.numCompletedTasks for s in stages)}/{sum(s.numTasks for s in stages)} tasks done"


def write_histories(spark: SparkSession, tasks: list[BucketTask], out: Outputs) -> dict[dt.date, WrittenDay]:
    """Run the tasks (tasks.plan_tasks), each writing its histories and states; return what each day got.

    Each task writes under the folders of `out` with pyarrow on the executor, so they must be
    reachable from the executors: local paths in local mode or on one machine, s3:// URIs on a
    cluster. Every day gets a file per task, empty ones included. Nothing is committed here: the
    folders may be the Delta tables' own, whose readers ignore files until the driver commits them.
    """

    def write(task: BucketTask) -> Iterator[pa.RecordBatch]:
        return write_task(task, out)

    written = _map_tasks(spark, tasks, write, WRITTEN_SCHEMA).collect()
    return summarize_written(row.asDict() for row in written)

"""Reading one profile bucket's raw_events files with pyarrow, wherever they live.

Paths are local files or URIs (`file://`, `s3://`, `s3a://`) that the process running the
read can reach: on a Spark executor that is the executor, so S3 settings (endpoint,
credentials) must be in the executors' environment.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from consumer_assets.events.bucketing import profile_bucket
from consumer_assets.events.schema import RAW_EVENTS_SCHEMA
from consumer_assets.histories.encode import EVENT_COLUMNS
from consumer_assets.storage.filesystem import resolve

READ_SCHEMA = pa.schema([RAW_EVENTS_SCHEMA.field(name) for name in EVENT_COLUMNS])
_TS_TYPE = RAW_EVENTS_SCHEMA.field("ts").type


def open_path(path: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and the path on it (resolve reads Hadoop's s3a:// as s3://)."""
    location = resolve(path)
    return location.fs, location.root


def read_events(paths: list[tuple[str, int]], lo_ms: int, hi_ms: int, bucket: int = 0, buckets: int = 1) -> pa.Table:
    """The events with lo_ms <= ts < hi_ms of profile bucket `bucket` (of `buckets`) in these files.

    Each path comes with the bucket count of its day's layout. A file written with fewer buckets
    holds several of ours (bucket counts divide each other), so its rows are filtered by
    profile_bucket; the layout can grow without rewriting old days.
    """
    in_window = (ds.field("ts") >= pa.scalar(lo_ms, _TS_TYPE)) & (ds.field("ts") < pa.scalar(hi_ms, _TS_TYPE))
    tables = [READ_SCHEMA.empty_table()]
    for path, file_buckets in paths:
        if buckets % file_buckets:
            raise ValueError(f"{path}: a layout of {file_buckets} buckets does not divide {buckets}")
        fs, local = open_path(path)
        table = pq.read_table(local, filesystem=fs, columns=list(EVENT_COLUMNS), filters=in_window)
        if not table.num_rows:
            continue
        tables.append(own_profiles(table, path, file_buckets, bucket, buckets, rows="events").cast(READ_SCHEMA))
    return pa.concat_tables(tables)


def own_profiles(table: pa.Table, path: str, file_buckets: int, bucket: int, buckets: int, rows: str) -> pa.Table:
    """The rows of `table`, read from `path` of a layout of `file_buckets`, whose profiles are in
    bucket `bucket` of `buckets`.

    Which bucket a file holds comes from its profile_bucket partition; the data must agree, so a
    partition written in another layout fails loudly instead of mixing profiles (two tasks would
    take the same profiles, and none those of the other bucket). `rows` names them in the error.
    """
    strays = profile_bucket(table["profile_id"], file_buckets) != bucket % file_buckets
    if strays.any():
        raise ValueError(
            f"{path} should hold only profiles of bucket {bucket % file_buckets} of {file_buckets}, "
            f"but {int(strays.sum())} of its {rows} are of other buckets: it was not written in that layout"
        )
    if file_buckets < buckets:
        mine = profile_bucket(table["profile_id"], buckets) == bucket
        if not mine.all():
            table = table.filter(pa.array(mine))
    return table

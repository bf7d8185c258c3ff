"""consumer_assets: predict which shoppers will order in the coming week, as Dagster assets."""

import os

import pyarrow as pa

# Arrow's memory pool in every process that imports the package (Dagster runs, the CLI, Spark's
# Python workers): jemalloc, unless $ARROW_DEFAULT_MEMORY_POOL names one. pyarrow's default,
# mimalloc, gives memory back to the OS and faults it in again (2 MB huge pages the kernel zeroes)
# between the blocks and buckets of a day's ingestion: measured with bench/bench_ingest.py at 1M
# profiles, one raw_events day took 1.74 s with mimalloc, 1.49 s with jemalloc (peak RSS 634 MB
# against 549 MB).
if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except NotImplementedError:  # a pyarrow built without jemalloc
        pa.set_memory_pool(pa.system_memory_pool())

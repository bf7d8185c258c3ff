"""The daily job: every asset of a day, in dependency order."""

import dagster as dg

# Run tags that make one run cover a range of partitions (what a single-run backfill sets).
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"

daily_job = dg.define_asset_job(
    "daily_job",
    selection=dg.AssetSelection.all(),
    description="Materialize every asset of one day (or, as a backfill, a range of days).",
)

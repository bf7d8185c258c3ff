"""The daily job: every asset of a day, in dependency order."""

import dagster as dg

from consumer_assets.partitions import daily_partitions

daily_job = dg.define_asset_job(
    "daily_job",
    selection=dg.AssetSelection.all(),
    partitions_def=daily_partitions,
    description="Materialize every asset of one day (or, as a backfill, a range of days).",
)

"""The one daily partitioning of every asset, and the windows of consumer_assets.windows as Dagster mappings."""

import datetime as dt

import dagster as dg

from consumer_assets.beta import deliberate
from consumer_assets.windows import Window

# The first day the shop's tracking stream (or the simulator) can have landed.
FIRST_DAY = "2026-01-01"

daily_partitions = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, timezone="UTC")


def partition_day(key: str) -> dt.date:
    """The calendar day of a daily partition key (YYYY-MM-DD)."""
    return dt.date.fromisoformat(key)


def window_mapping(window: Window, *, missing_ok: bool = False) -> dg.TimeWindowPartitionMapping:
    """Day D reads the partitions of `window`'s days of D. `missing_ok`: days before the first partition
    simply do not exist (else Dagster refuses to run a day whose window reaches before it)."""
    start, end = window.offsets
    if not missing_ok:
        return dg.TimeWindowPartitionMapping(start_offset=start, end_offset=end)
    with deliberate():
        return dg.TimeWindowPartitionMapping(
            start_offset=start, end_offset=end, allow_nonexistent_upstream_partitions=True
        )


def window_keys(window: Window, key: str) -> list[str]:
    """The partition keys of `window`'s days of day `key`, oldest first, from the first partition on."""
    first = partition_day(FIRST_DAY)
    return [day.isoformat() for day in window.days(partition_day(key)) if day >= first]


def last_partition_key(now: dt.datetime) -> str | None:
    """The last daily partition at `now`: yesterday (UTC), the last day that has ended."""
    keys = daily_partitions.get_partition_keys(current_time=now)
    return keys[-1] if keys else None

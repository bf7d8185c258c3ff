"""The one daily partitioning of every asset, and the windows that map a day to its upstream days."""

import datetime as dt

import dagster as dg

# The first day the shop's tracking stream (or the simulator) can have landed.
FIRST_DAY = "2026-01-01"

daily_partitions = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, timezone="UTC")


def partition_day(key: str) -> dt.date:
    """The calendar day of a daily partition key (YYYY-MM-DD)."""
    return dt.date.fromisoformat(key)


def trailing_keys(key: str, days: int) -> list[str]:
    """The partition keys of the `days` days before `key`, oldest first, within the partitioned range."""
    day = partition_day(key)
    first = partition_day(FIRST_DAY)
    keys = [day - dt.timedelta(days=n) for n in range(days, 0, -1)]
    return [k.isoformat() for k in keys if k >= first]


def last_partition_key(now: dt.datetime) -> str | None:
    """The last daily partition at `now`: yesterday (UTC), the last day that has ended."""
    keys = daily_partitions.get_partition_keys(current_time=now)
    return keys[-1] if keys else None

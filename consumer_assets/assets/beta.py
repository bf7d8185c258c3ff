"""Dagster features still marked beta or preview in 1.13 that the assets use on purpose, silenced only here.

Single-run backfills (`backfill_policy`) let one ingest run or one Spark job cover a range of days;
`allow_nonexistent_upstream_partitions` lets the first days' histories read the part of their
window that exists; partitioned asset checks (`AssetCheckSpec(partitions_def=...)`, preview) give
the model's blocking checks one result per day. Any other beta or preview feature still warns.
"""

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg

DELIBERATE = r"Parameter `(backfill_policy|allow_nonexistent_upstream_partitions)`"


@contextlib.contextmanager
def deliberate_beta() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=DELIBERATE, category=dg.BetaWarning)
        yield


@contextlib.contextmanager
def deliberate_preview() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"Specifying a partitions_def on an AssetCheckSpec", category=dg.PreviewWarning
        )
        yield


def single_run_asset(**kwargs: Any) -> Callable[..., dg.AssetsDefinition]:
    """`dg.asset` whose range backfills run as one run (a single Spark job, one commit for the range)."""
    with deliberate_beta():
        return dg.asset(backfill_policy=dg.BackfillPolicy.single_run(), **kwargs)


def window_mapping(days: int) -> dg.TimeWindowPartitionMapping:
    """Day D reads days D-days+1 .. D; days before the first partition simply do not exist."""
    with deliberate_beta():
        return dg.TimeWindowPartitionMapping(
            start_offset=-(days - 1), end_offset=0, allow_nonexistent_upstream_partitions=True
        )


def asset_with_partitioned_checks(**kwargs: Any) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """`dg.asset` whose check specs have the asset's partitions: one check result per day."""

    def decorate(fn: Callable[..., Any]) -> dg.AssetsDefinition:
        with deliberate_preview():
            return dg.asset(**kwargs)(fn)

    return decorate

"""How the assets are declared: on the daily partitions, with one check result per day, and the range
backfills that run as one run. Dagster 1.13 still marks some of this beta or preview; those warnings
are silenced here, for exactly these uses, and nowhere else:

- `backfill_policy` (beta): a range of days runs as one run (one Spark job, one commit for the range);
- `allow_nonexistent_upstream_partitions` (beta): the first days' histories read the part of their
  window that exists;
- `AssetCheckSpec(partitions_def=...)` (preview): a one-day run records its check results on that day.
  A range run has no single day, so Dagster records its check results on the run ("-" in the UI):
  the assets then report, per check, whether every day passed and which did not, while each day's
  figures stay in that day's materialization metadata.
"""

import contextlib
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import dagster as dg

from consumer_assets.assets.retries import RETRY_POLICY, retry_only_transient
from consumer_assets.partitions import daily_partitions

BETA = r"Parameter `(backfill_policy|allow_nonexistent_upstream_partitions)`"
PREVIEW = r"Specifying a partitions_def on an AssetCheckSpec"


@contextlib.contextmanager
def deliberate() -> Iterator[None]:
    """Silence exactly the beta and preview features listed above."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=BETA, category=dg.BetaWarning)
        warnings.filterwarnings("ignore", message=PREVIEW, category=dg.PreviewWarning)
        yield


def daily_checks(asset: dg.AssetKey, descriptions: dict[str, str], **kwargs: Any) -> list[dg.AssetCheckSpec]:
    """Check specs with the daily partitions: a one-day run records one result per day."""
    with deliberate():
        return [
            dg.AssetCheckSpec(name, asset=asset, partitions_def=daily_partitions, description=doc, **kwargs)
            for name, doc in descriptions.items()
        ]


def daily_asset(*, single_run: bool = False, **kwargs: Any) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """`dg.asset` on the daily partitions, retried on failure (RETRY_POLICY); `single_run`: a range backfill
    runs as one run (one Spark job, one commit for the range)."""
    kwargs.setdefault("retry_policy", RETRY_POLICY)
    if single_run:
        kwargs["backfill_policy"] = dg.BackfillPolicy.single_run()

    def decorate(fn: Callable[..., Any]) -> dg.AssetsDefinition:
        with deliberate():
            return dg.asset(partitions_def=daily_partitions, **kwargs)(retry_only_transient(fn))

    return decorate


def window_mapping(days: int) -> dg.TimeWindowPartitionMapping:
    """Day D reads days D-days+1 .. D; days before the first partition simply do not exist."""
    with deliberate():
        return dg.TimeWindowPartitionMapping(
            start_offset=-(days - 1), end_offset=0, allow_nonexistent_upstream_partitions=True
        )

"""How the assets are declared: on the daily partitions, with one check result per day, and the range
backfills that run as one run (Dagster's beta and preview parts of this are listed, and their warnings
silenced, in consumer_assets.beta).

A range run has no single day, so Dagster records its check results on the run ("-" in the UI): the
assets then report, per check, whether every day passed and which did not, while each day's figures
stay in that day's materialization metadata.
"""

from collections.abc import Callable
from typing import Any

import dagster as dg

from consumer_assets.assets.retries import RETRY_POLICY, retry_only_transient
from consumer_assets.beta import deliberate
from consumer_assets.partitions import daily_partitions


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


def self_dependent_daily_asset(
    *, spec: dg.AssetSpec, check_specs: list[dg.AssetCheckSpec]
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """A daily asset that depends on its own day before (`spec` names that dependency): a one-asset
    multi_asset whose checks can run without it, with single-run range backfills and RETRY_POLICY.

    Not a plain `dg.asset` with checks: Dagster 1.13's automation requests an asset's whole execution
    set (the asset and its checks, when they cannot be subset) mapped through the asset's dependency
    on itself, so every requested day would bring its day before into the run, recomputed for nothing.
    The body yields its checks only where context.selected_asset_check_keys holds them.
    """

    def decorate(fn: Callable[..., Any]) -> dg.AssetsDefinition:
        with deliberate():
            return dg.multi_asset(
                name=spec.key.path[-1],
                specs=[spec.replace_attributes(partitions_def=daily_partitions, description=fn.__doc__)],
                check_specs=check_specs,
                can_subset=True,
                partitions_def=daily_partitions,
                backfill_policy=dg.BackfillPolicy.single_run(),
                retry_policy=RETRY_POLICY,
            )(retry_only_transient(fn))

    return decorate

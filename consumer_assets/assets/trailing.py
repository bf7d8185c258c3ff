"""Figures of earlier partitions, read back from their materialization metadata, for drift checks."""

from typing import Any

import dagster as dg

# Not exported by dagster: the pointer that ties a check result to the materialization it judged.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from consumer_assets.partitions import window_keys
from consumer_assets.windows import TRAILING


def trailing_metadata(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, first_key: str, fields: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    """partition key -> {field: value} of the latest materialization of each of the TRAILING days of
    `first_key` that recorded all `fields`."""
    keys = window_keys(TRAILING, first_key)
    if not keys:
        return {}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=keys), limit=20 * len(keys)
    ).records
    found: dict[str, dict[str, Any]] = {}
    for record in sorted(records, key=lambda r: r.storage_id):  # oldest first, so the newest wins
        materialization = record.asset_materialization
        if materialization is None or materialization.partition is None:
            continue
        meta = materialization.metadata
        if all(f in meta for f in fields):
            found[materialization.partition] = {f: meta[f].value for f in fields}
    return found


def check_result(
    context: dg.AssetExecutionContext, asset_key: dg.AssetKey, name: str, results: list[tuple[str, Any]]
) -> dg.AssetCheckResult:
    """A warning-severity result per day from (partition, quality.Outcome) pairs.

    A one-day run's result is that day's. A range run logs each day's evaluation with its
    partition, so the UI shows every day's own result, and returns the result the check's spec
    needs as the run's summary: it passes only if every day passes, and names the days that did not.
    """
    if len(results) > 1:
        for key, outcome in results:
            context.log_event(
                dg.AssetCheckEvaluation(
                    asset_key=asset_key,
                    check_name=name,
                    passed=outcome.passed,
                    severity=dg.AssetCheckSeverity.WARN,
                    description=outcome.description,
                    metadata={**outcome.metadata, "partition": key},
                    partition=key,
                    target_materialization_data=latest_materialization(context.instance, asset_key, key),
                )
            )
    failed = [key for key, outcome in results if not outcome.passed]
    last_key, last = results[-1]
    description = last.description if len(results) == 1 else f"{len(results) - len(failed)}/{len(results)} days pass"
    return dg.AssetCheckResult(
        check_name=name,
        asset_key=asset_key,
        passed=not failed,
        severity=dg.AssetCheckSeverity.WARN,
        description=description + (f"; failing: {', '.join(failed)}" if failed else ""),
        metadata={**last.metadata, "partition": last_key, "failing_days": len(failed)},
    )


def latest_materialization(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, key: str
) -> AssetCheckEvaluationTargetMaterializationData | None:
    """The day's latest materialization, as Dagster targets a one-day run's check result: a result without
    it is not current for the day, and the UI shows the day's check status as missing."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, asset_partitions=[key]), limit=1
    ).records
    if not records:
        return None
    record = records[0]
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )

"""predictions: P(order in D+1..D+7) per profile of consumer_histories[D], with the events that moved it.

Scored on CPU, streamed batch by batch, with the newest approved model trained on or before D
(read from the approval records, also when backfilling old days): never a model whose checks
failed. Drift checks compare the day's history features and scores with the trailing days'.
"""

import os
from collections.abc import Iterator
from typing import Any

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds

from consumer_assets import quality
from consumer_assets.assets.consumer_histories import HISTORIES
from consumer_assets.assets.daily import daily_asset, daily_checks
from consumer_assets.assets.trailing import trailing_metadata
from consumer_assets.assets.trained_lstm_model import MODEL
from consumer_assets.automation.conditions import after_upstream_updates
from consumer_assets.histories import HISTORIES_SCHEMA
from consumer_assets.ml import ModelArtifact
from consumer_assets.ml.device import torch_threads
from consumer_assets.ml.drift import PSI_WARN, Summary, check_drift
from consumer_assets.ml.metrics import score_deciles
from consumer_assets.ml.predictions import PREDICTIONS_SCHEMA, PredictionSummary, predict_histories
from consumer_assets.ml.score import CHUNK_ROWS
from consumer_assets.partitions import partition_day
from consumer_assets.resources.storage import Storage, table_metadata
from consumer_assets.storage.registry import ModelRegistry
from consumer_assets.storage.tables import DATE

PREDICTIONS = dg.AssetKey("predictions")
INPUT_DRIFT, SCORE_DRIFT = "input_drift", "score_drift"

CHECK_SPECS = daily_checks(
    PREDICTIONS,
    {
        INPUT_DRIFT: f"History features' population stability index against the {quality.TRAILING_DAYS} "
        f"trailing days at most {PSI_WARN} (warning).",
        SCORE_DRIFT: f"Score distribution's PSI against the {quality.TRAILING_DAYS} trailing days at most "
        f"{PSI_WARN} (warning).",
    },
)


def drift_check(name: str, current: Summary, trailing: list[Summary]) -> dg.AssetCheckResult:
    outcome = check_drift(current, trailing)
    return dg.AssetCheckResult(
        check_name=name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.WARN,
        description=outcome.description,
        metadata=outcome.metadata,
    )


@daily_asset(
    key=PREDICTIONS,
    ins={"consumer_histories": dg.AssetIn(HISTORIES)},
    # The model of day D, or the newest approved one before it: metadata names which.
    deps=[dg.AssetDep(MODEL)],
    check_specs=CHECK_SPECS,
    group_name="predictions",
    # Scores as soon as histories[D] are there, with the model in force (not waiting for model[D]).
    automation_condition=after_upstream_updates(ignore=MODEL),
)
def predictions(context: dg.AssetExecutionContext, storage: Storage, consumer_histories: ds.Dataset) -> Iterator[Any]:
    """Score every profile's history with the approved model in force on D; keep its top-3 explaining events."""
    key = context.partition_key
    registry = ModelRegistry(storage.artifacts(), MODEL.path[-1])
    approved = registry.require_in_force(partition_day(key))
    model = ModelArtifact.from_files(registry.load(approved.version)).model

    tables = storage.tables()
    write = tables.begin(PREDICTIONS.path[-1], PREDICTIONS_SCHEMA)
    summary = PredictionSummary()
    probabilities = []
    batches = consumer_histories.to_batches(columns=HISTORIES_SCHEMA.names, batch_size=CHUNK_ROWS)
    with torch_threads(os.cpu_count()):  # every core: the step has nothing else to run
        for batch in predict_histories(model, batches, approved.label, summary):
            write.write_file(pa.Table.from_batches([batch]), {DATE: key})
            probabilities.append(batch["probability"].to_numpy(zero_copy_only=False))
    if not write.files:  # a day without histories still gets its (empty) partition
        write.write_file(PREDICTIONS_SCHEMA.empty_table(), {DATE: key})
    commit = write.commit([key], {"run_id": context.run.run_id, "model_version": approved.label})
    deciles = score_deciles(np.concatenate(probabilities) if probabilities else np.zeros(0))
    context.log.info(f"{key}: {summary.profiles} profiles scored with {approved.label}")

    yield dg.MaterializeResult(
        metadata={
            "model_version": approved.label,
            "model_uri": dg.MetadataValue.path(registry.artifacts.uri(approved.version)),
            "profiles": summary.profiles,
            "expected_orders": round(summary.expected_orders, 2),
            "mean_probability": summary.expected_orders / summary.profiles if summary.profiles else 0.0,
            **{f"score_p{10 * (i + 1)}": q for i, q in enumerate(deciles)},
            "score_deciles": dg.MetadataValue.json(deciles),
            "histories_summary": dg.MetadataValue.json(summary.histories.to_dict()),
            "scores_summary": dg.MetadataValue.json(summary.scores.to_dict()),
            **table_metadata(commit, key, PREDICTIONS_SCHEMA),
        }
    )
    trailing = trailing_metadata(
        context.instance, PREDICTIONS, key, quality.TRAILING_DAYS, ("histories_summary", "scores_summary")
    ).values()
    yield drift_check(INPUT_DRIFT, summary.histories, [Summary.from_dict(t["histories_summary"]) for t in trailing])
    yield drift_check(SCORE_DRIFT, summary.scores, [Summary.from_dict(t["scores_summary"]) for t in trailing])

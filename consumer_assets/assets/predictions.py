"""predictions: P(order in D+1..D+7) per profile of consumer_histories[D], with the events that moved it.

Scored on CPU, streamed batch by batch, with the newest approved model trained on or before D
(read from the approval records, also when backfilling old days): never a model whose checks
failed. Drift checks compare the day's history features and scores with the trailing days'.
"""

import datetime as dt
from collections.abc import Iterator
from typing import Any

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from consumer_assets.assets.conditions import after_upstream_updates
from consumer_assets.assets.consumer_histories import HISTORIES
from consumer_assets.assets.declare import daily_asset, daily_checks
from consumer_assets.assets.trailing import trailing_metadata
from consumer_assets.assets.trained_lstm_model import MODEL
from consumer_assets.ml.model.artifact import ModelArtifact
from consumer_assets.ml.monitoring.drift import PSI_WARN, Summary, check_drift
from consumer_assets.ml.monitoring.explain import in_words
from consumer_assets.ml.scoring.buckets import predict_buckets
from consumer_assets.ml.scoring.predictions import PREDICTIONS_SCHEMA, in_rank_order, top_profiles
from consumer_assets.ml.scoring.spark import score_on_spark
from consumer_assets.ml.training.metrics import score_deciles
from consumer_assets.partitions import partition_day
from consumer_assets.resources.spark import SparkResource
from consumer_assets.resources.storage import Storage, table_metadata
from consumer_assets.storage.registry import ModelRegistry
from consumer_assets.storage.tables import BUCKETED, TableFiles
from consumer_assets.storage.writes import StagedWrite, TableWrite
from consumer_assets.windows import TRAILING_DAYS

PREDICTIONS = dg.AssetKey("predictions")
# Day D is scored once it has ended, its landing folder is complete and its histories are computed:
# by 06:00 UTC of D+1. So the asset is fresh when it was materialized between midnight and that
# hour (the UI's Freshness turns to failed until it is): a day that did not land, or stuck on the way,
# shows. (A re-run of an older day in that window counts too: Dagster judges the asset, not a day.)
DUE_HOUR = 6
PREDICTIONS_FRESHNESS = dg.FreshnessPolicy.cron(
    deadline_cron=f"0 {DUE_HOUR} * * *", lower_bound_delta=dt.timedelta(hours=DUE_HOUR), timezone="UTC"
)
TOP_SHOWN = 10  # the most likely buyers the metadata shows
HISTOGRAM_WIDTH = 0.05  # of a probability band of the score histogram
INPUT_DRIFT, SCORE_DRIFT = "input_drift", "score_drift"

PREDICTIONS_CHECKS = daily_checks(
    PREDICTIONS,
    {
        INPUT_DRIFT: f"History features' population stability index against the {TRAILING_DAYS} "
        f"trailing days at most {PSI_WARN} (warning).",
        SCORE_DRIFT: f"Score distribution's PSI against the {TRAILING_DAYS} trailing days at most "
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


class PredictionsConfig(dg.Config):
    """Where the scoring runs."""

    on_spark: bool = Field(
        default=False,
        description="Score each profile bucket in its own Spark task (the `spark` resource's cluster), for a shop "
        "beyond one machine. Off: in this process, buckets side by side on every core.",
    )


@daily_asset(
    key=PREDICTIONS,
    ins={"consumer_histories": dg.AssetIn(HISTORIES)},
    # The model of day D, or the newest approved one before it: metadata names which.
    deps=[dg.AssetDep(MODEL)],
    check_specs=PREDICTIONS_CHECKS,
    group_name="predictions",
    freshness_policy=PREDICTIONS_FRESHNESS,
    # Scores as soon as histories[D] are there, with the model in force (not waiting for model[D]).
    automation_condition=after_upstream_updates(ignore=MODEL),
)
def predictions(
    context: dg.AssetExecutionContext,
    config: PredictionsConfig,
    storage: Storage,
    spark: SparkResource,
    consumer_histories: TableFiles,
) -> Iterator[Any]:
    """Score every profile's history with the approved model in force on D; keep its top-3 explaining events."""
    key, day = context.partition_key, partition_day(context.partition_key)
    registry = ModelRegistry(storage.artifacts(), MODEL.path[-1])
    approved = registry.require_in_force(day)
    model_files = registry.load(approved.version)

    tables = storage.tables()
    write = TableWrite(tables, PREDICTIONS.path[-1], PREDICTIONS_SCHEMA, BUCKETED)
    # Only Spark executors given `reads_storage` read and write remote storage themselves; else
    # the files pass through this machine's disk (local storage is always used in place).
    reaches_storage = config.on_spark and spark.reads_storage
    with StagedWrite(
        write, consumer_histories, storage.staging(context.run.run_id), reaches_storage=reaches_storage
    ) as staged:
        files_by_bucket = staged.inputs.get(key, {})
        if config.on_spark:
            written, summary = score_on_spark(
                spark.spark_session, files_by_bucket, model_files, approved.label, staged.out_dir, write.id, day
            )
        else:
            model = ModelArtifact.from_files(model_files, source=registry.artifacts.uri(approved.version)).model
            written, summary = predict_buckets(model, files_by_bucket, staged.out_dir, day, approved.label, write.id)
        scores = [
            pq.read_table(tables.location.path(write.table, f.path), columns=["profile_id", "probability"],
                          filesystem=tables.location.fs)
            for f in staged.adopt(key, written)
        ]  # fmt: skip
        commit = staged.commit([key], {"run_id": context.run.run_id, "model_version": approved.label})
    scores = (
        pa.concat_tables(scores) if scores else PREDICTIONS_SCHEMA.empty_table().select(["profile_id", "probability"])
    )
    probabilities = scores["probability"].to_numpy()
    deciles = score_deciles(probabilities)
    top = top_profiles(scores, TOP_SHOWN)
    best = tables.dataset(write.table, [key]).to_table(
        columns=["profile_id", "probability", "explanations"], filter=pc.field("profile_id").isin(top)
    )
    context.log.info(f"{key}: {summary.profiles} profiles scored with {approved.label}")

    yield dg.MaterializeResult(
        metadata={
            "model_version": approved.label,
            "model_uri": dg.MetadataValue.path(registry.artifacts.uri(approved.version)),
            "profiles": summary.profiles,
            "expected_orders": round(summary.expected_orders, 2),
            "mean_probability": summary.expected_orders / summary.profiles if summary.profiles else 0.0,
            **{f"score_p{10 * (i + 1)}": q for i, q in enumerate(deciles)},
            "top_profiles": dg.MetadataValue.md(top_table(in_rank_order(best, top))),
            "score_histogram": score_histogram(probabilities),
            "histories_summary": dg.MetadataValue.json(summary.histories.to_dict()),
            "scores_summary": dg.MetadataValue.json(summary.scores.to_dict()),
            **table_metadata(commit, key, PREDICTIONS_SCHEMA),
        }
    )
    trailing = trailing_metadata(context.instance, PREDICTIONS, key, ("histories_summary", "scores_summary")).values()
    yield drift_check(INPUT_DRIFT, summary.histories, comparable_summaries(trailing, "histories_summary"))
    yield drift_check(SCORE_DRIFT, summary.scores, comparable_summaries(trailing, "scores_summary"))


def top_table(rows: list[dict]) -> str:
    """The day's most likely buyers as a markdown table, each with its explaining events in words."""
    lines = ["| profile | probability | the events that moved it most |", "|---|---:|---|"]
    lines += [
        f"| {r['profile_id']} | {r['probability']:.3f} | {'; '.join(in_words(e) for e in r['explanations'])} |"
        for r in rows
    ]
    return "\n".join(lines)


def score_histogram(probabilities: np.ndarray) -> dg.TableMetadataValue:
    """Profiles per probability band of HISTOGRAM_WIDTH, as a table the UI shows."""
    edges = np.linspace(0.0, 1.0, round(1 / HISTOGRAM_WIDTH) + 1)
    counts, _ = np.histogram(probabilities, bins=edges)
    last = max(int(np.flatnonzero(counts)[-1]) + 1, 1) if counts.any() else 1  # up to the highest band used
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord({"from": float(edges[i]), "to": float(edges[i + 1]), "profiles": int(counts[i])})
            for i in range(last)
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("from", "float"),
                dg.TableColumn("to", "float"),
                dg.TableColumn("profiles", "int"),
            ]
        ),
    )


def comparable_summaries(trailing, field: str) -> list[Summary]:
    """The trailing days' summaries in this version's bins; days summarised by an older version are
    left out (not compared bin against different bin)."""
    return [Summary.from_dict(t[field]) for t in trailing if Summary.comparable(t[field])]

"""trained_lstm_model: the day's event-stream LSTM, validated against the legacy baseline and the model in force.

Day D trains on the histories of the cut-off days D-13..D-7 (`train_days`), labelled with the
orders of the 7 days after each, so nothing after D is read. The new model is published as an
artifact whatever its checks say; it is approved (put in force for predictions) only when every
blocking check passes, by an approval record written after the checks, in the same step. The
checks, the approval record and the model's stored metrics show one verdict: ml.training.gate's,
judged once inside train_daily with the configured tolerances.
"""

import dataclasses
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pyarrow.dataset as ds
from pydantic import Field

from consumer_assets.assets.consumer_histories import HISTORIES
from consumer_assets.assets.declare import daily_asset, daily_checks
from consumer_assets.assets.raw_events import RAW_EVENTS
from consumer_assets.ml.model.artifact import ModelArtifact
from consumer_assets.ml.model.config import LstmConfig
from consumer_assets.ml.training.day import train_daily
from consumer_assets.ml.training.gate import (
    AUC_FLOOR,
    AUC_VS_BASELINE,
    ECE_VS_APPROVED,
    MEAN_VS_APPROVED,
    NLL_VS_APPROVED,
    Tolerances,
    Verdict,
)
from consumer_assets.ml.training.train import EpochStats
from consumer_assets.partitions import partition_day, window_mapping
from consumer_assets.resources.storage import Storage
from consumer_assets.storage.registry import ModelRegistry
from consumer_assets.windows import MAX_TRAIN_DAYS, TRAINING_CUTOFFS, TRAINING_LABELS

MODEL = dg.AssetKey("trained_lstm_model")

# Inputs of day D: histories of D-13..D-7 and the raw_events whose orders label them, D-12..D: the
# MAX_TRAIN_DAYS cut-off days, whatever train_days a run's config asks for (the training keeps its own).
TRAINING_HISTORIES = window_mapping(TRAINING_CUTOFFS)
LABEL_EVENTS = window_mapping(TRAINING_LABELS)

# Where a GPU is asked for: the Kubernetes job executor/run launcher and the ECS executor read
# these tags; the `gpu` pool keeps concurrent trainings within the GPUs there are.
GPU_TAGS: dict[str, Any] = {
    "dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}}},
    "ecs/container_overrides": {"resourceRequirements": [{"type": "GPU", "value": "1"}]},
}


class TrainingConfig(dg.Config):
    """Hyperparameters (mapped onto ml.LstmConfig) and the bars a model must clear to be approved."""

    hidden: int = Field(default=LstmConfig.hidden, description="LSTM cell size.")
    type_dim: int = Field(default=LstmConfig.type_dim, description="Embedding size of the action type.")
    article_dim: int = Field(default=LstmConfig.article_dim, description="Embedding size of the article bucket.")
    brand_dim: int = Field(default=LstmConfig.brand_dim, description="Embedding size of the brand bucket.")
    category_dim: int = Field(default=LstmConfig.category_dim, description="Embedding size of the category bucket.")
    epochs: int = Field(default=LstmConfig.epochs, description="Epochs of a cold start.")
    warm_start_epochs: int = Field(default=LstmConfig.warm_start_epochs, description="Epochs of a warm start.")
    batch_size: int = Field(default=LstmConfig.batch_size, description="Histories per training batch.")
    lr: float = Field(default=LstmConfig.lr, description="Adam's peak learning rate (cosine decay after).")
    warmup_steps: int = Field(default=LstmConfig.warmup_steps, description="Steps of linear learning-rate warm-up.")
    id_l2: float = Field(default=LstmConfig.id_l2, description="Penalty on the id embeddings' gate contribution.")
    train_days: int = Field(
        default=LstmConfig.train_days,
        ge=1,
        le=MAX_TRAIN_DAYS,
        description=f"Cut-off days trained on (at most {MAX_TRAIN_DAYS}).",
    )
    validation_share: float = Field(default=LstmConfig.validation_share, description="Profiles held out.")
    max_train_histories_per_day: int = Field(
        default=LstmConfig.max_train_histories_per_day,
        ge=0,
        description="A cap for huge shops: each cut-off day's training histories sampled down to about this "
        "many by profile hash, the same profiles every day (0: all). Validation is never sampled.",
    )
    seed: int = Field(default=LstmConfig.seed, description="Seed of initialisation and batch order.")
    early_stopping_share: float = Field(
        default=LstmConfig.early_stopping_share, description="Training profiles set aside to pick the best epoch."
    )
    patience: int = Field(default=LstmConfig.patience, description="Epochs without improvement before stopping.")
    threads: int | None = Field(
        default=1,
        description="Torch CPU threads for training; 1 is fastest on a small shared CPU (spinning threads "
        "collapse under contention), None leaves torch's default. Ignored on a GPU.",
    )
    processes: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Processes that train data-parallel (torchrun, gradients averaged; each reads the "
        "histories from their files and uses `threads` threads): one per GPU, or per CPU core.",
    )
    auc_floor: float = Field(default=Tolerances.auc_floor, description="Validation AUC the model must exceed.")
    nll_tolerance: float = Field(
        default=Tolerances.nll_tolerance, description="How much worse than the approved model's NLL is allowed."
    )
    ece_tolerance: float = Field(
        default=Tolerances.ece_tolerance,
        description="How much worse than the approved model's expected calibration error is allowed.",
    )
    mean_gap_tolerance: float = Field(
        default=Tolerances.mean_gap_tolerance,
        description="How much larger than the approved model's |mean predicted - observed rate| is allowed.",
    )
    auc_margin: float = Field(default=Tolerances.auc_margin, description="How far below the baseline's AUC is allowed.")

    def lstm(self) -> LstmConfig:
        """The hyperparameters as ml's LstmConfig (the fields not offered at its defaults)."""
        return LstmConfig(**{name: getattr(self, name) for name in offered_lstm_fields(type(self))})

    def tolerances(self) -> Tolerances:
        return Tolerances(**{name: getattr(self, name) for name in GATE_FIELDS})


# LstmConfig fields the run config does not offer: every run trains with their LstmConfig defaults.
NOT_OFFERED: tuple[str, ...] = (
    "final_lr_factor",
    "weight_decay",
    "grad_clip",
    "warm_start_lr_factor",
    "score_batch_size",
)
# TrainingConfig fields that are no hyperparameter: the gate's bars, and how the step runs.
GATE_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Tolerances))
RUNTIME_FIELDS: tuple[str, ...] = ("threads", "processes")


def offered_lstm_fields(
    config: type[TrainingConfig] = TrainingConfig, not_offered: tuple[str, ...] = NOT_OFFERED
) -> tuple[str, ...]:
    """The run config's LstmConfig fields. ValueError unless every LstmConfig field is offered or
    `not_offered`, every field of `config` is an LstmConfig field, a gate bar or a runtime
    setting, and each offered field's default is the dataclass's: a field added to one side only
    (or misspelt) is an error, never silently dropped."""
    lstm = {f.name: f.default for f in dataclasses.fields(LstmConfig)}
    gate = {f.name: f.default for f in dataclasses.fields(Tolerances)}
    fields = config.model_fields
    problems = [
        f"LstmConfig.{n} is neither offered nor in NOT_OFFERED"
        for n in lstm
        if n not in fields and n not in not_offered
    ]
    problems += [f"{n} is both offered and in NOT_OFFERED" for n in not_offered if n in fields]
    problems += [f"LstmConfig has no field {n} (NOT_OFFERED)" for n in not_offered if n not in lstm]
    problems += [
        f"TrainingConfig.{n} is no LstmConfig field, gate bar or runtime setting"
        for n in fields
        if n not in lstm and n not in gate and n not in RUNTIME_FIELDS
    ]
    problems += [
        f"TrainingConfig.{n} defaults to {field.default!r}, its source to {source[n]!r}"
        for n, field in fields.items()
        for source in (lstm, gate)
        if n in source and field.default != source[n]
    ]
    if problems:
        raise ValueError("TrainingConfig and LstmConfig/Tolerances disagree: " + "; ".join(problems))
    return tuple(n for n in fields if n in lstm)


def epoch_line(e: EpochStats) -> str:
    """One epoch as a log line: the progress of a long training."""
    parts = [f"epoch {e.epoch}: training loss {e.train_loss:.4f}"]
    if e.stopping_nll is not None:
        parts.append(f"early-stopping NLL {e.stopping_nll:.4f}")
    if e.valid_auc is not None:
        parts.append(f"validation AUC {e.valid_auc:.4f}")
    return ", ".join([*parts, f"{e.histories_per_s:,.0f} histories/s, {e.seconds:.1f} s"])


def curve_table(epochs: list[EpochStats]) -> str:
    """The judged model's epochs as a markdown table, as the UI shows metadata."""

    def cell(x: float | None) -> str:
        return "" if x is None else f"{x:.4f}"

    rows = [
        f"| {e.epoch} | {e.train_loss:.4f} | {cell(e.stopping_nll)} | {cell(e.valid_nll)} | {cell(e.valid_auc)} "
        f"| {e.lr:.2g} | {e.histories_per_s:,.0f} |"
        for e in epochs
    ]
    head = "| epoch | training loss | early-stopping NLL | validation NLL | validation AUC | lr | histories/s |"
    return "\n".join([head, "|---:|---:|---:|---:|---:|---:|---:|", *rows])


def check_results(verdict: Verdict) -> list[dg.AssetCheckResult]:
    """The blocking checks: the gate's verdict as Dagster shows it."""
    return [
        dg.AssetCheckResult(check_name=c.name, passed=c.passed, description=c.reason, metadata=c.metadata)
        for c in verdict.checks
    ]


MODEL_CHECKS = daily_checks(
    MODEL,
    {
        AUC_FLOOR: "Validation AUC above the configured floor.",
        AUC_VS_BASELINE: "Validation AUC not below the logistic baseline's by more than the margin.",
        NLL_VS_APPROVED: "Validation NLL not worse than the approved model's by more than the tolerance.",
        ECE_VS_APPROVED: "Expected calibration error not worse than the approved model's by more than the tolerance.",
        MEAN_VS_APPROVED: "Mean prediction not further from the observed rate than the approved model's "
        "by more than the tolerance.",
    },
    blocking=True,
)


@daily_asset(
    key=MODEL,
    ins={
        "consumer_histories": dg.AssetIn(HISTORIES, partition_mapping=TRAINING_HISTORIES),
        "raw_events": dg.AssetIn(RAW_EVENTS, partition_mapping=LABEL_EVENTS),
    },
    check_specs=MODEL_CHECKS,
    op_tags=GPU_TAGS,
    pool="gpu",
    group_name="model",
)
def trained_lstm_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    storage: Storage,
    consumer_histories: ds.Dataset,
    raw_events: ds.Dataset,
) -> Iterator[Any]:
    """Train the day's LSTM (GPU when present), validate it against the baseline and the approved model."""
    day = partition_day(context.partition_key)
    registry = ModelRegistry(storage.artifacts(), MODEL.path[-1])
    approved = registry.in_force(day)
    approved_model = (
        ModelArtifact.from_files(registry.load(approved.version), source=registry.artifacts.uri(approved.version))
        if approved
        else None
    )

    orders = raw_events.to_batches(columns=["profile_id", "ts", "event_type"], filter=ds.field("event_type") == "order")
    outcome = train_daily(
        day,
        consumer_histories,
        orders,
        config.lstm(),
        approved_model,
        tolerances=config.tolerances(),
        approved_label=approved.label if approved else None,
        threads=config.threads,
        processes=config.processes,
        on_epoch=lambda e: context.log.info(f"{day} {epoch_line(e)}"),
    )
    version = registry.publish(day, outcome.artifact.to_files(), {"run_id": context.run.run_id})
    verdict = outcome.verdict
    if verdict.approved:
        checks = {c.name: {"passed": c.passed, "reason": c.reason} for c in verdict.checks}
        in_force = registry.approve(version, checks, {"tolerances": verdict.tolerances.to_dict()})
        context.log.info(f"approved {in_force.label}: every blocking check passed")
    else:
        failed = ", ".join(verdict.failed)
        context.log.warning(
            f"{day}: not approved ({failed} failed); {approved.label if approved else 'no model'} stays in force"
        )

    yield dg.MaterializeResult(
        metadata={
            **{name: float(value) for name, value in outcome.metrics.items()},
            "model_version": version.label,
            "artifact_uri": dg.MetadataValue.path(registry.artifacts.uri(version)),
            "approved": verdict.approved,
            "compared_with": approved.label if approved else "none",
            "warm_started": outcome.warm_started,
            "warm_start_fell_back": outcome.warm_start_fell_back,
            "judged_start": outcome.judged_start,
            "device": outcome.artifact.metrics.get("device", "cpu"),
            "learning_curve": dg.MetadataValue.md(curve_table(outcome.epochs)),
        }
    )
    yield from check_results(verdict)

"""Predictions as stored: per profile the probability, the model version and the events that moved it.

`predict_histories` streams: each chunk of histories is scored (scoring.predict), explained from the
per-event probabilities (monitoring.explain) and summarized for the drift checks (monitoring.drift), then
yielded; memory grows with the chunk, not with the number of profiles. The same function runs
in-process or inside a Spark task per profile bucket.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from consumer_assets.ml.model.device import torch_threads
from consumer_assets.ml.model.network import EventLstm
from consumer_assets.ml.monitoring.drift import Summary, history_features, summarize, summarize_scores
from consumer_assets.ml.monitoring.explain import EXPLANATION_TYPE, explanations
from consumer_assets.ml.scoring.predict import predict_all
from consumer_assets.ml.training.data import SequenceData
from consumer_assets.ml.training.labels import Batches, record_batches
from consumer_assets.ml.training.sequences import hours_before_cutoff, list_parts

PREDICTIONS_SCHEMA = pa.schema(
    [
        pa.field("profile_id", pa.string()),
        # P(order in the 7 days after the cut-off D+1 00:00 UTC).
        pa.field("probability", pa.float32()),
        # The approved model that scored it: "<training day>/v<version>".
        pa.field("model_version", pa.string()),
        # The three events that moved the probability most, largest |change| first.
        pa.field("explanations", EXPLANATION_TYPE),
    ]
)


@dataclass
class PredictionSummary:
    """What a day's scoring adds up to: counts, expected orders, and the drift summaries."""

    profiles: int = 0
    expected_orders: float = 0.0
    histories: Summary = field(default_factory=lambda: Summary.empty("histories"))
    scores: Summary = field(default_factory=lambda: Summary.empty("scores"))

    def add(self, histories: pa.RecordBatch, probability: np.ndarray, hours: np.ndarray | None = None) -> None:
        """Add a batch; `hours`: sequences.hours_before_cutoff of its events, if computed already."""
        self.profiles += len(probability)
        self.expected_orders += float(probability.astype(np.float64).sum())
        features = history_features(histories, hours)
        self.histories = self.histories + summarize("histories", histories.num_rows, features)
        self.scores = self.scores + summarize_scores([probability])

    def __add__(self, other: PredictionSummary) -> PredictionSummary:
        """Pooled: the summaries of several buckets (or Spark tasks) add up to the day's."""
        return PredictionSummary(
            profiles=self.profiles + other.profiles,
            expected_orders=self.expected_orders + other.expected_orders,
            histories=self.histories + other.histories,
            scores=self.scores + other.scores,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, to travel from a Spark task to the driver (the drift counts via Summary.to_dict)."""
        return {
            "profiles": self.profiles,
            "expected_orders": self.expected_orders,
            "histories": self.histories.to_dict(),
            "scores": self.scores.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PredictionSummary:
        return cls(
            profiles=int(data["profiles"]),
            expected_orders=float(data["expected_orders"]),
            histories=Summary.from_dict(data["histories"]),
            scores=Summary.from_dict(data["scores"]),
        )


def predict_histories(
    model: EventLstm,
    histories: Batches,
    model_version: str,
    summary: PredictionSummary | None,
    *,
    threads: int | None = 1,
) -> Iterator[pa.RecordBatch]:
    """PREDICTIONS_SCHEMA batches for HISTORIES_SCHEMA rows, one per input batch, in input order.

    Each batch is also added to `summary` (None: no drift summaries, as the scoring service scores).
    Give batches of about scoring.predict.CHUNK_ROWS rows (a dataset's `to_batches(batch_size=...)`):
    bigger ones cost memory, smaller ones sort less well by length.
    Torch scores each batch on `threads` threads (None: as set): one is fastest on CPU, where a
    scoring op is too small to share out; scoring.buckets uses more cores by scoring profile
    buckets side by side.
    """
    for batch in record_batches(histories):
        if not batch.num_rows:
            continue
        # Each event's hours before the cut-off, once: the model's age input, the explanations'
        # times and the drift summary's events of the day all read them.
        log_dt, offsets = list_parts(batch["log_dt"])
        hours = hours_before_cutoff(log_dt, offsets, batch["hours_since_last_event"].to_numpy(zero_copy_only=False))
        data = SequenceData.from_batch(batch, label_column="", cutoff_column="", age_hours=hours)
        probability, predictions = predict_data(model, data, hours, model_version, threads=threads)
        if summary is not None:
            summary.add(batch, probability, hours)
        yield predictions


def predict_data(
    model: EventLstm, data: SequenceData, hours: np.ndarray, model_version: str, *, threads: int | None = 1
) -> tuple[np.ndarray, pa.RecordBatch]:
    """predict_histories of histories read already (`hours`: each event's hours before the cut-off):
    (the probabilities, the PREDICTIONS_SCHEMA batch)."""
    with torch_threads(threads):
        probability, per_event = predict_all(model, data, model.config.score_batch_size, per_event=True)
    assert per_event is not None
    predictions = pa.RecordBatch.from_arrays(
        [
            data.profile_id,
            pa.array(probability),
            pa.repeat(pa.scalar(model_version, pa.string()), len(data)),
            explanations(per_event, data.offsets, data.event_type, data.article, hours),
        ],
        schema=PREDICTIONS_SCHEMA,
    )
    return probability, predictions


def top_profiles(scores: pa.Table, n: int) -> pa.ChunkedArray | pa.Array:
    """The profile ids of `scores` (profile_id, probability) with the n highest probabilities,
    highest first; equal probabilities in profile_id order."""
    order = pc.sort_indices(scores, [("probability", "descending"), ("profile_id", "ascending")])[:n]
    return scores["profile_id"].take(order)


def in_rank_order(rows: pa.Table, profiles: pa.ChunkedArray | pa.Array) -> list[dict]:
    """The rows of `profiles` (as top_profiles gave them) as dicts, in that order."""
    at = {p: i for i, p in enumerate(profiles.to_pylist())}
    return sorted(rows.to_pylist(), key=lambda r: at[r["profile_id"]])

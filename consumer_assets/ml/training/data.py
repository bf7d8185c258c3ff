"""Histories as the model reads them: columnar numpy arrays, and padded batches of similar length.

Record batches of HISTORIES_SCHEMA rows are flattened column by column (no Python object per
history): one array per sequence input over all events, row offsets, and per-row static
inputs. A batch is a vectorised gather of whole rows, padded at the end to its longest row; rows
are grouped by length first, so padding stays a few percent of the work.

Besides the stored columns the model gets each event's age at the cut-off (log hours): the sum of
the gaps after it plus hours_since_last_event (sequences.hours_before_cutoff). An LSTM finds "an
order 2 days ago" far more easily in that number than by adding up gaps (it was the input that
mattered most in the prototype).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from consumer_assets.histories.encode import EncodedHistories
from consumer_assets.ml.model.batch import Batch
from consumer_assets.ml.model.inputs import (
    CONTINUOUS,
    N_CONTINUOUS,
    N_STATIC,
    SUMMARY_COLUMNS,
    static_inputs,
    summary_matrix,
    summary_of,
)
from consumer_assets.ml.training.batches import length_batches
from consumer_assets.ml.training.labels import SPLIT_SALT, Batches, record_batches, validation_mask
from consumer_assets.ml.training.sequences import hours_before_cutoff, list_parts

# The sequence columns as the model reads them: ids as int32 (torch's embeddings take them as they
# are), the stored floats as they are.
_SEQUENCES = (
    ("event_type", np.int32),
    ("article_bucket", np.int32),
    ("brand_bucket", np.int32),
    ("category_bucket", np.int32),
    ("log_dt", np.float32),
    ("log_price", np.float32),
)


class Histories(Protocol):
    """Labelled histories as training reads them: a SequenceData in memory, or a
    stream.HistoryStream that reads them from their files a chunk at a time."""

    def __len__(self) -> int: ...

    def held_out(self, share: float, salt: str) -> tuple[Histories, Histories]:
        """(the rest, the held-out profiles): `share` of the profiles by the hash salted with `salt`."""
        ...

    def chunks(self, rng: np.random.Generator | None = None) -> Iterator[SequenceData]:
        """The histories a chunk at a time, in stored order or shuffled by `rng`."""
        ...


@dataclass
class SequenceData:
    """Histories as flat per-event arrays with row offsets, per-row inputs and optional labels."""

    profile_id: pa.Array
    offsets: np.ndarray  # int64, n + 1
    # Ids as int32 (torch's embeddings take them as they are): half the memory of int64.
    event_type: np.ndarray  # int32 per event
    article: np.ndarray  # int32 per event
    brand: np.ndarray
    category: np.ndarray
    continuous: np.ndarray  # float32 (events, N_CONTINUOUS), scaled
    static: np.ndarray  # float32 (n, N_STATIC)
    # Per row, as stored (the baseline's features read them): hours_since_last_event,
    # cutoff_weekday, last_event_hour, and the SUMMARY_COLUMNS (int32, nulls as NULL).
    hours_since: np.ndarray
    weekday: np.ndarray
    hour: np.ndarray
    summary: np.ndarray  # (n, len(SUMMARY_COLUMNS))
    label: np.ndarray | None = None  # float32 0/1 per row
    cutoff: np.ndarray | None = None  # int32 days since the epoch per row, when the source had them

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def summary_column(self, name: str) -> np.ndarray:
        """One of SUMMARY_COLUMNS per row, int32, NULL where null."""
        return self.summary[:, SUMMARY_COLUMNS.index(name)]

    @property
    def events(self) -> int:
        return int(self.offsets[-1])

    def age_hours(self) -> np.ndarray:
        """Hours from each event to the cut-off (float64, flat along offsets)."""
        _, centre, scale = CONTINUOUS[2]
        return np.expm1(self.continuous[:, 2].astype(np.float64) * scale + centre)

    @classmethod
    def from_batches(cls, source: Batches, *, label_column: str = "label", cutoff_column: str = "date") -> SequenceData:
        """Read HISTORIES_SCHEMA rows (plus `label` and the cut-off day, if present) from a stream."""
        parts = [
            cls.from_batch(b, label_column=label_column, cutoff_column=cutoff_column)
            for b in record_batches(source)
            if b.num_rows
        ]
        return cls.concat(parts) if parts else cls.empty()

    @classmethod
    def from_batch(
        cls,
        batch: pa.RecordBatch,
        *,
        label_column: str = "label",
        cutoff_column: str = "date",
        age_hours: np.ndarray | None = None,
    ) -> SequenceData:
        """One record batch; `age_hours`: each event's hours before the cut-off, if the caller has
        them already (sequences.hours_before_cutoff of the batch, as computed here otherwise)."""
        n_events = batch.column("n_events").to_numpy(zero_copy_only=False).astype(np.int64)
        flat = {}
        for name, _ in _SEQUENCES:
            values, list_offsets = list_parts(batch.column(name))
            if not np.array_equal(np.diff(list_offsets), n_events):
                raise ValueError(f"{name} lists do not have n_events items")
            flat[name] = values
        per_row = {
            name: batch.column(name).to_numpy(zero_copy_only=False)
            for name in ("hours_since_last_event", "cutoff_weekday", "last_event_hour")
        }
        names = batch.schema.names
        label = None
        if label_column in names:
            label = batch.column(label_column).to_numpy(zero_copy_only=False).astype(np.float32)
        cutoff = None
        if cutoff_column in names:
            days = pc.cast(batch.column(cutoff_column), pa.date32())
            cutoff = pc.cast(days, pa.int32()).to_numpy(zero_copy_only=False).astype(np.int32)
        profile_id = batch.column("profile_id").cast(pa.string())
        return cls._of(profile_id, n_events, flat, per_row, summary_matrix(batch), age_hours, label, cutoff)

    @classmethod
    def from_encoded(cls, histories: EncodedHistories, age_hours: np.ndarray | None = None) -> SequenceData:
        """Histories as histories.state.encode_arrays gives them, without a table in between: the same
        arrays from_batch reads from encode's table (the scoring service's path)."""
        columns = histories.columns
        summary = summary_of(columns, histories.nulls)
        n_events = np.diff(histories.offsets)
        return cls._of(histories.profile_id, n_events, columns, columns, summary, age_hours, None, None)

    @classmethod
    def _of(
        cls,
        profile_id: pa.Array,
        n_events: np.ndarray,
        flat: Mapping[str, np.ndarray],
        per_row: Mapping[str, np.ndarray],
        summary: np.ndarray,
        age_hours: np.ndarray | None,
        label: np.ndarray | None,
        cutoff: np.ndarray | None,
    ) -> SequenceData:
        """From the sequence columns (flat), the moment's columns and the summaries (summary_matrix)."""
        if len(n_events) and n_events.min() < 1:
            raise ValueError("every history needs at least one event")
        sequences = {name: flat[name].astype(dtype, copy=False) for name, dtype in _SEQUENCES}
        offsets = np.zeros(len(n_events) + 1, dtype=np.int64)
        np.cumsum(n_events, out=offsets[1:])
        hours_since = per_row["hours_since_last_event"].astype(np.float32)
        weekday = per_row["cutoff_weekday"].astype(np.int8)
        hour = per_row["last_event_hour"].astype(np.float32)
        age = hours_before_cutoff(sequences["log_dt"], offsets, hours_since) if age_hours is None else age_hours
        if len(age) != len(sequences["log_dt"]):
            raise ValueError("age_hours must have one value per event")
        raw = (sequences["log_dt"], sequences["log_price"], np.log1p(np.maximum(age, 0.0)))
        # Each input scaled in its own precision (float32 for the stored ones, float64 for the
        # age), then rounded into one float32 matrix.
        continuous = np.empty((len(age), N_CONTINUOUS), np.float32)
        for j, (x, (_, c, s)) in enumerate(zip(raw, CONTINUOUS, strict=True)):
            continuous[:, j] = (x - c) / s
        return cls(
            profile_id=profile_id,
            offsets=offsets,
            event_type=sequences["event_type"],
            article=sequences["article_bucket"],
            brand=sequences["brand_bucket"],
            category=sequences["category_bucket"],
            continuous=continuous,
            static=static_inputs(hours_since, weekday, hour, summary),
            hours_since=hours_since,
            weekday=weekday,
            hour=hour,
            summary=summary,
            label=label,
            cutoff=cutoff,
        )

    @classmethod
    def empty(cls) -> SequenceData:
        z = np.zeros(0, np.int32)
        return cls(
            profile_id=pa.array([], pa.string()),
            offsets=np.zeros(1, np.int64),
            event_type=z,
            article=z,
            brand=z,
            category=z,
            continuous=np.zeros((0, N_CONTINUOUS), np.float32),
            static=np.zeros((0, N_STATIC), np.float32),
            hours_since=np.zeros(0, np.float32),
            weekday=np.zeros(0, np.int8),
            hour=np.zeros(0, np.float32),
            summary=np.zeros((0, len(SUMMARY_COLUMNS)), np.int32),
        )

    @classmethod
    def concat(cls, parts: list[SequenceData]) -> SequenceData:
        if len(parts) == 1:
            return parts[0]
        lengths = np.concatenate([p.lengths for p in parts])
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])

        def cat(name: str) -> np.ndarray | None:
            values = [getattr(p, name) for p in parts]
            if any(v is None for v in values):
                return None
            return np.concatenate(values)

        return cls(
            profile_id=pa.concat_arrays([p.profile_id for p in parts]),
            offsets=offsets,
            event_type=cat("event_type"),
            article=cat("article"),
            brand=cat("brand"),
            category=cat("category"),
            continuous=cat("continuous"),
            static=cat("static"),
            hours_since=cat("hours_since"),
            weekday=cat("weekday"),
            hour=cat("hour"),
            summary=cat("summary"),
            label=cat("label"),
            cutoff=cat("cutoff"),
        )

    def _event_rows(self, rows: np.ndarray) -> np.ndarray:
        """Indices of the events of `rows`, row after row."""
        starts, lengths = self.offsets[rows], self.lengths[rows]
        ends = np.cumsum(lengths)
        return np.arange(int(ends[-1]) if len(ends) else 0) + np.repeat(starts - (ends - lengths), lengths)

    def take(self, rows: np.ndarray) -> SequenceData:
        """The histories at `rows`, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        events = self._event_rows(rows)
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(self.lengths[rows], out=offsets[1:])
        return SequenceData(
            profile_id=self.profile_id.take(pa.array(rows)),
            offsets=offsets,
            event_type=self.event_type[events],
            article=self.article[events],
            brand=self.brand[events],
            category=self.category[events],
            continuous=self.continuous[events],
            static=self.static[rows],
            hours_since=self.hours_since[rows],
            weekday=self.weekday[rows],
            hour=self.hour[rows],
            summary=self.summary[rows],
            label=None if self.label is None else self.label[rows],
            cutoff=None if self.cutoff is None else self.cutoff[rows],
        )

    def split(self, validation_share: float) -> tuple[SequenceData, SequenceData]:
        """(training, validation) histories by the profile-id hash of labels.validation_mask."""
        return self.held_out(validation_share, SPLIT_SALT)

    def held_out(self, share: float, salt: str) -> tuple[SequenceData, SequenceData]:
        """(the rest, the held-out profiles): `share` of the profiles by the hash salted with `salt`."""
        held = validation_mask(self.profile_id, share, salt)
        return self.take(np.flatnonzero(~held)), self.take(np.flatnonzero(held))

    def chunks(self, rng: np.random.Generator | None = None) -> Iterator[SequenceData]:
        """The histories as training reads a stream.HistoryStream: here, all of them at once."""
        yield self

    def batch(self, rows: np.ndarray, steps: int | None = None) -> Batch:
        """Rows `rows` padded at the end to the longest of them, or to `steps` if longer (padding
        repeats a row's last event)."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        width = max(int(lengths.max()), steps or 0)
        starts = self.offsets[rows]
        # (T, B): gathered straight into the steps-first layout, no transposed copies later.
        pos = np.minimum(starts[None, :] + np.arange(width)[:, None], (starts + lengths - 1)[None, :])

        def ids(values: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.take(values, pos))

        return Batch(
            event_type=ids(self.event_type),
            article=ids(self.article),
            brand=ids(self.brand),
            category=ids(self.category),
            # np.take along an axis: several times faster than fancy indexing of a 2-d array.
            continuous=torch.from_numpy(np.take(self.continuous, pos, axis=0)),
            static=torch.from_numpy(self.static[rows]),
            lengths=torch.from_numpy(lengths),
            label=None if self.label is None else torch.from_numpy(self.label[rows]),
        )

    def length_batches(
        self,
        batch_size: int,
        rng: np.random.Generator | None = None,
        pool_batches: int = 32,
        max_events: int | None = None,
        step_multiple: int = 1,
        row_multiple: int = 1,
    ) -> list[np.ndarray]:
        """Row indices per batch, rows of a batch of similar length (see batches.length_batches)."""
        return length_batches(self.lengths, batch_size, rng, pool_batches, max_events, step_multiple, row_multiple)

"""Which events moved a profile's predicted probability most: the explanation stored with a prediction.

An LSTM emits a probability after every event: p_0 .. p_{n-1}, oldest event first. The change that
event i brought is d_i = p_i - p_{i-1}. Before the first event there is no prediction, so p_{-1} is
the `prior` when one is given (the training base rate, or the model's output on an empty history;
a scalar or one per profile) and otherwise p_0 itself, so that without a prior the first event of a
history gets no credit (d_0 = 0): its p_0 mixes the model's starting point with that event's effect.

The top TOP_EVENTS events per profile by |d_i| (up or down), largest first; on equal |d_i| the more
recent event comes first. Histories shorter than TOP_EVENTS give as many entries as they have events.

Each entry's time is the event's hours before the cut-off, reconstructed from the history by
ml.training.sequences, the same numbers the model read as the event's age.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from consumer_assets.events.schema import ACTION_TYPES
from consumer_assets.ml.training.sequences import hours_before_cutoff, list_parts

TOP_EVENTS = 3

# One explanation entry: stored as list<struct> beside the probability, largest |change| first.
EXPLANATION_STRUCT = pa.struct(
    [
        pa.field("position", pa.int16()),  # index of the event in the history, 0 = oldest
        pa.field("event_type", pa.string()),  # name from ACTION_TYPES
        pa.field("hours_before_cutoff", pa.float32()),
        pa.field("article_bucket", pa.int32()),  # 0: the event has no article
        pa.field("change", pa.float32()),  # p_i - p_{i-1}, signed
    ]
)
EXPLANATION_TYPE = pa.list_(EXPLANATION_STRUCT)
_TYPE_NAMES = pa.array(ACTION_TYPES, pa.string())


def top_changes(
    probabilities: np.ndarray, offsets: np.ndarray, prior: float | np.ndarray | None = None, k: int = TOP_EVENTS
) -> tuple[np.ndarray, np.ndarray]:
    """(picked, picked_offsets, change): flat indices of each row's top-k events, rows in order and
    each row's largest |change| first; where each row's picks start; every event's change."""
    p = np.asarray(probabilities, np.float64)
    if np.isnan(p).any():
        raise ValueError("probabilities contain NaN")
    lengths = np.diff(offsets)
    n_rows, total, nonempty = len(lengths), len(p), lengths > 0
    starts = offsets[:-1][nonempty]
    prev = np.empty_like(p)
    prev[1:] = p[:-1]
    if prior is None:
        prev[starts] = p[starts]
    else:
        prev[starts] = np.broadcast_to(np.asarray(prior, np.float64), (n_rows,))[nonempty]
    change = p - prev
    # k passes of a per-row argmax (ties: the highest index, the most recent event), each taking
    # its pick out: O(events) per pass, where a full sort of every row would cost O(events log events).
    score = np.abs(change)
    counts = lengths[nonempty]
    owner = np.repeat(np.arange(len(starts)), counts)
    picks = np.full((k, len(starts)), -1, np.int64)
    for j in range(k if total else 0):
        best = np.maximum.reduceat(score, starts)
        # The events at their row's maximum (usually one a row; a row holds at least one), in
        # order: the last of each row's run is its most recent.
        hits = np.flatnonzero(score == np.repeat(best, counts))
        hit_owner = owner[hits]
        last = hits[np.r_[hit_owner[1:] != hit_owner[:-1], True]]
        left = best >= 0  # rows shorter than j + 1 events are exhausted (score -1 everywhere)
        picks[j, left] = last[left]
        score[last[left]] = -1.0
    picked = picks.T.ravel()
    picked = picked[picked >= 0]
    picked_offsets = np.zeros(n_rows + 1, np.int64)
    np.cumsum(np.minimum(lengths, k), out=picked_offsets[1:])
    return picked, picked_offsets, change


def top_events(
    probabilities: pa.Array | pa.ChunkedArray,
    histories: pa.RecordBatch | pa.Table,
    *,
    prior: float | np.ndarray | None = None,
    k: int = TOP_EVENTS,
) -> pa.ListArray:
    """Per history row: its top-k events by |change| of the probability, as EXPLANATION_TYPE.

    probabilities: list<float> with one probability per event of the row (after that event).
    histories: rows in HISTORIES_SCHEMA (event_type, log_dt, article_bucket, hours_since_last_event).
    Pass RecordBatches to stream: memory grows with the batch, not with the table.
    """
    p, offsets = list_parts(probabilities)
    types, type_offsets = list_parts(histories["event_type"])
    if not np.array_equal(offsets, type_offsets):
        raise ValueError("probabilities must have one value per event of each history")
    log_dt, _ = list_parts(histories["log_dt"])
    article, _ = list_parts(histories["article_bucket"])
    hsl = histories["hours_since_last_event"].to_numpy(zero_copy_only=False)
    return explanations(p, offsets, types, article, hours_before_cutoff(log_dt, offsets, hsl), prior=prior, k=k)


def explanations(
    probabilities: np.ndarray,
    offsets: np.ndarray,
    event_type: np.ndarray,
    article_bucket: np.ndarray,
    hours: np.ndarray,
    *,
    prior: float | np.ndarray | None = None,
    k: int = TOP_EVENTS,
) -> pa.ListArray:
    """top_events from flat per-event arrays along `offsets` (hours: sequences.hours_before_cutoff's)."""
    if not len(probabilities) == len(event_type) == len(article_bucket) == len(hours) == offsets[-1]:
        raise ValueError("probabilities must have one value per event of each history")
    picked, picked_offsets, change = top_changes(probabilities, offsets, prior, k)
    position = picked - np.repeat(offsets[:-1], np.diff(picked_offsets))
    entries = pa.StructArray.from_arrays(
        [
            pa.array(position.astype(np.int16)),
            _TYPE_NAMES.take(pa.array(event_type[picked].astype(np.int64))),
            pa.array(hours[picked].astype(np.float32)),
            pa.array(article_bucket[picked].astype(np.int32)),
            pa.array(change[picked].astype(np.float32)),
        ],
        fields=list(EXPLANATION_STRUCT),
    )
    return pa.ListArray.from_arrays(pa.array(picked_offsets.astype(np.int32)), entries, type=EXPLANATION_TYPE)


def in_words(entry: dict) -> str:
    """One explanation entry (EXPLANATION_STRUCT as a dict) as a phrase: "order 2 days before (+0.031)"."""
    hours = float(entry["hours_before_cutoff"])
    when = f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} days"
    return f"{str(entry['event_type']).replace('_', ' ')} {when} before ({float(entry['change']):+.3f})"

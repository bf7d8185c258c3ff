"""Probabilities for histories in memory: the final one per history, and optionally one per event.

Rows are scored in batches of similar length and written back in their input order; streaming
over a day's histories is `scoring.predictions.predict_histories`, a chunk of CHUNK_ROWS at a time.
"""

from __future__ import annotations

import numpy as np
import torch

from consumer_assets.ml.model.device import autocast
from consumer_assets.ml.model.network import EventLstm
from consumer_assets.ml.training.batches import padded_steps
from consumer_assets.ml.training.data import SequenceData

# Histories scored at a time by predict_histories (the record batches it is given):
# memory grows with it, and beyond a few thousand rows sorting by length gains nothing; smaller
# chunks also keep the per-event arrays of explanations and drift summaries in cache.
CHUNK_ROWS = 8_192
# Padded events per scoring batch (rows x the longest row): the fused CPU LSTM runs fastest when
# its per-step gate buffers (events x 4 x hidden floats, 8 MB at the default config) stay near
# the core's cache: about 75 GFLOP/s on one core at 16k events against about 48 at 64k. It also
# caps a batch's memory, whatever its histories' lengths.
MAX_BATCH_EVENTS = 16_384
# Batch shapes on CPU: steps a multiple of 2, rows of 32. Each distinct (steps, rows) costs the
# fused LSTM a kernel build (about 1 ms) and a cache entry (about 0.4 MB, up to 1024 of them):
# rounded, a day's batches come in about 110 shapes instead of about 230 (and this bounds the
# entries whatever the number of histories), for 0.2% more padded steps.
STEP_MULTIPLE, ROW_MULTIPLE = 2, 32


def _device_of(model: EventLstm) -> torch.device:
    return next(model.parameters()).device


@torch.inference_mode()
def predict_all(
    model: EventLstm,
    data: SequenceData,
    batch_size: int = 1024,
    per_event: bool = True,
    max_events: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(final probability per row, probability per event flat along data.offsets or None), float32.

    Batches hold up to `batch_size` rows of similar length and `max_events` padded events
    (default: MAX_BATCH_EVENTS on CPU, no bound on a GPU); how the rows are batched changes the
    probabilities by float32 rounding at most (the fused LSTM may group a batch's rows differently).
    """
    was_training = model.training
    if was_training:  # a module walk: about 0.2 ms, which a served request of one profile notices
        model.eval()
    device = _device_of(model)
    on_cpu = device.type == "cpu"
    if max_events is None and on_cpu:
        max_events = MAX_BATCH_EVENTS
    step_multiple, row_multiple = (STEP_MULTIPLE, ROW_MULTIPLE) if on_cpu else (1, 1)
    final = np.zeros(len(data), dtype=np.float32)
    events = np.zeros(data.events, dtype=np.float32) if per_event else None
    batches = data.length_batches(
        batch_size, max_events=max_events, step_multiple=step_multiple, row_multiple=row_multiple
    )
    for rows in batches:
        steps = int(padded_steps(data.lengths[rows].max(), step_multiple))
        batch = data.batch(rows, steps).to(device)
        with autocast(device):
            per_step, _ = model(batch)
        # Steps first, as the model computed them (per_step is a transposed view of a (T, B) tensor).
        probs = torch.sigmoid(per_step.T.float()).cpu().numpy()
        lengths = data.lengths[rows]
        # The final probability is read off the per-event ones, so the two agree to the bit.
        final[rows] = probs[lengths - 1, np.arange(len(rows))]
        if events is not None:
            steps = np.arange(probs.shape[0])[:, None]
            real = steps < lengths[None, :]
            events[(data.offsets[rows][None, :] + steps)[real]] = probs[real]
    if was_training:
        model.train()
    return final, events


def predict(model: EventLstm, data: SequenceData, batch_size: int = 1024) -> np.ndarray:
    """P(order in the next 7 days) per history, float32, in the rows' order."""
    return predict_all(model, data, batch_size, per_event=False)[0]

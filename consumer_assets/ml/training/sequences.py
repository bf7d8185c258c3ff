"""A history's per-event lists as flat numpy arrays, and each event's hours before the cut-off.

The one place that reads them: the model's inputs (data.py), the explanations' event times
(monitoring.explain) and the drift summaries (monitoring.drift) all take their per-event arrays
and times from here, so a prediction's explanation and the model that made it see the same
numbers; predictions compute them once per batch and hand them to all three.

Times are reconstructed from the history, which stores no timestamps: the last event happened
`hours_since_last_event` before the cut-off (the end of the history's day, D+1 00:00 UTC), and each
earlier one the gap of the event after it earlier, expm1(log_dt) seconds. So event i lies

    h_i = hours_since_last_event + sum_{j > i} expm1(log_dt_j) / 3600

hours before the cut-off. log_dt is float32 (relative rounding 2^-24), so a gap of s seconds comes
back within about (1 + s) * log1p(s) * 6e-8 s: under a second for a 12-day gap, and within a few
seconds for a whole history of 200 events over a 180-day horizon. That is exact enough for the
model and for explanations, so no timestamp column is needed; the absolute time is the cut-off
minus h_i.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def list_parts(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(values, offsets from 0) of a list column without nulls; slices and chunks are handled."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if column.null_count:
        raise ValueError("list column has null rows")
    offsets = column.offsets.to_numpy().astype(np.int64)
    values = column.values.to_numpy(zero_copy_only=False)[offsets[0] : offsets[-1]]
    return values, offsets - offsets[0]


def hours_before_cutoff(log_dt: np.ndarray, offsets: np.ndarray, hours_since_last_event: np.ndarray) -> np.ndarray:
    """Per event (flat, like log_dt, float64): hours between the event and the cut-off, as above."""
    lengths = np.diff(offsets)
    gap_s = np.expm1(log_dt.astype(np.float64))
    # Seconds from event i to its row's last event: the row's total after i, from one flat cumsum.
    csum = np.cumsum(gap_s)
    nonempty = lengths > 0
    after = np.repeat(csum[offsets[1:][nonempty] - 1], lengths[nonempty]) - csum
    return np.repeat(np.asarray(hours_since_last_event, np.float64), lengths) + after / 3600.0

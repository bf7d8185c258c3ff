"""The day's quarantined lines, handed on in bounded batches as they come instead of held for the whole day.

A day can be nothing but bad lines (ten million `{}` fit in a 29 KB gzip): held whole, its
quarantine would take gigabytes. The batches go, in the order the lines come (file, then line
order; duplicates last), to a writer, e.g. one Parquet file each.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from consumer_assets.events.schema import QUARANTINE_SCHEMA

QUARANTINE_BATCH_ROWS = 100_000
# A batch is also handed on once it holds this many bytes: a quarantined raw line may be as long
# as the line limit.
BATCH_BYTES = 64 << 20


class QuarantineBatches:
    """Quarantined lines (QUARANTINE_SCHEMA tables) handed to `write` in batches of at most `batch_rows` rows
    and about BATCH_BYTES, with their count by reason.

    Without `write` they stay in memory (`table()`): for tests and small days. With it, a day
    that quarantines nothing writes one empty batch, so its date is in the quarantine all the same.
    """

    def __init__(
        self, write: Callable[[pa.Table], object] | None = None, batch_rows: int = QUARANTINE_BATCH_ROWS
    ) -> None:
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be positive, got {batch_rows}")
        self._write, self.batch_rows = write, batch_rows
        self._pending: list[pa.Table] = []
        self._pending_rows = self._pending_bytes = 0
        self._batches = 0
        self.rows = 0
        self.reasons: Counter[str] = Counter()

    def add(self, lines: pa.Table) -> None:
        """Quarantined lines, in order; a full batch is handed on at once."""
        if not lines.num_rows:
            return
        self.rows += lines.num_rows
        for row in pc.value_counts(lines["reason"]).to_pylist():
            self.reasons[row["values"]] += row["counts"]
        self._pending.append(lines)
        self._pending_rows += lines.num_rows
        self._pending_bytes += lines.nbytes
        if self._write is not None and (self._pending_rows >= self.batch_rows or self._pending_bytes >= BATCH_BYTES):
            self._flush(everything=self._pending_bytes >= BATCH_BYTES)

    def close(self) -> None:
        """Hand on what is left (an empty batch if nothing was ever handed on)."""
        if self._write is None:
            return
        if self._pending_rows:
            self._flush(everything=True)
        elif not self._batches:
            self._write(QUARANTINE_SCHEMA.empty_table())
            self._batches += 1

    def table(self) -> pa.Table:
        """The lines not handed on (yet): all of them without `write`, none after `close` with it."""
        return pa.concat_tables([QUARANTINE_SCHEMA.empty_table(), *self._pending])

    def _flush(self, *, everything: bool) -> None:
        assert self._write is not None
        pending = self.table()
        whole = pending.num_rows - pending.num_rows % self.batch_rows
        end = pending.num_rows if everything else whole
        for at in range(0, end, self.batch_rows):
            self._write(pending.slice(at, min(self.batch_rows, end - at)))
            self._batches += 1
        rest = pending.slice(end)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows, self._pending_bytes = rest.num_rows, rest.nbytes

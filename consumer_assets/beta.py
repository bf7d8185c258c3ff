"""The Dagster features this project relies on that Dagster 1.13 still marks beta or preview, and the one
place their warnings are silenced, for exactly these uses and nowhere else:

- `backfill_policy` (beta): a range of days runs as one run (one Spark job, one commit for the range);
- `allow_nonexistent_upstream_partitions` (beta): the first days' histories read the part of their
  window that exists;
- `AssetCheckSpec(partitions_def=...)` (preview): a one-day run records its check results on that day.
"""

import contextlib
import warnings
from collections.abc import Iterator

import dagster as dg

BETA = r"Parameter `(backfill_policy|allow_nonexistent_upstream_partitions)`"
PREVIEW = r"Specifying a partitions_def on an AssetCheckSpec"


@contextlib.contextmanager
def deliberate() -> Iterator[None]:
    """Silence exactly the beta and preview features listed above."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=BETA, category=dg.BetaWarning)
        warnings.filterwarnings("ignore", message=PREVIEW, category=dg.PreviewWarning)
        yield
